#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# run.sh RESULTS  (runs in the guest, rxe0 up: tests/vm/run-in-guest.sh)
#
# perftest smoke suite: short runs between two processes on rxe0
# (perf/perftest-pair.sh), each with pinned MRs and with --odp:
#
#   perftest 4.5 (Debian, /usr/bin): ib_write_bw, ib_read_bw, ib_send_bw,
#       ib_write_lat at 4096 and 65536 bytes
#   perftest 25.01 (tests/lanes/build-newer-userspace.sh): the same four
#       at 65536 bytes, and ib_atomic_bw (8 bytes); 4.5 refuses --odp with
#       atomics ("ODP does not support ATOMICS for now"), so it is not run
#       there
#
# Appends one line per run to RESULTS:
#
#   ok perftest.<version>.<tool>.<pinned|odp>.<size>
#   fail perftest.<version>.<tool>.<pinned|odp>.<size> # <reason>
#   skip perftest.25.01.<tool>.<mode>.<size> # <reason>  (lane not built)
#
# A run fails when either side exits non-zero or it times out; when its
# JSON report holds no positive bandwidth / message rate / latency,
# unless perftest's clock calibration failed (below); when an --odp run
# counted no ODP page fault on rxe0 (odp_page_faults, so it did not move
# its data through ODP) or a pinned run counted one. Nothing is retried.
#
# perftest converts cycles to time with a cycles-per-usec estimate, a
# linear fit of rdtsc against gettimeofday that it makes after (and, in
# the latency tools, before) the transfer. Under TCG its timing noise
# now and then spoils the fit (r^2 < 0.9, "Correlation coefficient" in
# the log): one --odp run of the 78 in three CI runs failed on it; none
# of 180 --odp runs of ib_write_bw, ib_write_lat and ib_send_bw in
# guests (tests/perftest/flake-rate.sh and the like, two or three guests
# side by side) did. Every run passes -F, so that perftest then reports
# 0 or inf instead of exiting 1 ("Can't produce a report"); exit 0 still
# means every iteration completed successfully. Such a run passes, its
# result line naming the failed calibration ("not measured"), and its
# table row shows what perftest printed. ib_send_bw's status 11 (sender)
# / status 2 (receiver) pair is how a SEND into an ODP receive buffer
# whose fault failed ends; stock rxe did not show it in 80 pinned runs
# (tests/perftest/flake-rate.sh: 4.5 at 64 KiB x40 and 4 KiB x20, 25.01
# at 64 KiB x20); its failure line names it. The JSON reports and both
# sides' logs are kept in RESULTS's directory
# (perftest.<version>.<tool>.<mode>.<size>.json*); a table of them is
# printed at the end. Runs use -n (iterations), not -D: with -D the
# report is computed while the send queue still drains, which spoils the
# calibration more often.
#
# Environment: RXE_ODP_PERFTEST_TIMEOUT (seconds per run, default 120).
# Exit status: 0 when every run was attempted (the caller counts results),
# 2 on usage errors.
set -u

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
pair=$top/perf/perftest-pair.sh
limit=${RXE_ODP_PERFTEST_TIMEOUT:-120}

