#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# run.sh [--mutants | --all] RESULTS
#
# Model-check tests/model/odp_lifecycle.pml and odp_implicit.pml
# exhaustively with spin and append one line per check to RESULTS:
#
#   (default)   the models as our code is:
#     ok|fail model.odp_lifecycle.safety    assertions + invalid end states
#                                           (no deadlock), full state space
#     ok|fail model.odp_lifecycle.liveness  LTL <>(modules unloaded && mm
#                                           freed), acceptance cycles
#     ok|fail model.odp_implicit.safety     the same safety check of the
#                                           implicit MR's children
#   --mutants   each deliberately broken variant (spin -D<MACRO>) must be
#               caught: `ok model.mutant.<name>` when spin finds a
#               violation, `fail model.mutant.<name>` when it does not; and
#               `ok model.assumption.<name>` for the two assumptions outside
#               our code that the model shows we depend on
#   --all       both
#
# Prints spin's figures (states stored, depth reached, time) per run and,
# for each violation found, the tail of its counterexample trail.
# Exit status: 0 when the checks ran (whatever their results); 2 on usage
# errors or when spin or gcc is missing.
set -u

here=$(cd "$(dirname "$0")" && pwd)
# the model being checked (odp_lifecycle or odp_implicit): $here/$name.pml
name=odp_lifecycle

mode=model
case ${1:-} in
--mutants) mode=mutants; shift ;;
--all) mode=all; shift ;;
-*) echo "usage: $0 [--mutants | --all] RESULTS" >&2; exit 2 ;;
esac
if [ $# -ne 1 ]; then
	echo "usage: $0 [--mutants | --all] RESULTS" >&2
	exit 2
fi
results=$1
: >>"$results" || { echo "$0: cannot write $results" >&2; exit 2; }
results=$(cd "$(dirname "$results")" && pwd)/$(basename "$results")
for tool in spin gcc; do
	command -v $tool >/dev/null || { echo "$0: $tool not found (apt-get install spin gcc)" >&2; exit 2; }
done

work=$(mktemp -d /tmp/odp-model.XXXXXX)
trap 'rm -rf "$work"' EXIT

# Exhaustive search: no bitstate hashing; -w24 hash table (chained, so
# lossless); depth bound far above the model's (~250).
PAN_DEPTH=-m100000
PAN_HASH=-w24

# build DIR [-DMACRO...] [--liveness]: spin -a + gcc in DIR
build() {
	local dir=$1 cflags=-DSAFETY
	shift
	mkdir -p "$dir"
	local defs=()
	for a in "$@"; do
		case $a in
		--liveness) defs+=(-DLIVENESS); cflags= ;;
		*) defs+=("$a") ;;
		esac
	done
	cp "$here/$name.pml" "$dir"/	# the trail is written beside it
	(cd "$dir" && spin "${defs[@]}" -a "$name.pml" >spin.log 2>&1 &&
		gcc -O2 $cflags -o pan pan.c >gcc.log 2>&1)
}

