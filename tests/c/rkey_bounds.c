// SPDX-License-Identifier: GPL-2.0
/*
 * rkey_bounds - a remote key reaches its range and nothing else, however
 * the peer's address and length wrap past 2^64 (reliability.md §8 #19,
 * #24; issue 12: the u64 iova-overflow family reported against rxe's MR,
 * responder and memory-window paths).
 *
 * A loopback RC QP pair; QP a is the peer, QP b the responder whose MR
 * (4 pages, pinned or ODP) holds a tagged pattern, with a shadow copy of
 * what it must hold. Every access that must be refused ends with
 * IBV_WC_REM_ACCESS_ERR (the QPs are then reconnected); every one that
 * is allowed moves exact bytes; after each, the whole MR equals the
 * shadow: nothing was written where it must not be.
 *
 *  - mr_edges: through the MR's rkey, WRITE, READ and fetch-add at the
 *    MR's first and last bytes, then across each end, at va 2^64 - 8
 *    (va + length wraps), and READs of 64 KiB from the MR's start;
 *  - mw_window (type 1 and type 2 windows): a window of 2 KiB in the
 *    middle of the MR's second page. Accesses at its first and last
 *    bytes work; one byte before, across its end, elsewhere in the MR,
 *    and at va 2^64 - 8 are refused. rxe before our patch 0009 checked
 *    only the MR's range, so a peer given a 2 KiB window reached all
 *    16 KiB of the MR (this test fails on Debian's stock rxe);
 *  - mw_zero_based (type 2, IBV_ACCESS_ZERO_BASED): the same at offsets
 *    0 .. 2 KiB, and at offsets that wrap;
 *  - mw_bind_wrap (type 1 and 2): binding a VA window that starts at
 *    2^64 - 4 KiB, whose end wraps to 0 and so looked "inside" the MR,
 *    and one past the MR's end, completes with IBV_WC_MW_BIND_ERR.
 *
 * Each case runs once, 200 times under make stress (tu_rounds()).
 *
 * Device: RXE_ODP_DEV (default rxe0), RXE_ODP_GID_IDX (default 1).
 */
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "verbs_util.h"
#include "test_util.h"

#define MR_PAGES	4
#define WIN_OFF		(1 * 4096 + 1024)	/* window: page 1, mid */
#define WIN_LEN		2048
#define ACC_REMOTE	(IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ | \
			 IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_ATOMIC)
#define WRAP_VA		(UINT64_MAX - 7)	/* va + 16 wraps to 8 */
#define LONG_READ	(64U << 10)	/* 4 times the MR */

FIXTURE(bounds) {
	struct vu_config	cfg;
	struct vu_ctx		v;
	struct vu_qp_pair	p;
	size_t			size;
	uint8_t			*mem;		/* the responder's MR */
	uint8_t			*shadow;	/* what @mem must hold */
	struct ibv_mr		*mr;
	uint8_t			*local;		/* the peer's buffer */
	size_t			local_size;
	struct ibv_mr		*lmr;
	struct ibv_mw		*mw;
};

FIXTURE_VARIANT(bounds) {
	unsigned int	odp;		/* 0 or IBV_ACCESS_ON_DEMAND */
};

FIXTURE_VARIANT_ADD(bounds, pinned) { .odp = 0 };
FIXTURE_VARIANT_ADD(bounds, odp) { .odp = IBV_ACCESS_ON_DEMAND };

FIXTURE_SETUP(bounds)
{
	struct ibv_device_attr_ex ax;
	size_t i;

	TU_OPEN_QUERY(&self->cfg, &self->v, &ax);
	if (variant->odp)
		TU_REQUIRE_CAP(ax.odp_caps.general_caps & IBV_ODP_SUPPORT,
			       "no ODP support");
	ASSERT_EQ(0, vu_qp_pair_create(&self->v, &self->p));

	self->size = MR_PAGES * 4096;
	self->mem = mmap(NULL, self->size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->mem);
	self->shadow = malloc(self->size);
	ASSERT_NE(NULL, self->shadow);
	/* tagged: each 8 bytes hold their own offset, and a marker */
	for (i = 0; i < self->size; i += 8) {
		uint64_t tag = 0xb0b0000000000000ULL | i;

		memcpy(self->shadow + i, &tag, 8);
	}
	memcpy(self->mem, self->shadow, self->size);
	self->mr = vu_reg_mr(&self->v, self->mem, self->size,
			     ACC_REMOTE | IBV_ACCESS_MW_BIND | variant->odp);
	ASSERT_NE(NULL, self->mr) TH_LOG("reg_mr: %s", strerror(errno));

	/* the peer's buffer is large enough for the long READ's SGE */
	self->local_size = LONG_READ;
	self->local = mmap(NULL, self->local_size, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->local);
	self->lmr = vu_reg_mr(&self->v, self->local, self->local_size,
			      IBV_ACCESS_LOCAL_WRITE);
	ASSERT_NE(NULL, self->lmr) TH_LOG("reg_mr: %s", strerror(errno));
}

