#!/usr/bin/env bash
# Build the "newer userspace" lane: rdma-core and perftest from the .orig
# tarballs of Debian unstable's source packages (versions pinned in
# newer-userspace.versions), built in place on bookworm (their binaries need
# glibc 2.38, so the unstable .debs are no use). rdma-core is built with
# pyverbs; perftest is linked against that rdma-core with an RPATH, so it
# needs no LD_LIBRARY_PATH.
#
# With --lane debian13 it builds Debian 13's rdma-core (56.1, from trixie's
# source package; debian13-userspace.versions) the same way, without
# perftest: the userspace a Debian 13 user has.
#
# Usage: tests/lanes/build-newer-userspace.sh [--lane debian13] [--print-env]
#   (no args)    build what is missing, write $CACHE/<lane>-userspace/env.sh,
#                print RDMA_CORE_<N>_DIR (N: the lane's LANE, 65 or 56) and
#                PERFTEST_25_DIR
#   --print-env  print the env.sh path if the pinned versions are built,
#                exit 1 otherwise (never builds, never uses the network)
# Cache: ${RXE_ODP_CACHE:-$HOME/.cache/rxe-odp}/<lane>-userspace. A warm cache
# (tarballs present) never touches the network; apt state lives in the cache,
# /etc/apt is never edited.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
lane=newer
if [[ ${1:-} == --lane ]]; then
	lane=$2
	shift 2
fi
VERSIONS_REL=tests/lanes/$lane-userspace.versions
VERSIONS_FILE=$HERE/$lane-userspace.versions
CACHE=${RXE_ODP_CACHE:-$HOME/.cache/rxe-odp}
W=$CACHE/$lane-userspace
ENV_SH=$W/env.sh
PY=/usr/bin/python3 # not `python3`: a pyenv shim may shadow it
JOBS=2

log() { printf '[%s-userspace %(%H:%M:%S)T] %s\n' "$lane" -1 "$*" >&2; }
die() {
	printf 'build-newer-userspace: ERROR: %s\n' "$*" >&2
	exit 1
}

[[ -r $VERSIONS_FILE ]] || die "missing pin file $VERSIONS_FILE"
PERFTEST_VERSION=''
# shellcheck source=SCRIPTDIR/newer-userspace.versions
. "$VERSIONS_FILE"
: "${RDMA_CORE_VERSION:?not set in $VERSIONS_REL}" "${LANE:?not set in $VERSIONS_REL}" \
	"${SOURCE_SUITE:?not set in $VERSIONS_REL}"
PINS="rdma-core=$RDMA_CORE_VERSION perftest=$PERFTEST_VERSION"
RC_VAR=RDMA_CORE_${LANE}_DIR

upstream_of() { # Debian version -> upstream version (drop epoch, revision)
	local v=${1#*:}
	printf '%s\n' "${v%-*}"
}
RC_DIR=$W/rdma-core-$(upstream_of "$RDMA_CORE_VERSION")
RC_BUILD=$RC_DIR/build
PT_DIR=''
[[ -z $PERFTEST_VERSION ]] || PT_DIR=$W/perftest-$(upstream_of "$PERFTEST_VERSION")

# env.sh is valid when it was written for the current pins and its
# artefacts are still there.
env_ok() {
	[[ -f $ENV_SH ]] || return 1
	(
		# shellcheck source=/dev/null
		. "$ENV_SH"
		[[ ${NEWER_USERSPACE_PINS:-} == "$PINS" &&
			-x ${!RC_VAR}/bin/run_tests.py &&
			-x ${!RC_VAR}/bin/ibv_devices &&
			( -z $PT_DIR || -x ${PERFTEST_25_DIR:-}/ib_write_bw ) ]]
	)
}

case ${1:-} in
--print-env)
	if env_ok; then
		printf '%s\n' "$ENV_SH"
		exit 0
	fi
	echo "build-newer-userspace: not built for $PINS (run $0)" >&2
	exit 1
	;;
