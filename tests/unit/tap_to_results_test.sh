#!/bin/bash
# tap_to_results_test.sh: host test of tests/tap-to-results.sh, TAP on
# stdout: a failing case's line carries its assertion, its first differing
# byte and how it ended; skips keep their reason; a binary that died or
# reported fewer cases than planned adds `fail SUITE.run` with the cause.
set -u

here=$(cd "$(dirname "$0")" && pwd)
conv=$here/../tap-to-results.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# shellcheck source=tap.sh
. "$here/tap.sh"

# expect NAME TAPFILE STATUS WANT: the converted lines must be WANT.
expect() {
	tap_same "$1" "$4" "$("$conv" s "$2" "$3" 2>/dev/null)"
}

cat >"$tmp/run.tap" <<'EOT'
TAP version 13
1..4
# Starting 4 tests from 2 test cases.
#  RUN           odp.write.remote ...
#            OK  odp.write.remote
ok 1 odp.write.remote
#  RUN           odp.write.fault ...
# odp: byte 4096 is 0x00, want 0x5a
# odp: byte 4097 is 0x00, want 0x5b
# odp: 2 of 8192 bytes differ
# odp_semantics.c:211:fault:Expected 0 (0) != tu_check("odp", buf, want, len) (0)
# odp_semantics.c:211:fault:second log line
# fault: Test terminated by assertion
#          FAIL  odp.write.fault
not ok 2 odp.write.fault
#  RUN           huge.tlb ...
#      SKIP      no 2 MiB hugetlb pages
#            OK  huge.tlb
ok 3 huge.tlb # SKIP no 2 MiB hugetlb pages
#  RUN           global.crash ...
# crash: Test terminated unexpectedly by signal 11
#          FAIL  global.crash
not ok 4 global.crash
# FAILED: 2 / 4 tests passed.
EOT
expect cases "$tmp/run.tap" 1 'ok s.odp.write.remote
fail s.odp.write.fault # odp_semantics.c:211:fault:Expected 0 (0) != tu_check("odp", buf, want, len) (0); odp: byte 4096 is 0x00, want 0x5a; fault: Test terminated by assertion
skip s.huge.tlb # no 2 MiB hugetlb pages
fail s.global.crash # crash: Test terminated unexpectedly by signal 11'

head -n 8 "$tmp/run.tap" >"$tmp/died.tap"
expect died "$tmp/died.tap" 139 'ok s.odp.write.remote
fail s.run # exit status 139, plan 4, 1 results (killed by signal 11); last: odp: byte 4096 is 0x00, want 0x5a'

printf '1..0 # SKIP no RDMA device rxe0\n' >"$tmp/all.tap"
expect skip_all "$tmp/all.tap" 4 'skip s.all # no RDMA device rxe0'

tap_done
