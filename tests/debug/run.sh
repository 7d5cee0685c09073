#!/bin/bash
# run.sh [PART...]: make check-debug, the debug-kernel lane (not in CI).
#
# Builds the debug kernel (scripts/build-debug-kernel.sh: KASAN, lockdep
# primed for our locks at load, kmemleak, DEBUG_VM, DEBUG_LIST, fault
# injection), our modules for it and the userspace, then boots it once per
# part, two parts side by side:
#
#   c-first       the C tests (tests/c) from odp_advise_65 to odp_large,
#                 at RXE_ODP_ROUNDS (default 3) rounds a scenario: the
#                 tagged race and teardown scenarios among them
#   c-mid         the C tests after odp_large, up to odp_remap_race
#   c-rest        the C tests after odp_remap_race (three parts, because
#                 all of them took over three hours in one guest:
#                 odp_large alone about 85 minutes before it moved less)
#   faults-alloc  fault injection aimed at our code (tests/debug/faults.sh):
#                 failslab and fail_page_alloc
#   lifetime      the teardown matrix (tests/lifetime) at 10 iterations a
#                 cell
#   faults-func   the same with fail_function
#   pyverbs       rdma-core 44's and 65's test_odp
#
# (the two halves of the fault injection take an hour or more each)
# Every boot goes through the dmesg gate (tests/vm/dmesg-gate.sh: KASAN,
# lockdep, kmemleak, DEBUG_VM, atomic-sleep and list reports fail it) and,
# after our stack is unloaded, a kmemleak scan (tests/vm/guest-init.sh).
# Results: build/check-debug/ (each part's guest logs, all.txt), and a
# summary with the date, the kernel, the counts and each part's time in
# tests/debug/last-run.md, once all the parts have results (run.sh PART
# runs that part again and keeps the others' results; run.sh --summary
# only writes the summary of what is there). Ends with "N
# passed, N failed"; exits 1 on any failure.
#
# The C tests and the lifetime matrix run with RXE_ODP_TIME_SCALE (default
# 20): their time bounds are made for the stock kernel, and rxe runs 10 to
# 50 times slower here.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
out=$top/build/check-debug
all_parts=(c-first c-mid c-rest faults-alloc lifetime faults-func pyverbs)
parts=("$@")
if [ "${1:-}" = --summary ]; then
	# only the summary of the results in $out (parts run before, or
	# elsewhere and copied in)
	parts=()
