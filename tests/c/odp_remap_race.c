// SPDX-License-Identifier: GPL-2.0
/*
 * odp_remap_race - the tagged race (reliability.md §8 #4, issue 12):
 * threads change the CPU page tables of an explicit ODP MR while RDMA
 * traffic with tagged data streams into and out of it.
 *
 * The MR covers 4 MiB of anonymous private memory (4 KiB pages, THP off),
 * cut into 64 KiB chunks. Each disturber thread owns every n-th chunk;
 * one chunk in n is nobody's and must stay exact. The main thread posts
 * one operation at a time on a loopback RC QP pair: RDMA WRITEs whose
 * every 8 bytes hold a tag (a sequence number and the word's own
 * address), READs, FETCH_ADDs and CMP_SWAPs on 8-byte slots; half of
 * them go to the chunk some disturber changes now or changed last (its
 * pages are then often missing from the MR, so the access faults while
 * the disturbers invalidate), the others anywhere. The disturbers, one
 * kind per variant, 2 threads each:
 *  - dontneed: MADV_DONTNEED of a chunk (its pages become zero-fill);
 *  - remap: a fresh anonymous mapping over the chunk, either atomically
 *    (mmap(MAP_FIXED) over the live range) or as munmap then mmap at the
 *    same address (a hole meanwhile, where any access fails);
 *  - mremap: the chunk's next contents (a new pattern) are built in a
 *    scratch mapping and moved onto it with mremap(MREMAP_FIXED |
 *    MREMAP_DONTUNMAP), which replaces the pages atomically;
 *  - mprotect: the chunk goes PROT_READ for a while, then back;
 *  - fork: the process forks; the child writes its own copy of a chunk,
 *    copies the whole MR's memory, waits until the parent has done 32
 *    more operations, and checks that nothing in its memory changed;
 *  - mixed: one thread each of remap (all three ways), mremap, mprotect
 *    and fork.
 *
 * Bookkeeping: every page has a generation counter that its disturber
 * makes odd before the system call that changes the page and even after
 * it (a seqlock; an mprotect cycle takes two steps: generation 4k+2 is
 * read-only). The main thread reads it before posting and after the
 * completion: the same even value means no change overlapped the
 * operation (unambiguous), anything else that one did (ambiguous). Each
 * generation's contents are known: the first pattern, zeros after a
 * replacement by dontneed/remap, a pattern of (page, generation) after
 * mremap, unchanged by mprotect and fork; the main thread keeps a shadow
 * copy of every page with its own writes in it. Checked, to the byte:
 *  - unambiguous: the completion succeeds (or is IBV_WC_REM_ACCESS_ERR
 *    when a WRITE or atomic meets a read-only page: then the page is
 *    unchanged), a READ returns exactly the shadow, an atomic returns
 *    the slot's value and leaves old + add (or the swap), and the CPU
 *    reads the whole page back as the shadow, written tags included,
 *    unless a later change replaced the page;
 *  - ambiguous: a READ (one packet, so one copy inside the mirror's
 *    critical section) returns exactly one of the generations the page
 *    had during it; a WRITE or atomic either landed in the page that is
 *    there now or was lost with the page replaced, and nothing else: the
 *    page afterwards holds its newest generation's contents, plus the
 *    tag or atomic result only if that generation's change began before
 *    the operation completed; an atomic returns the slot's value in one
 *    of those generations. Errors only where the page may have been
 *    read-only (WRITE, atomic) or unmapped (the remap hole); after any
 *    error the QP pair is reconnected;
 *  - at every first look after a replacement, and at the end for every
 *    page: the page holds exactly its generation's contents (no tag
 *    written before the change began), undisturbed pages their shadow;
 *  - fork: every child exits 0: after fork, no write of the parent's
 *    reaches the child, and the child's own writes stay its own (the
 *    parent's pages, checked against the shadow, never show them).
 * The race must have happened: ambiguous operations (or operations
 * during a fork), and a rise of the MR's page_invalidations and
 * fault_retries (fault snapshots begun again because an invalidation
 * won) and of rxe's device-wide odp_fault_retries. After the teardown
 * odp_mirror's live counts are zero.
 *
 * Rounds of 64 operations: 12 per variant in make check, 200 under make
 * stress (tu_rounds()); every random choice comes from tu_seed()
 * (RXE_ODP_SEED replays one).
 *
 * Pacing: each disturber sleeps 0.3 to 1.5 ms between two changes, and
 * mprotect holds a chunk read-only for 0.2 to 0.8 ms (long enough for
 * whole operations to fall inside, which the strict read-only check
 * needs). Without the pause, faults of the MR, which retry whenever any
 * invalidation of the MR lands during their snapshot, can starve (as
 * odp_race found for MADV_PAGEOUT); rxe's RNR NAKs (rcvd_rnr_err) are
 * printed as the rate of accesses that gave up for a while.
 *
 * Found (6.12.117, FAST and STRESS, every variant): no tag misplaced,
 * lost or seen stale, no access through a read-only page, no change in
 * a fork child, clean dmesg; fault_retries rises in every variant (in
 * fork mostly from the faults' own COW breaks: fork holds the mmap lock
 * for writing, so a fault collides with it only in the short window
 * after hmm_range_fault()). Two things the test has to live with:
 *  - rxe posts a failed work request's completion (requester) and its
 *    NAK (responder) before it moves the QP to the error state; a
 *    reconnection begun at once could be undone by that late error, and
 *    ibv_modify_qp() to RTR then fails with EINVAL ("rxe_modify_qp:
 *    returned err = -22"): reconnect() waits for the error state first;
 *  - a VMA split at an address that is not 2 MiB aligned inside a VMA
 *    that spans the whole 2 MiB (mprotect of a chunk of the big
 *    mapping) calls __split_huge_pmd(), which invalidates the whole
 *    2 MiB (MMU_NOTIFY_CLEAR) even with no huge page there: the MR
 *    drops up to 512 pages per split, so mprotect shows about ten times
 *    the page_invalidations of the other variants.
 * Mutations that this test catches: invalidation that keeps the entries
 * (every variant fails, and dmesg shows "Bad page state"); faults that
 * skip mmu_interval_read_retry() (dontneed, remap, mremap and mixed fail
 * in make check; mprotect and fork within 100 rounds).
 *
 * Not here: multi-packet and multi-page operations (each packet is a
 * copy of its own, so a READ across a change may legitimately mix
 * generations at packet boundaries), THP (odp_large races split and
 * collapse).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "verbs_util.h"
#include "test_util.h"

#define REGION		(4UL << 20)
#define CHUNK_PAGES	16
#define MAX_DISTURBERS	4
#define OPS_PER_ROUND	64
#define CHILD_OPS	32	/* a fork child watches this many operations */
#define SETTLE_NS	(10LL * 1000 * 1000 * 1000)
#define TAG_BIT		(1ULL << 63)
#define ACC_RACE	(IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ | \
			 IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_ATOMIC | \
			 IBV_ACCESS_ON_DEMAND)

