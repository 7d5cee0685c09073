// SPDX-License-Identifier: GPL-2.0
/*
 * odp_implicit - implicit ODP MRs of rxe: ibv_reg_mr(pd, NULL, SIZE_MAX,
 * IBV_ACCESS_ON_DEMAND | ...) reaches every address the process maps,
 * with the CPU's permissions, and nothing else (issue 7).
 *
 * One RC QP pair on one rxe device: QP a (the peer) posts RDMA WRITE,
 * READ and atomics at addresses of this process through the implicit
 * MR's rkey; its local buffers are a pinned MR. An error completion moves
 * both QPs to the error state, so the next operation after one runs on a
 * recreated pair. Checks are byte-exact.
 *
 * The residency test reads odp_mirror's debugfs live counts: "children"
 * (the 1 GiB slots of implicit MRs that hold translations) and "entries"
 * (translations); reading the file waits for pending child reclaims.
 *
 * Device: RXE_ODP_DEV (default rxe0), RXE_ODP_GID_IDX (default 1); skips
 * when the device has no implicit RC ODP support.
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

#define RW		(PROT_READ | PROT_WRITE)
#define ACC_IMPLICIT	(IBV_ACCESS_ON_DEMAND | IBV_ACCESS_LOCAL_WRITE | \
			 IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ | \
			 IBV_ACCESS_REMOTE_ATOMIC)
#define LOCAL_SIZE	(1 << 20)
#define CHUNK		(64 << 10)
#define GIB		(1UL << 30)
#define HUGE_SZ		(2UL << 20)
/* the first address past the 47-bit user address space of x86_64 */
#define PAST_USER	(1ULL << 47)

FIXTURE(implicit) {
	struct vu_config	cfg;
	struct vu_ctx		v;
	struct vu_qp_pair	qps;
	struct ibv_mr		*mr;	/* implicit, ACC_IMPLICIT */
	struct ibv_mr		*lmr;	/* pinned, over @local */
	uint8_t			*local;	/* the peer's buffer */
	size_t			pg;
};

FIXTURE_SETUP(implicit)
{
	const uint32_t need = IBV_ODP_SUPPORT_WRITE | IBV_ODP_SUPPORT_READ |
			      IBV_ODP_SUPPORT_ATOMIC;
	struct ibv_device_attr_ex ax;

	self->pg = (size_t)sysconf(_SC_PAGESIZE);
	TU_OPEN_QUERY(&self->cfg, &self->v, &ax);
	TU_REQUIRE_CAP((ax.odp_caps.general_caps & IBV_ODP_SUPPORT_IMPLICIT) &&
		       (ax.odp_caps.per_transport_caps.rc_odp_caps & need) ==
		       need, "%s has no implicit RC ODP support",
		       self->cfg.dev_name);

	self->local = mmap(NULL, LOCAL_SIZE, RW, MAP_PRIVATE | MAP_ANONYMOUS,
			   -1, 0);
	ASSERT_NE(MAP_FAILED, self->local);
	self->lmr = vu_reg_mr(&self->v, self->local, LOCAL_SIZE,
			      IBV_ACCESS_LOCAL_WRITE);
	ASSERT_NE(NULL, self->lmr);
	self->mr = ibv_reg_mr(self->v.pd, NULL, SIZE_MAX, ACC_IMPLICIT);
	ASSERT_NE(NULL, self->mr) TH_LOG("implicit ibv_reg_mr: %s",
					 strerror(errno));
	ASSERT_EQ(0, vu_qp_pair_create(&self->v, &self->qps));
}

FIXTURE_TEARDOWN(implicit)
{
	vu_qp_pair_destroy(&self->v, &self->qps);
	if (self->mr)
		ibv_dereg_mr(self->mr);
	vu_dereg_mr(&self->v, self->lmr);
	if (self->local && self->local != MAP_FAILED)
		munmap(self->local, LOCAL_SIZE);
	vu_close(&self->v);
}

