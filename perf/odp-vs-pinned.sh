#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# odp-vs-pinned.sh [--reps N] [--iters N] [--no-save]   (host)
#
# Steady-state cost of ODP against pinned MRs on our rxe, in one guest boot
# (tests/vm/run-in-guest.sh), with Debian's perftest 4.5:
#
#   ib_write_bw, ib_read_bw, ib_send_bw at 64 KiB, 1 QP and 4 QPs (-q 4,
#       all QPs on one MR): bandwidth and message rate, ODP / pinned
#   ib_write_lat at 8 B and 64 KiB: latency, ODP - pinned (t_min,
#       t_typical, the median of the run's iterations, and t_avg). With
#       two busy-polling processes on the guest's two vCPUs, rxe's work
#       items often wait for the next scheduler tick (4 ms, HZ=250): a
#       whole run's t_typical is then ~4 ms instead of ~0.1 ms, pinned or
#       not. t_min is the stable figure.
#
# Each measurement is repeated N times (default 3); pinned and ODP run
# back to back, the order swapped every repetition, so that drift hits
# both alike; the ratio is the one of the medians. Bandwidth runs move
# --iters messages (default 400, i.e. 25 MiB, 3 s or so; -n 400/QPS per QP)
# after perftest's --perform_warm_up (write, read; it takes the ODP
# first-touch faults out of the measurement; ib_send_bw has no warm-up,
# its buffer's first touch is a few pages of the 25 MiB). Not -D: perftest
# computes its report (and calibrates its clock, a linear fit that fails
# with r^2 < 0.9 when the guest is busy) while a -D run's send queue still
# drains; with -n the guest is idle by then. A failed run is retried (at
# most twice; see run_one) and counted in the summary. TCG makes absolute
# numbers meaningless, and even ratios move by 20 % or so between runs of
# this script (busy host): compare ratios, and repeat.
#
# Prints a table; saves it as JSON in
# perf/results/odp-vs-pinned-YYYYMMDD-HHMM-KERNEL.json
# (unless --no-save). Raw perftest reports and guest logs stay in
# build/perf/odp-vs-pinned-DATE/.
#
# Internally: odp-vs-pinned.sh --guest OUTDIR REPS ITERS runs the
# measurements in the guest, and --summarise OUTDIR [SAVE] the table.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)

bw_tools=(ib_write_bw ib_read_bw ib_send_bw)
qps=(1 4)
lat_sizes=(8 65536)

# A result perftest could not compute (t_stdev may be nan: not used here).
bad_value='(BW_average|MsgRate|t_typical|t_avg|t_min)"?[[:space:]]*:[[:space:]]*-?(inf|nan)'

# run_one JSON ARGS...: perftest-pair with a timeout. A failed run is
# retried (at most twice) and each failed attempt is logged in
# OUTDIR/retries.txt (the summary counts them): perftest's cycles-per-usec
# calibration (r^2 < 0.9) fails when the guest is busy, and stock rxe's
# ib_send_bw -q 4 sometimes ends in LOC_QP_OP_ERR / REM_OP_ERR (seen with
# Debian's own rdma_rxe too, 2 runs of 16).
run_one() {
	local json=$1 try rc why
	shift
	for try in 1 2 3; do
		rm -f "$json" "$json".*.log
		rc=0
		timeout --kill-after=5 180 "$here/perftest-pair.sh" "$json" "$@" \
			2>/dev/null || rc=$?
		if [ "$rc" = 0 ] && [ -s "$json" ] && ! grep -qiE "$bad_value" "$json"; then
			return 0
		fi
		why=$({ grep -h -m1 -e "Can't produce" -e 'Correlation coefficient' \
			-e 'Failed status' -e 'Couldn' "$json".*.log 2>/dev/null ||
			true; } | head -n1 | tr -s ' \t' ' ')
		echo "$(basename "$json" .json) try $try exit $rc:${why:- no report}" |
			tee -a "$(dirname "$(dirname "$json")")/retries.txt"
	done
	tail -n 5 "$json".*.log 2>/dev/null || true
	rm -f "$json"
	return 0
}

