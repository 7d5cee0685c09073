// SPDX-License-Identifier: GPL-2.0
/*
 * ODP counters tell how a result was reached, the way hmm-tests asserts
 * on the fault counts of test_hmm: rxe0's device-wide odp_page_faults and
 * odp_page_invalidations (rxe's hw counters), the per-MR page_faults
 * and page_invalidations of `rdma stat mr`, and odp_mirror's live-object
 * counts in debugfs, which must read zero once every ODP MR is gone.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "verbs_util.h"
#include "kselftest_harness.h"
#include "test_util.h"

#define NPAGES		8

FIXTURE(counters) {
	struct vu_config	cfg;
	struct vu_ctx		v;
	struct vu_qp_pair	qps;
	size_t			len;
	uint8_t			*src;
	uint8_t			*dst;
	struct ibv_mr		*src_mr;
	struct ibv_mr		*dst_mr;
};

FIXTURE_SETUP(counters)
{
	struct ibv_device_attr_ex attr = {};

	vu_config_init(&self->cfg);
	ASSERT_EQ(0, vu_config_from_env(&self->cfg));
	TU_REQUIRE_CAP(!vu_open(&self->v, &self->cfg), "no RDMA device %s",
		       self->cfg.dev_name);
	ASSERT_EQ(0, ibv_query_device_ex(self->v.ctx, NULL, &attr));
	TU_REQUIRE_CAP(attr.odp_caps.general_caps & IBV_ODP_SUPPORT,
		       "%s has no ODP support", self->cfg.dev_name);
	TU_REQUIRE_CAP(tu_dev_counter(&self->v, "odp_page_faults") >= 0,
		       "%s has no odp_page_faults counter",
		       self->cfg.dev_name);
	ASSERT_EQ(0, vu_qp_pair_create(&self->v, &self->qps));

	self->len = NPAGES * (size_t)getpagesize();
	/* pinned source: its pages are no ODP business */
	self->src = mmap(NULL, self->len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->src);
	memset(self->src, 0x5a, self->len);
	self->src_mr = vu_reg_mr(&self->v, self->src, self->len,
				 IBV_ACCESS_LOCAL_WRITE);
	ASSERT_NE(NULL, self->src_mr);
	/* ODP destination, never touched by the CPU */
	self->dst = mmap(NULL, self->len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->dst);
	self->dst_mr = vu_reg_mr(&self->v, self->dst, self->len,
				 IBV_ACCESS_ON_DEMAND | IBV_ACCESS_LOCAL_WRITE |
				 IBV_ACCESS_REMOTE_WRITE |
				 IBV_ACCESS_REMOTE_READ);
	ASSERT_NE(NULL, self->dst_mr);
}

FIXTURE_TEARDOWN(counters)
{
	if (self->dst_mr)
		vu_dereg_mr(&self->v, self->dst_mr);
	if (self->src_mr)
		vu_dereg_mr(&self->v, self->src_mr);
	if (self->dst && self->dst != MAP_FAILED)
		munmap(self->dst, self->len);
	if (self->src && self->src != MAP_FAILED)
		munmap(self->src, self->len);
	vu_qp_pair_destroy(&self->v, &self->qps);
	vu_close(&self->v);
}

static int remote_op(FIXTURE_DATA(counters) *self,
		     enum ibv_wr_opcode op, enum ibv_wc_opcode wc_op)
{
	int ret = vu_post_send(&self->v, &self->qps.a, op, 1, self->src,
			       self->len, self->src_mr->lkey,
			       (uintptr_t)self->dst, self->dst_mr->rkey);

	return ret ? ret : vu_wait_ok(&self->v, &self->qps.a, 1, wc_op);
}

/*
 * A remote WRITE that first touches N pages faults exactly N pages; a
 * READ of them faults nothing more; MADV_DONTNEED of the range drops
 * exactly those N pages. Device totals and the MR's own counters agree.
 */
