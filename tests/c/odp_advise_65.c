// SPDX-License-Identifier: GPL-2.0
/*
 * odp_advise - ibv_advise_mr() on rxe's ODP MRs (issue 6, "Prefetch"):
 * the error table of ibv_advise_mr(3) as rxe implements it, what the
 * three advices map (told by the per-MR page_prefetch and page_faults
 * counters of `rdma -d statistic mr`; a prefetch that begins inside an
 * untouched hugetlb page maps all of it), and asynchronous prefetches
 * that race ibv_dereg_mr(), process exit and SIGKILL.
 *
 * Built against rdma-core 65 (the newer lane; see userspace/Makefile):
 * rdma-core 44's rxe provider has no advise_mr, so there ibv_advise_mr()
 * returns EOPNOTSUPP without reaching the kernel.
 *
 * Error table (errno that ibv_advise_mr() returns; every SGE is checked
 * before any prefetch runs, so these come back for asynchronous advice
 * too):
 *   unknown advice                                   EOPNOTSUPP  (rxe)
 *   unknown flag bits                                EINVAL      (ib_core)
 *   lkey that names no MR, or a stale one             ENOENT
 *   lkey of a pinned (non-ODP) MR                     ENOENT
 *   lkey of an MR of another PD                       ENOENT
 *   PREFETCH_WRITE, MR without IBV_ACCESS_LOCAL_WRITE EPERM
 *   range not inside the MR, or wrapping past 2^64    EFAULT
 *   synchronous prefetch of unmapped memory           EFAULT
 *   synchronous PREFETCH_WRITE of a PROT_READ mapping EPERM
 *   asynchronous, 64 already in flight on an MR      EBUSY
 * A bad lkey gives ENOENT (the man page allows EINVAL or ENOENT).
 * PREFETCH_NO_FAULT of unmapped memory, and any asynchronous prefetch
 * whose SGEs pass the checks, return 0.
 *
 * Device: RXE_ODP_DEV (default rxe0), RXE_ODP_GID_IDX (default 1); skips
 * when the device does not exist or has no RC ODP support.
 *
 * Mutation record (kernel changes built in a scratch copy of the tree and
 * run in the guest; each made the cases named fail):
 *  - rxe_odp_advise_mr(): -EINVAL for unknown advice: unknown_advice.
 *  - prepare: -EINVAL for an lkey naming no ODP MR: bad_lkey,
 *    pinned_mr_lkey, other_pd_lkey.
 *  - prepare: no PREFETCH_WRITE/LOCAL_WRITE check (async 0):
 *    prefetch_write_without_local_write.
 *  - prepare: the SGE address used as user address, unchecked:
 *    range_outside_mr, range_wraps_at_top_iova.
 *  - a synchronous prefetch returns 0 whatever happened:
 *    sync_prefetch_of_hole, sync_prefetch_write_of_prot_read.
 *  - PREFETCH_NO_FAULT faults: no_fault_maps_only_present,
 *    sync_prefetch_of_hole.
 *  - prefetched pages counted as page_faults: the four counter cases.
 *  - a prefetch ignores its MR's dereg (rxe_odp_mr_valid() always true):
 *    async_prefetch_races_dereg_and_exit (every dereg waited for all
 *    64 MiB).
 *  - a fault that begins inside an untouched hugetlb page requests
 *    nothing of it (main before d6cf146):
 *    sync_prefetch_write_mid_untouched_hugetlb (the prefetch returns 0
 *    and maps nothing: page_prefetch 0).
 * unknown_flags checks ib_core, not rxe; expecting 0 there fails it.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "verbs_util.h"
#include "test_util.h"

#define NPAGES		16
#define RW		(PROT_READ | PROT_WRITE)
#define ACC_ODP		(IBV_ACCESS_ON_DEMAND | IBV_ACCESS_LOCAL_WRITE | \
			 IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ)

#define PREFETCH	IBV_ADVISE_MR_ADVICE_PREFETCH
#define PREFETCH_WRITE	IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE
#define NO_FAULT	IBV_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT
#define SYNC		IBV_ADVISE_MR_FLAG_FLUSH
#define ASYNC		0

/* The race test: MR size, iterations of each way to end, bounds. */
#define RACE_LEN		(64UL << 20)
#define RACE_DEREG		40
#define RACE_EXIT		35
#define RACE_KILL		35
#define RACE_SYNC_KILL		10
#define RACE_CHILD_MS		tu_ms(30000)	/* a child taking longer hung */
#define RACE_LIVE_MS		tu_ms(5000)	/* live counts must reach 0 by then */

FIXTURE(advise) {
	struct vu_config	cfg;
	struct vu_ctx		v;
	struct vu_qp_pair	qps;
	size_t			pg, size;
	uint8_t			*buf;		/* NPAGES, the ODP MR */
	uint8_t			*src, *dst;	/* NPAGES each, pinned */
	struct ibv_mr		*mr, *smr, *dmr;
	/* per-case extras, released at teardown */
	struct ibv_pd		*pd2;
	struct ibv_mr		*xmr[2];
	void			*xmap;
	size_t			xmap_size;
	long			nr_saved;	/* -1: nr_hugepages kept */
};

