#!/bin/bash
# skip-summary.sh ALL: the skip summary of make check (tests/run-all.sh).
# Every skip line of ALL must carry the '[expected: GROUP]' tag that
# tests/check-results.py gives a skip on an expectation list; one without
# it is rewritten into a failure in ALL. Prints "skips: N, all expected"
# or the unexpected ones, then each environment skip by name.
set -u

all=$1
tagged=' \[expected: [^]]*\]$'
total=$(grep -c '^skip ' "$all")
bad=$(grep '^skip ' "$all" | grep -cv -e "$tagged")
if [ "$bad" = 0 ]; then
	echo "skips: $total, all expected"
else
	echo "skips: $total, $bad of them on no expectation list (counted as failures):"
	grep '^skip ' "$all" | grep -v -e "$tagged" | sed 's/^skip /fail /'
	sed -i "/^skip /{/$tagged/!s/^skip \(.*\)/fail \1 (unexpected skip: on no expectation list)/}" "$all"
fi
grep '^skip .* \[expected: environment' "$all" | sed 's/^skip /environment skip: /'
exit 0
