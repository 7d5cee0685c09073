/* SPDX-License-Identifier: GPL-2.0 */
/* Private structures of the odp_mirror layer. */
#ifndef _ODP_MIRROR_INTERNAL_H
#define _ODP_MIRROR_INTERNAL_H

#include <linux/atomic.h>
#include <linux/kref.h>
#include <linux/mmu_notifier.h>
#include <linux/rwsem.h>
#include <linux/spinlock.h>
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

/* A umem's own counters; an implicit MR's children add to the parent's. */
struct odp_umem_stats {
	atomic64_t		page_faults;
	atomic64_t		page_invalidations;
	atomic64_t		page_prefetch;
	atomic64_t		fault_retries;
};

/* What one odp_fault() did, for its waiter to count. */
struct odp_fault_result {
	/* pages of the request recorded (valid on success) */
	long			recorded;
	/* snapshots begun again: an invalidation or a lost race won */
	unsigned int		retries;
};

struct odp_implicit;
struct odp_fault_work;

/* odp_mirror_umem.last[]: the copy path's last translations */
#define ODP_LAST_SLOTS		4

/*
 * A umem is one of three kinds:
 * - explicit: mirrors [start, end) through its own interval notifier;
 * - implicit parent (@implicit set): covers the whole user address
 *   space, has no notifier and no table of its own, and reaches memory
 *   through children created as accesses touch it (odp_implicit.c);
 * - child (@parent set): an explicit umem over one ODP_CHILD_SIZE slot
 *   of its parent, counting into the parent's @stats.
 */
struct odp_mirror_umem {
	struct mmu_interval_notifier notifier;
	/*
	 * The owner's reference (the driver's, or for a child its parent's
	 * table of children) and one per fault work that runs on it
	 * (odp_fault_work.c). Releasing the owner's stops the mirror at
	 * once (odp_umem_remove()); the last put frees the memory.
	 */
	struct kref		ref;
	/* the owner's per-mm state; a child borrows its parent's */
	struct odp_per_mm	*per_mm;
	/*
	 * The mm mirrored, grabbed (mmgrab()) until the last put: a fault
	 * work that outlives the mirror still reaches it.
	 */
	struct mm_struct	*mm;
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
	 * counted from @start's PMD (odp_page_index()), value
	 * xa_mk_value(pfn << 1 | writable).
	 * Only faulted pages have entries.
	 */
	struct xarray		pfns;
	/*
	 * PMD-mapped huge pages, one entry each, protected by @lock: index
	 * the PMD counted from @start's (odp_page_index() >> 9), value
	 * xa_mk_value(head pfn << 1 | writable).
	 * Looked up before @pfns.
	 */
	struct xarray		huge;
	/* entries in @pfns and @huge; written under @lock held for writing */
	unsigned long		nr_entries;
	/*
	 * The copy path's last translations (odp_last_pfn()), in slot
	 * odp_page_index() % ODP_LAST_SLOTS: each a word packing a page's
	 * index, pfn and writability (odp_last_keep()), stored whole
	 * (WRITE_ONCE()) by copies under @lock held for reading, so that
	 * the packets that follow one in the same page (3 in 4 at rxe's
	 * 1 KiB of payload) and in the next pages (odp_last_fill()) skip
	 * the table lookup. Zeroed under @lock held
	 * for writing whenever an entry goes or changes
	 * (odp_entries_changed()), so a word read under @lock translates
	 * the tables as they are.
	 */
	unsigned long		last[ODP_LAST_SLOTS];
	/*
	 * Set under @lock held for writing when the mirror stops (the
	 * notifier is removed, the tables emptied): a fault work that
	 * still runs records nothing any more.
	 */
	bool			dead;
	/*
	 * A fault work whose waiter gave up (its backing stalls), kept so
	 * that the next fault waits for it rather than start another
	 * (odp_fault_work.c); referenced. Protected by @stalled_lock.
	 */
	spinlock_t		stalled_lock;
	struct odp_fault_work	*stalled;
	struct odp_umem_stats	own_stats;
	/* &own_stats, or the parent's for a child */
	struct odp_umem_stats	*stats;
	/* the driver's device-wide totals, added to as well */
	struct odp_mirror_counters totals;
	/*
	 * The memory cgroup of the owner's mm at registration (referenced,
	 * by a child too): translation memory is charged to it, also when
	 * a worker faults (set_active_memcg()).
	 */
	struct mem_cgroup	*memcg;
	/* an implicit parent's children, or NULL */
	struct odp_implicit	*implicit;
	/* a child's parent, or NULL */
	struct odp_mirror_umem	*parent;
	/* a child on its way out, on the reclaimer's list */
	struct list_head	dead_link;
};

