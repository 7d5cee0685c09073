// SPDX-License-Identifier: GPL-2.0
/*
 * odp_exercise - one phase of ODP work, the workload of the debug lane's
 * fault injection (tests/debug/faults.sh): while the kernel fails one of
 * our allocations or functions, every verb must end in a clean errno or an
 * error completion, every completion that reports success must have moved
 * the right bytes, an access that must fail must fail, and nothing may
 * hang.
 *
 *   odp_exercise PHASE [ROUNDS]
 *
 * PHASE (each on fresh, never-touched ODP memory):
 *   reg         register and deregister explicit and implicit ODP MRs
 *   fault       RDMA WRITE, READ, SEND/RECV (unaligned, across pages)
 *               and FETCH_ADD between explicit ODP MRs: faults
 *   prefetch    ibv_advise_mr(PREFETCH_WRITE) synchronous and
 *               asynchronous, then a WRITE into the prefetched range
 *               (needs rdma-core 65's libibverbs: LD_LIBRARY_PATH)
 *   implicit    WRITE and READ through the implicit MR into two 1 GiB
 *               slots (its children are created)
 *   invalidate  WRITE, MADV_DONTNEED and WRITE again (a refault); a
 *               WRITE into a read-only and into an unmapped part of the
 *               MR, which must fail; mprotect back, and a WRITE that must
 *               land
 *
 * Exit status: 0 every verb and completion succeeded; 3 some failed
 * cleanly (an errno, an error completion) and everything else held;
 * 1 an inconsistency (wrong bytes after a successful completion, a
 * success where failure was due, a completion that never came); 2 usage.
 * Device: RXE_ODP_DEV (default rxe0), RXE_ODP_GID_IDX.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/types.h>

#include "verbs_util.h"

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

#define EX_LEN		(256 << 10)
#define EX_XFER		(64 << 10)
#define EX_OFF		100		/* unaligned start, crosses pages */
#define EX_SLOT		(1UL << 30)	/* an implicit MR's child */

enum ex_result { EX_OK = 0, EX_BROKEN = 1, EX_USAGE = 2, EX_CLEAN = 3 };

struct ex {
	struct vu_ctx		v;
	struct vu_qp_pair	p;
	enum ex_result		result;
	unsigned int		seq;
};

#define ODP_RW	(IBV_ACCESS_ON_DEMAND | IBV_ACCESS_LOCAL_WRITE | \
		 IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_WRITE | \
		 IBV_ACCESS_REMOTE_ATOMIC)

static void ex_clean(struct ex *e, const char *what, int err)
{
	printf("clean: %s: %s\n", what, strerror(err < 0 ? -err : err));
	if (e->result == EX_OK)
		e->result = EX_CLEAN;
}

static void ex_broken(struct ex *e, const char *what)
{
	printf("BROKEN: %s\n", what);
	e->result = EX_BROKEN;
}

