// SPDX-License-Identifier: GPL-2.0
/*
 * odp_atomics - 8-byte remote atomics on rxe's ODP MRs, explicit and
 * implicit (issue 6, "ATOMIC_WRITE and FLUSH on ODP MRs"): an aligned
 * ATOMIC_WRITE, FETCH_ADD and CMP_AND_SWP land exactly on their 8 bytes;
 * a misaligned one completes with IBV_WC_REM_INV_REQ_ERR and changes
 * nothing.
 *
 * Built against rdma-core 65 (the newer lane; see userspace/Makefile):
 * ibv_wr_atomic_write() is not in rdma-core 44. QP a, created with
 * ibv_create_qp_ex(), posts through the extended send API; QP b is the
 * responder. Every byte of the target page is checked after each case.
 *
 * atomic_write_survives_lazyfree_pageout guards the reclaim of what
 * ATOMIC_WRITE stores (tests/c/odp_reclaim.c has the same for WRITE, SEND
 * and the other atomics): rxe stores through the kernel mapping, so a
 * lazy-free page (MADV_FREE) it wrote must be dirtied by rxe, or
 * MADV_PAGEOUT discards it and the process reads zeros. Mutation record:
 * on today's main, whose rxe does not dirty the page, it fails for both
 * variants (the target page reads back all zeros); a page nobody wrote
 * after MADV_FREE, the control, reads zeros on any kernel.
 *
 * Device: RXE_ODP_DEV (default rxe0), RXE_ODP_GID_IDX (default 1); fails
 * when our rdma_rxe is loaded without RC ODP ATOMIC_WRITE/ATOMIC (or
 * implicit ODP, for the implicit variant), skips on another device that
 * lacks them.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "verbs_util.h"
#include "test_util.h"

#define ACC_TARGET	(IBV_ACCESS_ON_DEMAND | IBV_ACCESS_LOCAL_WRITE | \
			 IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ | \
			 IBV_ACCESS_REMOTE_ATOMIC)
#define PAGE		4096
#define SEED		9

FIXTURE(atomics) {
	struct vu_config	cfg;
	struct vu_ctx		v;
	struct vu_qp		a, b;
	struct ibv_qp_ex	*qpx;
	struct ibv_mr		*mr;	/* the target, ODP */
	struct ibv_mr		*lmr;	/* @res, pinned */
	uint8_t			*buf;	/* target page */
	uint64_t		*res;	/* where FETCH_ADD/CMP_SWP results land */
};

FIXTURE_VARIANT(atomics) {
	bool	implicit;
};

FIXTURE_VARIANT_ADD(atomics, explicit) { .implicit = false };
FIXTURE_VARIANT_ADD(atomics, implicit) { .implicit = true };

