// SPDX-License-Identifier: GPL-2.0
/*
 * odp_mirror umems: a mirror of a user address range, filled by
 * hmm_range_fault() and emptied by the range's mmu_interval_notifier.
 *
 * Accesses follow the collision-retry scheme of Documentation/mm/hmm.rst:
 * a fault snapshots the CPU page tables, takes the update lock for
 * writing, checks mmu_interval_read_retry() and only then records the
 * pages; an access copies only through recorded pages, with the update
 * lock held for reading, so an invalidation (which takes it for writing
 * and drops the entries) never completes while a copy still uses a page.
 */
#include <linux/error-injection.h>
#include <linux/hmm.h>
#include <linux/highmem.h>
#include <linux/hugetlb.h>
#include <linux/indirect_call_wrapper.h>
#include <linux/magic.h>
#include <linux/memcontrol.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <rdma/odp_mirror.h>
#include <rdma/odp_mirror_range.h>

#include "odp_mirror_internal.h"
#include "odp_trace.h"

/* Pages one hmm_range_fault() call faults at most (2 MiB). */
#define ODP_FAULT_MAX_PAGES	512
/* Pages copied in one stay in the read-side section, to not starve munmap. */
#define ODP_STAY_PAGES		16
/* Bytes odp_mirror_umem_prefault() faults ahead at most. */
#define ODP_PREFAULT_MAX	(8UL << 20)
/* A fault in a PMD already in use records the present pages of 64 KiB. */
#define ODP_FAULT_AROUND	SZ_64K
/* Faults in a row that lose their pages to invalidations before -EAGAIN. */
#define ODP_FAULT_RETRIES	8

#define ODP_ENTRY_WRITABLE	1UL
/* A PMD-mapped huge page: the pages one entry of umem->huge covers. */
#define ODP_HUGE_ORDER		(PMD_SHIFT - PAGE_SHIFT)
#define ODP_HUGE_PAGES		BIT(ODP_HUGE_ORDER)

atomic_long_t odp_live_umems;
atomic_long_t odp_live_entries;

/*
 * odp_mirror_umem.last[]'s words: bit 0 set in a word in use, then the
 * page's index in 23 bits (pages past 32 GiB of a umem are not kept),
 * then its translation (odp_lookup()).
 */
#define ODP_LAST_USED		BIT(0)
#define ODP_LAST_INDEX_BITS	23
#define ODP_LAST_KEY		GENMASK(ODP_LAST_INDEX_BITS, 0)
#define ODP_LAST_SHIFT		(ODP_LAST_INDEX_BITS + 1)

/*
 * The index of @va's slot in @umem->pfns. Indices count from the PMD of
 * the umem's first byte, not from address 0: the xarray's height follows
 * the largest index, so a small MR's table is one or two levels deep
 * rather than six, and every lookup of the copy path walks that much
 * less. The huge table's index of @va is this >> ODP_HUGE_ORDER.
 */
static unsigned long odp_page_index(const struct odp_mirror_umem *umem,
				    unsigned long va)
{
	return (va - (umem->start & PMD_MASK)) >> PAGE_SHIFT;
}

/* Add @n to a umem's counter and to the driver's total, if it has one. */
void odp_count(atomic64_t *own, atomic64_t *total, u64 n)
{
	atomic64_add(n, own);
	if (total)
		atomic64_add(n, total);
}

/*
 * An entry of @umem went or changed: the translations the copy path kept
 * (odp_last_pfn()) go too.
 */
static void odp_entries_changed(struct odp_mirror_umem *umem)
{
	int i;

	lockdep_assert_held_write(&umem->lock);
	for (i = 0; i < ODP_LAST_SLOTS; i++)
		WRITE_ONCE(umem->last[i], 0);
}

/*
 * Drop the entries of @xa in [@first, @last] and return how many there
 * were. They are counted in one walk, then erased by whole xarray nodes
 * (xa_store_range()), not one by one: an munmap of a resident GiB drops
 * 262144 of them. Slots that a concurrent fault reserved in the range go
 * too: the invalidation has moved the notifier sequence, so that fault
 * retries its snapshot and reserves again before it records anything.
 */
static unsigned long odp_erase_range(struct odp_mirror_umem *umem,
				     struct xarray *xa, unsigned long first,
				     unsigned long last)
{
	XA_STATE(xas, xa, first);
	unsigned long n = 0;
	void *entry;

	lockdep_assert_held_write(&umem->lock);
	rcu_read_lock();
	xas_for_each(&xas, entry, last) {
		/* a reserved slot (or a node going away) is no entry */
		if (xas_retry(&xas, entry))
			continue;
		n++;
	}
	rcu_read_unlock();
	if (!n)
		return 0;
	/* erasing allocates nothing, so it cannot fail */
	xa_store_range(xa, first, last, NULL, GFP_NOWAIT);
	odp_entries_changed(umem);
	umem->nr_entries -= n;
	atomic_long_sub(n, &odp_live_entries);
	return n;
}

static bool odp_umem_invalidate(struct mmu_interval_notifier *mni,
				const struct mmu_notifier_range *range,
				unsigned long cur_seq)
{
	struct odp_mirror_umem *umem =
		container_of(mni, struct odp_mirror_umem, notifier);
	u64 first, last, dropped = 0;
	bool emptied;

	if (mmu_notifier_range_blockable(range))
		down_write(&umem->lock);
	else if (!down_write_trylock(&umem->lock))
		return false;

	mmu_interval_set_seq(mni, cur_seq);
	/* the first and last byte of the umem that the range covers */
	if (odp_mirror_clip_pages(umem->start, umem->end, range->start,
				  range->end, 0, &first, &last)) {
		first = odp_page_index(umem, first);
		last = odp_page_index(umem, last);
		dropped = odp_erase_range(umem, &umem->pfns, first, last);
		dropped += odp_erase_range(umem, &umem->huge,
					   first >> ODP_HUGE_ORDER,
					   last >> ODP_HUGE_ORDER) *
			   ODP_HUGE_PAGES;
	}
	emptied = dropped && !umem->nr_entries;
	up_write(&umem->lock);

	trace_odp_mirror_invalidate(umem, range->start, range->end, dropped,
				    range->event);
	odp_count(&umem->stats->page_invalidations,
		  umem->totals.page_invalidations, dropped);
	if (emptied && umem->parent)
		odp_implicit_child_emptied(umem);
	return true;
}

static const struct mmu_interval_notifier_ops odp_umem_ops = {
	.invalidate = odp_umem_invalidate,
};

/*
 * Memory the mirror must never map. The mirror API does not refuse
 * memfd_secret mappings, whose pages are absent from the direct map;
 * refuse them here, by their file system. (hmm_range_fault() itself
 * refuses VM_IO/VM_PFNMAP and unreadable VMAs, and never reports their
 * pages as valid.)
 */
static bool odp_vma_refused(struct vm_area_struct *vma)
{
	return vma->vm_file &&
	       file_inode(vma->vm_file)->i_sb->s_magic == SECRETMEM_MAGIC;
}

/*
 * May a fault of @vma wait on a file system (FUSE, NFS, ...)? Not one of
 * anonymous, shmem (tmpfs, memfd) or hugetlbfs memory, whose faults end
 * on their own.
 */
