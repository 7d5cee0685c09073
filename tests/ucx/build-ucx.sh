#!/usr/bin/env bash
# build-ucx.sh [--print-env]: a private build of Debian 12's own UCX
# (the version of the installed libucx0, 1.13.1-1) with one patch of ours,
# tests/ucx/ucx-1.13.1-implicit-odp-dereg.patch: 1.13.1 hands
# uct_ib_mem_dereg() the implicit ODP memh where it takes parameters, and
# so crashes at exit in about half of the processes that used
# UCX_IB_REG_METHODS=odp (openucx/ucx issues 8735, 9392). The UCX suite
# (tests/ucx/run.sh) runs its implicit ODP cases on this build and
# everything else on Debian's binaries.
#
# Why a patched 1.13.1 and not a newer UCX: it is the UCX Debian 12 users
# have, so the implicit cases test what they run, minus the one bug that
# is not ours; a newer UCX would change every other variable too.
#
# Source: Debian's source package (.dsc, .orig and .debian tarballs,
# checked by apt against bookworm's signed Sources index), unpacked with
# dpkg-source (Debian's own patches applied), then ours. apt reads a
# private deb-src list with its state under the cache; /etc/apt is never
# touched. Built with Debian's configure flags (debian/rules) minus the
# examples and static libraries, installed into the cache; its binaries
# carry an RPATH to its libraries and load their transports from its own
# module directory.
#
#   (no args)    build unless built for this version and patch; print
#                UCX_PRIVATE_DIR=... (a warm cache uses no network)
#   --print-env  print the env.sh path if built, exit 1 otherwise
# Cache: ${RXE_ODP_CACHE:-$HOME/.cache/rxe-odp}/ucx-<version>-rxe-odp
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
patch_file=$here/ucx-1.13.1-implicit-odp-dereg.patch
cache=${RXE_ODP_CACHE:-$HOME/.cache/rxe-odp}
version=$(dpkg-query -W -f '${Version}' libucx0 2>/dev/null) || {
	echo "build-ucx: libucx0 is not installed (scripts/setup.sh)" >&2
	exit 1
}
w=$cache/ucx-$version-rxe-odp
inst=$w/inst
env_sh=$w/env.sh
configure_flags=(--prefix="$inst" --enable-mt --with-verbs --with-rdmacm
	--disable-backtrace-detail --disable-logging --enable-cma
	--disable-static --without-java --without-go --disable-doxygen-doc)
want="ucx=$version patch=$(sha256sum <"$patch_file" | cut -d' ' -f1) configure=${configure_flags[*]}"

built() {
	[ -f "$w/stamp" ] && [ "$(cat "$w/stamp")" = "$want" ] &&
		[ -x "$inst/bin/ucx_perftest" ] && [ -f "$env_sh" ]
}

if [ "${1:-}" = --print-env ]; then
	built || { echo "build-ucx: not built for $want" >&2; exit 1; }
	echo "$env_sh"
	exit 0
fi
[ $# -eq 0 ] || { echo "usage: $0 [--print-env]" >&2; exit 2; }

log() { printf '[build-ucx %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { echo "build-ucx: ERROR: $*" >&2; exit 1; }

mkdir -p "$w"
exec 9>"$w/.lock"
flock 9
if built; then
	echo "UCX_PRIVATE_DIR=$inst"
	exit 0
fi
rm -f "$w/stamp" "$env_sh"

apt_opts=(-o "Dir::Etc::sourcelist=$w/sources.list" -o "Dir::Etc::sourceparts=-"
	-o "Dir::State::Lists=$w/apt-lists" -o "Dir::Cache=$w/apt-cache"
	-o "APT::Sandbox::User=root" -q)
dsc=$w/dl/ucx_${version#*:}.dsc
if [ ! -f "$dsc" ]; then
	mkdir -p "$w/apt-lists/partial" "$w/apt-cache/archives/partial" "$w/dl"
	echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main" \
		>"$w/sources.list"
	log "apt-get update (private deb-src list for bookworm)"
	apt-get "${apt_opts[@]}" update >&2 || die "apt-get update failed"
	log "downloading the source of ucx $version"
	(cd "$w/dl" && apt-get "${apt_opts[@]}" source --download-only "ucx=$version" >&2) ||
		die "apt-get source --download-only ucx=$version failed (no longer in bookworm?)"
fi

log "unpacking (Debian's patches), then ours"
rm -rf "$w/src"
dpkg-source -x "$dsc" "$w/src" >"$w/build.log" 2>&1 || die "dpkg-source -x failed, see $w/build.log"
patch -d "$w/src" -p1 <"$patch_file" >>"$w/build.log" 2>&1 ||
	die "$patch_file does not apply to ucx $version, see $w/build.log"
log "autogen, configure, make -j2 (about 2 minutes on 2 cores)"
(
	cd "$w/src" &&
		./autogen.sh &&
		./configure "${configure_flags[@]}" &&
		make -j2 &&
		rm -rf "$inst" &&
		make install
) >>"$w/build.log" 2>&1 || die "the build failed, see $w/build.log"
out=$(ldd "$inst/bin/ucx_perftest")
grep -qF "$inst/lib/libucp.so.0 " <<<"$out" ||
	die "$inst/bin/ucx_perftest does not resolve $inst/lib/libucp.so.0"
[ -f "$inst/lib/ucx/libuct_ib.so.0" ] || die "no verbs transport was built"
{
	echo "# Written by tests/ucx/build-ucx.sh; do not edit."
	printf 'export UCX_PRIVATE_DIR=%q\n' "$inst"
	printf 'export UCX_PRIVATE_BUILD=%q\n' "$want"
} >"$env_sh"
echo "$want" >"$w/stamp"
log "built"
echo "UCX_PRIVATE_DIR=$inst"
