#!/bin/bash
# tap-to-results.sh SUITE TAPFILE STATUS
#
# Turn one kselftest binary's TAP output (TAPFILE) and exit STATUS into
# result lines on stdout, one per test case:
#
#   ok SUITE.NAME | fail SUITE.NAME # REASON | skip SUITE.NAME # REASON
#
# A failure's reason comes from the case's own '# ' diagnostics (those
# after its "RUN" line): the first assertion line (file:line:test:...),
# the first differing byte ("...: byte N is 0x.., want 0x..") and how the
# case ended ("Test terminated by ..."), where there are such lines, else
# its first diagnostic. A binary that dies, or reports fewer cases than
# it planned, adds `fail SUITE.run # REASON`; one that skips as a whole
# (plan 1..0 # SKIP) gives `skip SUITE.all # REASON`.
set -u

suite=$1 file=$2 status=$3
plan='' plan_dir='' count=0
re_res='^(not )?ok [0-9]+ ([^#]*[^# ])( +#(.*))?$'
re_plan='^1\.\.([0-9]+)( +#(.*))?$'
diags=()

# why: the reason of a failed case, from diags[].
why() {
	local d assert='' byte='' ended='' first=''
	for d in "${diags[@]}"; do
		case $d in
		' RUN '* | *'  OK  '* | *'  FAIL  '*) continue ;;
		esac
		[ -n "$first" ] || first=$d
		if [ -z "$assert" ] && [[ $d =~ ^[^\ :]+:[0-9]+: ]]; then
			assert=$d
		elif [ -z "$byte" ] && [[ $d =~ :\ byte\ [0-9]+\ is\ 0x ]]; then
			byte=$d
		elif [ -z "$ended" ] && [[ $d == *'Test terminated '* ]]; then
			ended=$d
		fi
	done
	[ -n "$assert$byte$ended" ] || assert=${first:-no diagnostics}
	d="$assert${byte:+; $byte}${ended:+; $ended}"
	echo "${d#; }" | cut -c1-300
}

while IFS= read -r line; do
	if [[ $line == '#  RUN '* ]]; then
		diags=()
	fi
	if [[ $line == '# '* ]]; then
		diags+=("${line#\# }")
		continue
	fi
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
		echo "fail $suite.$name # $(why)"
	elif [[ ${dir^^} == SKIP* ]]; then
		reason=${dir:4}
		reason=${reason#"${reason%%[! ]*}"}
		echo "skip $suite.$name # ${reason:-skipped}"
	elif [[ ${dir^^} == XPASS* ]]; then
		echo "fail $suite.$name # passed, but is marked as expected to fail (XPASS)"
	else
		echo "ok $suite.$name"
	fi
	diags=()
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
	reason="exit status $status, plan ${plan:-none}, $count results"
	case $status in
	124 | 137) reason+=" (timed out)" ;;
	13[0-9] | 14[0-9]) reason+=" (killed by signal $((status - 128)))" ;;
	esac
	[ "${#diags[@]}" -eq 0 ] || reason+="; last: ${diags[-1]}"
	echo "tap-to-results: $suite: $reason" >&2
	echo "fail $suite.run # $(echo "$reason" | cut -c1-300)"
fi
