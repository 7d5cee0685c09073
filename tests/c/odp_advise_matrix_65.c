// SPDX-License-Identifier: GPL-2.0
/*
 * odp_advise_matrix - ibv_advise_mr() with lists of SGEs on rxe's ODP MRs
 * (reliability.md §5.2 and §8 #20; issue 12): the cases odp_advise_65
 * (one SGE at a time) does not cover. Built against rdma-core 65 (see
 * userspace/Makefile): rdma-core 44's rxe provider has no advise_mr.
 *
 * Every SGE of a list is checked before any prefetch runs, so a list
 * with one bad SGE prefetches nothing at all, whichever the bad one is
 * (told by the per-MR page_prefetch counter of every MR in the list):
 *   one lkey that names no MR                            ENOENT
 *   one lkey of a pinned (non-ODP) MR                    ENOENT (as mlx5,
 *                                                        whose lookup of
 *                                                        ODP mkeys fails)
 *   one SGE past its MR's end                            EFAULT
 *   PREFETCH_WRITE with one MR without LOCAL_WRITE       EPERM
 *   invalid flags (a bad lkey in the list too)           EINVAL (ib_core
 *                                                        checks flags first)
 *   an SGE of length 0 inside or at the end of its MR    0, prefetches
 *                                                        nothing for it
 *   an SGE of length 0 one byte past its MR              EFAULT
 * How many SGEs: the list travels as one uverbs attribute whose length is
 * a u16, so 4095 SGEs of 16 bytes is the most (65520 bytes); 4096 or more
 * are refused by libibverbs with EINVAL before the kernel sees them, and
 * an empty list by ib_core with EINVAL (the attribute's minimum size). rxe
 * takes 4095: a synchronous PREFETCH of 4095 one-page SGEs maps 4095
 * pages. The device's max_sge (32, for work requests) plays no part.
 * Asynchronous advice counts each SGE against its MR's bound of 64 in
 * flight: 65 SGEs naming one MR in one call are EBUSY (and prefetch
 * nothing); 4095 spread over 64 MRs are taken. Such a prefetch, followed
 * at once by ibv_dereg_mr() of all 64 MRs, or by the exit of the process,
 * ends within a bound and leaves odp_mirror's live counts where they
 * were (§5.2's last row).
 *
 * Device: RXE_ODP_DEV (default rxe0), RXE_ODP_GID_IDX (default 1); skips
 * without RC ODP support (a failure with our rxe).
 *
 * Mutation record (test-side breaks, built outside the tree and run in
 * the guest; each made the case named fail, then was reverted):
 *  - the "bad" lkey left good: multi_sge_bad_lkey (0 instead of ENOENT,
 *    page_prefetch 54, 48, 48 instead of 0).
 *  - 4096 SGEs expected to be taken: sge_count_limits (EINVAL, 22).
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

#define NPAGES		8
#define N_MRS		3
#define RW		(PROT_READ | PROT_WRITE)
#define ACC_ODP		(IBV_ACCESS_ON_DEMAND | IBV_ACCESS_LOCAL_WRITE | \
			 IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ)
#define MAX_SGES	4095	/* 65535 / sizeof(struct ibv_sge) */
#define ASYNC_MAX	64	/* asynchronous SGEs in flight per MR */
#define SYNC		IBV_ADVISE_MR_FLAG_FLUSH
#define ASYNC		0
#define RACE_MRS	64
#define RACE_MR_LEN	(1UL << 20)
#define RACE_MS		((uint64_t)tu_ms(30000))	/* a dereg or an exit taking longer hung */

static const enum ibv_advise_mr_advice advices[] = {
	IBV_ADVISE_MR_ADVICE_PREFETCH,
	IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE,
	IBV_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT,
};

FIXTURE(matrix) {
	struct vu_config	cfg;
	struct vu_ctx		v;
	size_t			pg, size;
	uint8_t			*buf[N_MRS];	/* NPAGES each */
	struct ibv_mr		*mr[N_MRS];	/* ODP, ACC_ODP */
	uint8_t			*pbuf;		/* NPAGES */
	struct ibv_mr		*pmr;		/* pinned */
	/* per-case extras, released at teardown */
	uint8_t			*big;
	size_t			big_len;
	struct ibv_mr		*xmr[RACE_MRS];
	struct ibv_sge		*sg;		/* MAX_SGES + 1 */
};

