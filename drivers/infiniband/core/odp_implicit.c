// SPDX-License-Identifier: GPL-2.0
/*
 * Implicit ODP umems: one umem over the whole user address space of a
 * process. It has no interval notifier and no table of its own; accesses
 * reach memory through children, umems over aligned ODP_CHILD_SIZE slots
 * that are created as accesses touch the slots and reclaimed once they
 * hold no page, so that kernel memory follows what is resident, not what
 * is mapped.
 *
 * - An access or a prefetch holds children_lock for reading for as long
 *   as it uses a child (it may fault and sleep). It creates a missing
 *   child with mmget_not_zero() held and no mmap lock (inserting an
 *   interval notifier may take it), and installs it with xa_cmpxchg();
 *   the loser of a race removes its own.
 * - A child becomes a candidate for reclaim when it holds no entry:
 *   when an invalidation drops its last one, or when an access leaves it
 *   empty (it faulted unmapped memory). It is marked in the xarray and
 *   the reclaim work is queued.
 * - The reclaim work takes children_lock for writing, so no access uses
 *   a child and none can be filled; it takes the marked children that
 *   are still empty, and keep no stalled fault (odp_fault_work.c), out
 *   of the xarray and removes them (the strong fence) after dropping the
 *   lock. A fault work still running on a removed child holds its own
 *   reference; the child is freed when that ends.
 *
 * Why "no entry" is the rule: that is when a child's translation memory
 * is gone and only its fixed size is left; a child that still has pages
 * is used by accesses, and reclaiming it would drop them. Reclaiming an
 * empty slot costs one notifier insert on its next access.
 */
#include <linux/error-injection.h>
#include <linux/memcontrol.h>
#include <linux/mmu_notifier.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/workqueue.h>
#include <rdma/odp_mirror.h>

#include "odp_mirror_internal.h"
#include "odp_trace.h"

/* Marks a child in odp_implicit.children that may hold no entry. */
#define ODP_CHILD_MAYBE_EMPTY	XA_MARK_0

atomic_long_t odp_live_children;

/* Runs the reclaim work of every implicit umem. */
static struct workqueue_struct *odp_reclaim_wq;

struct odp_implicit {
	/*
	 * Read by accesses and prefetches while they use a child (they
	 * sleep in faults; the in-page copy only tries it, and does not
	 * sleep); written by the reclaim work and by release, only to take
	 * children out of @children.
	 */
	struct rw_semaphore	children_lock;
	/*
	 * The children, index slot (va >> ODP_CHILD_SHIFT). Filled under
	 * @children_lock held for reading (xa_cmpxchg()), emptied under it
	 * held for writing. ODP_CHILD_MAYBE_EMPTY is set by invalidations
	 * too, with no lock but the xarray's.
	 */
	struct xarray		children;
	/*
	 * The child the last in-page copy used, or NULL: stored by copies
	 * under @children_lock held for reading, set to NULL under it held
	 * for writing when a child leaves @children, so a child read here
	 * under the lock is in @children.
	 */
	struct odp_mirror_umem	*last_child;
	struct work_struct	reclaim_work;
};

static bool odp_child_empty(struct odp_mirror_umem *child)
{
	bool empty;

	odp_down_read(&child->lock);
	empty = !child->nr_entries;
	up_read(&child->lock);
	return empty;
}

static void odp_child_destroy(struct odp_mirror_umem *child)
{
	trace_odp_mirror_child_reclaim(child->parent, child->start,
				       child->end);
	odp_umem_remove(child);
	odp_umem_put(child);
}

/*
 * Take children out of @imp and destroy them: all of them, or the
 * marked ones that hold no entry.
 */
static void odp_children_reap(struct odp_implicit *imp, bool all)
{
	struct odp_mirror_umem *child, *next;
	unsigned long slot;
	LIST_HEAD(dead);

	down_write(&imp->children_lock);
	xa_for_each_marked(&imp->children, slot, child,
			   all ? XA_PRESENT : ODP_CHILD_MAYBE_EMPTY) {
		xa_clear_mark(&imp->children, slot, ODP_CHILD_MAYBE_EMPTY);
		/*
		 * No access runs: an empty child stays empty. One whose
		 * fault stalls stays too: the retry of its access waits
		 * for that fault instead of starting another on a new child.
		 */
		if (!all && (!odp_child_empty(child) ||
			     READ_ONCE(child->stalled)))
			continue;
		xa_erase(&imp->children, slot);
		list_add(&child->dead_link, &dead);
		WRITE_ONCE(imp->last_child, NULL);
	}
	up_write(&imp->children_lock);

	list_for_each_entry_safe(child, next, &dead, dead_link)
		odp_child_destroy(child);
}

static void odp_implicit_reclaim(struct work_struct *work)
{
	odp_children_reap(container_of(work, struct odp_implicit,
				       reclaim_work), false);
}

