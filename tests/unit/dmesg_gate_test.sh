#!/bin/bash
# dmesg_gate_test.sh: host test of tests/vm/dmesg-gate.sh, TAP on stdout.
# Every pattern of tests/vm/dmesg-reports has a case here: a sample report
# line as the kernel prints it, which must fail the gate (and match that
# very pattern), and a near miss, which must not fail it. A missing or
# empty log fails the gate; a clean boot log passes.
set -u

here=$(cd "$(dirname "$0")" && pwd)
vm=$here/../vm
gate=$vm/dmesg-gate.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ts='^(\[ *[0-9]+\.[0-9]+\] )?'
boot='[    0.000000] Kernel command line: console=ttyS0 hung_task_timeout_secs=30 slub_debug=FZPU'

# shellcheck source=tap.sh
. "$here/tap.sh"
patterns=()
gate_rc() { "$gate" "$1" >/dev/null 2>&1; echo $?; }

# t NAME PATTERN SAMPLE NEAR_MISS: one case (the timestamp is added).
t() {
	local name=$1 pat=$2 sample=$3 miss=$4 log=$tmp/$1
	patterns+=("$pat")
	printf '%s\n[   12.345678] %s\n' "$boot" "$sample" >"$log.hit"
	printf '%s\n[   12.345678] %s\n' "$boot" "$miss" >"$log.miss"
	grep -qxF -e "$pat" "$vm/dmesg-reports"
	tap_check "$name.listed" $? "pattern '$pat' is not a line of tests/vm/dmesg-reports"
	grep -qE "$ts($pat)" "$log.hit" && [ "$(gate_rc "$log.hit")" = 1 ]
	tap_check "$name.sample" $? "the gate passed, or '$pat' did not match: $sample"
	[ "$(gate_rc "$log.miss")" = 0 ]
	tap_check "$name.near_miss" $? "the gate failed on the near miss: $miss"
}

t bug \
	BUG: \
	'BUG: unable to handle page fault for address: 0000000000000010' \
	'rxe: no BUG: here'
t slab_bug \
	'BUG [^ ]+ \(.*\):' \
	'BUG kmalloc-64 (Tainted: G           O      ): Poison overwritten' \
	'BUG kmalloc-64 poisoned'
t warning \
	'WARNING: CPU:' \
	'WARNING: CPU: 1 PID: 291 at drivers/infiniband/sw/rxe/rxe_odp.c:88 rxe_odp_copy+0x5c/0x90 [rdma_rxe]' \
	'WARNING: Perf event create on CPU 0 failed'
t oops \
	Oops \
	'Oops: general protection fault, probably for non-canonical address 0xdead000000000100: 0000 [#1] PREEMPT SMP NOPTI' \
	'rxe0: no Oops'
t gpf \
	'general protection fault' \
	'general protection fault, probably for non-canonical address 0xdead000000000122' \
	'traps: a.out[123] general protection fault ip:4011d6 sp:7ffd error:0 in a.out'
t kfence \
	KFENCE: \
	'KFENCE: use-after-free read in odp_umem_release+0x30/0x90 [odp_mirror]' \
	'kfence: initialized - using 2097152 bytes for 255 objects at 0x000000007d0c9f66-0x00000000e2a5ba3a'
t poison \
	'.*Poison overwritten' \
	'INFO: 0xffff888103a1c0a8-0xffff888103a1c0af @offset=168. First byte 0x0 instead of 0x6b; Poison overwritten' \
	'page_poison: Poison overwrite check enabled'
t redzone \
	'.*Redzone' \
	'Object 0xffff888103a1c0a8 Redzone overwritten' \
	'slub: redzones enabled'
t refcount \
	refcount_t: \
	'refcount_t: underflow; use-after-free.' \
	'odp: refcount_t ok'
t list_corruption \
	'list_(add|del) corruption' \
	'list_del corruption, ffff888102c4a010->next is LIST_POISON1 (dead000000000100)' \
	'test: list_del corruption check passed'
t hung_task \
	'INFO: task .* blocked for more than' \
	'INFO: task teardown:412 blocked for more than 30 seconds.' \
	'Kernel command line: hung_task_timeout_secs=30 INFO: task x blocked for more than 1 s'
t soft_lockup \
	'watchdog: BUG: soft lockup' \
	'watchdog: BUG: soft lockup - CPU#1 stuck for 26s! [kworker/1:2:88]' \
	'watchdog: Delayed init of the lockup detector failed: -19'
t rcu_stall \
	'rcu: INFO: rcu_(sched|preempt) (self-)?detected stall' \
	'rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:' \
	'rcu: 	RCU CPU stall warnings timeout set to 21 (rcu_cpu_stall_timeout).'
t slab_objects \
	'.*Slab cache still has objects' \
	'kmem_cache_destroy rxe-odp: Slab cache still has objects when called from odp_exit+0x1c/0x30 [odp_mirror]' \
	'slab: cache still empty'