enum dkind { D_NONE, D_ZERO, D_MOVE, D_PROT, D_FORK };

/* how a D_ZERO disturber replaces a chunk (one is drawn at a time) */
#define Z_DONTNEED	1	/* MADV_DONTNEED */
#define Z_FIXED		2	/* mmap(MAP_FIXED) over the live range */
#define Z_HOLE		4	/* munmap, then mmap at the same address */

struct remap;

struct disturber {
	struct remap	*r;
	pthread_t	thread;
	bool		started;
	unsigned int	slot;		/* owns chunk c if c % nslots == slot */
	enum dkind	kind;
	unsigned int	rng;
	uint8_t		*scratch;	/* D_MOVE: the next contents */
	atomic_int	chunk;		/* changed now or last, or -1 */
	long		changes;	/* read after the join */
};

/* Shared with the fork children (MAP_SHARED). */
struct fork_share {
	atomic_ulong	ops;		/* the parent's operations so far */
	atomic_int	stop;
	atomic_long	bad_off;	/* where a child found a change */
};

struct remap {
	uint8_t			*region;
	size_t			psz, npages, nchunks, chunk;
	unsigned int		nslots, seed, zero_modes;
	atomic_uint		*gen;	/* per page: odd while it changes */
	uint8_t			*kind;	/* per page: its owner's enum dkind */
	struct disturber	d[MAX_DISTURBERS];
	int			nd;
	atomic_bool		stop;
	atomic_int		err;	/* errno of a disturber's failure */
	const char *_Atomic	err_what;
	pthread_rwlock_t	hole_lock;	/* no fork with a hole */
	atomic_uint		fork_seq;	/* odd during fork() */
	atomic_long		forks;
	atomic_int		fork_bad;	/* a child's wait status */
	/*
	 * how long a fork child waits for the parent's progress: tu_ms()
	 * reads the environment, which fork_child() may not (async-signal
	 * safe only), so it is worked out before any fork
	 */
	int64_t			child_wait_ns;
	struct fork_share	*fs;
	uint8_t			*snap;		/* a fork child's copy */
};

struct op {
	enum ibv_wr_opcode	code;
	size_t			p, off, len;	/* page, offset in it, bytes */
	uint64_t		seq, cmp_add, swap;
};

struct race_stats {
	long	ops, ambiguous, during_fork, ro_refused, amb_errors;
	long	landed, lost, reconnects, first_looks;
};

/* ---- contents of each generation ------------------------------------- */

static uint32_t mix32(uint32_t x)
{
	x ^= x >> 16;
	x *= 0x7feb352dU;
	x ^= x >> 15;
	x *= 0x846ca68bU;
	return x ^ (x >> 16);
}

/* The pattern seed of page @p's contents at generation @g. */
static unsigned int gen_seed(const struct remap *r, size_t p, unsigned int g)
{
	return mix32(r->seed ^ mix32((uint32_t)p * 0x9e3779b1U ^
				     g * 0x85ebca77U));
}

/*
 * What page @p holds at generation @g (even) before any RDMA write: the
 * first pattern, zeros after a D_ZERO change, a fresh pattern after a
 * D_MOVE one. (mprotect and fork keep the contents: the shadow has them.)
 */
static void gen_fill(const struct remap *r, size_t p, unsigned int g,
		     uint8_t *buf)
{
	if (g && r->kind[p] == D_ZERO)
		memset(buf, 0, r->psz);
	else
		tu_fill(buf, r->psz, gen_seed(r, p, g));
}

/* Does a change of page @p replace its contents? */
static bool replaces(const struct remap *r, size_t p)
{
	return r->kind[p] == D_ZERO || r->kind[p] == D_MOVE;
}

/* ---- the disturbers ---------------------------------------------------- */

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Sleep between @lo and @hi microseconds: pacing (see the header). */
static void pause_us(unsigned int *rng, unsigned int lo, unsigned int hi)
{
	unsigned int us = lo + rand_r(rng) % (hi - lo + 1);
	struct timespec ts = { .tv_nsec = us * 1000L };

	nanosleep(&ts, NULL);
}

static int failed(struct remap *r, const char *what, int err)
{
	int none = 0;

	if (atomic_compare_exchange_strong(&r->err, &none, err ? err : EIO))
		atomic_store(&r->err_what, what);
	atomic_store(&r->stop, true);
	return -1;
}

