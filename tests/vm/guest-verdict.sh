#!/bin/bash
# guest-verdict.sh SUITE DIR STATUS: the result lines of one guest run of
# tests/vm/run-in-guest.sh (--out DIR, exit STATUS), on stdout:
#
#   ok|fail guest.SUITE.boot # why    the guest ran the command and
#                                     powered off; the dmesg gate passed
#   ok|fail guest.SUITE.unload # why  (our stack) rxe0 deleted, live
#                                     counts zero, both modules unloaded
set -u

suite=$1 dir=$2 rc=$3
case $rc in
0 | 123) echo "ok guest.$suite.boot" ;;
124) echo "fail guest.$suite.boot # guest hung or died, see $dir/console.log" ;;
125)
	why=$(head -n 1 "$dir/gate.txt" 2>/dev/null)
	case $why in
	*missing*) ;;
	*) why="kernel report in dmesg: $(sed -n 2p "$dir/gate.txt" 2>/dev/null)" ;;
	esac
	echo "fail guest.$suite.boot # $(cut -c1-200 <<<"$why")"
	;;
126) echo "fail guest.$suite.boot # the guest could not set up rxe0 or enter the directory, see $dir/console.log" ;;
*) echo "fail guest.$suite.boot # suite command exited $rc, see $dir/output.log" ;;
esac
grep -qx RXE_ODP_STACK=ours "$dir/env" 2>/dev/null || exit 0
case $rc in 124 | 126) exit 0 ;; esac
why=$(cat "$dir/unload" 2>/dev/null) || why="the guest left no unload verdict"
if [ "$why" = ok ]; then
	echo "ok guest.$suite.unload"
else
	echo "fail guest.$suite.unload # $why"
fi
