// SPDX-License-Identifier: GPL-2.0
/*
 * odp_migrate - RDMA traffic with tagged data over an ODP MR while the
 * kernel migrates the MR's pages between NUMA nodes (reliability.md §8
 * #13, and #23's NUMA balancing; issue 12). Migration replaces every
 * page it moves: the mirror must drop the old page at the invalidation
 * and fault the new one, or the device reads and writes a freed page and
 * the CPU never sees its data (DESIGN.md invariants 1 and 6).
 *
 * The guest boots with two fake NUMA nodes (numa=fake=2, automatic NUMA
 * balancing off). A loopback RC QP pair runs rounds of random operations
 * on a 8 MiB anonymous region (4 KiB pages, all written by the CPU
 * first) through an ODP MR: a tagged RDMA WRITE (checked by the CPU at
 * once), an RDMA READ (checked against a shadow of the region), a CPU
 * write that a READ must then see, an 8-byte FETCH_ADD and a CMP_SWAP
 * (the original value against the shadow, the result by the CPU). At the
 * end the whole region must equal its shadow: every byte no operation
 * touched is unchanged, no page was lost or swapped with another. The
 * MR's page_invalidations must have risen, and the pages must really have
 * moved (every move is verified with move_pages() in query mode):
 *  - move_pages: a thread moves random 64-page chunks to the other node,
 *    one every 2 ms, and checks the status array and a query afterwards:
 *    every page on the target node; explicit and implicit MR
 *    (ibv_reg_mr(pd, NULL, SIZE_MAX, ...)).
 *  - mbind: the thread moves the whole region back and forth with
 *    mbind(MPOL_BIND, MPOL_MF_MOVE | MPOL_MF_STRICT).
 *  - migrate_pages: the thread moves all of the process's pages from one
 *    node to the other with migrate_pages() (its return counts the pages
 *    that cannot move, such as the rxe queues: only the region's placement
 *    is checked). The whole-region movers (mbind, migrate_pages) wait
 *    for a round of traffic to complete between two moves, so the
 *    traffic makes progress however slow the host (two CI runs on a
 *    slow day lost a completion's 10 s to back-to-back migrate_pages).
 *  - numa_balancing: kernel.numa_balancing=1 (restored at teardown), its
 *    scanner sped up through /sys/kernel/debug/sched/numa_balancing/.
 *    The test pins itself to a CPU and parks the region on the node that
 *    is not that CPU's (as getcpu() reports it); the traffic and a CPU
 *    read of every page each 8 rounds run on that CPU, so balancing unmaps
 *    the region (NUMA hinting: an invalidation of the MR) and migrates
 *    the pages it finds misplaced to the CPU's node. With numa=fake both
 *    vCPUs belong to node 0 for the scheduler (each node's cpulist in
 *    sysfs shows 0-1 all the same), so the region is parked on node 1
 *    and balancing pulls it to node 0; the case requires that hinting
 *    faults happened and that pages came to the CPU's node.
 * Traffic runs until its rounds are done and the mover completed enough
 * verified moves (bounded: 120 s of guest time per case, 1200 s at the
 * stress count).
 *
 * Rounds: tu_rounds(300, 2000) per case; the seed is printed (tu_seed()).
 *
 * Device: RXE_ODP_DEV (default rxe0), RXE_ODP_GID_IDX (default 1); skips
 * without RC ODP WRITE/READ/ATOMIC support (a failure with our rxe), or
 * when the kernel has fewer than two NUMA nodes.
 *
 * Rounds: about 25 s of guest time for the five cases at the fast
 * count (TCG).
 *
 * Mutation record (test-side breaks, built outside the tree and run in
 * the guest; each made the case named fail, then was reverted):
 *  - a WRITE not applied to the shadow (what the device reading or
 *    writing a stale page would look like to the checks): move_pages
 *    fails at the end, "the region after the traffic: 163144 of 8388608
 *    bytes differ".
 *  - the mover "moves" each chunk to the node it is already on (status
 *    and query still agree, nothing migrates): move_pages fails, "the MR
 *    saw no invalidation" (page_invalidations 0 -> 0).
 *  - NUMA balancing left off: numa_balancing fails after its 120 s bound
 *    (110094 rounds): no invalidation, no hinting fault, no page moved.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "kv_file.h"
#include "verbs_util.h"
#include "test_util.h"

#define REGION		(8UL << 20)
#define CHUNK_PAGES	64
#define ACC_ODP		(IBV_ACCESS_ON_DEMAND | IBV_ACCESS_LOCAL_WRITE | \
			 IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ | \
			 IBV_ACCESS_REMOTE_ATOMIC)
#define LOCAL_PAGES	5	/* source 2, destination 2, atomic result 1 */
#define CASE_MS		tu_ms(120000)	/* bound of one case's traffic */