static bool odp_vma_may_stall(struct vm_area_struct *vma)
{
	unsigned long magic;

	if (!vma->vm_file)
		return false;
	magic = file_inode(vma->vm_file)->i_sb->s_magic;
	return magic != TMPFS_MAGIC && magic != HUGETLBFS_MAGIC;
}

/*
 * odp_fault_window() - Choose what one snapshot of odp_fault() covers.
 * @umem: the umem
 * @mm: its mm, mmap lock held
 * @va: first address of the request
 * @req_end: end of the request
 * @range: its start and end are set
 *
 * The request itself must not touch refused memory (odp_vma_refused()).
 * It is widened to whole PMDs inside the umem so that a huge page it
 * touches can be recorded as one entry; every valid page of the window is
 * recorded, so the widening too stays out of refused VMAs: it shrinks to
 * the memory between the refused VMAs nearest the request, never fails.
 *
 * Return: 0, or -EFAULT when the request touches refused memory.
 */
static int odp_fault_window(struct odp_mirror_umem *umem,
			    struct mm_struct *mm, unsigned long va,
			    unsigned long req_end, struct hmm_range *range)
{
	unsigned long start = max(ALIGN_DOWN(va, PMD_SIZE), umem->start);
	unsigned long end = min(ALIGN(req_end, PMD_SIZE), umem->end);
	struct vm_area_struct *vma;
	struct vma_iterator vmi;

	mmap_assert_locked(mm);
	vma_iter_init(&vmi, mm, start);
	for_each_vma_range(vmi, vma, end) {
		if (!odp_vma_refused(vma))
			continue;
		if (vma->vm_start >= req_end) {
			end = vma->vm_start;
			break;
		}
		if (vma->vm_end > va)
			return -EFAULT;
		start = vma->vm_end;
	}
	range->start = start;
	range->end = end;
	return 0;
}

/*
 * Give up with -EWOULDBLOCK when a VMA of the request [@va, @req_end) may
 * stall its fault (odp_vma_may_stall()).
 */
static int odp_request_may_stall(struct mm_struct *mm, unsigned long va,
				 unsigned long req_end)
{
	VMA_ITERATOR(vmi, mm, va);
	struct vm_area_struct *vma;

	mmap_assert_locked(mm);
	for_each_vma_range(vmi, vma, req_end)
		if (odp_vma_may_stall(vma))
			return -EWOULDBLOCK;
	return 0;
}

/*
 * odp_fault_prepare() - Set up one snapshot of odp_fault() under the mmap
 * lock: its window (odp_fault_window()), which hmm_range_fault() only
 * looks at. -EWOULDBLOCK when the request faults memory that may stall
 * and @in_caller says not to.
 */
static int odp_fault_prepare(struct odp_mirror_umem *umem,
			     struct mm_struct *mm, unsigned long va,
			     unsigned long npages, unsigned long flags,
			     bool in_caller, struct hmm_range *range)
{
	unsigned long req_end = va + (npages << PAGE_SHIFT);
	int ret;

	ret = odp_fault_window(umem, mm, va, req_end, range);
	if (!ret && flags && in_caller)
		ret = odp_request_may_stall(mm, va, req_end);
	return ret;
}

/*
 * odp_fault_request() - Fault the request's own pages, under the mmap lock
 * and the notifier sequence of @window, before the window is looked at.
 *
 * Once hmm_range_fault() must fault one page of a range, it faults every
 * page of the hole around it (pmd_none), or from it to the end of its
 * PMD: a window wider than the request, faulted in one call, would make
 * up to 2 MiB resident for an 8-byte access. The request's range is
 * faulted alone; @flags go to all its pages, so a hugetlb page the
 * request begins in the middle of is faulted too (hmm_range_fault() takes
 * a hugetlb page's request from the first of its pages it reaches).
 */
static int odp_fault_request(const struct hmm_range *window, unsigned long va,
			     unsigned long npages, unsigned long flags)
{
	struct hmm_range req = {
		.notifier = window->notifier,
		.notifier_seq = window->notifier_seq,
		.start = va,
		.end = va + (npages << PAGE_SHIFT),
		.hmm_pfns = window->hmm_pfns +
			    ((va - window->start) >> PAGE_SHIFT),
		.default_flags = flags,
	};

	return hmm_range_fault(&req);
}

/*
 * odp_fault_around() - Narrow the window of a fault whose PMD is in use.
 * @umem: the umem
 * @range: the window (odp_fault_window()), the request's pages faulted
 * @va: first address of the request
 * @req_end: end of the request
 *
 * Recording every present page of the PMD costs a walk of its 512 PTEs
 * and table slots per fault, which memory touched page by page pays at
 * every page: in a function_graph trace of perf/first-touch the window
 * took about 60 % of odp_fault()'s time. So only the first fault in a PMD
 * (no 4 KiB entry recorded in it yet) records the PMD's present pages;
 * later ones record those of the ODP_FAULT_AROUND blocks around the
 * request, as the CPU's fault-around maps the 64 KiB around a file
 * page. A request of one PMD that faulted a huge page keeps the whole
 * PMD, which is recorded as one entry; a request over several PMDs
 * keeps its window, whose widening is small beside it.
 *
 * Context: the mmap lock held for reading; takes the RCU read lock.
 */
static void odp_fault_around(struct odp_mirror_umem *umem,
			     struct hmm_range *range, unsigned long va,
			     unsigned long req_end)
{
	unsigned long first = (va - range->start) >> PAGE_SHIFT;
	unsigned long i, npages = (req_end - va) >> PAGE_SHIFT;
	unsigned long start, end, index;

	if (range->end - range->start > PMD_SIZE)
		return;
	for (i = first; i < first + npages; i++)
		if (hmm_pfn_to_map_order(range->hmm_pfns[i]) >= ODP_HUGE_ORDER)
			return;
	index = odp_page_index(umem, range->start);
	if (!xa_find(&umem->pfns, &index,
		     odp_page_index(umem, range->end - PAGE_SIZE), XA_PRESENT))
		return;
	start = max(ALIGN_DOWN(va, ODP_FAULT_AROUND), range->start);
	end = min(ALIGN(req_end, ODP_FAULT_AROUND), range->end);
	range->hmm_pfns += (start - range->start) >> PAGE_SHIFT;
	range->start = start;
	range->end = end;
}

static unsigned long odp_fault_flags(bool write)
{
	return HMM_PFN_REQ_FAULT | (write ? HMM_PFN_REQ_WRITE : 0);
}

/*
 * Does page @i of @range begin a PMD-mapped huge page (THP or hugetlb)
 * that lies wholly in the range? Then it is recorded as one entry.
 */
static bool odp_huge_at(const struct hmm_range *range, unsigned long i)
{
	unsigned long hpfn = range->hmm_pfns[i];
	unsigned long va = range->start + (i << PAGE_SHIFT);

	return (hpfn & HMM_PFN_VALID) &&
	       hmm_pfn_to_map_order(hpfn) >= ODP_HUGE_ORDER &&
	       IS_ALIGNED(va, PMD_SIZE) && range->end - va >= PMD_SIZE &&
	       IS_ALIGNED(page_to_pfn(hmm_pfn_to_page(hpfn)), ODP_HUGE_PAGES);
}

/* The table entry of the valid page @hpfn: its pfn, and whether writable. */
static void *odp_entry(unsigned long hpfn)
{
	unsigned long val = page_to_pfn(hmm_pfn_to_page(hpfn)) << 1;

	if (hpfn & HMM_PFN_WRITE)
		val |= ODP_ENTRY_WRITABLE;
	return xa_mk_value(val);
}

