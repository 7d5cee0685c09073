#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# run.sh WORK RESULTS: the compat suite of make check. For every kernel of
# kernels.matrix but the default (which the other suites test in full):
#
#   compat.NAME.fetch   Debian still serves its packages (a skip, naming
#                       the kernel, when it no longer does)
#   compat.NAME.build   our modules build against its headers with W=1 and
#                       not one compiler or modpost warning (modpost also
#                       proves every symbol we use is exported there)
#   compat.NAME.*       the guest boots it with our modules and runs
#                       tests/compat/smoke.sh (result names prefixed with
#                       compat.NAME.), then guest.compat.NAME.boot/unload
#
# Appends result lines to RESULTS; logs and guest runs go to WORK/NAME/.
# COMPAT_KERNELS (names, space-separated) narrows the run.
# Exit status: 0 when it ran (whatever the results), 2 on usage errors.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
[ $# -eq 2 ] || { echo "usage: $0 WORK RESULTS" >&2; exit 2; }
work=$1
results=$2
rm -rf "$work"
mkdir -p "$work" "$top/build"

result() { echo "$*" >>"$results"; }

one_kernel() {
	local name=$1 w=$work/$1 rc=0 n
	mkdir -p "$w"
	"$top/scripts/fetch-kernel.sh" "$name" >"$w/fetch.log" 2>&1 || rc=$?
	case $rc in
	0) result "ok compat.$name.fetch" ;;
	3)
		result "skip compat.$name.fetch # Debian no longer serves kernel $name: $(grep -m1 'Versions on offer' "$w/fetch.log" | sed 's/^ *//')"
		return
		;;
	*)
		result "fail compat.$name.fetch # exit $rc, see $w/fetch.log"
		return
		;;
	esac

	rc=0
	"$top/scripts/build-modules.sh" "$name" >"$w/build.log" 2>&1 || rc=$?
	n=$(grep -c -E 'warning:|WARNING:' "$w/build.log")
	if [ "$rc" != 0 ]; then
		result "fail compat.$name.build # exit $rc: $(grep -m1 -E 'error|ERROR|does not apply' "$w/build.log" | cut -c1-160)"
		return
	elif [ "$n" != 0 ]; then
		result "fail compat.$name.build # $n warnings: $(grep -m1 -E 'warning:|WARNING:' "$w/build.log" | cut -c1-160)"
	else
		result "ok compat.$name.build"
	fi

	rc=0
	"$top/tests/vm/run-in-guest.sh" --kernel "$name" --quiet \
		--timeout 600 --out "$w/guest" -- \
		"$here/smoke.sh" /results/results.txt >"$w/guest.log" 2>&1 || rc=$?
	if [ -s "$w/guest/results.txt" ]; then
		sed "s/^\(ok\|fail\|skip\) /&compat.$name./" "$w/guest/results.txt" >>"$results"
	else
		result "fail compat.$name.results # the guest reported no test results, see $w/guest.log"
	fi
	"$top/tests/vm/guest-verdict.sh" "compat.$name" "$w/guest" "$rc" >>"$results"
}

if ! flock "$top/build/userspace.lock" make -s -C "$top/userspace" tests >"$work/userspace.log" 2>&1 ||
   ! make -s -C "$top/tests/lifetime" >>"$work/userspace.log" 2>&1; then
	result "fail compat.userspace # see $work/userspace.log"
	exit 0
fi
for name in ${COMPAT_KERNELS:-$("$top/scripts/kernel-env.sh" --list | tail -n +2)}; do
	start=$SECONDS
	one_kernel "$name"
	echo "compat: $name done in $((SECONDS - start)) s"
done
exit 0
