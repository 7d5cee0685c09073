#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# profile.sh [--kernel NAME] [--build DIR] [--pairs N] [--iters N]
#            [--implicit] TOOL [ARGS...]                 (host)
#
# Where ODP's extra work goes: TOOL (ib_write_bw, ib_read_bw, ib_send_bw)
# runs pinned (A) and with --odp (B) in ABBA order, N pairs (default 2),
# or with --implicit explicit ODP (A) and implicit ODP (B: --odp with
# perf/preload/implicit-odp.so, as in abba.sh), in one
# 1-vCPU boot whose guest time counts executed instructions
# (run-in-guest.sh --bench --icount --smp 1), each run under
# `perf record -a -e cpu-clock -c 100000`: a sample every 100 us of guest
# time is one every 100000 instructions, whatever the host does. Both
# sides move the same bytes (64 KiB messages, ITERS of them, default
# 20000, after perftest's warm-up, which hangs with -e and is left out
# then; ARGS are added to both), so a function's samples compare as they
# are. perf records the whole run: with 2000 messages its setup (pinned
# registration zeroes and pins pages, outside perftest's window) hid two
# thirds of ODP's extra work in the window. With -e (completion events)
# the client sleeps instead of busy-polling and every sample is work;
# without it, on one vCPU, the client's polling takes turns with rxe's
# workers, and its share moves the bandwidth. Prints the functions
# ordered by how many more samples (instructions) they took in B than
# in A, a pair's mean, with the bandwidth of each run, where the samples
# fell (TOOL's user space, its CQ polling; TOOL's kernel time; the other
# tasks) and the context switches of a run (/proc/stat); saves the table
# as
# perf/results/profile-DATE-TOOL[-implicit].md. Raw reports and guest
# logs: build/perf/profile-DATE-TOOL-PID/.
#
# Internally: profile.sh --guest OUTDIR MODE PAIRS ITERS TOOL [ARGS...]
# runs in the guest (MODE: pinned or implicit).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)

# the system's context switches so far
ctxt() {
	awk '$1 == "ctxt" { print $2 }' /proc/stat
}