static void set_gen(struct remap *r, size_t p0, unsigned int g)
{
	size_t i;

	for (i = 0; i < CHUNK_PAGES; i++)
		atomic_store(&r->gen[p0 + i], g);
}

/* A fresh anonymous private mapping of @len bytes at @at, THP off. */
static int map_anon(void *at, size_t len, int how)
{
	void *m = mmap(at, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | how, -1, 0);

	if (m == MAP_FAILED)
		return -errno;
	if (m != at) {
		munmap(m, len);
		return -EEXIST;
	}
	return madvise(at, len, MADV_NOHUGEPAGE) ? -errno : 0;
}

/* Replace chunk @at the D_ZERO way: its pages read zeros afterwards. */
static int zero_chunk(struct disturber *d, uint8_t *at)
{
	struct remap *r = d->r;
	unsigned int mode;
	int ret;

	do
		mode = 1U << (rand_r(&d->rng) % 3);
	while (!(r->zero_modes & mode));
	if (mode == Z_DONTNEED)
		return madvise(at, r->chunk, MADV_DONTNEED) ? -errno : 0;
	if (mode == Z_FIXED)
		return map_anon(at, r->chunk, MAP_FIXED);
	pthread_rwlock_rdlock(&r->hole_lock);
	ret = munmap(at, r->chunk) ? -errno : 0;
	/* NOREPLACE: never clobber what someone else mapped into the hole */
	if (!ret)
		ret = map_anon(at, r->chunk, MAP_FIXED_NOREPLACE);
	pthread_rwlock_unlock(&r->hole_lock);
	return ret;
}

/* Change one chunk of @d's, a generation (two for mprotect) further. */
static int change_chunk(struct disturber *d)
{
	struct remap *r = d->r;
	size_t own = (r->nchunks - d->slot + r->nslots - 1) / r->nslots;
	size_t c = d->slot + (rand_r(&d->rng) % own) * r->nslots;
	size_t p0 = c * CHUNK_PAGES, i;
	uint8_t *at = r->region + c * r->chunk;
	unsigned int g = atomic_load(&r->gen[p0]);	/* even: ours alone */
	void *m;
	int ret = 0;

	if (d->kind == D_MOVE)
		for (i = 0; i < CHUNK_PAGES; i++)
			tu_fill(d->scratch + i * r->psz, r->psz,
				gen_seed(r, p0 + i, g + 2));
	atomic_store(&d->chunk, (int)c);
	set_gen(r, p0, g + 1);
	switch (d->kind) {
	case D_ZERO:
		ret = zero_chunk(d, at);
		break;
	case D_MOVE:
		/* DONTUNMAP: the scratch stays ours, empty, for the next */
		m = mremap(d->scratch, r->chunk, r->chunk, MREMAP_MAYMOVE |
			   MREMAP_FIXED | MREMAP_DONTUNMAP, at);
		ret = m == MAP_FAILED ? -errno : m != at ? -EINVAL : 0;
		break;
	case D_PROT:
		if (mprotect(at, r->chunk, PROT_READ))
			return failed(r, "mprotect(PROT_READ)", errno);
		set_gen(r, p0, g + 2);
		pause_us(&d->rng, 200, 800);
		set_gen(r, p0, g + 3);
		ret = mprotect(at, r->chunk, PROT_READ | PROT_WRITE) ?
		      -errno : 0;
		g += 2;
		break;
	default:
		ret = -EINVAL;
	}
	if (ret)
		return failed(r, d->kind == D_ZERO ? "zero_chunk" :
			      d->kind == D_MOVE ? "mremap" :
			      "mprotect(PROT_READ | PROT_WRITE)", -ret);
	set_gen(r, p0, g + 2);
	d->changes++;
	return 0;
}

/*
 * A fork child: write its own copy of chunk @c, copy all of the MR's
 * memory, wait for CHILD_OPS more operations of the parent, and find
 * everything as it was. Async-signal-safe only (the parent has threads).
 */
static void __attribute__((noreturn)) fork_child(struct remap *r, size_t c,
						 unsigned int seed)
{
	uint8_t *own = r->region + c * r->chunk;
	unsigned long ops0 = atomic_load(&r->fs->ops);
	const struct timespec nap = { .tv_nsec = 200 * 1000 };
	int64_t end = now_ns() + r->child_wait_ns;
	size_t i;

	for (i = 0; i < r->chunk; i++)
		own[i] = tu_pattern(i, seed);
	memcpy(r->snap, r->region, REGION);
	/* polling the parent's progress; the nap leaves it the CPU */
	while (atomic_load(&r->fs->ops) < ops0 + CHILD_OPS &&
	       !atomic_load(&r->fs->stop)) {
		if (now_ns() > end)
			_exit(3);
		nanosleep(&nap, NULL);
	}
	if (memcmp(r->region, r->snap, REGION)) {
		for (i = 0; r->region[i] == r->snap[i]; i++)
			;
		atomic_store(&r->fs->bad_off, (long)i);
		_exit(1);
	}
	for (i = 0; i < r->chunk; i++)
		if (own[i] != tu_pattern(i, seed))
			_exit(2);
	_exit(0);
}

static int fork_once(struct disturber *d)
{
	struct remap *r = d->r;
	size_t own = (r->nchunks - d->slot + r->nslots - 1) / r->nslots;
	size_t c = d->slot + (rand_r(&d->rng) % own) * r->nslots;
	unsigned int seed = rand_r(&d->rng);
	int status, none = 0;
	pid_t pid;

	pthread_rwlock_wrlock(&r->hole_lock);
	atomic_fetch_add(&r->fork_seq, 1);
	pid = fork();
	if (!pid)
		fork_child(r, c, seed);
	atomic_fetch_add(&r->fork_seq, 1);
	pthread_rwlock_unlock(&r->hole_lock);
	if (pid < 0)
		return failed(r, "fork", errno);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return failed(r, "waitpid", errno);
	atomic_fetch_add(&r->forks, 1);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		atomic_compare_exchange_strong(&r->fork_bad, &none,
					       status ? status : -1);
	d->changes++;
	return 0;
}

