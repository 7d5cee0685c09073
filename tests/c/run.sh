#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# run.sh RESULTS [TEST...]
#
# Run the C tests built from tests/c/*.c (all of them, or the TEST names
# given) and append one line per test case to RESULTS:
#
#   ok <suite>.<test>
#   fail <suite>.<test> # <assertion>; <first differing byte>; <how it ended>
#   skip <suite>.<test> # <reason>
#
# <suite> is the binary's name, <test> the kselftest case name
# (fixture.variant.test); the reasons come from the case's own diagnostics
# (tests/tap-to-results.sh). A binary that dies, times out or reports
# fewer cases than it planned adds `fail <suite>.run # <exit status...>`;
# one that skips as a whole (plan 1..0) adds `skip <suite>.all # <reason>`.
# Under tests/vm/run-in-guest.sh with our modules, RXE_ODP_EXPECT_ODP=1:
# a test that finds an ODP capability of our rxe missing must fail; make
# check accepts only the environment skips of tests/expected-skips.txt. The raw TAP and the
# tests' diagnostics go to stdout. Meant to run in the guest
# (tests/vm/run-in-guest.sh); build first with `make -C userspace`.
#
# Environment: RXE_ODP_C_TESTS (binary directory, default
# userspace/out/tests), RXE_ODP_C_TIMEOUT (seconds per binary, default 600);
# RXE_ODP_DEV, RXE_ODP_GID_IDX and RXE_ODP_EXPECT_ODP are read by the
# tests themselves.
#
# Exit status: 0 when every binary ran, whatever the results (the caller
# counts them); 2 when nothing could run (usage, RESULTS not writable, a
# test not built).
set -u

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
bindir=${RXE_ODP_C_TESTS:-$top/userspace/out/tests}
limit=${RXE_ODP_C_TIMEOUT:-600}

if [ $# -lt 1 ]; then
	echo "usage: $0 RESULTS [TEST...]" >&2
	exit 2
fi
results=$1
shift
if ! : >>"$results"; then
	echo "run.sh: cannot write $results" >&2
	exit 2
fi

if [ $# -gt 0 ]; then
	names=("$@")
else
	names=()
	for src in "$here"/*.c; do
		[ -e "$src" ] || continue
		name=${src##*/}
		names+=("${name%.c}")
	done
fi
if [ ${#names[@]} -eq 0 ]; then
	echo "run.sh: no tests in $here" >&2
	exit 2
fi
for name in "${names[@]}"; do
	if [ ! -x "$bindir/$name" ]; then
		echo "run.sh: $bindir/$name is not built (make -C userspace)" >&2
		exit 2
	fi
done

tap=$(mktemp) || exit 2
trap 'rm -f "$tap"' EXIT
n_ok=0 n_fail=0 n_skip=0

# tap_to_results SUITE TAPFILE STATUS: append its lines, count them.
tap_to_results() {
	local line
	while IFS= read -r line; do
		echo "$line" >>"$results"
		case $line in
		ok\ *) n_ok=$((n_ok + 1)) ;;
		fail\ *) n_fail=$((n_fail + 1)) ;;
		skip\ *) n_skip=$((n_skip + 1)) ;;
		esac
	done < <("$here/../tap-to-results.sh" "$@")
}

for name in "${names[@]}"; do
	echo "# run.sh: $bindir/$name"
	start=$SECONDS
	timeout --kill-after=10 "$limit" "$bindir/$name" >"$tap" 2>&1
	status=$?
	cat "$tap"
	echo "# run.sh: $name took $((SECONDS - start)) s"
	tap_to_results "$name" "$tap" "$status"
done

echo "# run.sh: $n_ok ok, $n_fail failed, $n_skip skipped; results appended to $results"
exit 0