/*
 * Reserve slot @index of @xa for the page @hpfn, unless it holds that
 * very entry already. odp_record() then leaves such a slot alone; if an
 * invalidation drops its entry meanwhile, the notifier sequence has moved
 * and the snapshot is retried before anything is recorded.
 */
static int odp_reserve_slot(struct xarray *xa, unsigned long index,
			    unsigned long hpfn)
{
	if (xa_load(xa, index) == odp_entry(hpfn))
		return 0;
	return xa_reserve(xa, index, GFP_KERNEL_ACCOUNT);
}

/*
 * Reserve the table slots that odp_record() will fill for @range, so that
 * recording under the update lock needs no allocation (an allocation
 * there could reclaim, and reclaim can invalidate: a deadlock).
 *
 * Each fault's window records all the present pages of its PMD, so most
 * of a window's pages are recorded already, with the same entry: the
 * 4 KiB slots are looked at with one cursor that steps from page to page
 * (xas_next()) rather than a walk from the root for each, and only the
 * slots that need a new entry are reserved.
 */
static int odp_reserve(struct odp_mirror_umem *umem,
		       const struct hmm_range *range)
{
	unsigned long npages = (range->end - range->start) >> PAGE_SHIFT;
	unsigned long first = odp_page_index(umem, range->start), i, hpfn;
	XA_STATE(xas, &umem->pfns, first);
	int ret = 0;
	void *cur;

	rcu_read_lock();
	for (i = 0; i < npages && !ret; i++) {
		hpfn = range->hmm_pfns[i];
		if (odp_huge_at(range, i)) {
			rcu_read_unlock();
			ret = odp_reserve_slot(&umem->huge,
					       (first + i) >> ODP_HUGE_ORDER,
					       hpfn);
			i += ODP_HUGE_PAGES - 1;
			/* xas_next() goes on at page i + 1 */
			xas_set(&xas, first + i + 1);
			rcu_read_lock();
			continue;
		}
		cur = xas_next(&xas);
		if (!(hpfn & HMM_PFN_VALID) || cur == odp_entry(hpfn))
			continue;
		rcu_read_unlock();
		ret = xa_reserve(&umem->pfns, first + i, GFP_KERNEL_ACCOUNT);
		xas_set(&xas, first + i + 1);
		rcu_read_lock();
	}
	rcu_read_unlock();
	return ret;
}

/*
 * Release the slots odp_reserve() reserved for @range that hold no entry:
 * a snapshot that is retried, or fails, must not leave reservations
 * behind, or translation memory would follow "ever touched" rather than
 * "resident" (a reserved slot is invisible to lookups and invalidations,
 * and keeps its xarray node until the umem goes). Slots that hold an
 * entry are left alone; one that another fault had reserved as well is
 * released too, and that fault reserves again if it must (odp_fault()).
 */
static void odp_unreserve(struct odp_mirror_umem *umem,
			  const struct hmm_range *range)
{
	unsigned long npages = (range->end - range->start) >> PAGE_SHIFT;
	unsigned long first = odp_page_index(umem, range->start), i;

	lockdep_assert_held_write(&umem->lock);
	for (i = 0; i < npages; i++) {
		if (odp_huge_at(range, i)) {
			xa_release(&umem->huge, (first + i) >> ODP_HUGE_ORDER);
			i += ODP_HUGE_PAGES - 1;
		} else if (range->hmm_pfns[i] & HMM_PFN_VALID) {
			xa_release(&umem->pfns, first + i);
		}
	}
}

/* Record the huge page @hpfn in slot @index of @umem's huge table. */
static int odp_store_huge(struct odp_mirror_umem *umem, unsigned long index,
			  unsigned long hpfn)
{
	void *entry = odp_entry(hpfn), *old;

	lockdep_assert_held_write(&umem->lock);
	if (xa_load(&umem->huge, index) == entry)
		return 0;
	old = xa_store(&umem->huge, index, entry, GFP_NOWAIT);
	if (xa_is_err(old))
		return xa_err(old);
	/* a huge entry hides the 4 KiB ones a copy may have kept */
	odp_entries_changed(umem);
	if (!xa_is_value(old)) {
		umem->nr_entries++;
		atomic_long_inc(&odp_live_entries);
	}
	return 0;
}

/*
 * Record the valid pages of @range: a PMD-mapped huge page as one entry,
 * other pages one entry each, through one cursor over the 4 KiB table
 * (odp_reserve()); a slot that holds the entry already is left alone.
 * Return: how many of the pages [@req_first, @req_first + @req_pages) of
 * the range are now recorded, or -ENOMEM.
 */
static long odp_record(struct odp_mirror_umem *umem, struct hmm_range *range,
		       unsigned long req_first, unsigned long req_pages)
{
	unsigned long npages = (range->end - range->start) >> PAGE_SHIFT;
	unsigned long first = odp_page_index(umem, range->start);
	unsigned long i, n, hpfn, req_end = req_first + req_pages;
	XA_STATE(xas, &umem->pfns, first);
	long recorded = 0;
	void *entry, *old;
	int ret = 0;

	lockdep_assert_held_write(&umem->lock);
	xas_lock(&xas);
	for (i = 0; i < npages && !ret; i += n) {
		hpfn = range->hmm_pfns[i];
		n = 1;
		if (odp_huge_at(range, i)) {
			n = ODP_HUGE_PAGES;
			/* the two tables' locks are of one class */
			xas_unlock(&xas);
			ret = odp_store_huge(umem, (first + i) >> ODP_HUGE_ORDER,
					     hpfn);
			xas_lock(&xas);
			/* xas_next() goes on at page i + n */
			xas_set(&xas, first + i + n);
		} else {
			old = xas_next(&xas);
			if (!(hpfn & HMM_PFN_VALID))
				continue;
			entry = odp_entry(hpfn);
			if (old != entry) {
				xas_store(&xas, entry);
				ret = xas_error(&xas);
				if (ret)
					continue;
				if (xa_is_value(old)) {
					odp_entries_changed(umem);
				} else {
					umem->nr_entries++;
					atomic_long_inc(&odp_live_entries);
				}
			}
		}
		/* pages of [i, i + n) inside the request */
		if (!ret && i < req_end && i + n > req_first)
			recorded += min(i + n, req_end) - max(i, req_first);
	}
	xas_unlock(&xas);
	return ret ?: recorded;
}

/**
 * odp_fault() - Fault [@va, @va + @npages pages) in and record the pages.
 * @umem: an explicit umem or a child, referenced by the caller
 * @va: first user address, page-aligned, inside @umem
 * @npages: pages of the request, inside @umem
 * @flags: HMM_PFN_REQ_FAULT [| HMM_PFN_REQ_WRITE], or 0 for a snapshot
 *         that records only what is present and faults nothing
 * @in_caller: run by the caller of an access, which must not wait without
 *             bound: give up with -EWOULDBLOCK rather than fault memory
 *             that a file system backs, or wait for a contended mmap lock
 * @res: set to the pages of the request recorded (on success) and to the
 *       snapshots retried (always)
 *
 * The request's pages are faulted (odp_fault_request()); then the
 * snapshot covers the request widened to whole PMDs (inside the umem,
 * and outside refused memory: odp_fault_window()), so that a huge page it
 * touches can be recorded as one entry, and the pages around it that are
 * present already are recorded too; in a PMD in use already, only those
 * of the 64 KiB around the request (odp_fault_around()). The widening
 * faults nothing.
 *
 * It may run after the mirror stopped (a fault work that outlived the
 * waiter and the owner: odp_fault_work.c): it then records nothing.
 *
 * Context: process or kworker context (!@in_caller: the fault work), no
 * odp_mirror lock held; sleeps, without @in_caller as long as the
 * memory's backing makes it.
 * Return: 0, -EFAULT (nothing mapped there, PROT_NONE, VM_IO/VM_PFNMAP,
 * memfd_secret, the mm is gone, or the mirror stopped), -EPERM (write
 * to a read-only mapping), -ENOMEM, -EAGAIN when invalidations kept
 * winning for HMM_RANGE_DEFAULT_TIMEOUT, or -EWOULDBLOCK (@in_caller).
 */