static uint8_t *map_rw(size_t size)
{
	void *p = mmap(NULL, size, RW, MAP_PRIVATE | MAP_ANONYMOUS |
		       MAP_NORESERVE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* RC WRITE and READ to ODP MRs: what the prefetched pages serve. */
static bool rc_odp_rw(const struct ibv_device_attr_ex *ax)
{
	const uint32_t need = IBV_ODP_SUPPORT_WRITE | IBV_ODP_SUPPORT_READ;

	return (ax->odp_caps.general_caps & IBV_ODP_SUPPORT) &&
	       (ax->odp_caps.per_transport_caps.rc_odp_caps & need) == need;
}

FIXTURE_SETUP(matrix)
{
	struct ibv_device_attr_ex ax;
	int i;

	TU_OPEN_QUERY(&self->cfg, &self->v, &ax);
	TU_REQUIRE_CAP(rc_odp_rw(&ax), "%s has no RC ODP WRITE/READ support",
		       self->cfg.dev_name);
	self->pg = (size_t)sysconf(_SC_PAGESIZE);
	self->size = NPAGES * self->pg;
	for (i = 0; i < N_MRS; i++) {
		self->buf[i] = map_rw(self->size);
		ASSERT_NE(NULL, self->buf[i]);
		self->mr[i] = vu_reg_mr(&self->v, self->buf[i], self->size,
					ACC_ODP);
		ASSERT_NE(NULL, self->mr[i]);
	}
	self->pbuf = map_rw(self->size);
	ASSERT_NE(NULL, self->pbuf);
	self->pmr = vu_reg_mr(&self->v, self->pbuf, self->size,
			      IBV_ACCESS_LOCAL_WRITE);
	ASSERT_NE(NULL, self->pmr);
	self->sg = calloc(MAX_SGES + 1, sizeof(*self->sg));
	ASSERT_NE(NULL, self->sg);
}

FIXTURE_TEARDOWN(matrix)
{
	int i;

	for (i = 0; i < RACE_MRS; i++)
		EXPECT_EQ(0, vu_dereg_mr(&self->v, self->xmr[i]));
	for (i = 0; i < N_MRS; i++)
		EXPECT_EQ(0, vu_dereg_mr(&self->v, self->mr[i]));
	EXPECT_EQ(0, vu_dereg_mr(&self->v, self->pmr));
	EXPECT_EQ(0, vu_close(&self->v));
	free(self->sg);
	/* the mappings last: nothing registered over them any more */
	for (i = 0; i < N_MRS; i++)
		if (self->buf[i])
			munmap(self->buf[i], self->size);
	if (self->pbuf)
		munmap(self->pbuf, self->size);
	if (self->big)
		munmap(self->big, self->big_len);
}

static const char *advice_str(enum ibv_advise_mr_advice a)
{
	return a == IBV_ADVISE_MR_ADVICE_PREFETCH ? "PREFETCH" :
	       a == IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE ? "PREFETCH_WRITE" :
	       "PREFETCH_NO_FAULT";
}

/* SGE @i of the case's list: [@off, +@len) of @mr. */
static void sge(FIXTURE_DATA(matrix) *self, int i, struct ibv_mr *mr,
		size_t off, uint32_t len)
{
	self->sg[i] = (struct ibv_sge){
		.addr = (uintptr_t)mr->addr + off, .length = len,
		.lkey = mr->lkey,
	};
}

/* The list's first @n SGEs, advised; 0 or the errno. */
#define ADVISE(self, advice, flags, n)					\
	ibv_advise_mr((self)->v.pd, advice, flags, (self)->sg, n)

/* The list of @n SGEs must get @want for every advice, sync and async. */
#define EXPECT_LIST(want, self, n) do {					\
	unsigned int __a;						\
	int __got;							\
									\
	for (__a = 0; __a < ARRAY_SIZE(advices); __a++) {		\
		__got = ADVISE(self, advices[__a], SYNC, n);		\
		EXPECT_EQ(want, __got) TH_LOG("%s sync of %d SGEs: %s",	\
			advice_str(advices[__a]), (int)(n),		\
			strerror(__got));				\
		__got = ADVISE(self, advices[__a], ASYNC, n);		\
		EXPECT_EQ(want, __got) TH_LOG("%s async of %d SGEs: %s", \
			advice_str(advices[__a]), (int)(n),		\
			strerror(__got));				\
	}								\
} while (0)

/* The per-MR page_prefetch counter of @mr must read @want. */
#define EXPECT_PREFETCHED(want, mr) do {				\
	long long __c = tu_mr_counter((mr)->rkey, "page_prefetch");	\
									\
	EXPECT_EQ((long long)(want), __c)				\
		TH_LOG("page_prefetch of the MR with rkey 0x%x",	\
		       (mr)->rkey);					\
} while (0)

