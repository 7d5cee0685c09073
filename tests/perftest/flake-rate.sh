#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# flake-rate.sh N TOOL [ARGS...]  (runs in the guest, rxe0 up)
#
# Run one perftest benchmark N times between two processes on rxe0
# (perf/perftest-pair.sh) and count how each run ended: ok, the send
# status 11/4 pair, a clock calibration complaint (either side, fatal or
# not), other failures. This is how the verdicts of
# tests/perftest/run.sh are justified, e.g. on stock rxe:
#
#   tests/vm/run-in-guest.sh --stock -- tests/perftest/flake-rate.sh 40 \
#       /usr/bin/ib_send_bw -s 65536 -n 100
set -u

here=$(cd "$(dirname "$0")" && pwd)
pair=$here/../../perf/perftest-pair.sh
# shellcheck source=SCRIPTDIR/verdict.sh
. "$here/verdict.sh"
[ $# -ge 2 ] || { echo "usage: $0 N TOOL [ARGS...]" >&2; exit 2; }
n=$1
shift
dir=$(mktemp -d)
ok=0 s114=0 calib=0 other=0
for ((i = 1; i <= n; i++)); do
	json=$dir/run$i.json
	rc=0
	timeout --kill-after=5 120 "$pair" "$json" "$@" 2>/dev/null || rc=$?
	if calibration_failed "$json" >/dev/null; then
		calib=$((calib + 1)) what=calibration
	elif [ "$rc" = 0 ]; then
		ok=$((ok + 1)) what=ok
	elif send_status_11_4 "$json"; then
		s114=$((s114 + 1)) what="status 11/4"
	else
		other=$((other + 1)) what="exit $rc"
		tail -n 3 "$json".*.log
	fi
	echo "# run $i: $what"
done
echo "flake-rate: $* ($RXE_ODP_STACK rxe): $n runs: $ok ok, $s114 status 11/4, $calib calibration failures, $other other failures"
