// SPDX-License-Identifier: GPL-2.0
/*
 * odp_race - RDMA traffic with tagged data against the kernel moving the
 * pages under an ODP MR (reliability.md §8 #1, #4, #14; issue 12).
 *
 * A loopback RC QP pair writes a fresh 8-byte tag into a page of a 16 MiB
 * ODP MR (4 KiB pages, each written with the CPU first), reads it back
 * with an RDMA READ and checks it with the CPU too, round after round,
 * page after page, while a thread makes the kernel move those pages
 * without changing their contents:
 *  - race.ksm: KSM merges the identical pages into one write-protected
 *    page (MADV_MERGEABLE, ksmd at full speed): a WRITE must break the
 *    sharing and land in this page of this process, never in the shared
 *    one (which other pages of the MR read);
 *  - race.pageout: MADV_PAGEOUT swaps 64-page chunks out to zram, one
 *    after the other, and MADV_WILLNEED reads them back into the swap
 *    cache. Each round READs the page before it WRITEs it: the READ's
 *    fault maps the swap-cache page clean and writable, its slot kept,
 *    the WRITE does not fault, and only the mirror's dirty marking keeps
 *    the tag from being dropped with the clean page at the next pageout
 *    (mutation: with odp_mark_dirty() skipped, tags are lost).
 * Every tag must read back from both the device and the CPU, and every
 * other page must keep its CPU-written contents; a case fails too when
 * the disturbance did not happen (no page migrated, merged or swapped
 * out: the case would prove nothing) or when the MR saw no invalidation.
 *
 * Rounds (a page each): 500, 2000 under make stress (tu_rounds()). A
 * run cut down by RXE_ODP_ROUNDS (the debug lane's 3) goes on past its
 * count, up to 500, until the MR has seen an invalidation: at 3 rounds
 * on the debug kernel neither KSM nor pageout had dropped an entry of
 * the MR yet, and the case rightly failed for want of a race.
 *
 * Found: an unpaced MADV_PAGEOUT loop over the MR starves its faults. A
 * fault snapshots the whole MR's interval notifier sequence, and any
 * invalidation of the MR, wherever it lands, makes it retry; after
 * HMM_RANGE_DEFAULT_TIMEOUT the access fails with -EAGAIN and rxe retries
 * it, again and again (traced: 23 of 39 faults ended -EAGAIN, one after
 * 32 snapshots). Upstream's ib_umem_odp and mlx5 retry the same way. The
 * disturber is therefore paced (a chunk every 2 ms).
 *
 * Not here: memory compaction (/proc/sys/vm/compact_memory) migrated
 * pages in the guest, but none of the MR's (page_invalidations stayed 0),
 * so that case proved nothing; explicit migration (move_pages()) needs a
 * second NUMA node, which the guest does not have. odp_large races THP
 * split and collapse, which replace pages too.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "kv_file.h"
#include "verbs_util.h"
#include "test_util.h"

#define REGION		(16UL << 20)
#define KSM_DIR		"/sys/kernel/mm/ksm/"
#define ACC_ODP		(IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ | \
			 IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_ON_DEMAND)

FIXTURE(race) {
	struct vu_config	cfg;
	struct vu_ctx		v;
	struct vu_qp_pair	p;
	size_t			psz;
	uint8_t			*region;
	uint64_t		*local;		/* [0] the tag, [1] read back */
	struct ibv_mr		*mr, *lmr;
	pthread_t		disturber;
	bool			running;
	atomic_bool		stop;
	long			ksm_run;	/* KSM's run setting before */
	struct tu_zram		zram;
};

enum race_with { RACE_KSM, RACE_PAGEOUT };

FIXTURE_VARIANT(race) {
	enum race_with	with;
	/* the /proc/vmstat count that shows the disturbance happened */
	const char	*vmstat;
};

FIXTURE_VARIANT_ADD(race, ksm) { .with = RACE_KSM };
FIXTURE_VARIANT_ADD(race, pageout) {
	.with = RACE_PAGEOUT, .vmstat = "pswpout",
};

#define PAGEOUT_CHUNK	(64UL << 12)

/*
 * One chunk every 2 ms: pacing, not synchronisation. Unpaced, the loop
 * invalidates some page of the MR every few microseconds, and a fault
 * of the MR, which retries whenever any invalidation of the MR's
 * interval lands during its snapshot, starves (see the header).
 */