/* <numaif.h> (libnuma-dev) is not needed for three constants */
#define MPOL_BIND	2
#define MPOL_MF_STRICT	(1 << 0)
#define MPOL_MF_MOVE	(1 << 1)
#define NODE_BITS	(8 * sizeof(unsigned long))

#define NB_SYSCTL	"/proc/sys/kernel/numa_balancing"
#define NB_DEBUGFS	"/sys/kernel/debug/sched/numa_balancing/"

enum how { HOW_MOVE_PAGES, HOW_MBIND, HOW_MIGRATE_PAGES, HOW_BALANCING };

/* The scanner's knobs, and the values the balancing case sets. */
static const struct { const char *name; long fast; } nb_knobs[] = {
	{ "scan_delay_ms", 0 },
	{ "scan_period_min_ms", 10 },
	{ "scan_period_max_ms", 100 },
	{ "scan_size_mb", 256 },
};
#define N_KNOBS	(sizeof(nb_knobs) / sizeof(nb_knobs[0]))

/* The thread that migrates the region's pages, and what it saw. */
struct mover {
	enum how	how;
	uint8_t		*region;
	size_t		pages, pg;
	int		node[2];	/* the two nodes */
	unsigned int	seed;
	void		**addr;		/* one per page of the region */
	int		*nodes, *status;
	pthread_t	thread;
	bool		running;
	atomic_bool	stop;
	atomic_long	passes;		/* moves verified on their target */
	atomic_long	moved;		/* pages in those */
	atomic_long	partial;	/* calls that left pages behind */
	atomic_bool	failed;
	char		err[256];
	atomic_ulong	rounds_done;	/* traffic rounds completed */
	atomic_long	longest_ms;	/* the longest mbind/migrate_pages */
};

FIXTURE(migrate) {
	struct vu_config	cfg;
	struct vu_ctx		v;
	struct vu_qp_pair	qps;
	size_t			pg;
	uint8_t			*region, *want, *local;
	struct ibv_mr		*mr, *lmr;
	unsigned int		seed;
	struct mover		m;
	long			nb_saved;	/* -1: not changed */
	long			knob_saved[N_KNOBS];
};

FIXTURE_VARIANT(migrate) {
	enum how	how;
	bool		implicit;
	long		min_passes;	/* verified moves the case needs */
};

FIXTURE_VARIANT_ADD(migrate, move_pages) {
	.how = HOW_MOVE_PAGES, .min_passes = 40,
};
FIXTURE_VARIANT_ADD(migrate, move_pages_implicit) {
	.how = HOW_MOVE_PAGES, .implicit = true, .min_passes = 40,
};
FIXTURE_VARIANT_ADD(migrate, mbind) { .how = HOW_MBIND, .min_passes = 4 };
FIXTURE_VARIANT_ADD(migrate, migrate_pages) {
	.how = HOW_MIGRATE_PAGES, .min_passes = 4,
};
FIXTURE_VARIANT_ADD(migrate, numa_balancing) { .how = HOW_BALANCING };

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* move_pages(2) of this process: @nodes NULL queries. */
static long move_pages(unsigned long n, void **addr, const int *nodes,
		       int *status)
{
	return syscall(SYS_move_pages, 0, n, addr, nodes, status,
		       MPOL_MF_MOVE);
}

/*
 * Query where pages [@first, @first + @n) of the region are; count those
 * on @node. Returns the count, or -1 (errno set) when the query failed.
 */
static long pages_on(struct mover *m, size_t first, size_t n, int node)
{
	long on = 0;
	size_t i;

	if (move_pages(n, m->addr + first, NULL, m->status + first))
		return -1;
	for (i = first; i < first + n; i++)
		on += m->status[i] == node;
	return on;
}

