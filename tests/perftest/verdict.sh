# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
# verdict.sh: sourced by run.sh and flake-rate.sh. How a perftest pair
# run (perf/perftest-pair.sh JSON ...) failed, from its logs.

# calibration_failed JSON: did perftest's clock calibration fail in this
# run (either side)? If so, print what it said. Its cycles-per-usec
# estimate is a linear fit that TCG's timing noise now and then spoils
# (r^2 < 0.9); the transfer does not depend on it.
calibration_failed() {
	local r2
	r2=$(grep -hos 'Correlation coefficient r^2: [^ ]* < 0.9' "$1".*.log |
		head -n 1 | cut -d" " -f4-) || return 1
	[ -n "$r2" ] && echo "perftest's clock calibration failed (r^2 $r2)"
}

# send_status_11_4 JSON: the receiver's copy into its receive buffer
# failed (LOC_PROT_ERR, "Failed status 4") and the sender got a NAK
# (REM_OP_ERR, "Failed status 11"): how a SEND into an ODP receive buffer
# whose fault failed ends. Once thought a stock rxe flake; stock rxe did
# not show it in 80 pinned ib_send_bw runs (flake-rate.sh).
send_status_11_4() {
	grep -qs 'Failed status 11' "$1.client.log" &&
		grep -qs 'Failed status 4:' "$1.server.log"
}

# result_line NAME REASON CHECK NOTE: the result line of one run. REASON:
# why it failed (empty if it did not); CHECK: perftest_json.py --check's
# verdict on its report; NOTE: what calibration_failed printed for it.
# A report whose numbers a failed calibration spoilt (zero, inf or nan)
# is no verdict on the run; a missing one is.
result_line() {
	local name=$1 reason=$2 check=$3 note=$4
	case $check in
	ok) ;;
	zero* | inf/nan*) [ -n "$note" ] || reason=${reason:-$check} ;;
	*) reason=${reason:-$check} ;;
	esac
	if [ -n "$reason" ]; then
		echo "fail $name # $reason"
	elif [ "$check" != ok ]; then
		echo "ok $name # not measured: $note, so $check"
	else
		echo "ok $name"
	fi
}
