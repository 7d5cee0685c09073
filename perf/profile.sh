#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# profile.sh [--kernel NAME] [--build DIR] [--pairs N] [--iters N]
#            TOOL [ARGS...]                              (host)
#
# Where ODP's extra work goes: TOOL (ib_write_bw, ib_read_bw, ib_send_bw)
# runs pinned and with --odp in ABBA order, N pairs (default 2), in one
# 1-vCPU boot whose guest time counts executed instructions
# (run-in-guest.sh --bench --icount --smp 1), each run under
# `perf record -a -e cpu-clock -c 100000`: a sample every 100 us of guest
# time is one every 100000 instructions, whatever the host does. Both
# sides move the same bytes (64 KiB messages, ITERS of them, default 2000,
# after perftest's warm-up; ARGS are added to both), so a function's
# samples compare as they are. Prints the functions ordered by how many
# more samples (instructions) they took with ODP than pinned, a pair's
# mean, with the bandwidth of each run, where the samples fell (TOOL's
# user space, which busy-polls its CQ and on one vCPU takes turns with
# rxe's workers; TOOL's kernel time; the other tasks) and the context
# switches of a run (/proc/stat); saves the table as
# perf/results/profile-DATE-TOOL.md. Raw reports and guest logs:
# build/perf/profile-DATE-TOOL-PID/.
#
# Internally: profile.sh --guest OUTDIR PAIRS ITERS TOOL [ARGS...] runs in
# the guest.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)

# guest OUTDIR PAIRS ITERS TOOL [ARGS...]
guest() {
	local out=$1 pairs=$2 iters=$3 tool=$4 pair side order args raw
	shift 4
	mkdir -p "$out/raw"
	for pair in $(seq "$pairs"); do
		order=(pin odp)
		[ $((pair % 2)) = 1 ] || order=(odp pin)
		for side in "${order[@]}"; do
			raw=$out/raw/$side.$pair
			args=(-q 1 -s 65536 -n "$iters" "$@")
			[ "$tool" = ib_send_bw ] || args+=(--perform_warm_up)
			[ "$side" = pin ] || args+=(--odp)
			echo "pair $pair: $side: $tool ${args[*]}"
			# the context switches of the run: before, after
			awk '$1 == "ctxt" { print $2 }' /proc/stat >"$raw.ctxt"
			perf record -q -a -e cpu-clock -c 100000 -o "$raw.data" -- \
				"$here/perftest-pair.sh" "$raw.json" "$tool" "${args[@]}"
			awk '$1 == "ctxt" { print $2 }' /proc/stat >>"$raw.ctxt"
			perf report -i "$raw.data" -n --no-children \
				--sort comm,sym --stdio >"$raw.report" 2>/dev/null
			rm -f "$raw.data"
		done
	done
}

