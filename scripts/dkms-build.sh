#!/bin/bash
# dkms-build.sh KVER KDIR: the MAKE step of dkms.conf. Compose the Kbuild
# tree under build/dkms/ from rxe's sources in Debian's linux-source
# package of KVER's series (RXE_ODP_LINUX_SOURCE names another tarball),
# our patches and our files (scripts/prepare-tree.sh), and build both
# modules against KDIR (the kernel's headers).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
kver=$1
kdir=$2
series=$(echo "$kver" | cut -d. -f1,2)
tarball=${RXE_ODP_LINUX_SOURCE:-/usr/src/linux-source-$series.tar.xz}
if [ ! -f "$tarball" ]; then
	echo "dkms-build: $tarball not found: install linux-source-$series (rxe's sources are not in linux-headers)" >&2
	exit 1
fi

src=$top/build/dkms-src
rm -rf "$src"
mkdir -p "$src"
tar -xJf "$tarball" -C "$src" --strip-components=1 \
	"linux-source-$series/drivers/infiniband/sw/rxe"
"$top/scripts/prepare-tree.sh" "$src" "$top/build/dkms"
make -C "$kdir" M="$top/build/dkms" CONFIG_RDMA_RXE=m modules
