// SPDX-License-Identifier: GPL-2.0
/*
 * On-demand paging MRs of rxe, on the odp_mirror layer: nothing is
 * pinned; each access translates the MR iova to the registered user
 * address and lets odp_mirror fault the pages in and copy inside its
 * critical section.
 */
#include <linux/error-injection.h>
#include <rdma/odp_mirror.h>
#include <rdma/odp_mirror_range.h>
#include <rdma/rdma_netlink.h>
#include <rdma/restrack.h>

#include "rxe.h"
#include "rxe_loc.h"

/*
 * ODP cap bits 6.12's ib_verbs.h lacks; the values of rdma-core's
 * IBV_ODP_SUPPORT_FLUSH and IBV_ODP_SUPPORT_ATOMIC_WRITE (and of later
 * kernels' IB_ODP_SUPPORT_FLUSH and IB_ODP_SUPPORT_ATOMIC_WRITE).
 */
#define RXE_ODP_SUPPORT_FLUSH		BIT(6)
#define RXE_ODP_SUPPORT_ATOMIC_WRITE	BIT(7)

/**
 * rxe_odp_init_caps() - Advertise what ODP MRs support.
 * @rxe: the device
 *
 * Only what works and is tested: RC SEND/RECV/WRITE/READ/ATOMIC, SRQ
 * receives, FLUSH and ATOMIC_WRITE; UD SEND/RECV; implicit ODP MRs.
 */
void rxe_odp_init_caps(struct rxe_dev *rxe)
{
	struct ib_odp_caps *caps = &rxe->attr.odp_caps;

	rxe->attr.kernel_cap_flags |= IBK_ON_DEMAND_PAGING;
	caps->general_caps = IB_ODP_SUPPORT | IB_ODP_SUPPORT_IMPLICIT;
	caps->per_transport_caps.rc_odp_caps = IB_ODP_SUPPORT_SEND |
		IB_ODP_SUPPORT_RECV | IB_ODP_SUPPORT_WRITE |
		IB_ODP_SUPPORT_READ | IB_ODP_SUPPORT_ATOMIC |
		IB_ODP_SUPPORT_SRQ_RECV | RXE_ODP_SUPPORT_FLUSH |
		RXE_ODP_SUPPORT_ATOMIC_WRITE;
	caps->per_transport_caps.ud_odp_caps = IB_ODP_SUPPORT_SEND |
		IB_ODP_SUPPORT_RECV;
}

/**
 * rxe_odp_mr_init_user() - Register an ODP MR.
 * @rxe: the device
 * @start: user virtual address of the MR
 * @length: length in bytes
 * @iova: the MR's iova
 * @access: IB_ACCESS_* flags, with IB_ACCESS_ON_DEMAND
 * @mr: the MR to fill
 *
 * @start 0 with @length U64_MAX registers an implicit MR: the whole
 * address space of the process, with iova equal to the user address, so
 * its @iova must be 0; huge page access is not offered on it.
 *
 * Return: 0, -EOPNOTSUPP for persistent flush, -EINVAL for an implicit
 * MR with a non-zero @iova or IB_ACCESS_HUGETLB, or the error of
 * odp_mirror_umem_get() or odp_mirror_umem_get_implicit().
 */
int rxe_odp_mr_init_user(struct rxe_dev *rxe, u64 start, u64 length,
			 u64 iova, int access, struct rxe_mr *mr)
{
	const struct odp_mirror_counters totals = {
		.page_faults = &rxe->stats_counters[RXE_CNT_ODP_PAGE_FAULTS],
		.page_invalidations =
			&rxe->stats_counters[RXE_CNT_ODP_PAGE_INVALIDATIONS],
		.fault_retries = &rxe->stats_counters[RXE_CNT_ODP_FAULT_RETRIES],
	};
	struct odp_mirror_umem *umem;

	rxe_mr_init(access, mr);
	if (access & IB_ACCESS_FLUSH_PERSISTENT)
		return -EOPNOTSUPP;
	if (!start && length == U64_MAX) {
		if (iova || (access & IB_ACCESS_HUGETLB))
			return -EINVAL;
		umem = odp_mirror_umem_get_implicit(ib_access_writable(access),
						    &totals);
	} else {
		umem = odp_mirror_umem_get(start, length,
					   ib_access_writable(access), &totals);
	}
	if (IS_ERR(umem))
		return PTR_ERR(umem);

	mr->odp_umem = umem;
	mr->odp_addr = start;
	mr->ibmr.type = IB_MR_TYPE_USER;
	mr->state = RXE_MR_STATE_VALID;
	return 0;
}
ALLOW_ERROR_INJECTION(rxe_odp_mr_init_user, ERRNO);