static void mover_fail(struct mover *m, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Record the mover's first failure and stop it. */
static void mover_fail(struct mover *m, const char *fmt, ...)
{
	va_list ap;

	if (atomic_exchange(&m->failed, true))
		return;
	va_start(ap, fmt);
	vsnprintf(m->err, sizeof(m->err), fmt, ap);
	va_end(ap);
	atomic_store(&m->stop, true);
}

/*
 * Move pages [@first, @first + @n) to @node with move_pages(); when all
 * moved, the status array and a query must both say @node for each.
 */
static void move_chunk(struct mover *m, size_t first, size_t n, int node)
{
	long ret;
	size_t i;

	for (i = first; i < first + n; i++)
		m->nodes[i] = node;
	ret = move_pages(n, m->addr + first, m->nodes + first,
			 m->status + first);
	if (ret < 0) {
		mover_fail(m, "move_pages(%zu pages to node %d): %s", n, node,
			   strerror(errno));
		return;
	}
	if (ret > 0) {
		atomic_fetch_add(&m->partial, 1);
		return;
	}
	for (i = first; i < first + n; i++) {
		if (m->status[i] != node) {
			mover_fail(m, "move_pages: page %zu status %d, want node %d",
				   i, m->status[i], node);
			return;
		}
	}
	ret = pages_on(m, first, n, node);
	if (ret != (long)n) {
		mover_fail(m, "after move_pages to node %d: %ld of %zu pages there (%s)",
			   node, ret, n, ret < 0 ? strerror(errno) : "query");
		return;
	}
	atomic_fetch_add(&m->passes, 1);
	atomic_fetch_add(&m->moved, n);
}

/* Note how long a whole-region call begun at @t0 (now_ms()) took. */
static void whole_took(struct mover *m, uint64_t t0)
{
	long ms = (long)(now_ms() - t0);

	if (ms > atomic_load(&m->longest_ms))
		atomic_store(&m->longest_ms, ms);
}

/* After a whole-region move to @node (@ok: the call said all moved). */
static void whole_moved(struct mover *m, int node, bool ok, const char *call)
{
	long on = pages_on(m, 0, m->pages, node);

	if (on < 0) {
		mover_fail(m, "query after %s: %s", call, strerror(errno));
	} else if (on == (long)m->pages) {
		atomic_fetch_add(&m->passes, 1);
		atomic_fetch_add(&m->moved, on);
	} else if (ok) {
		mover_fail(m, "%s to node %d said all moved, yet %ld of %zu pages are there",
			   call, node, on, m->pages);
	} else {
		atomic_fetch_add(&m->partial, 1);
	}
}

/* One migration of the mover's kind; @k counts them. */
static void move_once(struct mover *m, unsigned long k)
{
	int to = m->node[k & 1], from = m->node[!(k & 1)];
	unsigned long mask = 1UL << to, old = 1UL << from;
	uint64_t t0;
	size_t first;
	long ret;

	switch (m->how) {
	case HOW_MOVE_PAGES:
		first = (rand_r(&m->seed) % (m->pages / CHUNK_PAGES)) *
			CHUNK_PAGES;
		/* to the node its first page is not on */
		ret = pages_on(m, first, 1, m->node[0]);
		if (ret < 0) {
			mover_fail(m, "move_pages query: %s", strerror(errno));
			return;
		}
		move_chunk(m, first, CHUNK_PAGES, m->node[ret ? 1 : 0]);
		break;
	case HOW_MBIND:
		t0 = now_ms();
		ret = syscall(SYS_mbind, m->region, m->pages * m->pg,
			      MPOL_BIND, &mask, NODE_BITS + 1,
			      MPOL_MF_MOVE | MPOL_MF_STRICT);
		whole_took(m, t0);
		if (ret && errno != EIO) {
			mover_fail(m, "mbind(node %d, MPOL_MF_MOVE): %s", to,
				   strerror(errno));
			return;
		}
		whole_moved(m, to, !ret, "mbind");
		break;
	case HOW_MIGRATE_PAGES:
		t0 = now_ms();
		ret = syscall(SYS_migrate_pages, 0, NODE_BITS + 1, &old, &mask);
		whole_took(m, t0);
		if (ret < 0) {
			mover_fail(m, "migrate_pages(%d -> %d): %s", from, to,
				   strerror(errno));
			return;
		}
		whole_moved(m, to, false, "migrate_pages");
		break;
	case HOW_BALANCING:
		break;
	}
}

/*
 * Migrate, one call every 2 ms: pacing, not synchronisation (a fault of
 * the MR retries whenever an invalidation of the MR lands during its
 * snapshot; unpaced, the device would spend its time retrying, see
 * odp_race).
 */
static void *mover_loop(void *arg)
{
	const struct timespec pace = { .tv_nsec = 2 * 1000 * 1000 };
	struct mover *m = arg;
	unsigned long k, seen;

	for (k = 0; !atomic_load(&m->stop); k++) {
		seen = atomic_load(&m->rounds_done);
		move_once(m, k);
		nanosleep(&pace, NULL);
		/*
		 * A move of the whole region (or process) takes long under
		 * TCG, longer on a slower host: back to back, with 2 ms
		 * between them, a fault's snapshot could keep losing to the
		 * next one for more than a completion's 10 s. Let a round of
		 * traffic complete between two of them, so the traffic makes
		 * progress however fast the host is; each move still runs
		 * while the next round's work request is in flight.
		 */
		while ((m->how == HOW_MBIND || m->how == HOW_MIGRATE_PAGES) &&
		       atomic_load(&m->rounds_done) == seen &&
		       !atomic_load(&m->stop))
			nanosleep(&pace, NULL);
	}
	return NULL;
}

/* The node of the CPU the caller runs on, or -1. */
static int my_node(void)
{
	unsigned int cpu, node;

	if (syscall(SYS_getcpu, &cpu, &node, NULL))
		return -1;
	return (int)node;
}

static void log_cpulists(void)
{
	char path[64], list[64];
	FILE *f;
	int n;

	for (n = 0; n < 2; n++) {
		snprintf(path, sizeof(path),
			 "/sys/devices/system/node/node%d/cpulist", n);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (!fgets(list, sizeof(list), f))
			list[0] = 0;
		fclose(f);
		list[strcspn(list, "\n")] = 0;
		ksft_print_msg("node%d cpulist %s\n", n, list);
	}
}

/*
 * What the traffic needs: RC WRITE, READ and atomics to ODP MRs, and
 * implicit ODP for an implicit MR.
 */
static bool odp_caps_for(const struct ibv_device_attr_ex *ax, bool implicit)
{
	const uint32_t need = IBV_ODP_SUPPORT_WRITE | IBV_ODP_SUPPORT_READ |
			      IBV_ODP_SUPPORT_ATOMIC;
	uint64_t general = ax->odp_caps.general_caps;

	return (general & IBV_ODP_SUPPORT) &&
	       (!implicit || (general & IBV_ODP_SUPPORT_IMPLICIT)) &&
	       (ax->odp_caps.per_transport_caps.rc_odp_caps & need) == need;
}

FIXTURE_SETUP(migrate)
{
	struct ibv_device_attr_ex ax;
	struct mover *m = &self->m;
	size_t i;

	self->nb_saved = -1;
	TU_OPEN_QUERY(&self->cfg, &self->v, &ax);
	TU_REQUIRE_CAP(odp_caps_for(&ax, variant->implicit),
		       "%s has no%s RC ODP WRITE/READ/ATOMIC support",
		       self->cfg.dev_name,
		       variant->implicit ? " implicit" : "");
	self->pg = (size_t)sysconf(_SC_PAGESIZE);
	if (access("/sys/devices/system/node/node1", F_OK))
		SKIP(return, "one NUMA node (the guest boots with numa=fake=2)");
	/*
	 * An access waits while the pages it faults are being migrated,
	 * and these movers migrate all of the region (or of the process)
	 * at once, one batch of folios after another: in a CI guest on a
	 * loaded host a READ went without completion for the default 10 s
	 * during migrate_pages() (seed 1994857984, 2026-12-07), and one
	 * migrate_pages() of the whole process took 3.8 and 5.2 s in a
	 * guest beside two others (the longest call is printed at the
	 * end). 60 s still fails a completion that never comes.
	 */
	if (variant->how == HOW_MBIND || variant->how == HOW_MIGRATE_PAGES)
		self->v.cfg.timeout_ms = tu_ms(60000);
	ASSERT_EQ(0, vu_qp_pair_create(&self->v, &self->qps));

	self->seed = tu_seed();
	self->region = mmap(NULL, REGION, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	self->want = mmap(NULL, REGION, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	self->local = mmap(NULL, LOCAL_PAGES * self->pg,
			   PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			   -1, 0);
	ASSERT_NE(MAP_FAILED, self->region);
	ASSERT_NE(MAP_FAILED, self->want);
	ASSERT_NE(MAP_FAILED, self->local);
	/* 4 KiB pages: each one's node is what move_pages() reports */
	ASSERT_EQ(0, madvise(self->region, REGION, MADV_NOHUGEPAGE));
	tu_fill(self->region, REGION, self->seed);
	memcpy(self->want, self->region, REGION);

	if (variant->implicit)
		self->mr = ibv_reg_mr(self->v.pd, NULL, SIZE_MAX, ACC_ODP);
	else
		self->mr = ibv_reg_mr(self->v.pd, self->region, REGION,
				      ACC_ODP);
	ASSERT_NE(NULL, self->mr) TH_LOG("ODP MR: %s", strerror(errno));
	self->lmr = vu_reg_mr(&self->v, self->local, LOCAL_PAGES * self->pg,
			      IBV_ACCESS_ON_DEMAND | IBV_ACCESS_LOCAL_WRITE);
	ASSERT_NE(NULL, self->lmr);

	m->how = variant->how;
	m->region = self->region;
	m->pg = self->pg;
	m->pages = REGION / self->pg;
	m->node[0] = 0;
	m->node[1] = 1;
	m->seed = self->seed ^ 0x5bd1e995;
	m->addr = calloc(m->pages, sizeof(*m->addr));
	m->nodes = calloc(m->pages, sizeof(*m->nodes));
	m->status = calloc(m->pages, sizeof(*m->status));
	ASSERT_NE(NULL, m->addr);
	ASSERT_NE(NULL, m->nodes);
	ASSERT_NE(NULL, m->status);
	for (i = 0; i < m->pages; i++)
		m->addr[i] = self->region + i * self->pg;
}

FIXTURE_TEARDOWN(migrate)
{
	struct mover *m = &self->m;
	unsigned int i;
	char path[128];

	atomic_store(&m->stop, true);
	if (m->running)
		pthread_join(m->thread, NULL);
	if (self->nb_saved >= 0) {
		EXPECT_EQ(0, tu_write_long(NB_SYSCTL, self->nb_saved));
		for (i = 0; i < N_KNOBS; i++) {
			if (self->knob_saved[i] < 0)
				continue;
			snprintf(path, sizeof(path), NB_DEBUGFS "%s",
				 nb_knobs[i].name);
			EXPECT_EQ(0, tu_write_long(path, self->knob_saved[i]));
		}
	}
	EXPECT_EQ(0, vu_qp_pair_destroy(&self->v, &self->qps));
	EXPECT_EQ(0, vu_dereg_mr(&self->v, self->mr));
	EXPECT_EQ(0, vu_dereg_mr(&self->v, self->lmr));
	munmap(self->region, REGION);
	munmap(self->want, REGION);
	munmap(self->local, LOCAL_PAGES * self->pg);
	free(m->addr);
	free(m->nodes);
	free(m->status);
	EXPECT_EQ(0, vu_close(&self->v));
}

/* ---- traffic ----------------------------------------------------------- */

enum op { OP_WRITE, OP_READ, OP_CPU_WRITE, OP_FETCH_ADD, OP_CMP_SWAP, N_OPS };

static const char *const op_name[] = {
	"WRITE", "READ", "CPU write + READ", "FETCH_ADD", "CMP_SWAP",
};

static uint64_t load64(const void *p)
{
	uint64_t x;

	memcpy(&x, p, sizeof(x));
	return x;
}

/*
 * One round @r: a random operation at a random place of the region,
 * checked by the CPU and against the shadow, which follows.
 */
static void one_round(struct __test_metadata *_metadata,
		      FIXTURE_DATA(migrate) *self, unsigned long r)
{
	size_t pg = self->pg, max_len = pg + pg / 2;
	uint8_t *src = self->local, *dst = self->local + 2 * pg;
	uint64_t *res = (uint64_t *)(self->local + 4 * pg);
	enum op op = rand_r(&self->seed) % N_OPS;
	size_t len = 8 + rand_r(&self->seed) % (max_len - 8);
	size_t off = rand_r(&self->seed) % (REGION - max_len);
	uint64_t raddr, tag = (uint64_t)r << 8 | op, old, cmp;
	uint32_t rkey = self->mr->rkey, lkey = self->lmr->lkey;
	struct vu_qp *q = &self->qps.a;

	if (op == OP_FETCH_ADD || op == OP_CMP_SWAP)
		off &= ~(size_t)7;
	raddr = (uintptr_t)self->region + off;
	switch (op) {
	case OP_WRITE:
		tu_fill(src, len, (unsigned int)r);
		memcpy(src, &tag, sizeof(tag));
		TU_ASSERT_OK(tu_xfer(&self->v, q, IBV_WR_RDMA_WRITE, src, len,
				     lkey, raddr, rkey));
		memcpy(self->want + off, src, len);
		ASSERT_TRUE(tu_same_bytes("WRITE seen by the CPU",
					  self->region + off, src, len))
			TH_LOG("round %lu: WRITE of %zu at +%zu", r, len, off);
		break;
	case OP_CPU_WRITE:
		len = len % 256 + 8;
		tu_fill(self->region + off, len, (unsigned int)r);
		memcpy(self->region + off, &tag, sizeof(tag));
		memcpy(self->want + off, self->region + off, len);
		/* the device must read what the CPU wrote */
		__attribute__((fallthrough));
	case OP_READ:
		memset(dst, TU_POISON, len);
		TU_ASSERT_OK(tu_xfer(&self->v, q, IBV_WR_RDMA_READ, dst, len,
				     lkey, raddr, rkey));
		ASSERT_TRUE(tu_same_bytes("READ", dst, self->want + off, len))
			TH_LOG("round %lu: %s of %zu at +%zu", r, op_name[op],
			       len, off);
		break;
	case OP_FETCH_ADD:
	case OP_CMP_SWAP:
		old = load64(self->want + off);
		/* a CMP_SWAP that swaps, or (one in four) one that does not */
		cmp = op == OP_FETCH_ADD ? r : rand_r(&self->seed) % 4 ? old :
		      ~old;
		*res = 0;
		TU_ASSERT_OK(tu_atomic(&self->v, q,
				       op == OP_FETCH_ADD ?
				       IBV_WR_ATOMIC_FETCH_AND_ADD :
				       IBV_WR_ATOMIC_CMP_AND_SWP,
				       res, lkey, raddr, rkey, cmp, tag));
		ASSERT_EQ(old, *res) TH_LOG("round %lu: %s at +%zu returned the old value",
					    r, op_name[op], off);
		if (op == OP_FETCH_ADD)
			old += r;
		else if (cmp == old)
			old = tag;
		memcpy(self->want + off, &old, sizeof(old));
		ASSERT_EQ(old, load64(self->region + off))
			TH_LOG("round %lu: %s at +%zu seen by the CPU", r,
			       op_name[op], off);
		break;
	default:
		break;
	}
}

/* A CPU read of every page of the region (NUMA hinting faults). */
static unsigned long touch_all(FIXTURE_DATA(migrate) *self)
{
	const volatile uint8_t *p = self->region;
	unsigned long sum = 0;
	size_t off;

	for (off = 0; off < REGION; off += self->pg)
		sum += p[off];
	return sum;
}

/*
 * NUMA balancing on, its scanner fast; the knobs are saved for teardown.
 */
static void balancing_on(struct __test_metadata *_metadata,
			 FIXTURE_DATA(migrate) *self)
{
	char path[128];
	unsigned int i;

	for (i = 0; i < N_KNOBS; i++) {
		snprintf(path, sizeof(path), NB_DEBUGFS "%s",
			 nb_knobs[i].name);
		self->knob_saved[i] = tu_read_long(path);
		if (self->knob_saved[i] >= 0)
			ASSERT_EQ(0, tu_write_long(path, nb_knobs[i].fast));
	}
	self->nb_saved = tu_read_long(NB_SYSCTL);
	ASSERT_LE(0, self->nb_saved) TH_LOG("no %s (CONFIG_NUMA_BALANCING?)",
					    NB_SYSCTL);
	ASSERT_EQ(0, tu_write_long(NB_SYSCTL, 1));
}

TEST_F_TIMEOUT(migrate, tags_survive_migration, 1800)
{
	const bool balancing = variant->how == HOW_BALANCING;
	unsigned long rounds = tu_rounds(300, 2000), r;
	long long invals0, invals, hints0, hints1, migrated0, migrated1;
	struct mover *m = &self->m;
	uint64_t deadline = now_ms() + CASE_MS * (rounds > 300 ? 10 : 1);
	long on_cpu0 = 0, on_cpu = 0, passes;
	int cpu, near = 0;

	log_cpulists();
	hints0 = kv_file_value("/proc/vmstat", "numa_hint_faults");
	migrated0 = kv_file_value("/proc/vmstat", "numa_pages_migrated");
	if (balancing) {
		/* park the region on the node that is not this CPU's */
		cpu = tu_pin_cpu();
		ASSERT_LE(0, cpu);
		near = my_node();
		ASSERT_LE(0, near);
		ASSERT_GE(1, near) TH_LOG("CPU %d is on node %d", cpu, near);
		ksft_print_msg("pinned to CPU %d, node %d; the region starts on node %d\n",
			       cpu, near, !near);
		move_chunk(m, 0, m->pages, !near);
		ASSERT_FALSE(atomic_load(&m->failed)) TH_LOG("%s", m->err);
		ASSERT_EQ(1, atomic_load(&m->passes))
			TH_LOG("parking the region on node %d failed", !near);
		on_cpu0 = pages_on(m, 0, m->pages, near);
		ASSERT_EQ(0, on_cpu0);
		invals0 = tu_mr_counter(self->mr->rkey, "page_invalidations");
		balancing_on(_metadata, self);
	} else {
		invals0 = tu_mr_counter(self->mr->rkey, "page_invalidations");
		ASSERT_EQ(0, pthread_create(&m->thread, NULL, mover_loop, m));
		m->running = true;
	}

	for (r = 1; !atomic_load(&m->failed); r++) {
		passes = atomic_load(&m->passes);
		if (r > rounds && (balancing ? on_cpu > 0 :
				   passes >= variant->min_passes))
			break;
		if (now_ms() > deadline)
			break;
		one_round(_metadata, self, r);
		atomic_fetch_add(&m->rounds_done, 1);
		if (balancing && !(r % 8)) {
			touch_all(self);
			on_cpu = pages_on(m, 0, m->pages, near);
			ASSERT_LE(0, on_cpu);
		}
	}
	atomic_store(&m->stop, true);
	if (m->running) {
		pthread_join(m->thread, NULL);
		m->running = false;
	}
	ASSERT_FALSE(atomic_load(&m->failed)) TH_LOG("mover: %s", m->err);
	hints1 = kv_file_value("/proc/vmstat", "numa_hint_faults");
	migrated1 = kv_file_value("/proc/vmstat", "numa_pages_migrated");
	invals = tu_mr_counter(self->mr->rkey, "page_invalidations");
	ksft_print_msg("%lu rounds; %ld verified moves (%ld pages), %ld calls left pages behind; MR page_invalidations %lld -> %lld; numa_hint_faults +%lld, numa_pages_migrated +%lld; longest whole-region call %ld ms\n",
		       r - 1, atomic_load(&m->passes), atomic_load(&m->moved),
		       atomic_load(&m->partial), invals0, invals,
		       hints1 - hints0,
		       migrated1 - migrated0, atomic_load(&m->longest_ms));
	if (balancing)
		ksft_print_msg("pages on the CPU's node %d: %ld of %zu\n",
			       near, on_cpu, m->pages);

	/* every byte: what the operations and the CPU left there */
	ASSERT_TRUE(tu_same_bytes("the region after the traffic",
				  self->region, self->want, REGION));
	ASSERT_LT(rounds, r) TH_LOG("only %lu of %lu rounds in %d s", r - 1,
				    rounds, CASE_MS / 1000);
	EXPECT_LT(invals0, invals) TH_LOG("the MR saw no invalidation");
	if (balancing) {
		EXPECT_LT(hints0, hints1) TH_LOG("NUMA balancing took no hinting fault");
		EXPECT_LT(0, on_cpu)
			TH_LOG("NUMA balancing moved no page to node %d", near);
		EXPECT_LT(migrated0, migrated1);
	} else {
		EXPECT_LE(variant->min_passes, atomic_load(&m->passes))
			TH_LOG("too few verified moves");
	}
}

TEST_HARNESS_MAIN
