#!/bin/bash
# toolchain-chroot.sh KERNEL DIR... -- COMMAND...: run COMMAND in a chroot
# of the Debian release of KERNEL (a name of kernels.matrix, fetched) with
# the gcc that KERNEL was built with, make, perl, pahole, xz and dkms:
# what building modules for that kernel takes on a machine of its own
# release (Debian 13's gcc-14 and dkms 3.2, say). Each DIR is bound
# at its own path inside, in a private mount namespace (nothing stays
# mounted). The chroot is debootstrap'ed once into
# $cache/toolchain-RELEASE-GCC and kept; a changed package list is
# installed into it with apt-get.
set -euo pipefail

[ $# -ge 3 ] || { echo "usage: $0 KERNEL DIR... -- COMMAND..." >&2; exit 2; }
top=$(cd "$(dirname "$0")/.." && pwd)
eval "$("$top/scripts/kernel-env.sh" "$1")"
shift
cache=${RXE_ODP_CACHE:-$HOME/.cache/rxe-odp}
release=$KERNEL_RELEASE
# The compiler the kernel names, e.g. "x86_64-linux-gnu-gcc-14 (...)".
gcc=$(sed -n 's/^CONFIG_CC_VERSION_TEXT="\{0,1\}x86_64-linux-gnu-\(gcc-[0-9]*\) .*/\1/p' \
	"$cache/$KVER/root/usr/src/linux-headers-$KVER/include/config/auto.conf")
[ -n "$gcc" ] || { echo "toolchain-chroot: no gcc named in $KVER's config (fetched?)" >&2; exit 1; }
binds=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do
	binds+=("$1")
	shift
done
[ "${1:-}" = -- ] || { echo "toolchain-chroot: no -- COMMAND" >&2; exit 2; }
shift
root=$cache/toolchain-$release-$gcc
pkgs="$gcc,make,libc6-dev,libelf-dev,bc,kmod,perl,dwarves,xz-utils,patch,dkms"

mkdir -p "$cache"
exec 7>"$root.lock"
flock 7
if [ "$(cat "$root/.ready" 2>/dev/null)" != "$pkgs" ]; then
	if [ -f "$root/.ready" ]; then
		echo "toolchain-chroot: installing ${pkgs//,/ } into $root" >&2
		# shellcheck disable=SC2086 # the list is split on purpose
		chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install \
			-y -q --no-install-recommends ${pkgs//,/ } >"$root.log" 2>&1 ||
			{ tail -n 20 "$root.log" >&2; exit 1; }
	else
		command -v debootstrap >/dev/null ||
			{ echo "toolchain-chroot: debootstrap is needed (scripts/setup.sh)" >&2; exit 1; }
		echo "toolchain-chroot: debootstrap $release with $gcc into $root" >&2
		rm -rf "$root"
		debootstrap --variant=minbase --include="$pkgs" "$release" \
			"$root" http://deb.debian.org/debian >"$root.log" 2>&1 ||
			{ tail -n 20 "$root.log" >&2; exit 1; }
	fi
	echo "$pkgs" >"$root/.ready"
fi
flock -u 7

# shellcheck disable=SC2016 # expanded by the inner shell
exec unshare -m sh -ec '
	root=$1 n=$2
	shift 2
	while [ "$n" -gt 0 ]; do
		mkdir -p "$root$1"
		mount --bind "$1" "$root$1"
		shift
		n=$((n - 1))
	done
	exec chroot "$root" "$@"
' sh "$root" "${#binds[@]}" "${binds[@]}" "$@"
