#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Hold a pyverbs run on our rxe to the stock-rxe baseline.

Reads result lines (ok/fail/skip NAME [# note]) of our run and of the
baseline, and prints the run's lines for the overall tally:
  - a test that fails here but also failed on stock is reported as
    'skip ... # fails on stock rxe too', not as ours to fix;
  - a test that passed on stock and does not pass here is a failure;
  - a test of the baseline that did not run here is a failure.
"""
import sys


def read(path):
    res = {}
    with open(path) as f:
        for line in f:
            if not line.strip() or line.startswith('#'):
                continue
            status, rest = line.rstrip('\n').split(' ', 1)
            name, _, note = rest.partition(' # ')
            res[name] = (status, note)
    return res


def main(baseline_path, run_path):
    base = read(baseline_path)
    run = read(run_path)
    for name, (status, note) in sorted(run.items()):
        was = base.get(name, ('new', ''))[0]
        if status == 'fail' and was == 'fail':
            status, note = 'skip', 'fails on stock rxe too: ' + note
        elif status != 'ok' and was == 'ok':
            status, note = 'fail', f'regression ({status} here, ok on stock): {note}'
        print(f'{status} {name}' + (f' # {note}' if note else ''))
    for name in sorted(set(base) - set(run)):
        print(f'fail {name} # did not run (in the baseline)')
    return 0


if __name__ == '__main__':
    sys.exit(main(*sys.argv[1:]))
