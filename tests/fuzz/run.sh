#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# run.sh RESULTS: run the seeded verbs + mm fuzzer (userspace/out/rxe_fuzz,
# userspace/fuzz/main.c) inside the guest for FUZZ_MINUTES (default 60),
# from seed FUZZ_SEED (default: the time; printed either way), with
# FUZZ_PROCS workers (2) of FUZZ_THREADS churn threads (1), FUZZ_OPS
# operations a program (200). Appends one result line to RESULTS:
#
#   ok fuzz.rxe_fuzz # N programs, N ops
#   fail fuzz.rxe_fuzz # seed S: <message>
#
# and keeps the shrunk failing program next to it (RESULTS.program, which
# `rxe_fuzz --replay` runs again) and the whole output (RESULTS.log).
# make fuzz runs it (tests/vm/run-in-guest.sh; results in build/fuzz/).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
results=${1:?usage: $0 RESULTS}
minutes=${FUZZ_MINUTES:-60}
seed=${FUZZ_SEED:-$(date +%s)}
fuzz=$top/userspace/out/rxe_fuzz
log=$results.log
prog=$results.program

if [ ! -x "$fuzz" ]; then
	echo "fail fuzz.rxe_fuzz # $fuzz not built (make -C userspace)" >>"$results"
	exit 2
fi
rm -f "$prog"
"$fuzz" --seed "$seed" --minutes "$minutes" --ops "${FUZZ_OPS:-200}" \
	--procs "${FUZZ_PROCS:-2}" --threads "${FUZZ_THREADS:-1}" \
	--save "$prog" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
summary=$(grep '^rxe_fuzz: [0-9]* programs' "$log" | tail -n 1)
summary=${summary#rxe_fuzz: }
case $rc in
0)
	echo "ok fuzz.rxe_fuzz # seed $seed.., $summary, $minutes min" >>"$results" ;;
1)
	why=$(grep -m1 '^rxe_fuzz: FAIL' "$log")
	echo "fail fuzz.rxe_fuzz # ${why#rxe_fuzz: FAIL }; shrunk program in $(basename "$prog"); $summary" >>"$results" ;;
*)
	why=$(grep -m1 'setup problem' "$log")
	echo "fail fuzz.rxe_fuzz # setup (exit $rc): ${why:-no summary}" >>"$results" ;;
esac
exit "$rc"
