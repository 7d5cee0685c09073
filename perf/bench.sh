#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# bench.sh PROG [--mem SIZE] [ARGS...]   (host)
#
# Build perf/out/PROG (make -C perf), boot the guest once with our rxe
# (tests/vm/run-in-guest.sh, 4 GiB unless --mem) and run PROG ARGS there;
# it prints its table. PROG is one of perf/*.c: mr-memory (registration
# time and kernel memory of untouched MRs, ODP and pinned), residency
# (kernel memory against resident size, explicit and implicit) or
# first-touch (a fault's share of an RDMA WRITE); see the
# header of each for its arguments. Guest logs land in
# build/perf/PROG-DATE/.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
if [ $# -lt 1 ] || [ ! -f "$here/$1.c" ]; then
	echo "usage: $0 PROG [--mem SIZE] [ARGS...]  (PROG: $(cd "$here" && ls ./*.c | sed 's|^\./||; s|\.c$||' | tr '\n' ' '))" >&2
	exit 2
fi
prog=$1
shift
mem=4G
if [ "${1:-}" = --mem ]; then
	mem=$2
	shift 2
fi
make -s -C "$here"
out=$top/build/perf/$prog-$(date +%Y%m%d-%H%M%S)
mkdir -p "$out"
start=$SECONDS
"$top/tests/vm/run-in-guest.sh" --mem "$mem" --out "$out" -- \
	"$here/out/$prog" "$@"
echo "guest run: $((SECONDS - start)) s (logs in $out)"