FIXTURE_TEARDOWN(bounds)
{
	if (self->mw)
		EXPECT_EQ(0, ibv_dealloc_mw(self->mw));
	EXPECT_EQ(0, vu_dereg_mr(&self->v, self->lmr));
	EXPECT_EQ(0, vu_dereg_mr(&self->v, self->mr));
	if (self->local)
		munmap(self->local, self->local_size);
	if (self->mem)
		munmap(self->mem, self->size);
	free(self->shadow);
	EXPECT_EQ(0, vu_qp_pair_destroy(&self->v, &self->p));
	EXPECT_EQ(0, vu_close(&self->v));
	if (variant->odp)
		EXPECT_TRUE(tu_live_back("umems", 0, 10000));
}

/*
 * After a refused access (@peer_too: both QPs must have gone to the error
 * state, as IBA class C errors take requester and responder there) or a
 * failed bind (QP b only), bring both QPs back to RTS, their PSNs in step.
 */
static int reconnect(FIXTURE_DATA(bounds) *self, bool peer_too)
{
	int ret = 0;

	if (peer_too)
		ret = vu_wait_qp_state(&self->v, self->p.a.qp, IBV_QPS_ERR);
	ret = ret ?: vu_wait_qp_state(&self->v, self->p.b.qp, IBV_QPS_ERR);
	ret = ret ?: tu_qp_reconnect(&self->v, self->p.a.qp,
				     self->p.b.qp->qp_num, TU_RNR_RETRY, 14);
	return ret ?: tu_qp_reconnect(&self->v, self->p.b.qp,
				      self->p.a.qp->qp_num, TU_RNR_RETRY, 14);
}

/* The iova of @off bytes into the responder's MR. */
static uint64_t at(FIXTURE_DATA(bounds) *self, size_t off)
{
	return (uintptr_t)self->mem + off;
}

enum acc { ACC_WRITE, ACC_READ, ACC_FADD, ACC_NR };
static const char *const acc_name[ACC_NR] = { "WRITE", "READ", "FADD" };

#define REFUSED		(-1L)

/*
 * One access by the peer, @len bytes (8 for FADD) at @va with @rkey,
 * which lands at offset @off of the responder's MR or must be refused
 * (@off REFUSED): then it must end with IBV_WC_REM_ACCESS_ERR (the QPs
 * are reconnected), else succeed. A WRITE sends a fresh pattern, which
 * the shadow learns; a READ or FADD must return what the shadow holds.
 * Either way the whole MR must then equal the shadow.
 */
static void expect_access(struct __test_metadata *_metadata,
			  FIXTURE_DATA(bounds) *self, enum acc op,
			  uint64_t va, uint32_t len, uint32_t rkey, long off)
{
	int want = off == REFUSED ? IBV_WC_REM_ACCESS_ERR : IBV_WC_SUCCESS;
	static unsigned int seed = 1;
	uint64_t old;
	int st;

	memset(self->local, TU_POISON, 16);
	switch (op) {
	case ACC_WRITE:
		tu_fill(self->local, len, ++seed);
		st = tu_xfer(&self->v, &self->p.a, IBV_WR_RDMA_WRITE,
			     self->local, len, self->lmr->lkey, va, rkey);
		break;
	case ACC_READ:
		st = tu_xfer(&self->v, &self->p.a, IBV_WR_RDMA_READ,
			     self->local, len, self->lmr->lkey, va, rkey);
		break;
	default:
		st = tu_atomic(&self->v, &self->p.a,
			       IBV_WR_ATOMIC_FETCH_AND_ADD,
			       (uint64_t *)self->local, self->lmr->lkey, va,
			       rkey, 3, 0);
		break;
	}
	EXPECT_EQ(want, st)
		TH_LOG("%s va %#llx len %u rkey %#x: %s, want %s",
		       acc_name[op], (unsigned long long)va, len, rkey,
		       st < 0 ? "no completion" :
		       ibv_wc_status_str((enum ibv_wc_status)st),
		       ibv_wc_status_str((enum ibv_wc_status)want));
	if (st == IBV_WC_SUCCESS && off != REFUSED) {
		if (op == ACC_WRITE) {
			memcpy(self->shadow + off, self->local, len);
		} else if (op == ACC_READ) {
			EXPECT_TRUE(tu_same_bytes("READ", self->local,
						  self->shadow + off, len));
		} else {
			memcpy(&old, self->shadow + off, 8);
			EXPECT_EQ(0, memcmp(self->local, &old, 8));
			old += 3;
			memcpy(self->shadow + off, &old, 8);
		}
	}
	if (st != IBV_WC_SUCCESS)
		ASSERT_EQ(0, reconnect(self, true));
	ASSERT_TRUE(tu_same_bytes("responder's MR", self->mem, self->shadow,
				  self->size))
		TH_LOG("after %s va %#llx len %u", acc_name[op],
		       (unsigned long long)va, len);
}