# table OUTDIR TOOL: the markdown table of OUTDIR/raw
table() {
	/usr/bin/python3 - "$here" "$1" "$2" <<'EOF'
import collections, glob, os, re, sys
sys.path.insert(0, sys.argv[1])
import perftest_json
out, tool = sys.argv[2], sys.argv[3]
line = re.compile(r'\s*[\d.]+%\s+(\d+)\s+(\S+)\s+\[(.)\]\s+(.*\S)')
idle = re.compile(r'idle|halt|mwait')
samples = {s: collections.Counter() for s in ('pin', 'odp')}
busy = {s: [] for s in samples}
# where the samples fell: the tool's user space (its CQ polling), its
# kernel time (posting, and what softirqs did on its time), the rest
# (rxe's workers): on one vCPU the poller takes turns with the workers
where = {s: collections.Counter() for s in samples}
bw = {s: [] for s in samples}
for rep in sorted(glob.glob(f'{out}/raw/*.report')):
    side = os.path.basename(rep).split('.')[0]
    n = 0
    for l in open(rep):
        m = line.match(l)
        if not m:
            continue
        count, comm, sym = int(m[1]), m[2], m[4]
        if comm.startswith('swapper') and idle.search(sym):
            continue
        samples[side][sym] += count
        if comm == tool[:15]:
            where[side]['user' if m[3] == '.' else 'kernel'] += count
        else:
            where[side]['rest'] += count
        n += count
    busy[side].append(n)
    before, after = map(int, open(rep[:-len('.report')] + '.ctxt').read().split())
    where[side]['ctxt'] += after - before
    js = rep[:-len('.report')] + '.json'
    try:
        bw[side].append(perftest_json.num(perftest_json.load(js)['results'], 'BW_average'))
    except Exception:  # a run that failed: no bandwidth, said below
        bw[side].append(None)
pairs = len(busy['pin'])
mean = {s: {k: v / pairs for k, v in samples[s].items()} for s in samples}
diff = {k: mean['odp'].get(k, 0) - mean['pin'].get(k, 0)
        for k in set(mean['pin']) | set(mean['odp'])}
tot = {s: sum(busy[s]) / pairs for s in busy}
print(f'{tool}, 64 KiB, pinned against --odp, {pairs} ABBA pairs in one '
      '1-vCPU icount boot (a sample = 100000 instructions), a run\'s mean')
print()
print(f'- busy samples a run: pinned {tot["pin"]:.0f}, ODP {tot["odp"]:.0f} '
      f'(ODP ÷ pinned {tot["odp"] / tot["pin"]:.3f})')
print(f'- bandwidth (MB/s): pinned {bw["pin"]}, ODP {bw["odp"]}')
for k, what in (('user', f'{tool}\'s user space (polling the CQ)'),
                 ('kernel', f'{tool}\'s kernel time'),
                 ('rest', 'the other tasks (rxe\'s workers)')):
    p, o = where['pin'][k] / pairs, where['odp'][k] / pairs
    print(f'- {what}: pinned {p:.0f}, ODP {o:.0f} ({o - p:+.0f})')
print(f'- context switches a run: pinned {where["pin"]["ctxt"] / pairs:.0f}, '
      f'ODP {where["odp"]["ctxt"] / pairs:.0f}')
print()
print('| function | pinned | ODP | ODP − pinned | share of the difference |')
print('|---|---:|---:|---:|---:|')
extra = tot['odp'] - tot['pin']
for k in sorted(diff, key=lambda k: -abs(diff[k]))[:30]:
    share = f'{100 * diff[k] / extra:.0f} %' if extra else '-'
    print(f'| `{k}` | {mean["pin"].get(k, 0):.1f} | {mean["odp"].get(k, 0):.1f} '
          f'| {diff[k]:+.1f} | {share} |')
EOF
}

if [ "${1:-}" = --guest ]; then
	shift
	guest "$@"
	exit
fi

pairs=2 iters=2000 kernel=() build=()
while [ $# -gt 0 ]; do
	case $1 in
	--kernel) kernel=(--kernel "$2"); shift ;;
	--build) build=(--build "$2"); shift ;;
	--pairs) pairs=$2; shift ;;
	--iters) iters=$2; shift ;;
	-*) sed -n '3,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0" >&2; exit 2 ;;
	*) break ;;
	esac
	shift
done
[ $# -gt 0 ] || { sed -n '3,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0" >&2; exit 2; }
tool=$1
shift
make -s -C "$here" >/dev/null
out=$top/build/perf/profile-$(date +%Y%m%d-%H%M%S)-$tool-$$
mkdir -p "$out"
"$top/tests/vm/run-in-guest.sh" --bench --icount --smp 1 "${kernel[@]}" \
	"${build[@]}" --timeout 7200 --quiet --out "$out" -- \
	"$0" --guest /results "$pairs" "$iters" "$tool" "$@" >"$out/host.log" 2>&1 ||
	{ echo "profile: the guest run failed, see $out/host.log" >&2; exit 1; }
table "$out" "$tool" | tee "$out/profile.md"
cp "$out/profile.md" "$here/results/profile-$(date +%Y%m%d-%H%M)-$tool.md"
