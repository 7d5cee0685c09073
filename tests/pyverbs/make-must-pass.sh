#!/bin/bash
# make-must-pass.sh LANE [RAW]: write tests/pyverbs/must-pass-LANE.txt, the
# tests that must pass on our rxe: every `ok` of a run of the lane on our
# modules (RAW, a run-lane.sh result file; without it, one guest boot
# makes one). Then prints what of that run tests/pyverbs/expected-LANE.txt
# does not cover: skips on no list, failures that are not listed.
# KERNEL=<name of kernels.matrix> for a lane that runs on another kernel
# (56: KERNEL=deb13-118).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
lane=$1
raw=${2:-}
if [ -z "$raw" ]; then
	out=$(mktemp -d)
	trap 'rm -rf "$out"' EXIT
	"$top/tests/vm/run-in-guest.sh" --quiet --timeout 1800 --out "$out" -- \
		"$here/run-lane.sh" "$lane" /results/raw.txt
	raw=$out/raw.txt
fi
eval "$("$top/scripts/kernel-env.sh")"
{
	echo "# pyverbs lane $lane: the tests that must pass on our rxe (every test that"
	echo "# passed on our modules, kernel $KERNEL_PKG_VERSION, ODP ones included)."
	echo "# Regenerate from a run on ours: ${KERNEL:+KERNEL=$KERNEL }tests/pyverbs/make-must-pass.sh $lane"
	grep '^ok ' "$raw" | cut -d' ' -f1,2 | sort
} >"$here/must-pass-$lane.txt"
echo "must-pass-$lane.txt: $(grep -c '^ok ' "$here/must-pass-$lane.txt") tests"
"$top/tests/check-results.py" "$raw" "$top/tests/expected-skips.txt" \
	"$here/must-pass-$lane.txt" "$here/expected-$lane.txt" | grep '^fail ' || true
