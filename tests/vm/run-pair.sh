#!/bin/bash
# run-pair.sh [options] -- COMMAND [ARGS...]
#
# Two hosts on a wire: boot two QEMU guests (tests/vm/run-in-guest.sh,
# one vCPU and 2 GiB each) whose virtio-net NICs (eth0) are joined by
# QEMU's -netdev dgram over 127.0.0.1, with rxe0 on eth0 in each, and run
# COMMAND in both, side by side. Guest a has 10.0.1.1, guest b 10.0.1.2;
# COMMAND sees RXE_ODP_SIDE (a or b), RXE_ODP_PEER (the other's address),
# RXE_ODP_PAIR ("SPEC_A SPEC_B") and RXE_ODP_WIRE (eth0), and finds its
# peer over the wire (the two sides wait for each other themselves, e.g.
# a client that retries its connect for a bounded time).
#
#   --a SPEC, --b SPEC   what each guest runs (default ours):
#                        ours[:KERNEL]   our rxe on a kernel of
#                                        kernels.matrix (default its first)
#                        stock[:KERNEL]  Debian's own rdma_rxe there
#                        NAME            a kernel of kernels.upstream (its
#                                        own rxe: upstream's ODP)
#   --mtu N              eth0's MTU on both (default 1500)
#   --build DIR          our modules from this Kbuild tree (run-in-guest.sh
#                        --build), on the sides that run ours
#   --out DIR            each guest's results in DIR/a and DIR/b
#                        (default build/guest-runs/pair-<time>)
#   --timeout SEC        per guest (default 900)
#   --quiet              print a guest's output only when it failed
#
# Exit status: 0 when both guests' runs succeeded (run-in-guest.sh's
# verdicts: command, dmesg gate, unload), else the first non-zero status
# of a, then b; each failing side is named on stderr, and each side's
# status is in DIR/a.status and DIR/b.status.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
spec_a=ours spec_b=ours mtu=1500 out='' timeout=900 quiet=() build=''
while [ $# -gt 0 ]; do
	case $1 in
	--a) spec_a=$2; shift ;;
	--b) spec_b=$2; shift ;;
	--mtu) mtu=$2; shift ;;
	--build) build=$2; shift ;;
	--out) out=$2; shift ;;
	--timeout) timeout=$2; shift ;;
	--quiet) quiet=(--quiet) ;;
	--) shift; break ;;
	*) echo "run-pair: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done
[ $# -gt 0 ] || { echo "usage: $0 [options] -- COMMAND..." >&2; exit 2; }
out=${out:-$top/build/guest-runs/pair-$(date +%Y%m%d-%H%M%S)-$$}
mkdir -p "$out/a" "$out/b"

# guest_args SPEC: run-in-guest.sh's options for SPEC
guest_args() {
	case $1 in
	ours | ours:*)
		[ -z "$build" ] || echo "--build $build"
		[ "$1" = ours ] || echo "--kernel ${1#ours:}"
		;;
	stock) echo --stock ;;
	stock:*) echo "--stock --kernel ${1#stock:}" ;;
	*) echo "--kernel $1" ;;
	esac
}

# Two UDP ports that nothing on 127.0.0.1 holds now (QEMU binds each
# guest's local one; a port taken between this check and QEMU's bind
# makes that guest fail to start, which is reported, not retried).
free_port() {
	local p
	for _ in $(seq 50); do
		p=$((20000 + RANDOM % 40000))
		[ -n "$(ss -Hlun "sport = :$p" 2>/dev/null)" ] || { echo "$p"; return; }
	done
	echo "run-pair: no free UDP port found" >&2
	return 1
}
port_a=$(free_port)
port_b=$(free_port)
[ "$port_a" != "$port_b" ] || port_b=$((port_a + 1))

# side NAME SPEC IP PEER LPORT RPORT: one guest, in the background
side() {
	local name=$1 spec=$2 ip=$3 peer=$4 lport=$5 rport=$6
	shift 6
	# shellcheck disable=SC2046 # guest_args' words are options
	"$here/run-in-guest.sh" $(guest_args "$spec") "${quiet[@]}" \
		--smp 1 --mem 2G --timeout "$timeout" --out "$out/$name" \
		--wire "$lport:$rport" --ip "$ip/24" --mtu "$mtu" -- \
		env RXE_ODP_SIDE="$name" RXE_ODP_PEER="$peer" \
		RXE_ODP_PAIR="$spec_a $spec_b" RXE_ODP_WIRE=eth0 "$@" \
		>"$out/$name.log" 2>&1
}

side a "$spec_a" 10.0.1.1 10.0.1.2 "$port_a" "$port_b" "$@" &
pid_a=$!
side b "$spec_b" 10.0.1.2 10.0.1.1 "$port_b" "$port_a" "$@" &
pid_b=$!
rc_a=0 rc_b=0
wait "$pid_a" || rc_a=$?
wait "$pid_b" || rc_b=$?
echo "$rc_a" >"$out/a.status"
echo "$rc_b" >"$out/b.status"
for name in a b; do
	rc=rc_$name
	[ "${!rc}" = 0 ] && [ ${#quiet[@]} -gt 0 ] && continue
	sed "s/^/[$name] /" "$out/$name.log"
	[ "${!rc}" = 0 ] || echo "run-pair: side $name exited ${!rc}; results in $out/$name" >&2
done
[ "$rc_a" = 0 ] || exit "$rc_a"
exit "$rc_b"
