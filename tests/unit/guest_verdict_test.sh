#!/bin/bash
# guest_verdict_test.sh: host test of tests/vm/guest-verdict.sh, TAP on
# stdout: each exit status of run-in-guest.sh gives its boot line, and our
# stack's unload verdict its own line.
set -u

here=$(cd "$(dirname "$0")" && pwd)
verdict=$here/../vm/guest-verdict.sh
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
# shellcheck source=tap.sh
. "$here/tap.sh"

# expect NAME STATUS WANT
expect() {
	tap_same "$1" "$3" "$("$verdict" s "$d" "$2")"
}

echo RXE_ODP_STACK=ours >"$d/env"
echo ok >"$d/unload"
expect clean 0 'ok guest.s.boot
ok guest.s.unload'
echo "odp_mirror live counts before rmmod: umems 1" >"$d/unload"
expect unload_failed 123 'ok guest.s.boot
fail guest.s.unload # odp_mirror live counts before rmmod: umems 1'
expect command_and_unload_failed 1 "fail guest.s.boot # suite command exited 1, see $d/output.log
fail guest.s.unload # odp_mirror live counts before rmmod: umems 1"
rm "$d/unload"
expect no_unload_verdict 0 'ok guest.s.boot
fail guest.s.unload # the guest left no unload verdict'
expect hung 124 "fail guest.s.boot # guest hung or died, see $d/console.log"
printf '%s\n' "dmesg gate: kernel reports in $d/dmesg.txt:" \
	'[   12.000000] BUG: Bad page state in process a  pfn:1a2b3' >"$d/gate.txt"
echo ok >"$d/unload"
expect report 125 'fail guest.s.boot # kernel report in dmesg: [   12.000000] BUG: Bad page state in process a  pfn:1a2b3
ok guest.s.unload'
echo "dmesg gate: $d/dmesg.txt is missing or empty: the kernel log was not captured" >"$d/gate.txt"
expect no_dmesg 125 "fail guest.s.boot # dmesg gate: $d/dmesg.txt is missing or empty: the kernel log was not captured
ok guest.s.unload"
echo RXE_ODP_STACK=stock >"$d/env"
rm "$d/unload"
expect stock 0 'ok guest.s.boot'
tap_done