guest() {
	local out=$1 reps=$2 iters=$3 rep tool q size mode order
	mkdir -p "$out/raw"
	{
		echo "kernel=$(uname -r)"
		echo "perftest=$(dpkg-query -W -f '${Version}' perftest)"
		echo "rdma_core=$(dpkg-query -W -f '${Version}' libibverbs1)"
		echo "odp_caps=$(ibv_devinfo -v -d rxe0 | grep -c -E 'SUPPORT_(SEND|RECV|WRITE|READ)')"
		echo "reps=$reps"
		echo "iters=$iters"
	} >"$out/meta.txt"
	for rep in $(seq "$reps"); do
		if [ $((rep % 2)) = 1 ]; then order=(pinned odp); else order=(odp pinned); fi
		for tool in "${bw_tools[@]}"; do
			for q in "${qps[@]}"; do
				for mode in "${order[@]}"; do
					local args=(-s 65536 -n $((iters / q)) -q "$q")
					[ "$tool" = ib_send_bw ] || args+=(--perform_warm_up)
					[ "$mode" = odp ] && args+=(--odp)
					echo "rep $rep: $tool ${args[*]}"
					run_one "$out/raw/$tool.q$q.$mode.$rep.json" \
						"$tool" "${args[@]}"
				done
			done
		done
		for size in "${lat_sizes[@]}"; do
			for mode in "${order[@]}"; do
				local args=(-s "$size" -n $((size > 4096 ? 100 : 300)))
				[ "$mode" = odp ] && args+=(--odp)
				echo "rep $rep: ib_write_lat ${args[*]}"
				run_one "$out/raw/ib_write_lat.s$size.$mode.$rep.json" \
					ib_write_lat "${args[@]}"
			done
		done
	done
}