static void *disturb(void *arg)
{
	struct disturber *d = arg;

	while (!atomic_load(&d->r->stop)) {
		if ((d->kind == D_FORK ? fork_once(d) : change_chunk(d)) < 0)
			break;
		pause_us(&d->rng, 300, 1500);
	}
	return NULL;
}

static void stop_disturbers(struct remap *r)
{
	int i;

	atomic_store(&r->stop, true);
	if (r->fs && r->fs != MAP_FAILED)
		atomic_store(&r->fs->stop, 1);
	for (i = 0; i < r->nd; i++) {
		if (r->d[i].started)
			pthread_join(r->d[i].thread, NULL);
		r->d[i].started = false;
	}
}

/* ---- the fixture --------------------------------------------------------- */

FIXTURE(remap) {
	struct vu_config	cfg;
	struct vu_ctx		v;
	struct vu_qp_pair	qps;
	struct ibv_mr		*mr, *lmr;
	uint8_t			*local;	/* WRITE source, READ sink, result */
	struct remap		r;
	uint8_t			*shadow;	/* every page as it must be */
	unsigned int		*sgen;	/* the generation the shadow is of */
	uint8_t			*got, *want;	/* a page each */
	size_t			maxlen;	/* one packet, in one page */
	unsigned int		rng;
	uint64_t		seq;
	struct race_stats	st;
};

FIXTURE_VARIANT(remap) {
	int		nd;
	enum dkind	kind[MAX_DISTURBERS];
	unsigned int	zero_modes;
};

FIXTURE_VARIANT_ADD(remap, dontneed) {
	.nd = 2, .kind = { D_ZERO, D_ZERO }, .zero_modes = Z_DONTNEED,
};
FIXTURE_VARIANT_ADD(remap, remap) {
	.nd = 2, .kind = { D_ZERO, D_ZERO }, .zero_modes = Z_FIXED | Z_HOLE,
};
FIXTURE_VARIANT_ADD(remap, mremap) {
	.nd = 2, .kind = { D_MOVE, D_MOVE },
};
FIXTURE_VARIANT_ADD(remap, mprotect) {
	.nd = 2, .kind = { D_PROT, D_PROT },
};
FIXTURE_VARIANT_ADD(remap, fork) {
	.nd = 2, .kind = { D_FORK, D_FORK },
};
FIXTURE_VARIANT_ADD(remap, mixed) {
	.nd = 4, .kind = { D_ZERO, D_MOVE, D_PROT, D_FORK },
	.zero_modes = Z_DONTNEED | Z_FIXED | Z_HOLE,
};

static void *map_private(size_t len)
{
	void *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (m == MAP_FAILED)
		return NULL;
	madvise(m, len, MADV_NOHUGEPAGE);
	return m;
}

FIXTURE_SETUP(remap)
{
	struct remap *r = &self->r;
	struct ibv_device_attr_ex ax;
	uint32_t need = IBV_ODP_SUPPORT_WRITE | IBV_ODP_SUPPORT_READ |
			IBV_ODP_SUPPORT_ATOMIC;
	size_t p, c;
	int i;

	TU_OPEN_QUERY(&self->cfg, &self->v, &ax);
	TU_REQUIRE_CAP((ax.odp_caps.per_transport_caps.rc_odp_caps & need) ==
		       need, "RC WRITE, READ and atomics on ODP MRs");
	ASSERT_EQ(0, vu_qp_pair_create(&self->v, &self->qps));
	self->maxlen = 128U << self->v.port_attr.active_mtu;
	if (self->maxlen > 1024)
		self->maxlen = 1024;

	self->rng = tu_seed();
	r->seed = mix32(self->rng);
	r->psz = getpagesize();
	r->npages = REGION / r->psz;
	r->chunk = CHUNK_PAGES * r->psz;
	r->nchunks = REGION / r->chunk;
	r->nd = variant->nd;
	r->nslots = variant->nd + 1;
	r->child_wait_ns = tu_ms(20000) * 1000000LL;
	r->zero_modes = variant->zero_modes;
	pthread_rwlock_init(&r->hole_lock, NULL);
	r->gen = calloc(r->npages, sizeof(*r->gen));
	r->kind = calloc(r->npages, 1);
	self->sgen = calloc(r->npages, sizeof(*self->sgen));
	self->shadow = malloc(REGION);
	self->got = malloc(r->psz);
	self->want = malloc(r->psz);
	r->region = map_private(REGION);
	r->fs = mmap(NULL, sizeof(*r->fs), PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, r->fs);
	ASSERT_TRUE(r->gen && r->kind && self->sgen && self->shadow &&
		    self->got && self->want && r->region);
	for (c = 0; c < r->nchunks; c++) {
		i = c % r->nslots;
		for (p = c * CHUNK_PAGES; p < (c + 1) * CHUNK_PAGES; p++)
			r->kind[p] = i < r->nd && variant->kind[i] != D_FORK ?
				     variant->kind[i] : D_NONE;
	}
	for (p = 0; p < r->npages; p++)
		gen_fill(r, p, 0, r->region + p * r->psz);
	memcpy(self->shadow, r->region, REGION);

	for (i = 0; i < r->nd; i++) {
		struct disturber *d = &r->d[i];

		d->r = r;
		d->slot = i;
		d->kind = variant->kind[i];
		d->rng = mix32(self->rng + i + 1);
		atomic_init(&d->chunk, -1);
		if (d->kind == D_MOVE) {
			d->scratch = map_private(r->chunk);
			ASSERT_NE(NULL, d->scratch);
		}
		if (d->kind == D_FORK && !r->snap) {
			r->snap = map_private(REGION);
			ASSERT_NE(NULL, r->snap);
		}
	}

	self->local = map_private(r->psz);
	ASSERT_NE(NULL, self->local);
	self->lmr = vu_reg_mr(&self->v, self->local, r->psz,
			      IBV_ACCESS_LOCAL_WRITE);
	ASSERT_NE(NULL, self->lmr);
	self->mr = vu_reg_mr(&self->v, r->region, REGION, ACC_RACE);
	ASSERT_NE(NULL, self->mr);
}

