#!/bin/bash
# build-modules.sh [NAME]: build rdma_rxe.ko and odp_mirror.ko (W=1) for
# kernel NAME of kernels.matrix (default: the first row) into
# build/<kver>/, fetching the kernel first if needed.
#
# A kernel of the host's own Debian release builds with the host's
# compiler. Any other (Debian 13's, from a Debian 12 host) builds in a
# chroot of its release with the compiler its kernel was built with, as
# DKMS would on such a machine: debootstrap'ed once into
# $cache/toolchain-<release>-<gcc>, entered in a private mount namespace in
# which the build tree and the cache are bound at their own paths.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
eval "$("$top/scripts/kernel-env.sh" "${1:-}")"
cache=${RXE_ODP_CACHE:-$HOME/.cache/rxe-odp}
kcache=$cache/$KVER
build=${RXE_ODP_BUILD_DIR:-$top/build/$KVER}
kdir=$kcache/root/usr/src/linux-headers-$KVER

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

# The compiler the kernel names, e.g. "x86_64-linux-gnu-gcc-14 (...)".
cc=$(sed -n 's/^CONFIG_CC_VERSION_TEXT="\{0,1\}x86_64-linux-gnu-\(gcc-[0-9]*\) .*/\1/p' \
	"$kdir/include/config/auto.conf")
[ -n "$cc" ] || { echo "build-modules: no gcc named in $KVER's config" >&2; exit 1; }
root=$cache/toolchain-$KERNEL_RELEASE-$cc
exec 7>"$root.lock"
flock 7
if [ ! -f "$root/.ready" ]; then
	command -v debootstrap >/dev/null ||
		{ echo "build-modules: debootstrap is needed (scripts/setup.sh)" >&2; exit 1; }
	echo "build-modules: debootstrap $KERNEL_RELEASE with $cc into $root" >&2
	rm -rf "$root"
	debootstrap --variant=minbase \
		--include="$cc,make,libc6-dev,libelf-dev,bc,kmod,perl,dwarves" \
		"$KERNEL_RELEASE" "$root" http://deb.debian.org/debian \
		>"$root.log" 2>&1 ||
		{ tail -n 20 "$root.log" >&2; exit 1; }
	touch "$root/.ready"
fi
flock -u 7
# shellcheck disable=SC2016 # expanded by the inner shell
exec unshare -m sh -ec '
	root=$1; shift
	for d in "$1" "$2"; do
		mkdir -p "$root$d"
		mount --bind "$d" "$root$d"
	done
	shift 2
	exec chroot "$root" "$@"
' sh "$root" "$build" "$cache" "${kmake[@]}"