int odp_fault(struct odp_mirror_umem *umem, unsigned long va,
	      unsigned long npages, unsigned long flags, bool in_caller,
	      struct odp_fault_result *res)
{
	struct mm_struct *mm = umem->mm;
	unsigned long req_end = va + (npages << PAGE_SHIFT);
	/* the window: looked at, never faulted (no request flags) */
	struct hmm_range range = {
		.notifier = &umem->notifier,
	};
	/* the widest window odp_fault_window() may choose */
	unsigned long wpages = (min(ALIGN(req_end, PMD_SIZE), umem->end) -
				max(ALIGN_DOWN(va, PMD_SIZE), umem->start)) >>
			       PAGE_SHIFT;
	struct mem_cgroup *old_memcg;
	unsigned long timeout, *pfns;
	unsigned int tries = 0;
	int ret;

	res->recorded = -1;
	res->retries = 0;
	pfns = kvmalloc_array(wpages, sizeof(*pfns), GFP_KERNEL);
	if (!pfns)
		return -ENOMEM;
	if (!mmget_not_zero(mm)) {
		ret = -EFAULT;
		goto out_free;
	}

	timeout = jiffies + msecs_to_jiffies(HMM_RANGE_DEFAULT_TIMEOUT);
	for (;;) {
		if (time_after(jiffies, timeout)) {
			ret = -EAGAIN;
			break;
		}
		/* racy: it only saves work, the check under the lock decides */
		if (READ_ONCE(umem->dead)) {
			ret = -EFAULT;
			break;
		}
		tries++;
		range.hmm_pfns = pfns;
		range.notifier_seq = mmu_interval_read_begin(&umem->notifier);
		if (!in_caller) {
			mmap_read_lock(mm);
		} else if (!mmap_read_trylock(mm)) {
			ret = -EWOULDBLOCK;
			break;
		}
		ret = odp_fault_prepare(umem, mm, va, npages, flags, in_caller,
					&range);
		if (!ret && flags) {
			ret = odp_fault_request(&range, va, npages, flags);
			if (!ret)
				odp_fault_around(umem, &range, va, req_end);
		}
		if (!ret)
			ret = hmm_range_fault(&range);
		mmap_read_unlock(mm);
		if (ret == -EBUSY)
			continue;
		if (ret)
			break;
		old_memcg = set_active_memcg(umem->memcg);
		ret = odp_reserve(umem, &range);
		set_active_memcg(old_memcg);

		down_write(&umem->lock);
		if (ret || umem->dead) {
			odp_unreserve(umem, &range);
			up_write(&umem->lock);
			ret = ret ?: -EFAULT;
			break;
		}
		if (mmu_interval_read_retry(&umem->notifier,
					    range.notifier_seq)) {
			odp_unreserve(umem, &range);
			up_write(&umem->lock);
			continue;
		}
		res->recorded = odp_record(umem, &range,
					   (va - range.start) >> PAGE_SHIFT,
					   npages);
		if (res->recorded < 0) {
			/*
			 * A concurrent fault released a slot reserved for
			 * both, and GFP_NOWAIT could not refill it: reserve
			 * again, with reclaim, outside the lock.
			 */
			odp_unreserve(umem, &range);
			up_write(&umem->lock);
			continue;
		}
		up_write(&umem->lock);
		break;
	}
	/* The last reference may be ours; exit_mmap must not run here. */
	mmput_async(mm);
	res->retries = tries ? tries - 1 : 0;
out_free:
	kvfree(pfns);
	trace_odp_mirror_fault(umem, va, npages,
			       !flags ? 0 : flags & HMM_PFN_REQ_WRITE ? 3 : 1,
			       tries, res->recorded, ret);
	return ret;
}
ALLOW_ERROR_INJECTION(odp_fault, ERRNO);

/*
 * Is [@va, @va + @len) inside @umem, writable if @write, and is its
 * process still there? Sets *@end.
 */
static int odp_check_access(struct odp_mirror_umem *umem, u64 va, u64 len,
			    bool write, u64 *end)
{
	/*
	 * Once the owner has exited, its pages may stay mapped for a while:
	 * exit_mmap() runs from mmput_async() when a fault held the last
	 * reference. Accesses end with the process, not with exit_mmap().
	 * (The notifier holds the mm itself, so mm_users can be read.)
	 */
	if (!atomic_read(&umem->per_mm->mn.mm->mm_users))
		return -EFAULT;
	if (write && !umem->writable)
		return -EPERM;
	if (check_add_overflow(va, len, end) || va < umem->start ||
	    *end > umem->end)
		return -EFAULT;
	return 0;
}

/*
 * The huge page entry that covers page @index of @umem, or NULL. The huge
 * table is looked at only when it holds something: entries come and go
 * under the write side of umem->lock, which the caller excludes, and a
 * slot reserved meanwhile (odp_reserve()) holds no entry.
 */
static void *odp_huge_entry(struct odp_mirror_umem *umem, unsigned long index)
{
	lockdep_assert_held(&umem->lock);
	if (xa_empty(&umem->huge))
		return NULL;
	return xa_load(&umem->huge, index >> ODP_HUGE_ORDER);
}

/* The translation of page @index in the huge page of huge entry @entry. */
static unsigned long odp_huge_translation(void *entry, unsigned long index)
{
	return xa_to_value(entry) + ((index & (ODP_HUGE_PAGES - 1)) << 1);
}

/*
 * The translation of @va's page, pfn << 1 | ODP_ENTRY_WRITABLE if it may
 * be written, or 0 if it must be faulted first (pfn 0 is never a user
 * page). A huge page's entry covers all of it.
 */
static unsigned long odp_lookup(struct odp_mirror_umem *umem,
				unsigned long va)
{
	unsigned long index = odp_page_index(umem, va);
	void *entry = odp_huge_entry(umem, index);

	if (entry)
		return odp_huge_translation(entry, index);
	entry = xa_load(&umem->pfns, index);
	return entry ? xa_to_value(entry) : 0;
}

/* The pfn of translation @t, or 0 if it is none or @write it may not. */
static __always_inline unsigned long odp_translation_pfn(unsigned long t,
							 bool write)
{
	return write && !(t & ODP_ENTRY_WRITABLE) ? 0 : t >> 1;
}

/* The pfn of a recorded page usable for the access, or 0. */
static unsigned long odp_usable_pfn(struct odp_mirror_umem *umem,
				    unsigned long va, bool write)
{
	return odp_translation_pfn(odp_lookup(umem, va), write);
}

