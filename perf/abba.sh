#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# abba.sh [--lat] [--smp N] [--mttcg] [--icount] [--mtu N] [--pairs N] [--iters N]
#         [--kernel NAME] [--build DIR] [--only NAME,...] [--no-save]
#         (host; make bench, make bench-lat)
# abba.sh --summary OUTDIR...   (the tables of boots run before)
#
# ODP against pinned on rxe0 with Debian's perftest 4.5, measured so that
# a few per cent can be told apart: one guest boot without debug options
# (tests/vm/run-in-guest.sh --bench), every comparison as N interleaved
# ABBA pairs (pair 1 runs A then B, pair 2 B then A, ..., and the pairs of
# all comparisons interleave, so that drift of the boot hits A and B
# alike), each comparison summarised as the median of its per-pair
# ratios B / A with their interquartile range. The noise comparison runs
# pinned against pinned: its median ratio must come out at 1.00 within
# the resolution claimed for the others.
#
# Comparisons (A: pinned; B: --odp unless named otherwise), 64 KiB unless
# named otherwise, bandwidth (MB/s), or message rate (Mpps) for 64 B:
#   noise.write.q1   ib_write_bw, pinned against pinned
#   write.q1 read.q1 send.q1     ib_{write,read,send}_bw, 1 QP
#   write.q4 read.q4 send.q4     the same with 4 QPs on one MR (-q 4)
#   write.64B        ib_write_bw -s 64 -n 20000, message rate
#   implicit.write.q1 implicit.read.q1 implicit.send.q1
#                    explicit ODP (A) against implicit ODP (B: --odp
#                    with perf/preload/implicit-odp.so, the +implicit of
#                    its arguments), 1 QP
# The boot's copy limit comes first and last (perf/copy-limit.c: one
# CPU's memcpy and crc32 bandwidth, the work rxe does per byte), and the
# table puts ib_write_bw (pinned and ODP, 1 QP) beside memcpy.
# --lat compares latency instead (ib_write_lat, typical latency in us,
# 8 B and 64 KiB; B - A is reported beside B / A), in a boot with one
# host thread per vCPU (run-in-guest.sh --mttcg): in round-robin TCG two
# processes that busy-poll for each other take turns at the guest's tick,
# and every latency comes out near 4 ms. Such a boot needs both host
# cores, so with several --kernel the boots run one after the other.
# Each 64 KiB run moves --iters messages (default 2000; -n ITERS/QPS per
# QP) after perftest's --perform_warm_up (write, read), which takes the
# ODP first-touch faults out of the measurement (ib_send_bw has none: its
# buffers' first touch is a few pages of the run; at 64 B perftest 4.5
# hangs in it, and there the first touch is one page). A run that fails is
# not retried: it is counted, its pair has no ratio, and the table says
# so.
#
# --kernel NAME boots another kernel of kernels.matrix, or one of
# kernels.upstream with its own rxe (upstream's ODP: e.g. sid's 7.x);
# given several times, it boots each (side by side, one host core each)
# and prints a table with a column per kernel;
# --build DIR loads our modules from another build tree (e.g. a commit
# before a change).
# --smp N boots N vCPUs (default 2); --mttcg runs the bandwidth
# comparisons in a boot with one host thread per vCPU too (boots one
# after the other). With them, the same comparisons show how much of a
# ratio comes from the way TCG shares one host thread between vCPUs.
# --icount boots with guest time counted in executed instructions
# (run-in-guest.sh --icount): a run's time is what its instructions cost,
# whatever else the host does, and a ratio says which side executes more
# per byte (a fault, a table walk, a lock) but nothing of cache misses or
# of host-side costs. The host's load does not enter it.
# --mtu N sets dummy0's MTU (default 1500: rxe's path MTU is the largest
# IB MTU that fits, 1024; 4096 from 4200) before the first run.
#
# Prints a markdown table per boot, then the side-by-side table; saves
# them with a JSON of every sample as
# perf/results/abba-DATE-KERNEL[+KERNEL...].{md,json} (unless --no-save).
# Raw reports and guest logs: build/perf/abba-DATE-KERNEL-PID/.
#
# Internally: abba.sh --guest OUTDIR PAIRS ITERS ONLY MTU SET runs the pairs
# of comparison set SET (bw, lat) in the guest.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)

