# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
# verdict.sh: sourced by run.sh and flake-rate.sh. How a perftest pair
# run (perf/perftest-pair.sh JSON ...) failed, from its logs.

# calibration_failed JSON RC: did perftest's clock calibration spoil this
# run? (exit 1 with "Can't produce a report" in bandwidth tools; inf/nan
# latencies and exit 0 in latency tools). Its cycles-per-usec estimate is
# a linear fit that TCG's timing noise sometimes spoils (r^2 < 0.9); the
# transfer itself completed.
calibration_failed() {
	grep -qs -e "Can't produce a report" -e 'Correlation coefficient' "$1".*.log &&
		{ [ "$2" != 0 ] || [ ! -s "$1" ] ||
			grep -qiE '(BW_average|MsgRate|t_typical|t_avg)"?[[:space:]]*:[[:space:]]*-?(inf|nan)' "$1"; }
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