/* Children of implicit MRs cover 1 GiB each, as mlx5's do. */
#define ODP_CHILD_SHIFT		30
#define ODP_CHILD_SIZE		BIT(ODP_CHILD_SHIFT)

/*
 * Live objects of the module, for debugfs and the lifetime tests: per_mm
 * from alloc_notifier to free_notifier, umems and children of implicit
 * umems from creation to their last put (release or reclaim, or the end
 * of a fault work that outlived those), and translation table entries (a
 * huge page's counts once).
 */
extern atomic_long_t odp_live_per_mm;
extern atomic_long_t odp_live_umems;
extern atomic_long_t odp_live_entries;
extern atomic_long_t odp_live_children;

/*
 * Take @sem for reading on the access path. down_read() is a voluntary
 * preemption point (might_sleep()): with a reschedule pending it gives
 * the CPU away before it even looks at the lock. rxe's workers take the
 * locks of an access once per packet, and the busy-polling processes of
 * an RDMA application always want the CPU, so an ODP worker gave its
 * CPU away at nearly every packet (ODP READ and SEND moved two thirds
 * of pinned). A free lock is taken without that; a contended one is
 * waited for as down_read() does, and the worker still yields at its
 * own scheduling points.
 */
static inline void odp_down_read(struct rw_semaphore *sem)
{
	if (!down_read_trylock(sem))
		down_read(sem);
}

/* odp_debugfs.c */
void odp_debugfs_init(void);
void odp_debugfs_exit(void);
extern atomic_t odp_fail_access_nth;

/*
 * Should this access fail? Writing N > 0 to debugfs' fail_access_nth
 * makes the Nth odp_mirror_umem_access() from then on fail with -EAGAIN,
 * as if invalidations had kept taking its pages, once; reading it shows
 * how many accesses are left before it (0: none pending). Inline: every
 * access of the copy path asks.
 */
static inline bool odp_access_failure_armed(void)
{
	return atomic_read(&odp_fail_access_nth);
}

static inline bool odp_inject_access_failure(void)
{
	/* the common case: nothing armed, one read */
	if (likely(!odp_access_failure_armed()))
		return false;
	return atomic_dec_if_positive(&odp_fail_access_nth) == 0;
}

/* odp_umem.c */
/* Work on [va, end) of an explicit umem or child, checked to lie inside. */
typedef int (*odp_range_fn)(struct odp_mirror_umem *umem, unsigned long va,
			    unsigned long end, void *arg);
void odp_umem_lockdep_prime(void);
void odp_umem_init(struct odp_mirror_umem *umem, struct mm_struct *mm,
		   unsigned long start, unsigned long end, bool writable,
		   const struct odp_mirror_counters *totals);
int odp_umem_insert(struct odp_mirror_umem *umem);
void odp_umem_remove(struct odp_mirror_umem *umem);
void odp_umem_put(struct odp_mirror_umem *umem);
int odp_fault(struct odp_mirror_umem *umem, unsigned long va,
	      unsigned long npages, unsigned long flags, bool in_caller,
	      struct odp_fault_result *res);
void odp_count(atomic64_t *own, atomic64_t *total, u64 n);
bool odp_copy_recorded(struct odp_mirror_umem *umem, unsigned long va,
		       void *buf, size_t len, bool to_umem);

/* odp_fault_work.c */
/*
 * How long a fault's waiter waits for it before it gives up with -ETIME
 * (the fault goes on): well under the time rxe's deregistration waits
 * for an MR's users (50 s), well over a fault of 2 MiB on a slow guest.
 */
#define ODP_FAULT_WAIT		(5 * HZ)
int odp_fault_wait(struct odp_mirror_umem *umem, unsigned long va,
		   unsigned long npages, unsigned long flags, bool prefetch);
void odp_fault_drop_stalled(struct odp_mirror_umem *umem);
int odp_fault_init(void);
void odp_fault_exit(void);
void odp_fault_flush(void);

/* odp_implicit.c */
int odp_implicit_init(void);
void odp_implicit_exit(void);
void odp_implicit_flush(void);
int odp_implicit_walk(struct odp_mirror_umem *umem, unsigned long va,
		      unsigned long end, odp_range_fn fn, void *arg);
void odp_implicit_child_emptied(struct odp_mirror_umem *child);
bool odp_implicit_copy_in_page(struct odp_mirror_umem *umem, unsigned long va,
			       void *buf, size_t len, bool to_umem);
void odp_implicit_release(struct odp_mirror_umem *umem);

/* odp_per_mm.c */
struct odp_per_mm *odp_per_mm_get(struct mm_struct *mm);
void odp_per_mm_put(struct odp_per_mm *per_mm);

#endif /* _ODP_MIRROR_INTERNAL_H */
