#!/bin/bash
# faults.sh RESULTS: fault injection aimed at our code, in a debug-kernel
# guest (tests/vm/run-in-guest.sh --debug; make check-debug).
#
# The workload is userspace/out/odp_exercise, one phase a run: reg, fault,
# prefetch, implicit, invalidate. Three injectors:
#
#   slab, page  failslab and fail_page_alloc, filtered by the stack: an
#               allocation fails only when a frame of its call stack lies
#               in one entry function of ours (require-start/-end: its
#               text, from /proc/kallsyms), whatever task runs it (the
#               caller, our fault workers, rxe's). For each entry and
#               phase, a run with a budget that fails nothing counts the
#               bytes allocated there; then the first, a middle and the
#               last allocation are failed, one run each ("space": the
#               bytes let through before the one that fails).
#   func        fail_function on each function of ours marked
#               ALLOW_ERROR_INJECTION, with the errno its callers must
#               handle; its calls counted likewise, then the 1st, 2nd, ...
#               call failed in turn (MAX_NTH at most), one run each.
#
# Each run must end with odp_exercise's status 0 (nothing failed) when
# the injection did not fire, 0 or 3 (clean errnos or error completions,
# every byte right) when it did; never 1 (wrong bytes, a success where a
# failure was due, a lost completion) or a timeout. After each run the
# odp_mirror live counts must return to zero; after each injector's runs,
# a kmemleak scan must find nothing new. The dmesg gate of the
# boot checks for KASAN, lockdep, DEBUG_VM and list reports.
#
# Results: one line per injector, entry and phase that allocated or
# called anything, and one per injector for kmemleak:
#   ok|fail debug.faults.<injector>.<entry>.<phase> # budget: space:status
#                                                      (* where it fired)
#   ok|fail debug.faults.<injector>.kmemleak
# Environment: MAX_NTH (default 4); FAULTS_INJECTORS, the injectors to
# run (default "slab page func"; make check-debug runs "slab page" and
# "func" in two guests side by side).
set -u

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
results=${1:?usage: faults.sh RESULTS}
max_nth=${MAX_NTH:-4}
injectors=" ${FAULTS_INJECTORS:-slab page func} "
dbg=/sys/kernel/debug
live=$dbg/odp_mirror/live
phases=(reg fault prefetch implicit invalidate)
huge=1000000000

# The entry points whose dynamic extent the slab and page injectors aim
# at: registration, the fault path on both sides of the fault work,
# prefetch, implicit children, and rxe's ODP glue.
entries=(
	odp_mirror_umem_get odp_mirror_umem_get_implicit odp_fault_wait
	odp_fault_work_fn odp_implicit_walk odp_implicit_reclaim
	odp_mirror_umem_prefetch rxe_odp_mr_init_user rxe_odp_mr_copy
	rxe_odp_advise_mr rxe_odp_prefetch_work
)
# fail_function targets and the errno each returns (as in their
# kernel-doc: what their callers must already handle)
declare -A func_errno=(
	[odp_per_mm_get]=-12 [odp_umem_insert]=-12 [odp_mirror_umem_get]=-12
	[odp_mirror_umem_get_implicit]=-12 [odp_fault]=-14 [odp_fault_wait]=-4
	[odp_mirror_umem_prefetch]=-12 [odp_implicit_walk]=-12
	[rxe_odp_mr_init_user]=-12 [rxe_odp_mr_copy]=-14
	[rxe_odp_advise_mr]=-12
)

exercise=("$top/userspace/out/odp_exercise")
if env65=$("$top/tests/lanes/build-newer-userspace.sh" --print-env 2>/dev/null); then
	# shellcheck source=/dev/null
	. "$env65"
	# ibv_advise_mr needs rdma-core 65's rxe provider (same ABI)
	exercise=(env "LD_LIBRARY_PATH=$RDMA_CORE_65_DIR/lib" "${exercise[@]}")
fi

log=$(dirname "$results")/faults.log
mkfifo /run/faults-pause 2>/dev/null
pause() { read -rt "$1" <>/run/faults-pause; }

# text_range FUNC: "start end" of FUNC's text: from its address to the
# next text symbol's (kallsyms' fixed-width addresses sort as text).
text_range() {
	grep -E '^[0-9a-f]+ [tT] ' /proc/kallsyms | sort |
		awk -v f="$1" 'found { print "0x" s, "0x" $1; exit }
			       $3 == f { s = $1; found = 1 }
			       END { if (!found) exit 1 }'
}

# live_zero: odp_mirror's live counts return to zero within 10 s.
live_zero() {
	local i k v bad
	for ((i = 0; i < 100; i++)); do
		bad=
		while read -r k v; do
			case $k in
			umems|entries|per_mm|children) [ "$v" = 0 ] || bad+="$k $v " ;;
			esac
		done <"$live"
		[ -z "$bad" ] && return 0
		pause 0.1
	done
	echo "$bad"
	return 1
}

# kmemleak_new: print what a scan finds that was not reported before.
kmemleak_new() {
	# an object is reported once it is 5 s old and unreferenced in two
	# scans in a row; stale pointers on idle kworker stacks would hide
	# it (the workload's tasks have exited)
	echo stack=off >"$dbg/kmemleak"
	pause 6
	echo scan >"$dbg/kmemleak"
	echo scan >"$dbg/kmemleak"
	cat "$dbg/kmemleak"
	echo clear >"$dbg/kmemleak"
}

