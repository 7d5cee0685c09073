#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# run.sh smoke|full WORK RESULTS: the interop suite (issue 15). Each row
# boots two guests on a wire (tests/vm/run-pair.sh) and runs the row's
# plan in both (tests/interop/guest.sh):
#
#   smoke (make check): ours-ours and ours-sid at MTU 1500, one size
#         sweep under 1 % loss with ODP on both sides and MADV_DONTNEED
#         churn, and the cable pull between two of ours
#   full (make interop): every memory pairing, the impairments (loss 1 %
#         and 5 %, reordering, duplication, 10 ms delay), the cable pull,
#         perftest and ibv_rc_pingpong, for ours-ours at MTU 1500, 4200
#         and 9000 (there: the ODP pairings and ibv_rc_pingpong), ours-stock (Debian's 6.12 rdma_rxe) and ours-sid
#         (kernels.upstream: upstream's ODP)
#
# Result names are prefixed with the row (interop.<row>.<side>...; the
# side whose guest reported it), and each guest adds its boot and unload
# verdicts (guest.interop.<row>.<side>.boot|unload). Appends to RESULTS;
# guest runs go to WORK/<row>/. INTEROP_ROWS (names, space-separated)
# narrows the run. Exit status: 0 when it ran (whatever the results), 2
# on usage errors.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
[ $# -eq 3 ] || { echo "usage: $0 smoke|full WORK RESULTS" >&2; exit 2; }
plan=$1 work=$2 results=$3
upstream=$(awk '!/^#/ && NF { print $1; exit }' "$top/kernels.upstream")

# row NAME SPEC_A SPEC_B MTU [PLAN]
row() {
	local name=$1 a=$2 b=$3 mtu=$4 rc=0 s plan=${5:-$plan}
	case " ${INTEROP_ROWS:-$name} " in *" $name "*) ;; *) return ;; esac
	echo "== interop $name ($a <-> $b, MTU $mtu)"
	"$top/tests/vm/run-pair.sh" --quiet --a "$a" --b "$b" --mtu "$mtu" \
		--timeout 3600 --out "$work/$name" -- \
		"$here/guest.sh" "$plan" /results/results.txt >"$work/$name.log" 2>&1 || rc=$?
	for s in a b; do
		if [ -s "$work/$name/$s/results.txt" ]; then
			sed -E "s/^(ok|fail|skip) interop\./\1 interop.$name.$s./" \
				"$work/$name/$s/results.txt" >>"$results"
		else
			echo "fail interop.$name.$s.results # the guest reported no result" >>"$results"
		fi
		"$top/tests/vm/guest-verdict.sh" "interop.$name.$s" "$work/$name/$s" \
			"$(cat "$work/$name/$s.status" 2>/dev/null || echo "$rc")" >>"$results"
	done
}

mkdir -p "$work"
case $plan in
smoke)
	row ours-ours ours ours 1500
	row "ours-$upstream" ours "$upstream" 1500
	;;
full)
	row ours-ours ours ours 1500
	row ours-ours-mtu4200 ours ours 4200 mtu
	row ours-ours-mtu9000 ours ours 9000 mtu
	row ours-stock ours stock 1500
	row "ours-$upstream" ours "$upstream" 1500
	;;
*)
	echo "run.sh: unknown plan $plan" >&2
	exit 2
	;;
esac
exit 0