"") ;;
-h | --help)
	sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"
	exit 0
	;;
*) die "unknown argument '$1' (usage: $0 [--print-env])" ;;
esac

mkdir -p "$W/src" "$W/stamps"
exec 9>"$W/.lock"
flock 9

# ---------------------------------------------------------------- deps
BUILD_DEPS=(cmake ninja-build cython3 libnl-3-dev libnl-route-3-dev
	libudev-dev python3-dev pkg-config gcc make
	autoconf automake libtool libpci-dev) # libpci-dev: perftest's configure needs pci/pci.h
deps_checked=0
ensure_deps() {
	((deps_checked)) && return 0
	deps_checked=1
	local p missing=()
	for p in "${BUILD_DEPS[@]}"; do
		[[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) == installed ]] ||
			missing+=("$p")
	done
	((${#missing[@]})) || return 0
	log "installing build deps: ${missing[*]}"
	local sudo=()
	((EUID == 0)) || sudo=(sudo)
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y \
		--no-install-recommends -o DPkg::Lock::Timeout=600 "${missing[@]}" >&2 ||
		die "apt-get install ${missing[*]} failed"
}

# ---------------------------------------------------------------- sources
# Private apt state for the suite's deb-src: nothing under /etc/apt or
# /var/lib/apt is read for sources or written.
APT_OPTS=(-o "Dir::Etc::sourcelist=$W/sources.list" -o "Dir::Etc::sourceparts=-"
	-o "Dir::State::Lists=$W/apt-lists" -o "Dir::Cache=$W/apt-cache"
	-o "APT::Sandbox::User=root" -q)
apt_updated=0
apt_update_once() {
	((apt_updated)) && return 0
	mkdir -p "$W/apt-lists/partial" "$W/apt-cache/archives/partial"
	echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $SOURCE_SUITE main" \
		>"$W/sources.list"
	log "apt-get update (private deb-src list for $SOURCE_SUITE)"
	apt-get "${APT_OPTS[@]}" update >&2 || die "apt-get update of $SOURCE_SUITE deb-src failed"
	apt_updated=1
}

# srcinfo PKG [VERSION]: without VERSION, print the versions of PKG on
# offer; with it, print "SHA256 FILENAME" of that version's .orig tarball
# (from the Sources index apt has verified).
srcinfo() {
	apt-cache "${APT_OPTS[@]}" showsrc "$1" 2>/dev/null |
		awk -v p="$1" -v v="${2:-}" 'BEGIN {RS = ""; FS = "\n"}
		{
			pk = ve = ""
			for (i = 1; i <= NF; i++) {
				if ($i ~ /^Package: /) pk = substr($i, 10)
				if ($i ~ /^Version: /) ve = substr($i, 10)
			}
			if (pk != p) next
			if (v == "") { print ve; next }
			if (ve != v) next
			s = 0
			for (i = 1; i <= NF; i++) {
				if ($i ~ /^Checksums-Sha256:/) { s = 1; continue }
				if (s && $i ~ /^ /) {
					split($i, f, " ")
					if (f[3] ~ /\.orig\.tar\./) print f[1], f[3]
					continue
				}
				s = 0
			}
		}' | sort -u
}

# fetch_source PKG VERSION: sets ORIG (path) and ORIG_SHA for the pinned
# version, downloading only when the cache lacks a verified copy. Only the
# .orig tarball is fetched (--tar-only): this host's deb.debian.org serves
# pool tarballs but 404s the .dsc and .debian.tar of unstable's sources.
# The checksum from the Sources index is kept next to it, so a warm run
# verifies the tarball without any network.
fetch_source() {
	local pkg=$1 ver=$2 sumfile line offered
	sumfile=$W/src/${pkg}_${ver#*:}.orig.sha256
	if [[ -s $sumfile ]] && (cd "$W/src" && sha256sum -c --quiet --status "$sumfile"); then
		read -r line <"$sumfile"
		log "$pkg $ver: cached ${line##* }"
	else
		apt_update_once
		offered=$(srcinfo "$pkg" | paste -sd' ')
		if [[ " $offered " != *" $ver "* ]]; then
			die "$pkg $ver (pinned) is no longer offered by Debian $SOURCE_SUITE; on offer: ${offered:-nothing}.
  Edit $VERSIONS_REL to pin the version on offer (and check the lane still passes)."
		fi
		line=$(srcinfo "$pkg" "$ver")
		[[ -n $line ]] || die "no .orig tarball listed for $pkg $ver in $SOURCE_SUITE's Sources"
		log "$pkg $ver: downloading ${line#* }"
		(cd "$W/src" && apt-get "${APT_OPTS[@]}" source --download-only --tar-only "$pkg=$ver" >&2) ||
			die "apt-get source --download-only --tar-only $pkg=$ver failed"
		printf '%s  %s\n' "${line%% *}" "${line#* }" >"$sumfile.tmp"
		(cd "$W/src" && sha256sum -c --quiet "$sumfile.tmp") ||
			die "checksum mismatch for $W/src/${line#* }"
		mv -f "$sumfile.tmp" "$sumfile"
		line="${line%% *}  ${line#* }"
	fi
	ORIG=$W/src/${line##* }
	ORIG_SHA=${line%% *}
}

# Extract a tarball into a fresh DIR (top-level directory stripped).
fresh_extract() {
	rm -rf "$2"
	mkdir -p "$2"
	tar -xf "$1" -C "$2" --strip-components=1
}

# ---------------------------------------------------------------- rdma-core
fetch_source rdma-core "$RDMA_CORE_VERSION"
RC_ORIG=$ORIG
CMAKE_ARGS=(-GNinja -DIN_PLACE=1 -DNO_MAN_PAGES=1 -DENABLE_STATIC=0
	-DCYTHON_EXECUTABLE=/usr/bin/cython3 "-DPYTHON_EXECUTABLE=$PY"
	"-DPython_EXECUTABLE=$PY")
RC_WANT="orig=$ORIG_SHA cmake=${CMAKE_ARGS[*]}"
RC_STAMP=$W/stamps/rdma-core
PT_ORIG=''
if [[ -n $PT_DIR ]]; then
	fetch_source perftest "$PERFTEST_VERSION"
	PT_ORIG=$ORIG
fi
PT_CPPFLAGS="-I$RC_BUILD/include"
PT_LDFLAGS="-L$RC_BUILD/lib -Wl,-rpath,$RC_BUILD/lib -Wl,--disable-new-dtags"
PT_WANT="orig=$ORIG_SHA rdma-core=[$RC_WANT] cppflags=$PT_CPPFLAGS ldflags=$PT_LDFLAGS"
PT_STAMP=$W/stamps/perftest

stamp_ok() { [[ -f $1 && $(<"$1") == "$2" ]]; }

check_pyverbs() {
	local f
	compgen -G "$RC_BUILD/python/pyverbs/device*.so" >/dev/null ||
		die "pyverbs was NOT built in $RC_BUILD (cython3/python3-dev not picked up by cmake?)"
	f=$(PYTHONPATH=$RC_BUILD/python "$PY" -c 'import pyverbs.device, pyverbs; print(pyverbs.__file__)') ||
		die "pyverbs from $RC_BUILD/python does not import"
	[[ $f == "$RC_BUILD/python/"* ]] || die "imported pyverbs from $f, not from $RC_BUILD"
}

if stamp_ok "$RC_STAMP" "$RC_WANT" && [[ -x $RC_BUILD/bin/run_tests.py ]]; then
	log "rdma-core $RDMA_CORE_VERSION: up to date"
else
	rm -f "$ENV_SH" "$RC_STAMP" "$PT_STAMP"
	ensure_deps
	log "rdma-core $RDMA_CORE_VERSION: extracting $(basename "$RC_ORIG")"
	fresh_extract "$RC_ORIG" "$RC_DIR"
	log "rdma-core: cmake"
	cmake -S "$RC_DIR" -B "$RC_BUILD" "${CMAKE_ARGS[@]}" >"$W/rdma-core.cmake.log" 2>&1 ||
		die "cmake failed, see $W/rdma-core.cmake.log"
	log "rdma-core: ninja -j$JOBS"
	ninja -C "$RC_BUILD" -j"$JOBS" >"$W/rdma-core.ninja.log" 2>&1 ||
		die "ninja failed, see $W/rdma-core.ninja.log"
	[[ -x $RC_BUILD/bin/run_tests.py ]] || die "$RC_BUILD/bin/run_tests.py missing after build"
	check_pyverbs
	printf '%s\n' "$RC_WANT" >"$RC_STAMP"
	log "rdma-core: built"
fi

# ---------------------------------------------------------------- perftest
if [[ -z $PT_DIR ]]; then
	log "no perftest in this lane"
elif stamp_ok "$PT_STAMP" "$PT_WANT" && [[ -x $PT_DIR/ib_write_bw ]]; then
	log "perftest $PERFTEST_VERSION: up to date"
else
	rm -f "$ENV_SH" "$PT_STAMP"
	ensure_deps
	log "perftest $PERFTEST_VERSION: extracting $(basename "$PT_ORIG")"
	fresh_extract "$PT_ORIG" "$PT_DIR"
	# (set -e does not apply inside a subshell tested with ||: chain with &&)
	(
		cd "$PT_DIR" &&
			{ [[ -x configure ]] || { log "perftest: autogen.sh" && ./autogen.sh; }; } &&
			log "perftest: configure against $RC_BUILD" &&
			./configure CPPFLAGS="$PT_CPPFLAGS" LDFLAGS="$PT_LDFLAGS" &&
			log "perftest: make -j$JOBS" &&
			make -j"$JOBS"
	) >"$W/perftest.build.log" 2>&1 || die "perftest build failed, see $W/perftest.build.log"
	grep -q '^#define HAVE_EX_ODP 1' "$PT_DIR/config.h" ||
		die "perftest configure did not detect extended ODP verbs (HAVE_EX_ODP), see $PT_DIR/config.log"
	[[ -x $PT_DIR/ib_write_bw ]] || die "$PT_DIR/ib_write_bw missing after build"
	# It must resolve rdma-core's libibverbs, not bookworm's. (Outputs are
	# captured first: `cmd | grep -q` trips pipefail when grep exits early.)
	out=$(ldd "$PT_DIR/ib_write_bw")
	grep -qF "$RC_BUILD/lib/libibverbs.so.1 " <<<"$out" ||
		die "$PT_DIR/ib_write_bw does not resolve $RC_BUILD/lib/libibverbs.so.1:
$(grep libibverbs <<<"$out")"
	out=$("$PT_DIR/ib_write_bw" --help 2>&1 || true)
	grep -q -- '--odp' <<<"$out" ||
		die "$PT_DIR/ib_write_bw --help lacks --odp (ODP support not detected by configure)"
	printf '%s\n' "$PT_WANT" >"$PT_STAMP"
	log "perftest: built"
fi

# ---------------------------------------------------------------- env.sh
if ! env_ok; then
	tmp=$ENV_SH.tmp
	{
		echo "# Written by tests/lanes/build-newer-userspace.sh ($PINS); do not edit."
		printf 'export NEWER_USERSPACE_PINS=%q\n' "$PINS"
		printf 'export %s=%q\n' "$RC_VAR" "$RC_BUILD"
		printf 'export RDMA_CORE_%s_PYTHONPATH=%q\n' "$LANE" "$RC_BUILD/python"
		[[ -z $PT_DIR ]] || printf 'export PERFTEST_25_DIR=%q\n' "$PT_DIR"
	} >"$tmp"
	mv -f "$tmp" "$ENV_SH"
fi
echo "$RC_VAR=$RC_BUILD"
[[ -z $PT_DIR ]] || echo "PERFTEST_25_DIR=$PT_DIR"
echo "ENV_SH=$ENV_SH"
