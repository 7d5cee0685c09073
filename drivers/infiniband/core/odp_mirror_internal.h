/* SPDX-License-Identifier: GPL-2.0 */
/* Private structures of the odp_mirror layer. */
#ifndef _ODP_MIRROR_INTERNAL_H
#define _ODP_MIRROR_INTERNAL_H

#include <linux/atomic.h>
#include <linux/mmu_notifier.h>
#include <linux/rwsem.h>
#include <linux/xarray.h>
#include <rdma/odp_mirror.h>

/*
 * One per mm, shared by every umem of that mm (mmu_notifier_get()). It is
 * freed by the mmu_notifier core after an SRCU grace period that follows
 * the last odp_per_mm_put(), so no callback can still see it.
 */
struct odp_per_mm {
	struct mmu_notifier	mn;
	/*
	 * Set by ->release when the mm is torn down. Read without a lock,
	 * only to cut a fault storm against a dying process short: every
	 * fault is still guarded by mmget_not_zero().
	 */
	bool			dying;
};

struct odp_mirror_umem {
	struct mmu_interval_notifier notifier;
	struct odp_per_mm	*per_mm;
	/*
	 * page-aligned user range mirrored: [start, end). end <= TASK_SIZE
	 * is checked with check_add_overflow() at creation, and every access
	 * is checked to lie inside (odp_check_access()), so page arithmetic
	 * within [start, end), PMD rounding included, cannot wrap.
	 */
	unsigned long		start;
	unsigned long		end;
	bool			writable;
	/*
	 * The update lock of Documentation/mm/hmm.rst. Accesses to pages
	 * through the table hold it for reading (several QPs at once);
	 * the invalidate callback and the fault path's table update hold
	 * it for writing. No allocation that may reclaim, and no fault,
	 * happens while it is held.
	 */
	struct rw_semaphore	lock;
	/*
	 * Translation table, protected by @lock: index is the page number
	 * (va >> PAGE_SHIFT), value xa_mk_value(pfn << 1 | writable).
	 * Only faulted pages have entries.
	 */
	struct xarray		pfns;
	/*
	 * PMD-mapped huge pages, one entry each, protected by @lock: index
	 * va >> PMD_SHIFT, value xa_mk_value(head pfn << 1 | writable).
	 * Looked up before @pfns.
	 */
	struct xarray		huge;
	atomic64_t		page_faults;
	atomic64_t		page_invalidations;
	atomic64_t		page_prefetch;
	/* the driver's device-wide totals, added to as well */
	struct odp_mirror_counters totals;
};

/*
 * Live objects of the module, for debugfs and the lifetime tests: per_mm
 * from alloc_notifier to free_notifier, umems from get to release, and
 * translation table entries (a huge page's counts once).
 */
extern atomic_long_t odp_live_per_mm;
extern atomic_long_t odp_live_umems;
extern atomic_long_t odp_live_entries;

/* odp_debugfs.c */
void odp_debugfs_init(void);
void odp_debugfs_exit(void);

/* odp_per_mm.c */
struct odp_per_mm *odp_per_mm_get(struct mm_struct *mm);
void odp_per_mm_put(struct odp_per_mm *per_mm);

#endif /* _ODP_MIRROR_INTERNAL_H */