# name|tool|A args|B args|metric
comparisons=(
	'noise.write.q1|ib_write_bw|-q 1|-q 1|bw'
	'write.q1|ib_write_bw|-q 1|-q 1 --odp|bw'
	'read.q1|ib_read_bw|-q 1|-q 1 --odp|bw'
	'send.q1|ib_send_bw|-q 1|-q 1 --odp|bw'
	'write.q4|ib_write_bw|-q 4|-q 4 --odp|bw'
	'read.q4|ib_read_bw|-q 4|-q 4 --odp|bw'
	'send.q4|ib_send_bw|-q 4|-q 4 --odp|bw'
	'write.64B|ib_write_bw|-q 1 -s 64 -n 20000|-q 1 -s 64 -n 20000 --odp|rate'
	'implicit.write.q1|ib_write_bw|-q 1 --odp|-q 1 --odp +implicit|bw'
	'implicit.read.q1|ib_read_bw|-q 1 --odp|-q 1 --odp +implicit|bw'
	'implicit.send.q1|ib_send_bw|-q 1 --odp|-q 1 --odp +implicit|bw'
)
comparisons_lat=(
	'noise.lat.8B|ib_write_lat|-s 8 -n 2000|-s 8 -n 2000|lat_typ'
	'lat.8B|ib_write_lat|-s 8 -n 2000|-s 8 -n 2000 --odp|lat_typ'
	'lat.64K|ib_write_lat|-s 65536 -n 500|-s 65536 -n 500 --odp|lat_typ'
)

# Our odp_mirror's tracepoints, counted over each run when the kernel
# has them (perf stat -a): faults, faults that took more than one
# snapshot (retried), invalidate callbacks. Upstream's rxe has none.
events=(-e odp_mirror:odp_mirror_fault
	-e odp_mirror:odp_mirror_fault --filter 'tries > 1'
	-e odp_mirror:odp_mirror_invalidate)

