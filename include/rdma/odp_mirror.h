/* SPDX-License-Identifier: GPL-2.0 */
/*
 * odp_mirror: on-demand paging umems for RDMA drivers, built on the
 * kernel's mirror API (mmu_interval_notifier + hmm_range_fault).
 *
 * A umem mirrors a range of a process's address space without pinning
 * it. Its translation table holds entries for faulted pages only; an
 * invalidation of the CPU page tables drops the affected entries before
 * it completes, and no access through the umem touches a page after
 * that until a new fault maps it again.
 */
#ifndef _RDMA_ODP_MIRROR_H
#define _RDMA_ODP_MIRROR_H

#include <linux/atomic.h>
#include <linux/types.h>

struct odp_mirror_umem;

/**
 * struct odp_mirror_counters - A driver's counters that umems add to.
 * @page_faults: pages faulted in (may be NULL)
 * @page_invalidations: pages dropped by invalidations (may be NULL)
 * @fault_retries: fault snapshots begun again because an invalidation
 *                 of the umem won the race with them (may be NULL)
 *
 * Device-wide totals: every umem created with them adds its own counts
 * here too. The counters must outlive the umems.
 */
struct odp_mirror_counters {
	atomic64_t	*page_faults;
	atomic64_t	*page_invalidations;
	atomic64_t	*fault_retries;
};

/**
 * typedef odp_mirror_access_fn - Work on one mapped chunk of a umem.
 * @ctx: the caller's context
 * @kaddr: kernel address of the chunk
 * @len: length of the chunk in bytes; a chunk never crosses a page
 *
 * Runs inside the umem's read-side critical section: it must not sleep
 * for long, allocate with reclaim, or fault.
 *
 * Return: 0 to go on, or a negative errno that ends the walk.
 */
typedef int (*odp_mirror_access_fn)(void *ctx, void *kaddr, size_t len);

struct odp_mirror_umem *
odp_mirror_umem_get(u64 addr, u64 length, bool writable,
		    const struct odp_mirror_counters *totals);
struct odp_mirror_umem *
odp_mirror_umem_get_implicit(bool writable,
			     const struct odp_mirror_counters *totals);
void odp_mirror_umem_release(struct odp_mirror_umem *umem);
int odp_mirror_umem_access(struct odp_mirror_umem *umem, u64 va, u64 len,
			   bool write, odp_mirror_access_fn fn, void *ctx);
int odp_mirror_umem_prefault(struct odp_mirror_umem *umem, u64 va, u64 len,
			     bool write);
int odp_mirror_umem_prefetch(struct odp_mirror_umem *umem, u64 va, u64 len,
			     bool write, bool fault,
			     bool (*keep_going)(void *ctx), void *ctx);
int odp_mirror_umem_copy(struct odp_mirror_umem *umem, u64 va, void *buf,
			 u64 len, bool to_umem);
u64 odp_mirror_umem_page_faults(const struct odp_mirror_umem *umem);
u64 odp_mirror_umem_page_invalidations(const struct odp_mirror_umem *umem);
u64 odp_mirror_umem_page_prefetch(const struct odp_mirror_umem *umem);
u64 odp_mirror_umem_fault_retries(const struct odp_mirror_umem *umem);

#endif /* _RDMA_ODP_MIRROR_H */
