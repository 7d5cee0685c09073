// SPDX-License-Identifier: GPL-2.0
/*
 * odp_large - ODP MRs that are large, or backed by huge pages (issue 6,
 * "Huge pages" and "Scale and memory"):
 *
 *  - explicit ODP MRs of 2, 3, 4 and 5 GiB over MAP_NORESERVE anonymous
 *    memory register, and every byte of them is reachable: 8-byte markers
 *    at the first and last bytes and around the 2^31 and 2^32 offsets,
 *    and 64 KiB transfers that cross those offsets, go in and out through
 *    the MR's rkey (remote WRITE/READ) and its lkey (local SGE), and the
 *    CPU sees them (an int length or offset would truncate). Only those
 *    few pages are ever touched: the guest has 4 GiB.
 *  - a hugetlb ODP MR of 64 MiB (32 pages of 2 MiB; reserved through
 *    /proc/sys/vm/nr_hugepages when fewer than 40 are free, restored
 *    afterwards) moves data byte-exact with remote WRITEs and READs in
 *    chunks that cross huge page boundaries, with and without
 *    IBV_ACCESS_HUGETLB.
 *  - a PMD-mapped THP under an ODP MR is split (mprotect/munmap of one
 *    4 KiB page in its middle) and collapsed again (MADV_COLLAPSE) by a
 *    second thread while remote WRITEs and READs of the rest go on: the
 *    other pages stay byte-exact, and the page in the middle is written
 *    and read exactly when its current mapping allows it.
 *  - huge pages dropped under traffic (reliability.md §8 #16): a thread
 *    punches holes in a shared hugetlb memfd (variant odp_shared_file,
 *    fallocate) or MADV_DONTNEEDs the private mapping, one odd huge page
 *    at a time, while remote WRITEs of tagged bytes land anywhere in the
 *    MR and are READ back (drop_during_traffic).
 *  - accesses that begin anywhere in a huge page nothing has touched yet
 *    (hugetlb, both variants, and MADV_HUGEPAGE THP): remote WRITEs and
 *    READs that start at its first byte, in its first 4 KiB page, in
 *    its middle, in its last 4 KiB page and at its last byte, and ones
 *    that run on into the next untouched huge page; FETCH_ADD and
 *    CMP_SWP at its first word, in its middle, in its last 4 KiB page and
 *    at its last word. Each position on huge pages of its own, checked
 *    byte-exact against a shadow of the whole region; the QPs retry an
 *    RNR NAK TU_RNR_RETRY times, so a page that never faults in ends
 *    the access with IBV_WC_RNR_RETRY_EXC_ERR instead of a hang.
 *
 * Device: RXE_ODP_DEV (default rxe0), RXE_ODP_GID_IDX (default 1); skips
 * when the device does not exist or has no RC ODP WRITE/READ support.
 *
 * Mutation record (kernel changes built in a scratch copy of the tree and
 * run in the guest; each made the cases named fail):
 *  - odp_mirror_umem_get() takes the length as an int: all four large
 *    cases (2-4 GiB fail to register, 5 GiB has an unreachable tail).
 *  - odp_usable_pfn() ignores the page's offset inside a huge entry:
 *    both hugetlb cases, thp.
 *  - the invalidate callback keeps huge entries: thp (a WRITE of the
 *    PROT_NONE page succeeds); drop_during_traffic, all three variants
 *    ("round 12: the WRITE at 0x26d92c8 is not in memory": it landed in
 *    the dropped page).
 *  - odp_fault() widens its snapshot to the PMD but requests only the
 *    access's pages, and hmm_range_fault() takes a hugetlb entry's
 *    request from the first page it reaches (main before d6cf146):
 *    hugetlb.{odp,odp_access_hugetlb}.untouched_write_edges and
 *    untouched_read_edges (7 of 9 positions end in
 *    IBV_WC_RNR_RETRY_EXC_ERR, all but the two that begin in the first
 *    4 KiB page), untouched_atomic_edges (4 of 5: all but the first
 *    word; IBV_WC_REM_ACCESS_ERR, since before patch 0007 the retry of
 *    an RNR-NAKed atomic was not executed again). The thp cases pass
 *    there: hmm faults a PMD hole from its start.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <inttypes.h>
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
#include "verbs_util.h"
#include "test_util.h"

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE		25
#endif
#ifndef MAP_HUGE_SHIFT
#define MAP_HUGE_SHIFT		26
#endif
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE	0x100000
#endif

#define GIB		(1ULL << 30)
#define MIB		(1UL << 20)
#define RW		(PROT_READ | PROT_WRITE)
#define ACC_ODP		(IBV_ACCESS_ON_DEMAND | IBV_ACCESS_LOCAL_WRITE | \
			 IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ)
#define ACC_PEER	(IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | \
			 IBV_ACCESS_REMOTE_READ)

#define HUGE_SZ		(2UL << 20)
#define HUGE_SYSFS	"/sys/kernel/mm/hugepages/hugepages-2048kB/"
#define HUGE_NR_PROC	"/proc/sys/vm/nr_hugepages"
#define HUGE_WANT_FREE	40
#define HUGETLB_LEN	(64UL << 20)

#define THP_CYCLES	50
/* a cut-down run's (the debug kernel's: 50 cycles took 2243 s there) */
#define THP_CUT_CYCLES	10
#define THP_MID_PAGE	300	/* the page that is split off, of 512 */

/* ---- shared helpers ---------------------------------------------------- */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int open_odp(struct vu_config *cfg, struct vu_ctx *v, char *why,
		    size_t why_len)
{
	const uint32_t need = IBV_ODP_SUPPORT_WRITE | IBV_ODP_SUPPORT_READ;
	struct ibv_device_attr_ex ax;
	int ret = tu_open(cfg, v);

	if (ret == -ENODEV) {
		snprintf(why, why_len, "no RDMA device %s", cfg->dev_name);
		return 1;
	}
	if (ret)
		return ret;
	memset(&ax, 0, sizeof(ax));
	ret = ibv_query_device_ex(v->ctx, NULL, &ax);
	if (ret)
		return -ret;
	if (!(ax.odp_caps.general_caps & IBV_ODP_SUPPORT) ||
	    (ax.odp_caps.per_transport_caps.rc_odp_caps & need) != need) {
		snprintf(why, why_len, "%s has no RC ODP WRITE/READ support",
			 cfg->dev_name);
		return 1;
	}
	return 0;
}

