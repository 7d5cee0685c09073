#!/bin/bash
# run-in-guest.sh [options] -- COMMAND [ARGS...]
#
# Boot one of Debian's 6.12 kernels (kernels.matrix) under QEMU (TCG)
# with the host's root as the guest's read-only root (9p, tmpfs overlay
# on top), load our rdma_rxe and
# odp_mirror (or the stock rdma_rxe with --stock), create rxe0 on dummy0,
# run COMMAND in the current directory and return its exit status (with
# --wire: rxe0 on a virtio-net eth0 instead, tests/vm/run-pair.sh). With
# our modules, COMMAND sees RXE_ODP_EXPECT_ODP=1 (0 with --stock): a
# missing ODP capability is then a failure, not a reason to skip. After
# COMMAND the guest deletes rxe0 and unloads our modules, which must
# succeed with odp_mirror's live counts at zero (tests/vm/guest-init.sh).
#
#   --kernel NAME  boot kernel NAME of kernels.matrix (default: the first
#                  row, or $KERNEL), or of kernels.upstream (with --stock)
#   --stock        load Debian's own rdma_rxe instead of ours
#   --out DIR      keep console.log, dmesg.txt, output.log, rc, unload,
#                  gate.txt in DIR
#                  (default: build/guest-runs/<time>)
#   --timeout SEC  kill a guest that has not powered off (default 900)
#   --mem SIZE     guest memory (default 4G)
#   --build DIR    load our modules from this Kbuild tree (the layout of
#                  build/<kver>/, the default)
#   --quiet        print the command's output only on failure
#   --bench        boot without the debug options (slub_debug, KFENCE,
#                  page poisoning, init_on_free) that tests boot with:
#                  for benchmarks (perf/abba.sh)
#   --debug        boot the debug kernel (KASAN, lockdep, kmemleak,
#                  DEBUG_VM, fault injection; scripts/build-debug-kernel.sh
#                  builds it when it is not cached) with our modules built
#                  for it (default build/<its kver>/: scripts/build-modules.sh
#                  --debug); KASAN reports every error, not the first only
#   --smp N        guest vCPUs (default 2)
#   --mttcg        one host thread per vCPU (thread=multi, see below):
#                  processes that busy-poll on different vCPUs run at the
#                  same time (perf/abba.sh --lat)
#   --icount       guest time counts executed instructions (QEMU -icount
#                  shift=0,sleep=off: 1 ns an instruction, idle time
#                  skipped), not the host's clock: a run takes the same
#                  guest time on a busy host as on an idle one
#                  (perf/abba.sh --icount); round-robin TCG only
#   --wire LPORT:RPORT
#                  a virtio-net NIC (eth0) whose frames go as UDP
#                  datagrams from 127.0.0.1:LPORT to 127.0.0.1:RPORT
#                  (QEMU's -netdev dgram: the peer guest's NIC has the
#                  ports swapped; start order does not matter); rxe0 is
#                  created on eth0, not on dummy0
#   --ip ADDR/LEN  eth0's address (with --wire; default 10.0.1.1/24)
#   --mtu N        eth0's MTU (with --wire; default 1500; rxe's path MTU
#                  is the largest IB MTU that fits: 1024 for 1500, 4096
#                  from 4200)
#
# Exit status: 124 when the guest hung, 125 when the dmesg gate found a
# kernel report or no kernel log (tests/vm/dmesg-gate.sh; its verdict in
# DIR/gate.txt), else COMMAND's when it failed, else 123 when the unload
# after it failed (the reason in DIR/unload), else 0.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
stack=ours out='' timeout=900 mem=4G quiet=0 kernel='' build='' debug_opts=1
debug_kernel=0
smp=2 wire='' ip=10.0.1.1/24 mtu=1500 tcg_thread=single icount=()
while [ $# -gt 0 ]; do
	case $1 in
	--kernel) kernel=$2; shift ;;
	--stock) stack=stock ;;
	--out) out=$2; shift ;;
	--timeout) timeout=$2; shift ;;
	--mem) mem=$2; shift ;;
	--build) build=$(cd "$2" && pwd); shift ;;
	--quiet) quiet=1 ;;
	--bench) debug_opts=0 ;;
	--debug) debug_kernel=1 ;;
	--smp) smp=$2; shift ;;
	--mttcg) tcg_thread=multi ;;
	--icount) icount=(-icount 'shift=0,sleep=off') ;;
	--wire) wire=$2; shift ;;
	--ip) ip=$2; shift ;;
	--mtu) mtu=$2; shift ;;
	--) shift; break ;;
	*) echo "run-in-guest: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done