/*
 * One WRITE or READ of @len bytes between the peer's buffer and address
 * @raddr of this process, through the implicit MR. Returns its status;
 * after an error completion the QP pair is recreated.
 */
static int op(struct __test_metadata *_metadata,
	      FIXTURE_DATA(implicit) *self, enum ibv_wr_opcode opcode,
	      uint64_t raddr, uint32_t len)
{
	int st = tu_xfer(&self->v, &self->qps.a, opcode, self->local, len,
			 self->lmr->lkey, raddr, self->mr->rkey);

	if (st > 0) {
		EXPECT_EQ(0, vu_qp_pair_destroy(&self->v, &self->qps));
		EXPECT_EQ(0, vu_qp_pair_create(&self->v, &self->qps));
	}
	return st;
}

/* An 8-byte FETCH_ADD of @add at @raddr; as op(). */
static int fetch_add(struct __test_metadata *_metadata,
		     FIXTURE_DATA(implicit) *self, uint64_t raddr,
		     uint64_t add)
{
	int st = tu_atomic(&self->v, &self->qps.a, IBV_WR_ATOMIC_FETCH_AND_ADD,
			   (uint64_t *)self->local, self->lmr->lkey, raddr,
			   self->mr->rkey, add, 0);

	if (st > 0) {
		EXPECT_EQ(0, vu_qp_pair_destroy(&self->v, &self->qps));
		EXPECT_EQ(0, vu_qp_pair_create(&self->v, &self->qps));
	}
	return st;
}

/* WRITE pattern @seed to [@at, +@len), then READ it back: byte-exact. */
static void write_read(struct __test_metadata *_metadata,
		       FIXTURE_DATA(implicit) *self, uint8_t *at,
		       uint32_t len, unsigned int seed)
{
	tu_fill(self->local, len, seed);
	TU_ASSERT_OK(op(_metadata, self, IBV_WR_RDMA_WRITE, (uintptr_t)at,
			len));
	ASSERT_TRUE(tu_pattern_bytes("CPU view after WRITE", at, seed, len));
	memset(self->local, TU_POISON, len);
	TU_ASSERT_OK(op(_metadata, self, IBV_WR_RDMA_READ, (uintptr_t)at,
			len));
	ASSERT_TRUE(tu_pattern_bytes("READ", self->local, seed, len));
}

/* WRITE, READ and FETCH_ADD at @raddr must all fail remotely. */
static void all_refused(struct __test_metadata *_metadata,
			FIXTURE_DATA(implicit) *self, uint64_t raddr)
{
	TU_ASSERT_WC(IBV_WC_REM_ACCESS_ERR,
		     op(_metadata, self, IBV_WR_RDMA_WRITE, raddr, 64));
	TU_ASSERT_WC(IBV_WC_REM_ACCESS_ERR,
		     op(_metadata, self, IBV_WR_RDMA_READ, raddr, 64));
	TU_ASSERT_WC(IBV_WC_REM_ACCESS_ERR, fetch_add(_metadata, self, raddr, 1));
}

/* A fresh anonymous mapping of @len bytes at a hole of the address space. */
static uint8_t *map_at(struct __test_metadata *_metadata, void *hint,
		       size_t len, int prot, int extra)
{
	uint8_t *p = mmap(hint, len, prot,
			  MAP_PRIVATE | MAP_ANONYMOUS | extra, -1, 0);

	EXPECT_NE(MAP_FAILED, p) TH_LOG("mmap: %s", strerror(errno));
	return p == MAP_FAILED ? NULL : p;
}