static void *map_rw(size_t size)
{
	void *p = mmap(NULL, size, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

FIXTURE_SETUP(advise)
{
	const uint32_t need = IBV_ODP_SUPPORT_WRITE | IBV_ODP_SUPPORT_READ;
	struct ibv_device_attr_ex ax;

	self->nr_saved = -1;
	self->pg = (size_t)sysconf(_SC_PAGESIZE);
	self->size = NPAGES * self->pg;
	TU_OPEN_QUERY(&self->cfg, &self->v, &ax);
	TU_REQUIRE_CAP((ax.odp_caps.general_caps & IBV_ODP_SUPPORT) &&
		       (ax.odp_caps.per_transport_caps.rc_odp_caps & need) ==
		       need, "%s has no RC ODP WRITE/READ support",
		       self->cfg.dev_name);
	ASSERT_EQ(0, vu_qp_pair_create(&self->v, &self->qps));

	self->buf = map_rw(self->size);
	self->src = map_rw(self->size);
	self->dst = map_rw(self->size);
	ASSERT_NE(NULL, self->buf);
	ASSERT_NE(NULL, self->src);
	ASSERT_NE(NULL, self->dst);
	self->mr = vu_reg_mr(&self->v, self->buf, self->size, ACC_ODP);
	ASSERT_NE(NULL, self->mr);
	self->smr = vu_reg_mr(&self->v, self->src, self->size,
			      IBV_ACCESS_LOCAL_WRITE);
	ASSERT_NE(NULL, self->smr);
	self->dmr = vu_reg_mr(&self->v, self->dst, self->size,
			      IBV_ACCESS_LOCAL_WRITE);
	ASSERT_NE(NULL, self->dmr);
}

FIXTURE_TEARDOWN(advise)
{
	int i;

	EXPECT_EQ(0, vu_qp_pair_destroy(&self->v, &self->qps));
	for (i = 0; i < 2; i++)
		EXPECT_EQ(0, vu_dereg_mr(&self->v, self->xmr[i]));
	EXPECT_EQ(0, vu_dereg_mr(&self->v, self->mr));
	EXPECT_EQ(0, vu_dereg_mr(&self->v, self->smr));
	EXPECT_EQ(0, vu_dereg_mr(&self->v, self->dmr));
	if (self->pd2)
		EXPECT_EQ(0, ibv_dealloc_pd(self->pd2));
	if (self->xmap)
		munmap(self->xmap, self->xmap_size);
	if (self->buf)
		munmap(self->buf, self->size);
	if (self->src)
		munmap(self->src, self->size);
	if (self->dst)
		munmap(self->dst, self->size);
	EXPECT_EQ(0, vu_close(&self->v));
	if (self->nr_saved >= 0)
		EXPECT_EQ(0, tu_write_long("/proc/sys/vm/nr_hugepages",
					   self->nr_saved));
}

static const char *advice_name(int advice)
{
	switch (advice) {
	case PREFETCH:
		return "PREFETCH";
	case PREFETCH_WRITE:
		return "PREFETCH_WRITE";
	case NO_FAULT:
		return "PREFETCH_NO_FAULT";
	default:
		return "unknown advice";
	}
}

/* ibv_advise_mr() of one SGE; returns 0 or a positive errno. */
static int advise1(struct ibv_pd *pd, int advice, uint32_t flags,
		   uint32_t lkey, uint64_t addr, uint32_t len)
{
	struct ibv_sge sge = { .addr = addr, .length = len, .lkey = lkey };

	return ibv_advise_mr(pd, (enum ibv_advise_mr_advice)advice, flags,
			     &sge, 1);
}

/* ibv_advise_mr() of one SGE must return @want (0 or an errno). */
#define ASSERT_ADVISE(want, pd, advice, flags, lkey, addr, len) do {	\
	int __want = (want), __adv = (advice);				\
	uint32_t __fl = (flags);					\
	uint64_t __a = (addr);						\
	uint32_t __l = (len);						\
	int __got = advise1((pd), __adv, __fl, (lkey), __a, __l);	\
	ASSERT_EQ(__want, __got)					\
		TH_LOG("%s (%d) %s of [0x%" PRIx64 ", +%u): %s (%d), want %s", \
		       advice_name(__adv), __adv,			\
		       __fl & SYNC ? "sync" : "async", __a, __l,	\
		       strerror(__got), __got, strerror(__want));	\
} while (0)

/* Both the synchronous and the asynchronous form return @want. */
#define ASSERT_ADVISE_BOTH(want, pd, advice, lkey, addr, len) do {	\
	ASSERT_ADVISE(want, pd, advice, SYNC, lkey, addr, len);		\
	ASSERT_ADVISE(want, pd, advice, ASYNC, lkey, addr, len);	\
} while (0)

static long long mr_counter(struct ibv_mr *mr, const char *name)
{
	return tu_mr_counter(mr->rkey, name);
}

/* The MR's per-MR counter @name must read @want. */
#define ASSERT_COUNTER(want, mr, name) do {				\
	long long __c = mr_counter((mr), (name));			\
	ASSERT_NE(-1, __c) TH_LOG("no per-MR counter %s", (name));	\
	ASSERT_EQ((long long)(want), __c) TH_LOG("per-MR %s", (name)); \
} while (0)

/*
 * Post one RDMA WRITE (from src) or READ (into dst) of @len bytes at
 * @off of the ODP MR on QP a; it must succeed.
 */