/* Keep translation @t of page @index in its slot of @umem->last. */
static void odp_last_keep(struct odp_mirror_umem *umem, unsigned long index,
			  unsigned long t)
{
	if (t < BIT(BITS_PER_LONG - ODP_LAST_SHIFT))
		WRITE_ONCE(umem->last[index % ODP_LAST_SLOTS],
			   t << ODP_LAST_SHIFT | index << 1 | ODP_LAST_USED);
}

/*
 * odp_lookup() for odp_last_pfn(), which did not find @va's page in its
 * slot: the translations of that page and of the pages after it in the
 * same PMD that the other slots keep, read in one walk, go to their
 * slots, so that a copy that goes on into the next pages finds them
 * there too. Returns that of @va's page.
 */
static noinline unsigned long odp_last_fill(struct odp_mirror_umem *umem,
					    unsigned long va)
{
	unsigned long index = odp_page_index(umem, va), i, t = 0;
	unsigned long last = min(index + ODP_LAST_SLOTS - 1,
				 index | (ODP_HUGE_PAGES - 1));
	XA_STATE(xas, &umem->pfns, index);
	void *entry;

	lockdep_assert_held(&umem->lock);
	if (last >= BIT(ODP_LAST_INDEX_BITS))
		return odp_lookup(umem, va);
	entry = odp_huge_entry(umem, index);
	if (entry) {
		for (i = index; i <= last; i++)
			odp_last_keep(umem, i, odp_huge_translation(entry, i));
		return odp_huge_translation(entry, index);
	}
	rcu_read_lock();
	xas_for_each(&xas, entry, last) {
		if (xas_retry(&xas, entry) || !xa_is_value(entry))
			continue;
		odp_last_keep(umem, xas.xa_index, xa_to_value(entry));
		if (xas.xa_index == index)
			t = xa_to_value(entry);
	}
	rcu_read_unlock();
	return t;
}

/*
 * odp_usable_pfn() through @umem's last translations: the word of @va's
 * slot is used when it keeps @va's page, else odp_last_fill() looks the
 * page up and fills the slots. Both happen under @umem->lock, which
 * odp_entries_changed() holds for writing when it zeroes the words.
 */
static __always_inline unsigned long
odp_last_pfn(struct odp_mirror_umem *umem, unsigned long va, bool write)
{
	unsigned long index = odp_page_index(umem, va), word;

	lockdep_assert_held(&umem->lock);
	word = READ_ONCE(umem->last[index % ODP_LAST_SLOTS]);
	if (index < BIT(ODP_LAST_INDEX_BITS) &&
	    (word & ODP_LAST_KEY) == (index << 1 | ODP_LAST_USED))
		return odp_translation_pfn(word >> ODP_LAST_SHIFT, write);
	return odp_translation_pfn(odp_last_fill(umem, va), write);
}

/*
 * Mark the folio of @pfn dirty before a write through the mirror changes
 * it. The write goes through the kernel mapping, so neither the user PTE
 * nor the folio becomes dirty by itself, and hmm_range_fault() does not
 * fault a present, writable, clean PTE: without this, reclaim would drop
 * the written data (a clean MADV_FREE page is discarded, a clean
 * swap-cache page freed; a file page written back before our write and
 * still mapped writable would never be written again).
 *
 * Why here, at write time, and not when an invalidation drops the entry
 * (as ib_umem_odp does for every writable entry): only pages that are
 * really written become dirty, so lazy-free memory that remote peers only
 * read stays discardable and file pages are not written back for nothing;
 * and the folio is dirty before the invalidation that drops the entry can
 * even start, so reclaim (which invalidates before it looks at the dirty
 * bit) and writeback (folio_mkclean() invalidates before the dirty bit is
 * cleared, so our write is in the data it writes) both see it.
 *
 * No folio lock (it may not be taken under umem->lock: reclaim holds it
 * when it invalidates, which takes umem->lock for writing). Like
 * zap_pte_range() under the page table lock, we rely on the page being
 * mapped: the caller holds umem->lock for reading and the entry is there,
 * so the PTE still maps the page, and truncation, which must unmap it
 * first and therefore invalidate, cannot take the folio out of its
 * mapping meanwhile (see folio_mark_dirty()).
 */
static __always_inline void odp_mark_dirty(unsigned long pfn)
{
	struct folio *folio = page_folio(pfn_to_page(pfn));

	if (!folio_test_dirty(folio))
		folio_mark_dirty(folio);
}

struct odp_copy {
	u8	*buf;
	bool	to_umem;
};

static int odp_copy_chunk(void *ctx, void *kaddr, size_t len)
{
	struct odp_copy *c = ctx;

	if (c->to_umem)
		memcpy(kaddr, c->buf, len);
	else
		memcpy(c->buf, kaddr, len);
	c->buf += len;
	return 0;
}

/*
 * One stay in the read-side section: run @fn on [*@va, @end), at most
 * ODP_STAY_PAGES pages of it, all or nothing. Every page of the stay is
 * looked up first, once, so an access that fails leaves its memory
 * untouched.
 * Return: 0 with *@va advanced past the stay, -ENOENT with *@missing at
 * the first page that must be faulted (nothing done), or @fn's error.
 */
static int odp_access_stay(struct odp_mirror_umem *umem, unsigned long *va,
			   unsigned long end, bool write,
			   odp_mirror_access_fn fn, void *ctx,
			   unsigned long *missing)
{
	unsigned long pfns[ODP_STAY_PAGES];
	unsigned long first = *va & PAGE_MASK, stay_end, addr;
	unsigned int i;
	size_t n;
	int ret = 0;

	stay_end = min(end, first + ODP_STAY_PAGES * PAGE_SIZE);
	odp_down_read(&umem->lock);
	for (i = 0, addr = first; addr < stay_end; i++, addr += PAGE_SIZE) {
		pfns[i] = odp_usable_pfn(umem, addr, write);
		if (!pfns[i]) {
			*missing = addr;
			ret = -ENOENT;
			goto out;
		}
	}
	for (addr = *va; fn && addr < stay_end; addr += n) {
		unsigned long pfn = pfns[(addr - first) >> PAGE_SHIFT];
		void *kaddr;

		if (write)
			odp_mark_dirty(pfn);
		kaddr = kmap_local_pfn(pfn);
		n = min(stay_end - addr, PAGE_SIZE - offset_in_page(addr));
		/* a direct call for the copy path (retpolines) */
		ret = INDIRECT_CALL_1(fn, odp_copy_chunk, ctx,
				      kaddr + offset_in_page(addr), n);
		kunmap_local(kaddr);
		if (ret)
			goto out;
	}
	*va = stay_end;
out:
	up_read(&umem->lock);
	return ret;
}

struct odp_access {
	bool			write;
	odp_mirror_access_fn	fn;
	void			*ctx;
};

/* odp_mirror_umem_access() on one explicit umem or child. */
static int odp_access_range(struct odp_mirror_umem *umem, unsigned long va,
			    unsigned long end, void *arg)
{
	struct odp_access *a = arg;
	unsigned long missing, npages;
	unsigned int lost = 0;
	int ret;

	while (va < end) {
		ret = odp_access_stay(umem, &va, end, a->write, a->fn, a->ctx,
				      &missing);
		if (!ret) {
			lost = 0;
			continue;
		}
		if (ret != -ENOENT)
			return ret;
		if (++lost > ODP_FAULT_RETRIES)
			return -EAGAIN;
		npages = min_t(unsigned long, ODP_FAULT_MAX_PAGES,
			       (PAGE_ALIGN(end) - missing) >> PAGE_SHIFT);
		ret = odp_fault_wait(umem, missing, npages,
				     odp_fault_flags(a->write), false);
		if (ret)
			/* a stalled fault goes on: retry later */
			return ret == -ETIME ? -EAGAIN : ret;
	}
	return 0;
}