t panic \
	'Kernel panic' \
	'Kernel panic - not syncing: Fatal exception' \
	'Kernel command line: panic=-1'
t pagealloc_corruption \
	'pagealloc: memory corruption' \
	'pagealloc: memory corruption' \
	'page_poison: checking for pagealloc: memory corruption'
t pagealloc_single_bit \
	'pagealloc: single bit error' \
	'pagealloc: single bit error' \
	'page_poison: pagealloc: single bit error reporting on'
t bad_page_state \
	'(BUG: )?Bad page state' \
	'BUG: Bad page state in process teardown  pfn:1a2b3' \
	'page_alloc: Bad page state reporting enabled'
t bad_page_map \
	'(BUG: )?Bad page map' \
	'BUG: Bad page map in process odp_large  pte:8000000102a3c067 pmd:10b2e4067' \
	'test: Bad page map checks follow'
t bad_rss \
	'BUG: Bad rss-counter' \
	'BUG: Bad rss-counter state mm:00000000a9c3b4e2 type:MM_ANONPAGES val:-1' \
	'test: BUG: Bad rss-counter never seen'
t kernel_bug_at \
	'kernel BUG at' \
	'kernel BUG at mm/rmap.c:1365!' \
	'usb 1-1: kernel BUG at reporting is off'
t ubsan \
	UBSAN: \
	'UBSAN: array-index-out-of-bounds in drivers/infiniband/sw/rxe/rxe_odp.c:120:9' \
	'test_ubsan: UBSAN: self test skipped'
t rcu_expedited \
	'rcu: INFO: .* detected expedited stalls' \
	'rcu: INFO: rcu_preempt detected expedited stalls on CPUs/tasks: { 1-... } 21006 jiffies s: 337 root: 0x2/.' \
	'rcu: 	Expedited stall reporting: see rcupdate.rcu_exp_cpu_stall_timeout'
t rcu_tasks_stall \
	'(INFO: )?rcu_tasks.* stall' \
	'INFO: rcu_tasks detected stalls on tasks:' \
	'rcu: RCU Tasks: Setting shift to 1 and lim to 1 rcu_task_cb_adjust=1 rcu_tasks stall check'
t unable_to_handle \
	'Unable to handle kernel' \
	'Unable to handle kernel paging request at virtual address 0000000000000010' \
	'systemd-udevd[143]: Unable to handle kernel module alias'
t circular_locking \
	'WARNING: possible circular locking' \
	'WARNING: possible circular locking dependency detected' \
	'lockdep: WARNING: possible circular locking is not checked'
t recursive_locking \
	'WARNING: possible recursive locking' \
	'WARNING: possible recursive locking detected' \
	'lockdep: WARNING: possible recursive locking is not checked'
t lockdep_other \
	'WARNING: (inconsistent lock state|possible irq lock inversion dependency|bad unlock balance|suspicious RCU usage|lock held when returning to user space|Nested lock was not taken|[A-Z]+-safe -> [A-Z]+-unsafe lock order)' \
	'WARNING: inconsistent lock state' \
	'lockdep: WARNING: bad unlock balance is not checked'
t sleeping_function \
	'BUG: sleeping function called from invalid context' \
	'BUG: sleeping function called from invalid context at mm/hmm.c:612' \
	'test: BUG: sleeping function called from invalid context is off'
t kasan \
	'BUG: KASAN:' \
	'BUG: KASAN: slab-use-after-free in odp_umem_release+0x30/0x90 [odp_mirror]' \
	'KASAN: KernelAddressSanitizer initialized'
t kmemleak \
	'kmemleak: ([0-9]+ new suspected memory leak|Cannot |Memory pool empty|Failed |Kernel memory leak detector disabled)' \
	'kmemleak: 3 new suspected memory leaks (see /sys/kernel/debug/kmemleak)' \
	'kmemleak: Kernel memory leak detector initialized (mem pool available: 15979)'

# Every pattern of the gate has its case.
mapfile -t reports < <(grep -v -e '^#' -e '^$' "$vm/dmesg-reports")
for pat in "${reports[@]}"; do
	found=1
	for p in "${patterns[@]}"; do
		[ "$p" = "$pat" ] && found=0
	done
	tap_check "covered.$(tr -c 'A-Za-z0-9_' _ <<<"$pat" | tr -s _)" $found \
		"no case for pattern '$pat'"
done

: >"$tmp/empty"
[ "$(gate_rc "$tmp/empty")" = 1 ]
tap_check empty_log $? "the gate passed an empty log"
[ "$(gate_rc "$tmp/absent")" = 1 ]
tap_check missing_log $? "the gate passed a missing log"
printf '%s\n' "$boot" '[    1.000000] rdma_rxe: loaded' >"$tmp/clean"
[ "$(gate_rc "$tmp/clean")" = 0 ]
tap_check clean_log $? "the gate failed a clean log"
tap_done