static bool rxe_odp_mr_valid(void *ctx)
{
	struct rxe_mr *mr = ctx;

	return READ_ONCE(mr->state) == RXE_MR_STATE_VALID;
}

/*
 * An access that must be retried (-EAGAIN: its pages keep going, or its
 * fault stalls on the memory's backing) fails for good once the MR is
 * being deregistered (rxe_odp_mr_stop()): a responder that holds the MR
 * across packets would otherwise keep its reference past rxe's wait.
 */
static int rxe_odp_retry_or_fail(struct rxe_mr *mr, int err)
{
	return err == -EAGAIN && !rxe_odp_mr_valid(mr) ? -EFAULT : err;
}

/* User address of [iova, iova + len), which must lie inside the MR. */
static int rxe_odp_va(struct rxe_mr *mr, u64 iova, u64 len, u64 *va)
{
	return odp_mirror_iova_to_va(mr->odp_addr, mr->ibmr.iova,
				     mr->ibmr.length, iova, len, va);
}

/**
 * rxe_odp_mr_copy() - rxe_mr_copy() for ODP MRs.
 * @mr: the MR
 * @iova: first iova
 * @addr: kernel buffer
 * @length: bytes to copy
 * @dir: RXE_TO_MR_OBJ or RXE_FROM_MR_OBJ
 *
 * Context: sleepable (rxe's tasks run on rxe_wq); no spinlock held.
 * Return: 0, -EFAULT or -EPERM for memory that is not there or not
 * permitted (or an MR being deregistered), or -EAGAIN when invalidations
 * kept winning or the fault stalls (retry later).
 */
int rxe_odp_mr_copy(struct rxe_mr *mr, u64 iova, void *addr,
		    unsigned int length, enum rxe_mr_copy_dir dir)
{
	u64 va;
	int err;

	if (rxe_odp_va(mr, iova, length, &va))
		return -EFAULT;
	err = odp_mirror_umem_copy(mr->odp_umem, va, addr, length,
				   dir == RXE_TO_MR_OBJ);
	return rxe_odp_retry_or_fail(mr, err);
}
ALLOW_ERROR_INJECTION(rxe_odp_mr_copy, ERRNO);

/**
 * rxe_odp_mr_prefault() - Fault in what a remote READ/WRITE will touch.
 * @mr: the MR
 * @iova: first iova of the request
 * @len: length of the whole request
 * @write: the request writes
 *
 * Called on the first packet of a request, so that its pages fault in
 * batches rather than one page per packet, and so that a request that
 * touches memory it may not is refused before any byte moves (for the
 * first 8 MiB of it; the accesses themselves check the rest).
 *
 * Return: 0, or -EFAULT when the request touches memory that is not
 * there, or not writable for a write. Transient failures (-EAGAIN,
 * -ENOMEM) return 0: the accesses retry them.
 */
int rxe_odp_mr_prefault(struct rxe_mr *mr, u64 iova, u64 len, bool write)
{
	u64 va;
	int err;

	if (rxe_odp_va(mr, iova, len, &va))
		return -EFAULT;
	err = odp_mirror_umem_prefault(mr->odp_umem, va, len, write);
	return err == -EFAULT || err == -EPERM ? -EFAULT : 0;
}

struct rxe_odp_atomic {
	int	opcode;
	u64	compare;
	u64	swap_add;
	u64	orig;
};

static int rxe_odp_do_atomic(void *ctx, void *kaddr, size_t len)
{
	struct rxe_odp_atomic *a = ctx;
	u64 *p = kaddr;

	spin_lock_bh(&rxe_atomic_ops_lock);
	a->orig = *p;
	if (a->opcode == IB_OPCODE_RC_COMPARE_SWAP) {
		if (a->orig == a->compare)
			*p = a->swap_add;
	} else {
		*p = a->orig + a->swap_add;
	}
	spin_unlock_bh(&rxe_atomic_ops_lock);
	return 0;
}

