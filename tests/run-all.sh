#!/bin/bash
# run-all.sh [SUITE...]: the project's test command (make check).
#
# Suites (default: all, in this order):
#   unit        host-side unit tests of pure logic (tests/unit)
#   model       the per_mm/umem lifecycle model, checked with spin, and
#               its broken variants (tests/model)
#   c           our libibverbs C tests (tests/c), one guest boot; each
#               scenario at its fast iteration count, or at its stress
#               count (200 rounds or more) with RXE_ODP_STRESS=1
#               (make stress); RXE_ODP_ROUNDS and RXE_ODP_SEED override
#               (tests/c/test_util.h)
#   perftest    perftest 4.5 and 25.01, pinned and --odp, one boot
#   pyverbs44   rdma-core 44 pyverbs, held to its lists, one boot
#   pyverbs65   rdma-core 65 pyverbs, held to its lists, one boot
#   pyverbs56   Debian 13's rdma-core 56.1 pyverbs test_odp on Debian 13's
#               6.12.118 kernel (deb13-118 of kernels.matrix), held to its
#               lists, one boot
#   dkms        the DKMS package: dkms add/build/install into scratch trees
#               (tests/dkms), then a guest boot on the installed modules
#   ucx         UCX 1.13.1 and Open MPI 4.1.4 over rxe0, pinned, explicit
#               and implicit ODP (tests/ucx; the implicit cases on the
#               patched UCX build of tests/ucx/build-ucx.sh), one boot
#   lifetime    the teardown matrix (tests/lifetime), one boot: 50
#               iterations a cell, 20 for the cells that reload the stack
#               (about 1 s an iteration under TCG; LIFETIME_RELOAD_ITERATIONS);
#               LIFETIME_ITERATIONS=1000 for the stress run (make stress),
#               every cell
#   compat      every other kernel of kernels.matrix: fetch, build with
#               W=1 (no warning), boot a smoke set (tests/compat)
#   interop     two guests on a wire (tests/interop, its smoke plan):
#               ours with ours and with sid's upstream rxe, a size sweep
#               of every operation under 1 % loss with ODP on both ends,
#               every byte checked, and the cable pull
#
# The suites run in two lanes side by side (see below), each suite
# saying how long it took.
#
# Every test case counts once; each guest boot adds two more cases: its
# boot (the command ran, the dmesg gate passed) and the clean unload of
# our stack after it (tests/vm/guest-verdict.sh). Every suite's results
# are then held to the expectation lists (tests/check-results.py): the
# pyverbs lanes' must-pass and expected lists (tests/pyverbs/), and
# tests/expected-skips.txt; a skip on no list is a failure. A failed
# guest suite prints the tail of its guest's output. Ends with a line
# "skips: N, all expected" (then one line per environment skip) and
# "N passed, N failed, N skipped", and exits non-zero when anything
# failed. Per-suite results and guest logs: build/check/.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
out=$top/build/check
suites=("$@")
[ ${#suites[@]} -gt 0 ] ||
	suites=(unit model c perftest pyverbs44 pyverbs65 pyverbs56 dkms ucx lifetime compat interop)
rm -rf "$out"
mkdir -p "$out"	# (build/, which holds the userspace build's lock too)

# guest SUITE [--timeout SEC] [--kernel NAME] COMMAND...: one boot; its
# verdicts (the boot with its dmesg gate, the unload of our stack) go to
# SUITE.txt.
guest() {
	local suite=$1 timeout=900 kernel='' rc=0
	shift
	if [ "$1" = --timeout ]; then
		timeout=$2
		shift 2
	fi
	if [ "$1" = --kernel ]; then
		kernel=$2
		shift 2
	fi
	echo "== $suite (guest) started"
	"$here/vm/run-in-guest.sh" --quiet --timeout "$timeout" \
		${kernel:+--kernel "$kernel"} --out "$out/$suite" -- "$@" || rc=$?
	"$here/vm/guest-verdict.sh" "$suite" "$out/$suite" "$rc" >>"$out/$suite.txt"
}

# collect SUITE FILE: append a guest suite's result lines; a suite that
# reported nothing has failed, however its boot went.
collect() {
	if [ -s "$2" ]; then
		cat "$2" >>"$out/$1.txt"
	else
		echo "fail $1.results # the suite reported no test results" >>"$out/$1.txt"
	fi
}

# pyverbs LANE [--kernel NAME]
pyverbs() {
	local lane=$1
	shift
	guest "pyverbs$lane" "$@" "$here/pyverbs/run-lane.sh" "$lane" /results/raw.txt
	collect "pyverbs$lane" "$out/pyverbs$lane/raw.txt"
}

# check SUITE: hold its results to the expectation lists, in place (a
# pyverbs lane's must-pass list once the lane has run at all).
check() {
	local lists=("$here/expected-skips.txt")
	case $1 in
	pyverbs*)
		[ ! -f "$out/$1/raw.txt" ] ||
			lists+=("$here/pyverbs/must-pass-${1#pyverbs}.txt")
		lists+=("$here/pyverbs/expected-${1#pyverbs}.txt") ;;
	esac
	"$here/check-results.py" "$out/$1.txt" "${lists[@]}" >"$out/$1.checked" ||
		echo "fail $1.check # tests/check-results.py failed" >>"$out/$1.checked"
	mv "$out/$1.checked" "$out/$1.txt"
}

# tail_of SUITE: the end of a failed guest suite's output.
tail_of() {
	local log
	for log in "$out/$1/output.log" "$out/$1/guest/output.log"; do
		[ -f "$log" ] || continue
		echo "== $1: tail of ${log#"$top"/}"
		tail -n 40 "$log"
		return
	done
}

# The newer userspace lane (rdma-core 65, perftest 25.01) serves
# pyverbs65, perftest's atomics and the C tests built against it
# (tests/c/*_65.c): built before the first of them runs.
build_lane65() {
	"$here/lanes/build-newer-userspace.sh" >"$out/lane65-build.log" 2>&1 ||
		echo "fail lanes.rdma_core_65.build # see build/check/lane65-build.log" >>"$out/lanes.txt"
}

# run_suite SUITE: one suite, its results in $out/SUITE.txt; says how
# long it took (the CI budget is kept by these lines).
run_suite() {
	local start=$SECONDS
	run_one "$1"
	echo "== $1 done in $((SECONDS - start)) s"
}

run_one() {
	case $1 in
	unit)
		echo "== unit (host)"
		make -s -C "$here/unit" run RESULTS="$out/unit.txt" ||
			echo "fail unit.build # tests/unit did not build or run" >>"$out/unit.txt"
		;;
	model)
		echo "== model (host)"
		"$here/model/run.sh" --all "$out/model.txt" >"$out/model.log" 2>&1 ||
			echo "fail model.run # see build/check/model.log" >>"$out/model.txt"
		;;
	c)
		guest c --timeout "${C_SUITE_TIMEOUT:-1800}" env \
			RXE_ODP_STRESS="${RXE_ODP_STRESS:-0}" \
			RXE_ODP_ROUNDS="${RXE_ODP_ROUNDS:-}" \
			RXE_ODP_SEED="${RXE_ODP_SEED:-}" \
			RXE_ODP_C_TIMEOUT="${RXE_ODP_C_TIMEOUT:-600}" \
			"$here/c/run.sh" /results/results.txt
		collect c "$out/c/results.txt"
		;;
	perftest)
		guest perftest "$here/perftest/run.sh" /results/results.txt
		collect perftest "$out/perftest/results.txt"
		;;
	pyverbs44)
		pyverbs 44
		;;
	lifetime)
		guest lifetime --timeout 43200 env \
			LIFETIME_RELOAD_ITERATIONS="${LIFETIME_RELOAD_ITERATIONS:-${LIFETIME_ITERATIONS:-20}}" \
			"$here/lifetime/run.sh" /results/results.txt \
			"${LIFETIME_ITERATIONS:-50}"
		collect lifetime "$out/lifetime/results.txt"
		;;
	pyverbs65)
		[ -s "$out/lanes.txt" ] || pyverbs 65
		;;
	pyverbs56)
		if ! "$here/lanes/build-newer-userspace.sh" --lane debian13 \
			>"$out/lane56-build.log" 2>&1; then
			echo "fail lanes.rdma_core_56.build # see build/check/lane56-build.log" >>"$out/pyverbs56.txt"
		elif ! "$top/scripts/build-modules.sh" deb13-118 \
			>"$out/pyverbs56-modules.log" 2>&1; then
			echo "fail pyverbs56.modules # see build/check/pyverbs56-modules.log" >>"$out/pyverbs56.txt"
		else
			pyverbs 56 --kernel deb13-118
		fi
		;;
	dkms)
		echo "== dkms (host, then guest) started"
		"$here/dkms/run.sh" "$out/dkms" "$out/dkms.txt"
		;;
	ucx)
		"$here/ucx/build-ucx.sh" >"$out/ucx-build.log" 2>&1 ||
			echo "fail ucx.build # see build/check/ucx-build.log" >>"$out/ucx.txt"
		make -s -C "$here/ucx" >>"$out/ucx-build.log" 2>&1 ||
			echo "fail ucx.mpi_exchange.build # see build/check/ucx-build.log" >>"$out/ucx.txt"
		guest ucx "$here/ucx/run.sh" /results/results.txt
		collect ucx "$out/ucx/results.txt"
		;;
	compat)
		echo "== compat (host, then a guest per kernel) started"
		"$here/compat/run.sh" "$out/compat" "$out/compat.txt"
		;;
	interop)
		echo "== interop (guest pairs) started"
		"$here/interop/run.sh" smoke "$out/interop" "$out/interop.txt"
		;;
	esac
}