FIXTURE_TEARDOWN(remap)
{
	struct remap *r = &self->r;
	int i;

	stop_disturbers(r);
	vu_dereg_mr(&self->v, self->mr);
	vu_dereg_mr(&self->v, self->lmr);
	vu_qp_pair_destroy(&self->v, &self->qps);
	vu_close(&self->v);
	if (r->region)
		munmap(r->region, REGION);
	if (self->local)
		munmap(self->local, r->psz);
	if (r->snap)
		munmap(r->snap, REGION);
	for (i = 0; i < r->nd; i++)
		if (r->d[i].scratch)
			munmap(r->d[i].scratch, r->chunk);
	if (r->fs && r->fs != MAP_FAILED)
		munmap(r->fs, sizeof(*r->fs));
	free(r->gen);
	free(r->kind);
	free(self->sgen);
	free(self->shadow);
	free(self->got);
	free(self->want);
	EXPECT_TRUE(tu_live_back("umems", 0, 10000));
	EXPECT_TRUE(tu_live_back("entries", 0, 10000));
}

/* ---- the main thread's checks -------------------------------------------- */

/*
 * Copy page @p into self->got while no disturber changes it, waiting out
 * a change in progress (SETTLE_NS at most); its generation in *@g.
 * process_vm_readv(), not a load: a page in the remap hole must not kill
 * the reader. Returns 0, -ETIMEDOUT, or -EFAULT when a page of a stable
 * generation cannot be read.
 */
static int page_stable(FIXTURE_DATA(remap) *self, size_t p, unsigned int *g)
{
	struct remap *r = &self->r;
	struct iovec mine = { self->got, r->psz };
	struct iovec its = { r->region + p * r->psz, r->psz };
	int64_t end = now_ns() + SETTLE_NS;
	unsigned int g0;
	ssize_t n;

	do {
		g0 = atomic_load(&r->gen[p]);
		if (g0 & 1) {
			sched_yield();
			continue;
		}
		n = process_vm_readv(getpid(), &mine, 1, &its, 1, 0);
		if (atomic_load(&r->gen[p]) != g0)
			continue;
		*g = g0;
		return n == (ssize_t)r->psz ? 0 : -EFAULT;
	} while (now_ns() < end);
	return -ETIMEDOUT;
}

static uint8_t *shadow_of(FIXTURE_DATA(remap) *self, size_t p)
{
	return self->shadow + p * self->r.psz;
}

static const char *op_name(enum ibv_wr_opcode code)
{
	return code == IBV_WR_RDMA_WRITE ? "WRITE" :
	       code == IBV_WR_RDMA_READ ? "READ" :
	       code == IBV_WR_ATOMIC_FETCH_AND_ADD ? "FETCH_ADD" : "CMP_SWAP";
}

#define OP_FMT		"%s #%" PRIu64 " page %zu +%zu len %zu"
#define OP_ARGS(o)	op_name((o)->code), (o)->seq, (o)->p, (o)->off, \
			(o)->len

/*
 * Before an operation on page @p: if the page was replaced since the
 * shadow was taken (no operation of ours in flight meanwhile), it must
 * hold exactly its new generation's contents: nothing written before
 * the change survives it.
 */
static void first_look(struct __test_metadata *_metadata,
		       FIXTURE_DATA(remap) *self, size_t p)
{
	struct remap *r = &self->r;
	unsigned int g = atomic_load(&r->gen[p]);

	if ((g & 1) || g == self->sgen[p])
		return;
	if (replaces(r, p)) {
		ASSERT_EQ(0, page_stable(self, p, &g)) TH_LOG("page %zu", p);
		gen_fill(r, p, g, shadow_of(self, p));
		ASSERT_TRUE(tu_same_bytes("replaced page", self->got,
					  shadow_of(self, p), r->psz))
			TH_LOG("page %zu, generation %u (shadow of %u): not "
			       "exactly its new contents", p, g,
			       self->sgen[p]);
		self->st.first_looks++;
	}
	self->sgen[p] = g;
}

/*
 * After an operation: the CPU reads page @p as the shadow, unless a
 * change replaced it since (first_look() checks it then).
 */
static void cpu_sees_shadow(struct __test_metadata *_metadata,
			    FIXTURE_DATA(remap) *self, const struct op *o)
{
	unsigned int g;

	ASSERT_EQ(0, page_stable(self, o->p, &g)) TH_LOG(OP_FMT, OP_ARGS(o));
	if (replaces(&self->r, o->p) && g != self->sgen[o->p])
		return;
	ASSERT_TRUE(tu_same_bytes("page read by the CPU", self->got,
				  shadow_of(self, o->p), self->r.psz))
		TH_LOG("after " OP_FMT " (generation %u)", OP_ARGS(o), g);
}