/* None of the fixture's ODP MRs prefetched anything. */
static void nothing_prefetched(struct __test_metadata *_metadata,
			       FIXTURE_DATA(matrix) *self)
{
	int i;

	for (i = 0; i < N_MRS; i++)
		EXPECT_PREFETCHED(0, self->mr[i]);
}

/* ---- lists with one bad SGE ------------------------------------------- */

/* Control: a list over three MRs prefetches exactly its pages. */
TEST_F(matrix, multi_sge_all_good)
{
	size_t pg = self->pg;

	sge(self, 0, self->mr[0], 0, self->size);
	sge(self, 1, self->mr[1], 2 * pg + 10, 3 * pg);	/* 4 pages */
	sge(self, 2, self->mr[2], self->size - 1, 1);
	ASSERT_EQ(0, ADVISE(self, IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE, SYNC,
			    3));
	EXPECT_PREFETCHED(NPAGES, self->mr[0]);
	EXPECT_PREFETCHED(4, self->mr[1]);
	EXPECT_PREFETCHED(1, self->mr[2]);
}

/*
 * One lkey that names no MR, first, in the middle or last: ENOENT, and
 * no MR of the list prefetched anything; without it the list works.
 */
TEST_F(matrix, multi_sge_bad_lkey)
{
	static const int bad_at[] = { 0, 2, 3 };
	unsigned int k;
	int i, j;

	for (k = 0; k < ARRAY_SIZE(bad_at); k++) {
		for (i = 0, j = 0; i < 4; i++) {
			if (i == bad_at[k]) {
				sge(self, i, self->mr[0], 0, self->pg);
				self->sg[i].lkey ^= 0x5a5a00;
			} else {
				sge(self, i, self->mr[j++], 0, self->size);
			}
		}
		EXPECT_LIST(ENOENT, self, 4);
		nothing_prefetched(_metadata, self);
	}
	for (i = 0; i < N_MRS; i++)
		sge(self, i, self->mr[i], 0, self->size);
	EXPECT_EQ(0, ADVISE(self, IBV_ADVISE_MR_ADVICE_PREFETCH, SYNC,
			    N_MRS));
	for (i = 0; i < N_MRS; i++)
		EXPECT_PREFETCHED(NPAGES, self->mr[i]);
}

/* A pinned MR between two ODP MRs: ENOENT, nothing prefetched. */
TEST_F(matrix, multi_sge_non_odp_member)
{
	sge(self, 0, self->mr[0], 0, self->size);
	sge(self, 1, self->pmr, 0, self->size);
	sge(self, 2, self->mr[1], 0, self->size);
	EXPECT_LIST(ENOENT, self, 3);
	nothing_prefetched(_metadata, self);
}

/* The last SGE runs one byte past its MR, or starts at its end: EFAULT. */
TEST_F(matrix, multi_sge_past_mr_end)
{
	sge(self, 0, self->mr[0], 0, self->size);
	sge(self, 1, self->mr[2], 0, self->size);
	sge(self, 2, self->mr[1], self->pg, self->size - self->pg + 1);
	EXPECT_LIST(EFAULT, self, 3);
	sge(self, 2, self->mr[1], self->size, 1);
	EXPECT_LIST(EFAULT, self, 3);
	nothing_prefetched(_metadata, self);
}

/*
 * PREFETCH_WRITE of a list with an MR that has no LOCAL_WRITE: EPERM and
 * nothing prefetched; PREFETCH of the same list works.
 */
