#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# run.sh [--stress] RESULTS [ITERATIONS]
#
# The ODP lifetime matrix (README.md), in the guest (tests/vm/run-in-guest.sh):
# every cell of teardown (tests/lifetime/out/teardown) runs ITERATIONS times
# (default 100; 1000 with --stress) and appends one line to RESULTS:
#
#   ok lifetime.<cell>
#   fail lifetime.<cell> # <reason>
#   skip lifetime.<cell> # <reason>
#
# A cell fails if any iteration fails or hangs (teardown's watchdog bounds
# each iteration to 90 s; the whole cell is bounded too), if it skips
# (teardown exits 77: no implicit ODP) while our rxe is loaded
# (RXE_ODP_EXPECT_ODP=1, tests/vm/run-in-guest.sh), if the kernel log
# gained a report during the cell (tests/vm/dmesg-gate.sh), or if odp_mirror's
# live counts (debugfs: umems, per_mm, entries, children of implicit
# umems) are not all back to 0 after it. The
# cells that unload modules check inside teardown that delete_module is
# refused (EWOULDBLOCK, what rmmod reports as "in use") while a context is
# open and succeeds once none is; after every cell the stack (odp_mirror,
# rdma_rxe from $RXE_ODP_BUILD, rxe0 on dummy0) is made whole again.
#
# Ends with a table: cell, iterations, result, seconds. Per-cell output and
# dmesg excerpts go to <RESULTS without .txt>.d/. Environment:
#   LIFETIME_RELOAD_ITERATIONS  iterations of the cells that reload the stack
#                               (linkdel, rmmod: about 1.2 s each under TCG);
#                               default ITERATIONS
#   LIFETIME_CELLS              space-separated cell names to run (default all)
#
# Exit status: 0 when every cell ran (whatever the results); 2 when nothing
# could run.
set -u

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
td=$here/out/teardown
gate=$top/tests/vm/dmesg-gate.sh
live=/sys/kernel/debug/odp_mirror/live

iterations=100
if [ "${1:-}" = --stress ]; then
	iterations=1000
	shift
fi
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	echo "usage: $0 [--stress] RESULTS [ITERATIONS]" >&2
	exit 2
fi
results=$1
iterations=${2:-$iterations}
reload_iterations=${LIFETIME_RELOAD_ITERATIONS:-$iterations}
if ! : >>"$results"; then
	echo "run.sh: cannot write $results" >&2
	exit 2
fi
if [ ! -x "$td" ]; then
	echo "run.sh: $td is not built (make -C tests/lifetime)" >&2
	exit 2
fi
logs=${results%.txt}.d
mkdir -p "$logs" || exit 2

# Cells: <prefix>.<end>.<load>; the prefix adds an option.
cells=()
for end in exit kill dereg close; do
	for load in idle traffic munmap mprotect; do
		cells+=("$end.$load")
	done
done
for end in exit kill close; do
	cells+=("fdpass.$end.traffic")
done
for end in exit kill dereg close; do
	for load in traffic munmap; do
		cells+=("implicit.$end.$load")
	done
done
for end in linkdel rmmod; do
	for load in idle traffic munmap mprotect; do
		cells+=("$end.$load")
	done
	cells+=("fdpass.$end.traffic" "implicit.$end.traffic")
done
if [ -n "${LIFETIME_CELLS:-}" ]; then
	read -r -a cells <<<"$LIFETIME_CELLS"
fi

# Exec is slow in the guest (its root is 9p under TCG): the per-cell
# bookkeeping below sticks to bash builtins where it can.

# The odp_mirror/live counts that are not zero, as "name value ..." in
# $counts (empty when all are; "no debugfs file" without it).
live_counts() {
	local k v
	counts="no $live"
	[ -r "$live" ] || return
	counts=""
	while read -r k v; do
		case $k in
		umems|per_mm|entries|children) [ "$v" = 0 ] || counts+="$k $v " ;;
		esac
	done <"$live"
}

# Wait (bounded) for the live counts to read zero: the last context of a
# cell can be released a moment after its process was reaped (a fault's
# mmput_async, then delayed_fput). Leaves the last counts in $counts.
wait_live_zero() {
	local i
	for ((i = 0; i < 100; i++)); do
		live_counts
		[ -z "$counts" ] && return
		sleep 0.1
	done
}

# rxe0's GID 1 is set (not all zero)?
gid_ready() {
	local g
	read -r g 2>/dev/null </sys/class/infiniband/rxe0/ports/1/gids/1 || return 1
	[ -n "$g" ] && [ "$g" != 0000:0000:0000:0000:0000:0000:0000:0000 ]
}

# Make the stack whole again after a cell (a failed unload cell may leave
# it half down). Prints what it had to do.
ensure_stack() {
	local i
	if [ ! -d /sys/module/odp_mirror ]; then
		echo "reloading odp_mirror"
		insmod "$RXE_ODP_BUILD/drivers/infiniband/core/odp_mirror.ko"
	fi
	if [ ! -d /sys/module/rdma_rxe ]; then
		echo "reloading rdma_rxe"
		insmod "$RXE_ODP_BUILD/drivers/infiniband/sw/rxe/rdma_rxe.ko"
	fi
	if [ ! -e /sys/class/infiniband/rxe0 ]; then
		echo "re-creating rxe0"
		rdma link add rxe0 type rxe netdev dummy0
	fi
	for ((i = 0; i < 100; i++)); do
		gid_ready && return 0
		sleep 0.1
	done
	echo "rxe0 has no GID 1"
	return 1
}