static void *pageout_loop(void *arg)
{
	const struct timespec pace = { .tv_nsec = 2 * 1000 * 1000 };
	FIXTURE_DATA(race) *self = arg;
	size_t off = 0;

	while (!atomic_load(&self->stop)) {
		madvise(self->region + off, PAGEOUT_CHUNK, MADV_PAGEOUT);
		/*
		 * read them back into the swap cache (zram skips it on a
		 * plain fault): a fault then maps them clean, slots kept
		 */
		madvise(self->region + off, PAGEOUT_CHUNK, MADV_WILLNEED);
		off = (off + PAGEOUT_CHUNK) % REGION;
		nanosleep(&pace, NULL);
	}
	return NULL;
}

/*
 * The seed of page @i's CPU-written contents: its number, but the same
 * for every page under KSM, which merges identical pages only.
 */
static unsigned int page_seed(const FIXTURE_VARIANT(race) *variant, size_t i)
{
	return variant->with == RACE_KSM ? 1 : i + 1;
}

FIXTURE_SETUP(race)
{
	struct ibv_device_attr_ex ax;
	size_t i, pages;

	self->ksm_run = -1;
	self->zram.dev = -1;
	TU_OPEN_QUERY(&self->cfg, &self->v, &ax);
	TU_REQUIRE_CAP(ax.odp_caps.per_transport_caps.rc_odp_caps &
		       IBV_ODP_SUPPORT_WRITE, "RC WRITE to ODP MRs");
	ASSERT_EQ(0, vu_qp_pair_create(&self->v, &self->p));
	self->psz = getpagesize();
	pages = REGION / self->psz;
	self->region = mmap(NULL, REGION, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->region);
	ASSERT_EQ(0, madvise(self->region, REGION, MADV_NOHUGEPAGE));
	/*
	 * KSM merges identical pages only: there every page starts alike
	 */
	for (i = 0; i < pages; i++)
		tu_fill(self->region + i * self->psz, self->psz,
			page_seed(variant, i));
	self->local = malloc(2 * sizeof(uint64_t));
	ASSERT_NE(NULL, self->local);
	self->mr = vu_reg_mr(&self->v, self->region, REGION, ACC_ODP);
	self->lmr = vu_reg_mr(&self->v, self->local, 2 * sizeof(uint64_t),
			      IBV_ACCESS_LOCAL_WRITE);
	ASSERT_NE(NULL, self->mr);
	ASSERT_NE(NULL, self->lmr);

	switch (variant->with) {
	case RACE_KSM:
		self->ksm_run = tu_read_long(KSM_DIR "run");
		ASSERT_LE(0, self->ksm_run) TH_LOG("no KSM in this kernel");
		ASSERT_EQ(0, madvise(self->region, REGION, MADV_MERGEABLE));
		ASSERT_EQ(0, tu_write_long(KSM_DIR "sleep_millisecs", 0));
		ASSERT_EQ(0, tu_write_long(KSM_DIR "pages_to_scan", 4096));
		ASSERT_EQ(0, tu_write_long(KSM_DIR "run", 1));
		break;
	case RACE_PAGEOUT:
		/*
		 * far from full: a swap over half full frees the slot of a
		 * page swapped in, which dirties the page, and the READ
		 * before each WRITE would not leave it clean
		 */
		ASSERT_EQ(0, tu_zram_swap_on(&self->zram, 16 * REGION));
		ASSERT_EQ(0, pthread_create(&self->disturber, NULL,
					    pageout_loop, self));
		self->running = true;
		break;
	}
}

FIXTURE_TEARDOWN(race)
{
	atomic_store(&self->stop, true);
	if (self->running)
		pthread_join(self->disturber, NULL);
	if (self->ksm_run >= 0) {
		/* 2: unmerge every page, then stop, as before */
		tu_write_long(KSM_DIR "run", 2);
		tu_write_long(KSM_DIR "run", self->ksm_run);
	}
	vu_dereg_mr(&self->v, self->lmr);
	vu_dereg_mr(&self->v, self->mr);
	vu_qp_pair_destroy(&self->v, &self->p);
	free(self->local);
	if (self->region && self->region != MAP_FAILED)
		munmap(self->region, REGION);
	vu_close(&self->v);
	EXPECT_EQ(0, tu_zram_swap_off(&self->zram));
	EXPECT_TRUE(tu_live_back("umems", 0, 10000));
	EXPECT_TRUE(tu_live_back("entries", 0, 10000));
}

