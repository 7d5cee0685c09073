#!/bin/bash
# build-modules.sh [NAME]: build rdma_rxe.ko and odp_mirror.ko (W=1) for
# kernel NAME of kernels.matrix (default: the first row) into
# build/<kver>/, fetching the kernel first if needed.
# build-modules.sh --debug: the same for the debug kernel of make
# check-debug (scripts/build-debug-kernel.sh, which builds it if needed).
#
# A kernel of the host's own Debian release builds with the host's
# compiler. Any other (Debian 13's, from a Debian 12 host) builds in a
# chroot of its release with the compiler its kernel was built with, as
# DKMS would on such a machine (scripts/toolchain-chroot.sh).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
debug=0
if [ "${1:-}" = --debug ]; then
	debug=1
	shift
	# the debug kernel is built from the default kernel's source
	set -- "$("$top/scripts/kernel-env.sh" --list | head -n 1)"
fi
eval "$("$top/scripts/kernel-env.sh" "${1:-}")"
cache=${RXE_ODP_CACHE:-$HOME/.cache/rxe-odp}
kcache=$cache/$KVER
kver=$KVER
if [ "$debug" = 1 ]; then
	dcache=$("$top/scripts/build-debug-kernel.sh")
	kver=$(cat "$dcache/kver")
fi
build=${RXE_ODP_BUILD_DIR:-$top/build/$kver}
kdir=${dcache:-$kcache}/root/usr/src/linux-headers-$kver

# One build at a time per tree (make check's two lanes may both want
# one); the lock is held until the build's last process exits.
mkdir -p "$(dirname "$build")"
exec 8>"$build.lock"
flock 8
[ -f "$kcache/.extracted" ] || "$top/scripts/fetch-kernel.sh" "$KERNEL_NAME" >/dev/null
"$top/scripts/prepare-tree.sh" "$kcache/src" "$build"
kmake=(make -C "$kdir" M="$build" CONFIG_RDMA_RXE=m W=1 modules)

host_release=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
if [ "$KERNEL_RELEASE" = "$host_release" ]; then
	exec "${kmake[@]}"
fi

exec "$top/scripts/toolchain-chroot.sh" "$KERNEL_NAME" "$build" "$cache" -- "${kmake[@]}"
