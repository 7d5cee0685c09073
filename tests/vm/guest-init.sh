#!/bin/bash
# PID 1 of the guest after switch_root (the host's root, read-only, under a
# tmpfs overlay). Reads /results/env, loads the RDMA stack (ours or the
# stock rdma_rxe), creates rxe0 on dummy0 (on eth0 when the run has a
# wire: RXE_ODP_NETDEV), runs /results/cmd, takes our
# stack down again (/results/unload: "ok" or why not), stores the
# command's exit status and dmesg in /results, and powers off.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8 TERM=dumb

mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm
# devtmpfs has no fd links; bash process substitution needs /dev/fd.
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
# /tmp stays the overlay's: the repository or the cache may live under the
# host's /tmp (CI clones anywhere), and a tmpfs there would hide them.
mount -t tmpfs tmpfs /run
mount -t debugfs debugfs /sys/kernel/debug
mount -t tracefs tracefs /sys/kernel/tracing
hostname rxe-odp-guest
ip link set lo up

# shellcheck source=/dev/null
. /results/env
# For tests that unload and reload the stack (tests/lifetime), and for
# tests that must fail, not skip, when a capability of our rxe is missing
# (RXE_ODP_EXPECT_ODP=1: our modules are loaded; 0: the stock rdma_rxe).
export RXE_ODP_STACK RXE_ODP_BUILD RXE_ODP_EXPECT_ODP
live=/sys/kernel/debug/odp_mirror/live
# pause SECONDS: sleep without an exec (exec is slow here: 9p under TCG)
mkfifo /run/pause
pause() { read -rt "$1" <>/run/pause; }

finish() {
	echo "$1" >/results/rc
	dmesg >/results/dmesg.txt
	sync
	poweroff -f
}

setup_rdma() {
	modprobe -a ib_uverbs rdma_ucm udp_tunnel ip6_udp_tunnel dummy ||
		return 1
	# 6.12's rxe computes its ICRC with the crypto API's crc32; 7.x
	# kernels have no such module (rxe uses the crc32 library)
	if modprobe -n -q crc32_generic; then
		modprobe crc32_generic || return 1
	fi
	if [ "$RXE_ODP_STACK" = ours ]; then
		insmod "$RXE_ODP_BUILD/drivers/infiniband/core/odp_mirror.ko" &&
		insmod "$RXE_ODP_BUILD/drivers/infiniband/sw/rxe/rdma_rxe.ko" ||
			return 1
		case $(cat /sys/module/rdma_rxe/taint) in
		*O*) ;;
		*) echo "guest: loaded rdma_rxe is not ours"; return 1 ;;
		esac
	else
		modprobe rdma_rxe || return 1
	fi
	if [ -n "${RXE_ODP_NETDEV:-}" ]; then
		setup_wire || return 1
	else
		ip link add dummy0 type dummy &&
		ip addr add 10.0.0.1/24 dev dummy0 &&
		ip link set dummy0 up || return 1
	fi
	rdma link add rxe0 type rxe netdev "${RXE_ODP_NETDEV:-dummy0}"
}

# The wire of a guest pair (run-in-guest.sh --wire): eth0 (virtio-net,
# bound when its module loads: no udev renames it) with its address and
# MTU, and sch_netem for the tests that impair it.
setup_wire() {
	modprobe -a virtio_net sch_netem || return 1
	[ -e "/sys/class/net/$RXE_ODP_NETDEV" ] ||
		{ echo "guest: no $RXE_ODP_NETDEV after modprobe virtio_net"; return 1; }
	ip link set "$RXE_ODP_NETDEV" mtu "$RXE_ODP_MTU" &&
	ip addr add "$RXE_ODP_IP" dev "$RXE_ODP_NETDEV" &&
	ip link set "$RXE_ODP_NETDEV" up
}

# The odp_mirror live counts that are not zero ("umems 3 entries 12 "),
# after up to 10 s for the last releases (a fault's mmput_async, fput).
live_counts() {
	local i k v
	for ((i = 0; i < 100; i++)); do
		counts=
		while read -r k v; do
			case $k in
			umems|entries|per_mm|children) [ "$v" = 0 ] || counts+="$k $v " ;;
			esac
		done <"$live"
		[ -z "$counts" ] && return
		pause 0.1
	done
}

# The processes that still hold a uverbs device open ("comm[pid] ..."),
# with builtins only.
uverbs_users() {
	local p f d c
	users=
	for p in /proc/[0-9]*; do
		for f in "$p"/fd/*; do
			for d in /dev/infiniband/uverbs*; do
				[ "$f" -ef "$d" ] || continue
				read -r c <"$p/comm"
				users+="${c}[${p#/proc/}] "
				continue 3
			done
		done
	done 2>/dev/null
}

# Take our stack down after the command (it must leave it up): once no
# process holds rxe0 open (10 s for the command's last ones to exit),
# delete rxe0 (bounded: it blocks while a context is open), check that
# the live counts are zero, unload both modules. Prints why it failed.
unload_stack() {
	local pid i out
	[ -e /sys/class/infiniband/rxe0 ] || { echo "rxe0 is gone after the command"; return 1; }
	for ((i = 0; i < 100; i++)); do
		uverbs_users
		[ -z "$users" ] && break
		pause 0.1
	done
	[ -z "$users" ] || { echo "rxe0 still open after the command by ${users% }"; return 1; }
	rdma link del rxe0 >/run/linkdel.log 2>&1 &
	pid=$!
	for ((i = 0; i < 600; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		pause 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "rdma link del rxe0 blocked for 60 s (a context still open?)"
		return 1
	fi
	wait "$pid" || { echo "rdma link del rxe0: $(head -c 200 /run/linkdel.log)"; return 1; }
	[ -r "$live" ] || { echo "no $live before rmmod"; return 1; }
	live_counts
	[ -z "$counts" ] || { echo "odp_mirror live counts before rmmod: ${counts% }"; return 1; }
	out=$(rmmod rdma_rxe odp_mirror 2>&1) || { echo "rmmod rdma_rxe odp_mirror: $out"; return 1; }
}

# The debug kernel's kmemleak (make check-debug): forget what leaked
# before the command (scan, then clear what it reported), and after it,
# once our stack is unloaded, scan again: what it reports then (the dmesg
# gate sees its "new suspected memory leaks") goes to /results/kmemleak.
# An object is reported once it is 5 s old and unreferenced in two scans.
kmemleak=/sys/kernel/debug/kmemleak
kmemleak_scan() {
	# Task stacks are not scanned: an idle kworker's stack keeps stale
	# pointers to what it handled last, which hid a leak of every fault
	# work from the scan after the unload (mutation record in
	# tests/debug/results.md); the command's tasks are gone by then.
	echo stack=off >"$kmemleak"
	pause 6
	echo scan >"$kmemleak"
	echo scan >"$kmemleak"
}
if [ -w "$kmemleak" ]; then
	kmemleak_scan
	echo clear >"$kmemleak"
fi

if ! setup_rdma; then
	echo "guest: RDMA setup failed"
	finish 126
fi
echo "guest: rxe0 up ($RXE_ODP_STACK rxe), running the command"
cd "$RXE_ODP_CWD" || finish 126
bash /results/cmd </dev/null >/results/output.log 2>&1
rc=$?
if [ "$RXE_ODP_STACK" = ours ]; then
	why=$(unload_stack 2>&1) && why=ok
	why=${why:-unload failed}
	echo "${why//$'\n'/ }" >/results/unload
fi
if [ -w "$kmemleak" ]; then
	kmemleak_scan
	cat "$kmemleak" >/results/kmemleak
fi
finish $rc