# run_one JSON TOOL ARGS...: one perftest run (its tracepoint counts in
# JSON.events); a failure leaves no JSON and a line in
# OUTDIR/failed.txt. An argument +implicit runs both sides with
# perf/preload/implicit-odp.so, and the run fails unless the client's
# registrations were made implicit.
run_one() {
	local json=$1 rc=0 why count=() env=() args=() a
	shift
	for a in "$@"; do
		if [ "$a" = +implicit ]; then
			env=(LD_PRELOAD="$here/out/implicit-odp.so")
		else
			args+=("$a")
		fi
	done
	[ ! -d /sys/kernel/tracing/events/odp_mirror ] ||
		count=(perf stat -a -x ',' -o "$json.events" "${events[@]}" --)
	timeout --kill-after=5 300 "${count[@]}" env "${env[@]}" \
		"$here/perftest-pair.sh" "$json" "${args[@]}" 2>/dev/null || rc=$?
	if [ "$rc" = 0 ] && why=$("$here/perftest_json.py" --check "$json") &&
		[ "$why" = ok ]; then
		if [ ${#env[@]} = 0 ] ||
		   grep -q "implicit-odp: [1-9][0-9]* registrations made implicit" \
			"$json.client.log"; then
			return 0
		fi
		why=" no implicit MR"
	else
		why=$({ grep -h -m1 -e "Can't produce" -e 'Failed status' -e 'Couldn' \
			"$json".*.log 2>/dev/null || true; } | head -n1 | tr -s ' \t' ' ')
	fi
	echo "$(basename "$json" .json): exit $rc:${why:- no usable report}" >>"$(dirname "$json")/../failed.txt"
	rm -f "$json"
}

guest() {
	local out=$1 pairs=$2 iters=$3 only=$4 mtu=$5 pair c name tool a b
	local order side args q
	mkdir -p "$out/raw"
	: >"$out/failed.txt"
	{
		echo "kernel=$(uname -r)"
		echo "cmdline=$(cat /proc/cmdline)"
		echo "perftest=$(dpkg-query -W -f '${Version}' perftest)"
		echo "rdma_core=$(dpkg-query -W -f '${Version}' libibverbs1)"
		echo "pairs=$pairs"
		echo "iters=$iters"
		echo "mtu=$mtu"
	} >"$out/meta.txt"
	ip link set dummy0 mtu "$mtu"
	mountpoint -q /sys/kernel/tracing ||
		mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || true
	"$here/out/copy-limit" >"$out/copy.start.txt"
	for pair in $(seq "$pairs"); do
		for c in "${comparisons[@]}"; do
			IFS="|" read -r name tool a b _ <<<"$c"
			[ -z "$only" ] || [[ ,$only, == *,"$name",* ]] || continue
			if [ $((pair % 2)) = 1 ]; then order=(A B); else order=(B A); fi
			for side in "${order[@]}"; do
				if [ "$side" = A ]; then read -ra args <<<"$a"; else read -ra args <<<"$b"; fi
				q=$(sed -n 's/.*-q \([0-9]*\).*/\1/p' <<<"${args[*]}")
				# 64 KiB and ITERS messages, with the warm-up
				# (it hangs perftest 4.5 at 64 B), unless the
				# comparison says otherwise
				if [[ " ${args[*]} " != *" -s "* ]]; then
					args+=(-s 65536)
					[ "$tool" = ib_send_bw ] || args+=(--perform_warm_up)
				fi
				[[ " ${args[*]} " == *" -n "* ]] || args+=(-n $((iters / q)))
				echo "pair $pair: $name $side: $tool ${args[*]}"
				run_one "$out/raw/$name.$side.$pair.json" "$tool" "${args[@]}"
			done
		done
	done
	"$here/out/copy-limit" >"$out/copy.end.txt"
}

# summarise OUTDIR: print the boot's table; write it and every sample to
# OUTDIR/summary.{md,json}.
summarise() {
	/usr/bin/python3 - "$here" "$1" "${comparisons[@]}" <<'EOF'
import datetime, json, os, statistics, sys
sys.path.insert(0, sys.argv[1])
import perftest_json as pj

out = sys.argv[2]
comps = [c.split('|') for c in sys.argv[3:]]
meta = dict(l.rstrip('\n').split('=', 1) for l in open(f'{out}/meta.txt') if '=' in l)
pairs = int(meta['pairs'])
failed = [l.strip() for l in open(f'{out}/failed.txt') if l.strip()]

def quartiles(v):
    if len(v) < 2:
        return (v[0], v[0]) if v else (None, None)
    q = statistics.quantiles(v, n=4, method='inclusive')
    return q[0], q[2]

def events(path):
    """faults, retried faults, invalidations of a run (perf stat -x,
    output, in the order of abba.sh's events), or None."""
    if not os.path.exists(path):
        return None
    n = [l.split(',')[0] for l in open(path) if l.count(',') > 2]
    n = [int(v) if v.isdigit() else None for v in n]
    return dict(zip(('faults', 'retried', 'invalidations'), n)) if len(n) == 3 else None

rows = []
for name, tool, a, b, metric in comps:
    samples = {'A': {}, 'B': {}}
    for side in 'AB':
        for p in range(1, pairs + 1):
            path = f'{out}/raw/{name}.{side}.{p}.json'
            if os.path.exists(path):
                samples[side][p] = pj.summary(path)[metric]
    if not samples['A'] and not samples['B']:
        continue
    counts = {'A': [], 'B': []}
    for side in 'AB':
        for p in samples[side]:
            c = events(f'{out}/raw/{name}.{side}.{p}.json.events')
            if c:
                counts[side].append(c)
    ratios = [samples['B'][p] / samples['A'][p] for p in range(1, pairs + 1)
              if p in samples['A'] and p in samples['B'] and samples['A'][p]]
    diffs = [samples['B'][p] - samples['A'][p] for p in range(1, pairs + 1)
             if p in samples['A'] and p in samples['B']]
    q1, q3 = quartiles(ratios)
    d1, d3 = quartiles(diffs)
    rows.append({
        'name': name, 'tool': tool, 'A': a, 'B': b, 'metric': metric,
        'A_samples': [samples['A'].get(p) for p in range(1, pairs + 1)],
        'B_samples': [samples['B'].get(p) for p in range(1, pairs + 1)],
        'A_median': statistics.median(samples['A'].values()) if samples['A'] else None,
        'B_median': statistics.median(samples['B'].values()) if samples['B'] else None,
        'ratios': ratios,
        'ratio_median': statistics.median(ratios) if ratios else None,
        'ratio_q1': q1, 'ratio_q3': q3,
        'diffs': diffs, 'diff_median': statistics.median(diffs) if diffs else None,
        'diff_q1': d1, 'diff_q3': d3,
        'failed_runs': 2 * pairs - len(samples['A']) - len(samples['B']),
        'A_events': counts['A'], 'B_events': counts['B'],
    })

def f(v, spec):
    return '-' if v is None else format(v, spec)

unit = {'bw': 'MB/s', 'rate': 'Mpps', 'lat_typ': 'us'}
specs = {'bw': '.2f', 'rate': '.4f', 'lat_typ': '.1f'}
lines = [
    f"ODP ÷ pinned on rxe0, {meta['kernel']}, perftest {meta['perftest']}, "
    f"{pairs} ABBA pairs, one boot ({meta.get('smp', '2')} vCPUs, "
    f"MTU {meta.get('mtu', '1500')}, "
    f"TCG thread={meta.get('tcg', 'single')}"
    f"{', guest time = instructions (icount)' if meta.get('icount') == '1' else ''}, "
    f"{datetime.date.today()})",
    '',
    '| comparison | tool | A | B | A median | B median | B ÷ A, median of pairs | IQR | pairs | failed runs |',
    '|---|---|---|---|---:|---:|---:|---|---:|---:|',
]
for r in rows:
    spec = specs[r['metric']]
    lines.append(
        f"| {r['name']} | {r['tool']} | {r['A']} | {r['B']} | "
        f"{f(r['A_median'], spec)} {unit[r['metric']]} | "
        f"{f(r['B_median'], spec)} {unit[r['metric']]} | "
        f"**{f(r['ratio_median'], '.3f')}** | "
        f"{f(r['ratio_q1'], '.3f')} … {f(r['ratio_q3'], '.3f')} | "
        f"{len(r['ratios'])} | {r['failed_runs']} |")
counted = [r for r in rows if r['B_events']]
if counted:
    lines += ['', "odp_mirror's tracepoints per run, median (A: pinned, B: ODP): "
              'faults, of them retried, invalidations:', '',
              '| comparison | A | B |', '|---|---|---|']
    def med(evs):
        return ' / '.join(f(statistics.median([e[k] for e in evs if e[k] is not None] or [0]), '.0f')
                          for k in ('faults', 'retried', 'invalidations'))
    for r in counted:
        lines.append(f"| {r['name']} | {med(r['A_events']) if r['A_events'] else '-'} | {med(r['B_events'])} |")
lat = [r for r in rows if r['metric'] == 'lat_typ']
if lat:
    lines += ['', 'Typical latency (perftest t_typical), B − A, median of the '
              'per-pair differences:', '',
              '| comparison | B − A µs | IQR µs |', '|---|---:|---|']
    for r in lat:
        lines.append(f"| {r['name']} | **{f(r['diff_median'], '.1f')}** | "
                     f"{f(r['diff_q1'], '.1f')} … {f(r['diff_q3'], '.1f')} |")
def kv(path):
    d = {}
    if os.path.exists(path):
        for l in open(path):
            k, _, v = l.strip().partition(' ')
            if k and not k.startswith('#'):
                d[k] = v if k.endswith('.driver') else float(v)
    return d
copy = {w: kv(f'{out}/copy.{w}.txt') for w in ('start', 'end')}
memcpy = [copy[w]['memcpy'] for w in copy if 'memcpy' in copy[w]]
over_memcpy = {}
if memcpy:
    lines += ['', "The boot's copy limit (perf/copy-limit.c, one CPU, 64 KiB "
              'buffers, MiB/s, at the start → at the end of the boot):', '']
    for k in ('memcpy', 'crc32', 'crc32-generic', 'crc32-pclmul', 'memcpy_crc32'):
        if k in copy['start'] or k in copy['end']:
            name = k + (f" ({copy['start'].get('crc32.driver', '?')})" if k == 'crc32' else '')
            lines.append(f"- {name}: {f(copy['start'].get(k), '.0f')} → {f(copy['end'].get(k), '.0f')}")
    w = next((r for r in rows if r['name'] == 'write.q1'), None)
    if w:
        m = statistics.mean(memcpy)
        over_memcpy = {'memcpy_mean': m, 'pinned': w['A_median'] and w['A_median'] / m,
                       'odp': w['B_median'] and w['B_median'] / m}
        lines.append(f"- ib_write_bw (64 KiB, 1 QP) ÷ memcpy: pinned {f(over_memcpy['pinned'], '.3f')}, "
                     f"ODP {f(over_memcpy['odp'], '.3f')}")
text = pj.table_text(lines, failed)
print(text, end='')
doc = {'date': datetime.datetime.now().isoformat(timespec='seconds'),
       'method': 'perf/abba.sh: one QEMU TCG guest boot without debug '
                 'options; interleaved ABBA pairs; per comparison the '
                 'median and quartiles of the per-pair ratios B / A',
       'units': unit, 'meta': meta, 'failed': failed, 'results': rows,
       'copy_limit': copy, 'write_bw_over_memcpy': over_memcpy}
with open(f'{out}/summary.json', 'w') as fh:
    json.dump(doc, fh, indent=1)
    fh.write('\n')
with open(f'{out}/summary.md', 'w') as fh:
    fh.write(text)
EOF
}

# side_by_side SAVE OUTDIR...: one table of every boot's ratios, a
# column per kernel; with SAVE (a path without extension) it and every
# boot's summary go to SAVE.md and SAVE.json.
side_by_side() {
	/usr/bin/python3 - "$@" <<'EOF'
import json, sys
save, outs = sys.argv[1], sys.argv[2:]
docs = [json.load(open(f'{o}/summary.json')) for o in outs]
def cell(r):
    if r is None or r['ratio_median'] is None:
        return '-'
    return (f"{r['ratio_median']:.3f} ({r['ratio_q1']:.3f} … {r['ratio_q3']:.3f})"
            + (f", {r['failed_runs']} failed" if r['failed_runs'] else ''))
names = []
for d in docs:
    names += [r['name'] for r in d['results'] if r['name'] not in names]
lines = ['| comparison (B ÷ A, median of pairs, IQR) | ' +
         ' | '.join(f"{d['meta']['kernel']}" for d in docs) + ' |',
         '|---|' + '---|' * len(docs)]
for n in names:
    lines.append(f'| {n} | ' + ' | '.join(
        cell(next((r for r in d['results'] if r['name'] == n), None))
        for d in docs) + ' |')
text = '\n'.join(lines) + '\n'
print(text, end='')
if save:
    with open(save + '.md', 'w') as fh:
        fh.write(text)
        for o in outs:
            fh.write('\n' + open(f'{o}/summary.md').read())
    with open(save + '.json', 'w') as fh:
        json.dump(docs, fh, indent=1)
        fh.write('\n')
    print(f'saved {save}.md and {save}.json')
EOF
}

case ${1:-} in
--summary)
	# summarise OUTDIR... of boots run before (build/perf/abba-*), and
	# save the side-by-side table under perf/results/
	shift
	for out in "$@"; do
		summarise "$out"
		echo
	done
	names=$(for out in "$@"; do
		basename "$out" | sed -E 's/^abba-[0-9]+-[0-9]+-//; s/-[0-9]+$//'
	done | paste -sd+)
	side_by_side "$here/results/abba-$(date +%Y%m%d-%H%M)-$names" "$@"
	exit 0
	;;
--guest)
	[ "${7:-bw}" = bw ] || comparisons=("${comparisons_lat[@]}")
	guest "$2" "$3" "$4" "${5:-}" "$6"
	exit 0
	;;