elif [ ${#parts[@]} -eq 0 ]; then
	parts=("${all_parts[@]}")
fi
scale=${RXE_ODP_TIME_SCALE:-20}
mkdir -p "$out"
for p in "${parts[@]}"; do
	rm -rf "${out:?}/$p" "$out/$p".*
done

[ ${#parts[@]} -eq 0 ] || "$top/scripts/setup.sh" --debug || exit 1
dcache=$("$top/scripts/build-debug-kernel.sh") || exit 1
kver=$(cat "$dcache/kver")
if [ ${#parts[@]} -gt 0 ]; then
	"$top/scripts/build-modules.sh" --debug >"$out/modules.log" 2>&1 ||
		{ tail -n 20 "$out/modules.log"; exit 1; }
	"$top/tests/lanes/build-newer-userspace.sh" >"$out/lane65.log" 2>&1 ||
		{ tail -n 20 "$out/lane65.log"; exit 1; }
	if ! make -s -C "$top/userspace" >"$out/userspace.log" 2>&1 ||
	   ! make -s -C "$top/tests/lifetime" >>"$out/userspace.log" 2>&1; then
		tail -n 20 "$out/userspace.log"
		exit 1
	fi
fi

# c_tests c-first|c-mid|c-rest: the names of the C tests of that part,
# in tests/c's order: those up to odp_large, those after it up to
# odp_remap_race, or those after that
c_tests() {
	local src name part
	for src in "$top"/tests/c/*.c; do
		name=$(basename "$src" .c)
		if [[ ! "$name" > odp_large ]]; then
			part=c-first
		elif [[ ! "$name" > odp_remap_race ]]; then
			part=c-mid
		else
			part=c-rest
		fi
		[ "$1" = "$part" ] && echo "$name"
	done
}

# part NAME: one boot of the debug kernel; results in $out/NAME.txt, its
# time in $out/NAME.time.
part() {
	local name=$1 start=$SECONDS rc=0 cmd tests
	case $name in
	c-first|c-mid|c-rest)
		mapfile -t tests < <(c_tests "$name")
		cmd=(env RXE_ODP_ROUNDS="${RXE_ODP_ROUNDS:-3}" RXE_ODP_C_TIMEOUT=7200
		     RXE_ODP_TIME_SCALE="$scale"
		     "$top/tests/c/run.sh" /results/results.txt "${tests[@]}") ;;
	lifetime)
		cmd=(env LIFETIME_RELOAD_ITERATIONS=10 RXE_ODP_TIME_SCALE="$scale"
		     "$top/tests/lifetime/run.sh" /results/results.txt 10) ;;
	pyverbs)
		cmd=(sh -c "'$top/tests/pyverbs/run-lane.sh' 44 /results/results.txt tests.test_odp;
			    '$top/tests/pyverbs/run-lane.sh' 65 /results/results.txt tests.test_odp") ;;
	faults-alloc)
		cmd=(env FAULTS_INJECTORS="slab page" "$here/faults.sh"
		     /results/results.txt) ;;
	faults-func)
		cmd=(env FAULTS_INJECTORS=func "$here/faults.sh"
		     /results/results.txt) ;;
	*)
		echo "run.sh: unknown part $name" >&2
		return 2 ;;
	esac
	echo "== $name (debug guest) started"
	"$top/tests/vm/run-in-guest.sh" --debug --quiet --timeout 14400 \
		--out "$out/$name" -- "${cmd[@]}" >"$out/$name.log" 2>&1 || rc=$?
	"$top/tests/vm/guest-verdict.sh" "$name" "$out/$name" "$rc" >"$out/$name.txt"
	if [ -s "$out/$name/results.txt" ]; then
		cat "$out/$name/results.txt" >>"$out/$name.txt"
	else
		echo "fail debug.$name.results # the part reported no results" >>"$out/$name.txt"
	fi
	if [ -s "$out/$name/kmemleak" ]; then
		echo "fail debug.$name.kmemleak # $(grep -c 'unreferenced object' "$out/$name/kmemleak") leaks after the unload, see build/check-debug/$name/kmemleak" >>"$out/$name.txt"
	fi
	echo $((SECONDS - start)) >"$out/$name.time"
	echo "$(git -C "$top" rev-parse --short HEAD)$(git -C "$top" diff --quiet HEAD -- drivers include || echo '+changes')" >"$out/$name.rev"
	echo "== $name done in $((SECONDS - start)) s"
}

# two lanes: the parts alternate between them
lane() {
	local i
	for ((i = $1; i < ${#parts[@]}; i += 2)); do
		part "${parts[$i]}"
	done
}
lane 0 &
lane 1
wait

# the summary covers every part that has results, run now or before
done_parts=()
for p in "${all_parts[@]}"; do
	[ -s "$out/$p.txt" ] && done_parts+=("$p")
done
# (the pyverbs lanes' skips are held to their own lists, as in make check)
"$top/tests/check-results.py" <(for p in "${done_parts[@]}"; do cat "$out/$p.txt"; done) \
	"$top/tests/expected-skips.txt" "$top/tests/pyverbs/expected-44.txt" \
	"$top/tests/pyverbs/expected-65.txt" >"$out/all.txt" ||
	echo "fail debug.check # tests/check-results.py failed" >>"$out/all.txt"
grep '^fail ' "$out/all.txt"
passed=$(grep -c '^ok ' "$out/all.txt")
failed=$(grep -c '^fail ' "$out/all.txt")
skipped=$(grep -c '^skip ' "$out/all.txt")

{
	echo "# make check-debug: last results"
	echo
	echo "$(date -u +%Y-%m-%d), debug kernel $kver (linux-source-6.12 $(sed -n 's/^# Linux\/x86 \(.*\) Kernel Configuration/\1/p' "$dcache/obj/.config"), tests/debug/kernel.config), RXE_ODP_TIME_SCALE $scale for the C tests and lifetime."
	echo
	echo "| part | our tree at | passed | failed | skipped | minutes |"
	echo "|---|---|---|---|---|---|"
	for p in "${done_parts[@]}"; do
		echo "| $p | $(cat "$out/$p.rev" 2>/dev/null) | $(grep -c '^ok ' "$out/$p.txt") | $(grep -c '^fail ' "$out/$p.txt") | $(grep -c '^skip ' "$out/$p.txt") | $(( ($(cat "$out/$p.time") + 30) / 60 )) |"
	done
	echo
	echo "Failures:"
	echo
	echo '```'
	grep '^fail ' "$out/all.txt" || echo none
	echo '```'
	if [ -s "$out/faults-alloc.txt" ] || [ -s "$out/faults-func.txt" ]; then
		echo
		echo "Fault injection, a line per injector, entry point and phase: what an"
		echo "unarmed run used (bytes or calls), then each armed run as"
		echo "space:exit status (3: clean failures; * where the injection fired):"
		echo
		echo '```'
		cat "$out"/faults-{alloc,func}.txt 2>/dev/null | grep 'debug\.faults\.'
		echo '```'
	fi
} >"$out/results.md"
[ "${#done_parts[@]}" -lt "${#all_parts[@]}" ] || cp "$out/results.md" "$here/last-run.md"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
