// SPDX-License-Identifier: GPL-2.0
/*
 * Faults of odp_mirror that may wait on a file system run on a work item,
 * not in the caller: such a fault waits as long as the memory's backing
 * wants (a FUSE daemon that does not answer, a hard NFS mount), and a
 * driver's worker must not wait with it, or its teardown waits too: rxe's
 * deregistration gives up waiting for an MR's users after 50 s and frees
 * the MR under them. Faults of anonymous, shmem (tmpfs, memfd) and
 * hugetlbfs memory end on their own (zeroing, swap-in; userfaultfd fails
 * them at once, since the mirror's faults may not be retried): they run
 * in the caller, without the work's round trip, as long as the mmap lock
 * is free (a reader stalled in a file system's fault, with a writer
 * queued behind it, would hold the caller too).
 *
 * - The caller queues a fault work, which holds a reference on the umem
 *   (and the umem one on its mm and memory cgroup), and waits
 *   ODP_FAULT_WAIT at most. The work ends on its own whenever the fault
 *   returns; a umem released meanwhile is freed by its last put.
 * - A waiter that gives up keeps its work in the umem as @stalled (one a
 *   umem). Every later fault on that umem waits for it first, again at
 *   most ODP_FAULT_WAIT, instead of starting another that would stall on
 *   the same backing: a stall costs one work per umem, not one per retry.
 *   A fault of another range of the same mm would mostly wait anyway: the
 *   stalled fault holds the mmap lock for reading, and the first writer
 *   that queues for it blocks every reader behind it.
 * - The waiter counts the pages the fault recorded, into the umem's and
 *   the driver's counters (the work itself never touches them: the driver
 *   may be gone by the time it ends); so does whoever collects a stalled
 *   work that has finished.
 */
#include <linux/completion.h>
#include <linux/error-injection.h>
#include <linux/refcount.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/workqueue.h>

#include "odp_mirror_internal.h"

/* Runs every fault work; unbound: a stalled work holds no CPU's pool. */
static struct workqueue_struct *odp_fault_wq;

struct odp_fault_work {
	struct work_struct	work;
	/* completed when the fault has returned and @ret is set */
	struct completion	done;
	/* the work's own, its waiter's, and the umem's while @stalled */
	refcount_t		ref;
	/* referenced until the work ends */
	struct odp_mirror_umem	*umem;
	unsigned long		va;
	unsigned long		npages;
	unsigned long		flags;
	/* counts as page_prefetch rather than as page faults */
	bool			prefetch;
	int			ret;
	struct odp_fault_result	res;
};

static void odp_fault_work_put(struct odp_fault_work *w)
{
	if (refcount_dec_and_test(&w->ref))
		kfree(w);
}

static void odp_fault_work_fn(struct work_struct *work)
{
	struct odp_fault_work *w =
		container_of(work, struct odp_fault_work, work);
	struct odp_mirror_umem *umem = w->umem;

	w->ret = odp_fault(umem, w->va, w->npages, w->flags, false,
			   &w->res);
	complete_all(&w->done);
	/* may be the last reference: the umem was released meanwhile */
	odp_umem_put(umem);
	odp_fault_work_put(w);
}

/*
 * Count a fault's retried snapshots on @umem, and the pages it recorded if
 * it succeeded.
 */
static void odp_fault_count(struct odp_mirror_umem *umem, bool prefetch,
			    int ret, const struct odp_fault_result *res)
{
	if (res->retries)
		odp_count(&umem->stats->fault_retries,
			  umem->totals.fault_retries, res->retries);
	if (ret || res->recorded <= 0)
		return;
	if (prefetch)
		odp_count(&umem->stats->page_prefetch, NULL, res->recorded);
	else
		odp_count(&umem->stats->page_faults, umem->totals.page_faults,
			  res->recorded);
}

/*
 * Wait ODP_FAULT_WAIT at most for @w. Return: 0 when it finished, -ETIME
 * when it did not, -EINTR when the waiting task was killed.
 */
static int odp_fault_await(struct odp_fault_work *w)
{
	long left = wait_for_completion_killable_timeout(&w->done,
							 ODP_FAULT_WAIT);

	if (left > 0)
		return 0;
	return left ? -EINTR : -ETIME;
}

/*
 * Before a new fault on @umem: wait for its stalled one, if it has one;
 * when that has finished, take it out and count its pages. Return: 0,
 * -ETIME (still stalled) or -EINTR.
 */
