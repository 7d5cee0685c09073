// SPDX-License-Identifier: GPL-2.0
/*
 * debugfs view of odp_mirror's live objects, for the lifetime tests:
 * /sys/kernel/debug/odp_mirror/live; and a fault-injection knob for the
 * tests of drivers' retry paths: /sys/kernel/debug/odp_mirror/
 * fail_access_nth. Diagnostics only, not an ABI.
 */
#include <linux/debugfs.h>
#include <linux/mmu_notifier.h>
#include <linux/seq_file.h>

#include "odp_mirror_internal.h"

static struct dentry *odp_debugfs_dir;

/* odp_inject_access_failure()'s knob */
atomic_t odp_fail_access_nth = ATOMIC_INIT(0);

/*
 * per_mm structs are freed after an SRCU grace period: count them, wait
 * for the pending frees (mmu_notifier_synchronize()), count again. With
 * no ODP MR left anywhere, both live counts then read zero. Children of
 * implicit umems that invalidations emptied are reclaimed by a work
 * item, and a umem released while its fault stalled is freed when the
 * fault work ends: wait for the works queued so far too (for as long as
 * a stalled fault takes).
 */
static int odp_live_show(struct seq_file *m, void *unused)
{
	long per_mm_before;

	odp_fault_flush();
	odp_implicit_flush();
	per_mm_before = atomic_long_read(&odp_live_per_mm);
	mmu_notifier_synchronize();
	seq_printf(m, "umems %ld\n", atomic_long_read(&odp_live_umems));
	seq_printf(m, "children %ld\n", atomic_long_read(&odp_live_children));
	seq_printf(m, "entries %ld\n", atomic_long_read(&odp_live_entries));
	seq_printf(m, "per_mm %ld\n", atomic_long_read(&odp_live_per_mm));
	seq_printf(m, "per_mm_before_pending_frees %ld\n", per_mm_before);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(odp_live);

void odp_debugfs_init(void)
{
	/* debugfs failures are not errors: the module works without it */
	odp_debugfs_dir = debugfs_create_dir("odp_mirror", NULL);
	debugfs_create_file("live", 0444, odp_debugfs_dir, NULL,
			    &odp_live_fops);
	debugfs_create_atomic_t("fail_access_nth", 0600, odp_debugfs_dir,
				&odp_fail_access_nth);
}

void odp_debugfs_exit(void)
{
	debugfs_remove_recursive(odp_debugfs_dir);
}