TEST_F(matrix, multi_sge_write_to_read_only_mr)
{
	struct ibv_mr *ro = vu_reg_mr(&self->v, self->buf[2], self->size,
				      IBV_ACCESS_ON_DEMAND |
				      IBV_ACCESS_REMOTE_READ);
	int ret;

	ASSERT_NE(NULL, ro);
	self->xmr[0] = ro;
	sge(self, 0, self->mr[0], 0, self->size);
	sge(self, 1, ro, 0, self->size);
	sge(self, 2, self->mr[1], 0, self->size);
	ret = ADVISE(self, IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE, SYNC, 3);
	EXPECT_EQ(EPERM, ret) TH_LOG("sync: %s", strerror(ret));
	ret = ADVISE(self, IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE, ASYNC, 3);
	EXPECT_EQ(EPERM, ret) TH_LOG("async: %s", strerror(ret));
	nothing_prefetched(_metadata, self);
	EXPECT_PREFETCHED(0, ro);
	EXPECT_EQ(0, ADVISE(self, IBV_ADVISE_MR_ADVICE_PREFETCH, SYNC, 3));
	EXPECT_PREFETCHED(NPAGES, self->mr[0]);
	EXPECT_PREFETCHED(NPAGES, ro);
	EXPECT_PREFETCHED(NPAGES, self->mr[1]);
}

/* Flag bits beyond FLUSH: EINVAL, before any lkey is looked at. */
TEST_F(matrix, multi_sge_invalid_flags)
{
	static const uint32_t bad[] = { SYNC | 2, 2, 1u << 31 };
	unsigned int k;
	int ret;

	sge(self, 0, self->mr[0], 0, self->size);
	sge(self, 1, self->mr[1], 0, self->size);
	for (k = 0; k < ARRAY_SIZE(bad); k++) {
		self->sg[2] = self->sg[1];
		ret = ADVISE(self, IBV_ADVISE_MR_ADVICE_PREFETCH, bad[k], 2);
		EXPECT_EQ(EINVAL, ret) TH_LOG("flags 0x%x: %s", bad[k],
					      strerror(ret));
		self->sg[1].lkey ^= 0x5a5a00;
		ret = ADVISE(self, IBV_ADVISE_MR_ADVICE_PREFETCH, bad[k], 2);
		EXPECT_EQ(EINVAL, ret)
			TH_LOG("flags 0x%x with a bad lkey: %s", bad[k],
			       strerror(ret));
		self->sg[1] = self->sg[2];
	}
	nothing_prefetched(_metadata, self);
}

/* ---- SGE length 0 -------------------------------------------------- */

/*
 * An SGE of length 0 at the start or at the end of its MR prefetches
 * nothing and is no error; one byte past the end it is EFAULT. Beside a
 * normal SGE it does not keep that one from working.
 */
TEST_F(matrix, sge_length_zero)
{
	sge(self, 0, self->mr[0], 0, 0);
	EXPECT_LIST(0, self, 1);
	sge(self, 0, self->mr[0], self->size, 0);
	EXPECT_LIST(0, self, 1);
	sge(self, 0, self->mr[0], self->size + 1, 0);
	EXPECT_LIST(EFAULT, self, 1);
	nothing_prefetched(_metadata, self);

	sge(self, 0, self->mr[0], self->pg, 0);
	sge(self, 1, self->mr[1], 0, self->size);
	EXPECT_EQ(0, ADVISE(self, IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE, SYNC,
			    2));
	EXPECT_PREFETCHED(0, self->mr[0]);
	EXPECT_PREFETCHED(NPAGES, self->mr[1]);
}

/* ---- how many SGEs ------------------------------------------------- */

/* self->big: RACE_MRS MiB without huge pages, mapped once. */
static void map_big(struct __test_metadata *_metadata,
		    FIXTURE_DATA(matrix) *self)
{
	if (self->big)
		return;
	self->big_len = RACE_MRS * RACE_MR_LEN;
	self->big = map_rw(self->big_len);
	ASSERT_NE(NULL, self->big);
	ASSERT_EQ(0, madvise(self->big, self->big_len, MADV_NOHUGEPAGE));
}

/* A fresh ODP MR over [@off, +@len) of self->big, in self->xmr[@slot]. */
static struct ibv_mr *big_mr(struct __test_metadata *_metadata,
			     FIXTURE_DATA(matrix) *self, int slot,
			     size_t off, size_t len)
{
	struct ibv_mr *mr;

	map_big(_metadata, self);
	mr = vu_reg_mr(&self->v, self->big + off, len, ACC_ODP);
	ASSERT_NE(NULL, mr);
	self->xmr[slot] = mr;
	return mr;
}