# setup_attr DIR: the common knobs of an injector; fires nothing yet.
setup_attr() {
	echo 0 >"$1/verbose"
	echo 0 >"$1/times"
	echo 100 >"$1/probability"
	echo 1 >"$1/interval"
	echo 0 >"$1/space"
	echo N >"$1/task-filter"
}

# run_once PHASE: odp_exercise PHASE, bounded; prints its status.
run_once() {
	local rc=0
	timeout 600 "${exercise[@]}" "$1" >>"$log" 2>&1 || rc=$?
	echo "$rc"
}

# judge DIR PHASE SPACE: one armed run of PHASE; prints "fired rc" and
# returns 1 on a verdict that fails.
judge() {
	local dir=$1 phase=$2 space=$3 rc fired bad
	echo "$space" >"$dir/space"
	echo 1 >"$dir/times"
	echo "== ${dir##*/} $phase space $space" >>"$log"
	rc=$(run_once "$phase")
	fired=$([ "$(cat "$dir/times")" = 0 ] && echo 1 || echo 0)
	echo 0 >"$dir/times"
	note="$note ${space}:${rc}$([ "$fired" = 1 ] && echo '*')"
	if [ "$rc" != 0 ] && { [ "$fired" = 0 ] || [ "$rc" != 3 ]; }; then
		why+="space $space: odp_exercise $phase exited $rc (fired $fired); "
		return 1
	fi
	if ! bad=$(live_zero); then
		why+="space $space: live counts $bad; "
		return 1
	fi
	return 0
}

# consumed DIR PHASE: the budget that a run of PHASE uses up with nothing
# failed (bytes for slab and page, calls for func).
consumed() {
	local dir=$1 phase=$2 rc
	echo "$huge" >"$dir/space"
	echo 1 >"$dir/times"
	rc=$(run_once "$phase")
	echo 0 >"$dir/times"
	echo "$((huge - $(cat "$dir/space"))) $rc"
}

# spaces UNIT TOTAL: the budgets to fail at: for bytes the first, a
# middle and the last allocation; for calls the 1st, 2nd, ... (MAX_NTH).
spaces() {
	if [ "$1" = bytes ]; then
		echo 0 $(($2 / 2)) $(($2 - 1))
	else
		seq 0 $(( ($2 < max_nth ? $2 : max_nth) - 1 ))
	fi
}

# inject DIR NAME UNIT: per phase, what an unarmed run consumes (UNIT:
# bytes or calls), then one armed run per budget of spaces(); a result
# line per phase that consumed anything.
inject() {
	local dir=$1 name=$2 unit=$3 phase total rc space
	for phase in "${phases[@]}"; do
		note='' why=''
		read -r total rc < <(consumed "$dir" "$phase")
		if [ "$rc" != 0 ]; then
			why="unarmed run exited $rc; "
		elif [ "$total" -gt 0 ]; then
			note=" $total $unit:"
			for space in $(spaces "$unit" "$total"); do
				judge "$dir" "$phase" "$space" || break
			done
		else
			# nothing allocated or called there in this phase
			continue
		fi
		record "$name.$phase"
	done
}

# record NAME: the verdict of one injector/entry/phase.
record() {
	if [ -n "$why" ]; then
		echo "fail debug.faults.$1 # ${why% }" >>"$results"
	else
		echo "ok debug.faults.$1 #$note" >>"$results"
	fi
}

# leaks INJECTOR: what kmemleak finds after an injector's runs (a scan
# takes long under KASAN: one per injector).
leaks() {
	local found
	found=$(kmemleak_new)
	if [ -n "$found" ]; then
		echo "$found" >>"$log"
		echo "fail debug.faults.$1.kmemleak # $(grep -c 'unreferenced object' <<<"$found") new leaks, see faults.log" >>"$results"
	else
		echo "ok debug.faults.$1.kmemleak" >>"$results"
	fi
}

for inj in slab page; do
	[[ $injectors == *" $inj "* ]] || continue
	dir=$dbg/failslab
	[ "$inj" = slab ] || dir=$dbg/fail_page_alloc
	setup_attr "$dir"
	echo N >"$dir/ignore-gfp-wait"
	if [ "$inj" = page ]; then
		echo N >"$dir/ignore-gfp-highmem"
		echo 0 >"$dir/min-order"
	fi
	echo 32 >"$dir/stacktrace-depth"
	for entry in "${entries[@]}"; do
		if ! range=$(text_range "$entry"); then
			echo "fail debug.faults.$inj.$entry # not in /proc/kallsyms" >>"$results"
			continue
		fi
		read -r start end <<<"$range"
		echo "$start" >"$dir/require-start"
		echo "$end" >"$dir/require-end"
		inject "$dir" "$inj.$entry" bytes
	done
	echo 0 >"$dir/require-start"
	echo 0 >"$dir/require-end"
	leaks "$inj"
done

[[ $injectors == *" func "* ]] || exit 0
dir=$dbg/fail_function
setup_attr "$dir"
for fn in "${!func_errno[@]}"; do
	if ! echo "$fn" >"$dir/inject" 2>>"$log"; then
		echo "fail debug.faults.func.$fn # not injectable (ALLOW_ERROR_INJECTION?)" >>"$results"
		continue
	fi
	printf '%#x\n' "$(( ${func_errno[$fn]} & 0xffffffffffffffff ))" >"$dir/$fn/retval"
	inject "$dir" "func.$fn" calls
	echo "!$fn" >"$dir/inject"
done
leaks func