static int rxe_odp_do_atomic_write(void *ctx, void *kaddr, size_t len)
{
	/* Do the atomic write after all prior operations have completed. */
	smp_store_release((u64 *)kaddr, *(u64 *)ctx);
	return 0;
}

/*
 * Run @fn on the 8-byte target of an atomic at @iova, which must be
 * aligned. Return: 0 or a responder error state (RESPST_ERR_*).
 */
static int rxe_odp_atomic_access(struct rxe_mr *mr, u64 iova,
				 odp_mirror_access_fn fn, void *ctx)
{
	u64 va;
	int err;

	if (rxe_odp_va(mr, iova, sizeof(u64), &va))
		return RESPST_ERR_RKEY_VIOLATION;
	if (va & 7)
		return RESPST_ERR_MISALIGNED_ATOMIC;
	err = odp_mirror_umem_access(mr->odp_umem, va, sizeof(u64), true,
				     fn, ctx);
	err = rxe_odp_retry_or_fail(mr, err);
	if (!err)
		return 0;
	return err == -EAGAIN ? RESPST_ERR_RNR : RESPST_ERR_RKEY_VIOLATION;
}

/**
 * rxe_odp_mr_atomic_op() - rxe_mr_do_atomic_op() for ODP MRs.
 * @mr: the MR
 * @iova: iova of the 8-byte target
 * @opcode: IB_OPCODE_RC_COMPARE_SWAP or IB_OPCODE_RC_FETCH_ADD
 * @compare: compare value
 * @swap_add: swap or add value
 * @orig_val: the target's value before the operation
 *
 * Return: 0 or a responder error state (RESPST_ERR_*).
 */
int rxe_odp_mr_atomic_op(struct rxe_mr *mr, u64 iova, int opcode,
			 u64 compare, u64 swap_add, u64 *orig_val)
{
	struct rxe_odp_atomic a = {
		.opcode = opcode,
		.compare = compare,
		.swap_add = swap_add,
	};
	int err;

	err = rxe_odp_atomic_access(mr, iova, rxe_odp_do_atomic, &a);
	if (!err)
		*orig_val = a.orig;
	return err;
}

/**
 * rxe_odp_mr_atomic_write() - rxe_mr_do_atomic_write() for ODP MRs.
 * @mr: the MR
 * @iova: iova of the 8-byte target
 * @value: value to store
 *
 * Return: 0 or a responder error state (RESPST_ERR_*).
 */
int rxe_odp_mr_atomic_write(struct rxe_mr *mr, u64 iova, u64 value)
{
	return rxe_odp_atomic_access(mr, iova, rxe_odp_do_atomic_write,
				     &value);
}

/**
 * rxe_odp_mr_cleanup() - Release an MR's ODP umem, if it has one.
 * @mr: the MR, which no access uses any more
 */
void rxe_odp_mr_cleanup(struct rxe_mr *mr)
{
	if (!mr->odp_umem)
		return;
	odp_mirror_umem_release(mr->odp_umem);
	mr->odp_umem = NULL;
}

/**
 * rxe_odp_fill_stat_mr_entry() - Per-MR ODP counters for `rdma stat mr`.
 * @msg: the netlink message
 * @ibmr: the MR
 *
 * Uses mlx5's names, so that tools read ODP counters the same way on
 * both. MRs that are not ODP have none.
 *
 * Return: 0, or -EMSGSIZE when @msg is full.
 */