# guest OUTDIR MODE PAIRS ITERS TOOL [ARGS...]
guest() {
	local out=$1 mode=$2 pairs=$3 iters=$4 tool=$5 pair side order args raw env
	shift 5
	mkdir -p "$out/raw"
	for pair in $(seq "$pairs"); do
		order=(a b)
		[ $((pair % 2)) = 1 ] || order=(b a)
		for side in "${order[@]}"; do
			raw=$out/raw/$side.$pair
			args=(-q 1 -s 65536 -n "$iters" "$@")
			# perftest 4.5 hangs in its warm-up with -e (events)
			[ "$tool" = ib_send_bw ] || [[ " $* " = *" -e "* ]] ||
				args+=(--perform_warm_up)
			[ "$mode/$side" = pinned/a ] || args+=(--odp)
			env=()
			[ "$mode/$side" != implicit/b ] ||
				env=(LD_PRELOAD="$here/out/implicit-odp.so")
			echo "pair $pair: $side: ${env[*]} $tool ${args[*]}"
			# the context switches of the run: before, after
			ctxt >"$raw.ctxt"
			perf record -q -a -e cpu-clock -c 100000 -o "$raw.data" -- \
				env "${env[@]}" "$here/perftest-pair.sh" "$raw.json" \
				"$tool" "${args[@]}"
			ctxt >>"$raw.ctxt"
			if [ ${#env[@]} -gt 0 ] &&
			   ! grep -q "implicit-odp: [1-9][0-9]* registrations made implicit" \
				"$raw.json.client.log"; then
				echo "profile: $side.$pair made no implicit MR" >&2
				return 1
			fi
			perf report -i "$raw.data" -n --no-children \
				--sort comm,sym --stdio >"$raw.report" 2>/dev/null
			rm -f "$raw.data"
		done
	done
}

# table OUTDIR MODE TOOL RUN: the markdown table of OUTDIR/raw (RUN: what
# a run was, for its title)
table() {
	/usr/bin/python3 - "$here" "$1" "$2" "$3" "$4" <<'EOF'
import collections, glob, os, re, sys
sys.path.insert(0, sys.argv[1])
import perftest_json
out, mode, tool, run = sys.argv[2:6]
name = {'a': 'pinned', 'b': 'ODP'} if mode == 'pinned' else \
       {'a': 'explicit', 'b': 'implicit'}
line = re.compile(r'\s*[\d.]+%\s+(\d+)\s+(\S+)\s+\[(.)\]\s+(.*\S)')
idle = re.compile(r'idle|halt|mwait')
samples = {s: collections.Counter() for s in ('a', 'b')}
busy = {s: [] for s in samples}
# where the samples fell: the tool's user space (its CQ polling), its
# kernel time (posting, and what softirqs did on its time), the rest
# (rxe's workers): on one vCPU the poller takes turns with the workers
where = {s: collections.Counter() for s in samples}
switches = {s: 0 for s in samples}
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
    switches[side] += after - before
    js = rep[:-len('.report')] + '.json'
    try:
        bw[side].append(perftest_json.num(perftest_json.load(js)['results'], 'BW_average'))
    except Exception:  # a run that failed: no bandwidth, said below
        bw[side].append(None)
pairs = len(busy['a'])
A, B = name['a'], name['b']
mean = {s: {k: v / pairs for k, v in samples[s].items()} for s in samples}
diff = {k: mean['b'].get(k, 0) - mean['a'].get(k, 0)
        for k in set(mean['a']) | set(mean['b'])}
tot = {s: sum(busy[s]) / pairs for s in busy}
print(f'{tool} {run}, {A} against {B}, {pairs} ABBA pairs in one '
      '1-vCPU icount boot (a sample = 100000 instructions), a run\'s mean')
print()
print(f'- busy samples a run: {A} {tot["a"]:.0f}, {B} {tot["b"]:.0f} '
      f'({B} ÷ {A} {tot["b"] / tot["a"]:.3f})')
print(f'- bandwidth (MB/s): {A} {bw["a"]}, {B} {bw["b"]}')
for k, what in (('user', f'{tool}\'s user space (polling the CQ)'),
                 ('kernel', f'{tool}\'s kernel time'),
                 ('rest', 'the other tasks (rxe\'s workers)')):
    a, b = where['a'][k] / pairs, where['b'][k] / pairs
    print(f'- {what}: {A} {a:.0f}, {B} {b:.0f} ({b - a:+.0f})')
print(f'- context switches a run: {A} {switches["a"] / pairs:.0f}, '
      f'{B} {switches["b"] / pairs:.0f}')
print()
print(f'| function | {A} | {B} | {B} − {A} | share of the difference |')
print('|---|---:|---:|---:|---:|')
extra = tot['b'] - tot['a']
for k in sorted(diff, key=lambda k: -abs(diff[k]))[:30]:
    share = f'{100 * diff[k] / extra:.0f} %' if extra else '-'
    print(f'| `{k}` | {mean["a"].get(k, 0):.1f} | {mean["b"].get(k, 0):.1f} '
          f'| {diff[k]:+.1f} | {share} |')
EOF
}

if [ "${1:-}" = --guest ]; then
	shift
	guest "$@"
	exit
fi

pairs=2 iters=20000 kernel=() build=() mode=pinned
while [ $# -gt 0 ]; do
	case $1 in
	--kernel) kernel=(--kernel "$2"); shift ;;
	--build) build=(--build "$2"); shift ;;
	--pairs) pairs=$2; shift ;;
	--iters) iters=$2; shift ;;
	--implicit) mode=implicit ;;
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
	"$0" --guest /results "$mode" "$pairs" "$iters" "$tool" "$@" >"$out/host.log" 2>&1 ||
	{ echo "profile: the guest run failed, see $out/host.log" >&2; exit 1; }
table "$out" "$mode" "$tool" "-s 65536 -n $iters $*" | tee "$out/profile.md"
suffix=
[ "$mode" = pinned ] || suffix=-$mode
cp "$out/profile.md" "$here/results/profile-$(date +%Y%m%d-%H%M)-$tool$suffix.md"