TEST_F(counters, first_touch_and_dontneed)
{
	long long faults = tu_dev_counter(&self->v, "odp_page_faults");
	long long invals = tu_dev_counter(&self->v, "odp_page_invalidations");

	ASSERT_EQ(0, remote_op(self, IBV_WR_RDMA_WRITE, IBV_WC_RDMA_WRITE));
	ASSERT_EQ(faults + NPAGES, tu_dev_counter(&self->v, "odp_page_faults"));
	ASSERT_EQ(NPAGES, tu_mr_counter(self->dst_mr->rkey, "page_faults"));

	ASSERT_EQ(0, remote_op(self, IBV_WR_RDMA_READ, IBV_WC_RDMA_READ));
	ASSERT_EQ(faults + NPAGES, tu_dev_counter(&self->v, "odp_page_faults"));

	ASSERT_EQ(0, madvise(self->dst, self->len, MADV_DONTNEED));
	ASSERT_EQ(invals + NPAGES, tu_dev_counter(&self->v, "odp_page_invalidations"));
	ASSERT_EQ(NPAGES, tu_mr_counter(self->dst_mr->rkey,
				     "page_invalidations"));
}

/* Registration alone faults nothing: nothing is pinned or mapped. */
TEST_F(counters, registration_faults_nothing)
{
	ASSERT_EQ(0, tu_mr_counter(self->dst_mr->rkey, "page_faults"));
	ASSERT_EQ(0, tu_mr_counter(self->dst_mr->rkey, "page_invalidations"));
}

/*
 * The PMD-aligned 2 MiB of a fresh 4 MiB anonymous mapping (*@map, for
 * munmap()), with @advice, filled with @fill by the CPU; NULL on error.
 */