summarise() {
	/usr/bin/python3 - "$here" "$@" <<'EOF'
import datetime, glob, json, os, re, statistics, sys
sys.path.insert(0, sys.argv[1])
import perftest_json as pj

out = sys.argv[2]
save = sys.argv[3] if len(sys.argv) > 3 else ''
meta = dict(l.strip().split('=', 1) for l in open(f'{out}/meta.txt') if '=' in l)
runs = {}
for path in sorted(glob.glob(f'{out}/raw/*.json')):
    m = re.match(r'(\w+)\.([qs]\d+)\.(pinned|odp)\.(\d+)\.json$',
                 os.path.basename(path))
    if not m:
        continue
    tool, cfg, mode, rep = m.groups()
    try:
        s = pj.summary(path)
    except (ValueError, KeyError, TypeError):
        continue
    runs.setdefault((tool, cfg), {}).setdefault(mode, []).append(s)

def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None

rows = []
for (tool, cfg), modes in sorted(runs.items()):
    row = {'tool': tool}
    lat = tool.endswith('_lat')
    if lat:
        row['bytes'] = int(cfg[1:])
        keys = ('lat_min', 'lat_typ', 'lat_avg')
    else:
        row['bytes'] = 65536
        row['qps'] = int(cfg[1:])
        keys = ('bw', 'rate')
    for mode in ('pinned', 'odp'):
        for k in keys:
            vals = [s[k] for s in modes.get(mode, [])]
            row[f'{mode}_{k}'] = vals
            row[f'{mode}_{k}_median'] = med(vals)
    for k in keys:
        p, o = row[f'pinned_{k}_median'], row[f'odp_{k}_median']
        if lat:
            row[f'delta_{k}_us'] = None if p is None or o is None else round(o - p, 2)
        else:
            row[f'ratio_{k}'] = None if not p or o is None else round(o / p, 3)
    rows.append(row)

def f(v, spec):
    return '-' if v is None else format(v, spec)

print(f"ODP vs pinned on rxe0, kernel {meta.get('kernel')}, perftest "
      f"{meta.get('perftest')} (rdma-core {meta.get('rdma_core')}); "
      f"medians of {meta.get('reps')} runs of {meta.get('iters')} x 64 KiB")
print(f'{"tool":<14}{"qps":>4}{"bytes":>7}{"pinned MB/s":>13}{"odp MB/s":>10}'
      f'{"BW odp/pin":>12}{"rate odp/pin":>14}')
for r in rows:
    if 'qps' in r:
        print(f'{r["tool"]:<14}{r["qps"]:>4}{r["bytes"]:>7}'
              f'{f(r["pinned_bw_median"], ".2f"):>13}{f(r["odp_bw_median"], ".2f"):>10}'
              f'{f(r["ratio_bw"], ".3f"):>12}{f(r["ratio_rate"], ".3f"):>14}')
print(f'{"latency (usec)":<14}{"bytes":>7}', end='')
for k in ('t_min', 't_typ', 't_avg'):
    print(f'{"pin " + k:>11}{"odp " + k:>11}{"delta":>9}', end='')
print()
for r in rows:
    if 'qps' not in r:
        print(f'{r["tool"]:<14}{r["bytes"]:>7}', end='')
        for k in ('lat_min', 'lat_typ', 'lat_avg'):
            print(f'{f(r[f"pinned_{k}_median"], ".1f"):>11}'
                  f'{f(r[f"odp_{k}_median"], ".1f"):>11}'
                  f'{f(r[f"delta_{k}_us"], "+.1f"):>9}', end='')
        print()
reps = int(meta.get('reps', 0))
missing = [f'{r["tool"]}.{"q%d" % r["qps"] if "qps" in r else r["bytes"]}'
           for r in rows
           if any(len(r.get(f'{m}_bw', r.get(f'{m}_lat_typ'))) < reps
                  for m in ('pinned', 'odp'))]
if missing:
    print('incomplete (failed runs):', ', '.join(missing))
try:
    retries = [l.strip() for l in open(f'{out}/retries.txt') if l.strip()]
except OSError:
    retries = []
meta['failed_attempts'] = len(retries)
if retries:
    print(f'{len(retries)} failed attempts (retried), see {out}/retries.txt:')
    for l in retries:
        print('  ' + l)
if save:
    doc = {'date': datetime.datetime.now().isoformat(timespec='seconds'),
           'method': 'perf/odp-vs-pinned.sh: one QEMU TCG guest boot; pinned '
                     'and --odp back to back, order swapped each repetition; '
                     'medians; ratios = odp/pinned, deltas = odp - pinned (usec)',
           'units': {'bw': 'MB/s', 'rate': 'Mpps', 'lat': 'usec'},
           'meta': meta, 'results': rows}
    with open(save, 'w') as fh:
        json.dump(doc, fh, indent=1)
        fh.write('\n')
    print(f'saved {save}')
EOF
}

case ${1:-} in
--guest)
	guest "$2" "$3" "$4"
	exit 0
	;;
--summarise)
	summarise "$2" "${3:-}"
	exit 0
	;;
esac

reps=3 iters=400 save=1
while [ $# -gt 0 ]; do
	case $1 in
	--reps) reps=$2; shift ;;
	--iters) iters=$2; shift ;;
	--no-save) save=0 ;;
	*) sed -n '3,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0" >&2; exit 2 ;;
	esac
	shift
done

stamp=$(date +%Y%m%d-%H%M%S)
out=$top/build/perf/odp-vs-pinned-$stamp
mkdir -p "$out"
eval "$("$top/scripts/kernel-env.sh")"
sha256sum <"$top/build/$KVER/drivers/infiniband/sw/rxe/rdma_rxe.ko" >"$out/ko.sha256"
start=$SECONDS
"$top/tests/vm/run-in-guest.sh" --quiet --out "$out" -- \
	"$0" --guest /results "$reps" "$iters"
echo "guest run: $((SECONDS - start)) s (logs in $out)"
{
	echo "source=$(git -C "$top" describe --always --dirty 2>/dev/null)"
	# The modules the guest loaded (make may have rebuilt them since).
	echo "rxe_ko_sha256=$(cut -c1-16 "$out/ko.sha256")"
} >>"$out/meta.txt"
file=
if [ "$save" = 1 ]; then
	kver=$(sed -n 's/^kernel=//p' "$out/meta.txt")
	mkdir -p "$here/results"
	file=$here/results/odp-vs-pinned-${stamp%??}-$kver.json
fi
summarise "$out" "$file"
