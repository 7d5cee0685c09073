#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# bench.sh PROG [--mem SIZE] [--build DIR] [--mttcg | --icount]
#          [ARGS...]                                              (host)
#
# Build perf/out/PROG (make -C perf), boot the guest once with our rxe
# and without the tests' debug options (tests/vm/run-in-guest.sh --bench,
# 4 GiB unless --mem) and run PROG ARGS there;
# it prints its table. PROG is one of perf/*.c: mr-memory (registration
# time and kernel memory of untouched MRs, ODP and pinned), residency
# (kernel memory against resident size, explicit and implicit),
# first-touch (a fault's share of an RDMA WRITE) or unmap-cost (what a
# resident ODP MR adds to munmap and MADV_DONTNEED); see the
# header of each for its arguments. --build DIR loads our modules from
# another build tree (run-in-guest.sh --build); --mttcg gives each vCPU
# its own host thread (run-in-guest.sh --mttcg: in the round-robin TCG of
# other boots, a time that spans a wait for rxe's workers includes the
# vCPUs' turns, see README.md); --icount boots one vCPU whose time
# counts executed instructions (run-in-guest.sh --icount --smp 1, as
# abba.sh --icount): a time is what the guest executed, whatever the
# host does meanwhile. Guest logs land in
# build/perf/PROG-DATE/.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
if [ $# -lt 1 ] || [ ! -f "$here/$1.c" ]; then
	echo "usage: $0 PROG [--mem SIZE] [--build DIR] [--mttcg | --icount] [ARGS...]  (PROG: $(cd "$here" && ls ./*.c | sed 's|^\./||; s|\.c$||' | tr '\n' ' '))" >&2
	exit 2
fi
prog=$1
shift
mem=4G build=() tcg=()
while [ $# -ge 1 ]; do
	case $1 in
	--mem) mem=$2; shift ;;
	--build) build=(--build "$2"); shift ;;
	--mttcg) tcg=(--mttcg) ;;
	--icount) tcg=(--icount --smp 1) ;;
	*) break ;;
	esac
	shift
done
make -s -C "$here"
out=$top/build/perf/$prog-$(date +%Y%m%d-%H%M%S)
mkdir -p "$out"
start=$SECONDS
"$top/tests/vm/run-in-guest.sh" --bench --mem "$mem" "${build[@]}" "${tcg[@]}" --out "$out" -- \
	"$here/out/$prog" "$@"
echo "guest run: $((SECONDS - start)) s (logs in $out)"