static uint8_t *map_pmd(uint8_t **map, int advice, int fill)
{
	size_t huge = 2UL << 20;
	uint8_t *pmd;

	*map = mmap(NULL, 2 * huge, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (*map == MAP_FAILED)
		return NULL;
	pmd = (uint8_t *)(((uintptr_t)*map + huge - 1) & ~(huge - 1));
	if (madvise(pmd, huge, advice))
		return NULL;
	memset(pmd, fill, huge);
	return pmd;
}

/* One 8-byte remote WRITE at @at; the device-wide faults after it. */
static long long write8(FIXTURE_DATA(counters) *self, struct ibv_mr *mr,
			uint8_t *at)
{
	if (vu_post_send(&self->v, &self->qps.a, IBV_WR_RDMA_WRITE, 1,
			 self->src, 8, self->src_mr->lkey, (uintptr_t)at,
			 mr->rkey) ||
	    vu_wait_ok(&self->v, &self->qps.a, 1, IBV_WC_RDMA_WRITE))
		return -1;
	return tu_dev_counter(&self->v, "odp_page_faults");
}

/*
 * A PMD-mapped THP is one translation entry: the first remote access to
 * it faults one page and records the whole huge page as one entry of
 * odp_mirror's table, so an access anywhere else in it faults nothing
 * and adds nothing.
 */
TEST_F(counters, thp_is_one_entry)
{
	size_t huge = 2UL << 20;
	struct ibv_mr *mr;
	long long faults;
	long entries;
	uint8_t *map, *thp;

	thp = map_pmd(&map, MADV_HUGEPAGE, 0x11);
	ASSERT_NE(NULL, thp);
	if (tu_smaps_kb(thp, "AnonHugePages") < 2048) {
		munmap(map, 2 * huge);
		SKIP(return, "no transparent huge page was mapped");
	}
	mr = vu_reg_mr(&self->v, thp, huge, IBV_ACCESS_ON_DEMAND |
		       IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE);
	ASSERT_NE(NULL, mr);

	faults = tu_dev_counter(&self->v, "odp_page_faults");
	entries = tu_live_count("entries");
	ASSERT_LE(0, entries);
	ASSERT_EQ(faults + 1, write8(self, mr, thp));
	ASSERT_EQ(entries + 1, tu_live_count("entries"));

	ASSERT_EQ(faults + 1, write8(self, mr, thp + huge / 2 + 4096));
	ASSERT_EQ(entries + 1, tu_live_count("entries"));
	ASSERT_EQ(0x5a, thp[huge / 2 + 4096]);
	ASSERT_EQ(0x11, thp[huge / 2 + 4096 + 8]);

	ASSERT_EQ(0, vu_dereg_mr(&self->v, mr));
	ASSERT_EQ(0, munmap(map, 2 * huge));
}

/*
 * The first fault in a PMD records every present 4 KiB page of it; a
 * fault in a PMD in use already records only the present pages of the
 * 64 KiB around it (odp_fault_around(): the whole PMD's walk at every
 * fault made a device fault of memory touched page by page cost 8 to 12
 * of the CPU's page faults, perf/README.md).
 */
TEST_F(counters, fault_around_once_the_pmd_is_in_use)
{
	size_t huge = 2UL << 20, psz = getpagesize();
	size_t around = (64 << 10) / psz;
	struct ibv_mr *mr;
	long long faults;
	long entries;
	uint8_t *map, *pmd;

	pmd = map_pmd(&map, MADV_NOHUGEPAGE, 0x11);
	ASSERT_NE(NULL, pmd);
	mr = vu_reg_mr(&self->v, pmd, huge, IBV_ACCESS_ON_DEMAND |
		       IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE);
	ASSERT_NE(NULL, mr);
	entries = tu_live_count("entries");
	ASSERT_LE(0, entries);

	/* the first fault in the PMD: all of its present pages */
	faults = tu_dev_counter(&self->v, "odp_page_faults");
	ASSERT_EQ(faults + 1, write8(self, mr, pmd));
	ASSERT_EQ(entries + (long)(huge / psz), tu_live_count("entries"));

	/* pages 16.. dropped and present again: recorded in 64 KiB steps */
	ASSERT_EQ(0, madvise(pmd + around * psz, huge - around * psz,
			     MADV_DONTNEED));
	ASSERT_EQ(entries + (long)around, tu_live_count("entries"));
	memset(pmd + around * psz, 0x22, huge - around * psz);
	ASSERT_EQ(faults + 2, write8(self, mr, pmd + 6 * around * psz + 100));
	ASSERT_EQ(entries + 2 * (long)around, tu_live_count("entries"));
	ASSERT_EQ(faults + 2, write8(self, mr, pmd + 7 * around * psz - 8));
	ASSERT_EQ(faults + 3, write8(self, mr, pmd + 7 * around * psz));
	ASSERT_EQ(entries + 3 * (long)around, tu_live_count("entries"));
	ASSERT_EQ(0x5a, pmd[6 * around * psz + 100]);
	ASSERT_EQ(0x22, pmd[6 * around * psz + 108]);
	ASSERT_EQ(0x5a, pmd[7 * around * psz - 1]);
	ASSERT_EQ(0x5a, pmd[7 * around * psz]);

	ASSERT_EQ(0, vu_dereg_mr(&self->v, mr));
	ASSERT_EQ(0, munmap(map, 2 * huge));
}

/* Once every ODP MR is gone, odp_mirror holds no umem and no per_mm. */
TEST(live_objects_after_teardown)
{
	struct vu_config cfg;
	struct vu_ctx v;
	struct ibv_mr *mr;
	size_t len = 4 * (size_t)getpagesize();
	void *buf;

	TU_REQUIRE_CAP(!access(TU_LIVE_PATH, R_OK),
		       "no %s (odp_mirror not loaded?)", TU_LIVE_PATH);
	vu_config_init(&cfg);
	ASSERT_EQ(0, vu_config_from_env(&cfg));
	ASSERT_EQ(0, vu_open(&v, &cfg));
	buf = mmap(NULL, len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, buf);
	mr = vu_reg_mr(&v, buf, len, IBV_ACCESS_ON_DEMAND |
		       IBV_ACCESS_LOCAL_WRITE);
	ASSERT_NE(NULL, mr);
	ASSERT_EQ(1, tu_live_count("umems"));
	ASSERT_EQ(1, tu_live_count("per_mm"));

	ASSERT_EQ(0, vu_dereg_mr(&v, mr));
	ASSERT_EQ(0, vu_close(&v));
	ASSERT_EQ(0, munmap(buf, len));
	ASSERT_EQ(0, tu_live_count("umems"));
	ASSERT_EQ(0, tu_live_count("per_mm"));
}

TEST_HARNESS_MAIN