/*
 * Check [@va, @va + @len) against @umem (odp_check_access()), then run
 * @fn on it: directly for an explicit umem, per child through
 * odp_implicit_walk() for an implicit one. An empty range does nothing.
 */
static int odp_walk(struct odp_mirror_umem *umem, u64 va, u64 len,
		    bool write, odp_range_fn fn, void *arg)
{
	u64 end;
	int ret;

	if (!len)
		return 0;
	ret = odp_check_access(umem, va, len, write, &end);
	if (ret)
		return ret;
	if (umem->implicit)
		return odp_implicit_walk(umem, va, end, fn, arg);
	return INDIRECT_CALL_1(fn, odp_access_range, umem, va, end, arg);
}

/**
 * odp_mirror_umem_access() - Run @fn on the pages of a user range.
 * @umem: the umem the range lies in
 * @va: first user virtual address
 * @len: length in bytes
 * @write: @fn writes; pages are faulted writable (breaking COW)
 * @fn: called for each chunk, in address order, never across a page
 * @ctx: passed to @fn
 *
 * Faults in what is missing (or read-only, for @write) first, outside any
 * lock, then calls @fn inside the umem's read-side critical section, so
 * no invalidation of a page completes while @fn uses it. Accesses from
 * several threads share the section. The range is done in stays of up
 * to 16 pages, each all or nothing: an access of that size that fails
 * has not called @fn at all (on an implicit umem, as long as it does not
 * cross a 1 GiB boundary, where its stays are cut).
 *
 * Dirty contract: with @write, every page handed to @fn is marked dirty
 * (its folio) before @fn runs, so the invalidation that drops its entry,
 * and reclaim or writeback behind it, always find the page dirty: data
 * that @fn writes is never discarded with a clean page. Without @write,
 * @fn must not write.
 *
 * Bounded wait: a fault of memory that a file system backs (or one that
 * would wait for a contended mmap lock) runs on odp_mirror's fault work,
 * and the caller waits ODP_FAULT_WAIT at most for it: a fault that the
 * backing stalls (a FUSE daemon that does not answer) goes on without it,
 * and this returns -EAGAIN; the retry waits for that fault again rather
 * than start another. So a driver's worker never waits without bound,
 * and the umem may be released meanwhile: the fault work holds its own
 * reference. Anonymous, shmem and hugetlbfs memory faults in the caller.
 *
 * Lifetime: the caller keeps @umem (and whatever @fn and @ctx use) alive
 * until this returns; odp_mirror_umem_release() must not run meanwhile.
 *
 * Context: process or kworker context; sleeps. The caller holds no
 * spinlock (take it inside @fn).
 * Return: 0; -EFAULT when the range leaves the umem or maps nothing,
 * PROT_NONE, VM_IO/VM_PFNMAP or memfd_secret memory, or the mm is gone;
 * -EPERM for @write to a read-only mapping or umem; -ENOMEM; -EINTR when
 * the calling task was killed while it waited; -EAGAIN when invalidations
 * kept taking the pages away, or a fault is stalled (retry later); or the
 * error @fn returned.
 */
int odp_mirror_umem_access(struct odp_mirror_umem *umem, u64 va, u64 len,
			   bool write, odp_mirror_access_fn fn, void *ctx)
{
	struct odp_access a = { .write = write, .fn = fn, .ctx = ctx };

	if (odp_inject_access_failure())
		return -EAGAIN;
	return odp_walk(umem, va, len, write, odp_access_range, &a);
}
EXPORT_SYMBOL_GPL(odp_mirror_umem_access);

struct odp_prefetch {
	unsigned long	flags;
	bool		(*keep_going)(void *ctx);
	void		*ctx;
};

/* odp_mirror_umem_prefetch() on one explicit umem or child. */
static int odp_prefetch_range(struct odp_mirror_umem *umem, unsigned long va,
			      unsigned long end, void *arg)
{
	struct odp_prefetch *p = arg;
	unsigned long addr, npages;
	int ret;

	for (addr = va & PAGE_MASK; addr < end; addr += npages << PAGE_SHIFT) {
		if (!p->keep_going(p->ctx))
			return 0;
		npages = min_t(unsigned long, ODP_FAULT_MAX_PAGES,
			       (PAGE_ALIGN(end) - addr) >> PAGE_SHIFT);
		do {
			ret = odp_fault_wait(umem, addr, npages, p->flags,
					     true);
		} while (ret == -ETIME && p->keep_going(p->ctx));
		if (ret)
			return ret == -ETIME ? 0 : ret;
	}
	return 0;
}

/**
 * odp_mirror_umem_prefetch() - Map a range ahead of any access (advise).
 * @umem: the umem the range lies in
 * @va: first user virtual address
 * @len: length in bytes
 * @write: fault writable (breaking COW)
 * @fault: fault missing pages in; if false, record only the pages that
 *         are present (IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT)
 * @keep_going: called between 2 MiB chunks, and every ODP_FAULT_WAIT
 *              while a fault stalls; the prefetch stops early, with 0,
 *              when it returns false (the MR is going away)
 * @ctx: passed to @keep_going
 *
 * Pages recorded count as page_prefetch, not as page faults.
 *
 * Context: process or kworker context; sleeps, through a stalled fault
 * for as long as @keep_going says so.
 * Return: 0, or as odp_mirror_umem_access() (-EFAULT, -EPERM, -ENOMEM,
 * -EAGAIN, -EINTR). A snapshot (!@fault) of unmapped memory is not an
 * error.
 */
int odp_mirror_umem_prefetch(struct odp_mirror_umem *umem, u64 va, u64 len,
			     bool write, bool fault,
			     bool (*keep_going)(void *ctx), void *ctx)
{
	struct odp_prefetch p = {
		.flags = fault ? odp_fault_flags(write) : 0,
		.keep_going = keep_going,
		.ctx = ctx,
	};
	int ret = odp_walk(umem, va, len, write, odp_prefetch_range, &p);

	trace_odp_mirror_prefetch(umem, va, len, write, fault, ret);
	return ret;
}
EXPORT_SYMBOL_GPL(odp_mirror_umem_prefetch);
ALLOW_ERROR_INJECTION(odp_mirror_umem_prefetch, ERRNO);

/**
 * odp_mirror_umem_prefault() - Fault a range in ahead of its accesses.
 * @umem: the umem the range lies in
 * @va: first user virtual address
 * @len: length in bytes; at most ODP_PREFAULT_MAX (8 MiB) is faulted
 * @write: fault writable (breaking COW)
 *
 * For a request that will touch [@va, @va + @len) packet by packet:
 * faulting it in large batches up front spares a fault per page later.
 * Best effort; the accesses themselves report errors.
 *
 * Context: as odp_mirror_umem_access().
 * Return: as odp_mirror_umem_access().
 */
