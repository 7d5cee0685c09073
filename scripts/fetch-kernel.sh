#!/bin/bash
# Fetch Debian 12's 6.12 kernel packages named in kernel.version into the
# cache and extract what the build and the guest need:
#   $KCACHE/root    headers + kbuild, as a relocatable build tree (KDIR)
#   $KCACHE/image   vmlinuz and the module tree, depmod'ed
#   $KCACHE/src     the few upstream source files we patch or run
# Nothing is installed on the host. Prints KDIR on success.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../kernel.version
. "$top/kernel.version"
cache=${RXE_ODP_CACHE:-$HOME/.cache/rxe-odp}
flavour=amd64
kver=$KERNEL_ABI-$flavour
kcache=$cache/$kver
debs=$cache/debs

pkgs=(
	"linux-image-$kver-unsigned"
	"linux-headers-$kver"
	"linux-headers-$KERNEL_ABI-common"
	"linux-kbuild-$KERNEL_ABI"
	"linux-source-6.12"
)

# Upstream files taken from linux-source: rxe itself, the kselftest
# harness for our C tests, and the style checkers.
src_members=(
	drivers/infiniband/sw/rxe
	tools/testing/selftests/kselftest.h
	tools/testing/selftests/kselftest_harness.h
	scripts/checkpatch.pl
	scripts/spelling.txt
	scripts/const_structs.checkpatch
	scripts/kernel-doc
)

deb_path() {
	local f
	f=$(compgen -G "$debs/${1}_${KERNEL_PKG_VERSION/\~/%7e}_*.deb" ||
	    compgen -G "$debs/${1}_${KERNEL_PKG_VERSION}_*.deb" || true)
	echo "${f%%$'\n'*}"
}

fetch() {
	local missing=() p
	mkdir -p "$debs"
	for p in "${pkgs[@]}"; do
		[ -n "$(deb_path "$p")" ] || missing+=("$p=$KERNEL_PKG_VERSION")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "fetch-kernel: downloading ${missing[*]}" >&2
	if ! (cd "$debs" && apt-get download "${missing[@]}" >&2); then
		local offered
		offered=$(apt-cache madison linux-source-6.12 2>/dev/null |
			  awk '{print $3}' | tr '\n' ' ')
		cat >&2 <<MSG
fetch-kernel: Debian no longer serves kernel $KERNEL_PKG_VERSION
  (pinned in kernel.version). Versions on offer: ${offered:-none (run apt-get update)}
  Edit KERNEL_ABI and KERNEL_PKG_VERSION in kernel.version to one of them.
MSG
		exit 1
	fi
}

extract() {
	local stamp=$kcache/.extracted tmp
	[ -f "$stamp" ] && return 0
	rm -rf "$kcache"
	mkdir -p "$kcache/root" "$kcache/image" "$kcache/src"
	for p in "linux-headers-$kver" "linux-headers-$KERNEL_ABI-common" \
		 "linux-kbuild-$KERNEL_ABI"; do
		dpkg-deb -x "$(deb_path "$p")" "$kcache/root"
	done
	# The flavour's Makefile includes the common one by absolute path.
	echo "include $kcache/root/usr/src/linux-headers-$KERNEL_ABI-common/Makefile" \
		>"$kcache/root/usr/src/linux-headers-$kver/Makefile"

	dpkg-deb -x "$(deb_path "linux-image-$kver-unsigned")" "$kcache/image"
	depmod -b "$kcache/image" "$kver"

	tmp=$(mktemp -d "$kcache/src.XXXXXX")
	dpkg-deb --fsys-tarfile "$(deb_path linux-source-6.12)" |
		tar -x -C "$tmp" ./usr/src/linux-source-6.12.tar.xz
	tar -xJf "$tmp/usr/src/linux-source-6.12.tar.xz" -C "$tmp" \
		"${src_members[@]/#/linux-source-6.12/}"
	cp -a "$tmp/linux-source-6.12/." "$kcache/src/"
	rm -rf "$tmp"
	touch "$stamp"
}

fetch
extract
echo "$kcache/root/usr/src/linux-headers-$kver"