int rxe_odp_fill_stat_mr_entry(struct sk_buff *msg, struct ib_mr *ibmr)
{
	struct odp_mirror_umem *umem = to_rmr(ibmr)->odp_umem;
	struct nlattr *table;
	u64 faults, invals, prefetch, retries;

	if (!umem)
		return 0;
	faults = odp_mirror_umem_page_faults(umem);
	invals = odp_mirror_umem_page_invalidations(umem);
	prefetch = odp_mirror_umem_page_prefetch(umem);
	retries = odp_mirror_umem_fault_retries(umem);
	table = nla_nest_start(msg, RDMA_NLDEV_ATTR_STAT_HWCOUNTERS);
	if (!table)
		return -EMSGSIZE;
	if (rdma_nl_stat_hwcounter_entry(msg, "page_faults", faults) ||
	    rdma_nl_stat_hwcounter_entry(msg, "page_invalidations", invals) ||
	    rdma_nl_stat_hwcounter_entry(msg, "page_prefetch", prefetch) ||
	    rdma_nl_stat_hwcounter_entry(msg, "fault_retries", retries))
		goto err_cancel;
	nla_nest_end(msg, table);
	return 0;

err_cancel:
	nla_nest_cancel(msg, table);
	return -EMSGSIZE;
}

/**
 * rxe_odp_mr_stop() - Tell an ODP MR's prefetches that it is going away.
 * @mr: the MR being deregistered
 *
 * Deregistration waits for the references that prefetches hold, and
 * rxe_cleanup() gives up waiting after a while; so a prefetch checks the
 * MR's state between chunks and ends early once this has run. New
 * lookups of the MR fail from here on, as they will once it is removed.
 */
void rxe_odp_mr_stop(struct rxe_mr *mr)
{
	if (mr->odp_umem)
		WRITE_ONCE(mr->state, RXE_MR_STATE_INVALID);
}

/* One SGE of a prefetch advice: its MR (referenced) and user range. */
struct rxe_odp_prefetch_sge {
	struct rxe_mr	*mr;
	u64		va;
	u32		len;
};

struct rxe_odp_prefetch {
	struct work_struct		work;
	enum ib_uverbs_advise_mr_advice	advice;
	/* counted in its MRs' odp_prefetches (asynchronous) */
	bool				counted;
	u32				num_sge;
	struct rxe_odp_prefetch_sge	sge[] __counted_by(num_sge);
};

/*
 * Asynchronous prefetches in flight on one MR, counted once per SGE that
 * names it: without a bound, a process could queue work (and kernel
 * memory) without end. The excess is refused with -EBUSY. A synchronous
 * prefetch runs in the caller's context and is not counted.
 */
#define RXE_ODP_PREFETCH_MAX	64

/* Drop the MR references of the first @n SGEs of @p. */
static void rxe_odp_prefetch_put(struct rxe_odp_prefetch *p, u32 n)
{
	u32 i;

	for (i = 0; i < n; i++) {
		if (p->counted)
			atomic_dec(&p->sge[i].mr->odp_prefetches);
		rxe_put(p->sge[i].mr);
	}
}

/* Count @p in its MRs; -EBUSY if one has RXE_ODP_PREFETCH_MAX already. */
static int rxe_odp_prefetch_count(struct rxe_odp_prefetch *p)
{
	u32 i;

	for (i = 0; i < p->num_sge; i++) {
		if (atomic_inc_return(&p->sge[i].mr->odp_prefetches) >
		    RXE_ODP_PREFETCH_MAX) {
			i++;
			while (i--)
				atomic_dec(&p->sge[i].mr->odp_prefetches);
			return -EBUSY;
		}
	}
	p->counted = true;
	return 0;
}

/*
 * Resolve and check every SGE before any prefetch runs, taking an MR
 * reference for each. Return: 0, or -ENOENT for an lkey that names no ODP
 * MR of @pd, -EPERM for PREFETCH_WRITE to an MR without local write
 * access, -EFAULT for a range outside its MR (or one that wraps).
 */
static int rxe_odp_prefetch_prepare(struct rxe_pd *pd, struct ib_sge *sg_list,
				    struct rxe_odp_prefetch *p)
{
	u32 i;
	int err;

	for (i = 0; i < p->num_sge; i++) {
		struct rxe_odp_prefetch_sge *s = &p->sge[i];
		struct rxe_mr *mr;

		mr = lookup_mr(pd, 0, sg_list[i].lkey, RXE_LOOKUP_LOCAL);
		if (!mr) {
			err = -ENOENT;
			goto err_put;
		}
		s->mr = mr;
		s->len = sg_list[i].length;
		if (!mr->odp_umem)
			err = -ENOENT;
		else if (p->advice == IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_WRITE &&
			 !(mr->access & IB_ACCESS_LOCAL_WRITE))
			err = -EPERM;
		else
			err = rxe_odp_va(mr, sg_list[i].addr, s->len, &s->va);
		if (err) {
			i++;
			goto err_put;
		}
	}
	return 0;

err_put:
	rxe_odp_prefetch_put(p, i);
	return err;
}