TEST_F(implicit, registration_rules)
{
	struct ibv_mr *mr2;

	/* an implicit MR's iova is its address: a non-zero one is refused */
	errno = 0;
	mr2 = ibv_reg_mr_iova(self->v.pd, NULL, SIZE_MAX, 1 << 20,
			      ACC_IMPLICIT);
	EXPECT_EQ(NULL, mr2);
	EXPECT_EQ(EINVAL, errno);
	if (mr2)
		ibv_dereg_mr(mr2);

	errno = 0;
	mr2 = ibv_reg_mr(self->v.pd, NULL, SIZE_MAX,
			 ACC_IMPLICIT | IBV_ACCESS_HUGETLB);
	EXPECT_EQ(NULL, mr2);
	EXPECT_EQ(EINVAL, errno);
	if (mr2)
		ibv_dereg_mr(mr2);

	/* a second implicit MR of the same process works beside the first */
	mr2 = ibv_reg_mr(self->v.pd, NULL, SIZE_MAX, ACC_IMPLICIT);
	ASSERT_NE(NULL, mr2) TH_LOG("second implicit MR: %s", strerror(errno));
	EXPECT_EQ(0, ibv_dereg_mr(mr2));
}

TEST_F(implicit, data_across_mmap_munmap_mremap)
{
	uint8_t *a, *b, *c, *hole;

	a = map_at(_metadata, NULL, CHUNK, RW, 0);
	ASSERT_NE(NULL, a);
	/* the CPU's data, read through the MR */
	tu_fill(a, CHUNK, 1);
	memset(self->local, TU_POISON, CHUNK);
	TU_ASSERT_OK(op(_metadata, self, IBV_WR_RDMA_READ, (uintptr_t)a,
			CHUNK));
	ASSERT_TRUE(tu_pattern_bytes("READ of CPU data", self->local, 1,
				     CHUNK));
	write_read(_metadata, self, a, CHUNK, 2);

	/* unmapped: every access is refused */
	ASSERT_EQ(0, munmap(a, CHUNK));
	all_refused(_metadata, self, (uintptr_t)a);

	/* new memory at the same address: its own data, not the old pages */
	b = map_at(_metadata, a, CHUNK, RW, MAP_FIXED_NOREPLACE);
	ASSERT_EQ(a, b);
	tu_fill(b, CHUNK, 3);
	memset(self->local, TU_POISON, CHUNK);
	TU_ASSERT_OK(op(_metadata, self, IBV_WR_RDMA_READ, (uintptr_t)b,
			CHUNK));
	ASSERT_TRUE(tu_pattern_bytes("READ of remapped memory", self->local,
				     3, CHUNK));

	/* moved by mremap: reachable at the new address only */
	hole = map_at(_metadata, NULL, CHUNK, PROT_NONE, 0);
	ASSERT_NE(NULL, hole);
	c = mremap(b, CHUNK, CHUNK, MREMAP_MAYMOVE | MREMAP_FIXED, hole);
	ASSERT_EQ(hole, c) TH_LOG("mremap: %s", strerror(errno));
	memset(self->local, TU_POISON, CHUNK);
	TU_ASSERT_OK(op(_metadata, self, IBV_WR_RDMA_READ, (uintptr_t)c,
			CHUNK));
	ASSERT_TRUE(tu_pattern_bytes("READ after mremap", self->local, 3,
				     CHUNK));
	all_refused(_metadata, self, (uintptr_t)b);
	write_read(_metadata, self, c, CHUNK, 4);
	ASSERT_EQ(0, munmap(c, CHUNK));
}

TEST_F(implicit, unmapped_and_out_of_range_refused)
{
	uint8_t *hole = map_at(_metadata, NULL, CHUNK, RW, 0);

	ASSERT_NE(NULL, hole);
	ASSERT_EQ(0, munmap(hole, CHUNK));
	all_refused(_metadata, self, (uintptr_t)hole);
	all_refused(_metadata, self, 0);
	all_refused(_metadata, self, PAST_USER - 8);
	all_refused(_metadata, self, PAST_USER);
	/* a range that wraps past the end of the iova space */
	TU_ASSERT_WC(IBV_WC_REM_ACCESS_ERR,
		     op(_metadata, self, IBV_WR_RDMA_WRITE,
			UINT64_MAX - self->pg + 1, 2 * self->pg));
	/* the QPs still work */
	hole = map_at(_metadata, NULL, CHUNK, RW, 0);
	ASSERT_NE(NULL, hole);
	write_read(_metadata, self, hole, CHUNK, 5);
	ASSERT_EQ(0, munmap(hole, CHUNK));
}

