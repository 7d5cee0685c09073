#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# fault-trace.sh [--build DIR] [--mttcg] [-n PAGES]   (host)
#
# Where a device fault's time goes: one guest boot without debug options
# (run-in-guest.sh --bench) runs perf/out/first-touch (-n PAGES, default
# 256, one round) under ftrace's function_graph tracer, limited to rxe's
# three tasks and the fault path below them (FUNCS), with odp_mirror's
# trace events beside it, and perf/funcgraph.py prints the time of each
# function (the median and mean of its calls, with what it calls) and
# rxe's receiver in the cold and the warm WRITEs. The tracer adds a few
# microseconds to every traced call, the same in both builds: compare
# builds with this script, absolute times with perf/bench.sh first-touch.
# --build DIR loads our modules from another build tree; --mttcg gives
# each vCPU its own host thread. The trace and the table land in
# build/perf/fault-trace-DATE/.
#
# Internally: fault-trace.sh --guest PAGES runs in the guest.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
FUNCS=(rxe_requester rxe_completer rxe_receiver rxe_odp_mr_prefault
       rxe_odp_mr_copy odp_mirror_umem_prefault odp_mirror_umem_copy
       odp_walk odp_fault_wait odp_fault odp_copy_recorded hmm_range_fault
       handle_mm_fault mmput_async kvfree)

if [ "${1:-}" = --guest ]; then
	t=/sys/kernel/tracing
	mountpoint -q $t || mount -t tracefs nodev $t
	echo 0 >$t/tracing_on
	echo function_graph >$t/current_tracer
	echo 16384 >$t/buffer_size_kb
	: >$t/set_ftrace_filter
	for f in "${FUNCS[@]}"; do
		echo "$f" >>$t/set_ftrace_filter ||
			{ echo "fault-trace: $f cannot be traced" >&2; exit 1; }
	done
	echo funcgraph-abstime >$t/trace_options
	echo funcgraph-proc >$t/trace_options
	echo 1 >$t/events/odp_mirror/enable
	echo 1 >$t/tracing_on
	"$here/out/first-touch" -n "$2" -r 1 >/results/first-touch.txt
	echo 0 >$t/tracing_on
	cp $t/trace /results/trace.txt
	echo nop >$t/current_tracer
	exit 0
fi

pages=256 args=()
while [ $# -ge 1 ]; do
	case $1 in
	--build) args+=(--build "$2"); shift ;;
	--mttcg) args+=(--mttcg) ;;
	-n) pages=$2; shift ;;
	*) echo "usage: $0 [--build DIR] [--mttcg] [-n PAGES]" >&2; exit 2 ;;
	esac
	shift
done
make -s -C "$here"
out=$top/build/perf/fault-trace-$(date +%Y%m%d-%H%M%S)
mkdir -p "$out"
"$top/tests/vm/run-in-guest.sh" --bench "${args[@]}" --out "$out" -- \
	"$here/fault-trace.sh" --guest "$pages"
cat "$out/first-touch.txt"
python3 "$here/funcgraph.py" "$out/trace.txt" | tee "$out/table.txt"
