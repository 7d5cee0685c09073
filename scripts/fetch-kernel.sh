#!/bin/bash
# fetch-kernel.sh [NAME]: fetch the packages of kernel NAME of
# kernels.matrix (default: the first row) into the cache and extract what
# the build and the guest need:
#   $KCACHE/root    headers + kbuild, as a relocatable build tree (KDIR)
#   $KCACHE/image   vmlinuz and the module tree, depmod'ed
#   $KCACHE/src     the few upstream source files we patch or run
# Nothing is installed on the host; apt reads a private sources list of
# the matrix's suites (its state under $cache/apt-kernels). Prints KDIR on
# success; exits 3 when Debian no longer serves the kernel.
# A kernel of kernels.upstream (booted with its own rxe, never built for)
# brings its image only, through a sources list of its own suite
# ($cache/apt-kernels-upstream); it prints nothing.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
eval "$("$top/scripts/kernel-env.sh" "${1:-}")"
cache=${RXE_ODP_CACHE:-$HOME/.cache/rxe-odp}
kver=$KVER
kcache=$cache/$kver
debs=$cache/debs
apt_dir=$cache/apt-kernels
image=linux-image-$kver-unsigned
pkgs=(
	"$image"
	"linux-headers-$kver"
	"linux-headers-$KERNEL_ABI-common"
	"linux-kbuild-$KERNEL_ABI"
	"linux-source-6.12"
)
suites=$("$top/scripts/kernel-env.sh" --suites)
offer=linux-source-6.12	# what names the versions a suite still serves
if [ "$KERNEL_UPSTREAM" = 1 ]; then
	# Debian's 7.x kernels come as linux-binary (vmlinuz), linux-modules
	# and linux-base (config, System.map); linux-image only depends on
	# them
	image=linux-binary-$kver
	pkgs=("$image" "linux-modules-$kver" "linux-base-$kver")
	apt_dir=$cache/apt-kernels-upstream
	suites=$KERNEL_SUITE
	offer=linux-image-$KERNEL_FLAVOUR
fi

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

apt_opts=(-o "Dir::Etc::sourcelist=$apt_dir/sources.list"
	  -o "Dir::Etc::sourceparts=-" -o "Dir::State::Lists=$apt_dir/lists"
	  -o "Dir::Cache=$apt_dir/cache" -o "APT::Sandbox::User=root" -q)

# One private sources list for every suite of the matrix.
apt_update() {
	local suite archive key=/usr/share/keyrings/debian-archive-keyring.gpg
	mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
	for suite in $suites; do
		archive=debian
		[ "${suite%-security}" = "$suite" ] || archive=debian-security
		echo "deb [signed-by=$key] http://deb.debian.org/$archive $suite main"
	done >"$apt_dir/sources.list"
	apt-get "${apt_opts[@]}" update >&2
}

fetch() {
	local missing=() p
	mkdir -p "$debs"
	for p in "${pkgs[@]}"; do
		[ -n "$(deb_path "$p")" ] || missing+=("$p=$KERNEL_PKG_VERSION")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "fetch-kernel: downloading ${missing[*]}" >&2
	apt_update || { echo "fetch-kernel: apt-get update failed" >&2; exit 1; }
	if ! (cd "$debs" && apt-get "${apt_opts[@]}" download "${missing[@]}" >&2); then
		local offered
		offered=$(apt-cache "${apt_opts[@]}" madison "$offer" 2>/dev/null |
			  awk -v s=" $KERNEL_SUITE/" 'index($0, s) { print $3 }' | tr '\n' ' ')
		cat >&2 <<MSG
fetch-kernel: Debian's $KERNEL_SUITE no longer serves kernel $KERNEL_PKG_VERSION
  ($KERNEL_NAME in kernels.matrix). Versions on offer there: ${offered:-none}
  Change its row (or add one) in kernels.matrix (kernels.upstream for an upstream kernel).
MSG
		exit 3
	fi
}

extract() {
	local stamp=$kcache/.extracted tmp
	[ -f "$stamp" ] && return 0
	rm -rf "$kcache"
	mkdir -p "$kcache/image"
	for p in "${pkgs[@]}"; do
		case $p in
		linux-image-* | linux-binary-* | linux-modules-* | linux-base-*)
			dpkg-deb -x "$(deb_path "$p")" "$kcache/image" ;;
		esac
	done
	# Debian 13's packages ship /usr/lib/modules (merged /usr): one layout
	if [ -d "$kcache/image/usr/lib/modules" ]; then
		mkdir -p "$kcache/image/lib"
		mv "$kcache/image/usr/lib/modules" "$kcache/image/lib/modules"
	fi
	# and 7.x ones keep vmlinuz and config beside the modules
	if [ ! -d "$kcache/image/boot" ]; then
		mkdir -p "$kcache/image/boot"
		ln -s "../lib/modules/$kver/vmlinuz" "$kcache/image/boot/vmlinuz-$kver"
		ln -s "../lib/modules/$kver/config" "$kcache/image/boot/config-$kver"
	fi
	depmod -b "$kcache/image" "$kver"
	if [ "$KERNEL_UPSTREAM" = 0 ]; then
		mkdir -p "$kcache/root" "$kcache/src"
		for p in "linux-headers-$kver" "linux-headers-$KERNEL_ABI-common" \
			 "linux-kbuild-$KERNEL_ABI"; do
			dpkg-deb -x "$(deb_path "$p")" "$kcache/root"
		done
		# The flavour's Makefile includes the common one by absolute path.
		echo "include $kcache/root/usr/src/linux-headers-$KERNEL_ABI-common/Makefile" \
			>"$kcache/root/usr/src/linux-headers-$kver/Makefile"

		tmp=$(mktemp -d "$kcache/src.XXXXXX")
		dpkg-deb --fsys-tarfile "$(deb_path linux-source-6.12)" |
			tar -x -C "$tmp" ./usr/src/linux-source-6.12.tar.xz
		tar -xJf "$tmp/usr/src/linux-source-6.12.tar.xz" -C "$tmp" \
			"${src_members[@]/#/linux-source-6.12/}"
		cp -a "$tmp/linux-source-6.12/." "$kcache/src/"
		rm -rf "$tmp"
	fi
	touch "$stamp"
}

# One fetch at a time: make check's two lanes may fetch the same kernel.
mkdir -p "$cache"
exec 9>"$cache/.fetch.lock"
flock 9
fetch
extract
[ "$KERNEL_UPSTREAM" = 1 ] || echo "$kcache/root/usr/src/linux-headers-$kver"