TEST_F(implicit, cpu_permissions)
{
	uint8_t *ro = map_at(_metadata, NULL, CHUNK, RW, 0);

	ASSERT_NE(NULL, ro);
	tu_fill(ro, CHUNK, 6);
	/* resident in the mirror first, so a refusal proves the invalidation */
	write_read(_metadata, self, ro, CHUNK, 6);
	ASSERT_EQ(0, mprotect(ro, CHUNK, PROT_READ));
	memset(self->local, TU_POISON, CHUNK);
	TU_ASSERT_OK(op(_metadata, self, IBV_WR_RDMA_READ, (uintptr_t)ro,
			CHUNK));
	ASSERT_TRUE(tu_pattern_bytes("READ of PROT_READ", self->local, 6,
				     CHUNK));
	tu_fill(self->local, CHUNK, 7);
	TU_ASSERT_WC(IBV_WC_REM_ACCESS_ERR,
		     op(_metadata, self, IBV_WR_RDMA_WRITE, (uintptr_t)ro,
			CHUNK));
	TU_ASSERT_WC(IBV_WC_REM_ACCESS_ERR,
		     fetch_add(_metadata, self, (uintptr_t)ro, 1));
	ASSERT_TRUE(tu_pattern_bytes("PROT_READ memory after refusals", ro,
				     6, CHUNK));
	ASSERT_EQ(0, mprotect(ro, CHUNK, PROT_NONE));
	all_refused(_metadata, self, (uintptr_t)ro);
	ASSERT_EQ(0, munmap(ro, CHUNK));
}

/*
 * Touch 1 GiB through the MR (one FETCH_ADD per 2 MiB after the CPU
 * wrote it all, so each fault maps a whole PMD), then munmap it: the
 * children and entries it took must be gone again.
 */
TEST_F_TIMEOUT(implicit, memory_follows_residency, 300)
{
	long children0, entries0, children, entries;
	uint8_t *big;
	size_t off;

	children0 = tu_live_count("children");
	entries0 = tu_live_count("entries");
	TU_REQUIRE_CAP(children0 >= 0, "no %s (debugfs, our odp_mirror)",
		       TU_LIVE_PATH);

	big = map_at(_metadata, NULL, GIB + HUGE_SZ, RW, MAP_NORESERVE);
	ASSERT_NE(NULL, big);
	madvise(big, GIB + HUGE_SZ, MADV_HUGEPAGE);
	memset(big, 1, GIB + HUGE_SZ);
	for (off = 0; off < GIB + HUGE_SZ; off += HUGE_SZ)
		TU_ASSERT_OK(fetch_add(_metadata, self, (uintptr_t)big + off,
				       1));
	ASSERT_EQ(0x0101010101010102ULL, *(uint64_t *)big);

	children = tu_live_count("children");
	entries = tu_live_count("entries");
	ksft_print_msg("children %ld -> %ld, entries %ld -> %ld\n",
		       children0, children, entries0, entries);
	/* 1 GiB + 2 MiB lies across two or three 1 GiB slots */
	EXPECT_GE(children - children0, 2);
	EXPECT_LE(children - children0, 3);
	/* every 2 MiB is mapped: as one huge entry, or 512 small ones */
	EXPECT_GE(entries - entries0, (long)((GIB + HUGE_SZ) / HUGE_SZ));

	ASSERT_EQ(0, munmap(big, GIB + HUGE_SZ));
	children = tu_live_count("children");
	entries = tu_live_count("entries");
	ksft_print_msg("after munmap: children %ld, entries %ld\n",
		       children, entries);
	EXPECT_EQ(children0, children);
	EXPECT_EQ(entries0, entries);
}

TEST_HARNESS_MAIN
