#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Run an rdma-core pyverbs test directory and write one result line per test.

Loads the suite the way rdma-core's run_tests.py does (its args_parser and
the tests package), but records every outcome through a TestResult instead
of scraping unittest's text output:

    ok <prefix>.<test id>
    fail <prefix>.<test id> # <first line of the error>
    skip <prefix>.<test id> # <reason>
"""
import argparse
import os
import sys
import unittest
from importlib.machinery import SourceFileLoader


def first_line(text):
    lines = [l for l in str(text).strip().splitlines() if l.strip()]
    return lines[-1].strip() if lines else ''


class LineResult(unittest.TextTestResult):
    out = None
    prefix = ''

    def _line(self, status, test, note=''):
        name = f'{self.prefix}.{test.id()}'
        note = f' # {note}' if note else ''
        self.out.write(f'{status} {name}{note}\n')
        self.out.flush()

    def addSuccess(self, test):
        super().addSuccess(test)
        self._line('ok', test)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._line('fail', test, first_line(self._exc_info_to_string(err, test)))

    def addError(self, test, err):
        super().addError(test, err)
        self._line('fail', test, first_line(self._exc_info_to_string(err, test)))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._line('skip', test, first_line(reason))

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._line('ok', test, 'expected failure')

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._line('fail', test, 'unexpected success')


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--tests', required=True, help='rdma-core tests directory')
    ap.add_argument('--prefix', required=True, help='name prefix, e.g. pyverbs44')
    ap.add_argument('--out', required=True, help='result file (appended)')
    ap.add_argument('--dev', default='rxe0')
    ap.add_argument('pattern', nargs='*', help='unittest -k patterns')
    args = ap.parse_args()

    sys.path.insert(0, args.tests)
    from args_parser import parser
    sys.argv = [sys.argv[0], '--dev', args.dev]
    parser.parse_args()
    tests = SourceFileLoader('tests', os.path.join(args.tests, '__init__.py')).load_module()
    loader = unittest.TestLoader()
    if args.pattern:
        loader.testNamePatterns = [p if '*' in p else f'*{p}*' for p in args.pattern]
    suite = loader.loadTestsFromModule(tests)

    with open(args.out, 'a') as out:
        LineResult.out = out
        LineResult.prefix = args.prefix
        runner = unittest.TextTestRunner(resultclass=LineResult, verbosity=2)
        result = runner.run(suite)
    return 0 if result.testsRun else 1


if __name__ == '__main__':
    sys.exit(main())
