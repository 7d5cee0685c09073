#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# mr-memory.sh [--mem SIZE] [MR-MEMORY ARGS...]   (host)
#
# Build perf/out/mr-memory (make -C perf), boot the guest once with our rxe
# (tests/vm/run-in-guest.sh, 4 GiB unless --mem) and run it there: time and
# kernel memory (delta Slab + VmallocUsed) to register and deregister
# untouched 1 MiB, 1 GiB and 64 GiB MRs, explicit ODP and pinned (pinned
# 64 GiB is skipped). Arguments after the options go to mr-memory (see the
# header of perf/mr-memory.c: -r REPS, -s SIZES, -m MODES, -v). Guest logs
# land in build/perf/mr-memory-DATE/.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
mem=4G
if [ "${1:-}" = --mem ]; then
	mem=$2
	shift 2
fi
make -s -C "$here"
out=$top/build/perf/mr-memory-$(date +%Y%m%d-%H%M%S)
mkdir -p "$out"
start=$SECONDS
"$top/tests/vm/run-in-guest.sh" --mem "$mem" --out "$out" -- \
	"$here/out/mr-memory" "$@"
echo "guest run: $((SECONDS - start)) s (logs in $out)"