/*
 * 0 SGEs: EINVAL (ib_core). 4095 SGEs, one page each: a synchronous
 * PREFETCH maps 4095 pages; with the last one's lkey bad, nothing.
 * 4096: EINVAL from libibverbs, nothing prefetched.
 */
TEST_F_TIMEOUT(matrix, sge_count_limits, 300)
{
	size_t pg = self->pg, len = (MAX_SGES + 1) * pg;
	struct ibv_mr *a, *b;
	int i, ret;

	sge(self, 0, self->mr[0], 0, self->size);
	EXPECT_LIST(EINVAL, self, 0);
	nothing_prefetched(_metadata, self);

	a = big_mr(_metadata, self, 0, 0, len);
	b = big_mr(_metadata, self, 1, len, len);
	for (i = 0; i < MAX_SGES + 1; i++)
		sge(self, i, b, i * pg, pg);
	ret = ADVISE(self, IBV_ADVISE_MR_ADVICE_PREFETCH, SYNC, MAX_SGES + 1);
	EXPECT_EQ(EINVAL, ret) TH_LOG("%d SGEs: %s", MAX_SGES + 1,
				      strerror(ret));
	ret = ibv_advise_mr(self->v.pd, IBV_ADVISE_MR_ADVICE_PREFETCH, SYNC,
			    self->sg, UINT32_MAX);
	EXPECT_EQ(EINVAL, ret) TH_LOG("UINT32_MAX SGEs: %s", strerror(ret));
	self->sg[MAX_SGES - 1].lkey ^= 0x5a5a00;
	EXPECT_LIST(ENOENT, self, MAX_SGES);
	EXPECT_PREFETCHED(0, b);

	for (i = 0; i < MAX_SGES; i++)
		sge(self, i, a, i * pg, pg);
	ret = ADVISE(self, IBV_ADVISE_MR_ADVICE_PREFETCH, SYNC, MAX_SGES);
	ASSERT_EQ(0, ret) TH_LOG("%d SGEs: %s", MAX_SGES, strerror(ret));
	EXPECT_PREFETCHED(MAX_SGES, a);
}

/*
 * Asynchronous advice counts every SGE against its MR's bound: 64 SGEs
 * naming one MR are taken, 65 are EBUSY and prefetch nothing (a
 * synchronous prefetch of the same 65 is not bounded).
 */
TEST_F(matrix, async_sges_per_mr_bounded)
{
	size_t pg = self->pg;
	struct ibv_mr *a, *b;
	int i, ret;

	a = big_mr(_metadata, self, 0, 0, (ASYNC_MAX + 1) * pg);
	b = big_mr(_metadata, self, 1, RACE_MR_LEN, (ASYNC_MAX + 1) * pg);
	for (i = 0; i < ASYNC_MAX + 1; i++)
		sge(self, i, a, i * pg, pg);
	ret = ADVISE(self, IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE, ASYNC,
		     ASYNC_MAX + 1);
	EXPECT_EQ(EBUSY, ret) TH_LOG("%d SGEs on one MR: %s", ASYNC_MAX + 1,
				     strerror(ret));
	EXPECT_PREFETCHED(0, a);
	ret = ADVISE(self, IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE, SYNC,
		     ASYNC_MAX + 1);
	EXPECT_EQ(0, ret) TH_LOG("sync: %s", strerror(ret));
	EXPECT_PREFETCHED(ASYNC_MAX + 1, a);

	for (i = 0; i < ASYNC_MAX; i++)
		sge(self, i, b, i * pg, pg);
	ret = ADVISE(self, IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE, ASYNC,
		     ASYNC_MAX);
	EXPECT_EQ(0, ret) TH_LOG("%d SGEs on one MR: %s", ASYNC_MAX,
				 strerror(ret));
}

/* ---- 4095 SGEs in flight, then dereg or exit ---------------------- */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * In @v: RACE_MRS ODP MRs of 1 MiB over @big (into @mrs) and one
 * asynchronous PREFETCH_WRITE of 4095 SGEs of 16 KiB over them, 64 per
 * MR (63 on the last). Returns 0 or the errno of the registration (with
 * the MRs registered so far in @mrs) or of ibv_advise_mr().
 */
