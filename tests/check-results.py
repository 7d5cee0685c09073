#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Hold a suite's result lines to the committed expectation lists.

    check-results.py RESULTS LIST...

RESULTS holds result lines (ok|fail|skip NAME [# note]); the rewritten
lines go to stdout. A LIST holds, under '## <reason>' group lines:

    ok NAME                    must pass (must-pass-*.txt: no group needed)
    skip NAME-GLOB # MSG-GLOB  may skip, with a skip message matching MSG-GLOB
    fail NAME-GLOB # MSG-GLOB  fails on stock rxe too (or on a peer's rxe),
                               with a message matching MSG-GLOB

(GLOBs are fnmatch patterns.) A group whose reason starts 'environment:'
names skips that depend on the machine, not on the device. Rewriting:

  - a must-pass test that skipped, failed or did not run: fail;
  - a skip on no list, or with another message than its list says: fail;
  - an expected skip: skip, '[expected: <group reason>]' appended;
  - an expected failure with its message: skip '# known failure: ...';
    with another message: fail;
  - everything else as it was.

A malformed list line is a failure of its own (NAME 'expectations').
"""
import fnmatch
import sys


class Lists:
    def __init__(self):
        self.must = {}      # name -> file:line
        self.skips = []     # (name glob, message glob, group)
        self.fails = []     # (name glob, message glob, group)
        self.errors = []

    def load(self, path):
        try:
            with open(path) as f:
                lines = f.read().splitlines()
        except OSError as e:
            self.errors.append(f'{path}: {e.strerror}')
            return
        group = None
        for n, line in enumerate(lines, 1):
            where = f'{path}:{n}'
            if line.startswith('## '):
                group = line[3:].strip()
                continue
            if not line.strip() or line.startswith('#'):
                continue
            status, _, rest = line.partition(' ')
            name, sep, msg = rest.partition(' # ')
            name = name.strip()
            if status == 'ok' and name and not sep:
                self.must[name] = where
            elif status in ('skip', 'fail') and name and sep and msg:
                if not group:
                    self.errors.append(f'{where}: {status} line outside a "## reason" group')
                elif status == 'skip':
                    self.skips.append((name, msg, group))
                else:
                    self.fails.append((name, msg, group))
            else:
                self.errors.append(f'{where}: not "ok NAME", "skip GLOB # MSG" or "fail NAME # MSG": {line}')

    def skip_group(self, name, msg):
        """(group, None) when expected, (None, why) when not."""
        listed = []
        for glob, mglob, group in self.skips:
            if fnmatch.fnmatchcase(name, glob):
                if fnmatch.fnmatchcase(msg, mglob):
                    return group, None
                listed.append(f'"{mglob}"')
        if not listed:
            return None, 'unexpected skip (on no list)'
        return None, f'unexpected skip message (listed: {" or ".join(listed)})'

    def fail_entry(self, name):
        """(message glob, group) of the first fail line naming NAME, or None."""
        for glob, mglob, group in self.fails:
            if fnmatch.fnmatchcase(name, glob):
                return mglob, group
        return None



def read_results(path):
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        lines = []
    for line in lines:
        status, _, rest = line.partition(' ')
        if status not in ('ok', 'fail', 'skip'):
            continue
        name, _, note = rest.partition(' # ')
        yield status, name.strip(), note


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    lists = Lists()
    for path in argv[1:]:
        lists.load(path)
    seen = set()
    for status, name, note in read_results(argv[0]):
        seen.add(name)
        must = name in lists.must
        if status == 'skip':
            group, why = lists.skip_group(name, note)
            if must:
                status, note = 'fail', f'must pass on our rxe, skipped: {note}'
            elif group:
                note = f'{note} [expected: {group}]'
            else:
                status, note = 'fail', f'{why}: {note}'
        elif status == 'fail' and lists.fail_entry(name) and not must:
            msg, group = lists.fail_entry(name)
            if fnmatch.fnmatchcase(note, msg):
                status, note = 'skip', f'known failure: {note} [expected: {group}]'
            else:
                note = f'failure changed: "{note}", listed: "{msg}"'
        elif status == 'fail' and must:
            note = f'must pass on our rxe: {note}'
        print(f'{status} {name}' + (f' # {note}' if note else ''))
    for name in sorted(set(lists.must) - seen):
        print(f'fail {name} # must pass on our rxe, did not run ({lists.must[name]})')
    for err in lists.errors:
        print(f'fail expectations # {err}')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
