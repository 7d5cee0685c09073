#!/bin/bash
# demo.sh: the main job (make demo). Boots the guest with our rxe, creates
# rxe0, and moves data with perftest between two processes; prints a table.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
out=$top/build/demo
rm -rf "$out"
exec "$top/tests/vm/run-in-guest.sh" --out "$out" -- \
	"$top/perf/demo-guest.sh" /results
