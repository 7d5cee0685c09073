#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# smoke.sh RESULTS: the compat suite's set, run in the guest on a kernel
# of kernels.matrix other than the default (tests/compat/run.sh): data
# through pinned MRs, explicit and implicit ODP MRs checked byte for
# byte, the ODP counters, rkey and memory-window bounds (which older 6.12
# bases get through our compat patches), and two teardown cells (an owner
# killed during traffic, an implicit MR closed under munmap) at 10
# iterations; and what scripts/doctor.sh says of the kernel and the
# loaded rxe.
set -u

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
results=$1
rc=0
"$top/tests/c/run.sh" "$results" pinned_data odp_semantics odp_implicit \
	odp_counters rkey_bounds || rc=$?
LIFETIME_CELLS="kill.traffic implicit.close.munmap" \
	"$top/tests/lifetime/run.sh" "$results" 10 || rc=$?

# scripts/doctor.sh knows the kernel and sees our rxe loaded
doctor=$("$top/scripts/doctor.sh")
for want in "ok    kernel $(uname -r): tested here" \
	    "ok    rdma_rxe loaded: ours"; do
	name=doctor.$(echo "${want#ok    }" | cut -d' ' -f1)
	if grep -qF "$want" <<<"$doctor"; then
		echo "ok $name" >>"$results"
	else
		echo "fail $name # doctor.sh printed no \"$want\"" >>"$results"
	fi
done
printf '%s\n' "$doctor"
exit "$rc"