TEST_F_TIMEOUT(race, tags_survive, 7200)
{
	size_t pages = REGION / self->psz, i, k, off, r;
	size_t rounds = tu_rounds(500, 2000), most = rounds > 500 ? rounds : 500;
	long long moved = variant->vmstat ?
			  kv_file_value("/proc/vmstat", variant->vmstat) : 0;
	long long invals, merged = 0, sharing;
	uint8_t *want = malloc(self->psz);
	/* each page's last tag (0: none) and where it went */
	uint64_t *tag = calloc(pages, sizeof(uint64_t));
	size_t *tag_off = calloc(pages, sizeof(size_t));

	ASSERT_NE(NULL, want);
	ASSERT_NE(NULL, tag);
	ASSERT_NE(NULL, tag_off);
	if (variant->with == RACE_KSM) {
		/* the race starts from merged pages: ksmd's pace, polled */
		for (r = 0; r < 600 && merged <= 0; r++) {
			merged = tu_read_long(KSM_DIR "pages_sharing");
			if (merged <= 0)
				usleep(100 * 1000);
		}
		ASSERT_LT(0, merged) TH_LOG("ksmd merged nothing in 60 s");
	}
	for (r = 1; r <= most; r++) {
		uint8_t before[8];

		/* past the count: every 16th round, stop once it raced */
		if (r > rounds && (r - rounds) % 16 == 1 &&
		    tu_mr_counter(self->mr->rkey, "page_invalidations") > 0)
			break;
		i = (r * 7919) % pages;	/* every page, in a scattered order */
		off = (r * 8) % self->psz;
		/*
		 * READ first: a page swapped out comes back clean (its swap
		 * slot kept) and mapped writable, so the WRITE after it does
		 * not fault: only the mirror's dirty marking keeps its tag
		 * from being dropped with the clean page at the next pageout
		 */
		for (k = 0; k < 8; k++)
			before[k] = tu_pattern(off + k, page_seed(variant, i));
		if (tag[i])
			memcpy(before, &tag[i], 8);
		TU_ASSERT_OK(tu_xfer(&self->v, &self->p.a, IBV_WR_RDMA_READ,
				     &self->local[1], 8, self->lmr->lkey,
				     (uintptr_t)self->region + i * self->psz +
				     off, self->mr->rkey));
		ASSERT_EQ(0, memcmp(before, &self->local[1], 8))
			TH_LOG("round %zu: page %zu +%zu before the WRITE",
			       r, i, off);
		self->local[0] = r << 16 | i;
		TU_ASSERT_OK(tu_xfer(&self->v, &self->p.a, IBV_WR_RDMA_WRITE,
				     &self->local[0], 8, self->lmr->lkey,
				     (uintptr_t)self->region + i * self->psz +
				     off, self->mr->rkey));
		TU_ASSERT_OK(tu_xfer(&self->v, &self->p.a, IBV_WR_RDMA_READ,
				     &self->local[1], 8, self->lmr->lkey,
				     (uintptr_t)self->region + i * self->psz +
				     off, self->mr->rkey));
		ASSERT_EQ(self->local[0], self->local[1])
			TH_LOG("round %zu: page %zu +%zu read back by the device",
			       r, i, off);
		ASSERT_EQ(0, memcmp(&self->local[0],
				    self->region + i * self->psz + off, 8))
			TH_LOG("round %zu: page %zu +%zu read back by the CPU",
			       r, i, off);
		tag[i] = self->local[0];
		tag_off[i] = off;
		if (variant->with == RACE_KSM) {
			sharing = tu_read_long(KSM_DIR "pages_sharing");
			if (sharing > merged)
				merged = sharing;
		}
	}
	invals = tu_mr_counter(self->mr->rkey, "page_invalidations");
	atomic_store(&self->stop, true);
	ksft_print_msg("%zu rounds; page_invalidations %lld; %s %lld\n",
		       r - 1, invals,
		       variant->vmstat ?: "pages_sharing at most",
		       variant->vmstat ?
		       kv_file_value("/proc/vmstat", variant->vmstat) - moved :
		       merged);

	/* every page: its CPU contents, with its last tag in place */
	for (i = 0; i < pages; i++) {
		tu_fill(want, self->psz, page_seed(variant, i));
		if (tag[i])
			memcpy(want + tag_off[i], &tag[i], 8);
		ASSERT_TRUE(tu_same_bytes("page", self->region + i * self->psz,
					  want, self->psz))
			TH_LOG("page %zu", i);
	}
	EXPECT_LT(0, invals) TH_LOG("the MR saw no invalidation");
	if (variant->with == RACE_KSM) {
		EXPECT_LT(0, merged) TH_LOG("KSM merged no page");
	} else {
		EXPECT_LT(moved, kv_file_value("/proc/vmstat",
					       variant->vmstat))
			TH_LOG("%s did not move: no page was moved",
			       variant->vmstat);
	}
	free(want);
	free(tag);
	free(tag_off);
}

TEST_HARNESS_MAIN
