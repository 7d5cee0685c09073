#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# sweep.sh [--reps N] [--mib N] [--kernel NAME] [--build DIR] [--sizes LIST]
#          [--no-save]   (host; make bench-sweep)
#
# ib_write_bw bandwidth against message size, 4 KiB to 8 MiB, with pinned
# memory, explicit ODP (--odp) and implicit ODP (--odp with
# perf/preload/implicit-odp.so, which registers the whole address space
# instead: perftest has no implicit option), in one guest boot without
# debug options (run-in-guest.sh --bench). Per size the three modes run
# back to back, in the order pinned, ODP, implicit in odd repetitions and
# the reverse in even ones; each run moves about --mib MiB (default 64,
# at least 20 messages), from 64 KiB on after perftest's warm-up, which
# takes the ODP first-touch faults out of it (it hangs perftest 4.5 with
# smaller messages, whose buffers are a few pages: their first touch is
# a sliver of the run). A run that fails is counted, not retried.
#
# Then the first-touch cost against pages: perf/first-touch.c with WRITEs
# of 1, 2, 4 ... 256 untouched 4 KiB pages of an ODP MR, against the same
# WRITEs once the pages are resident (what a fault adds per page).
#
# Saves perf/results/sweep-DATE-KERNEL.{md,json} (every sample; the
# table holds the medians over --reps, default 2),
# perf/results/sweep-DATE-KERNEL.png (gnuplot: bandwidth against size,
# one line per mode) and perf/results/sweep-DATE-KERNEL-first-touch.png.
# Raw reports and guest logs: build/perf/sweep-*/.
#
# Internally: sweep.sh --guest OUTDIR REPS MIB SIZES runs in the guest.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
modes=(pinned odp implicit)
sizes_default=4096,8192,16384,32768,65536,131072,262144,524288,1048576,2097152,4194304,8388608

