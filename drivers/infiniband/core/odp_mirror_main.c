// SPDX-License-Identifier: GPL-2.0
/*
 * odp_mirror: on-demand paging umems for RDMA drivers on the kernel's
 * mirror API (mmu_interval_notifier + hmm_range_fault).
 */
#include <linux/module.h>
#include <linux/mmu_notifier.h>

#include "odp_mirror_internal.h"

#define CREATE_TRACE_POINTS
#include "odp_trace.h"

static int __init odp_mirror_init(void)
{
	int ret;

	odp_umem_lockdep_prime();
	ret = odp_fault_init();
	if (ret)
		return ret;
	ret = odp_implicit_init();
	if (ret) {
		odp_fault_exit();
		return ret;
	}
	odp_debugfs_init();
	return 0;
}

static void __exit odp_mirror_exit(void)
{
	odp_debugfs_exit();
	/* the last puts of umems released while their faults stalled */
	odp_fault_exit();
	/* every implicit umem, and with it its reclaim work, is gone */
	odp_implicit_exit();
	/*
	 * mmu_notifier_put() frees per-mm state after an SRCU grace period;
	 * wait for those frees before our text goes away.
	 */
	mmu_notifier_synchronize();
}

module_init(odp_mirror_init);
module_exit(odp_mirror_exit);

MODULE_DESCRIPTION("On-demand paging umems on the mirror API");
MODULE_LICENSE("GPL");
