#!/bin/bash
# mkinitramfs.sh IMAGE_ROOT KVER OUT: a ~1.5 MB initramfs with static
# busybox and the modules that mount the host's root over 9p under an
# overlay (netfs 9pnet 9pnet_virtio 9p overlay; those the kernel has as
# modules: a cloud kernel has no 9p and virtio-fs built in), plus
# tests/vm/initramfs-init.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
image=$1
kver=$2
out=$3
mods=(fs/netfs/netfs net/9p/9pnet net/9p/9pnet_virtio fs/9p/9p
      fs/overlayfs/overlay)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"/{bin,dev,proc,sys,lower,newroot,lib/modules}
cp /bin/busybox "$tmp/bin/busybox"
touch "$tmp/lib/modules/order"
for m in "${mods[@]}"; do
	[ -f "$image/lib/modules/$kver/kernel/$m.ko.xz" ] || continue
	xz -dc "$image/lib/modules/$kver/kernel/$m.ko.xz" \
		>"$tmp/lib/modules/${m##*/}.ko"
	echo "${m##*/}" >>"$tmp/lib/modules/order"
done
install -m 0755 "$here/initramfs-init" "$tmp/init"
# Guests that boot at once may build it at once: each writes its own
# file and renames it into place (atomic; the contents are the same).
part=$(mktemp "$out.XXXXXX")
trap 'rm -rf "$tmp" "$part"' EXIT
(cd "$tmp" && find . -print0 | cpio --null -o -H newc --quiet) |
	gzip -9 >"$part"
chmod 0644 "$part"
mv -f "$part" "$out"
