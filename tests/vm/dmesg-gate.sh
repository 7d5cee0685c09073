#!/bin/bash
# dmesg-gate.sh DMESG: exit 1 and print the offending lines if the guest's
# kernel log holds a report of a bug. Patterns are anchored to the start of
# the kernel's own report lines (after the printk timestamp), so the boot
# command line, which names hung_task_timeout_secs, cannot trip them.
# Known upstream noise is listed in dmesg-whitelist, one justified ERE each.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
log=$1
ts='^(\[ *[0-9]+\.[0-9]+\] )?'
reports=(
	'BUG:'
	'BUG [^ ]+ \(.*\): '
	'WARNING: CPU:'
	'Oops'
	'general protection fault'
	'KFENCE: '
	'.*Poison overwritten'
	'.*Redzone'
	'refcount_t: '
	'list_(add|del) corruption'
	'INFO: task .* blocked for more than'
	'watchdog: BUG: soft lockup'
	'rcu: INFO: rcu_(sched|preempt) (self-)?detected stall'
	'.*Slab cache still has objects'
	'Kernel panic'
)
pattern=$ts'('$(IFS='|'; echo "${reports[*]}")')'
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