FIXTURE_SETUP(atomics)
{
	const uint32_t need = IBV_ODP_SUPPORT_ATOMIC |
			      IBV_ODP_SUPPORT_ATOMIC_WRITE;
	struct ibv_qp_init_attr_ex xa = {
		.qp_type = IBV_QPT_RC,
		.comp_mask = IBV_QP_INIT_ATTR_PD |
			     IBV_QP_INIT_ATTR_SEND_OPS_FLAGS,
		.send_ops_flags = IBV_QP_EX_WITH_ATOMIC_WRITE |
				  IBV_QP_EX_WITH_ATOMIC_FETCH_AND_ADD |
				  IBV_QP_EX_WITH_ATOMIC_CMP_AND_SWP,
		.cap = { .max_send_wr = 4, .max_recv_wr = 4,
			 .max_send_sge = 1, .max_recv_sge = 1 },
	};
	struct ibv_qp_init_attr ba = {
		.qp_type = IBV_QPT_RC,
		.cap = { .max_send_wr = 4, .max_recv_wr = 4,
			 .max_send_sge = 1, .max_recv_sge = 1 },
	};
	struct ibv_device_attr_ex ax;

	TU_OPEN_QUERY(&self->cfg, &self->v, &ax);
	TU_REQUIRE_CAP((ax.odp_caps.per_transport_caps.rc_odp_caps & need) ==
		       need, "%s has no RC ODP atomic write support",
		       self->cfg.dev_name);
	TU_REQUIRE_CAP(!variant->implicit ||
		       (ax.odp_caps.general_caps & IBV_ODP_SUPPORT_IMPLICIT),
		       "%s has no implicit ODP", self->cfg.dev_name);

	self->buf = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	self->res = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->buf);
	ASSERT_NE(MAP_FAILED, self->res);
	tu_fill(self->buf, PAGE, SEED);
	self->mr = variant->implicit ?
		   ibv_reg_mr(self->v.pd, NULL, SIZE_MAX, ACC_TARGET) :
		   ibv_reg_mr(self->v.pd, self->buf, PAGE, ACC_TARGET);
	ASSERT_NE(NULL, self->mr) TH_LOG("ODP MR: %s", strerror(errno));
	self->lmr = vu_reg_mr(&self->v, self->res, PAGE,
			      IBV_ACCESS_LOCAL_WRITE);
	ASSERT_NE(NULL, self->lmr);

	self->a.cq = ibv_create_cq(self->v.ctx, 4, NULL, NULL, 0);
	self->b.cq = ibv_create_cq(self->v.ctx, 4, NULL, NULL, 0);
	ASSERT_NE(NULL, self->a.cq);
	ASSERT_NE(NULL, self->b.cq);
	xa.pd = self->v.pd;
	xa.send_cq = xa.recv_cq = self->a.cq;
	self->a.qp = ibv_create_qp_ex(self->v.ctx, &xa);
	ASSERT_NE(NULL, self->a.qp) TH_LOG("ibv_create_qp_ex: %s",
					   strerror(errno));
	self->qpx = ibv_qp_to_qp_ex(self->a.qp);
	ba.send_cq = ba.recv_cq = self->b.cq;
	self->b.qp = ibv_create_qp(self->v.pd, &ba);
	ASSERT_NE(NULL, self->b.qp);
	ASSERT_EQ(0, vu_qp_connect(&self->v, self->a.qp, self->b.qp->qp_num));
	ASSERT_EQ(0, vu_qp_connect(&self->v, self->b.qp, self->a.qp->qp_num));
}

FIXTURE_TEARDOWN(atomics)
{
	if (self->a.qp)
		ibv_destroy_qp(self->a.qp);
	if (self->b.qp)
		ibv_destroy_qp(self->b.qp);
	if (self->a.cq)
		ibv_destroy_cq(self->a.cq);
	if (self->b.cq)
		ibv_destroy_cq(self->b.cq);
	if (self->mr)
		ibv_dereg_mr(self->mr);
	vu_dereg_mr(&self->v, self->lmr);
	vu_close(&self->v);
}

enum op { OP_WRITE, OP_FETCH_ADD, OP_CMP_SWP };

/*
 * Post one 8-byte atomic at byte @off of the target page through the
 * extended API and wait for its completion; return its status (-1: none).
 */
static int post(FIXTURE_DATA(atomics) *self, enum op op, size_t off,
		uint64_t val, uint64_t compare)
{
	uint64_t raddr = (uintptr_t)self->buf + off;
	uint32_t rkey = self->mr->rkey;

	ibv_wr_start(self->qpx);
	self->qpx->wr_id = 1;
	self->qpx->wr_flags = IBV_SEND_SIGNALED;
	switch (op) {
	case OP_WRITE:
		ibv_wr_atomic_write(self->qpx, rkey, raddr, &val);
		break;
	case OP_FETCH_ADD:
		ibv_wr_atomic_fetch_add(self->qpx, rkey, raddr, val);
		ibv_wr_set_sge(self->qpx, self->lmr->lkey,
			       (uintptr_t)self->res, 8);
		break;
	case OP_CMP_SWP:
		ibv_wr_atomic_cmp_swp(self->qpx, rkey, raddr, compare, val);
		ibv_wr_set_sge(self->qpx, self->lmr->lkey,
			       (uintptr_t)self->res, 8);
		break;
	}
	if (ibv_wr_complete(self->qpx))
		return -1;
	return tu_reap(&self->v, &self->a);
}