int odp_mirror_umem_prefault(struct odp_mirror_umem *umem, u64 va, u64 len,
			     bool write)
{
	/* no @fn: fault and record, touch nothing, dirty nothing */
	struct odp_access a = { .write = write };

	return odp_walk(umem, va, min(len, ODP_PREFAULT_MAX), write,
			odp_access_range, &a);
}
EXPORT_SYMBOL_GPL(odp_mirror_umem_prefault);

/*
 * odp_copy_recorded() inlined into the copy path, which runs once a
 * packet: a call and its return cost dozens of instructions on Debian's
 * kernels with the CPU's mitigations on (return thunks).
 */
static __always_inline bool __odp_copy_recorded(struct odp_mirror_umem *umem,
						unsigned long va, void *buf,
						size_t len, bool to_umem)
{
	unsigned long pfn;
	void *kaddr;

	if (!down_read_trylock(&umem->lock))
		return false;
	pfn = odp_last_pfn(umem, va, to_umem);
	if (pfn) {
		kaddr = kmap_local_pfn(pfn) + offset_in_page(va);
		if (to_umem) {
			odp_mark_dirty(pfn);
			memcpy(kaddr, buf, len);
		} else {
			memcpy(buf, kaddr, len);
		}
		kunmap_local(kaddr);
	}
	up_read(&umem->lock);
	return pfn;
}

/**
 * odp_copy_recorded() - Copy within one recorded page, if its lock is free.
 * @umem: an explicit umem or a child
 * @va: first user virtual address; [@va, @va + @len) lies in one page of
 *      @umem
 * @buf: kernel buffer of @len bytes
 * @len: length in bytes
 * @to_umem: copy @buf into the page (else the other way)
 *
 * The per-page steps of odp_access_stay() and odp_copy_chunk(), the
 * folio marked dirty before a write among them, for one page.
 *
 * Context: as odp_mirror_umem_access(); does not sleep.
 * Return: true when copied; false when the page is not recorded (or not
 * writable, for @to_umem) or an invalidation holds @umem->lock.
 */
bool odp_copy_recorded(struct odp_mirror_umem *umem, unsigned long va,
		       void *buf, size_t len, bool to_umem)
{
	return __odp_copy_recorded(umem, va, buf, len, to_umem);
}

/*
 * The copy path's common case without the general walk: a copy that lies
 * in one recorded page, whose locks are free, with no failure armed (a
 * packet's payload, mostly). It does what odp_mirror_umem_access() would
 * do for it, in one function (and, on an implicit umem, the child's
 * lookup): rxe copies every packet's payload this way, and through the
 * general walk's seven layers ODP's code took 8 % of rxe's worker time,
 * against 4 % with this (perf/README.md).
 * Return: true when copied; false when the general path must run, which
 * then checks and reports whatever stopped this one.
 */
static __always_inline bool odp_copy_in_page(struct odp_mirror_umem *umem,
					     u64 va, void *buf, u64 len,
					     bool to_umem)
{
	u64 end;

	if (!len || len > PAGE_SIZE - offset_in_page(va) ||
	    odp_access_failure_armed() ||
	    odp_check_access(umem, va, len, to_umem, &end))
		return false;
	if (umem->implicit)
		return odp_implicit_copy_in_page(umem, va, buf, len, to_umem);
	return __odp_copy_recorded(umem, va, buf, len, to_umem);
}

/*
 * odp_mirror_umem_copy() through the general walk, out of line: the
 * common case's code stays free of what only the walk needs.
 */
static noinline int odp_copy_walk(struct odp_mirror_umem *umem, u64 va,
				  void *buf, u64 len, bool to_umem)
{
	struct odp_copy c = { .buf = buf, .to_umem = to_umem };

	return odp_mirror_umem_access(umem, va, len, to_umem, odp_copy_chunk,
				      &c);
}

/**
 * odp_mirror_umem_copy() - Copy between a kernel buffer and a user range.
 * @umem: the umem the range lies in
 * @va: first user virtual address
 * @buf: kernel buffer of @len bytes
 * @len: length in bytes
 * @to_umem: copy @buf into the user range (else the other way)
 *
 * Context: as odp_mirror_umem_access().
 * Return: as odp_mirror_umem_access().
 */
int odp_mirror_umem_copy(struct odp_mirror_umem *umem, u64 va, void *buf,
			 u64 len, bool to_umem)
{
	if (odp_copy_in_page(umem, va, buf, len, to_umem))
		return 0;
	return odp_copy_walk(umem, va, buf, len, to_umem);
}
EXPORT_SYMBOL_GPL(odp_mirror_umem_copy);

/* The lock class of every umem's @lock, shared with the priming below. */
static struct lock_class_key odp_umem_lock_key;

static void odp_umem_lock_init(struct rw_semaphore *sem)
{
	__init_rwsem(sem, "&umem->lock", &odp_umem_lock_key);
}

/**
 * odp_umem_lockdep_prime() - Tell lockdep that reclaim takes a umem's lock.
 *
 * The invalidate callback takes &odp_mirror_umem.lock for writing, and
 * reclaim runs invalidations: an allocation that may reclaim while that
 * lock is held can deadlock. Lockdep learns of the reclaim side only when
 * reclaim happens to invalidate a umem; record it at load time instead
 * (as the kernel primes its own mmu_notifier map), so that such an
 * allocation is reported the first time it runs.
 *
 * Context: process context (module init).
 */
void odp_umem_lockdep_prime(void)
{
	struct rw_semaphore sem;

	if (!IS_ENABLED(CONFIG_LOCKDEP))
		return;
	odp_umem_lock_init(&sem);
	fs_reclaim_acquire(GFP_KERNEL);
	down_write(&sem);
	up_write(&sem);
	fs_reclaim_release(GFP_KERNEL);
}

/**
 * odp_umem_init() - Fill in a umem over [@start, @end) of @mm.
 * @umem: zeroed memory for it
 * @mm: the mm it mirrors, grabbed here until the last odp_umem_put()
 * @start: first user address, page-aligned
 * @end: end of the range, page-aligned, at most TASK_SIZE
 * @writable: accesses may write
 * @totals: the driver's device-wide counters to add to, or NULL
 *
 * The caller sets @umem->per_mm, @umem->memcg and, for a child,
 * @umem->parent and @umem->stats.
 */
void odp_umem_init(struct odp_mirror_umem *umem, struct mm_struct *mm,
		   unsigned long start, unsigned long end, bool writable,
		   const struct odp_mirror_counters *totals)
{
	kref_init(&umem->ref);
	mmgrab(mm);
	umem->mm = mm;
	spin_lock_init(&umem->stalled_lock);
	umem->start = start;
	umem->end = end;
	umem->writable = writable;
	umem->stats = &umem->own_stats;
	if (totals)
		umem->totals = *totals;
	odp_umem_lock_init(&umem->lock);
	/*
	 * XA_FLAGS_ACCOUNT: the xarray's own allocations (GFP_NOWAIT under
	 * its lock, before it falls back to the gfp it was given) are
	 * charged too, to the memcg active at the time (odp_fault()).
	 */
	xa_init_flags(&umem->pfns, XA_FLAGS_ACCOUNT);
	xa_init_flags(&umem->huge, XA_FLAGS_ACCOUNT);
}

/**
 * odp_umem_insert() - Start mirroring: insert the interval notifier.
 * @umem: an explicit umem or a child, with its per_mm set
 *
 * Context: process or kworker context holding a reference on the mm's
 * users, and not its mmap lock (the mm's first interval notifier takes
 * it for writing).
 * Return: 0 or -ENOMEM.
 */