[ $# -gt 0 ] || { echo "usage: $0 [options] -- COMMAND..." >&2; exit 2; }
eval "$("$top/scripts/kernel-env.sh" "$kernel")"
# a kernel of kernels.upstream runs its own rxe (upstream's ODP)
[ "$KERNEL_UPSTREAM" = 0 ] || stack=stock
cache=${RXE_ODP_CACHE:-$HOME/.cache/rxe-odp}
kver=$KVER
kcache=$cache/$kver
if [ "$debug_kernel" = 1 ]; then
	[ "$stack" = ours ] ||
		{ echo "run-in-guest: --debug runs our modules only" >&2; exit 2; }
	kcache=$("$top/scripts/build-debug-kernel.sh")
	kver=$(cat "$kcache/kver")
	debug_opts=0
fi
# seconds a task may block before it is reported (and fails the gate):
# the debug kernel's KASAN, lockdep and kmemleak make everything slower
hung_secs=$([ "$debug_kernel" = 1 ] && echo 120 || echo 30)
build=${build:-$top/build/$kver}

[ -f "$kcache/.extracted" ] || [ "$debug_kernel" = 1 ] ||
	"$top/scripts/fetch-kernel.sh" "$KERNEL_NAME" >/dev/null
if [ "$stack" = ours ] && [ ! -f "$build/drivers/infiniband/sw/rxe/rdma_rxe.ko" ]; then
	echo "run-in-guest: build the modules first (make; with --debug: scripts/build-modules.sh --debug)" >&2
	exit 2
fi
initrd=$kcache/initramfs.cpio.gz
if [ ! -f "$initrd" ] || [ "$here/initramfs-init" -nt "$initrd" ] ||
   [ "$here/mkinitramfs.sh" -nt "$initrd" ]; then
	"$here/mkinitramfs.sh" "$kcache/image" "$kver" "$initrd"
fi

out=${out:-$top/build/guest-runs/$(date +%Y%m%d-%H%M%S)-$$}
mkdir -p "$out"
rm -f "$out"/{rc,dmesg.txt,output.log,console.log,unload,gate.txt}
out=$(cd "$out" && pwd)
{
	echo "RXE_ODP_STACK=$stack"
	echo "RXE_ODP_EXPECT_ODP=$([ "$stack" = ours ] && echo 1 || echo 0)"
	printf 'RXE_ODP_BUILD=%q\n' "$build"
	printf 'RXE_ODP_CWD=%q\n' "$PWD"
	printf 'RXE_ODP_RESULTS=%q\n' "$out"
	if [ -n "$wire" ]; then
		echo "RXE_ODP_NETDEV=eth0"
		printf 'RXE_ODP_IP=%q\nRXE_ODP_MTU=%q\n' "$ip" "$mtu"
	fi
} >"$out/env"
{
	printf 'export RXE_ODP_CACHE=%q RXE_ODP_TOP=%q\n' "$cache" "$top"
	printf '%q ' "$@"
	echo
} >"$out/cmd"

cmdline=(
	console=ttyS0 loglevel=4 printk.time=1 panic=-1 rdinit=/init
	"rxe_odp.init=$here/guest-init.sh"
	mitigations=off
	# a task blocked $hung_secs s is reported (fails the dmesg gate): the
	# sysctl, set from the command line (a bare hung_task_timeout_secs=
	# is no kernel parameter; it went to init and left the 120 s default)
	"sysctl.kernel.hung_task_timeout_secs=$hung_secs"
	# long runs log a lot ("dummy0 speed is unknown" per port query):
	# keep all of it for the dmesg gate
	log_buf_len=4M
	# Under a busy host the clocksource watchdog marked the emulated TSC
	# unstable; the TSC of TCG follows the host's clock, so it is
	# reliable.
	tsc=reliable
	# two NUMA nodes (halves of the guest memory), so that tests can
	# migrate an MR's pages with move_pages() and migrate_pages()
	numa=fake=2
	# automatic NUMA balancing unmaps pages at its own pace: off, so
	# that counts of invalidations stay the tests' own; the migration
	# test turns it on for its own case
	sysctl.kernel.numa_balancing=0
)
[ "$stack" = ours ] && cmdline+=(modprobe.blacklist=rdma_rxe)
# what catches use after free, overruns and uninitialised reads early
[ "$debug_opts" = 0 ] ||
	cmdline+=(slub_debug=FZPU kfence.sample_interval=10 page_poison=1 init_on_free=1)
# The debug kernel: KASAN (which replaces the options above) reports every
# bad access, not the first one only
[ "$debug_kernel" = 0 ] || cmdline+=(kasan_multi_shot)
# The soft-lockup detector, like the hung-task one above, is a bound in
# time, and the debug kernel runs 10 to 50 times slower: its default 20 s
# (2 x watchdog_thresh) fired twice in the kernel's own migrate_pages()
# (migrate_pages_batch(), allocating and clearing the target folios, no
# frame of ours) under odp_migrate, the second time 48 s long with only
# three guests on the host. 2 x 60 s there.
[ "$debug_kernel" = 0 ] || cmdline+=(watchdog_thresh=60)

# The three shares: the host root (read-only), the kernel's module tree,
# the results. 9p where the kernel has it; Debian's cloud kernels have
# no 9p, only virtio-fs, which needs a virtiofsd per share and the guest's
# memory shared with them.
shares=(hostroot=/ "modules=$kcache/image/lib/modules" "results=$out")
fs_args=()
vfs_dir=''
if grep -q '^CONFIG_NET_9P=' "$kcache/image/boot/config-$kver"; then
	fs_args+=(-virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap"
		  -virtfs "local,path=$kcache/image/lib/modules,mount_tag=modules,security_model=none,readonly=on"
		  -virtfs "local,path=$out,mount_tag=results,security_model=none")
else
	cmdline+=(rxe_odp.fs=virtiofs)
	vfs_dir=$(mktemp -d)
	# (they end when QEMU closes their socket; this is for a QEMU that
	# never connected)
	trap 'pkill -f "socket-path=$vfs_dir/" || true; rm -rf "$vfs_dir"' EXIT
	fs_args+=(-object "memory-backend-memfd,id=mem,size=$mem,share=on"
		  -numa "node,memdev=mem")
	for s in "${shares[@]}"; do
		tag=${s%%=*}
		/usr/lib/qemu/virtiofsd --socket-path="$vfs_dir/$tag.sock" \
			-o source="${s#*=}" -o cache=none -o sandbox=chroot \
			-o log_level=err >>"$out/virtiofsd.log" 2>&1 &
		fs_args+=(-chardev "socket,id=$tag,path=$vfs_dir/$tag.sock"
			  -device "vhost-user-fs-pci,chardev=$tag,tag=$tag")
	done
	# A daemon listens before it can be waited for by anything but its
	# socket (it accepts QEMU's connection before it daemonizes): poll
	# for the sockets, 10 s at most.
	for s in "${shares[@]}"; do
		for _ in $(seq 100); do
			[ -S "$vfs_dir/${s%%=*}.sock" ] && break
			sleep 0.1
		done
	done
fi

net_args=(-nic none)
if [ -n "$wire" ]; then
	lport=${wire%%:*} rport=${wire#*:}
	# a MAC of its own per address (the last two octets of the IP)
	mac=$(IFS=./ read -r _ _ o3 o4 _ <<<"$ip"; printf '52:54:00:00:%02x:%02x' "$o3" "$o4")
	net_args=(-netdev "dgram,id=wire,local.type=inet,local.host=127.0.0.1,local.port=$lport,remote.type=inet,remote.host=127.0.0.1,remote.port=$rport"
		  -device "virtio-net-pci,netdev=wire,mac=$mac")
fi

status=0
# One TCG thread runs both vCPUs in turn. With thread=multi, a vCPU
# sometimes executed a stale int3 while the other one live-patched a
# static key (text_poke_bp) and the guest died with "Fatal exception in
# interrupt" in sched_clock_cpu, twice in boots under a busy host (QEMU
# 7.2). Round-robin TCG keeps cross-modified code coherent. --mttcg takes
# that risk for latency measurements: in round-robin TCG a vCPU that
# busy-polls runs until an interrupt (a tick) stops it, so two processes
# that poll for each other take turns at the tick.
timeout --kill-after=10 "$timeout" \
	qemu-system-x86_64 -accel "tcg,thread=$tcg_thread" -cpu max -smp "$smp" -m "$mem" \
	"${icount[@]}" -nodefaults -no-reboot "${net_args[@]}" -display none \
	-chardev "file,id=con,path=$out/console.log" -serial chardev:con \
	-kernel "$kcache/image/boot/vmlinuz-$kver" -initrd "$initrd" \
	-append "${cmdline[*]}" "${fs_args[@]}" \
	</dev/null || status=$?

show_output() {
	[ -f "$out/output.log" ] && cat "$out/output.log"
	return 0
}

if [ "$status" -eq 124 ] || [ "$status" -eq 137 ] || [ ! -f "$out/rc" ]; then
	show_output
	echo "run-in-guest: guest hung or died (qemu status $status); console tail:" >&2
	tail -n 60 "$out/console.log" >&2
	exit 124
fi
rc=$(cat "$out/rc")
if [ "$quiet" != 1 ] || [ "$rc" != 0 ]; then show_output; fi
if ! "$here/dmesg-gate.sh" "$out/dmesg.txt" >"$out/gate.txt" 2>&1; then
	cat "$out/gate.txt" >&2
	echo "run-in-guest: results in $out" >&2
	exit 125
fi
if [ "$rc" != 0 ]; then
	echo "run-in-guest: command exited $rc; results in $out" >&2
	exit "$rc"
fi
if [ "$stack" = ours ] && [ "$(cat "$out/unload" 2>/dev/null)" != ok ]; then
	echo "run-in-guest: unloading our stack failed: $(cat "$out/unload" 2>/dev/null || echo "no $out/unload")" >&2
	exit 123
fi
exit 0