# Kernel log lines newer than printk time $1 (microseconds) into the
# array klines, and the newest time into klast. By time, not by count:
# the ring wraps within a long run.
kernel_lines_since() {
	local -a dm
	local i ts
	mapfile -t dm < <(dmesg)
	klast=$1
	for ((i = ${#dm[@]}; i > 0; i--)); do
		[[ ${dm[i - 1]} =~ ^\[\ *([0-9]+)\.([0-9]{6})\] ]] || continue
		ts=$((BASH_REMATCH[1] * 1000000 + 10#${BASH_REMATCH[2]}))
		[ "$ts" -le "$1" ] && break
		[ "$ts" -gt "$klast" ] && klast=$ts
	done
	klines=("${dm[@]:i}")
}
# the gate's own pattern: only a cell whose lines match runs the gate
# (for its whitelist)
report_re=$("$gate" --pattern)
klast=0

# run_cell CELL: one result line, one table row.
table=()
run_cell() {
	local cell=$1 end load n opts=() log=$logs/$1.log
	local t0 t1 secs rc status reason="" hung=0 w line summary=""
	IFS=. read -r -a parts <<<"$cell"
	case ${parts[0]} in
	fdpass) opts+=(--fdpass); end=${parts[1]}; load=${parts[2]} ;;
	implicit) opts+=(--implicit); end=${parts[1]}; load=${parts[2]} ;;
	*) end=${parts[0]}; load=${parts[1]} ;;
	esac
	n=$iterations
	case $end in linkdel|rmmod) n=$reload_iterations ;; esac

	t0=${EPOCHREALTIME/./}
	# Every iteration is bounded inside teardown (SIGALRM watchdog, 90 s,
	# naming the step it hung at); the cell as a whole by this deadline.
	# (its own process group, with its children, to be killed by id)
	setsid "$td" --end "$end" --load "$load" "${opts[@]}" -n "$n" \
		>"$log" 2>&1 &
	local pid=$!
	sleep $(((120 + n * 6) * ${RXE_ODP_TIME_SCALE:-1})) &
	local timer=$!
	wait -n -p w "$pid" "$timer"
	rc=$?
	if [ "$w" != "$pid" ]; then
		hung=1
		{
			echo "run.sh: cell still running after $(((120 + n * 6) * ${RXE_ODP_TIME_SCALE:-1})) s; kernel stacks:"
			for p in $(pgrep -g "$pid"); do
				echo "--- $p ($(cat /proc/"$p"/comm 2>/dev/null)) state $(awk '{print $3}' /proc/"$p"/stat 2>/dev/null)"
				cat /proc/"$p"/stack 2>/dev/null
			done
		} >>"$log"
		kill -KILL -- "-$pid"
		wait "$pid"
		rc=$?
	else
		kill "$timer" 2>/dev/null
		wait "$timer" 2>/dev/null
	fi
	t1=${EPOCHREALTIME/./}
	secs=$(((t1 - t0) / 100000))
	secs=$((secs / 10)).$((secs % 10))

	# teardown's verdict: its "FAIL ..." or "SKIP ..." line, its summary
	while IFS= read -r line; do
		case $line in
		FAIL*|SKIP*) [ -z "$reason" ] && reason=${line#SKIP } ;;
		*iterations\ in*) summary=$line ;;
		esac
	done <"$log"
	case $rc in
	0) status=ok reason="" ;;
	77) status=skip ;;
	*) status=fail; reason=${reason:-"teardown exited $rc"} ;;
	esac
	if [ "$status" = skip ] && [ "${RXE_ODP_EXPECT_ODP:-0}" = 1 ]; then
		status=fail reason="our rxe is loaded, yet: $reason"
	fi
	[ $hung = 1 ] && status=fail reason="hung: cell not done after $((120 + n * 6)) s"

	# Kernel reports during this cell, attributed to it.
	kernel_lines_since "$klast"
	w=0
	for line in "${klines[@]}"; do
		[[ $line =~ $report_re ]] && { w=1; break; }
	done
	if [ "$w" = 1 ]; then
		printf '%s\n' "${klines[@]}" >"$logs/$cell.dmesg"
		if ! "$gate" "$logs/$cell.dmesg" >>"$log" 2>&1; then
			status=fail
			reason="kernel report in dmesg, see $logs/$cell.dmesg; $reason"
		fi
	fi

	ensure_stack >>"$log" 2>&1 || { status=fail; reason="stack not restored; $reason"; }
	wait_live_zero
	if [ -n "$counts" ]; then
		status=fail
		reason="leak after the cell: ${counts% }; $reason"
	fi

	case $status in
	ok) echo "ok lifetime.$cell" ;;
	*) echo "$status lifetime.$cell # ${reason%; }" ;;
	esac >>"$results"
	echo "# lifetime.$cell: $status ${reason:+($reason) }[$secs s] $summary"
	printf -v line '%-34s %10s  %-5s %8s' "lifetime.$cell" "$n" "$status" "$secs"
	table+=("$line")
}

if ! ensure_stack >/dev/null 2>&1; then
	echo "run.sh: the RDMA stack is not up (RXE_ODP_BUILD=${RXE_ODP_BUILD:-unset})" >&2
	exit 2
fi
start=$EPOCHSECONDS
kernel_lines_since 0
for cell in "${cells[@]}"; do
	run_cell "$cell"
done

printf '%-34s %10s  %-5s %8s\n' cell iterations result seconds
printf '%s\n' "${table[@]}"
echo "# run.sh: ${#cells[@]} cells in $((EPOCHSECONDS - start)) s; results appended to $results"
exit 0
