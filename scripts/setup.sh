#!/bin/bash
# setup.sh [--debug]: install what a fresh Debian 12 machine needs to
# build, boot and test rxe-odp (host tools, and the userspace the guest
# runs, since the guest's root is the host's). Installs only missing
# packages; the kernel packages themselves are downloaded into the cache,
# not installed. --debug: also what building the debug kernel of make
# check-debug needs (scripts/build-debug-kernel.sh).
set -euo pipefail

pkgs=(
	# build of the modules and of our userspace
	gcc make patch perl python3 dwarves kmod bc
	libibverbs-dev librdmacm-dev
	# the guest
	qemu-system-x86 busybox-static cpio xz-utils gzip
	# guest userspace: rdma-core 44, pyverbs, perftest, the rdma tool
	rdma-core ibverbs-utils ibverbs-providers rdmacm-utils
	python3-pyverbs perftest iproute2
	# UCX and Open MPI (tests/ucx), and what the patched UCX 1.13.1 of
	# tests/ucx/build-ucx.sh builds with
	ucx-utils libucx0 openmpi-bin libopenmpi-dev
	dpkg-dev autoconf automake libtool pkg-config libnuma-dev
	# lifecycle model and plots
	spin gnuplot-nox
	# the DKMS package's test (dkms add/build/install into scratch trees)
	dkms
	# builds for Debian 13's kernels run in a Debian 13 chroot
	# (scripts/build-modules.sh); the cloud kernel's guest uses
	# virtio-fs (virtiofsd comes with qemu-system-x86)
	debootstrap
)
[ "${1:-}" != --debug ] || pkgs+=(flex bison libelf-dev libssl-dev)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
		missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=()
[ "$(id -u)" = 0 ] || sudo=(sudo)
echo "setup: installing ${missing[*]}"
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq \
	--no-install-recommends "${missing[@]}" >/dev/null