/*
 * Each access kind at both ends of a range that the peer addresses as
 * [@first, @end) and that lies at offset @off of the MR, and around it.
 */
static void expect_range(struct __test_metadata *_metadata,
			 FIXTURE_DATA(bounds) *self, uint64_t first,
			 uint64_t end, uint32_t rkey, long off)
{
	long size = (long)(end - first);
	int op;

	for (op = 0; op < ACC_NR; op++) {
		uint32_t len = op == ACC_FADD ? 8 : 16;

		expect_access(_metadata, self, op, first, len, rkey, off);
		expect_access(_metadata, self, op, end - len, len, rkey,
			      off + size - len);
		expect_access(_metadata, self, op, first - 8, len, rkey,
			      REFUSED);
		/* across the end (an atomic's 8 bytes cannot: just past) */
		expect_access(_metadata, self, op,
			      op == ACC_FADD ? end : end - 8, 16, rkey,
			      REFUSED);
		expect_access(_metadata, self, op, WRAP_VA, 16, rkey, REFUSED);
		if (op != ACC_FADD)	/* an atomic must be aligned */
			expect_access(_metadata, self, op, UINT64_MAX - 3, 8,
				      rkey, REFUSED);
	}
	expect_access(_metadata, self, ACC_READ, first, LONG_READ, rkey,
		      REFUSED);
	expect_access(_metadata, self, ACC_READ, end, LONG_READ, rkey,
		      REFUSED);
}

/*
 * Bind a window of @type over [@addr, +@len) of the MR (@access: remote
 * rights, maybe IBV_ACCESS_ZERO_BASED) with QP b, the responder (a type 2
 * window serves only the QP that bound it). Returns the bind's completion
 * status, or -1; the window's rkey is then self->mw->rkey.
 */
static int bind_window(FIXTURE_DATA(bounds) *self, enum ibv_mw_type type,
		       uint64_t addr, uint64_t len, unsigned int access)
{
	struct ibv_mw_bind_info info = {
		.mr = self->mr, .addr = addr, .length = len,
		.mw_access_flags = access,
	};
	struct ibv_send_wr wr = {
		.wr_id = 9, .opcode = IBV_WR_BIND_MW,
		.send_flags = IBV_SEND_SIGNALED,
	};
	struct ibv_mw_bind bind = {
		.wr_id = 9, .send_flags = IBV_SEND_SIGNALED, .bind_info = info,
	};
	struct ibv_send_wr *bad;
	int st;

	if (self->mw)
		ibv_dealloc_mw(self->mw);
	self->mw = ibv_alloc_mw(self->v.pd, type);
	if (!self->mw)
		return -1;
	if (type == IBV_MW_TYPE_1) {
		if (ibv_bind_mw(self->p.b.qp, self->mw, &bind))
			return -1;
		return tu_reap(&self->v, &self->p.b);
	}
	wr.bind_mw.mw = self->mw;
	wr.bind_mw.rkey = ibv_inc_rkey(self->mw->rkey);
	wr.bind_mw.bind_info = info;
	if (ibv_post_send(self->p.b.qp, &wr, &bad))
		return -1;
	st = tu_reap(&self->v, &self->p.b);
	if (st == IBV_WC_SUCCESS)
		self->mw->rkey = wr.bind_mw.rkey;
	return st;
}