static uint64_t atomic_result(const struct op *o, uint64_t old)
{
	if (o->code == IBV_WR_ATOMIC_FETCH_AND_ADD)
		return old + o->cmp_add;
	return old == o->cmp_add ? o->swap : old;
}

/* The operation's effect on the page image @page, if it succeeded. */
static void apply(FIXTURE_DATA(remap) *self, const struct op *o,
		  uint8_t *page)
{
	uint64_t old;

	if (o->code == IBV_WR_RDMA_WRITE) {
		memcpy(page + o->off, self->local, o->len);
	} else if (o->code != IBV_WR_RDMA_READ) {
		memcpy(&old, page + o->off, 8);
		old = atomic_result(o, old);
		memcpy(page + o->off, &old, 8);
	}
}

static uint64_t *result_slot(FIXTURE_DATA(remap) *self)
{
	return (uint64_t *)(self->local + 2 * self->maxlen);
}

/*
 * No change overlapped the operation (@ro: the page was read-only all
 * along): it did exactly what it does on a quiet page.
 */
static void check_quiet(struct __test_metadata *_metadata,
			FIXTURE_DATA(remap) *self, const struct op *o,
			int status, bool ro)
{
	uint8_t *sh = shadow_of(self, o->p);
	uint64_t slot;

	if (ro && o->code != IBV_WR_RDMA_READ) {
		ASSERT_EQ(IBV_WC_REM_ACCESS_ERR, status)
			TH_LOG(OP_FMT " into a read-only page: %s", OP_ARGS(o),
			       ibv_wc_status_str(status));
		self->st.ro_refused++;
	} else {
		ASSERT_EQ(IBV_WC_SUCCESS, status)
			TH_LOG(OP_FMT " on a quiet page: %s", OP_ARGS(o),
			       ibv_wc_status_str(status));
		if (o->code == IBV_WR_RDMA_READ) {
			ASSERT_TRUE(tu_same_bytes("READ", self->local +
						  self->maxlen, sh + o->off,
						  o->len))
				TH_LOG(OP_FMT, OP_ARGS(o));
		} else if (o->code != IBV_WR_RDMA_WRITE) {
			memcpy(&slot, sh + o->off, 8);
			ASSERT_EQ(slot, *result_slot(self))
				TH_LOG(OP_FMT ": the value it returned",
				       OP_ARGS(o));
		}
		apply(self, o, sh);
	}
	cpu_sees_shadow(_metadata, self, o);
}

/*
 * mprotect flipped the page during the operation: its contents stay, a
 * READ must work, a WRITE or atomic works (and is there) or fails with a
 * remote access error (and changed nothing).
 */
static void check_prot(struct __test_metadata *_metadata,
		       FIXTURE_DATA(remap) *self, const struct op *o,
		       int status)
{
	if (o->code != IBV_WR_RDMA_READ && status == IBV_WC_REM_ACCESS_ERR) {
		self->st.amb_errors++;
		cpu_sees_shadow(_metadata, self, o);
		return;
	}
	check_quiet(_metadata, self, o, status, false);
}

/*
 * Page @p's contents at generation @g, as far as the main thread knows
 * them: the shadow for the shadow's generation, else the generation's own
 * contents (no operation of ours was in flight since).
 */
static const uint8_t *contents_at(FIXTURE_DATA(remap) *self, size_t p,
				  unsigned int g)
{
	if (g == self->sgen[p])
		return shadow_of(self, p);
	gen_fill(&self->r, p, g, self->want);
	return self->want;
}

/*
 * A replacement overlapped the operation (generations @g0 to @g1 seen
 * around it). A READ returns one of the generations whole; a WRITE or
 * atomic landed in the page there is now or went with the page replaced.
 */
static void check_replaced(struct __test_metadata *_metadata,
			   FIXTURE_DATA(remap) *self, const struct op *o,
			   int status, unsigned int g0, unsigned int g1)
{
	struct remap *r = &self->r;
	unsigned int g, g2, lo = g0 & ~1U, hi = (g1 + 1) & ~1U;
	uint64_t res = *result_slot(self), slot, base;
	bool hole = r->kind[o->p] == D_ZERO && (r->zero_modes & Z_HOLE);
	bool seen = false, may_land;
	uint8_t *got = self->got;

	if (status != IBV_WC_SUCCESS) {
		ASSERT_TRUE(hole && status == IBV_WC_REM_ACCESS_ERR)
			TH_LOG(OP_FMT " during a change of the page "
			       "(generations %u..%u): %s", OP_ARGS(o), g0, g1,
			       ibv_wc_status_str(status));
		self->st.amb_errors++;
	}
	if (status == IBV_WC_SUCCESS && o->code == IBV_WR_RDMA_READ) {
		for (g = lo; g <= hi && !seen; g += 2)
			seen = !memcmp(self->local + self->maxlen,
				       contents_at(self, o->p, g) + o->off,
				       o->len);
		ASSERT_TRUE(seen)
			TH_LOG(OP_FMT ": no generation %u..%u of the page "
			       "holds what it returned", OP_ARGS(o), lo, hi);
	}
	if (status == IBV_WC_SUCCESS && o->code != IBV_WR_RDMA_READ &&
	    o->code != IBV_WR_RDMA_WRITE) {
		for (g = lo; g <= hi && !seen; g += 2)
			seen = !memcmp(&res,
				       contents_at(self, o->p, g) + o->off, 8);
		ASSERT_TRUE(seen)
			TH_LOG(OP_FMT ": returned 0x%" PRIx64 ", in no "
			       "generation %u..%u", OP_ARGS(o), res, lo, hi);
	}
	if (o->code == IBV_WR_RDMA_READ)
		return;		/* first_look() checks the page later */

	ASSERT_EQ(0, page_stable(self, o->p, &g2)) TH_LOG(OP_FMT, OP_ARGS(o));
	/* g2 > sgen: a replacement began since the shadow */
	gen_fill(r, o->p, g2, self->want);
	/* it may be in the page only if the page's change began before */
	may_land = status == IBV_WC_SUCCESS && g2 - 1 <= g1;
	if (o->code == IBV_WR_RDMA_WRITE) {
		if (may_land && !memcmp(got + o->off, self->local, o->len)) {
			memcpy(self->want + o->off, self->local, o->len);
			self->st.landed++;
		} else if (status == IBV_WC_SUCCESS) {
			self->st.lost++;
		}
	} else {
		memcpy(&slot, got + o->off, 8);
		memcpy(&base, self->want + o->off, 8);
		if (slot != base) {
			ASSERT_TRUE(may_land && res == base &&
				    slot == atomic_result(o, base))
				TH_LOG(OP_FMT ": slot 0x%" PRIx64 ", returned "
				       "0x%" PRIx64 ", generation %u (seen "
				       "%u..%u) holds 0x%" PRIx64, OP_ARGS(o),
				       slot, res, g2, g0, g1, base);
			memcpy(self->want + o->off, &slot, 8);
			self->st.landed++;
		} else if (status == IBV_WC_SUCCESS) {
			self->st.lost++;
		}
	}
	ASSERT_TRUE(tu_same_bytes("page after a change", got, self->want,
				  r->psz))
		TH_LOG("after " OP_FMT ": generation %u (seen %u..%u)%s",
		       OP_ARGS(o), g2, g0, g1,
		       may_land ? "" : ": the change began after it ended");
	memcpy(shadow_of(self, o->p), got, r->psz);
	self->sgen[o->p] = g2;
}