if [ $# -ne 1 ]; then
	echo "usage: $0 RESULTS" >&2
	exit 2
fi
results=$1
if ! : >>"$results"; then
	echo "run.sh: cannot write $results" >&2
	exit 2
fi
dir=$(cd "$(dirname "$results")" && pwd)

v45=$(dpkg-query -W -f '${Version}' perftest 2>/dev/null)
v45=${v45%%+*}
v45=${v45:-4.5}

v25='' p25='' why25=''
if env_sh=$("$top/tests/lanes/build-newer-userspace.sh" --print-env 2>/dev/null); then
	# shellcheck source=/dev/null
	. "$env_sh"
	p25=$PERFTEST_25_DIR
	v25=${NEWER_USERSPACE_PINS##*perftest=}
	v25=${v25%%+*}
	v25=$(echo "$v25" | cut -d. -f1-2)
else
	why25='newer userspace lane not built (tests/lanes/build-newer-userspace.sh)'
fi

if ! ibv_devinfo -v -d rxe0 | grep -q ODP_SUPPORT; then
	echo "run.sh: rxe0 advertises no ODP; the --odp runs will fail"
fi

names=() jsons=() reasons=() notes=()
start=$SECONDS
# shellcheck source=SCRIPTDIR/verdict.sh
. "$here/verdict.sh"

# one VERSION TOOLPATH MODE SIZE ARGS...: one run; its name, JSON,
# failure reason (empty if it passed so far; the JSON report is checked
# later) and note go to the arrays.
one() {
	local ver=$1 tool=$2 mode=$3 size=$4
	shift 4
	local name base json rc=0 reason='' note='' t0=$SECONDS f0 f1 faults
	base=$(basename "$tool")
	name=perftest.$ver.$base.$mode.$size
	json=$dir/$name.json
	local args=(-F "$@")
	[ "$mode" = odp ] && args+=(--odp)
	rm -f "$json" "$json".*.log
	f0=$("$top/tests/vm/odp-faults.sh")
	timeout --kill-after=5 "$limit" "$pair" "$json" "$tool" "${args[@]}" \
		2>/dev/null || rc=$?
	f1=$("$top/tests/vm/odp-faults.sh")
	faults=$((${f1:-0} - ${f0:-0}))
	echo "# $name: exit $rc, $((SECONDS - t0)) s, $faults ODP page faults: $base ${args[*]}"
	if [ "$rc" != 0 ] && send_status_11_4 "$json"; then
		reason="status 11/4: the receiver's copy into its buffer failed (LOC_PROT_ERR), the sender got a NAK (REM_OP_ERR)"
	elif [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		reason="timed out after $limit s"
		dmesg | tail -n 20
	elif [ "$rc" != 0 ]; then
		reason="exit $rc: $(grep -hv -e '^ *$' -e '^---' "$json".*.log 2>/dev/null |
			grep -i -m1 -e fail -e error -e unable -e "can't" -e 'not supp' |
			tr -s ' \t' ' ' | sed 's/^ //' | cut -c1-100)"
	elif [ -z "$f1" ]; then
		reason="rxe0 has no odp_page_faults counter"
	elif [ "$mode" = odp ] && [ "$faults" -le 0 ]; then
		reason="no ODP page fault counted: the run did not move its data through ODP"
	elif [ "$mode" = pinned ] && [ "$faults" != 0 ]; then
		reason="pinned, yet $faults ODP page faults counted"
	fi
	note=$(calibration_failed "$json")
	[ -z "$reason" ] || tail -n 5 "$json".*.log 2>/dev/null
	names+=("$name") jsons+=("$json") reasons+=("$reason") notes+=("$note")
	return 0
}

for tool in ib_write_bw ib_read_bw ib_send_bw ib_write_lat; do
	for size in 4096 65536; do
		case $tool:$size in
		*_lat:4096) iters=100 ;;
		*_lat:*) iters=50 ;;
		*:4096) iters=500 ;;
		*) iters=100 ;;
		esac
		for mode in pinned odp; do
			one "$v45" "/usr/bin/$tool" "$mode" "$size" -s "$size" -n "$iters"
		done
	done
done

for tool in ib_write_bw ib_read_bw ib_send_bw ib_write_lat ib_atomic_bw; do
	case $tool in
	ib_atomic_bw) size=8 args=(-n 1000) ;;
	*_lat) size=65536 args=(-s 65536 -n 50) ;;
	*) size=65536 args=(-s 65536 -n 100) ;;
	esac
	for mode in pinned odp; do
		if [ -n "$p25" ]; then
			one "$v25" "$p25/$tool" "$mode" "$size" "${args[@]}"
		else
			echo "skip perftest.25.01.$tool.$mode.$size # $why25" >>"$results"
		fi
	done
done

# One python start for every check: it costs seconds under TCG.
mapfile -t checks < <("$top/perf/perftest_json.py" --check "${jsons[@]}")
reports=()
for i in "${!names[@]}"; do
	result_line "${names[$i]}" "${reasons[$i]}" "${checks[$i]:-no check}" \
		"${notes[$i]}" >>"$results"
	[ -f "${jsons[$i]}" ] && reports+=("${names[$i]#perftest.}=${jsons[$i]}")
done
grep '^fail perftest\.' "$results"
echo "# perftest suite: $((SECONDS - start)) s"
"$top/perf/perftest_json.py" "${reports[@]}"
exit 0
