#!/bin/bash
# tap-to-results.sh SUITE: read kselftest TAP on stdin, echo it to stderr,
# and print one result line per test case on stdout:
#   ok SUITE.NAME | fail SUITE.NAME | skip SUITE.NAME # REASON
# A binary that crashes before its plan is complete leaves a "fail" line.
set -euo pipefail

suite=$1
tee /dev/stderr | awk -v s="$suite" '
/^1\.\.[0-9]+/ { planned = substr($1, 4) + 0 }
/^(not )?ok [0-9]+ / {
	ok = ($1 == "ok")
	line = $0
	sub(/^(not )?ok [0-9]+ /, "", line)
	n = split(line, part, / # /)
	name = part[1]
	gsub(/[ \t]+/, "_", name)
	done++
	if (n > 1 && part[2] ~ /^SKIP/) {
		reason = part[2]
		sub(/^SKIP ?/, "", reason)
		print "skip " s "." name " # " reason
	} else if (ok) {
		print "ok " s "." name
	} else {
		print "fail " s "." name
	}
}
END {
	if (planned == 0 || done < planned)
		print "fail " s ".incomplete # " done " of " planned " cases reported"
}'