/*
 * After an error completion: reconnect the pair. rxe moves a QP to the
 * error state after it completed the work request (the requester) or
 * sent the NAK (the responder, on a remote access error): wait for both,
 * or their pending error would undo the reconnection.
 */
static int reconnect(FIXTURE_DATA(remap) *self, int status)
{
	int ret = vu_wait_qp_state(&self->v, self->qps.a.qp, IBV_QPS_ERR);

	self->st.reconnects++;
	if (!ret && status == IBV_WC_REM_ACCESS_ERR)
		ret = vu_wait_qp_state(&self->v, self->qps.b.qp,
				       IBV_QPS_ERR);
	if (!ret)
		ret = tu_qp_reconnect(&self->v, self->qps.a.qp,
				      self->qps.b.qp->qp_num, 7, 14);
	return ret ? ret : tu_qp_reconnect(&self->v, self->qps.b.qp,
					   self->qps.a.qp->qp_num, 7, 14);
}

/* A random operation, half of them in a chunk a disturber is at. */
static void pick_op(FIXTURE_DATA(remap) *self, struct op *o)
{
	struct remap *r = &self->r;
	unsigned int *rng = &self->rng, k = rand_r(rng) % 20;
	size_t words = r->psz / 8, n;
	int c = -1;

	memset(o, 0, sizeof(*o));
	o->seq = ++self->seq;
	if (r->nd && rand_r(rng) % 2)
		c = atomic_load(&r->d[rand_r(rng) % r->nd].chunk);
	o->p = c >= 0 ? (size_t)c * CHUNK_PAGES + rand_r(rng) % CHUNK_PAGES :
	       rand_r(rng) % r->npages;
	o->code = k < 8 ? IBV_WR_RDMA_WRITE : k < 14 ? IBV_WR_RDMA_READ :
		  k < 17 ? IBV_WR_ATOMIC_FETCH_AND_ADD :
		  IBV_WR_ATOMIC_CMP_AND_SWP;
	n = 1;
	if (o->code == IBV_WR_RDMA_WRITE)
		n += rand_r(rng) % (self->maxlen / 32);
	else if (o->code == IBV_WR_RDMA_READ)
		n += rand_r(rng) % (self->maxlen / 8);
	o->len = 8 * n;
	o->off = 8 * (rand_r(rng) % (words - n + 1));
}

/* Each 8 bytes of a WRITE: its sequence number and its own address. */
static uint64_t tag_of(const struct remap *r, const struct op *o, size_t off)
{
	return TAG_BIT | o->seq << 20 | (o->p * r->psz + off) >> 3;
}

