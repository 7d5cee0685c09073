#!/bin/bash
# tap-to-results.sh SUITE TAPFILE STATUS
#
# Turn one kselftest binary's TAP output (TAPFILE) and exit STATUS into
# result lines on stdout, one per test case:
#
#   ok SUITE.NAME | fail SUITE.NAME | skip SUITE.NAME # REASON
#
# A binary that dies, or reports fewer cases than it planned, adds
# `fail SUITE.run`; one that skips as a whole (plan 1..0 # SKIP) gives
# `skip SUITE.all # REASON`.
set -u

suite=$1 file=$2 status=$3
plan='' plan_dir='' count=0
re_res='^(not )?ok [0-9]+ ([^#]*[^# ])( +#(.*))?$'
re_plan='^1\.\.([0-9]+)( +#(.*))?$'

while IFS= read -r line; do
	if [[ $line =~ $re_plan ]]; then
		plan=${BASH_REMATCH[1]}
		plan_dir=${BASH_REMATCH[3]}
		continue
	fi
	[[ $line =~ $re_res ]] || continue
	count=$((count + 1))
	name=${BASH_REMATCH[2]}
	# Directive text after '#', leading blanks dropped.
	dir=${BASH_REMATCH[4]}
	dir=${dir#"${dir%%[! ]*}"}
	if [ -n "${BASH_REMATCH[1]}" ]; then
		echo "fail $suite.$name"
	elif [[ ${dir^^} == SKIP* ]]; then
		reason=${dir:4}
		reason=${reason#"${reason%%[! ]*}"}
		echo "skip $suite.$name # ${reason:-skipped}"
	elif [[ ${dir^^} == XPASS* ]]; then
		echo "fail $suite.$name"
	else
		echo "ok $suite.$name"
	fi
done <"$file"

if [ "$plan" = 0 ] && [ "$count" = 0 ] && [[ ${plan_dir^^} == *SKIP* ]]; then
	reason=${plan_dir#*[Ss][Kk][Ii][Pp]}
	reason=${reason#"${reason%%[! ]*}"}
	echo "skip $suite.all # ${reason:-skipped}"
	exit 0
fi
# kselftest exits 0 (pass), 1 (fail) or 4 (skip); anything else died.
if [ -z "$plan" ] || [ "$count" != "$plan" ] ||
   { [ "$status" != 0 ] && [ "$status" != 1 ] && [ "$status" != 4 ]; }; then
	echo "tap-to-results: $suite: exit status $status, plan ${plan:-none}, $count results" >&2
	echo "fail $suite.run"
fi