# Two lanes run side by side, one guest at a time each: a guest runs its
# vCPUs on one host thread (tests/vm/run-in-guest.sh), so two keep both
# cores of a 2-core machine busy. Lane A: the lifetime matrix, the
# longest, then the compat suite (its own builds and boots), then the
# interop pairs (two one-vCPU guests at a time). Lane B: the
# host suites, the rdma-core 65 build, the suites that need it, then the
# other pyverbs lanes, DKMS and UCX. Each lane builds what its guests run
# first. (Measured warm, 2026-12-05, a fresh clone: lane A 690 + 685
# + 155 s, lane B about 1700 s, ucx 257 s of it; 29 minutes in all.)
lane_a=()
lane_b=()
for suite in "${suites[@]}"; do
	case $suite in
	lifetime | compat | interop) lane_a+=("$suite") ;;
	unit | model | c | perftest | pyverbs44 | pyverbs65 | pyverbs56 | dkms | ucx) lane_b+=("$suite") ;;
	*)
		echo "run-all: unknown suite $suite" >&2
		exit 2
		;;
	esac
done

run_lane_a() {
	local suite
	for suite in "$@"; do
		[ "$suite" != lifetime ] || make -s -C "$here/lifetime" ||
			echo "fail lifetime.build # tests/lifetime did not build" >>"$out/lifetime.txt"
		[ "$suite" != interop ] || flock "$top/build/userspace.lock" make -s -C "$top/userspace" ||
			echo "fail interop.build # userspace did not build" >>"$out/interop.txt"
		run_suite "$suite"
	done
}

run_lane_b() {
	local suite built=0
	for suite in "$@"; do
		case $suite in
		c | perftest | pyverbs65)
			[ "$built" = 1 ] || build_lane65
			built=1
			;;
		esac
		[ "$suite" != c ] || flock "$top/build/userspace.lock" make -s -C "$top/userspace" ||
			echo "fail c.build # userspace did not build" >>"$out/c.txt"
		run_suite "$suite"
	done
}

run_lane_a "${lane_a[@]}" &
lane_a_pid=$!
run_lane_b "${lane_b[@]}"
wait "$lane_a_pid"
for suite in "${suites[@]}"; do
	check "$suite"
	grep -q '^fail ' "$out/$suite.txt" || continue
	tail_of "$suite"
	grep -h '^fail ' "$out/$suite.txt"
done
grep -h '^fail ' "$out/lanes.txt" 2>/dev/null

cat "$out"/*.txt >"$out/all.txt" 2>/dev/null
"$here/skip-summary.sh" "$out/all.txt"
passed=$(grep -c '^ok ' "$out/all.txt")
failed=$(grep -c '^fail ' "$out/all.txt")
skipped=$(grep -c '^skip ' "$out/all.txt")
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
