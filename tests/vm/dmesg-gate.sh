#!/bin/bash
# dmesg-gate.sh DMESG: exit 1 and print the offending lines if the guest's
# kernel log holds a report of a bug (the patterns of dmesg-reports), or
# if DMESG is missing or empty (the log was not captured: nothing was
# checked). Patterns are anchored to the start of the kernel's own report
# lines (after the printk timestamp), so the boot command line, which
# names hung_task_timeout_secs, cannot trip them. Known upstream noise is
# listed in dmesg-whitelist, one justified ERE each.
#
#   dmesg-gate.sh --pattern   print the anchored ERE (for tests/lifetime)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
ts='^(\[ *[0-9]+\.[0-9]+\] )?'
mapfile -t reports < <(grep -v -e '^#' -e '^$' "$here/dmesg-reports")
pattern=$ts'('$(IFS='|'; echo "${reports[*]}")')'
if [ "${1:-}" = --pattern ]; then
	echo "$pattern"
	exit 0
fi
log=$1
if [ ! -s "$log" ]; then
	echo "dmesg gate: $log is missing or empty: the kernel log was not captured"
	exit 1
fi
whitelist=$(grep -v -e '^#' -e '^$' "$here/dmesg-whitelist" || true)

hits=$(grep -E "$pattern" "$log" || true)
if [ -n "$whitelist" ] && [ -n "$hits" ]; then
	hits=$(grep -v -E -e "$whitelist" <<<"$hits" || true)
fi
if [ -n "$hits" ]; then
	echo "dmesg gate: kernel reports in $log:"
	grep -E -A 20 "$pattern" "$log" | head -n 80
	exit 1
fi
