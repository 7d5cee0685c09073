#!/bin/bash
# demo-guest.sh OUTDIR  (runs in the guest; see tests/demo.sh)
# perftest ib_write_bw and ib_read_bw on rxe0 with pinned MRs and, when
# the device advertises ODP, with --odp; prints one table of the results.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=$1
modes=(pinned)
if ibv_devinfo -v -d rxe0 | grep -q 'ODP_SUPPORT'; then
	modes+=(odp)
else
	echo "demo: rxe0 advertises no ODP; pinned runs only"
fi

reports=()
for tool in ib_write_bw ib_read_bw; do
	for mode in "${modes[@]}"; do
		args=(-s 65536 -n 300)
		[ "$mode" = odp ] && args+=(--odp)
		json=$out/$tool-$mode.json
		"$here/perftest-pair.sh" "$json" "$tool" "${args[@]}"
		reports+=("$tool/$mode=$json")
	done
done
"$here/perftest_json.py" "${reports[@]}"
