#!/bin/bash
# check_results_test.sh: host test of tests/check-results.py and of the
# committed expectation lists, TAP on stdout.
set -u

here=$(cd "$(dirname "$0")" && pwd)
tests=$(cd "$here/.." && pwd)
chk=$tests/check-results.py
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# shellcheck source=tap.sh
. "$here/tap.sh"

# diag PREFIX TEXT: TEXT's lines as TAP diagnostics
diag() {
	local line
	[ -n "$2" ] || return 0
	while IFS= read -r line; do echo "# $1$line"; done <<<"$2"
}

# expect NAME WANT: the checker's output on $tmp/run.txt must be WANT.
expect() {
	tap_same "$1" "$2" \
		"$("$chk" "$tmp/run.txt" "$tmp/must.txt" "$tmp/expected.txt")"
}

printf '%s\n' 'ok l.odp_write' 'ok l.odp_read' >"$tmp/must.txt"
cat >"$tmp/expected.txt" <<'EOT'
## mlx5 hardware only
skip l.test_mlx5_* # *MLX5*
## environment: no free huge pages
skip l.huge # only * free 2 MiB pages
## fails on stock rxe too: resize is not checked
fail l.resize # AssertionError: not *
## a peer's rxe misplaces ODP data
fail l.peer.*.odp # * bad bytes*
EOT

printf '%s\n' 'ok l.odp_write' 'ok l.odp_read' 'skip l.test_mlx5_dc # not an MLX5 device' \
	'skip l.huge # only 3 free 2 MiB pages' 'fail l.resize # AssertionError: not raised' \
	'fail l.peer.write.odp # dst byte 0: expected 0x01 got 0x00 (7 bad bytes)' \
	'ok l.new' >"$tmp/run.txt"
expect all_expected 'ok l.odp_write
ok l.odp_read
skip l.test_mlx5_dc # not an MLX5 device [expected: mlx5 hardware only]
skip l.huge # only 3 free 2 MiB pages [expected: environment: no free huge pages]
skip l.resize # known failure: AssertionError: not raised [expected: fails on stock rxe too: resize is not checked]
skip l.peer.write.odp # known failure: dst byte 0: expected 0x01 got 0x00 (7 bad bytes) [expected: a peer'"'"'s rxe misplaces ODP data]
ok l.new'

printf '%s\n' 'skip l.odp_write # ODP is not supported - No ODP caps' \
	'skip l.xrc # Create XRCD is not supported' 'skip l.huge # no hugetlbfs' \
	'fail l.resize # AssertionError: 0 != 1' 'fail l.peer.read.odp # timeout' >"$tmp/run.txt"
expect unexpected 'fail l.odp_write # must pass on our rxe, skipped: ODP is not supported - No ODP caps
fail l.xrc # unexpected skip (on no list): Create XRCD is not supported
fail l.huge # unexpected skip message (listed: "only * free 2 MiB pages"): no hugetlbfs
fail l.resize # failure changed: "AssertionError: 0 != 1", listed: "AssertionError: not *"
fail l.peer.read.odp # failure changed: "timeout", listed: "* bad bytes*"
fail l.odp_read # must pass on our rxe, did not run ('"$tmp"'/must.txt:2)'

echo 'skip l.x # y' >"$tmp/bad.txt"
got=$("$chk" /dev/null "$tmp/bad.txt")
[ "$got" = "fail expectations # $tmp/bad.txt:1: skip line outside a \"## reason\" group" ]
tap_check list_needs_reason $?

# The committed lists: well-formed; every test that passes on stock rxe
# must pass on ours; every listed failure fails on stock with a message
# its glob matches.
for lane in 44 65; do
	must=$tests/pyverbs/must-pass-$lane.txt exp=$tests/pyverbs/expected-$lane.txt
	base=$tests/pyverbs/baseline-$lane.txt
	out=$("$chk" /dev/null "$must" "$exp" | grep -v '^fail .* # must pass on our rxe, did not run')
	diag '' "$out"
	tap_check "lists_$lane.well_formed" "$([ -z "$out" ]; echo $?)"
	out=$(grep '^ok ' "$base" | cut -d' ' -f2 | sort | comm -23 - <(grep '^ok ' "$must" | cut -d' ' -f2 | sort))
	diag 'passes on stock, not on the must-pass list: ' "$out"
	tap_check "lists_$lane.stock_ok_must_pass" "$([ -z "$out" ]; echo $?)"
	out=$(grep '^fail ' "$exp" | cut -d' ' -f2 | sort | comm -23 - <("$chk" "$base" "$exp" |
		sed -n 's/^skip \([^ ]*\) # known failure: .*/\1/p' | sort))
	diag 'listed, but not so in the stock baseline: ' "$out"
	tap_check "lists_$lane.fails_fail_on_stock" "$([ -z "$out" ]; echo $?)"
done
tap_done