int odp_umem_insert(struct odp_mirror_umem *umem)
{
	return mmu_interval_notifier_insert(&umem->notifier,
					    umem->per_mm->mn.mm, umem->start,
					    umem->end - umem->start,
					    &odp_umem_ops);
}
ALLOW_ERROR_INJECTION(odp_umem_insert, ERRNO);

/**
 * odp_umem_remove() - Stop mirroring and empty the tables.
 * @umem: an explicit umem or a child that odp_umem_insert() inserted
 *
 * The strong unregister fence: mmu_interval_notifier_remove() returns
 * only when no invalidate callback runs for @umem and none will. A fault
 * work that still runs on @umem records nothing from here on (@dead);
 * the one kept as stalled is let go. The caller then drops its
 * reference (odp_umem_put()).
 *
 * Context: process or kworker context, not from a notifier callback.
 */
void odp_umem_remove(struct odp_mirror_umem *umem)
{
	mmu_interval_notifier_remove(&umem->notifier);
	down_write(&umem->lock);
	umem->dead = true;
	/* nr_entries counts the entries of both tables */
	atomic_long_sub(umem->nr_entries, &odp_live_entries);
	umem->nr_entries = 0;
	xa_destroy(&umem->pfns);
	xa_destroy(&umem->huge);
	odp_entries_changed(umem);
	up_write(&umem->lock);
	odp_fault_drop_stalled(umem);
}

static void odp_umem_free(struct kref *ref)
{
	struct odp_mirror_umem *umem =
		container_of(ref, struct odp_mirror_umem, ref);

	/* no entry is left; slots a late fault work reserved may be */
	xa_destroy(&umem->pfns);
	xa_destroy(&umem->huge);
	if (!umem->parent)
		odp_per_mm_put(umem->per_mm);
	mem_cgroup_put(umem->memcg);
	mmdrop(umem->mm);
	atomic_long_dec(umem->parent ? &odp_live_children : &odp_live_umems);
	kfree(umem);
}

/**
 * odp_umem_put() - Drop a reference on a umem; the last frees it.
 * @umem: the umem, stopped (odp_umem_remove()) before its owner's put
 *
 * The owner's per-mm state is put with the umem, so it outlives every
 * fault work on the umem too.
 *
 * Context: process or kworker context.
 */
void odp_umem_put(struct odp_mirror_umem *umem)
{
	kref_put(&umem->ref, odp_umem_free);
}

/**
 * odp_mirror_umem_get() - Mirror [@addr, @addr + @length) of current's mm.
 * @addr: first user virtual address
 * @length: length in bytes, not zero
 * @writable: accesses may write (the MR has a writable access flag)
 * @totals: the driver's device-wide counters to add to, or NULL
 *
 * Pins nothing and allocates nothing proportional to @length.
 *
 * Context: process context of the registering task; sleeps.
 * Return: the umem, or ERR_PTR(-EINVAL) for an empty range or a kernel
 * thread, -EFAULT for a range past the user address space, -EOVERFLOW
 * when it wraps, or -ENOMEM.
 */
struct odp_mirror_umem *
odp_mirror_umem_get(u64 addr, u64 length, bool writable,
		    const struct odp_mirror_counters *totals)
{
	struct mm_struct *mm = current->mm;
	struct odp_mirror_umem *umem;
	u64 end;
	int ret;

	if (!mm || !length)
		return ERR_PTR(-EINVAL);
	if (check_add_overflow(addr, length, &end))
		return ERR_PTR(-EOVERFLOW);
	if (end > TASK_SIZE)
		return ERR_PTR(-EFAULT);

	umem = kzalloc(sizeof(*umem), GFP_KERNEL_ACCOUNT);
	if (!umem)
		return ERR_PTR(-ENOMEM);
	odp_umem_init(umem, mm, ALIGN_DOWN(addr, PAGE_SIZE), PAGE_ALIGN(end),
		      writable, totals);
	umem->per_mm = odp_per_mm_get(mm);
	if (IS_ERR(umem->per_mm)) {
		ret = PTR_ERR(umem->per_mm);
		goto err_free;
	}
	ret = odp_umem_insert(umem);
	if (ret)
		goto err_put_per_mm;
	umem->memcg = get_mem_cgroup_from_mm(mm);
	atomic_long_inc(&odp_live_umems);
	return umem;

err_put_per_mm:
	odp_per_mm_put(umem->per_mm);
err_free:
	mmdrop(mm);
	kfree(umem);
	return ERR_PTR(ret);
}
EXPORT_SYMBOL_GPL(odp_mirror_umem_get);
ALLOW_ERROR_INJECTION(odp_mirror_umem_get, ERRNO);

/**
 * odp_mirror_umem_release() - Stop mirroring and let a umem go.
 * @umem: the umem (explicit or implicit), which no access may use any
 *        more
 *
 * The strong unregister fence: this returns only when no invalidate
 * callback runs for @umem (or any child of it) and none will, and no
 * driver counter is touched for it any more. Its memory is freed now, or
 * when the last fault work that still runs on it (stalled by the memory's
 * backing) ends; the per-mm state is put then, and freed by the
 * mmu_notifier core after an SRCU grace period.
 *
 * Context: process or kworker context, not from a notifier callback.
 */
void odp_mirror_umem_release(struct odp_mirror_umem *umem)
{
	if (umem->implicit)
		odp_implicit_release(umem);
	else
		odp_umem_remove(umem);
	odp_umem_put(umem);
}
EXPORT_SYMBOL_GPL(odp_mirror_umem_release);

/**
 * odp_mirror_umem_page_faults() - Pages faulted in through a umem.
 * @umem: the umem
 *
 * Return: the count since registration.
 */
u64 odp_mirror_umem_page_faults(const struct odp_mirror_umem *umem)
{
	return atomic64_read(&umem->stats->page_faults);
}
EXPORT_SYMBOL_GPL(odp_mirror_umem_page_faults);

/**
 * odp_mirror_umem_page_prefetch() - Pages mapped by prefetch advice.
 * @umem: the umem
 *
 * Return: the count since registration.
 */
u64 odp_mirror_umem_page_prefetch(const struct odp_mirror_umem *umem)
{
	return atomic64_read(&umem->stats->page_prefetch);
}
EXPORT_SYMBOL_GPL(odp_mirror_umem_page_prefetch);

/**
 * odp_mirror_umem_page_invalidations() - Pages dropped by invalidations.
 * @umem: the umem
 *
 * Return: the count since registration.
 */
u64 odp_mirror_umem_page_invalidations(const struct odp_mirror_umem *umem)
{
	return atomic64_read(&umem->stats->page_invalidations);
}
EXPORT_SYMBOL_GPL(odp_mirror_umem_page_invalidations);

/**
 * odp_mirror_umem_fault_retries() - Fault snapshots begun again.
 * @umem: the umem
 *
 * A fault snapshots the umem's pages and records them only if no
 * invalidation of the umem ran meanwhile; else it begins again. This
 * counts those retries, of faults and prefetches alike.
 *
 * Return: the count since registration.
 */
u64 odp_mirror_umem_fault_retries(const struct odp_mirror_umem *umem)
{
	return atomic64_read(&umem->stats->fault_retries);
}
EXPORT_SYMBOL_GPL(odp_mirror_umem_fault_retries);
