#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# run.sh WORK RESULTS   (host; boots the guest once)
#
# The DKMS package as a user installs it, in scratch trees under WORK:
# scripts/dkms-source.sh writes the source tree, the real dkms (Debian's
# package) adds, builds and installs it for the default kernel against its
# headers, taking rxe's sources from Debian's linux-source tarball (from
# the cached .deb, as /usr/src/linux-source-6.12.tar.xz would be); then the
# guest loads the modules dkms installed into updates/dkms and runs two C
# test binaries on them. Appends to RESULTS:
#
#   ok|fail dkms.install      dkms add + build + install succeeded
#   ok|fail dkms.refuses_7x   dkms install for a 7.x kernel (upstream rxe
#                             has ODP there) refuses: BUILD_EXCLUSIVE,
#                             exit 77, nothing installed
#   ok|fail dkms.modules      both modules in <kver>/updates/dkms, for <kver>
#   ok|fail dkms.<test>...    the C tests, on the DKMS-built modules
#   ok|fail guest.dkms.boot   the guest's exit and dmesg gate
#   ok|fail guest.dkms.unload rxe0 deleted, both modules unloaded after
#                             the tests (tests/vm/guest-verdict.sh)
#   ok|fail dkms.deb13.install  the same with Debian 13's own dkms and gcc
#                             (scripts/toolchain-chroot.sh) for Debian 13's
#                             6.12.118 (deb13-118; the compat suite boots
#                             that kernel with our modules)
#   ok|fail dkms.deb13.modules  both in its updates/dkms, for its kernel
#
# Exit status: 0 when it ran (whatever the results), 2 on usage errors.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
eval "$("$top/scripts/kernel-env.sh")"
[ $# -eq 2 ] || { echo "usage: $0 WORK RESULTS" >&2; exit 2; }
work=$1
results=$2
cache=${RXE_ODP_CACHE:-$HOME/.cache/rxe-odp}
kver=$KVER
kdir=$cache/$kver/root/usr/src/linux-headers-$kver
series=$(echo "$KERNEL_ABI" | cut -d. -f1,2)

rm -rf "$work"
mkdir -p "$work"/{src,tree,inst/"$kver",usr,modules}
log=$work/dkms.log
dkms_opts=(--dkmstree "$work/tree" --sourcetree "$work/src"
	   --installtree "$work/inst" -k "$kver" --kernelsourcedir "$kdir")

installed() {
	local src version
	src=$("$top/scripts/dkms-source.sh" "$work/src") || return 1
	version=${src##*-}
	dpkg-deb --fsys-tarfile "$cache/debs/linux-source-${series}_${KERNEL_PKG_VERSION}_all.deb" |
		tar -x -C "$work/usr" "./usr/src/linux-source-$series.tar.xz" ||
		return 1
	export RXE_ODP_LINUX_SOURCE=$work/usr/usr/src/linux-source-$series.tar.xz
	# --no-depmod: the scratch install tree holds only our modules
	dkms add "rxe-odp/$version" "${dkms_opts[@]}" &&
		dkms build "rxe-odp/$version" "${dkms_opts[@]}" &&
		dkms install --no-depmod "rxe-odp/$version" "${dkms_opts[@]}"
}

if installed >"$log" 2>&1; then
	echo "ok dkms.install" >>"$results"
else
	tail -n 20 "$log"
	echo "fail dkms.install # see $log" >>"$results"
	exit 0
fi

# What dkms's kernel hook does when trixie-backports' 7.x arrives
newer=7.3.4+deb13-amd64
rc=0
dkms install "rxe-odp/$(sed -n 's/^PACKAGE_VERSION="\(.*\)"$/\1/p' "$top/dkms.conf")" \
	--dkmstree "$work/tree" --sourcetree "$work/src" \
	--installtree "$work/inst" -k "$newer" \
	--kernelsourcedir "$work/no-headers" >"$work/refusal.log" 2>&1 || rc=$?
if [ "$rc" = 77 ] && grep -q BUILD_EXCLUSIVE "$work/refusal.log" &&
   [ ! -e "$work/inst/$newer" ]; then
	echo "ok dkms.refuses_7x" >>"$results"
else
	echo "fail dkms.refuses_7x # dkms install -k $newer exited $rc, see $work/refusal.log" >>"$results"
fi

# The installed modules, laid out as a Kbuild tree for the guest.
upd=$work/inst/$kver/updates/dkms
why=""
for m in drivers/infiniband/core/odp_mirror drivers/infiniband/sw/rxe/rdma_rxe; do
	ko=$upd/${m##*/}.ko
	if [ ! -f "$ko" ]; then
		why+="${ko##*/} not installed; "
		continue
	fi
	case $(modinfo -F vermagic "$ko") in
	"$kver "*) ;;
	*) why+="${ko##*/} vermagic $(modinfo -F vermagic "$ko"); " ;;
	esac
	mkdir -p "$work/modules/${m%/*}"
	cp "$ko" "$work/modules/$m.ko"
done
if [ -n "$why" ]; then
	echo "fail dkms.modules # ${why%; }" >>"$results"
	exit 0
fi
echo "ok dkms.modules" >>"$results"

mkdir -p "$top/build"
flock "$top/build/userspace.lock" make -s -C "$top/userspace" tests || {
	echo "fail dkms.userspace # userspace did not build" >>"$results"
	exit 0
}
# Debian 13's dkms (3.2) and gcc-14, for a Debian 13 kernel, as on such a
# machine. In a subshell: it has its own kernel-env.
(
	eval "$("$top/scripts/kernel-env.sh" deb13-118)"
	"$top/scripts/fetch-kernel.sh" deb13-118 >/dev/null || exit 1
	w=$work/deb13
	mkdir -p "$w"/{src,tree,inst/"$KVER",usr}
	src=$("$top/scripts/dkms-source.sh" "$w/src") || exit 1
	dpkg-deb --fsys-tarfile "$cache/debs/linux-source-6.12_${KERNEL_PKG_VERSION}_all.deb" |
		tar -x -C "$w/usr" ./usr/src/linux-source-6.12.tar.xz || exit 1
	opts=(--dkmstree "$w/tree" --sourcetree "$w/src" --installtree "$w/inst"
	      -k "$KVER" --kernelsourcedir "$cache/$KVER/root/usr/src/linux-headers-$KVER")
	# shellcheck disable=SC2016 # expanded by the chroot's shell
	"$top/scripts/toolchain-chroot.sh" deb13-118 "$w" "$cache" -- \
		env RXE_ODP_LINUX_SOURCE="$w/usr/usr/src/linux-source-6.12.tar.xz" \
		sh -ec 'dkms --version; dkms add "$@" && dkms build "$@" &&
			dkms install --no-depmod "$@"' sh "rxe-odp/${src##*-}" "${opts[@]}"
) >"$work/deb13.log" 2>&1
deb13_rc=$?
deb13_kver=$("$top/scripts/kernel-env.sh" --kver deb13-118)
if [ "$deb13_rc" = 0 ]; then
	echo "ok dkms.deb13.install" >>"$results"
	why=""
	for m in odp_mirror rdma_rxe; do
		ko=$work/deb13/inst/$deb13_kver/updates/dkms/$m.ko
		case $(modinfo -F vermagic "$ko" 2>/dev/null) in
		"$deb13_kver "*) ;;
		*) why+="$m.ko missing or for another kernel; " ;;
		esac
	done
	if [ -z "$why" ]; then
		echo "ok dkms.deb13.modules" >>"$results"
	else
		echo "fail dkms.deb13.modules # ${why%; }" >>"$results"
	fi
else
	echo "fail dkms.deb13.install # exit $deb13_rc, see $work/deb13.log" >>"$results"
fi

rc=0
"$top/tests/vm/run-in-guest.sh" --quiet --build "$work/modules" \
	--out "$work/guest" -- "$top/tests/c/run.sh" /results/results.txt \
	pinned_data odp_implicit || rc=$?
if [ -s "$work/guest/results.txt" ]; then
	sed 's/^\(ok\|fail\|skip\) /&dkms./' "$work/guest/results.txt" >>"$results"
else
	echo "fail dkms.results # the guest reported no test results" >>"$results"
fi
"$top/tests/vm/guest-verdict.sh" dkms "$work/guest" "$rc" >>"$results"
exit 0
