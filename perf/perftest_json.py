#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Read perftest --out_json_file reports and print them as a table.

perftest 4.5 writes JSON-like text with bare keys and bare string values
(`test: RDMA_Write_BW_Test,`, `percentile_99.9: 10.2,`) and trailing
commas; newer perftest (25.01) writes real JSON. load() accepts both.

Bandwidth tools report MsgSize, n_iterations, BW_peak, BW_average (MB/s)
and MsgRate (Mpps). Latency tools report t_min, t_max, t_typical (the
median), t_avg, t_stdev, percentile_99 and percentile_99.9 (usec) with
-n ITERS, but only t_avg and tps_average with -D SECONDS.

    perftest_json.py LABEL=FILE [LABEL=FILE...]   print a table
    perftest_json.py --check FILE...              one line per FILE: "ok",
                                                  or why it holds no
                                                  positive, finite
                                                  bandwidth, message rate
                                                  or latency; exit 1 if
                                                  any is not ok
"""
import json
import re
import sys


def load(path):
    with open(path) as f:
        text = f.read()
    # perftest prints C's nan/inf as they are ("t_stdev": -nan when the
    # variance rounds below zero): make them JSON's NaN/Infinity
    text = re.sub(r'(:\s*)(-?)(nan|inf)\b',
                  lambda m: m.group(1) + ('NaN' if m.group(3).lower() == 'nan'
                                          else m.group(2) + 'Infinity'),
                  text, flags=re.IGNORECASE)
    try:
        return json.loads(text)
    except ValueError:
        pass
    out = []
    for line in text.splitlines():
        m = re.match(r'\s*([A-Za-z_][\w .]*?)\s*:\s*(.*?)\s*,?\s*$', line)
        if not m:
            out.append(line.strip())
            continue
        key, val = m.groups()
        if val in ('{', '['):
            out.append(f'"{key}": {val}')
            continue
        try:
            f = float(val)
            if f != f or f in (float('inf'), float('-inf')):
                val = json.dumps(f)  # inf, -nan: Infinity, NaN
        except ValueError:
            if not (val.startswith('"') and val.endswith('"')):
                val = json.dumps(val)
        out.append(f'"{key}": {val},')
    text = '\n'.join(out)
    text = re.sub(r',(\s*[}\]])', r'\1', text)
    text = re.sub(r'}(\s*")', r'},\1', text)
    return json.loads(text)


def num(res, key):
    """res[key] as a float, or None when absent or not a number."""
    try:
        return float(res[key])
    except (KeyError, TypeError, ValueError):
        return None


def summary(path):
    """One report as a flat dict: test, qps, bytes, iters and whichever of
    bw (MB/s), rate (Mpps), lat_min, lat_typ, lat_avg (usec) it holds."""
    r = load(path)
    res, info = r['results'], r.get('test_info', {})
    return {
        'test': info.get('test', '?'),
        'qps': info.get('Number_of_qps', 1),
        'bytes': res.get('MsgSize'),
        'iters': res.get('n_iterations'),
        'bw': num(res, 'BW_average'),
        'rate': num(res, 'MsgRate'),
        'lat_min': num(res, 't_min'),
        'lat_typ': num(res, 't_typical'),
        'lat_avg': num(res, 't_avg'),
    }


def table_text(lines, failed):
    """The markdown of a table's @lines, the runs in @failed listed after
    it (a benchmark counts a failed run, it never drops it silently)."""
    if failed:
        lines = lines + ['', f'{len(failed)} failed runs:'] + [f'- {l}' for l in failed]
    return '\n'.join(lines) + '\n'


def finite(v):
    return v is None or (v == v and abs(v) != float('inf'))


def check(path):
    """None if the report holds a positive measurement, else the reason."""
    try:
        s = summary(path)
    except FileNotFoundError:
        return 'no JSON report'
    except (ValueError, KeyError, TypeError) as e:
        return f'unreadable JSON report ({e})'
    if not all(finite(s[k]) for k in ('bw', 'rate', 'lat_typ', 'lat_avg')):
        return 'inf/nan in the report (perftest clock calibration failed)'
    if s['lat_avg'] is not None or s['lat_typ'] is not None:
        if (s['lat_avg'] or 0) > 0 or (s['lat_typ'] or 0) > 0:
            return None
        return 'zero latency in the report'
    if s['bw'] is None and s['rate'] is None:
        return 'no bandwidth in the report'
    # An 8-byte atomic run can print BW_average 0.00 (MB/s, two decimals)
    # with a non-zero message rate (six decimals).
    if (s['bw'] or 0) > 0 or (s['rate'] or 0) > 0:
        return None
    return 'zero bandwidth in the report'


def fmt(v, spec):
    return '-' if v is None else format(v, spec)


def table(args, out=sys.stdout):
    print(f'{"run":<36} {"test":<30} {"qps":>3} {"bytes":>6} {"iters":>6} '
          f'{"MB/s":>8} {"Mpps":>9} {"t_min us":>9} {"t_typ us":>9} '
          f'{"t_avg us":>9}',
          file=out)
    for arg in args:
        label, _, path = arg.partition('=')
        try:
            s = summary(path)
        except (OSError, ValueError, KeyError, TypeError) as e:
            print(f'{label:<36} (no report: {e})', file=out)
            continue
        lat = s['lat_avg'] is not None or s['lat_typ'] is not None
        print(f'{label:<36} {s["test"]:<30} {s["qps"]:>3} {s["bytes"]:>6} '
              f'{s["iters"]:>6} '
              f'{fmt(None if lat else s["bw"], "8.2f"):>8} '
              f'{fmt(None if lat else s["rate"], "9.6f"):>9} '
              f'{fmt(s["lat_min"], "9.2f"):>9} {fmt(s["lat_typ"], "9.2f"):>9} '
              f'{fmt(s["lat_avg"], "9.2f"):>9}',
              file=out)


def main(args):
    if len(args) >= 2 and args[0] == '--check':
        bad = 0
        for path in args[1:]:
            reason = check(path)
            print(reason or 'ok')
            bad += reason is not None
        return 1 if bad else 0
    if not args or args[0].startswith('-'):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    table(args)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
