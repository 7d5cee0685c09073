#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Read perftest --out_json_file reports and print them as a table.

perftest 4.5 writes JSON-like text with bare keys and bare string values
(`test: RDMA_Write_BW_Test,`) and trailing commas; newer perftest writes
real JSON. load() accepts both.

    perftest_json.py LABEL=FILE [LABEL=FILE...]
"""
import json
import re
import sys


def load(path):
    with open(path) as f:
        text = f.read()
    try:
        return json.loads(text)
    except ValueError:
        pass
    out = []
    for line in text.splitlines():
        m = re.match(r'\s*([A-Za-z_][\w ]*?)\s*:\s*(.*?)\s*,?\s*$', line)
        if not m:
            out.append(line.strip())
            continue
        key, val = m.groups()
        if val in ('{', '['):
            out.append(f'"{key}": {val}')
            continue
        try:
            float(val)
        except ValueError:
            if not (val.startswith('"') and val.endswith('"')):
                val = json.dumps(val)
        out.append(f'"{key}": {val},')
    text = '\n'.join(out)
    text = re.sub(r',(\s*[}\]])', r'\1', text)
    text = re.sub(r'}(\s*")', r'},\1', text)
    return json.loads(text)


def main(args):
    rows = []
    for arg in args:
        label, _, path = arg.partition('=')
        r = load(path)
        res, info = r['results'], r['test_info']
        rows.append((label, info['test'], res['MsgSize'],
                     float(res['BW_average']), float(res['MsgRate'])))
    print(f'{"run":<22} {"test":<24} {"bytes":>8} {"MB/s":>9} {"Mpps":>9}')
    for label, test, size, bw, rate in rows:
        print(f'{label:<22} {test:<24} {size:>8} {bw:>9.2f} {rate:>9.6f}')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