static void run_op(struct __test_metadata *_metadata,
		   FIXTURE_DATA(remap) *self, struct op *o)
{
	struct remap *r = &self->r;
	uint64_t raddr = (uintptr_t)r->region + o->p * r->psz + o->off;
	uint64_t w, *res = result_slot(self);
	unsigned int g0, g1, f0, f1;
	size_t i;
	int status;

	first_look(_metadata, self, o->p);
	memcpy(&w, shadow_of(self, o->p) + o->off, 8);
	if (o->code == IBV_WR_RDMA_WRITE) {
		for (i = 0; i < o->len; i += 8) {
			w = tag_of(r, o, o->off + i);
			memcpy(self->local + i, &w, 8);
		}
	} else if (o->code == IBV_WR_ATOMIC_FETCH_AND_ADD) {
		o->cmp_add = (uint64_t)rand_r(&self->rng) << 8 | 1;
	} else if (o->code == IBV_WR_ATOMIC_CMP_AND_SWP) {
		/* mostly the value there, sometimes not: no swap then */
		o->cmp_add = rand_r(&self->rng) % 4 ? w : w ^ 1;
		o->swap = tag_of(r, o, o->off);
	}
	memset(self->local + self->maxlen, TU_POISON, self->maxlen);
	*res = ~0ULL;

	f0 = atomic_load(&r->fork_seq);
	g0 = atomic_load(&r->gen[o->p]);
	if (o->code == IBV_WR_RDMA_WRITE || o->code == IBV_WR_RDMA_READ)
		status = tu_xfer(&self->v, &self->qps.a, o->code,
				 self->local + (o->code == IBV_WR_RDMA_READ ?
						self->maxlen : 0),
				 o->len, self->lmr->lkey, raddr,
				 self->mr->rkey);
	else
		status = tu_atomic(&self->v, &self->qps.a, o->code, res,
				   self->lmr->lkey, raddr, self->mr->rkey,
				   o->cmp_add, o->swap);
	g1 = atomic_load(&r->gen[o->p]);
	f1 = atomic_load(&r->fork_seq);
	atomic_fetch_add(&r->fs->ops, 1);
	self->st.ops++;
	ASSERT_LE(0, status) TH_LOG(OP_FMT ": no completion (generations "
				    "%u..%u)", OP_ARGS(o), g0, g1);
	if (status != IBV_WC_SUCCESS)
		ASSERT_EQ(0, reconnect(self, status))
			TH_LOG("reconnecting after " OP_FMT ": %s", OP_ARGS(o),
			       ibv_wc_status_str(status));
	if (f0 != f1 || (f0 & 1))
		self->st.during_fork++;

	/* quiet: no change during it, none since the shadow's generation */
	if (g0 == g1 && !(g0 & 1) &&
	    (g0 == self->sgen[o->p] || !replaces(r, o->p))) {
		check_quiet(_metadata, self, o, status,
			    r->kind[o->p] == D_PROT && g0 % 4 == 2);
		return;
	}
	self->st.ambiguous++;
	if (r->kind[o->p] == D_PROT)
		check_prot(_metadata, self, o, status);
	else
		check_replaced(_metadata, self, o, status, g0, g1);
}

TEST_F_TIMEOUT(remap, tagged_race, 7200)
{
	struct remap *r = &self->r;
	long rounds = tu_rounds(12, 200), k, changes = 0;
	long long retries0 = tu_dev_counter(&self->v, "odp_fault_retries");
	long long rnr0 = tu_dev_counter(&self->v, "rcvd_rnr_err");
	long long invals, retries, dev_retries, rnr;
	int64_t t0 = now_ns();
	struct op o;
	size_t p;
	int i;

	ASSERT_LE(0, retries0) TH_LOG("rxe shows no odp_fault_retries");
	for (i = 0; i < r->nd; i++) {
		ASSERT_EQ(0, pthread_create(&r->d[i].thread, NULL, disturb,
					    &r->d[i]));
		r->d[i].started = true;
	}
	for (k = 0; k < rounds * OPS_PER_ROUND; k++) {
		pick_op(self, &o);
		run_op(_metadata, self, &o);
		if (atomic_load(&r->stop))
			break;
	}
	stop_disturbers(r);
	ASSERT_EQ(0, atomic_load(&r->err))
		TH_LOG("disturber: %s: %s", atomic_load(&r->err_what),
		       strerror(atomic_load(&r->err)));
	ASSERT_EQ(0, atomic_load(&r->fork_bad))
		TH_LOG("a fork child ended with wait status 0x%x (exit 1: "
		       "its memory changed at +%ld after fork; 2: its own "
		       "writes were lost; 3: the parent made no progress)",
		       atomic_load(&r->fork_bad),
		       atomic_load(&r->fs->bad_off));
	/* every byte of every page, quiet now */
	for (p = 0; p < r->npages; p++) {
		first_look(_metadata, self, p);
		o = (struct op){ .code = IBV_WR_RDMA_READ, .p = p };
		cpu_sees_shadow(_metadata, self, &o);
	}

	invals = tu_mr_counter(self->mr->rkey, "page_invalidations");
	retries = tu_mr_counter(self->mr->rkey, "fault_retries");
	dev_retries = tu_dev_counter(&self->v, "odp_fault_retries") - retries0;
	rnr = tu_dev_counter(&self->v, "rcvd_rnr_err") - rnr0;
	for (i = 0; i < r->nd; i++)
		changes += r->d[i].changes;
	ksft_print_msg("%ld ops in %.1f s: %ld ambiguous, %ld during a fork; "
		       "%ld changes, %ld forks; %ld landed, %ld lost with the "
		       "page; %ld refused read-only, %ld errors while "
		       "changing, %ld reconnects; %ld first looks\n",
		       self->st.ops, (now_ns() - t0) / 1e9,
		       self->st.ambiguous, self->st.during_fork, changes,
		       atomic_load(&r->forks), self->st.landed, self->st.lost,
		       self->st.ro_refused, self->st.amb_errors,
		       self->st.reconnects, self->st.first_looks);
	ksft_print_msg("MR: page_invalidations %lld, fault_retries %lld; "
		       "device: odp_fault_retries +%lld, rcvd_rnr_err +%lld\n",
		       invals, retries, dev_retries, rnr);

	for (i = 0; i < r->nd; i++)
		EXPECT_LT(0, r->d[i].changes)
			TH_LOG("disturber %d changed nothing", i);
	EXPECT_LT(0, self->st.ambiguous + self->st.during_fork)
		TH_LOG("no operation overlapped a change: no race");
	EXPECT_LT(0, invals) TH_LOG("the MR saw no invalidation");
	EXPECT_LT(0, retries)
		TH_LOG("no fault of the MR began again after an invalidation");
	EXPECT_LT(0, dev_retries)
		TH_LOG("rxe's odp_fault_retries did not rise");
}

TEST_HARNESS_MAIN