/**
 * odp_implicit_child_emptied() - A child may hold no entry: reclaim it.
 * @child: the child
 *
 * Context: any process context, notifier callbacks included (it does
 * not sleep).
 */
void odp_implicit_child_emptied(struct odp_mirror_umem *child)
{
	struct odp_implicit *imp = child->parent->implicit;

	xa_set_mark(&imp->children, child->start >> ODP_CHILD_SHIFT,
		    ODP_CHILD_MAYBE_EMPTY);
	queue_work(odp_reclaim_wq, &imp->reclaim_work);
}

/* The child that covers @va, created if there is none. */
static struct odp_mirror_umem *odp_child_get(struct odp_mirror_umem *umem,
					     unsigned long va)
{
	struct odp_implicit *imp = umem->implicit;
	struct mm_struct *mm = umem->per_mm->mn.mm;
	unsigned long slot = va >> ODP_CHILD_SHIFT;
	unsigned long start = slot << ODP_CHILD_SHIFT;
	struct odp_mirror_umem *child, *old;
	struct mem_cgroup *old_memcg;
	int ret;

	lockdep_assert_held_read(&imp->children_lock);
	child = xa_load(&imp->children, slot);
	if (child)
		return child;

	/* charged to the owner, also from a driver's worker */
	old_memcg = set_active_memcg(umem->memcg);
	child = kzalloc(sizeof(*child), GFP_KERNEL_ACCOUNT);
	set_active_memcg(old_memcg);
	if (!child)
		return ERR_PTR(-ENOMEM);
	/* umem->end <= TASK_SIZE, so start + ODP_CHILD_SIZE does not wrap */
	odp_umem_init(child, mm, start,
		      min(start + ODP_CHILD_SIZE, umem->end), umem->writable,
		      &umem->totals);
	child->per_mm = umem->per_mm;
	child->stats = umem->stats;
	child->memcg = umem->memcg;
	/* its own: a fault work may outlive the parent */
	if (child->memcg)
		css_get(&child->memcg->css);
	child->parent = umem;
	atomic_long_inc(&odp_live_children);
	if (!mmget_not_zero(mm)) {
		ret = -EFAULT;
		goto err_put;
	}
	ret = odp_umem_insert(child);
	/* The last reference may be ours; exit_mmap must not run here. */
	mmput_async(mm);
	if (ret)
		goto err_put;

	old_memcg = set_active_memcg(umem->memcg);
	old = xa_cmpxchg(&imp->children, slot, NULL, child,
			 GFP_KERNEL_ACCOUNT);
	set_active_memcg(old_memcg);
	if (old) {
		/* another access installed one first, or no memory */
		odp_umem_remove(child);
		odp_umem_put(child);
		return xa_is_err(old) ? ERR_PTR(xa_err(old)) : old;
	}
	trace_odp_mirror_child_create(umem, child->start, child->end);
	return child;

err_put:
	odp_umem_put(child);
	return ERR_PTR(ret);
}

/**
 * odp_implicit_walk() - Run @fn on [@va, @end) of an implicit umem.
 * @umem: the implicit umem
 * @va: first user virtual address
 * @end: end of the range, checked to lie in the user address space
 * @fn: called once per child the range touches, with the child's part
 * @arg: passed to @fn
 *
 * Creates the children the range needs, and hands the ones @fn left
 * empty to the reclaim work.
 *
 * Context: process or kworker context, no mmap lock held; sleeps.
 * Return: 0, the first error of @fn, -EFAULT when the process is gone,
 * or -ENOMEM.
 */
int odp_implicit_walk(struct odp_mirror_umem *umem, unsigned long va,
		      unsigned long end, odp_range_fn fn, void *arg)
{
	struct odp_implicit *imp = umem->implicit;
	struct odp_mirror_umem *child;
	int ret = 0;

	odp_down_read(&imp->children_lock);
	while (va < end) {
		unsigned long part_end;

		child = odp_child_get(umem, va);
		if (IS_ERR(child)) {
			ret = PTR_ERR(child);
			break;
		}
		part_end = min(end, child->end);
		ret = fn(child, va, part_end, arg);
		if (odp_child_empty(child))
			odp_implicit_child_emptied(child);
		if (ret)
			break;
		va = part_end;
	}
	up_read(&imp->children_lock);
	return ret;
}
ALLOW_ERROR_INJECTION(odp_implicit_walk, ERRNO);

/**
 * odp_implicit_copy_in_page() - odp_copy_recorded() in an implicit umem.
 * @umem: the implicit umem
 * @va: first user virtual address, checked to lie in @umem; [@va, @va +
 *      @len) lies in one page
 * @buf: kernel buffer of @len bytes
 * @len: length in bytes
 * @to_umem: copy @buf into the page (else the other way)
 *
 * The copy path's common case on an implicit umem: the child that covers
 * the page is there (the last one used, mostly), and the page is
 * recorded in it. No child is created and none is left empty (a child
 * whose page is recorded holds an entry), so nothing is handed to the
 * reclaim work.
 *
 * Context: as odp_mirror_umem_access(); does not sleep.
 * Return: true when copied; false when there is no such child or page, or
 * a lock is taken: then odp_implicit_walk() must do it.
 */
