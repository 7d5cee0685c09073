#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""funcgraph.py TRACE: a function_graph trace (funcgraph-proc) as a
table (perf/fault-trace.sh).

Per traced function: its calls, and the median and mean of their
durations in microseconds (what it calls included). Then rxe's receiver
calls that did work on an MR (those with traced callees: one per
request), split by whether they called odp_fault() (cold WRITEs) or
not (warm ones): the median of each."""
import re
import statistics
import sys
from collections import defaultdict

LINE = re.compile(r'^\s*(?:[\d.]+ \|)?\s+\d+\)\s+(\S+)\s+\|\s+'
                  r'(?:[!#*@+$ ]\s*)?([\d.]+ us)?\s*\|\s+(.*)$')


def name(text):
    return text.split('(')[0].split(' [')[0].strip()


def main():
    stacks = defaultdict(list)
    durations = defaultdict(list)
    receivers = {True: [], False: []}
    for line in open(sys.argv[1]):
        m = LINE.match(line)
        if not m:
            continue
        proc, dur, text = m.groups()
        us = float(dur.split()[0]) if dur else None
        if text.endswith('{'):
            fn = name(text)
            if fn == 'odp_fault':
                for frame in stacks[proc]:
                    frame[1] = True
            stacks[proc].append([fn, False])
        elif text.startswith('}') and stacks[proc]:
            fn, faulted = stacks[proc].pop()
            if us is not None:
                durations[fn].append(us)
                if fn == 'rxe_receiver':
                    receivers[faulted].append(us)
        elif text.endswith('();') and us is not None:
            durations[name(text)].append(us)
    print(f"{'function':28} {'calls':>6} {'median us':>10} {'mean us':>10}")
    for fn in sorted(durations, key=lambda f: -statistics.median(durations[f])):
        v = durations[fn]
        print(f"{fn:28} {len(v):6} {statistics.median(v):10.1f} "
              f"{statistics.mean(v):10.1f}")
    for faulted, phase in ((True, 'cold'), (False, 'warm')):
        calls = receivers[faulted]
        if not calls:
            sys.exit(f"funcgraph.py: no {phase} receiver call")
        print(f"{phase} WRITEs: receiver median "
              f"{statistics.median(calls):.1f} us ({len(calls)} requests)")


if __name__ == '__main__':
    main()