static int remote(FIXTURE_DATA(advise) *self, enum ibv_wr_opcode op,
		  size_t off, uint32_t len)
{
	bool wr = op == IBV_WR_RDMA_WRITE;
	int ret;

	ret = vu_post_send(&self->v, &self->qps.a, op, 1,
			   wr ? self->src : self->dst, len,
			   wr ? self->smr->lkey : self->dmr->lkey,
			   (uintptr_t)self->buf + off, self->mr->rkey);
	return ret ? ret : vu_wait_ok(&self->v, &self->qps.a, 1,
				      wr ? IBV_WC_RDMA_WRITE :
					   IBV_WC_RDMA_READ);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the error table ------------------------------------------------- */

/* Advice values rxe does not know: EOPNOTSUPP, sync or async. */
TEST_F(advise, unknown_advice)
{
	uint64_t a = (uintptr_t)self->buf;
	uint32_t lkey = self->mr->lkey, n = self->size;

	ASSERT_ADVISE_BOTH(EOPNOTSUPP, self->v.pd, NO_FAULT + 1, lkey, a, n);
	ASSERT_ADVISE_BOTH(EOPNOTSUPP, self->v.pd, 100, lkey, a, n);
	ASSERT_COUNTER(0, self->mr, "page_prefetch");
	/* the same SGE with known advice works */
	ASSERT_ADVISE(0, self->v.pd, PREFETCH, SYNC, lkey, a, n);
	ASSERT_COUNTER(NPAGES, self->mr, "page_prefetch");
}

/* Flag bits other than IBV_ADVISE_MR_FLAG_FLUSH: EINVAL (ib_core). */
TEST_F(advise, unknown_flags)
{
	ASSERT_ADVISE(EINVAL, self->v.pd, PREFETCH, SYNC | 2, self->mr->lkey,
		      (uintptr_t)self->buf, self->size);
	ASSERT_ADVISE(EINVAL, self->v.pd, PREFETCH, 1u << 31, self->mr->lkey,
		      (uintptr_t)self->buf, self->size);
	ASSERT_COUNTER(0, self->mr, "page_prefetch");
}

/* An lkey with a wrong key byte, and the lkey of a deregistered MR. */
TEST_F(advise, bad_lkey)
{
	uint64_t a = (uintptr_t)self->buf;
	uint32_t n = self->size, stale;
	struct ibv_mr *gone;
	int advice;

	gone = vu_reg_mr(&self->v, self->buf, self->size, ACC_ODP);
	ASSERT_NE(NULL, gone);
	stale = gone->lkey;
	ASSERT_EQ(0, vu_dereg_mr(&self->v, gone));

	for (advice = PREFETCH; advice <= NO_FAULT; advice++) {
		ASSERT_ADVISE_BOTH(ENOENT, self->v.pd, advice,
				   self->mr->lkey ^ 0x5a, a, n);
		ASSERT_ADVISE_BOTH(ENOENT, self->v.pd, advice, stale, a, n);
		ASSERT_ADVISE_BOTH(ENOENT, self->v.pd, advice, 0xffffff00,
				   a, n);
	}
	ASSERT_COUNTER(0, self->mr, "page_prefetch");
}

/* A pinned MR has nothing to prefetch: its lkey names no ODP MR. */
TEST_F(advise, pinned_mr_lkey)
{
	int advice;

	for (advice = PREFETCH; advice <= NO_FAULT; advice++)
		ASSERT_ADVISE_BOTH(ENOENT, self->v.pd, advice,
				   self->smr->lkey, (uintptr_t)self->src,
				   self->size);
}

/* The lkey of an ODP MR of another PD (both ways round). */
TEST_F(advise, other_pd_lkey)
{
	struct ibv_mr *mr2;
	int advice;

	self->pd2 = ibv_alloc_pd(self->v.ctx);
	ASSERT_NE(NULL, self->pd2);
	mr2 = ibv_reg_mr(self->pd2, self->buf, self->size, ACC_ODP);
	ASSERT_NE(NULL, mr2) TH_LOG("ibv_reg_mr(pd2): %s", strerror(errno));
	self->xmr[0] = mr2;

	for (advice = PREFETCH; advice <= NO_FAULT; advice++) {
		ASSERT_ADVISE_BOTH(ENOENT, self->v.pd, advice, mr2->lkey,
				   (uintptr_t)self->buf, self->size);
		ASSERT_ADVISE_BOTH(ENOENT, self->pd2, advice, self->mr->lkey,
				   (uintptr_t)self->buf, self->size);
	}
	ASSERT_COUNTER(0, self->mr, "page_prefetch");
	ASSERT_COUNTER(0, mr2, "page_prefetch");
	/* each with its own PD works */
	ASSERT_ADVISE(0, self->pd2, PREFETCH_WRITE, SYNC, mr2->lkey,
		      (uintptr_t)self->buf, self->size);
	ASSERT_COUNTER(NPAGES, mr2, "page_prefetch");
}

/* PREFETCH_WRITE needs IBV_ACCESS_LOCAL_WRITE; the other advice does not. */
TEST_F(advise, prefetch_write_without_local_write)
{
	struct ibv_mr *ro;
	uint64_t a = (uintptr_t)self->buf;
	uint32_t n = self->size;

	ro = vu_reg_mr(&self->v, self->buf, self->size,
		       IBV_ACCESS_ON_DEMAND | IBV_ACCESS_REMOTE_READ);
	ASSERT_NE(NULL, ro);
	self->xmr[0] = ro;

	ASSERT_ADVISE_BOTH(EPERM, self->v.pd, PREFETCH_WRITE, ro->lkey, a, n);
	ASSERT_COUNTER(0, ro, "page_prefetch");
	ASSERT_ADVISE(0, self->v.pd, NO_FAULT, SYNC, ro->lkey, a, n);
	ASSERT_ADVISE(0, self->v.pd, PREFETCH, SYNC, ro->lkey, a, n);
	ASSERT_COUNTER(NPAGES, ro, "page_prefetch");
}

/* Ranges that start or end outside the MR, or wrap past 2^64: EFAULT. */
TEST_F(advise, range_outside_mr)
{
	uint64_t a = (uintptr_t)self->buf, end = a + self->size;
	uint32_t lkey = self->mr->lkey, pg = self->pg;
	int advice;

	for (advice = PREFETCH; advice <= NO_FAULT; advice++) {
		ASSERT_ADVISE_BOTH(EFAULT, self->v.pd, advice, lkey, a - pg,
				   pg);
		ASSERT_ADVISE_BOTH(EFAULT, self->v.pd, advice, lkey, a - 1, 2);
		ASSERT_ADVISE_BOTH(EFAULT, self->v.pd, advice, lkey, a,
				   self->size + 1);
		ASSERT_ADVISE_BOTH(EFAULT, self->v.pd, advice, lkey, end - 1,
				   2);
		ASSERT_ADVISE_BOTH(EFAULT, self->v.pd, advice, lkey, end, 1);
		ASSERT_ADVISE_BOTH(EFAULT, self->v.pd, advice, lkey,
				   UINT64_MAX - 7, 16);
		ASSERT_ADVISE_BOTH(EFAULT, self->v.pd, advice, lkey,
				   end - 8, UINT32_MAX);
	}
	ASSERT_COUNTER(0, self->mr, "page_prefetch");
	/* the edges themselves are in range */
	ASSERT_ADVISE(0, self->v.pd, PREFETCH, SYNC, lkey, end - 1, 1);
	ASSERT_ADVISE(0, self->v.pd, PREFETCH, SYNC, lkey, a, 1);
	ASSERT_COUNTER(2, self->mr, "page_prefetch");
}

/*
 * An MR whose iova range ends a page below 2^64: a prefetch by its iova
 * maps the right pages; one that runs past its end wraps and is EFAULT.
 */
TEST_F(advise, range_wraps_at_top_iova)
{
	size_t pg = self->pg, len = 2 * pg;
	uint64_t iova = (UINT64_MAX & ~(uint64_t)(pg - 1)) - 3 * pg;
	struct ibv_mr *top;
	int advice;

	top = ibv_reg_mr_iova(self->v.pd, self->buf, len, iova, ACC_ODP);
	ASSERT_NE(NULL, top) TH_LOG("ibv_reg_mr_iova(0x%" PRIx64 "): %s",
				    iova, strerror(errno));
	self->xmr[0] = top;

	for (advice = PREFETCH; advice <= NO_FAULT; advice++) {
		ASSERT_ADVISE_BOTH(EFAULT, self->v.pd, advice, top->lkey,
				   iova + len - 8, 3 * pg);
		ASSERT_ADVISE_BOTH(EFAULT, self->v.pd, advice, top->lkey,
				   UINT64_MAX - 7, 16);
		ASSERT_ADVISE_BOTH(EFAULT, self->v.pd, advice, top->lkey,
				   iova + len, 1);
		/* the user address is no iova of this MR */
		ASSERT_ADVISE_BOTH(EFAULT, self->v.pd, advice, top->lkey,
				   (uintptr_t)self->buf, pg);
	}
	ASSERT_COUNTER(0, top, "page_prefetch");
	ASSERT_ADVISE(0, self->v.pd, PREFETCH_WRITE, SYNC, top->lkey, iova,
		      len);
	ASSERT_COUNTER(2, top, "page_prefetch");
}

/*
 * A munmap'ed hole inside the MR: a synchronous prefetch that touches it
 * fails with EFAULT; PREFETCH_NO_FAULT and asynchronous advice are not
 * errors; the pages before the hole prefetch fine.
 */
TEST_F(advise, sync_prefetch_of_hole)
{
	size_t pg = self->pg, n = 4 * pg;
	uint8_t *m;
	uint64_t a;
	uint32_t lkey;

	m = map_rw(n);
	ASSERT_NE(NULL, m);
	self->xmap = m;
	self->xmap_size = n;
	self->xmr[0] = vu_reg_mr(&self->v, m, n, ACC_ODP);
	ASSERT_NE(NULL, self->xmr[0]);
	lkey = self->xmr[0]->lkey;
	a = (uintptr_t)m;
	ASSERT_EQ(0, munmap(m + 2 * pg, pg));

	ASSERT_ADVISE(EFAULT, self->v.pd, PREFETCH, SYNC, lkey, a, n);
	ASSERT_ADVISE(EFAULT, self->v.pd, PREFETCH_WRITE, SYNC, lkey, a, n);
	ASSERT_ADVISE(EFAULT, self->v.pd, PREFETCH, SYNC, lkey, a + 2 * pg,
		      1);
	ASSERT_ADVISE(EFAULT, self->v.pd, PREFETCH_WRITE, SYNC, lkey,
		      a + 2 * pg + 100, 8);
	ASSERT_ADVISE(0, self->v.pd, NO_FAULT, SYNC, lkey, a, n);
	ASSERT_ADVISE(0, self->v.pd, PREFETCH, ASYNC, lkey, a, n);
	ASSERT_ADVISE(0, self->v.pd, PREFETCH_WRITE, SYNC, lkey, a, 2 * pg);
}

/* A synchronous PREFETCH_WRITE of a PROT_READ mapping: EPERM. */
TEST_F(advise, sync_prefetch_write_of_prot_read)
{
	size_t n = 2 * self->pg;
	uint8_t *m;

	m = map_rw(n);
	ASSERT_NE(NULL, m);
	self->xmap = m;
	self->xmap_size = n;
	memset(m, 0x11, n);
	ASSERT_EQ(0, mprotect(m, n, PROT_READ));
	self->xmr[0] = vu_reg_mr(&self->v, m, n, ACC_ODP);
	ASSERT_NE(NULL, self->xmr[0]);

	ASSERT_ADVISE(EPERM, self->v.pd, PREFETCH_WRITE, SYNC,
		      self->xmr[0]->lkey, (uintptr_t)m, n);
	ASSERT_ADVISE(0, self->v.pd, PREFETCH, SYNC, self->xmr[0]->lkey,
		      (uintptr_t)m, n);
	ASSERT_COUNTER(2, self->xmr[0], "page_prefetch");
}

/* ---- what the advice maps -------------------------------------------- */

/*
 * PREFETCH_NO_FAULT records only the pages the CPU has mapped (the first
 * half, written): page_prefetch counts them, nothing faults; a remote
 * READ of the whole MR then faults exactly the untouched half.
 */
TEST_F(advise, no_fault_maps_only_present)
{
	size_t half = self->size / 2;

	tu_fill(self->buf, half, 1);
	ASSERT_ADVISE(0, self->v.pd, NO_FAULT, SYNC, self->mr->lkey,
		      (uintptr_t)self->buf, self->size);
	ASSERT_COUNTER(NPAGES / 2, self->mr, "page_prefetch");
	ASSERT_COUNTER(0, self->mr, "page_faults");

	memset(self->dst, TU_POISON, self->size);
	ASSERT_EQ(0, remote(self, IBV_WR_RDMA_READ, 0, self->size));
	ASSERT_TRUE(tu_pattern_bytes("READ of the touched half", self->dst,
				     1, half));
	ASSERT_TRUE(tu_all_bytes("READ of the untouched half",
				 self->dst + half, 0, half));
	ASSERT_COUNTER(NPAGES / 2, self->mr, "page_faults");
	ASSERT_COUNTER(NPAGES / 2, self->mr, "page_prefetch");
}

/*
 * A synchronous PREFETCH_WRITE of N untouched pages counts N
 * page_prefetch; a remote WRITE of them then faults nothing, and lands.
 */
TEST_F(advise, sync_prefetch_write_then_write_faults_nothing)
{
	ASSERT_ADVISE(0, self->v.pd, PREFETCH_WRITE, SYNC, self->mr->lkey,
		      (uintptr_t)self->buf, self->size);
	ASSERT_COUNTER(NPAGES, self->mr, "page_prefetch");
	ASSERT_COUNTER(0, self->mr, "page_faults");

	tu_fill(self->src, self->size, 2);
	ASSERT_EQ(0, remote(self, IBV_WR_RDMA_WRITE, 0, self->size));
	ASSERT_COUNTER(0, self->mr, "page_faults");
	ASSERT_TRUE(tu_pattern_bytes("ODP MR after the WRITE", self->buf, 2,
				     self->size));
}

/*
 * A synchronous PREFETCH of N pages the CPU wrote counts N page_prefetch;
 * a remote READ of them faults nothing and brings their bytes.
 */
TEST_F(advise, sync_prefetch_then_read_faults_nothing)
{
	tu_fill(self->buf, self->size, 3);
	ASSERT_ADVISE(0, self->v.pd, PREFETCH, SYNC, self->mr->lkey,
		      (uintptr_t)self->buf, self->size);
	ASSERT_COUNTER(NPAGES, self->mr, "page_prefetch");

	memset(self->dst, TU_POISON, self->size);
	ASSERT_EQ(0, remote(self, IBV_WR_RDMA_READ, 0, self->size));
	ASSERT_TRUE(tu_pattern_bytes("READ after PREFETCH", self->dst, 3,
				     self->size));
	ASSERT_COUNTER(0, self->mr, "page_faults");
}

/*
 * An asynchronous PREFETCH_WRITE returns at once and maps the pages in
 * the background (page_prefetch reaches N within 10 s); a remote WRITE
 * then faults nothing.
 */
TEST_F(advise, async_prefetch_write_maps_in_background)
{
	uint64_t deadline = now_ms() + tu_ms(10000);
	long long c;

	ASSERT_ADVISE(0, self->v.pd, PREFETCH_WRITE, ASYNC, self->mr->lkey,
		      (uintptr_t)self->buf, self->size);
	while ((c = mr_counter(self->mr, "page_prefetch")) < NPAGES &&
	       now_ms() < deadline)
		usleep(20000);
	ASSERT_EQ(NPAGES, c);

	tu_fill(self->src, self->size, 4);
	ASSERT_EQ(0, remote(self, IBV_WR_RDMA_WRITE, 0, self->size));
	ASSERT_COUNTER(0, self->mr, "page_faults");
	ASSERT_TRUE(tu_pattern_bytes("ODP MR after the WRITE", self->buf, 4,
				     self->size));
}

/*
 * Asynchronous prefetches are bounded per MR: rxe queues at most 64 in
 * flight on one MR and answers more with EBUSY, so a process cannot pile
 * up work (and kernel memory) without end. 1000 back-to-back async
 * PREFETCH_WRITEs of a 64 MiB range: the first 64 are always taken, and
 * some later ones must be refused while the first still fault. Dereg
 * then stops those in flight (teardown) and the live counts return to
 * zero (odp_counters checks those after every binary).
 */
TEST_F_TIMEOUT(advise, async_prefetch_backlog_is_bounded, 300)
{
	const size_t len = 64UL << 20;
	int i, ret, accepted = 0, busy = 0;

	self->xmap = mmap(NULL, len, RW,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	ASSERT_NE(MAP_FAILED, self->xmap);
	self->xmap_size = len;
	self->xmr[0] = vu_reg_mr(&self->v, self->xmap, len, ACC_ODP);
	ASSERT_NE(NULL, self->xmr[0]);
	for (i = 0; i < 1000; i++) {
		ret = advise1(self->v.pd, PREFETCH_WRITE, ASYNC,
			      self->xmr[0]->lkey, (uintptr_t)self->xmap, len);
		if (ret == EBUSY) {
			busy++;
			continue;
		}
		ASSERT_EQ(0, ret) TH_LOG("call %d: %s", i, strerror(ret));
		accepted++;
	}
	ksft_print_msg("1000 async prefetches: %d taken, %d EBUSY\n",
		       accepted, busy);
	ASSERT_LE(64, accepted);
	ASSERT_LT(0, busy) TH_LOG("no bound on prefetches in flight");
}

/* ---- a prefetch that begins inside an untouched hugetlb page ---------- */

#define HUGE_SZ		(2UL << 20)
#define HUGE_SYSFS	"/sys/kernel/mm/hugepages/hugepages-2048kB/"
#define HUGE_NR_PROC	"/proc/sys/vm/nr_hugepages"
#ifndef MAP_HUGE_SHIFT
#define MAP_HUGE_SHIFT	26
#endif

/*
 * A synchronous PREFETCH_WRITE of [1 MiB + 100, +8 KiB) of an untouched
 * 2 MiB hugetlb page (the first of two under an ODP MR) maps that huge
 * page, whatever the page the prefetch begins in: page_prefetch counts
 * at least the 3 pages asked for (at most the huge page's 512), nothing
 * counts as a fault, and only that huge page is allocated. Remote
 * WRITEs of the prefetched range, of the page's first byte and of its
 * last 4 KiB page then fault nothing and land byte-exact. The QPs give
 * up after TU_RNR_RETRY RNR NAKs, so an access that cannot fault its
 * page ends in IBV_WC_RNR_RETRY_EXC_ERR instead of a hang.
 */
TEST_F_TIMEOUT(advise, sync_prefetch_write_mid_untouched_hugetlb, 120)
{
	const size_t len = 2 * HUGE_SZ, at = (1UL << 20) + 100;
	const uint32_t n = 8192;
	const struct { size_t off; uint32_t len; } w[] = {
		{ at, n }, { 0, 1 }, { HUGE_SZ - 4096, 4096 },
	};
	long nr, free_pages, entries0, entries1;
	long long prefetched;
	struct ibv_mr *mr;
	uint8_t *m, *want;
	unsigned int i;
	int ret;

	nr = tu_read_long(HUGE_SYSFS "nr_hugepages");
	free_pages = tu_read_long(HUGE_SYSFS "free_hugepages");
	if (nr < 0 || free_pages < 0)
		SKIP(return, "no 2 MiB hugetlb pages (%s)", HUGE_SYSFS);
	if (free_pages < 2) {
		ret = tu_write_long(HUGE_NR_PROC, nr + 2 - free_pages);
		if (ret)
			SKIP(return, "cannot write %s: %s", HUGE_NR_PROC,
			     strerror(-ret));
		self->nr_saved = nr;
		free_pages = tu_read_long(HUGE_SYSFS "free_hugepages");
	}
	if (free_pages < 2)
		SKIP(return, "only %ld free 2 MiB pages", free_pages);

	m = mmap(NULL, len, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB |
		 (21 << MAP_HUGE_SHIFT), -1, 0);
	ASSERT_NE(MAP_FAILED, m) TH_LOG("mmap(MAP_HUGETLB): %s",
					strerror(errno));
	self->xmap = m;
	self->xmap_size = len;
	want = map_rw(HUGE_SZ);
	ASSERT_NE(NULL, want);
	mr = vu_reg_mr(&self->v, m, len, ACC_ODP);
	ASSERT_NE(NULL, mr);
	self->xmr[0] = mr;
	ASSERT_EQ(0, vu_qp_pair_destroy(&self->v, &self->qps));
	ASSERT_EQ(0, tu_qp_pair_create_rnr(&self->v, &self->qps,
					   TU_RNR_RETRY));
	ASSERT_EQ(0, tu_smaps_kb(m, "Private_Hugetlb"));

	entries0 = tu_live_count("entries");
	ASSERT_ADVISE(0, self->v.pd, PREFETCH_WRITE, SYNC, mr->lkey,
		      (uintptr_t)m + at, n);
	entries1 = tu_live_count("entries");
	prefetched = mr_counter(mr, "page_prefetch");
	ksft_print_msg("prefetch: page_prefetch %lld, odp_mirror entries %ld -> %ld, Private_Hugetlb %ld kB\n",
		       prefetched, entries0, entries1,
		       tu_smaps_kb(m, "Private_Hugetlb"));
	ASSERT_LE(3, prefetched) TH_LOG("the huge page was not prefetched");
	ASSERT_GE(512, prefetched);
	ASSERT_COUNTER(0, mr, "page_faults");
	ASSERT_EQ(HUGE_SZ / 1024, tu_smaps_kb(m, "Private_Hugetlb"))
		TH_LOG("the prefetch allocated other huge pages than its own");

	for (i = 0; i < ARRAY_SIZE(w); i++) {
		tu_fill(self->src, w[i].len, 20 + i);
		TU_ASSERT_OK(tu_xfer(&self->v, &self->qps.a, IBV_WR_RDMA_WRITE,
				     self->src, w[i].len, self->smr->lkey,
				     (uintptr_t)m + w[i].off, mr->rkey));
		memcpy(want + w[i].off, self->src, w[i].len);
		ASSERT_COUNTER(0, mr, "page_faults");
	}
	ASSERT_TRUE(tu_same_bytes("the prefetched huge page after the WRITEs",
				  m, want, HUGE_SZ));
	ASSERT_COUNTER(prefetched, mr, "page_prefetch");
	munmap(want, HUGE_SZ);
}

/* ---- asynchronous prefetch against dereg, exit and SIGKILL ------------- */

enum race_end {
	RACE_END_DEREG,		/* ibv_dereg_mr() right after the advice */
	RACE_END_EXIT,		/* exit with the MR registered */
	RACE_END_KILL,		/* SIGKILLed by the parent */
	RACE_END_SYNC_KILL,	/* SIGKILLed during a synchronous prefetch */
};

static const char *const race_end_name[] = {
	"dereg", "exit", "SIGKILL", "SIGKILL during sync prefetch",
};

/*
 * The child: register an ODP MR over RACE_LEN bytes (or an implicit one),
 * advise PREFETCH_WRITE of all of them (asynchronously, or synchronously
 * for RACE_END_SYNC_KILL), tell the parent through @fd, then end as @how
 * says. Returns the exit status.
 */
static int race_child(const struct vu_config *cfg, bool implicit,
		      enum race_end how, int fd)
{
	struct vu_ctx v;
	struct ibv_mr *mr;
	struct ibv_sge sge;
	long rss_kb;
	void *buf;
	int ret;

	if (vu_open(&v, cfg))
		return 10;
	buf = mmap(NULL, RACE_LEN, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		return 11;
	mr = implicit ? ibv_reg_mr(v.pd, NULL, SIZE_MAX, ACC_ODP) :
			ibv_reg_mr(v.pd, buf, RACE_LEN, ACC_ODP);
	if (!mr)
		return 12;
	sge.addr = (uintptr_t)buf;
	sge.length = RACE_LEN;
	sge.lkey = mr->lkey;
	if (how == RACE_END_SYNC_KILL) {
		if (write(fd, "s", 1) != 1)
			return 13;
		ibv_advise_mr(v.pd, PREFETCH_WRITE, SYNC, &sge, 1);
		pause();
		return 14;
	}
	ret = ibv_advise_mr(v.pd, PREFETCH_WRITE, ASYNC, &sge, 1);
	if (ret)
		return 15;
	if (write(fd, "a", 1) != 1)
		return 13;
	switch (how) {
	case RACE_END_DEREG:
		if (ibv_dereg_mr(mr))
			return 16;
		/* what the prefetch mapped: final, it holds no MR any more */
		rss_kb = tu_smaps_kb(buf, "Rss");
		if (write(fd, &rss_kb, sizeof(rss_kb)) != sizeof(rss_kb))
			return 13;
		if (vu_close(&v))
			return 17;
		return 0;
	case RACE_END_EXIT:
		return 0;
	default:
		pause();
		return 14;
	}
}

/* Wait up to @ms for @pid; kill it if it is still there. */
static int reap(pid_t pid, int ms, int *status)
{
	uint64_t deadline = now_ms() + ms;
	pid_t r;

	while ((r = waitpid(pid, status, WNOHANG)) == 0 && now_ms() < deadline)
		usleep(1000);
	if (r == pid)
		return 0;
	kill(pid, SIGKILL);
	waitpid(pid, status, 0);
	return -ETIMEDOUT;
}

/*
 * Poll odp_mirror's live counts until all read 0 (at most @ms). Returns
 * how many reads before that did not (0: the first read did), or -1.
 */
static long live_zero(int ms)
{
	uint64_t deadline = now_ms() + ms;
	long umems, per_mm, children, misses = 0;

	for (;;) {
		umems = tu_live_count("umems");
		per_mm = tu_live_count("per_mm");
		children = tu_live_count("children");
		if (!umems && !per_mm && !children)
			return misses;
		if (!misses++)
			ksft_print_msg("live: umems %ld per_mm %ld children %ld\n",
				       umems, per_mm, children);
		if (now_ms() >= deadline)
			return -1;
		usleep(10000);
	}
}

/*
 * ≥ 100 children each register a 64 MiB ODP MR, advise PREFETCH_WRITE of
 * all of it asynchronously and at once deregister it, exit, or get
 * SIGKILLed (some during a synchronous prefetch instead). Every child
 * ends within 30 s, and after each one odp_mirror holds no umem and no
 * per_mm (within 5 s); the dmesg gate checks that nothing warned. The
 * dereg stops the prefetch: in at least half of the dereg runs less than
 * half of the MR was mapped when ibv_dereg_mr() returned (the child's Rss).
 */
FIXTURE(race) {
	struct vu_config	cfg;
};

FIXTURE_VARIANT(race) {
	bool	implicit;
};

FIXTURE_VARIANT_ADD(race, explicit) { .implicit = false };
FIXTURE_VARIANT_ADD(race, implicit) { .implicit = true };

FIXTURE_SETUP(race)
{
}

FIXTURE_TEARDOWN(race)
{
}

TEST_F_TIMEOUT(race, async_prefetch_races_dereg_and_exit, 500)
{
	static const struct { enum race_end how; int n; } plan[] = {
		{ RACE_END_DEREG, RACE_DEREG },
		{ RACE_END_EXIT, RACE_EXIT },
		{ RACE_END_KILL, RACE_KILL },
		{ RACE_END_SYNC_KILL, RACE_SYNC_KILL },
	};
	struct ibv_device_attr_ex ax;
	struct vu_config cfg;
	struct vu_ctx v;
	unsigned int seed = (unsigned int)getpid();
	long worst_ms[4] = { 0 }, late = 0, misses, rss_kb, max_rss_kb = 0;
	int stopped_early = 0;
	int p, i, total = 0, ret;

	TU_REQUIRE_CAP(!access(TU_LIVE_PATH, R_OK),
		       "no %s (odp_mirror not loaded?)", TU_LIVE_PATH);
	TU_OPEN_QUERY(&cfg, &v, &ax);
	ASSERT_EQ(0, vu_close(&v));
	TU_REQUIRE_CAP(ax.odp_caps.general_caps & IBV_ODP_SUPPORT,
		       "%s has no ODP support", cfg.dev_name);
	TU_REQUIRE_CAP(!variant->implicit ||
		       (ax.odp_caps.general_caps & IBV_ODP_SUPPORT_IMPLICIT),
		       "%s has no implicit ODP", cfg.dev_name);
	ASSERT_LE(0, live_zero(RACE_LIVE_MS))
		TH_LOG("odp_mirror holds umems or per_mm before the test");

	for (p = 0; p < 4; p++) {
		for (i = 0; i < plan[p].n; i++, total++) {
			enum race_end how = plan[p].how;
			struct pollfd pfd;
			uint64_t t0;
			int fds[2], status = 0;
			bool ok;
			char c;
			pid_t pid;

			ASSERT_EQ(0, pipe(fds));
			fflush(NULL);
			pid = fork();
			ASSERT_LE(0, pid);
			if (!pid) {
				close(fds[0]);
				_exit(race_child(&cfg, variant->implicit, how,
						 fds[1]));
			}
			close(fds[1]);
			t0 = now_ms();
			pfd.fd = fds[0];
			pfd.events = POLLIN;
			ret = poll(&pfd, 1, RACE_CHILD_MS);
			ASSERT_EQ(1, ret) TH_LOG("%s #%d: child silent",
						 race_end_name[how], i);
			ret = read(fds[0], &c, 1);
			if (ret == 1 && how == RACE_END_DEREG) {
				/* the child's Rss of the MR after dereg */
				ret = poll(&pfd, 1, RACE_CHILD_MS) == 1 &&
				      read(fds[0], &rss_kb, sizeof(rss_kb)) ==
				      sizeof(rss_kb);
				if (ret && rss_kb * 1024 < (long)RACE_LEN / 2)
					stopped_early++;
				if (ret && rss_kb > max_rss_kb)
					max_rss_kb = rss_kb;
			}
			close(fds[0]);
			if (ret != 1) {
				/* the child ended without its message */
				reap(pid, RACE_CHILD_MS, &status);
				ASSERT_EQ(1, ret)
					TH_LOG("%s #%d: child exit status 0x%x",
					       race_end_name[how], i, status);
			}
			if (how == RACE_END_KILL || how == RACE_END_SYNC_KILL) {
				usleep(rand_r(&seed) %
				       (how == RACE_END_KILL ? 3000 : 30000));
				kill(pid, SIGKILL);
			}
			ASSERT_EQ(0, reap(pid, RACE_CHILD_MS, &status))
				TH_LOG("%s #%d: child hung for %d ms",
				       race_end_name[how], i, RACE_CHILD_MS);
			if (how == RACE_END_KILL || how == RACE_END_SYNC_KILL)
				ok = WIFSIGNALED(status) &&
				     WTERMSIG(status) == SIGKILL;
			else
				ok = WIFEXITED(status) && !WEXITSTATUS(status);
			ASSERT_TRUE(ok) TH_LOG("%s #%d: status 0x%x",
					       race_end_name[how], i, status);
			if ((long)(now_ms() - t0) > worst_ms[p])
				worst_ms[p] = (long)(now_ms() - t0);

			misses = live_zero(RACE_LIVE_MS);
			ASSERT_LE(0, misses)
				TH_LOG("%s #%d: odp_mirror still holds umems %ld per_mm %ld after %d ms",
				       race_end_name[how], i,
				       tu_live_count("umems"),
				       tu_live_count("per_mm"), RACE_LIVE_MS);
			if (misses > 0)
				late++;
		}
	}
	ksft_print_msg("%d children; slowest (ms): dereg %ld, exit %ld, SIGKILL %ld, sync+SIGKILL %ld; live counts not yet 0 when the child was reaped: %ld times\n",
		       total, worst_ms[0], worst_ms[1], worst_ms[2],
		       worst_ms[3], late);
	ksft_print_msg("dereg stopped the prefetch before half of the MR %d of %d times; most mapped: %ld kB\n",
		       stopped_early, RACE_DEREG, max_rss_kb);
	ASSERT_LE(100, total);
	/*
	 * ibv_dereg_mr() right after the advice ends the prefetch at its
	 * next 2 MiB chunk: most of the time, little of the MR is mapped.
	 */
	ASSERT_LE(RACE_DEREG / 2, stopped_early);
}

TEST_HARNESS_MAIN
