#!/bin/bash
# perftest_verdict_test.sh: host test of tests/perftest/verdict.sh, TAP
# on stdout: what perftest's logs say of a run (a failed clock
# calibration, the send status 11/4 pair) and the result line each
# combination of failure, report check and calibration gives.
set -u

here=$(cd "$(dirname "$0")" && pwd)
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
# shellcheck source=tap.sh
. "$here/tap.sh"
# shellcheck source=SCRIPTDIR/../perftest/verdict.sh
. "$here/../perftest/verdict.sh"

# the head of a perftest 25.01 server log whose calibration failed
printf '%s\n' 'Correlation coefficient r^2: 0.767108 < 0.9' '' \
	'************************************' >"$d/calib.json.server.log"
echo ' 65536   50   9226.22   47756.87   15149.51' >"$d/calib.json.client.log"
tap_same calibration_failed "perftest's clock calibration failed (r^2 0.767108 < 0.9)" \
	"$(calibration_failed "$d/calib.json")"
echo ' 65536   50   9226.22   47756.87   15149.51' >"$d/clean.json.client.log"
calibration_failed "$d/clean.json" >/dev/null
tap_check calibration_clean "$([ $? = 1 ]; echo $?)" "a clean log was taken for a failed calibration"

echo ' Completion with error at client' >"$d/s114.json.client.log"
echo ' Failed status 11: wr_id 0 syndrom 0x89' >>"$d/s114.json.client.log"
echo ' Failed status 4: wr_id 0 syndrom 0x0' >"$d/s114.json.server.log"
send_status_11_4 "$d/s114.json"
tap_check send_status_11_4 $? "the status 11/4 pair was not recognised"
send_status_11_4 "$d/calib.json"
tap_check send_status_clean "$([ $? = 1 ]; echo $?)" "a clean run was taken for the status 11/4 pair"

note="perftest's clock calibration failed (r^2 0.5 < 0.9)"
tap_same line_ok 'ok r' "$(result_line r '' ok '')"
tap_same line_ok_calibration_complaint 'ok r' "$(result_line r '' ok "$note")"
tap_same line_failed 'fail r # timed out after 120 s' \
	"$(result_line r 'timed out after 120 s' ok '')"
tap_same line_failed_despite_calibration 'fail r # exit 1: x' \
	"$(result_line r 'exit 1: x' 'zero bandwidth in the report' "$note")"
tap_same line_bad_report 'fail r # zero bandwidth in the report' \
	"$(result_line r '' 'zero bandwidth in the report' '')"
tap_same line_not_measured "ok r # not measured: $note, so zero bandwidth in the report" \
	"$(result_line r '' 'zero bandwidth in the report' "$note")"
tap_same line_no_report 'fail r # no JSON report' "$(result_line r '' 'no JSON report' "$note")"
tap_same line_inf_not_measured "ok r # not measured: $note, so inf/nan in the report" \
	"$(result_line r '' 'inf/nan in the report' "$note")"
tap_done