static void *ex_map(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static void ex_fill(struct ex *e, unsigned char *buf, size_t len)
{
	size_t i;

	e->seq++;
	for (i = 0; i < len; i++)
		buf[i] = (unsigned char)(i * 7 + e->seq * 13 + 1);
}

/*
 * After an error completion, both QPs are replaced by new ones (new QP
 * numbers). Brought through RESET to RTS instead, QP a started at PSN 0
 * again while QP b could still be sending the responses of the failed
 * request (a READ whose placement failed at its first packet has tens
 * of them to go); they were taken for the answers to the next request,
 * which never completed (make check-debug's fault injection, 2026-12-06;
 * the fuzzer's qp_replace() for the same). ibv_destroy_qp() returns once
 * rxe's tasks are done, and what is still queued for the old QPs is
 * dropped.
 */
static int ex_replace(struct ex *e)
{
	vu_qp_pair_destroy(&e->v, &e->p);
	return vu_qp_pair_create(&e->v, &e->p);
}

/*
 * Post one operation on QP a and wait for it. Returns 1 when it
 * completed successfully, 0 when it failed cleanly (the QPs replaced), -1
 * when it must stop (no completion, or the QPs cannot be replaced). An
 * operation that must be refused (@refused) and is, is no failure.
 */
static int ex_op_refused(struct ex *e, enum ibv_wr_opcode op, void *laddr,
			 __u32 len, __u32 lkey, __u64 raddr, __u32 rkey,
			 const char *what, bool refused)
{
	struct ibv_wc wc;
	int ret;

	ret = vu_post_send(&e->v, &e->p.a, op, e->seq, laddr, len, lkey,
			   raddr, rkey);
	if (ret) {
		ex_clean(e, what, ret);
		return 0;
	}
	ret = vu_poll_one(&e->v, &e->p.a, &wc);
	if (ret) {
		ex_broken(e, what);
		printf("# no completion: %s\n", strerror(-ret));
		return -1;
	}
	if (wc.status == IBV_WC_SUCCESS)
		return 1;
	if (!refused)
		ex_clean(e, what, EIO);
	printf("# %s: completion %s\n", what, ibv_wc_status_str(wc.status));
	return ex_replace(e) ? -1 : 0;
}

static int ex_op(struct ex *e, enum ibv_wr_opcode op, void *laddr,
		 __u32 len, __u32 lkey, __u64 raddr, __u32 rkey,
		 const char *what)
{
	return ex_op_refused(e, op, laddr, len, lkey, raddr, rkey, what,
			     false);
}

/* An 8-byte FETCH_ADD of 1 on QP a; see ex_op(). */
static int ex_fadd(struct ex *e, __u64 *old, __u32 lkey, __u64 raddr,
		   __u32 rkey)
{
	struct ibv_send_wr wr = {}, *bad;
	struct ibv_sge sge = {
		.addr = (uintptr_t)old, .length = 8, .lkey = lkey,
	};
	struct ibv_wc wc;
	int ret;

	wr.wr_id = ++e->seq;
	wr.sg_list = &sge;
	wr.num_sge = 1;
	wr.opcode = IBV_WR_ATOMIC_FETCH_AND_ADD;
	wr.send_flags = IBV_SEND_SIGNALED;
	wr.wr.atomic.remote_addr = raddr;
	wr.wr.atomic.rkey = rkey;
	wr.wr.atomic.compare_add = 1;
	ret = ibv_post_send(e->p.a.qp, &wr, &bad);
	if (ret) {
		ex_clean(e, "fetch_add post", ret);
		return 0;
	}
	ret = vu_poll_one(&e->v, &e->p.a, &wc);
	if (ret) {
		ex_broken(e, "fetch_add: no completion");
		return -1;
	}
	if (wc.status == IBV_WC_SUCCESS)
		return 1;
	ex_clean(e, "fetch_add", EIO);
	return ex_replace(e) ? -1 : 0;
}

static void ex_check(struct ex *e, const void *got, const void *want,
		     size_t len, const char *what)
{
	if (memcmp(got, want, len))
		ex_broken(e, what);
}

static struct ibv_mr *ex_reg(struct ex *e, void *addr, size_t len,
			     const char *what)
{
	struct ibv_mr *mr = vu_reg_mr(&e->v, addr, len, ODP_RW);

	if (!mr)
		ex_clean(e, what, errno);
	return mr;
}

/* Two fresh ODP buffers, registered: a source and a destination. */
struct ex_bufs {
	unsigned char	*src, *dst;
	struct ibv_mr	*smr, *dmr;
};

/* Map and register @b's buffers; false (a clean failure) if any failed. */
static bool ex_bufs_get(struct ex *e, struct ex_bufs *b)
{
	b->src = ex_map(EX_LEN);
	b->dst = ex_map(EX_LEN);
	b->smr = NULL;
	b->dmr = NULL;
	if (!b->src || !b->dst) {
		ex_clean(e, "mmap", errno);
		return false;
	}
	b->smr = ex_reg(e, b->src, EX_LEN, "reg src");
	b->dmr = ex_reg(e, b->dst, EX_LEN, "reg dst");
	return b->smr && b->dmr;
}

/* Undo ex_bufs_get(), as far as it went. */
static void ex_bufs_put(struct ex *e, struct ex_bufs *b)
{
	vu_dereg_mr(&e->v, b->dmr);
	vu_dereg_mr(&e->v, b->smr);
	if (b->src)
		munmap(b->src, EX_LEN);
	if (b->dst)
		munmap(b->dst, EX_LEN);
}

static void ex_phase_reg(struct ex *e)
{
	void *buf = ex_map(EX_LEN);
	struct ibv_mr *mr, *imp;

	if (!buf) {
		ex_clean(e, "mmap", errno);
		return;
	}
	mr = ex_reg(e, buf, EX_LEN, "reg explicit");
	imp = ex_reg(e, NULL, SIZE_MAX, "reg implicit");
	if (vu_dereg_mr(&e->v, imp) || vu_dereg_mr(&e->v, mr))
		ex_broken(e, "dereg of a registered MR failed");
	munmap(buf, EX_LEN);
}

/* WRITE, READ, SEND and FETCH_ADD from @src to @dst (both ODP, fresh). */
static void ex_phase_fault(struct ex *e)
{
	struct ex_bufs b;
	__u64 raddr;
	int ret;

	if (!ex_bufs_get(e, &b))
		goto out;
	raddr = (uintptr_t)b.dst + EX_OFF;

	ex_fill(e, b.src + EX_OFF, EX_XFER);
	ret = ex_op(e, IBV_WR_RDMA_WRITE, b.src + EX_OFF, EX_XFER, b.smr->lkey,
		    raddr, b.dmr->rkey, "write");
	if (ret < 0)
		goto out;
	if (ret)
		ex_check(e, b.dst + EX_OFF, b.src + EX_OFF, EX_XFER,
			 "write: destination differs from source");

	ex_fill(e, b.dst + EX_LEN / 2, EX_XFER);
	ret = ex_op(e, IBV_WR_RDMA_READ, b.src + EX_LEN / 2 + EX_OFF, EX_XFER,
		    b.smr->lkey, (uintptr_t)b.dst + EX_LEN / 2, b.dmr->rkey, "read");
	if (ret < 0)
		goto out;
	if (ret)
		ex_check(e, b.src + EX_LEN / 2 + EX_OFF, b.dst + EX_LEN / 2,
			 EX_XFER, "read: local buffer differs from remote");

	ex_fill(e, b.src, 4096 + EX_OFF);
	ret = vu_post_recv(&e->v, &e->p.b, e->seq, b.dst + 3 * EX_LEN / 4 + 1,
			   4096 + EX_OFF, b.dmr->lkey);
	if (ret) {
		ex_clean(e, "post recv", ret);
	} else {
		ret = ex_op(e, IBV_WR_SEND, b.src, 4096 + EX_OFF, b.smr->lkey, 0,
			    0, "send");
		if (ret < 0)
			goto out;
		if (ret) {
			struct ibv_wc wc;

			if (vu_poll_one(&e->v, &e->p.b, &wc)) {
				ex_broken(e, "send: no receive completion");
				goto out;
			}
			if (wc.status == IBV_WC_SUCCESS)
				ex_check(e, b.dst + 3 * EX_LEN / 4 + 1, b.src,
					 4096 + EX_OFF,
					 "send: receive buffer differs");
			else
				ex_broken(e, "send succeeded, its receive failed");
		}
	}

	{
		__u64 *target = (__u64 *)(b.dst + EX_LEN - 8);
		__u64 *old = (__u64 *)(b.src + EX_LEN - 8);

		*target = 41;
		ret = ex_fadd(e, old, b.smr->lkey, (uintptr_t)target, b.dmr->rkey);
		if (ret == 1 && (*old != 41 || *target != 42))
			ex_broken(e, "fetch_add: wrong old or new value");
	}
out:
	ex_bufs_put(e, &b);
}

static void ex_phase_prefetch(struct ex *e)
{
	struct ex_bufs b;
	struct ibv_sge sge;
	int ret;

	if (!ex_bufs_get(e, &b))
		goto out;
	sge.addr = (uintptr_t)b.dst;
	sge.length = EX_LEN / 2;
	sge.lkey = b.dmr->lkey;
	ret = ibv_advise_mr(e->v.pd, IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE,
			    IBV_ADVISE_MR_FLAG_FLUSH, &sge, 1);
	if (ret == EOPNOTSUPP) {
		printf("ibv_advise_mr: not supported (rdma-core 65's libibverbs?)\n");
		e->result = EX_USAGE;
		goto out;
	}
	if (ret)
		ex_clean(e, "advise sync", ret);
	sge.addr = (uintptr_t)b.dst + EX_LEN / 2;
	ret = ibv_advise_mr(e->v.pd, IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE, 0,
			    &sge, 1);
	if (ret)
		ex_clean(e, "advise async", ret);

	ex_fill(e, b.src, EX_XFER);
	ret = ex_op(e, IBV_WR_RDMA_WRITE, b.src, EX_XFER, b.smr->lkey,
		    (uintptr_t)b.dst + EX_OFF, b.dmr->rkey, "write");
	if (ret == 1)
		ex_check(e, b.dst + EX_OFF, b.src, EX_XFER,
			 "write after prefetch: destination differs");
out:
	ex_bufs_put(e, &b);
}

/* WRITE then READ through the implicit MR, into 2 MiB at @dst. */
static int ex_implicit_one(struct ex *e, struct ibv_mr *imp,
			   unsigned char *src, struct ibv_mr *smr,
			   unsigned char *dst)
{
	int ret;

	ex_fill(e, src, EX_XFER);
	ret = ex_op(e, IBV_WR_RDMA_WRITE, src, EX_XFER, smr->lkey,
		    (uintptr_t)dst + EX_OFF, imp->rkey, "implicit write");
	if (ret == 1)
		ex_check(e, dst + EX_OFF, src, EX_XFER,
			 "implicit write: destination differs");
	if (ret < 0)
		return ret;
	ex_fill(e, dst + EX_LEN, EX_XFER);
	ret = ex_op(e, IBV_WR_RDMA_READ, src + EX_XFER, EX_XFER, smr->lkey,
		    (uintptr_t)dst + EX_LEN, imp->rkey, "implicit read");
	if (ret == 1)
		ex_check(e, src + EX_XFER, dst + EX_LEN, EX_XFER,
			 "implicit read: local buffer differs");
	return ret;
}

static void ex_phase_implicit(struct ex *e)
{
	unsigned char *src = ex_map(EX_LEN), *area = NULL, *slot;
	struct ibv_mr *smr = NULL, *imp = NULL;
	size_t area_len = 2 * EX_SLOT + EX_SLOT;

	/* Two slots of 1 GiB, reserved without memory behind them. */
	area = mmap(NULL, area_len, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (!src || area == MAP_FAILED) {
		area = NULL;
		ex_clean(e, "mmap", errno);
		goto out;
	}
	slot = (unsigned char *)(((uintptr_t)area + EX_SLOT - 1) &
				 ~(EX_SLOT - 1));
	smr = ex_reg(e, src, EX_LEN, "reg src");
	imp = ex_reg(e, NULL, SIZE_MAX, "reg implicit");
	if (!smr || !imp)
		goto out;
	if (ex_implicit_one(e, imp, src, smr, slot + EX_SLOT - EX_LEN) >= 0)
		ex_implicit_one(e, imp, src, smr, slot + EX_SLOT);
out:
	vu_dereg_mr(&e->v, imp);
	vu_dereg_mr(&e->v, smr);
	if (area)
		munmap(area, area_len);
	if (src)
		munmap(src, EX_LEN);
}

static void ex_phase_invalidate(struct ex *e)
{
	struct ex_bufs b;
	__u64 rdst;
	int ret;

	if (!ex_bufs_get(e, &b))
		goto out;
	rdst = (uintptr_t)b.dst;

	ex_fill(e, b.src, EX_XFER);
	if (ex_op(e, IBV_WR_RDMA_WRITE, b.src, EX_XFER, b.smr->lkey, rdst,
		  b.dmr->rkey, "write") < 0)
		goto out;
	madvise(b.dst, EX_XFER, MADV_DONTNEED);
	ex_fill(e, b.src, EX_XFER);
	ret = ex_op(e, IBV_WR_RDMA_WRITE, b.src, EX_XFER, b.smr->lkey, rdst,
		    b.dmr->rkey, "write after DONTNEED");
	if (ret < 0)
		goto out;
	if (ret)
		ex_check(e, b.dst, b.src, EX_XFER,
			 "write after DONTNEED: destination differs");

	/* a read-only part: the write must fail and leave it alone */
	memset(b.dst + EX_XFER, 0x5a, EX_XFER);
	mprotect(b.dst + EX_XFER, EX_XFER, PROT_READ);
	ret = ex_op_refused(e, IBV_WR_RDMA_WRITE, b.src, EX_XFER, b.smr->lkey,
			    rdst + EX_XFER, b.dmr->rkey, "write to read-only",
			    true);
	if (ret == 1)
		ex_broken(e, "a WRITE into read-only memory succeeded");
	if (ret < 0)
		goto out;
	{
		unsigned char want[EX_XFER];

		memset(want, 0x5a, sizeof(want));
		ex_check(e, b.dst + EX_XFER, want, EX_XFER,
			 "the refused WRITE changed read-only memory");
	}
	mprotect(b.dst + EX_XFER, EX_XFER, PROT_READ | PROT_WRITE);

	/* an unmapped part: the write must fail */
	munmap(b.dst + EX_LEN - EX_XFER, EX_XFER);
	ret = ex_op_refused(e, IBV_WR_RDMA_WRITE, b.src, EX_XFER, b.smr->lkey,
			    rdst + EX_LEN - EX_XFER, b.dmr->rkey,
			    "write to unmapped", true);
	if (ret == 1)
		ex_broken(e, "a WRITE into unmapped memory succeeded");
	if (ret < 0)
		goto out;
	/* back in place: a write must land again */
	if (mmap(b.dst + EX_LEN - EX_XFER, EX_XFER, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED) {
		ex_clean(e, "mmap fixed", errno);
		goto out;
	}
	ex_fill(e, b.src, EX_XFER);
	ret = ex_op(e, IBV_WR_RDMA_WRITE, b.src, EX_XFER, b.smr->lkey,
		    rdst + EX_LEN - EX_XFER, b.dmr->rkey, "write after remap");
	if (ret == 1)
		ex_check(e, b.dst + EX_LEN - EX_XFER, b.src, EX_XFER,
			 "write after remap: destination differs");
out:
	ex_bufs_put(e, &b);
}

static const struct {
	const char *name;
	void (*fn)(struct ex *e);
} ex_phases[] = {
	{ "reg", ex_phase_reg },
	{ "fault", ex_phase_fault },
	{ "prefetch", ex_phase_prefetch },
	{ "implicit", ex_phase_implicit },
	{ "invalidate", ex_phase_invalidate },
};

int main(int argc, char **argv)
{
	struct vu_config cfg;
	struct ex e = {};
	long rounds = argc > 2 ? atol(argv[2]) : 1;
	size_t i;
	long r;
	int ret;

	for (i = 0; argc > 1 && i < ARRAY_SIZE(ex_phases); i++)
		if (!strcmp(argv[1], ex_phases[i].name))
			break;
	if (argc < 2 || argc > 3 || rounds < 1 ||
	    i == ARRAY_SIZE(ex_phases)) {
		fprintf(stderr, "usage: %s reg|fault|prefetch|implicit|invalidate [ROUNDS]\n",
			argv[0]);
		return EX_USAGE;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	vu_config_init(&cfg);
	if (vu_config_from_env(&cfg))
		return EX_USAGE;
	cfg.log_prefix = "# ";
	/* the debug kernel is slow: a minute before a completion is lost */
	cfg.timeout_ms = 60000;
	ret = vu_open(&e.v, &cfg);
	if (ret) {
		ex_clean(&e, "open device", ret);
		return e.result;
	}
	ret = vu_qp_pair_create(&e.v, &e.p);
	if (ret) {
		ex_clean(&e, "QP pair", ret);
	} else {
		for (r = 0; r < rounds && e.result != EX_BROKEN &&
		     e.result != EX_USAGE; r++)
			ex_phases[i].fn(&e);
		vu_qp_pair_destroy(&e.v, &e.p);
	}
	vu_close(&e.v);
	printf("odp_exercise %s: %s\n", argv[1],
	       e.result == EX_OK ? "ok" : e.result == EX_CLEAN ?
	       "clean failures" : e.result == EX_USAGE ? "unsupported" :
	       "BROKEN");
	return e.result;
}
