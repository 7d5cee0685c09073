#!/bin/bash
# make-baseline.sh LANE: run a pyverbs lane on Debian's stock rdma_rxe in
# the guest and write tests/pyverbs/baseline-LANE.txt, the reference that
# compare-baseline.py holds our rxe to. Needs `make kernel` (no modules).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
lane=$1
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

"$top/tests/vm/run-in-guest.sh" --stock --quiet --out "$out" -- \
	"$here/run-lane.sh" "$lane" /results/results.txt
eval "$("$top/scripts/kernel-env.sh")"
{
	echo "# pyverbs lane $lane on Debian's stock rdma_rxe, kernel $KERNEL_PKG_VERSION"
	echo "# regenerate with tests/pyverbs/make-baseline.sh $lane"
	sort -k2,2 "$out/results.txt"
} >"$here/baseline-$lane.txt"
awk '!/^#/ {n[$1]++} END {for (s in n) print s, n[s]}' "$here/baseline-$lane.txt"