guest() {
	local out=$1 reps=$2 mib=$3 sizes=$4 rep size mode n rc
	local -a order args env
	mkdir -p "$out/raw"
	: >"$out/failed.txt"
	{
		echo "kernel=$(uname -r)"
		echo "perftest=$(dpkg-query -W -f '${Version}' perftest)"
		echo "reps=$reps"
		echo "mib=$mib"
	} >"$out/meta.txt"
	for rep in $(seq "$reps"); do
		order=("${modes[@]}")
		[ $((rep % 2)) = 1 ] || order=(implicit odp pinned)
		for size in ${sizes//,/ }; do
			n=$((mib * 1048576 / size))
			[ "$n" -ge 20 ] || n=20
			for mode in "${order[@]}"; do
				args=(-q 1 -s "$size" -n "$n")
				# perftest 4.5's warm-up hangs with small messages
				[ "$size" -lt 65536 ] || args+=(--perform_warm_up)
				env=()
				[ "$mode" = pinned ] || args+=(--odp)
				[ "$mode" != implicit ] ||
					env=(LD_PRELOAD="$here/out/implicit-odp.so")
				echo "rep $rep: $size $mode"
				rc=0
				timeout --kill-after=5 600 env "${env[@]}" \
					"$here/perftest-pair.sh" "$out/raw/$mode.$size.$rep.json" \
					ib_write_bw "${args[@]}" 2>/dev/null || rc=$?
				json=$out/raw/$mode.$size.$rep.json
				if [ "$rc" != 0 ] || [ "$("$here/perftest_json.py" --check "$json")" != ok ]; then
					echo "$mode.$size.$rep: exit $rc" >>"$out/failed.txt"
					rm -f "$json"
				elif [ "$mode" = implicit ] &&
				     ! grep -q "implicit-odp: [1-9][0-9]* registrations made implicit" "$json.client.log"; then
					# the preload library must have done its work
					echo "$mode.$size.$rep: no implicit MR" >>"$out/failed.txt"
					rm -f "$json"
				fi
			done
		done
	done
	for span in 1 2 4 8 16 32 64 128 256; do
		"$here/out/first-touch" -n 1024 -r 3 -s "$span" |
			grep '^first-touch span' >>"$out/first-touch.txt" ||
			echo "first-touch -s $span failed" >>"$out/failed.txt"
	done
}

# summarise OUTDIR SAVE: table, JSON and plot
summarise() {
	/usr/bin/python3 - "$here" "$1" "$2" "${modes[@]}" <<'EOF'
import datetime, json, os, statistics, subprocess, sys
sys.path.insert(0, sys.argv[1])
import perftest_json as pj

out, save, modes = sys.argv[2], sys.argv[3], sys.argv[4:]
meta = dict(l.rstrip('\n').split('=', 1) for l in open(f'{out}/meta.txt') if '=' in l)
failed = [l.strip() for l in open(f'{out}/failed.txt') if l.strip()]
samples = {}
for f in os.listdir(f'{out}/raw'):
    if not f.endswith('.json'):
        continue
    mode, size, rep = f[:-5].split('.')
    samples.setdefault(int(size), {}).setdefault(mode, {})[int(rep)] = \
        pj.summary(f'{out}/raw/{f}')['bw']
sizes = sorted(samples)
def med(size, mode):
    v = list(samples[size].get(mode, {}).values())
    return statistics.median(v) if v else None
def fmt(v, spec='.2f'):
    return '-' if v is None else format(v, spec)
def size_name(s):
    return f'{s >> 20} MiB' if s >= 1 << 20 else f'{s >> 10} KiB'
lines = [f"ib_write_bw against message size on rxe0, {meta['kernel']}, perftest "
         f"{meta['perftest']}, about {meta['mib']} MiB a run, median of "
         f"{meta['reps']} repetitions, one boot ({datetime.date.today()})", '',
         '| size | pinned MB/s | ODP MB/s | implicit ODP MB/s | ODP ÷ pinned | implicit ÷ ODP |',
         '|---:|---:|---:|---:|---:|---:|']
rows = []
for s in sizes:
    p, o, i = (med(s, m) for m in modes)
    rows.append({'size': s, 'samples': samples[s], 'pinned': p, 'odp': o, 'implicit': i})
    lines.append(f'| {size_name(s)} | {fmt(p)} | {fmt(o)} | {fmt(i)} | '
                 f'{fmt(o / p if o and p else None, ".3f")} | '
                 f'{fmt(i / o if i and o else None, ".3f")} |')
touch = []
if os.path.exists(f'{out}/first-touch.txt'):
    for l in open(f'{out}/first-touch.txt'):
        w = l.split()
        touch.append({w[i]: float(w[i + 1]) for i in range(1, len(w) - 1, 2)})
if touch:
    lines += ['', 'First touch against pages (perf/first-touch.c -n 1024 -r 3 -s '
              'PAGES: a WRITE of PAGES untouched 4 KiB pages of an ODP MR against '
              'the same WRITE warm; medians of 3 rounds):', '',
              '| pages a WRITE | cold µs | warm µs | fault µs per page | fault ÷ warm | CPU first touch µs per page |',
              '|---:|---:|---:|---:|---:|---:|']
    for t in touch:
        lines.append(f"| {int(t['span'])} | {t['cold_us']:.1f} | {t['warm_us']:.1f} | "
                     f"{t['extra_per_page_us']:.2f} | {t['share']:.2f} | "
                     f"{fmt(t.get('cpu_fault_us'), '.2f')} |")
text = pj.table_text(lines, failed)
print(text, end='')
with open(f'{out}/sweep.dat', 'w') as fh:
    for r in rows:
        fh.write(f"{r['size']} " + ' '.join(fmt(r[m], '.3f') for m in modes) + '\n')
with open(f'{out}/first-touch.dat', 'w') as fh:
    for t in touch:
        fh.write(f"{int(t['span'])} {t['extra_per_page_us']:.3f} {t['warm_us'] / t['span']:.3f}\n")
if save:
    with open(save + '.md', 'w') as fh:
        fh.write(text)
    with open(save + '.json', 'w') as fh:
        json.dump({'date': datetime.datetime.now().isoformat(timespec='seconds'),
                   'method': 'perf/sweep.sh', 'unit': 'MB/s (MiB/s, perftest)',
                   'meta': meta, 'failed': failed, 'results': rows,
                   'first_touch': touch}, fh, indent=1)
        fh.write('\n')
    gp = f"""set terminal pngcairo size 900,560 font ',10'
set output '{save}.png'
set title 'ib\\_write\\_bw on rxe0, {meta['kernel']} (QEMU TCG guest), median of {meta['reps']}'
set xlabel 'message size (bytes)'
set ylabel 'bandwidth (MiB/s)'
set logscale x 2
set format x '2^{{%L}}'
set key bottom right
set yrange [0:*]
set grid
set datafile missing '-'
plot '{out}/sweep.dat' using 1:2 with linespoints title 'pinned', \\
     '' using 1:3 with linespoints title 'ODP (explicit)', \\
     '' using 1:4 with linespoints title 'implicit ODP'
"""
    gp += f"""set output '{save}-first-touch.png'
set title 'first touch of an ODP MR on rxe0, {meta['kernel']} (QEMU TCG guest)'
set xlabel '4 KiB pages a WRITE touches'
set ylabel 'microseconds per page'
set format x '%g'
set yrange [*:*]
set logscale y 10
set key top right
plot '{out}/first-touch.dat' using 1:2 with linespoints title 'fault (cold - warm WRITE)', \\
     '' using 1:3 with linespoints title 'warm WRITE'
"""
    subprocess.run(['gnuplot'], input=gp, text=True, check=True)
    print(f'saved {save}.md, {save}.json, {save}.png and {save}-first-touch.png')
EOF
}

case ${1:-} in
--guest)
	guest "$2" "$3" "$4" "$5"
	exit 0
	;;
esac

reps=2 mib=64 save=1 kernel=() build=() sizes=$sizes_default
while [ $# -gt 0 ]; do
	case $1 in
	--reps) reps=$2; shift ;;
	--mib) mib=$2; shift ;;
	--kernel) kernel=(--kernel "$2"); shift ;;
	--build) build=(--build "$2"); shift ;;
	--sizes) sizes=$2; shift ;;
	--no-save) save=0 ;;
	*) sed -n '3,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0" >&2; exit 2 ;;
	esac
	shift
done
make -s -C "$here" >/dev/null
out=$top/build/perf/sweep-$(date +%Y%m%d-%H%M%S)-$$
mkdir -p "$out"
start=$SECONDS
"$top/tests/vm/run-in-guest.sh" --bench "${kernel[@]}" "${build[@]}" \
	--timeout 14400 --quiet --out "$out" -- \
	"$0" --guest /results "$reps" "$mib" "$sizes" >"$out/host.log" 2>&1 ||
	{ echo "sweep: the boot failed, see $out/host.log" >&2; exit 1; }
echo "guest run: $((SECONDS - start)) s (logs in $out)"
kver=$(sed -n 's/^kernel=//p' "$out/meta.txt")
base=''
[ "$save" = 0 ] || base=$here/results/sweep-$(date +%Y%m%d-%H%M)-$kver
summarise "$out" "$base"
