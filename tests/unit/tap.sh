# shellcheck shell=bash
# tap.sh: TAP output for the *_test.sh harness tests, sourced by each.
#
#   tap_check NAME STATUS [WHY]  ok when STATUS is 0; else WHY as a
#                                diagnostic and not ok
#   tap_same NAME WANT GOT       ok when GOT is WANT; else their diff
#   tap_done                     the plan, and exit 1 if anything failed

tap_n=0
tap_failed=0

tap_check() {
	tap_n=$((tap_n + 1))
	if [ "$2" = 0 ]; then
		echo "ok $tap_n $1"
		return
	fi
	tap_failed=1
	[ -z "${3:-}" ] || echo "# $3"
	echo "not ok $tap_n $1"
}

tap_same() {
	[ "$3" = "$2" ] || diff <(echo "$2") <(echo "$3") | sed 's/^/# /'
	tap_check "$1" "$([ "$3" = "$2" ]; echo $?)"
}

tap_done() {
	echo "1..$tap_n"
	exit "$tap_failed"
}