static int race_advise(struct vu_ctx *v, uint8_t *big, struct ibv_mr **mrs,
		       struct ibv_sge *sg)
{
	const uint32_t len = RACE_MR_LEN / ASYNC_MAX;
	int i;

	for (i = 0; i < RACE_MRS; i++) {
		mrs[i] = ibv_reg_mr(v->pd, big + i * RACE_MR_LEN, RACE_MR_LEN,
				    ACC_ODP);
		if (!mrs[i])
			return errno;
	}
	for (i = 0; i < MAX_SGES; i++)
		sg[i] = (struct ibv_sge){
			.addr = (uintptr_t)big + (uint64_t)i * len,
			.length = len, .lkey = mrs[i / ASYNC_MAX]->lkey,
		};
	return ibv_advise_mr(v->pd, IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE,
			     ASYNC, sg, MAX_SGES);
}

/*
 * The asynchronous prefetch of 4095 SGEs over 64 MRs (race_advise()),
 * then at once: ibv_dereg_mr() of all 64 in this process (each dereg and
 * all of them within RACE_MS), or the exit of a child that did the same
 * (reaped within RACE_MS). Afterwards odp_mirror holds the umems it held
 * before, within 5 s; the dmesg gate checks that nothing warned. Rounds:
 * tu_rounds(4, 200), alternating.
 */
TEST_F_TIMEOUT(matrix, async_max_sges_then_dereg_or_exit, 1800)
{
	long rounds = tu_rounds(4, 200), r, umems0;
	uint64_t t0, worst_dereg = 0, worst_exit = 0;
	int i, ret, status;
	pid_t pid;

	TU_REQUIRE_CAP(!access(TU_LIVE_PATH, R_OK),
		       "no %s (odp_mirror not loaded?)", TU_LIVE_PATH);
	map_big(_metadata, self);
	umems0 = tu_live_count("umems");

	for (r = 0; r < rounds; r++) {
		if (r & 1) {
			fflush(NULL);
			pid = fork();
			ASSERT_LE(0, pid);
			if (!pid) {
				struct vu_ctx v;

				if (vu_open(&v, &self->cfg))
					_exit(10);
				_exit(race_advise(&v, self->big, self->xmr,
						  self->sg) ? 11 : 0);
			}
			t0 = now_ms();
			while (waitpid(pid, &status, WNOHANG) == 0 &&
			       now_ms() - t0 < RACE_MS)
				usleep(1000);
			if (now_ms() - t0 >= RACE_MS) {
				kill(pid, SIGKILL);
				waitpid(pid, &status, 0);
				ASSERT_TRUE(false) TH_LOG("round %ld: the child hung",
							  r);
			}
			ASSERT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status))
				TH_LOG("round %ld: child status 0x%x", r,
				       status);
			if (now_ms() - t0 > worst_exit)
				worst_exit = now_ms() - t0;
		} else {
			ret = race_advise(&self->v, self->big, self->xmr,
					  self->sg);
			ASSERT_EQ(0, ret) TH_LOG("round %ld: %s", r,
						 strerror(ret));
			t0 = now_ms();
			for (i = 0; i < RACE_MRS; i++) {
				ASSERT_EQ(0, vu_dereg_mr(&self->v,
							 self->xmr[i]));
				self->xmr[i] = NULL;
			}
			if (now_ms() - t0 > worst_dereg)
				worst_dereg = now_ms() - t0;
			ASSERT_GT(RACE_MS, now_ms() - t0)
				TH_LOG("round %ld: dereg took %" PRIu64 " ms",
				       r, now_ms() - t0);
		}
		ASSERT_TRUE(tu_live_back("umems", umems0, 5000))
			TH_LOG("round %ld: odp_mirror holds %ld umems, want %ld",
			       r, tu_live_count("umems"), umems0);
	}
	ksft_print_msg("%ld rounds of 4095 async SGEs: slowest dereg of 64 MRs %" PRIu64 " ms, slowest exit %" PRIu64 " ms\n",
		       rounds, worst_dereg, worst_exit);
}

TEST_HARNESS_MAIN
