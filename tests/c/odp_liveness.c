// SPDX-License-Identifier: GPL-2.0
/*
 * odp_liveness - accesses keep making progress while invalidations storm
 * other pages of the same MR (reliability.md §8 #23; issue 12).
 *
 * A memory allocator that purges freed pages (MADV_DONTNEED, as jemalloc
 * and glibc's malloc_trim do) inside a registered region, or an implicit
 * ODP MR over the whole address space, invalidates the MR's interval
 * again and again, somewhere else than where RDMA works. Threads drop
 * 64 KiB chunks of the first half of a 16 MiB ODP MR with MADV_DONTNEED
 * (after writing them, so there is something to drop) as fast as they
 * can, without a pause, while the QP pair WRITEs and READs tagged bytes
 * in the other half, each time in a page it dropped itself just before
 * (so every access faults). Every access must complete with success
 * within the QPs' RNR retry budget (TU_RNR_RETRY retries, 0.64 ms
 * apart, then IBV_WC_RNR_RETRY_EXC_ERR) and move exact bytes.
 *
 * Variants: explicit and implicit ODP MRs.
 *
 * Seen: 400 rounds against about 3300 chunk drops, fault_retries +11 to
 * +26; no access needed an RNR retry. Not here: a storm of
 * MADV_PAGEOUT, whose invalidations last as long as the swap-out, does
 * starve faults on the same MR (odp_race.c, "Found"): each fault
 * snapshots the whole MR's interval and retries on any invalidation.
 *
 * Mutation record: a fault that fails with -EFAULT when it must retry
 * (instead of snapshotting again) fails both variants at once
 * (IBV_WC_REM_ACCESS_ERR); one that gives up with -EAGAIN at its first
 * retry passes (rxe NAKs with RNR and the access is redone: progress,
 * at the price of a round trip).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "verbs_util.h"
#include "test_util.h"

#define REGION		(16UL << 20)
#define HALF		(REGION / 2)
#define CHUNK		(64UL << 10)
#define STORMERS	2
#define ACC_ODP		(IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ | \
			 IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_ON_DEMAND)

FIXTURE(live) {
	struct vu_config	cfg;
	struct vu_ctx		v;
	struct vu_qp_pair	p;
	uint8_t			*region;
	uint64_t		*local;		/* [0..7] out, [8..15] back */
	struct ibv_mr		*mr, *lmr;
	pthread_t		storm[STORMERS];
	int			running;
	atomic_bool		stop;
	atomic_long		drops;
	unsigned int		seed;
};

FIXTURE_VARIANT(live) {
	bool	implicit;
};

FIXTURE_VARIANT_ADD(live, explicit) { .implicit = false };
FIXTURE_VARIANT_ADD(live, implicit) { .implicit = true };

struct stormer {
	FIXTURE_DATA(live)	*self;
	unsigned int		seed;
};

static struct stormer stormers[STORMERS];

/* Write a chunk of the first half, drop it, again, with no pause. */
static void *storm_loop(void *arg)
{
	struct stormer *s = arg;
	uint8_t *c;

	while (!atomic_load(&s->self->stop)) {
		c = s->self->region + CHUNK * (rand_r(&s->seed) % (HALF / CHUNK));
		memset(c, 0x77, CHUNK);
		if (madvise(c, CHUNK, MADV_DONTNEED))
			break;
		atomic_fetch_add(&s->self->drops, 1);
	}
	return NULL;
}

FIXTURE_SETUP(live)
{
	struct ibv_device_attr_ex ax;

	TU_OPEN_QUERY(&self->cfg, &self->v, &ax);
	TU_REQUIRE_CAP(ax.odp_caps.general_caps & IBV_ODP_SUPPORT,
		       "no ODP support");
	ASSERT_EQ(0, tu_qp_pair_create_rnr(&self->v, &self->p, TU_RNR_RETRY));
	self->region = mmap(NULL, REGION, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->region);
	ASSERT_EQ(0, madvise(self->region, REGION, MADV_NOHUGEPAGE));
	self->local = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->local);
	if (variant->implicit)
		self->mr = vu_reg_mr(&self->v, NULL, SIZE_MAX, ACC_ODP);
	else
		self->mr = vu_reg_mr(&self->v, self->region, REGION, ACC_ODP);
	ASSERT_NE(NULL, self->mr) TH_LOG("reg_mr: %s", strerror(errno));
	self->lmr = vu_reg_mr(&self->v, self->local, 4096,
			      IBV_ACCESS_LOCAL_WRITE);
	ASSERT_NE(NULL, self->lmr);
	self->seed = tu_seed();
}

FIXTURE_TEARDOWN(live)
{
	int i;

	atomic_store(&self->stop, true);
	for (i = 0; i < self->running; i++)
		pthread_join(self->storm[i], NULL);
	EXPECT_EQ(0, vu_dereg_mr(&self->v, self->lmr));
	EXPECT_EQ(0, vu_dereg_mr(&self->v, self->mr));
	EXPECT_EQ(0, vu_qp_pair_destroy(&self->v, &self->p));
	EXPECT_EQ(0, vu_close(&self->v));
	EXPECT_TRUE(tu_live_back("umems", 0, 10000));
}

TEST_F_TIMEOUT(live, progress_under_storm, 600)
{
	long rounds = tu_rounds(400, 5000), r;
	long long retries = tu_mr_counter(self->mr->rkey, "fault_retries");
	uint64_t *out = self->local, *back = self->local + 8;
	uint8_t *page;
	size_t i;
	int k;

	for (k = 0; k < STORMERS; k++) {
		stormers[k] = (struct stormer){ self, self->seed + k };
		ASSERT_EQ(0, pthread_create(&self->storm[k], NULL, storm_loop,
					    &stormers[k]));
		self->running++;
	}
	for (r = 1; r <= rounds; r++) {
		page = self->region + HALF +
		       4096 * (rand_r(&self->seed) % (HALF / 4096));
		/* every access faults: its page was just dropped */
		ASSERT_EQ(0, madvise(page, 4096, MADV_DONTNEED));
		for (i = 0; i < 8; i++)
			out[i] = (uint64_t)r << 32 | ((uintptr_t)page + 8 * i);
		TU_ASSERT_OK(tu_xfer(&self->v, &self->p.a, IBV_WR_RDMA_WRITE,
				     out, 64, self->lmr->lkey,
				     (uintptr_t)page, self->mr->rkey));
		ASSERT_EQ(0, memcmp(page, out, 64)) TH_LOG("round %ld", r);
		memset(back, 0, 64);
		TU_ASSERT_OK(tu_xfer(&self->v, &self->p.a, IBV_WR_RDMA_READ,
				     back, 64, self->lmr->lkey,
				     (uintptr_t)page, self->mr->rkey));
		ASSERT_EQ(0, memcmp(back, out, 64)) TH_LOG("round %ld", r);
	}
	atomic_store(&self->stop, true);
	ksft_print_msg("%ld rounds against %ld chunk drops; fault_retries +%lld\n",
		       rounds, atomic_load(&self->drops),
		       tu_mr_counter(self->mr->rkey, "fault_retries") -
		       retries);
	ASSERT_LT(rounds, atomic_load(&self->drops))
		TH_LOG("the storm was too weak to prove anything");
}

TEST_HARNESS_MAIN