/* Run a prepared prefetch, drop its references and free it. */
static int rxe_odp_prefetch_run(struct rxe_odp_prefetch *p)
{
	bool write = p->advice == IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_WRITE;
	bool fault = p->advice != IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT;
	int err = 0;
	u32 i;

	for (i = 0; i < p->num_sge && !err; i++) {
		struct rxe_odp_prefetch_sge *s = &p->sge[i];

		err = odp_mirror_umem_prefetch(s->mr->odp_umem, s->va, s->len,
					       write, fault, rxe_odp_mr_valid,
					       s->mr);
	}
	rxe_odp_prefetch_put(p, p->num_sge);
	kfree(p);
	return err;
}

static void rxe_odp_prefetch_work(struct work_struct *work)
{
	/* advice is a hint: an asynchronous prefetch has no one to tell */
	rxe_odp_prefetch_run(container_of(work, struct rxe_odp_prefetch,
					  work));
}

/**
 * rxe_odp_advise_mr() - ibv_advise_mr() on ODP MRs.
 * @ibpd: the PD the MRs must belong to
 * @advice: PREFETCH, PREFETCH_WRITE or PREFETCH_NO_FAULT
 * @flags: IB_UVERBS_ADVISE_MR_FLAG_FLUSH for a synchronous prefetch
 * @sg_list: the ranges, by lkey
 * @num_sge: entries in @sg_list
 * @attrs: unused
 *
 * Every SGE is checked before anything runs. A synchronous prefetch
 * returns the first fault error; an asynchronous one runs on rxe_wq with
 * references on its MRs, which deregistration waits for (and which module
 * exit drains), and ends early when an MR goes away. At most
 * RXE_ODP_PREFETCH_MAX asynchronous prefetches are in flight per MR; its
 * memory is charged to the caller's memory cgroup.
 *
 * Context: process context; a synchronous prefetch sleeps.
 * Return: 0, -EOPNOTSUPP for other advice, -ENOMEM, -EBUSY when an MR
 * has RXE_ODP_PREFETCH_MAX asynchronous prefetches in flight, or an
 * error of the SGE checks (rxe_odp_prefetch_prepare()) or of the
 * prefetch (-EFAULT for memory that is not mapped, -EPERM for a
 * read-only mapping, -EINTR when the caller was killed, -EAGAIN when
 * invalidations kept taking the pages while it faulted them in).
 */
int rxe_odp_advise_mr(struct ib_pd *ibpd,
		      enum ib_uverbs_advise_mr_advice advice, u32 flags,
		      struct ib_sge *sg_list, u32 num_sge,
		      struct uverbs_attr_bundle *attrs)
{
	struct rxe_odp_prefetch *p;
	int err;

	switch (advice) {
	case IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH:
	case IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_WRITE:
	case IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT:
		break;
	default:
		return -EOPNOTSUPP;
	}

	p = kzalloc(struct_size(p, sge, num_sge), GFP_KERNEL_ACCOUNT);
	if (!p)
		return -ENOMEM;
	p->num_sge = num_sge;
	p->advice = advice;
	err = rxe_odp_prefetch_prepare(to_rpd(ibpd), sg_list, p);
	if (err) {
		kfree(p);
		return err;
	}

	if (flags & IB_UVERBS_ADVISE_MR_FLAG_FLUSH)
		return rxe_odp_prefetch_run(p);
	err = rxe_odp_prefetch_count(p);
	if (err) {
		rxe_odp_prefetch_put(p, p->num_sge);
		kfree(p);
		return err;
	}
	INIT_WORK(&p->work, rxe_odp_prefetch_work);
	rxe_queue_work(&p->work);
	return 0;
}
ALLOW_ERROR_INJECTION(rxe_odp_advise_mr, ERRNO);