static void *map_rw(size_t size, int extra)
{
	void *p = mmap(NULL, size, RW, MAP_PRIVATE | MAP_ANONYMOUS | extra,
		       -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* ---- 2, 3, 4 and 5 GiB MRs ------------------------------------------- */

FIXTURE(large) {
	struct vu_config	cfg;
	struct vu_ctx		v;
	struct vu_qp_pair	qps;
	uint8_t			*buf;
	size_t			len;
	uint8_t			*peer;	/* 1 MiB: src half, dst half */
	struct ibv_mr		*mr, *pmr;
};

FIXTURE_VARIANT(large) {
	unsigned int	gib;
};

FIXTURE_VARIANT_ADD(large, gib2) { .gib = 2 };
FIXTURE_VARIANT_ADD(large, gib3) { .gib = 3 };
FIXTURE_VARIANT_ADD(large, gib4) { .gib = 4 };
FIXTURE_VARIANT_ADD(large, gib5) { .gib = 5 };

FIXTURE_SETUP(large)
{
	char why[128];
	uint64_t t0;
	int ret;

	ret = open_odp(&self->cfg, &self->v, why, sizeof(why));
	TU_REQUIRE_CAP(ret <= 0, "%s", why);
	ASSERT_EQ(0, ret);
	ASSERT_EQ(0, vu_qp_pair_create(&self->v, &self->qps));
	self->peer = map_rw(MIB, 0);
	ASSERT_NE(NULL, self->peer);
	self->pmr = vu_reg_mr(&self->v, self->peer, MIB, ACC_PEER);
	ASSERT_NE(NULL, self->pmr);

	self->len = variant->gib * GIB;
	self->buf = map_rw(self->len, MAP_NORESERVE);
	ASSERT_NE(NULL, self->buf) TH_LOG("mmap(%zu, MAP_NORESERVE): %s",
					  self->len, strerror(errno));
	t0 = now_ms();
	self->mr = vu_reg_mr(&self->v, self->buf, self->len, ACC_ODP);
	ASSERT_NE(NULL, self->mr) TH_LOG("ODP MR of %u GiB: %s", variant->gib,
					 strerror(errno));
	ksft_print_msg("%u GiB ODP MR registered in %" PRIu64 " ms\n",
		       variant->gib, now_ms() - t0);
	ASSERT_EQ(self->len, self->mr->length);
}

FIXTURE_TEARDOWN(large)
{
	EXPECT_EQ(0, vu_qp_pair_destroy(&self->v, &self->qps));
	EXPECT_EQ(0, vu_dereg_mr(&self->v, self->mr));
	EXPECT_EQ(0, vu_dereg_mr(&self->v, self->pmr));
	if (self->buf)
		munmap(self->buf, self->len);
	if (self->peer)
		munmap(self->peer, MIB);
	EXPECT_EQ(0, vu_close(&self->v));
}

/*
 * Bytes [@off, @off + @n) of the big MR, four ways: a remote WRITE lands
 * (the CPU sees it), a remote READ returns what the CPU wrote, a WRITE
 * with the big MR as local source carries its bytes out, a READ with the
 * big MR as local destination brings bytes in (the CPU sees them).
 */
static void four_ways(struct __test_metadata *_metadata,
		      FIXTURE_DATA(large) *self, uint64_t off, uint32_t n,
		      unsigned int seed)
{
	uint8_t *src = self->peer, *dst = self->peer + MIB / 2;
	uint8_t *at = self->buf + off;
	uint64_t raddr = (uintptr_t)at;
	struct vu_qp *q = &self->qps.a;
	char what[96];

	ASSERT_LE(n, MIB / 2);
	/* remote WRITE: peer -> big MR, through its rkey */
	tu_fill(src, n, seed);
	TU_ASSERT_OK(tu_xfer(&self->v, q, IBV_WR_RDMA_WRITE, src, n,
			     self->pmr->lkey, raddr, self->mr->rkey));
	snprintf(what, sizeof(what), "CPU view after WRITE at 0x%" PRIx64, off);
	ASSERT_TRUE(tu_pattern_bytes(what, at, seed, n));

	/* remote READ: big MR -> peer, after the CPU wrote new bytes */
	tu_fill(at, n, seed + 1);
	memset(dst, TU_POISON, n);
	TU_ASSERT_OK(tu_xfer(&self->v, q, IBV_WR_RDMA_READ, dst, n,
			     self->pmr->lkey, raddr, self->mr->rkey));
	snprintf(what, sizeof(what), "READ at 0x%" PRIx64, off);
	ASSERT_TRUE(tu_pattern_bytes(what, dst, seed + 1, n));

	/* the big MR as local source of a WRITE, through its lkey */
	memset(dst, TU_POISON, n);
	TU_ASSERT_OK(tu_xfer(&self->v, q, IBV_WR_RDMA_WRITE, at, n,
			     self->mr->lkey, (uintptr_t)dst, self->pmr->rkey));
	snprintf(what, sizeof(what), "WRITE from lkey at 0x%" PRIx64, off);
	ASSERT_TRUE(tu_pattern_bytes(what, dst, seed + 1, n));

	/* the big MR as local destination of a READ */
	tu_fill(src, n, seed + 2);
	TU_ASSERT_OK(tu_xfer(&self->v, q, IBV_WR_RDMA_READ, at, n,
			     self->mr->lkey, (uintptr_t)src, self->pmr->rkey));
	snprintf(what, sizeof(what), "CPU view after READ into lkey at 0x%" PRIx64,
		 off);
	ASSERT_TRUE(tu_pattern_bytes(what, at, seed + 2, n));
}

TEST_F_TIMEOUT(large, every_byte_reachable, 300)
{
	const uint64_t len = self->len;
	const uint64_t marks[] = {
		0, (1ULL << 31) - 4, (1ULL << 31) + 1, (1ULL << 32) - 4,
		(1ULL << 32) + 1, len - 8,
	};
	const uint64_t bounds[] = { 1ULL << 31, 1ULL << 32 };
	const uint32_t span_len = 64 << 10;
	uint64_t from;
	unsigned int i, seed = 10, done = 0;
	long long faults;

	for (i = 0; i < sizeof(marks) / sizeof(marks[0]); i++) {
		if (marks[i] + 8 > len)
			continue;
		four_ways(_metadata, self, marks[i], 8, seed);
		seed += 3;
		done++;
	}
	/* 64 KiB transfers across 2^31 and 2^32, or up to it at the end */
	for (i = 0; i < sizeof(bounds) / sizeof(bounds[0]); i++) {
		if (bounds[i] > len)
			continue;
		from = bounds[i] - span_len / 2;
		if (bounds[i] + span_len / 2 > len)
			from = bounds[i] - span_len;
		four_ways(_metadata, self, from, span_len, seed);
		seed += 3;
		done++;
	}
	ASSERT_LE(3, done);
	/* only what the markers touched was faulted in: a few dozen pages */
	faults = tu_mr_counter(self->mr->rkey, "page_faults");
	ksft_print_msg("%u ranges checked; the MR faulted %lld pages\n", done,
		       faults);
	if (faults >= 0)
		ASSERT_GE(200, faults);
}

/* ---- a hugetlb MR of 64 MiB -------------------------------------------- */

FIXTURE(hugetlb) {
	struct vu_config	cfg;
	struct vu_ctx		v;
	struct vu_qp_pair	qps;
	long			nr_saved;	/* -1: nr_hugepages untouched */
	int			fd;		/* the shared variant's memfd */
	uint8_t			*buf, *src, *dst;
	uint8_t			*want;	/* edge cases: shadow of buf */
	struct ibv_mr		*mr, *smr, *dmr;
};

FIXTURE_VARIANT(hugetlb) {
	unsigned int	access;
	bool		shared;		/* a MAP_SHARED hugetlb memfd */
};

FIXTURE_VARIANT_ADD(hugetlb, odp) { .access = ACC_ODP };
FIXTURE_VARIANT_ADD(hugetlb, odp_access_hugetlb) {
	.access = ACC_ODP | IBV_ACCESS_HUGETLB,
};
FIXTURE_VARIANT_ADD(hugetlb, odp_shared_file) {
	.access = ACC_ODP, .shared = true,
};

FIXTURE_SETUP(hugetlb)
{
	long nr, free_pages;
	char why[128];
	int ret;

	self->nr_saved = -1;
	self->fd = -1;
	ret = open_odp(&self->cfg, &self->v, why, sizeof(why));
	TU_REQUIRE_CAP(ret <= 0, "%s", why);
	ASSERT_EQ(0, ret);

	nr = tu_read_long(HUGE_SYSFS "nr_hugepages");
	free_pages = tu_read_long(HUGE_SYSFS "free_hugepages");
	if (nr < 0 || free_pages < 0)
		SKIP(return, "no 2 MiB hugetlb pages (%s)", HUGE_SYSFS);
	if (free_pages < HUGE_WANT_FREE) {
		ret = tu_write_long(HUGE_NR_PROC,
				 nr + HUGE_WANT_FREE - free_pages);
		if (ret)
			SKIP(return, "cannot write %s: %s", HUGE_NR_PROC,
			     strerror(-ret));
		self->nr_saved = nr;
		free_pages = tu_read_long(HUGE_SYSFS "free_hugepages");
		ksft_print_msg("nr_hugepages %ld -> %ld, %ld free\n", nr,
			       tu_read_long(HUGE_SYSFS "nr_hugepages"),
			       free_pages);
	}
	if (free_pages < (long)(HUGETLB_LEN / HUGE_SZ))
		SKIP(return, "only %ld free 2 MiB pages", free_pages);

	ASSERT_EQ(0, vu_qp_pair_create(&self->v, &self->qps));
	if (variant->shared) {
		self->fd = memfd_create("odp_large", MFD_HUGETLB |
					(21 << MAP_HUGE_SHIFT));
		ASSERT_LE(0, self->fd) TH_LOG("memfd_create(MFD_HUGETLB): %s",
					      strerror(errno));
		ASSERT_EQ(0, ftruncate(self->fd, HUGETLB_LEN));
		self->buf = mmap(NULL, HUGETLB_LEN, RW, MAP_SHARED, self->fd,
				 0);
		if (self->buf == MAP_FAILED)
			self->buf = NULL;
	} else {
		self->buf = map_rw(HUGETLB_LEN,
				   MAP_HUGETLB | (21 << MAP_HUGE_SHIFT));
	}
	ASSERT_NE(NULL, self->buf) TH_LOG("mmap(MAP_HUGETLB): %s",
					  strerror(errno));
	self->src = map_rw(HUGETLB_LEN, 0);
	self->dst = map_rw(HUGETLB_LEN, 0);
	ASSERT_NE(NULL, self->src);
	ASSERT_NE(NULL, self->dst);
	self->smr = vu_reg_mr(&self->v, self->src, HUGETLB_LEN,
			      IBV_ACCESS_LOCAL_WRITE);
	ASSERT_NE(NULL, self->smr);
	self->dmr = vu_reg_mr(&self->v, self->dst, HUGETLB_LEN,
			      IBV_ACCESS_LOCAL_WRITE);
	ASSERT_NE(NULL, self->dmr);
	self->mr = vu_reg_mr(&self->v, self->buf, HUGETLB_LEN, variant->access);
	ASSERT_NE(NULL, self->mr) TH_LOG("hugetlb ODP MR (access 0x%x): %s",
					 variant->access, strerror(errno));
}

FIXTURE_TEARDOWN(hugetlb)
{
	EXPECT_EQ(0, vu_qp_pair_destroy(&self->v, &self->qps));
	EXPECT_EQ(0, vu_dereg_mr(&self->v, self->mr));
	EXPECT_EQ(0, vu_dereg_mr(&self->v, self->smr));
	EXPECT_EQ(0, vu_dereg_mr(&self->v, self->dmr));
	if (self->buf)
		munmap(self->buf, HUGETLB_LEN);
	if (self->src)
		munmap(self->src, HUGETLB_LEN);
	if (self->dst)
		munmap(self->dst, HUGETLB_LEN);
	if (self->want)
		munmap(self->want, HUGETLB_LEN);
	if (self->fd >= 0)
		close(self->fd);
	EXPECT_EQ(0, vu_close(&self->v));
	if (self->nr_saved >= 0)
		EXPECT_EQ(0, tu_write_long(HUGE_NR_PROC, self->nr_saved));
}

/*
 * 64 MiB in by remote WRITEs of 3 MiB + 1234 bytes (so chunks start and
 * end inside huge pages), checked by the CPU; then, after the CPU
 * rewrites it, 64 MiB out by remote READs of 4 MiB - 4 KiB + 17 bytes.
 * A cut-down run (the debug kernel's: 128 MiB took 253 to 287 s there)
 * moves the first 16 MiB each way, still 6 WRITEs and 5 READs across
 * huge page boundaries. The retransmission timeouts the transfers met
 * are printed: rxe counts them in completer_retry_err.
 */
TEST_F_TIMEOUT(hugetlb, data_byte_exact, 400)
{
	const size_t n = tu_cut_down() ? 16 * MIB : HUGETLB_LEN;
	const uint32_t wchunk = 3 * MIB + 1234, rchunk = 4 * MIB - 4096 + 17;
	uint64_t base = (uintptr_t)self->buf, t0 = now_ms();
	long long timeouts = tu_dev_counter(&self->v, "completer_retry_err");
	size_t off;
	uint32_t c;

	ASSERT_EQ(HUGE_SZ / 1024, tu_smaps_kb(self->buf, "KernelPageSize"));

	tu_fill(self->src, n, 50);
	for (off = 0; off < n; off += c) {
		c = n - off < wchunk ? n - off : wchunk;
		TU_ASSERT_OK(tu_xfer(&self->v, &self->qps.a, IBV_WR_RDMA_WRITE,
				     self->src + off, c, self->smr->lkey,
				     base + off, self->mr->rkey));
	}
	ASSERT_TRUE(tu_same_bytes("hugetlb MR after the WRITEs",
				  self->buf, self->src, n));

	tu_fill(self->buf, n, 51);
	memset(self->dst, TU_POISON, n);
	for (off = 0; off < n; off += c) {
		c = n - off < rchunk ? n - off : rchunk;
		TU_ASSERT_OK(tu_xfer(&self->v, &self->qps.a, IBV_WR_RDMA_READ,
				     self->dst + off, c, self->dmr->lkey,
				     base + off, self->mr->rkey));
	}
	ASSERT_TRUE(tu_pattern_bytes("READs from the hugetlb MR",
				     self->dst, 51, n));
	ksft_print_msg("%zu MiB through the hugetlb MR in %" PRIu64 " ms; %lld retransmission timeouts\n",
		       2 * n / MIB, now_ms() - t0,
		       tu_dev_counter(&self->v, "completer_retry_err") -
		       timeouts);
}

/* ---- THP split and collapse during traffic ----------------------------- */

enum mid_state { MID_RW, MID_NONE, MID_RO, MID_UNMAPPED };

static const char *const mid_name[] = {
	"read-write", "PROT_NONE", "PROT_READ", "unmapped",
};

FIXTURE(thp) {
	struct vu_config	cfg;
	struct vu_ctx		v;
	struct vu_qp_pair	qps;
	size_t			pg;
	uint8_t			*map;	/* 4 MiB mapped, for alignment */
	uint8_t			*buf;	/* the 2 MiB-aligned THP in it */
	uint8_t			*mid;	/* the page split off */
	uint8_t			*want;	/* shadow of buf */
	uint8_t			*src, *dst;
	struct ibv_mr		*mr, *smr, *dmr;

	/* shared with the thread */
	pthread_mutex_t		lock;	/* mid's mapping, want[mid] */
	enum mid_state		state;
	unsigned long		iters;	/* traffic rounds done */
	unsigned int		cycles;	/* splits and collapses to do */
	bool			done;	/* the thread has finished */
	bool			stop;	/* teardown: the thread must end */
	bool			started;
	pthread_t		thread;
	char			err[160];	/* the thread's failure */
	int			pmd_splits;	/* splits of a PMD-mapped THP */
	int			collapses;	/* MADV_COLLAPSE successes */

	/* the edge cases' region of untouched THPs, and its shadow */
	uint8_t			*emap, *ewant;
	size_t			emap_len;
};

FIXTURE_SETUP(thp)
{
	char why[128], mode[128] = "";
	FILE *f;
	int ret;

	self->pg = (size_t)sysconf(_SC_PAGESIZE);
	pthread_mutex_init(&self->lock, NULL);
	f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
	if (f) {
		if (!fgets(mode, sizeof(mode), f))
			mode[0] = 0;
		fclose(f);
	}
	if (!f || strstr(mode, "[never]"))
		SKIP(return, "transparent huge pages are disabled");

	ret = open_odp(&self->cfg, &self->v, why, sizeof(why));
	TU_REQUIRE_CAP(ret <= 0, "%s", why);
	ASSERT_EQ(0, ret);
	ASSERT_EQ(0, vu_qp_pair_create(&self->v, &self->qps));

	self->map = map_rw(2 * HUGE_SZ, 0);
	ASSERT_NE(NULL, self->map);
	self->buf = (uint8_t *)(((uintptr_t)self->map + HUGE_SZ - 1) &
				~(uintptr_t)(HUGE_SZ - 1));
	self->mid = self->buf + THP_MID_PAGE * self->pg;
	ASSERT_EQ(0, madvise(self->buf, HUGE_SZ, MADV_HUGEPAGE));
	self->want = map_rw(HUGE_SZ, 0);
	self->src = map_rw(HUGE_SZ, 0);
	self->dst = map_rw(HUGE_SZ, 0);
	ASSERT_NE(NULL, self->want);
	ASSERT_NE(NULL, self->src);
	ASSERT_NE(NULL, self->dst);
	self->smr = vu_reg_mr(&self->v, self->src, HUGE_SZ,
			      IBV_ACCESS_LOCAL_WRITE);
	self->dmr = vu_reg_mr(&self->v, self->dst, HUGE_SZ,
			      IBV_ACCESS_LOCAL_WRITE);
	ASSERT_NE(NULL, self->smr);
	ASSERT_NE(NULL, self->dmr);
}

FIXTURE_TEARDOWN(thp)
{
	if (self->started) {
		/* after a failed ASSERT the thread may still run */
		__atomic_store_n(&self->stop, true, __ATOMIC_RELEASE);
		EXPECT_EQ(0, pthread_join(self->thread, NULL));
	}
	EXPECT_EQ(0, vu_qp_pair_destroy(&self->v, &self->qps));
	EXPECT_EQ(0, vu_dereg_mr(&self->v, self->mr));
	EXPECT_EQ(0, vu_dereg_mr(&self->v, self->smr));
	EXPECT_EQ(0, vu_dereg_mr(&self->v, self->dmr));
	if (self->map)
		munmap(self->map, 2 * HUGE_SZ);
	if (self->want)
		munmap(self->want, HUGE_SZ);
	if (self->src)
		munmap(self->src, HUGE_SZ);
	if (self->dst)
		munmap(self->dst, HUGE_SZ);
	if (self->emap)
		munmap(self->emap, self->emap_len);
	if (self->ewant)
		munmap(self->ewant, self->emap_len);
	EXPECT_EQ(0, vu_close(&self->v));
}

static bool thp_mapped(FIXTURE_DATA(thp) *self)
{
	return tu_smaps_kb(self->buf, "AnonHugePages") >= (long)(HUGE_SZ / 1024);
}

static unsigned long thp_iters(FIXTURE_DATA(thp) *self)
{
	return __atomic_load_n(&self->iters, __ATOMIC_ACQUIRE);
}

static bool thp_stopped(FIXTURE_DATA(thp) *self)
{
	return __atomic_load_n(&self->stop, __ATOMIC_ACQUIRE);
}

/* Let the traffic run @rounds more rounds (at most 60 s). */
static void thp_let_traffic_run(FIXTURE_DATA(thp) *self, unsigned long rounds)
{
	unsigned long target = thp_iters(self) + rounds;
	uint64_t deadline = now_ms() + tu_ms(60000);

	while (thp_iters(self) < target && now_ms() < deadline &&
	       !thp_stopped(self))
		usleep(500);
}

#define THP_FAIL(self, ...) do {					\
	snprintf((self)->err, sizeof((self)->err), __VA_ARGS__);	\
	goto out;							\
} while (0)

/*
 * The second thread: self->cycles times, split the THP by changing the
 * mapping of the middle page (PROT_NONE, munmap, PROT_READ in turn), let
 * the traffic run, restore it (a remapped page is fresh zeros), let the
 * traffic run, collapse the range back into a THP, let it run again.
 */
static void *thp_splitter(void *arg)
{
	FIXTURE_DATA(thp) *self = arg;
	size_t pg = self->pg;
	unsigned int i;
	void *p;
	int ret;

	for (i = 0; i < self->cycles && !thp_stopped(self); i++) {
		enum mid_state to = (enum mid_state)(1 + i % 3);

		pthread_mutex_lock(&self->lock);
		if (thp_mapped(self))
			self->pmd_splits++;
		if (to == MID_UNMAPPED)
			ret = munmap(self->mid, pg);
		else
			ret = mprotect(self->mid, pg, to == MID_NONE ?
				       PROT_NONE : PROT_READ);
		if (!ret)
			self->state = to;
		pthread_mutex_unlock(&self->lock);
		if (ret)
			THP_FAIL(self, "cycle %d: making the page %s: %s", i,
				 mid_name[to], strerror(errno));
		thp_let_traffic_run(self, 1);

		pthread_mutex_lock(&self->lock);
		if (to == MID_UNMAPPED) {
			p = mmap(self->mid, pg, RW, MAP_PRIVATE |
				 MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
			ret = p == self->mid ? 0 : -1;
			if (!ret) {
				memset(self->want + (self->mid - self->buf),
				       0, pg);
				ret = madvise(self->mid, pg, MADV_HUGEPAGE);
			}
		} else {
			ret = mprotect(self->mid, pg, RW);
		}
		if (!ret)
			self->state = MID_RW;
		pthread_mutex_unlock(&self->lock);
		if (ret)
			THP_FAIL(self, "cycle %d: restoring the page: %s", i,
				 strerror(errno));
		thp_let_traffic_run(self, 1);

		if (!madvise(self->buf, HUGE_SZ, MADV_COLLAPSE))
			self->collapses++;
		thp_let_traffic_run(self, 1);
	}
out:
	__atomic_store_n(&self->done, true, __ATOMIC_RELEASE);
	return NULL;
}

/*
 * An error completion leaves the QPs in the error state: start afresh
 * (with the lock held: new queues must not be mapped into the hole of
 * an unmapped middle page). Returns 0 or a negative errno.
 */
static int thp_renew_qps(FIXTURE_DATA(thp) *self)
{
	int ret = vu_qp_pair_destroy(&self->v, &self->qps);

	return ret ? ret : vu_qp_pair_create(&self->v, &self->qps);
}

/*
 * With the middle page's mapping held still: a remote WRITE of it
 * succeeds exactly when it is read-write (and the CPU sees the bytes), a
 * remote READ exactly when it is readable (and returns its bytes).
 */
static void thp_check_mid(struct __test_metadata *_metadata,
			  FIXTURE_DATA(thp) *self, unsigned int seed)
{
	size_t pg = self->pg, off = self->mid - self->buf;
	uint64_t raddr = (uintptr_t)self->mid;
	enum mid_state st;
	bool wok, rok;
	int w, r, renew = 0;
	bool cpu_ok;

	pthread_mutex_lock(&self->lock);
	st = self->state;
	wok = st == MID_RW;
	rok = st == MID_RW || st == MID_RO;

	tu_fill(self->src + off, pg, seed);
	w = tu_xfer(&self->v, &self->qps.a, IBV_WR_RDMA_WRITE, self->src + off,
		    pg, self->smr->lkey, raddr, self->mr->rkey);
	if (w == IBV_WC_SUCCESS)
		memcpy(self->want + off, self->src + off, pg);
	else if (w > 0)
		renew = thp_renew_qps(self);
	memset(self->dst + off, TU_POISON, pg);
	r = tu_xfer(&self->v, &self->qps.a, IBV_WR_RDMA_READ, self->dst + off,
		    pg, self->dmr->lkey, raddr, self->mr->rkey);
	if (r > 0 && !renew)
		renew = thp_renew_qps(self);
	/* the CPU's view, while the mapping cannot change */
	cpu_ok = !rok || tu_same_bytes("CPU view of the middle page",
				       self->mid, self->want + off, pg);
	pthread_mutex_unlock(&self->lock);

	ASSERT_EQ(0, renew) TH_LOG("recreating the QPs: %s", strerror(-renew));

	ASSERT_LE(0, w) TH_LOG("WRITE of the %s page: no completion",
			       mid_name[st]);
	ASSERT_LE(0, r) TH_LOG("READ of the %s page: no completion",
			       mid_name[st]);
	ASSERT_EQ(wok ? IBV_WC_SUCCESS : IBV_WC_REM_ACCESS_ERR, w)
		TH_LOG("WRITE of the %s page: %s", mid_name[st],
		       ibv_wc_status_str((enum ibv_wc_status)w));
	ASSERT_EQ(rok ? IBV_WC_SUCCESS : IBV_WC_REM_ACCESS_ERR, r)
		TH_LOG("READ of the %s page: %s", mid_name[st],
		       ibv_wc_status_str((enum ibv_wc_status)r));
	if (rok) {
		ASSERT_TRUE(tu_same_bytes("READ of the middle page",
					  self->dst + off, self->want + off,
					  pg));
		ASSERT_TRUE(cpu_ok);
	} else {
		ASSERT_TRUE(tu_all_bytes("READ of an inaccessible page",
					 self->dst + off, TU_POISON, pg));
	}
}

/*
 * One round of traffic on the pages other than the middle one: remote
 * WRITEs of all of them (new bytes), the CPU sees them, remote READs
 * bring them back.
 */
static void thp_round(struct __test_metadata *_metadata,
		      FIXTURE_DATA(thp) *self, unsigned int seed)
{
	size_t pg = self->pg, m = self->mid - self->buf;
	const size_t from[2] = { 0, m + pg }, len[2] = { m, HUGE_SZ - m - pg };
	char what[64];
	int i;

	tu_fill(self->src, HUGE_SZ, seed);
	for (i = 0; i < 2; i++) {
		TU_ASSERT_OK(tu_xfer(&self->v, &self->qps.a, IBV_WR_RDMA_WRITE,
				     self->src + from[i], len[i],
				     self->smr->lkey,
				     (uintptr_t)self->buf + from[i],
				     self->mr->rkey));
		memcpy(self->want + from[i], self->src + from[i], len[i]);
	}
	for (i = 0; i < 2; i++) {
		snprintf(what, sizeof(what), "round %u: CPU view of part %d",
			 seed, i);
		ASSERT_TRUE(tu_same_bytes(what, self->buf + from[i],
					  self->want + from[i], len[i]));
	}
	memset(self->dst, TU_POISON, HUGE_SZ);
	for (i = 0; i < 2; i++) {
		TU_ASSERT_OK(tu_xfer(&self->v, &self->qps.a, IBV_WR_RDMA_READ,
				     self->dst + from[i], len[i],
				     self->dmr->lkey,
				     (uintptr_t)self->buf + from[i],
				     self->mr->rkey));
		snprintf(what, sizeof(what), "round %u: READ of part %d",
			 seed, i);
		ASSERT_TRUE(tu_same_bytes(what, self->dst + from[i],
					  self->want + from[i], len[i]));
	}
}

TEST_F_TIMEOUT(thp, split_and_collapse_during_traffic, 500)
{
	unsigned int round = 0;
	uint64_t t0 = now_ms();
	long huge;

	/* a PMD-mapped THP under an ODP MR, faulted into its mirror */
	tu_fill(self->buf, HUGE_SZ, 60);
	memcpy(self->want, self->buf, HUGE_SZ);
	huge = tu_smaps_kb(self->buf, "AnonHugePages");
	if (huge < (long)(HUGE_SZ / 1024) &&
	    !madvise(self->buf, HUGE_SZ, MADV_COLLAPSE))
		huge = tu_smaps_kb(self->buf, "AnonHugePages");
	ASSERT_LE((long)(HUGE_SZ / 1024), huge)
		TH_LOG("the 2 MiB range is not PMD-mapped (AnonHugePages %ld kB)",
		       huge);
	self->mr = vu_reg_mr(&self->v, self->buf, HUGE_SZ, ACC_ODP);
	ASSERT_NE(NULL, self->mr);
	TU_ASSERT_OK(tu_xfer(&self->v, &self->qps.a, IBV_WR_RDMA_READ,
			     self->dst, HUGE_SZ, self->dmr->lkey,
			     (uintptr_t)self->buf, self->mr->rkey));
	ASSERT_TRUE(tu_same_bytes("first READ of the THP", self->dst,
				  self->want, HUGE_SZ));

	self->cycles = tu_cut_down() ? THP_CUT_CYCLES : THP_CYCLES;
	ASSERT_EQ(0, pthread_create(&self->thread, NULL, thp_splitter, self));
	self->started = true;
	while (!__atomic_load_n(&self->done, __ATOMIC_ACQUIRE) &&
	       round < 20 * self->cycles) {
		thp_round(_metadata, self, 100 + round);
		thp_check_mid(_metadata, self, 5000 + round);
		round++;
		__atomic_store_n(&self->iters, round, __ATOMIC_RELEASE);
	}
	self->started = false;
	ASSERT_EQ(0, pthread_join(self->thread, NULL));
	ASSERT_STREQ("", self->err);
	ksft_print_msg("%u rounds in %" PRIu64 " ms; %d of %u splits hit a PMD-mapped THP, %d collapses\n",
		       round, now_ms() - t0, self->pmd_splits, self->cycles,
		       self->collapses);
	ASSERT_LE(1, self->pmd_splits);
	/* the final state: all of it, the middle page too */
	ASSERT_TRUE(tu_same_bytes("CPU view at the end", self->buf,
				  self->want, HUGE_SZ));
}

/* ---- accesses that begin inside an untouched huge page ------------------ */

/*
 * Where one access of the edge cases goes: @len bytes from byte @at of
 * huge page @page of the region (it may run on into page @page + 1).
 * Every position has huge pages of its own, untouched until then.
 */
struct edge_pos {
	const char	*name;
	unsigned int	page;
	size_t		at;
	uint32_t	len;
};

#define EDGE_PAGES	12	/* huge pages the positions below use */
#define EDGE_MARGIN	64	/* bytes read back around a WRITE */

static const struct edge_pos edge_rw_pos[] = {
	{ "the first byte", 0, 0, 8192 },
	{ "the first 4 KiB page, not its start", 1, 100, 200 },
	{ "the middle", 2, MIB + 4096 + 17, 8192 },
	{ "the last 4 KiB page, not its start", 3, HUGE_SZ - 4096 + 100, 3000 },
	{ "the start of the last 4 KiB page", 4, HUGE_SZ - 4096, 4096 },
	{ "the last byte", 5, HUGE_SZ - 1, 1 },
	{ "the last 4 KiB page, into the next", 6, HUGE_SZ - 2048, 8192 },
	{ "the middle, into the next", 8, MIB + 12345, HUGE_SZ - 4096 },
	{ "the last byte, into the next", 10, HUGE_SZ - 1, 2 },
};

struct edge_atomic {
	struct edge_pos		pos;
	enum ibv_wr_opcode	op;
	uint64_t		compare_add, swap;
};

static const struct edge_atomic edge_atomics[] = {
	{ { "the first word", 0, 0, 8 }, IBV_WR_ATOMIC_FETCH_AND_ADD,
	  0x0102030405060708ull, 0 },
	{ { "the middle", 1, MIB + 8, 8 }, IBV_WR_ATOMIC_FETCH_AND_ADD,
	  0x1122334455667788ull, 0 },
	{ { "the middle (a CMP_SWP that swaps)", 2, MIB + 4096 + 64, 8 },
	  IBV_WR_ATOMIC_CMP_AND_SWP, 0, 0xfeedfacecafebeefull },
	{ { "the last 4 KiB page (a CMP_SWP that does not swap)", 3,
	    HUGE_SZ - 4096 + 1000, 8 },
	  IBV_WR_ATOMIC_CMP_AND_SWP, 1, 0xdeadbeefdeadbeefull },
	{ { "the last word", 4, HUGE_SZ - 8, 8 }, IBV_WR_ATOMIC_FETCH_AND_ADD,
	  3, 0 },
};

/*
 * The region of the edge cases (huge pages that nothing touched), its
 * shadow, the peer's local buffers (at least HUGE_SZ + EDGE_MARGIN each)
 * and a QP pair whose requester gives up after TU_RNR_RETRY RNR NAKs: a
 * fault that never maps the page ends as IBV_WC_RNR_RETRY_EXC_ERR.
 */
struct edge_env {
	struct vu_ctx		*v;
	struct vu_qp_pair	*qps;
	uint8_t			*buf, *want;
	size_t			len;
	uint8_t			*src, *dst;
	size_t			lbuf_len;	/* of src and of dst */
	uint32_t		slkey, dlkey, rkey;
};

static const char *edge_status(int st)
{
	return st < 0 ? "no completion" :
	       ibv_wc_status_str((enum ibv_wc_status)st);
}

static uint64_t edge_load64(const void *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/* The huge pages that [@off, @off + @n) touches equal their shadow. */
static bool edge_pages_same(const struct edge_env *e, const char *what,
			    size_t off, size_t n)
{
	size_t from = off & ~(HUGE_SZ - 1);
	size_t to = (off + n + HUGE_SZ - 1) & ~(HUGE_SZ - 1);

	return tu_same_bytes(what, e->buf + from, e->want + from, to - from);
}

/*
 * An access at @p ended with status @st: log it; after an error
 * completion (or none) the QPs start afresh.
 */
static bool edge_done(struct __test_metadata *_metadata, struct edge_env *e,
		      const char *op, const struct edge_pos *p, int st)
{
	ksft_print_msg("%s of %u bytes at %s of an untouched huge page (region offset 0x%zx): %s\n",
		       op, p->len, p->name, p->page * HUGE_SZ + p->at,
		       edge_status(st));
	if (st == IBV_WC_SUCCESS)
		return true;
	ASSERT_EQ(0, tu_qp_pair_renew_rnr(e->v, e->qps, TU_RNR_RETRY));
	return false;
}

/*
 * A remote WRITE at @p lands byte-exact and changes nothing else in its
 * huge pages; a READ of it and EDGE_MARGIN bytes either side returns the
 * shadow. Returns whether all of that held (failures are logged).
 */
static bool edge_write(struct __test_metadata *_metadata, struct edge_env *e,
		       const struct edge_pos *p, unsigned int seed)
{
	size_t off = p->page * HUGE_SZ + p->at, from, to;
	char what[160];
	int st;

	ASSERT_LE(off + p->len, e->len);
	tu_fill(e->src, p->len, seed);
	st = tu_xfer(e->v, &e->qps->a, IBV_WR_RDMA_WRITE, e->src, p->len,
		     e->slkey, (uintptr_t)e->buf + off, e->rkey);
	if (!edge_done(_metadata, e, "WRITE", p, st)) {
		snprintf(what, sizeof(what),
			 "huge pages of the failed WRITE at %s", p->name);
		edge_pages_same(e, what, off, p->len);
		return false;
	}
	memcpy(e->want + off, e->src, p->len);
	snprintf(what, sizeof(what), "huge pages after the WRITE at %s",
		 p->name);
	if (!edge_pages_same(e, what, off, p->len))
		return false;

	from = off >= EDGE_MARGIN ? off - EDGE_MARGIN : 0;
	to = off + p->len + EDGE_MARGIN < e->len ? off + p->len + EDGE_MARGIN :
						   e->len;
	ASSERT_LE(to - from + EDGE_MARGIN, e->lbuf_len);
	memset(e->dst, TU_POISON, to - from + EDGE_MARGIN);
	st = tu_xfer(e->v, &e->qps->a, IBV_WR_RDMA_READ, e->dst, to - from,
		     e->dlkey, (uintptr_t)e->buf + from, e->rkey);
	if (!edge_done(_metadata, e, "READ back", p, st))
		return false;
	snprintf(what, sizeof(what), "READ back of the WRITE at %s", p->name);
	return tu_same_bytes(what, e->dst, e->want + from, to - from) &&
	       tu_all_bytes("past the READ back", e->dst + (to - from),
			    TU_POISON, EDGE_MARGIN);
}

/*
 * A remote READ at @p returns the shadow's bytes (zeros: nothing wrote
 * the page), no byte more, and the huge pages stay as they were.
 */
static bool edge_read(struct __test_metadata *_metadata, struct edge_env *e,
		      const struct edge_pos *p)
{
	size_t off = p->page * HUGE_SZ + p->at;
	char what[160];
	bool ok;
	int st;

	ASSERT_LE(off + p->len, e->len);
	ASSERT_LE(p->len + EDGE_MARGIN, e->lbuf_len);
	memset(e->dst, TU_POISON, p->len + EDGE_MARGIN);
	st = tu_xfer(e->v, &e->qps->a, IBV_WR_RDMA_READ, e->dst, p->len,
		     e->dlkey, (uintptr_t)e->buf + off, e->rkey);
	if (edge_done(_metadata, e, "READ", p, st)) {
		snprintf(what, sizeof(what), "READ at %s", p->name);
		ok = tu_same_bytes(what, e->dst, e->want + off, p->len);
		ok = tu_all_bytes("past the READ", e->dst + p->len, TU_POISON,
				  EDGE_MARGIN) && ok;
	} else {
		ok = false;
		tu_all_bytes("local buffer of the failed READ", e->dst,
			     TU_POISON, p->len + EDGE_MARGIN);
	}
	snprintf(what, sizeof(what), "huge pages after the READ at %s",
		 p->name);
	return edge_pages_same(e, what, off, p->len) && ok;
}

/*
 * An 8-byte atomic @a returns the shadow's value, applies to the shadow,
 * and the huge page is otherwise unchanged.
 */
static bool edge_atomic(struct __test_metadata *_metadata, struct edge_env *e,
			const struct edge_atomic *a)
{
	const struct edge_pos *p = &a->pos;
	size_t off = p->page * HUGE_SZ + p->at;
	uint64_t *res = (uint64_t *)e->dst, old;
	char what[160];
	int st;

	ASSERT_LE(off + 8, e->len);
	ASSERT_EQ(0, off & 7);
	memset(e->dst, TU_POISON, 2 * sizeof(*res));
	st = tu_atomic(e->v, &e->qps->a, a->op, res, e->dlkey,
		       (uintptr_t)e->buf + off, e->rkey, a->compare_add,
		       a->swap);
	snprintf(what, sizeof(what), "huge page after the %s at %s",
		 a->op == IBV_WR_ATOMIC_FETCH_AND_ADD ? "FETCH_ADD" :
							"CMP_SWP", p->name);
	if (!edge_done(_metadata, e, a->op == IBV_WR_ATOMIC_FETCH_AND_ADD ?
		       "FETCH_ADD" : "CMP_SWP", p, st)) {
		edge_pages_same(e, what, off, 8);
		return false;
	}
	old = edge_load64(e->want + off);
	if (*res != old) {
		ksft_print_msg("%s: returned 0x%" PRIx64 ", want 0x%" PRIx64 "\n",
			       what, *res, old);
		return false;
	}
	if (a->op == IBV_WR_ATOMIC_FETCH_AND_ADD)
		old += a->compare_add;
	else if (old == a->compare_add)
		old = a->swap;
	memcpy(e->want + off, &old, sizeof(old));
	return tu_all_bytes("past the atomic's result", e->dst + 8, TU_POISON,
			    8) && edge_pages_same(e, what, off, 8);
}

enum edge_kind { EDGE_WRITE, EDGE_READ, EDGE_ATOMIC };

/*
 * Every position of @kind on its own untouched huge pages, each checked
 * against the shadow (a failure does not stop the others); then the
 * whole region equals the shadow: no access changed a byte elsewhere.
 */
static void edge_run(struct __test_metadata *_metadata, struct edge_env *e,
		     enum edge_kind kind)
{
	unsigned int i, n, bad = 0;
	uint64_t t0 = now_ms();
	bool ok;

	n = kind == EDGE_ATOMIC ? ARRAY_SIZE(edge_atomics) :
				  ARRAY_SIZE(edge_rw_pos);
	for (i = 0; i < n; i++) {
		if (kind == EDGE_WRITE)
			ok = edge_write(_metadata, e, &edge_rw_pos[i], 70 + i);
		else if (kind == EDGE_READ)
			ok = edge_read(_metadata, e, &edge_rw_pos[i]);
		else
			ok = edge_atomic(_metadata, e, &edge_atomics[i]);
		bad += !ok;
	}
	ksft_print_msg("%u of %u positions failed (%" PRIu64 " ms)\n", bad, n,
		       now_ms() - t0);
	ASSERT_TRUE(tu_same_bytes("the whole region at the end", e->buf,
				  e->want, e->len));
	ASSERT_EQ(0, bad);
}

/*
 * The hugetlb fixture as an edge_env: its MR registered again with
 * IBV_ACCESS_REMOTE_ATOMIC too, its QPs with a finite rnr_retry.
 */
static void hugetlb_edges(struct __test_metadata *_metadata,
			  FIXTURE_DATA(hugetlb) *self,
			  const FIXTURE_VARIANT(hugetlb) *variant,
			  enum edge_kind kind)
{
	struct edge_env e = {
		.v = &self->v, .qps = &self->qps,
		.buf = self->buf, .len = HUGETLB_LEN,
		.src = self->src, .dst = self->dst, .lbuf_len = HUGETLB_LEN,
		.slkey = self->smr->lkey, .dlkey = self->dmr->lkey,
	};

	ASSERT_LE(EDGE_PAGES * HUGE_SZ, HUGETLB_LEN);
	ASSERT_EQ(HUGE_SZ / 1024, tu_smaps_kb(self->buf, "KernelPageSize"));
	ASSERT_EQ(0, tu_smaps_kb(self->buf, "Private_Hugetlb"))
		TH_LOG("the hugetlb region is not untouched");
	self->want = map_rw(HUGETLB_LEN, 0);
	ASSERT_NE(NULL, self->want);
	e.want = self->want;
	ASSERT_EQ(0, vu_dereg_mr(&self->v, self->mr));
	self->mr = vu_reg_mr(&self->v, self->buf, HUGETLB_LEN,
			     variant->access | IBV_ACCESS_REMOTE_ATOMIC);
	ASSERT_NE(NULL, self->mr);
	e.rkey = self->mr->rkey;
	ASSERT_EQ(0, vu_qp_pair_destroy(&self->v, &self->qps));
	ASSERT_EQ(0, tu_qp_pair_create_rnr(&self->v, &self->qps,
					   TU_RNR_RETRY));
	edge_run(_metadata, &e, kind);
}

/*
 * Remote WRITEs that begin at the first byte, inside the first 4 KiB
 * page, in the middle, in the last 4 KiB page and at the last byte of an
 * untouched hugetlb page, and ones that run on into the next untouched
 * page: each lands byte-exact (the page is faulted in whatever its first
 * byte) and reads back.
 */
TEST_F_TIMEOUT(hugetlb, untouched_write_edges, 300)
{
	hugetlb_edges(_metadata, self, variant, EDGE_WRITE);
}

/* Remote READs at the same places of untouched hugetlb pages: zeros. */
TEST_F_TIMEOUT(hugetlb, untouched_read_edges, 300)
{
	hugetlb_edges(_metadata, self, variant, EDGE_READ);
}

/*
 * FETCH_ADD and CMP_SWP (8-byte aligned) at the first word, in the
 * middle, in the last 4 KiB page and at the last word of untouched
 * hugetlb pages.
 */
TEST_F_TIMEOUT(hugetlb, untouched_atomic_edges, 300)
{
	hugetlb_edges(_metadata, self, variant, EDGE_ATOMIC);
}

/*
 * The thp fixture as an edge_env: an ODP MR over EDGE_PAGES untouched
 * MADV_HUGEPAGE huge pages (2 MiB-aligned); its QPs get a finite
 * rnr_retry. After WRITEs and atomics the pages must be THPs.
 */
static void thp_edges(struct __test_metadata *_metadata,
		      FIXTURE_DATA(thp) *self, enum edge_kind kind)
{
	size_t len = EDGE_PAGES * HUGE_SZ;
	struct edge_env e = {
		.v = &self->v, .qps = &self->qps, .len = len,
		.src = self->src, .dst = self->dst, .lbuf_len = HUGE_SZ,
		.slkey = self->smr->lkey, .dlkey = self->dmr->lkey,
	};
	long huge;

	self->emap_len = len + HUGE_SZ;
	self->emap = map_rw(self->emap_len, 0);
	self->ewant = map_rw(self->emap_len, 0);
	ASSERT_NE(NULL, self->emap);
	ASSERT_NE(NULL, self->ewant);
	e.buf = (uint8_t *)(((uintptr_t)self->emap + HUGE_SZ - 1) &
			    ~(uintptr_t)(HUGE_SZ - 1));
	e.want = self->ewant;
	ASSERT_EQ(0, madvise(e.buf, len, MADV_HUGEPAGE));
	self->mr = vu_reg_mr(&self->v, e.buf, len,
			     ACC_ODP | IBV_ACCESS_REMOTE_ATOMIC);
	ASSERT_NE(NULL, self->mr);
	e.rkey = self->mr->rkey;
	ASSERT_EQ(0, tu_smaps_kb(e.buf, "Rss"))
		TH_LOG("the THP region is not untouched");
	ASSERT_EQ(0, vu_qp_pair_destroy(&self->v, &self->qps));
	ASSERT_EQ(0, tu_qp_pair_create_rnr(&self->v, &self->qps,
					   TU_RNR_RETRY));
	edge_run(_metadata, &e, kind);
	huge = tu_smaps_kb(e.buf, "AnonHugePages");
	ksft_print_msg("AnonHugePages of the region: %ld kB\n", huge);
	if (kind != EDGE_READ)
		ASSERT_LE((long)(HUGE_SZ / 1024), huge)
			TH_LOG("no access made a THP: nothing was tested");
}

/* As hugetlb.untouched_write_edges, on untouched THPs. */
TEST_F_TIMEOUT(thp, untouched_write_edges, 300)
{
	thp_edges(_metadata, self, EDGE_WRITE);
}

/* As hugetlb.untouched_read_edges (the huge zero page, if used). */
TEST_F_TIMEOUT(thp, untouched_read_edges, 300)
{
	thp_edges(_metadata, self, EDGE_READ);
}

/* As hugetlb.untouched_atomic_edges, on untouched THPs. */
TEST_F_TIMEOUT(thp, untouched_atomic_edges, 300)
{
	thp_edges(_metadata, self, EDGE_ATOMIC);
}

/* ---- huge pages dropped during traffic -------------------------------- */

#define DROP_PAGES	(HUGETLB_LEN / HUGE_SZ)

/*
 * The odd huge pages of the hugetlb MR are dropped again and again while
 * the test writes and reads them: a hole punched in the shared memfd
 * (fallocate), or MADV_DONTNEED of the private mapping. @gen[k] is odd
 * while page k is being dropped and counts the drops.
 */
struct dropper {
	uint8_t			*buf;
	int			fd;
	unsigned int		seed;
	atomic_uint		gen[DROP_PAGES];
	atomic_bool		stop;
	long			drops;
	int			err;
};

static void *drop_loop(void *arg)
{
	struct dropper *d = arg;
	struct timespec pace = { .tv_nsec = 500 * 1000 };
	size_t k;

	while (!atomic_load(&d->stop) && !d->err) {
		k = 2 * (rand_r(&d->seed) % (DROP_PAGES / 2)) + 1;
		atomic_fetch_add(&d->gen[k], 1);
		if (d->fd >= 0)
			d->err = fallocate(d->fd, FALLOC_FL_PUNCH_HOLE |
					   FALLOC_FL_KEEP_SIZE, k * HUGE_SZ,
					   HUGE_SZ) ? errno : 0;
		else
			d->err = madvise(d->buf + k * HUGE_SZ, HUGE_SZ,
					 MADV_DONTNEED) ? errno : 0;
		atomic_fetch_add(&d->gen[k], 1);
		d->drops++;
		/* paced: a drop storm starves the faults (odp_race.c) */
		nanosleep(&pace, NULL);
	}
	return NULL;
}

/* 8 tagged words: the round and each word's own index in the region. */
static void drop_tags(uint64_t *w, size_t off, uint64_t round)
{
	size_t i;

	for (i = 0; i < 8; i++)
		w[i] = round << 32 | (off / 8 + i);
}

/*
 * Remote WRITEs of 64 tagged bytes at random places of the hugetlb MR,
 * each READ back, while the odd huge pages are dropped under them (§8
 * #16, issue 12). Where no drop overlapped the WRITE and the READ (the
 * page's drop count even and unchanged), both the CPU and the READ must
 * see the tag; where one did, each sees the tag or zeros (the fresh page
 * after the drop), never older bytes. The even pages, never dropped, must
 * equal their shadow at the end; every word of the odd ones must be 0 or
 * a tag of its own position. A cut-down run (RXE_ODP_ROUNDS) goes on past
 * its count, up to 300 rounds, until the MR has seen an invalidation: 3
 * rounds on the stock kernel once dropped 7 huge pages, none of them
 * recorded in the MR at the time.
 */
TEST_F_TIMEOUT(hugetlb, drop_during_traffic, 600)
{
	long rounds = tu_rounds(300, 3000), most = rounds > 300 ? rounds : 300;
	long r, strict = 0;
	uint64_t *tags = (uint64_t *)self->src, *back = (uint64_t *)self->dst;
	uint64_t *words = (uint64_t *)self->buf;
	struct dropper d = { .buf = self->buf, .fd = self->fd };
	long long invals = tu_mr_counter(self->mr->rkey, "page_invalidations");
	pthread_t t;
	size_t k, off, i;
	static const uint8_t zeros[64];
	unsigned int g0, g1;
	bool zero, tag;

	d.seed = tu_seed();
	memset(self->buf, 0, HUGETLB_LEN);	/* every page allocated */
	self->want = map_rw(HUGETLB_LEN, 0);
	ASSERT_NE(NULL, self->want);
	ASSERT_EQ(0, pthread_create(&t, NULL, drop_loop, &d));
	for (r = 1; r <= most; r++) {
		/* past the count: every 16th round, stop once it raced */
		if (r > rounds && (r - rounds) % 16 == 1 &&
		    tu_mr_counter(self->mr->rkey, "page_invalidations") > invals)
			break;
		k = rand_r(&d.seed) % DROP_PAGES;
		off = k * HUGE_SZ + 8 * (rand_r(&d.seed) % (HUGE_SZ / 8 - 8));
		drop_tags(tags, off, r);
		memset(back, TU_POISON, 64);
		g0 = atomic_load(&d.gen[k]);
		TU_ASSERT_OK(tu_xfer(&self->v, &self->qps.a, IBV_WR_RDMA_WRITE,
				     tags, 64, self->smr->lkey,
				     (uintptr_t)self->buf + off,
				     self->mr->rkey));
		TU_ASSERT_OK(tu_xfer(&self->v, &self->qps.a, IBV_WR_RDMA_READ,
				     back, 64, self->dmr->lkey,
				     (uintptr_t)self->buf + off,
				     self->mr->rkey));
		tag = !memcmp(self->buf + off, tags, 64);
		g1 = atomic_load(&d.gen[k]);
		if (k % 2 == 0)
			memcpy(self->want + off, tags, 64);
		if (g0 == g1 && !(g0 & 1)) {
			strict++;
			ASSERT_TRUE(tag) TH_LOG("round %ld: the WRITE at %#zx is not in memory",
						r, off);
			ASSERT_EQ(0, memcmp(back, tags, 64))
				TH_LOG("round %ld: the READ at %#zx", r, off);
			continue;
		}
		zero = !memcmp(back, zeros, 64);
		ASSERT_TRUE(zero || !memcmp(back, tags, 64))
			TH_LOG("round %ld: a READ across a drop at %#zx returned other bytes",
			       r, off);
		ASSERT_TRUE(tag || !memcmp(self->buf + off, zeros, 64))
			TH_LOG("round %ld: memory across a drop at %#zx holds other bytes",
			       r, off);
	}
	atomic_store(&d.stop, true);
	ASSERT_EQ(0, pthread_join(t, NULL));
	ASSERT_EQ(0, d.err) TH_LOG("drop: %s", strerror(d.err));
	rounds = r - 1;
	ksft_print_msg("%ld rounds (%ld strict), %ld huge pages dropped\n",
		       rounds, strict, d.drops);
	ASSERT_LT(0, d.drops);
	ASSERT_LT(invals, tu_mr_counter(self->mr->rkey, "page_invalidations"));
	for (k = 0; k < DROP_PAGES; k += 2)
		ASSERT_TRUE(tu_same_bytes("an undropped huge page",
					  self->buf + k * HUGE_SZ,
					  self->want + k * HUGE_SZ, HUGE_SZ));
	for (k = 1; k < DROP_PAGES; k += 2)
		for (i = k * HUGE_SZ / 8; i < (k + 1) * HUGE_SZ / 8; i++)
			ASSERT_TRUE(!words[i] ||
				    ((words[i] & 0xffffffff) == i &&
				     (long)(words[i] >> 32) <= rounds))
				TH_LOG("word %zu of a dropped page: %#" PRIx64,
				       i, words[i]);
}

TEST_HARNESS_MAIN
