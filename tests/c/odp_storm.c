// SPDX-License-Identifier: GPL-2.0
/*
 * odp_storm - translation memory follows residency under a fault storm
 * that races invalidations (DESIGN.md invariant 4; issue 10 item 6).
 *
 * A fault snapshots the CPU page tables, reserves table slots for the
 * valid pages (outside its lock, where it may allocate), then records
 * them under the lock unless an invalidation came in between, in which
 * case it snapshots again. A reservation that the retried snapshot no
 * longer fills must be released: a reserved slot is invisible to lookups
 * and invalidations and keeps its xarray node until the MR goes, so
 * translation memory would follow "ever touched" instead of "resident".
 *
 * The storm: a thread writes a 2 MiB chunk of a 64 MiB ODP region (all
 * its pages become valid) and drops it with MADV_DONTNEED, over and over,
 * while the peer QP READs 8 bytes here and there: each READ faults a
 * 2 MiB window whose valid pages it reserves, and DONTNEED often wins the
 * race. Afterwards the whole region is dropped: no entry may be left, and
 * the MR may hold no xarray node: the kernel's radix_tree_node count (in
 * /proc/slabinfo) may drop by no more than a few when the MR is then
 * deregistered (its tables destroyed). Counting the nodes the MR held,
 * rather than the system's before and after the storm, leaves out the
 * nodes other kernel users take meanwhile: on the debug kernel the
 * system's count rose by 51 over the storm with no entry left.
 *
 * Mutation record (with the earlier count, the system's before and after
 * the storm): on the tree before odp_unreserve() the nodes grew
 * (638 -> 649 after 1500 READs against 55 chunk rounds); with it they
 * come back exactly. Under TCG, with both vCPUs on one host thread, the
 * window between snapshot and lock is rarely preempted, so the leak per
 * storm is small; the slack is below it. Again on 2026-12-06, with
 * odp_unreserve() made to return at once: 3 storms on the stock kernel,
 * each 651 to 653 nodes before, after and once the MR went, so no node
 * was held: no snapshot was retried in them, and only a retried (or
 * failed) snapshot leaves a reservation behind. The case guards that
 * path only in the storms that retry.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <linux/membarrier.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "verbs_util.h"
#include "test_util.h"

#define REGION		(64UL << 20)
#define CHUNK		(2UL << 20)
#define READS		1500
/*
 * Nodes other kernel users may take meanwhile: measured after two RCU
 * grace periods, the count came back exactly (629 -> 629, 630 -> 630).
 */
#define NODE_SLACK	6
#define ACC_ODP		(IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ | \
			 IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_ON_DEMAND)

/*
 * Active radix_tree_node objects (xarray nodes), or -1. Erased nodes are
 * freed after an RCU grace period: let two pass first (MEMBARRIER_CMD_GLOBAL
 * is synchronize_rcu()), so that nodes already erased are not counted.
 * Then shrink the cache: kmem_cache_shrink() flushes the per-CPU slabs
 * and, on a KASAN kernel, releases the cache's objects held in KASAN's
 * quarantine, which would otherwise still count as active (measured on
 * the debug kernel without it: 2312 -> 3209 with no entry left).
 */
static long xa_nodes(void)
{
	char line[512];
	long active = -1;
	FILE *f;

	if (syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) ||
	    syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0))
		return -1;
	if (tu_write_long("/sys/kernel/slab/radix_tree_node/shrink", 1))
		return -1;
	f = fopen("/proc/slabinfo", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "radix_tree_node %ld", &active) == 1)
			break;
	fclose(f);
	return active;
}

struct storm {
	uint8_t		*region;
	volatile bool	stop;
	unsigned long	rounds;
};

/* Make a chunk's pages valid, then drop them; until told to stop. */
static void *churn(void *arg)
{
	struct storm *s = arg;
	unsigned long c = 0;

	while (!s->stop) {
		uint8_t *chunk = s->region + (c++ % (REGION / CHUNK)) * CHUNK;

		memset(chunk, 0x3c, CHUNK);
		madvise(chunk, CHUNK, MADV_DONTNEED);
		s->rounds++;
	}
	return NULL;
}

FIXTURE(storm) {
};

FIXTURE_SETUP(storm)
{
}

FIXTURE_TEARDOWN(storm)
{
}

TEST_F_TIMEOUT(storm, reservations_follow_residency, 400)
{
	struct vu_config cfg;
	struct vu_ctx v;
	struct ibv_device_attr_ex ax;
	struct vu_qp_pair p;
	struct storm s = { 0 };
	struct ibv_mr *mr, *lmr;
	uint64_t local = 0;
	long before, after, freed, entries;
	unsigned int seed = 12345;
	pthread_t t;
	int i, st;

	TU_OPEN_QUERY(&cfg, &v, &ax);
	ASSERT_TRUE(ax.odp_caps.general_caps & IBV_ODP_SUPPORT)
		TH_LOG("our rxe must advertise ODP");
	ASSERT_EQ(0, vu_qp_pair_create(&v, &p));
	s.region = mmap(NULL, REGION, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, s.region);
	/* 4 KiB pages: one slot per page */
	ASSERT_EQ(0, madvise(s.region, REGION, MADV_NOHUGEPAGE));
	mr = vu_reg_mr(&v, s.region, REGION, ACC_ODP);
	ASSERT_NE(NULL, mr);
	lmr = vu_reg_mr(&v, &local, sizeof(local), IBV_ACCESS_LOCAL_WRITE);
	ASSERT_NE(NULL, lmr);

	before = xa_nodes();
	ASSERT_LT(0, before) TH_LOG("no radix_tree_node in /proc/slabinfo");
	ASSERT_EQ(0, pthread_create(&t, NULL, churn, &s));
	for (i = 0; i < READS; i++) {
		uint64_t off = (rand_r(&seed) % (REGION / 8)) * 8;

		st = tu_xfer(&v, &p.a, IBV_WR_RDMA_READ, &local, 8, lmr->lkey,
			     (uintptr_t)s.region + off, mr->rkey);
		if (st != IBV_WC_SUCCESS)
			break;
	}
	s.stop = true;
	pthread_join(t, NULL);
	TU_ASSERT_OK(st);

	ASSERT_EQ(0, madvise(s.region, REGION, MADV_DONTNEED));
	entries = tu_live_count("entries");
	after = xa_nodes();
	vu_dereg_mr(&v, mr);
	freed = xa_nodes();
	ksft_print_msg("%d READs against %lu chunk rounds: radix_tree_node %ld -> %ld, %ld after the MR went; entries %ld\n",
		       READS, s.rounds, before, after, freed, entries);
	EXPECT_EQ(0, entries);
	EXPECT_GE(freed + NODE_SLACK, after)
		TH_LOG("the MR held %ld xarray nodes with no entry: reservations outlived their faults",
		       after - freed);

	vu_dereg_mr(&v, lmr);
	munmap(s.region, REGION);
	vu_qp_pair_destroy(&v, &p);
	vu_close(&v);
}

TEST_HARNESS_MAIN
