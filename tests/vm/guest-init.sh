#!/bin/bash
# PID 1 of the guest after switch_root (the host's root, read-only, under a
# tmpfs overlay). Reads /results/env, loads the RDMA stack (ours or the
# stock rdma_rxe), creates rxe0 on dummy0, runs /results/cmd, stores its
# exit status and dmesg in /results, and powers off.
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
# For tests that unload and reload the stack (tests/lifetime).
export RXE_ODP_STACK RXE_ODP_BUILD

finish() {
	echo "$1" >/results/rc
	dmesg >/results/dmesg.txt
	sync
	poweroff -f
}

setup_rdma() {
	modprobe -a ib_uverbs rdma_ucm udp_tunnel ip6_udp_tunnel \
		crc32_generic dummy || return 1
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
	ip link add dummy0 type dummy &&
	ip addr add 10.0.0.1/24 dev dummy0 &&
	ip link set dummy0 up &&
	rdma link add rxe0 type rxe netdev dummy0
}

if ! setup_rdma; then
	echo "guest: RDMA setup failed"
	finish 126
fi
echo "guest: rxe0 up ($RXE_ODP_STACK rxe), running the command"
cd "$RXE_ODP_CWD" || finish 126
bash /results/cmd </dev/null >/results/output.log 2>&1
finish $?