static int odp_fault_await_stalled(struct odp_mirror_umem *umem)
{
	struct odp_fault_work *w;
	bool taken = false;
	int ret;

	spin_lock(&umem->stalled_lock);
	w = umem->stalled;
	if (w)
		refcount_inc(&w->ref);
	spin_unlock(&umem->stalled_lock);
	if (!w)
		return 0;

	ret = odp_fault_await(w);
	if (!ret) {
		spin_lock(&umem->stalled_lock);
		if (umem->stalled == w) {
			umem->stalled = NULL;
			taken = true;
		}
		spin_unlock(&umem->stalled_lock);
	}
	if (taken) {
		odp_fault_count(umem, w->prefetch, w->ret, &w->res);
		odp_fault_work_put(w);
	}
	odp_fault_work_put(w);
	return ret;
}

/**
 * odp_fault_wait() - Run odp_fault(), on the fault work if it may stall.
 * @umem: an explicit umem or a child, kept alive by the caller until this
 *        returns
 * @va: first user address, page-aligned, inside @umem
 * @npages: pages of the request, inside @umem
 * @flags: as odp_fault()
 * @prefetch: count the pages as page_prefetch (else as page faults)
 *
 * The fault runs here when it can (odp_fault() with @in_caller); memory
 * that a file system backs, or a contended mmap lock, sends it to the
 * fault work, which is waited for ODP_FAULT_WAIT at most. Either way, the
 * fault of @umem that stalled before, if there is one, is waited for
 * first.
 *
 * Context: process or kworker context, no odp_mirror lock held (a
 * child's caller holds its parent's children_lock for reading); sleeps,
 * on the work ODP_FAULT_WAIT at most (twice when @umem has a stalled
 * fault).
 * Return: as odp_fault(), -ENOMEM, -EINTR when the calling task was
 * killed while it waited, or -ETIME when the fault (or the stalled one
 * before it) has not finished yet: it goes on, and a later call waits
 * for it again.
 */
int odp_fault_wait(struct odp_mirror_umem *umem, unsigned long va,
		   unsigned long npages, unsigned long flags, bool prefetch)
{
	struct odp_fault_work *w;
	struct odp_fault_result res;
	int ret;

	/* Racy on purpose: it only saves work, mmget_not_zero() decides. */
	if (READ_ONCE(umem->per_mm->dying))
		return -EFAULT;
	ret = odp_fault_await_stalled(umem);
	if (ret)
		return ret;
	ret = odp_fault(umem, va, npages, flags, true, &res);
	if (ret != -EWOULDBLOCK) {
		odp_fault_count(umem, prefetch, ret, &res);
		return ret;
	}

	w = kzalloc(sizeof(*w), GFP_KERNEL);
	if (!w)
		return -ENOMEM;
	INIT_WORK(&w->work, odp_fault_work_fn);
	init_completion(&w->done);
	refcount_set(&w->ref, 2);
	kref_get(&umem->ref);
	w->umem = umem;
	w->va = va;
	w->npages = npages;
	w->flags = flags;
	w->prefetch = prefetch;
	queue_work(odp_fault_wq, &w->work);

	ret = odp_fault_await(w);
	if (!ret) {
		odp_fault_count(umem, prefetch, w->ret, &w->res);
		ret = w->ret;
	} else {
		/* keep it for the next fault, unless another waiter did */
		spin_lock(&umem->stalled_lock);
		if (!umem->stalled) {
			umem->stalled = w;
			w = NULL;
		}
		spin_unlock(&umem->stalled_lock);
	}
	if (w)
		odp_fault_work_put(w);
	return ret;
}
ALLOW_ERROR_INJECTION(odp_fault_wait, ERRNO);

/**
 * odp_fault_drop_stalled() - Let a stopped umem's stalled fault go.
 * @umem: the umem, stopped (no fault can be started on it any more)
 *
 * The work ends on its own, and drops its reference on @umem then.
 */
void odp_fault_drop_stalled(struct odp_mirror_umem *umem)
{
	struct odp_fault_work *w;

	spin_lock(&umem->stalled_lock);
	w = umem->stalled;
	umem->stalled = NULL;
	spin_unlock(&umem->stalled_lock);
	if (w)
		odp_fault_work_put(w);
}

/**
 * odp_fault_flush() - Wait for the fault works queued so far to end.
 *
 * For the live counts in debugfs: a umem released while its fault
 * stalled is freed when that fault ends. Waits as long as they do.
 */
void odp_fault_flush(void)
{
	flush_workqueue(odp_fault_wq);
}

/**
 * odp_fault_init() - Set up the fault works at module load.
 *
 * Return: 0 or -ENOMEM.
 */
int odp_fault_init(void)
{
	odp_fault_wq = alloc_workqueue("odp_mirror_fault", WQ_UNBOUND, 0);
	return odp_fault_wq ? 0 : -ENOMEM;
}

/**
 * odp_fault_exit() - Wait for every fault work, at module unload.
 */
void odp_fault_exit(void)
{
	destroy_workqueue(odp_fault_wq);
}