#define ACC_WINDOW	(IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_WRITE | \
			 IBV_ACCESS_REMOTE_ATOMIC)

/*
 * A case that runs @call once, or 200 times under make stress
 * (tu_rounds()); an hour at most.
 */
#define BOUNDS_CASE(name, call)						\
	TEST_F_TIMEOUT(bounds, name, 3600)				\
	{								\
		long r;							\
									\
		for (r = 0; r < tu_rounds(1, 200); r++)			\
			call;						\
	}

BOUNDS_CASE(mr_edges,
	    expect_range(_metadata, self, at(self, 0), at(self, self->size),
			 self->mr->rkey, 0))

static void window_case(struct __test_metadata *_metadata,
			FIXTURE_DATA(bounds) *self, enum ibv_mw_type type)
{
	int st = bind_window(self, type, at(self, WIN_OFF), WIN_LEN,
			     ACC_WINDOW);

	ASSERT_EQ(IBV_WC_SUCCESS, st) TH_LOG("bind: %d", st);
	expect_range(_metadata, self, at(self, WIN_OFF),
		     at(self, WIN_OFF + WIN_LEN), self->mw->rkey, WIN_OFF);
	/* elsewhere in the MR, outside the window */
	expect_access(_metadata, self, ACC_WRITE, at(self, 3 * 4096), 16,
		      self->mw->rkey, REFUSED);
	expect_access(_metadata, self, ACC_READ, at(self, 0), 16,
		      self->mw->rkey, REFUSED);
}

BOUNDS_CASE(mw_window_type1, window_case(_metadata, self, IBV_MW_TYPE_1))

BOUNDS_CASE(mw_window_type2, window_case(_metadata, self, IBV_MW_TYPE_2))

static void zero_based_case(struct __test_metadata *_metadata,
			    FIXTURE_DATA(bounds) *self)
{
	int st = bind_window(self, IBV_MW_TYPE_2, at(self, WIN_OFF), WIN_LEN,
			     ACC_WINDOW | IBV_ACCESS_ZERO_BASED);

	ASSERT_EQ(IBV_WC_SUCCESS, st) TH_LOG("zero-based bind: %d", st);
	/* the peer addresses the window by offset: [0, WIN_LEN) */
	expect_range(_metadata, self, 0, WIN_LEN, self->mw->rkey, WIN_OFF);
	/* an iova that would be inside the window were it VA-based */
	expect_access(_metadata, self, ACC_WRITE, at(self, WIN_OFF), 16,
		      self->mw->rkey, REFUSED);
}

BOUNDS_CASE(mw_zero_based, zero_based_case(_metadata, self))

static void bind_wrap_case(struct __test_metadata *_metadata,
			   FIXTURE_DATA(bounds) *self, enum ibv_mw_type type)
{
	int st;

	/* starts below 2^64, ends past it: "inside" once the sum wraps */
	st = bind_window(self, type, UINT64_MAX - 4095, 4096, ACC_WINDOW);
	EXPECT_EQ(IBV_WC_MW_BIND_ERR, st) TH_LOG("wrapping bind: %d", st);
	if (st == IBV_WC_SUCCESS)	/* bound: it must reach nothing */
		expect_access(_metadata, self, ACC_WRITE, UINT64_MAX - 4095,
			      16, self->mw->rkey, REFUSED);
	else
		ASSERT_EQ(0, reconnect(self, false));
	/* past the MR's end */
	st = bind_window(self, type, at(self, 3 * 4096), 2 * 4096, ACC_WINDOW);
	EXPECT_EQ(IBV_WC_MW_BIND_ERR, st) TH_LOG("bind past the MR: %d", st);
	if (st != IBV_WC_SUCCESS)
		ASSERT_EQ(0, reconnect(self, false));
	/* and a good bind works afterwards */
	st = bind_window(self, type, at(self, WIN_OFF), WIN_LEN, ACC_WINDOW);
	ASSERT_EQ(IBV_WC_SUCCESS, st);
	expect_access(_metadata, self, ACC_WRITE, at(self, WIN_OFF), 16,
		      self->mw->rkey, WIN_OFF);
}

BOUNDS_CASE(mw_bind_wrap_type1,
	    bind_wrap_case(_metadata, self, IBV_MW_TYPE_1))

BOUNDS_CASE(mw_bind_wrap_type2,
	    bind_wrap_case(_metadata, self, IBV_MW_TYPE_2))

TEST_HARNESS_MAIN
