#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""table.py RESULTS: the interop matrix as Markdown, on stdout.

RESULTS holds the result lines of tests/interop/run.sh (after
tests/check-results.py, or raw). First a summary, one row per (pair,
step): its cases, how many passed, how many are upstream's known
failures (skip lines of check-results.py) and how many failed; then one
row per (pair, step, driver, operation): the sizes that passed and the
ones that did not, with the memory of both ends; then the step checks
(ODP fault counts, perftest, ibv_rc_pingpong, the cable pull's run) and
the guests' verdicts.
"""
import collections
import re
import sys

CASE = re.compile(r"^(ok|fail|skip) interop\.([^.]+)\.([ab])\.([^.]+)\.(c2s|s2c)\."
                  r"([a-z0-9_]+)\.([^.\s]+)(?:\.\d+)?(?: # (.*))?$")
STEPS = {
    "loss1": "1 % loss",
    "loss5": "5 % loss",
    "loss50": "50 % loss both ways (retransmissions)",
    "reorder": "reordering (25 %, 10 ms)",
    "duplicate": "duplication (5 %)",
    "delay10": "10 ms delay",
    "pull": "cable pull",
}


def main():
    cases = collections.OrderedDict()
    other = []
    with open(sys.argv[1]) as f:
        for line in f:
            line = line.rstrip("\n")
            m = CASE.match(line)
            if not m:
                if re.match(r"^(ok|fail|skip) (guest\.)?interop\.", line):
                    other.append(line)
                continue
            verdict, pair, _, step, drive, op, size, note = m.groups()
            mem = re.search(r"mem=(\S+)", note or "")
            key = (pair, step, drive, op, mem.group(1) if mem else "?")
            ok, bad = cases.setdefault(key, ([], []))
            if verdict == "ok":
                ok.append(size)
            else:
                bad.append(f"{size} ({verdict}: {note})")
    summary = collections.OrderedDict()
    for (pair, step, drive, op, mem), (ok, bad) in cases.items():
        if drive == "c2s":
            mem = "/".join(reversed(mem.split("/")))
        row = summary.setdefault((pair, step), {"mem": mem, "n": 0, "ok": 0,
                                                "known": 0, "failed": 0})
        row["n"] += len(ok) + len(bad)
        row["ok"] += len(ok)
        row["known"] += sum(b.split(" (", 1)[1].startswith("skip") for b in bad)
        row["failed"] += sum(b.split(" (", 1)[1].startswith("fail") for b in bad)
    print("| pair (a-b) | step | memory (a/b) | cases, both ways | ok "
          "| upstream's known failures | failed |")
    print("|---|---|---|---|---|---|---|")
    for (pair, step), row in summary.items():
        what = STEPS.get(step, "memory pairing")
        print(f"| {pair} | {what} | {row['mem']} | {row['n']} | {row['ok']} "
              f"| {row['known']} | {row['failed']} |")
    print()
    print("| pair (a-b) | step | driver | operation | memory (driver/peer) "
          "| sizes passed | not passed |")
    print("|---|---|---|---|---|---|---|")
    for (pair, step, drive, op, mem), (ok, bad) in cases.items():
        driver = "b" if drive == "c2s" else "a"
        what = STEPS.get(step, "memory " + step.replace("-", " / "))
        print(f"| {pair} | {what} | {driver} | {op} | {mem} | "
              f"{', '.join(ok) or '-'} | {'; '.join(bad) or '-'} |")
    print()
    print("| check | result |")
    print("|---|---|")
    for line in other:
        verdict, name, *note = line.split(" ", 2)
        note = note[0].lstrip("# ") if note else ""
        print(f"| {name} | {verdict}{': ' + note if note else ''} |")


if __name__ == "__main__":
    main()
