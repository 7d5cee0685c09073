// SPDX-License-Identifier: GPL-2.0
/*
 * On-demand paging MRs of rxe, on the odp_mirror layer: nothing is
 * pinned; each access translates the MR iova to the registered user
 * address and lets odp_mirror fault the pages in and copy inside its
 * critical section.
 */
#include <rdma/odp_mirror.h>
#include <rdma/odp_mirror_range.h>
#include <rdma/rdma_netlink.h>
#include <rdma/restrack.h>

#include "rxe.h"
#include "rxe_loc.h"

/**
 * rxe_odp_init_caps() - Advertise what ODP MRs support.
 * @rxe: the device
 *
 * Only what works and is tested: RC SEND/RECV/WRITE/READ/ATOMIC and SRQ
 * receives, UD SEND/RECV. No implicit ODP yet.
 */
void rxe_odp_init_caps(struct rxe_dev *rxe)
{
	struct ib_odp_caps *caps = &rxe->attr.odp_caps;

	rxe->attr.kernel_cap_flags |= IBK_ON_DEMAND_PAGING;
	caps->general_caps = IB_ODP_SUPPORT;
	caps->per_transport_caps.rc_odp_caps = IB_ODP_SUPPORT_SEND |
		IB_ODP_SUPPORT_RECV | IB_ODP_SUPPORT_WRITE |
		IB_ODP_SUPPORT_READ | IB_ODP_SUPPORT_ATOMIC |
		IB_ODP_SUPPORT_SRQ_RECV;
	caps->per_transport_caps.ud_odp_caps = IB_ODP_SUPPORT_SEND |
		IB_ODP_SUPPORT_RECV;
}

/**
 * rxe_odp_mr_init_user() - Register an explicit ODP MR.
 * @rxe: the device
 * @start: user virtual address of the MR
 * @length: length in bytes
 * @access: IB_ACCESS_* flags, with IB_ACCESS_ON_DEMAND
 * @mr: the MR to fill
 *
 * Return: 0, or -EOPNOTSUPP for implicit ODP or persistent flush, or the
 * error of odp_mirror_umem_get().
 */
int rxe_odp_mr_init_user(struct rxe_dev *rxe, u64 start, u64 length,
			 int access, struct rxe_mr *mr)
{
	const struct odp_mirror_counters totals = {
		.page_faults = &rxe->stats_counters[RXE_CNT_ODP_PAGE_FAULTS],
		.page_invalidations =
			&rxe->stats_counters[RXE_CNT_ODP_PAGE_INVALIDATIONS],
	};
	struct odp_mirror_umem *umem;

	rxe_mr_init(access, mr);
	if (access & IB_ACCESS_FLUSH_PERSISTENT)
		return -EOPNOTSUPP;
	if (!start && length == U64_MAX)
		return -EOPNOTSUPP;

	umem = odp_mirror_umem_get(start, length, ib_access_writable(access),
				   &totals);
	if (IS_ERR(umem))
		return PTR_ERR(umem);

	mr->odp_umem = umem;
	mr->odp_addr = start;
	mr->ibmr.type = IB_MR_TYPE_USER;
	mr->state = RXE_MR_STATE_VALID;
	return 0;
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
 * permitted, or -EAGAIN when invalidations kept winning (retry later).
 */
int rxe_odp_mr_copy(struct rxe_mr *mr, u64 iova, void *addr,
		    unsigned int length, enum rxe_mr_copy_dir dir)
{
	u64 va;

	if (rxe_odp_va(mr, iova, length, &va))
		return -EFAULT;
	return odp_mirror_umem_copy(mr->odp_umem, va, addr, length,
				    dir == RXE_TO_MR_OBJ);
}

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
	u64 faults, invals;

	if (!umem)
		return 0;
	faults = odp_mirror_umem_page_faults(umem);
	invals = odp_mirror_umem_page_invalidations(umem);
	table = nla_nest_start(msg, RDMA_NLDEV_ATTR_STAT_HWCOUNTERS);
	if (!table)
		return -EMSGSIZE;
	if (rdma_nl_stat_hwcounter_entry(msg, "page_faults", faults) ||
	    rdma_nl_stat_hwcounter_entry(msg, "page_invalidations", invals))
		goto err_cancel;
	nla_nest_end(msg, table);
	return 0;

err_cancel:
	nla_nest_cancel(msg, table);
	return -EMSGSIZE;
}