bool odp_implicit_copy_in_page(struct odp_mirror_umem *umem, unsigned long va,
			       void *buf, size_t len, bool to_umem)
{
	struct odp_implicit *imp = umem->implicit;
	struct odp_mirror_umem *child;
	bool copied = false;

	if (!down_read_trylock(&imp->children_lock))
		return false;
	child = READ_ONCE(imp->last_child);
	if (!child || va < child->start || va >= child->end) {
		child = xa_load(&imp->children, va >> ODP_CHILD_SHIFT);
		if (child)
			WRITE_ONCE(imp->last_child, child);
	}
	if (child)
		copied = odp_copy_recorded(child, va, buf, len, to_umem);
	up_read(&imp->children_lock);
	return copied;
}

/**
 * odp_implicit_release() - Destroy an implicit umem's children.
 * @umem: the implicit umem, which no access uses any more
 *
 * Every child is removed (the strong fence for its callbacks) before the
 * reclaim work is cancelled, so no callback can queue it again.
 *
 * Context: process or kworker context, not from a notifier callback.
 */
void odp_implicit_release(struct odp_mirror_umem *umem)
{
	struct odp_implicit *imp = umem->implicit;

	odp_children_reap(imp, true);
	cancel_work_sync(&imp->reclaim_work);
	xa_destroy(&imp->children);
	kfree(imp);
}

/**
 * odp_mirror_umem_get_implicit() - Mirror all of current's address space.
 * @writable: accesses may write (the MR has a writable access flag)
 * @totals: the driver's device-wide counters to add to, or NULL
 *
 * For implicit ODP MRs: any address the process maps is reachable with
 * the CPU's permissions (and @writable), any other fails with -EFAULT.
 * Nothing is allocated until accesses touch memory.
 *
 * Context: process context of the registering task; takes its mmap lock
 * for writing; sleeps.
 * Return: the umem, or ERR_PTR(-EINVAL) for a kernel thread, or -ENOMEM.
 */
struct odp_mirror_umem *
odp_mirror_umem_get_implicit(bool writable,
			     const struct odp_mirror_counters *totals)
{
	struct mm_struct *mm = current->mm;
	struct odp_mirror_umem *umem;
	struct odp_implicit *imp;
	int ret;

	if (!mm)
		return ERR_PTR(-EINVAL);
	umem = kzalloc(sizeof(*umem), GFP_KERNEL_ACCOUNT);
	imp = kzalloc(sizeof(*imp), GFP_KERNEL_ACCOUNT);
	if (!umem || !imp) {
		ret = -ENOMEM;
		goto err_free;
	}
	odp_umem_init(umem, mm, 0, TASK_SIZE, writable, totals);
	init_rwsem(&imp->children_lock);
	xa_init_flags(&imp->children, XA_FLAGS_ACCOUNT);
	INIT_WORK(&imp->reclaim_work, odp_implicit_reclaim);
	umem->implicit = imp;

	/*
	 * Children are inserted from the driver's workers. Set the mm's
	 * interval tree up here, in the registering task, so that no insert
	 * needs the mmap lock for writing.
	 */
	ret = mmu_notifier_register(NULL, mm);
	if (ret)
		goto err_drop;
	umem->per_mm = odp_per_mm_get(mm);
	if (IS_ERR(umem->per_mm)) {
		ret = PTR_ERR(umem->per_mm);
		goto err_drop;
	}
	umem->memcg = get_mem_cgroup_from_mm(mm);
	atomic_long_inc(&odp_live_umems);
	return umem;

err_drop:
	mmdrop(mm);
err_free:
	kfree(imp);
	kfree(umem);
	return ERR_PTR(ret);
}
EXPORT_SYMBOL_GPL(odp_mirror_umem_get_implicit);
ALLOW_ERROR_INJECTION(odp_mirror_umem_get_implicit, ERRNO);

/**
 * odp_implicit_flush() - Wait for the child reclaims queued so far.
 *
 * For the live counts in debugfs: after an munmap, they read what is
 * left once its emptied children are gone.
 */
void odp_implicit_flush(void)
{
	flush_workqueue(odp_reclaim_wq);
}

/**
 * odp_implicit_init() - Set up implicit umems at module load.
 *
 * Return: 0 or -ENOMEM.
 */
int odp_implicit_init(void)
{
	odp_reclaim_wq = alloc_workqueue("odp_mirror_reclaim", WQ_UNBOUND, 0);
	return odp_reclaim_wq ? 0 : -ENOMEM;
}

/**
 * odp_implicit_exit() - Tear implicit umems down at module unload.
 *
 * Every implicit umem has been released, and its reclaim work cancelled.
 */
void odp_implicit_exit(void)
{
	destroy_workqueue(odp_reclaim_wq);
}