esac

pairs=6 iters=2000 save=1 kernels=() only='' build=() set=bw tcg=single icount=0 smp=2 mtu=1500
while [ $# -gt 0 ]; do
	case $1 in
	--lat) set=lat tcg=multi; comparisons=("${comparisons_lat[@]}") ;;
	--smp) smp=$2; shift ;;
	--mttcg) tcg=multi ;;
	--icount) icount=1 ;;
	--mtu) mtu=$2; shift ;;
	--pairs) pairs=$2; shift ;;
	--iters) iters=$2; shift ;;
	--kernel) kernels+=("$2"); shift ;;
	--only) only=$2; shift ;;
	--build) build=(--build "$2"); shift ;;
	--no-save) save=0 ;;
	*) sed -n '3,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0" >&2; exit 2 ;;
	esac
	shift
done
[ ${#kernels[@]} -gt 0 ] || kernels=("$("$top/scripts/kernel-env.sh" --list | head -n 1)")
boot=(--smp "$smp")
[ "$tcg" = single ] || boot+=(--mttcg)
if [ "$icount" = 1 ]; then
	# QEMU counts instructions with one TCG thread only
	[ "$tcg" = single ] || { echo "abba: --icount needs round-robin TCG (no --mttcg, --lat)" >&2; exit 2; }
	boot+=(--icount)
fi

make -s -C "$here" >/dev/null
# One boot per kernel, side by side (a guest runs on one host thread).
stamp=$(date +%Y%m%d-%H%M%S)
outs=() pids=() rc=0
# wait_boot I: wait for boot I; a failed one sets rc
wait_boot() {
	wait "${pids[$1]}" ||
		{ rc=1; echo "abba: the boot of ${kernels[$1]} failed, see ${outs[$1]}/host.log" >&2; }
}
start=$SECONDS
for k in "${kernels[@]}"; do
	out=$top/build/perf/abba-$stamp-$k-$$
	mkdir -p "$out"
	outs+=("$out")
	"$top/tests/vm/run-in-guest.sh" --bench "${boot[@]}" --kernel "$k" \
		"${build[@]}" --timeout 14400 --quiet --out "$out" -- \
		"$0" --guest /results "$pairs" "$iters" "$only" "$mtu" "$set" \
		>"$out/host.log" 2>&1 &
	pids+=($!)
	# a --mttcg boot takes both host cores: one at a time
	[ "$tcg" = single ] || wait_boot $((${#pids[@]} - 1))
done
if [ "$tcg" = single ]; then
	for i in "${!pids[@]}"; do
		wait_boot "$i"
	done
fi
echo "guest runs: $((SECONDS - start)) s (logs in ${outs[*]})"
[ "$rc" = 0 ] || exit 1
for out in "${outs[@]}"; do
	printf 'tcg=%s\nicount=%s\nsmp=%s\n' "$tcg" "$icount" "$smp" >>"$out/meta.txt"
	summarise "$out"
	echo
done
base='' tag=''
[ "$smp" = 2 ] || tag+=-smp$smp
[ "$tcg" = single ] || tag+=-mttcg
[ "$icount" = 0 ] || tag+=-icount
[ "$mtu" = 1500 ] || tag+=-mtu$mtu
[ "$set" = bw ] || tag+=-lat
[ "$save" = 0 ] || base=$here/results/abba-$(date +%Y%m%d-%H%M)$tag-$(IFS=+; echo "${kernels[*]}")
side_by_side "$base" "${outs[@]}"