# figures NAME DIR: one line of spin's statistics
figures() {
	local out=$2/pan.out
	local states depth secs
	states=$(sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p' "$out" | head -1)
	depth=$(sed -n 's/.*depth reached \([0-9]*\).*/\1/p' "$out" | head -1)
	secs=$(sed -n 's/^pan: elapsed time \([0-9.e+-]*\) seconds.*/\1/p' "$out" | head -1)
	printf '%-40s %10s states stored, depth %4s, %6s s\n' "$1" "${states:-?}" "${depth:-?}" "${secs:-?}"
}

# trail DIR [-DMACRO...]: replay the counterexample and print its last 20
# steps up to the first failed assertion, each labelled with the nearest
# model comment (which names the kernel / our function the step stands for)
trail() {
	local dir=$1
	shift
	(cd "$dir" && spin -t "$@" -p "$name.pml" 2>&1) |
		awk -v src="$here/$name.pml" -v pml="$name.pml" '
		BEGIN { n = 0; while ((getline l < src) > 0) text[++n] = l }
		# the comment on the line, else the comment block right above it
		# (from its first line), else the code itself
		function label(ln,   k, t) {
			t = text[ln]
			if (t ~ /\/\*/)
				return clean(t)
			for (k = ln - 1; k > 0 && text[k] ~ /^[ \t]*(\/\*|\*)/; k--)
				if (text[k] ~ /\/\*/)
					return clean(text[k])
			t = text[ln]
			gsub(/^[ \t]+/, "", t)
			return t
		}
		function clean(t) {
			sub(/^.*\/\*+ */, "", t)
			sub(/ *\*\/.*$/, "", t)
			return t
		}
		/^#processes/ { exit }
		/text of failed assertion/ {
			if (failed == "") {
				failed = $0
				sub(/^.*text of failed assertion: /, "", failed)
			}
			next
		}
		/^ *[0-9]+:[ \t]+proc +[0-9]+ \(/ {
			if (done || !match($0, pml ":[0-9]+"))
				next
			if (failed != "")
				done = 1	# the failing step itself
			ln = substr($0, RSTART + length(pml) + 1) + 0
			match($0, /\(([A-Za-z_:]+)[:0-9]*\)/)
			p = substr($0, RSTART + 1, RLENGTH - 2)
			sub(/:[0-9]+$/, "", p)
			key = p ":" label(ln)
			if (key == last)
				next
			last = key
			line[++m] = sprintf("   %-11s %4d  %s", p, ln, label(ln))
		}
		END {
			for (i = (m > 20 ? m - 19 : 1); i <= m; i++)
				print line[i]
			if (failed != "")
				print "   >> violated: " failed
		}'
}

# verdict NAME DIR PATTERN: ok when pan finished the whole search with no
# error; else fail, with spin's complaint and the counterexample
verdict() {
	local name=$1 d=$2 pat=$3 defs=${4:-}
	echo "== $name"
	figures "$name" "$d"
	if [ -s "$d"/pan.out ] && grep -q 'errors: 0' "$d"/pan.out &&
		! grep -qE 'Search not completed|max search depth too small' "$d"/pan.out; then
		echo "ok $name" >>"$results"
		return
	fi
	cat "$d"/spin.log "$d"/gcc.log 2>/dev/null | head -20
	grep -E "$pat|Search not completed|too small" "$d"/pan.out 2>/dev/null
	[ -f "$d/$name.pml.trail" ] && trail "$d" $defs
	echo "fail $name # $(grep -m1 -E "$pat|not completed|too small" "$d"/pan.out 2>/dev/null || echo 'spin -a, gcc or pan failed')" >>"$results"
}

# check_model: the model as our code is; safety and liveness side by side
check_model() {
	local s=$work/model l=$work/liveness i=$work/implicit
	(build "$s" && cd "$s" && ./pan $PAN_DEPTH $PAN_HASH >pan.out 2>&1) &
	(build "$l" --liveness && cd "$l" && ./pan -a $PAN_DEPTH $PAN_HASH >pan.out 2>&1) &
	wait
	verdict model.odp_lifecycle.safety "$s" 'violated|invalid end state'
	verdict model.odp_lifecycle.liveness "$l" 'violated|acceptance cycle' -DLIVENESS
	name=odp_implicit
	build "$i" && (cd "$i" && ./pan $PAN_DEPTH $PAN_HASH >pan.out 2>&1)
	verdict model.odp_implicit.safety "$i" 'violated|invalid end state'
	name=odp_lifecycle
}

# one_variant KIND NAME MACRO: spin must find a violation
# one_variant KIND NAME MACRO MODEL
one_variant() {
	local kind=$1 vname=$2 macro=$3 name=$4 d=$work/$2
	if ! build "$d" -D"$macro"; then
		echo "fail model.$kind.$vname # spin -a or gcc failed" >"$d.result"
		return
	fi
	# -i: keep searching for the shortest counterexample
	(cd "$d" && ./pan -i $PAN_DEPTH $PAN_HASH >pan.out 2>&1)
	{
		echo "== model.$kind.$vname (-D$macro)"
		figures "model.$kind.$vname" "$d"
		if grep -qE 'errors: [1-9]' "$d"/pan.out; then
			trail "$d" -D"$macro"
		fi
	} >"$d.log"
	if grep -qE 'errors: [1-9]' "$d"/pan.out; then
		local what
		what=$(grep -E '^pan:[0-9]+: +(assertion violated|invalid end state)' "$d"/pan.out |
			tail -n 1 | sed 's/^pan:[0-9]*: *//')
		echo "ok model.$kind.$vname # $what" >"$d.result"
	else
		echo "fail model.$kind.$vname # no violation found" >"$d.result"
	fi
}

check_mutants() {
	local variants=(
		"mutant no_synchronize BUG_NO_SYNCHRONIZE"
		"mutant free_before_grace BUG_FREE_BEFORE_GRACE"
		"mutant no_read_retry BUG_NO_READ_RETRY"
		"mutant remove_not_fence BUG_REMOVE_NOT_FENCE"
		"mutant dying_only BUG_DYING_ONLY"
		"mutant copy_unlocked BUG_COPY_UNLOCKED"
		"mutant no_put BUG_NO_PUT"
		"mutant work_no_ref BUG_WORK_NO_REF"
		"mutant no_dead_check BUG_NO_DEAD_CHECK"
		"assumption rxe_cleanup_timeout RXE_CLEANUP_TIMEOUT"
		"assumption sync_gp_only KERNEL_SYNC_GP_ONLY"
	)
	local implicit_variants=(
		"mutant implicit_reclaim_unlocked BUG_RECLAIM_UNLOCKED"
		"mutant implicit_cancel_first BUG_CANCEL_FIRST"
		"mutant implicit_no_recheck BUG_NO_RECHECK"
	)
	local v i=0
	# two at a time (2 cores)
	for v in "${variants[@]}"; do
		one_variant $v odp_lifecycle &
		i=$((i + 1))
		[ $((i % 2)) -eq 0 ] && wait
	done
	for v in "${implicit_variants[@]}"; do
		one_variant $v odp_implicit &
		i=$((i + 1))
		[ $((i % 2)) -eq 0 ] && wait
	done
	wait
	for v in "${variants[@]}" "${implicit_variants[@]}"; do
		set -- $v
		cat "$work/$2.log" 2>/dev/null
		cat "$work/$2.result" >>"$results" 2>/dev/null ||
			echo "fail model.$1.$2 # the check did not run" >>"$results"
	done
}

start=$(date +%s%N)
case $mode in
model) check_model ;;
mutants) check_mutants ;;
all) check_model; check_mutants ;;
esac
echo "== done in $(( ($(date +%s%N) - start) / 1000000000 )) s"
exit 0