/* The target page holds pattern SEED except @len bytes @want at @off. */
static bool page_is(FIXTURE_DATA(atomics) *self, size_t off,
		    const void *want, size_t len)
{
	uint8_t expect[PAGE];

	tu_fill(expect, PAGE, SEED);
	if (len)
		memcpy(expect + off, want, len);
	return tu_same_bytes("target page", self->buf, expect, PAGE);
}

TEST_F(atomics, aligned_atomic_write_lands)
{
	uint64_t v = 0x1122334455667788ULL;

	TU_ASSERT_OK(post(self, OP_WRITE, 16, v, 0));
	ASSERT_TRUE(page_is(self, 16, &v, 8));
}

TEST_F(atomics, aligned_fetch_add_and_cmp_swp_land)
{
	uint64_t old, v;

	memcpy(&old, self->buf + 24, 8);
	TU_ASSERT_OK(post(self, OP_FETCH_ADD, 24, 5, 0));
	ASSERT_EQ(old, *self->res);
	v = old + 5;
	ASSERT_TRUE(page_is(self, 24, &v, 8));
	TU_ASSERT_OK(post(self, OP_CMP_SWP, 24, 77, v));
	ASSERT_EQ(v, *self->res);
	v = 77;
	ASSERT_TRUE(page_is(self, 24, &v, 8));
}

TEST_F(atomics, misaligned_atomic_write_refused)
{
	TU_ASSERT_WC(IBV_WC_REM_INV_REQ_ERR, post(self, OP_WRITE, 20, 1, 0));
	ASSERT_TRUE(page_is(self, 0, NULL, 0));
}

TEST_F(atomics, misaligned_fetch_add_refused)
{
	TU_ASSERT_WC(IBV_WC_REM_INV_REQ_ERR,
		     post(self, OP_FETCH_ADD, 4, 1, 0));
	ASSERT_TRUE(page_is(self, 0, NULL, 0));
}

TEST_F(atomics, misaligned_cmp_swp_refused)
{
	uint64_t cur;

	memcpy(&cur, self->buf + 33, 8);
	TU_ASSERT_WC(IBV_WC_REM_INV_REQ_ERR,
		     post(self, OP_CMP_SWP, 33, 1, cur));
	ASSERT_TRUE(page_is(self, 0, NULL, 0));
}

/*
 * MADV_FREE, then an ATOMIC_WRITE into the target page, then
 * MADV_PAGEOUT: the page keeps every byte. A page that nobody writes
 * after MADV_FREE is the control: it reads zeros (reclaim really
 * discards clean lazy-free pages).
 */
TEST_F(atomics, atomic_write_survives_lazyfree_pageout)
{
	uint64_t v = 0x8877665544332211ULL;
	uint8_t *ctl;

	ASSERT_LE(0, tu_pin_cpu());
	/*
	 * The target page afresh, faulted on this CPU, as the control page:
	 * both are on the LRU list when MADV_FREE runs (tu_pin_cpu()).
	 */
	ASSERT_EQ(0, madvise(self->buf, PAGE, MADV_DONTNEED));
	tu_fill(self->buf, PAGE, SEED);
	ctl = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, ctl);
	tu_fill(ctl, PAGE, SEED);
	ASSERT_EQ(0, madvise(self->buf, PAGE, MADV_FREE));
	ASSERT_EQ(0, madvise(ctl, PAGE, MADV_FREE));

	TU_ASSERT_OK(post(self, OP_WRITE, 40, v, 0));
	ASSERT_TRUE(page_is(self, 40, &v, 8));

	ASSERT_EQ(0, madvise(ctl, PAGE, MADV_PAGEOUT));
	ASSERT_EQ(0, madvise(self->buf, PAGE, MADV_PAGEOUT));
	TU_ASSERT_DISCARDED(ctl, PAGE);
	munmap(ctl, PAGE);
	ASSERT_TRUE(page_is(self, 40, &v, 8));
}

TEST_HARNESS_MAIN
