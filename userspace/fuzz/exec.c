// SPDX-License-Identifier: GPL-2.0
/*
 * exec - one worker process: its own device context, PD and loopback RC
 * QP pair (QP a posts, QP b responds and receives), its regions inside a
 * reserved arena, its MRs, and background threads that churn its memory
 * without changing a byte (MADV_PAGEOUT, move_pages() between NUMA nodes,
 * MADV_COLLAPSE). It runs the operations of the program that name it, in
 * order, each to completion, and asks the oracle after each.
 *
 * Every wait is bounded; a completion that does not come is a failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fuzz.h"
#include "model.h"
#include "verbs_util.h"

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE	25
#endif
#ifndef MPOL_MF_MOVE
#define MPOL_MF_MOVE	(1 << 1)
#endif

#define MAX_THREADS	4
#define MAX_KIDS	4
#define WAIT_MS		30000	/* bound of every completion wait, times
				 * RXE_ODP_TIME_SCALE (vu_time_scale()) */
#define ACC_REMOTE	(IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_WRITE | \
			 IBV_ACCESS_REMOTE_ATOMIC)

enum { SKIP = 1 };	/* an op that found nothing to act on */

struct worker {
	const struct program	*p;
	int			proc;
	struct fuzz_result	*res;
	struct model		m;
	struct vu_config	cfg;
	struct vu_ctx		v;
	struct vu_qp_pair	qp;
	bool			open;
	pthread_mutex_t		lock;
	pthread_t		thr[MAX_THREADS];
	int			nthr;
	volatile int		stop;
	uint64_t		wrid;
	long			cur;
	int			nnodes;
	bool			no_advise, no_poison, no_huge;
	pid_t			kids[MAX_KIDS];
	int			nkids;
	char			buf[FUZZ_MSG_LEN];
};

static struct worker *cur_w;
static volatile sig_atomic_t in_poison, poison_bus;

static int fail(struct worker *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int fail(struct worker *w, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (w->res->failed)
		return -1;
	n = snprintf(w->res->msg, sizeof(w->res->msg), "p%d op %ld %s: ",
		     w->proc, w->cur, w->cur >= 0 ?
		     op_name(w->p->ops[w->cur].kind) : "setup");
	va_start(ap, fmt);
	vsnprintf(w->res->msg + n, sizeof(w->res->msg) - n, fmt, ap);
	va_end(ap);
	w->res->op = w->cur;
	w->res->failed = 1;
	return -1;
}

static void on_fatal(int sig, siginfo_t *si, void *uc)
{
	struct worker *w = cur_w;

	(void)uc;
	if (sig == SIGBUS && in_poison) {
		poison_bus++;	/* MADV_HWPOISON's own SIGBUS */
		return;
	}
	if (w && !w->res->failed) {
		snprintf(w->res->msg, sizeof(w->res->msg),
			 "p%d op %ld: signal %d at %p (the CPU touched memory the model says it may)",
			 w->proc, w->cur, sig, si->si_addr);
		w->res->op = w->cur;
		w->res->failed = 1;
	}
	_exit(1);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void nap_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

	nanosleep(&ts, NULL);
}

/* ---- memory ---------------------------------------------------------- */

static size_t gran(const struct region *r)
{
	return r->kind == R_HUGE ? HPG : PG;
}

static struct region *pick_region(struct worker *w, uint32_t x)
{
	int n = 0, i;

	for (i = 0; i < MAX_REGIONS; i++)
		n += w->m.reg[i].used;
	if (!n)
		return NULL;
	x %= n;
	for (i = 0; i < MAX_REGIONS; i++)
		if (w->m.reg[i].used && !x--)
			return &w->m.reg[i];
	return NULL;
}

/* A granule-aligned page range [*off, *off + *len) of @r from @x, @y. */
static void pick_pages(struct region *r, uint32_t x, uint32_t y,
		       size_t *off, size_t *len)
{
	size_t g = gran(r), n = r->size / g, s = x % n;
	size_t l = 1 + y % (n - s < 16 ? n - s : 16);

	*off = s * g;
	*len = l * g;
}

/* Shrink [*off, *off + *len) to the run of mapped pages at its start. */
static bool mapped_run(struct region *r, size_t *off, size_t *len)
{
	size_t p = *off / PG, e = (*off + *len) / PG, q;

	if (r->prot[p] == PG_ABSENT)
		return false;
	for (q = p; q < e && r->prot[q] != PG_ABSENT; q++)
		;
	*len = (q - p) * PG;
	if (*len % gran(r))
		*len -= *len % gran(r);
	return *len > 0;
}

static void fill_region(struct region *r, size_t off, size_t len,
			uint64_t seed, bool zero)
{
	struct prng g;
	size_t i;

	if (zero) {
		/* never touched: the device faults it in as zeros */
		model_set(r, off, len, 0);
		return;
	}
	prng_seed(&g, seed);
	for (i = 0; i < len; i += 8) {
		uint64_t x = prng_next(&g);

		memcpy(r->val + off + i, &x, len - i < 8 ? len - i : 8);
	}
	memcpy(r->addr + off, r->val + off, len);
	memset(r->st + off, B_DEF, len);
}

/* Make every place of the arena that holds nothing PROT_NONE again, so
 * that libibverbs' own mmaps cannot land where our MRs point. */
static void plug_holes(struct worker *w)
{
	size_t s, e, p;
	int i, h;

	for (i = 0; i < MAX_REGIONS; i++) {
		struct region *r = &w->m.reg[i];

		for (h = 0; h < 2; h++) {
			uint8_t *base = slot_addr(&w->m, i, h);

			if (!r->used || r->half != h) {
				mmap(base, SLOT_HALF, PROT_NONE, MAP_PRIVATE |
				     MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE,
				     -1, 0);
				continue;
			}
			mmap(base + r->size, SLOT_HALF - r->size, PROT_NONE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED |
			     MAP_NORESERVE, -1, 0);
			for (p = 0; p < r->size / PG; p = e) {
				for (s = p; s < r->size / PG &&
				     r->prot[s] != PG_ABSENT; s++)
					;
				for (e = s; e < r->size / PG &&
				     r->prot[e] == PG_ABSENT; e++)
					;
				if (e > s)
					mmap(r->addr + s * PG, (e - s) * PG,
					     PROT_NONE, MAP_PRIVATE |
					     MAP_ANONYMOUS | MAP_FIXED |
					     MAP_NORESERVE, -1, 0);
			}
		}
	}
}

static int op_map(struct worker *w, const struct op *o)
{
	struct region *r = NULL;
	int i, slot = -1, kind;
	size_t size;
	int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
	uint8_t *a;

	for (i = 0; i < MAX_REGIONS; i++) {
		int s = (int)((o->a[0] + i) % MAX_REGIONS);

		if (!w->m.reg[s].used) {
			slot = s;
			break;
		}
	}
	if (slot < 0)
		return SKIP;
	r = &w->m.reg[slot];
	kind = o->a[1] % 10 < 6 ? R_ANON : o->a[1] % 10 < 8 ? R_THP : R_HUGE;
	if (kind == R_ANON)
		size = PG * (1 + o->a[2] % (o->a[3] % 8 ? 64 : 1024));
	else
		size = HPG * (1 + o->a[2] % 2);
	if (kind == R_HUGE) {
		if (w->no_huge)
			return SKIP;
		flags |= MAP_HUGETLB;
	}
	a = slot_addr(&w->m, slot, 0);
	if (mmap(a, size, PROT_READ | PROT_WRITE, flags, -1, 0) == MAP_FAILED) {
		if (kind == R_HUGE) {
			/* no huge pages to be had: skip the kind cleanly */
			mmap(a, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS |
			     MAP_FIXED | MAP_NORESERVE, -1, 0);
			return SKIP;
		}
		return fail(w, "mmap %zu bytes: %s", size, strerror(errno));
	}
	if (kind == R_THP)
		madvise(a, size, MADV_HUGEPAGE);
	r->used = true;
	r->kind = kind;
	r->half = 0;
	r->addr = a;
	r->size = size;
	memset(r->prot, PG_RW, sizeof(r->prot));
	memset(r->poison, 0, sizeof(r->poison));
	fill_region(r, 0, size, prng_mix(o->a[4], o->a[5]), o->a[4] % 4 == 0);
	return 0;
}

static int op_unmap(struct worker *w, const struct op *o, bool part)
{
	struct region *r = pick_region(w, o->a[0]);
	size_t off = 0, len;

	if (!r)
		return SKIP;
	len = r->size;
	if (part)
		pick_pages(r, o->a[1], o->a[2], &off, &len);
	model_detach(&w->m, (uintptr_t)r->addr + off, len);
	if (munmap(r->addr + off, len))
		return fail(w, "munmap: %s", strerror(errno));
	if (!part || len == r->size) {
		r->used = false;
		return 0;
	}
	memset(r->prot + off / PG, PG_ABSENT, len / PG);
	memset(r->poison + off / PG, 0, len / PG);
	return 0;
}

static int op_remap(struct worker *w, const struct op *o)
{
	struct region *r = pick_region(w, o->a[0]);
	size_t off, len;

	if (!r)
		return SKIP;
	pick_pages(r, o->a[1], o->a[2], &off, &len);
	model_detach(&w->m, (uintptr_t)r->addr + off, len);
	if (mmap(r->addr + off, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
		return fail(w, "mmap MAP_FIXED: %s", strerror(errno));
	if (r->kind == R_THP)
		madvise(r->addr + off, len, MADV_HUGEPAGE);
	memset(r->prot + off / PG, PG_RW, len / PG);
	memset(r->poison + off / PG, 0, len / PG);
	fill_region(r, off, len, prng_mix(o->a[3], o->a[4]), o->a[3] % 3 == 0);
	return 0;
}

static int op_mprotect(struct worker *w, const struct op *o)
{
	static const int prots[] = { PROT_READ, PROT_NONE,
				     PROT_READ | PROT_WRITE };
	static const uint8_t pg[] = { PG_RO, PG_NONE, PG_RW };
	struct region *r = pick_region(w, o->a[0]);
	unsigned int k = o->a[3] % 3;
	size_t off, len;

	if (!r)
		return SKIP;
	pick_pages(r, o->a[1], o->a[2], &off, &len);
	if (!mapped_run(r, &off, &len))
		return SKIP;
	if (mprotect(r->addr + off, len, prots[k]))
		return fail(w, "mprotect(+0x%zx, %zu): %s", off, len,
			    strerror(errno));
	memset(r->prot + off / PG, pg[k], len / PG);
	return 0;
}

static int op_madvise(struct worker *w, const struct op *o)
{
	struct region *r = pick_region(w, o->a[0]);
	unsigned int k = o->a[3] % 4;
	size_t off, len, i, p;
	uint8_t *a;

	if (!r)
		return SKIP;
	pick_pages(r, o->a[1], o->a[2], &off, &len);
	if (!mapped_run(r, &off, &len))
		return SKIP;
	a = r->addr + off;
	switch (k) {
	case 0:	/* DONTNEED: anonymous private memory reads zeros again */
		model_detach(&w->m, (uintptr_t)a, len);
		if (madvise(a, len, MADV_DONTNEED))
			return fail(w, "MADV_DONTNEED: %s", strerror(errno));
		model_set(r, off, len, 0);
		memset(r->poison + off / PG, 0, len / PG);
		return 0;
	case 1:	/* FREE: each page keeps its bytes or reads zeros */
		if (r->kind == R_HUGE ||
		    model_pinned_shares(&w->m, (uintptr_t)a, len))
			return SKIP;
		for (p = off / PG; p < (off + len) / PG; p++)
			if (r->prot[p] == PG_NONE || r->poison[p])
				return SKIP;
		if (oracle_check_range(&w->m, (uintptr_t)a, len, w->buf,
				       sizeof(w->buf)))
			return fail(w, "before MADV_FREE: %s", w->buf);
		if (madvise(a, len, MADV_FREE))
			return fail(w, "MADV_FREE: %s", strerror(errno));
		for (i = off; i < off + len; i++) {
			if (r->st[i] == B_DEF && r->val[i]) {
				r->st[i] = B_FREE;
				r->alt[i] = 0;
			}
		}
		return 0;
	case 2:
		madvise(a, len, MADV_PAGEOUT);
		return 0;
	default:
		madvise(a, len, MADV_HUGEPAGE);
		madvise(a, len, MADV_COLLAPSE);
		return 0;
	}
}

static int op_hwpoison(struct worker *w, const struct op *o)
{
	struct region *r = pick_region(w, o->a[0]);
	size_t p, off;
	uint8_t *a;
	int err;

	/* never a THP (a failed split would take more than the page) */
	if (!r || w->no_poison || r->kind != R_ANON || r->size >= HPG)
		return SKIP;
	p = o->a[1] % (r->size / PG);
	off = p * PG;
	a = r->addr + off;
	if (r->prot[p] != PG_RW || r->poison[p] ||
	    model_pinned_shares(&w->m, (uintptr_t)a, PG))
		return SKIP;
	if (oracle_check_range(&w->m, (uintptr_t)a, PG, w->buf, sizeof(w->buf)))
		return fail(w, "before MADV_HWPOISON: %s", w->buf);
	/* a private page of ours, never the zero page or a COW-shared one */
	*(volatile uint8_t *)a = r->val[off];
	r->st[off] = B_DEF;
	in_poison = 1;
	err = madvise(a, PG, MADV_HWPOISON) ? errno : 0;
	in_poison = 0;
	if (err == EINVAL || err == EPERM) {
		w->no_poison = true;
		return SKIP;
	}
	if (err)
		return fail(w, "MADV_HWPOISON: %s", strerror(err));
	r->poison[p] = 1;
	return 0;
}

static int op_mremap(struct worker *w, const struct op *o)
{
	struct region *r = pick_region(w, o->a[0]);
	uint8_t *to;
	size_t p;

	if (!r || r->kind == R_HUGE ||
	    model_pinned_shares(&w->m, (uintptr_t)r->addr, r->size))
		return SKIP;
	/* one VMA: one permission, no hole, no poison */
	for (p = 0; p < r->size / PG; p++)
		if (r->prot[p] != r->prot[0] || r->prot[p] == PG_ABSENT ||
		    r->poison[p])
			return SKIP;
	to = slot_addr(&w->m, (int)(r - w->m.reg), !r->half);
	if (mremap(r->addr, r->size, r->size, MREMAP_MAYMOVE | MREMAP_FIXED,
		   to) == MAP_FAILED)
		return SKIP;	/* e.g. VMAs not merged: nothing moved */
	r->addr = to;
	r->half = !r->half;
	return 0;
}

static void migrate(struct worker *w, struct region *r, size_t off,
		    size_t len, int node)
{
	void *pages[64];
	int nodes[64], status[64];
	size_t n = 0, i;

	if (w->nnodes < 2)
		return;
	for (i = off; i < off + len && n < 64; i += gran(r)) {
		pages[n] = r->addr + i;
		nodes[n] = node;
		n++;
	}
	syscall(SYS_move_pages, 0, n, pages, nodes, status, MPOL_MF_MOVE);
}

static int op_migrate(struct worker *w, const struct op *o)
{
	struct region *r = pick_region(w, o->a[0]);
	size_t off, len;

	if (!r || w->nnodes < 2)
		return SKIP;
	pick_pages(r, o->a[1], o->a[2], &off, &len);
	migrate(w, r, off, len, (int)(o->a[3] % 2));
	return 0;
}

/* ---- background threads --------------------------------------------- */

struct thr_arg {
	struct worker	*w;
	uint64_t	seed;
};

static struct thr_arg thr_args[MAX_THREADS];

static void *churn(void *arg)
{
	struct thr_arg *t = arg;
	struct worker *w = t->w;
	struct prng g;
	size_t off, len;

	prng_seed(&g, t->seed);
	while (!w->stop) {
		struct region *r;

		pthread_mutex_lock(&w->lock);
		r = pick_region(w, (uint32_t)prng_next(&g));
		if (r) {
			pick_pages(r, (uint32_t)prng_next(&g),
				   (uint32_t)prng_next(&g), &off, &len);
			switch (prng_below(&g, 3)) {
			case 0:
				if (r->kind != R_HUGE)
					madvise(r->addr + off, len,
						MADV_PAGEOUT);
				break;
			case 1:
				migrate(w, r, off, len,
					(int)prng_below(&g, 2));
				break;
			default:
				if (r->kind == R_THP)
					madvise(r->addr, r->size,
						MADV_COLLAPSE);
				break;
			}
		}
		pthread_mutex_unlock(&w->lock);
		nap_us(1000 + prng_below(&g, 4000));
	}
	return NULL;
}

/* ---- children --------------------------------------------------------- */

static int reap(struct worker *w, pid_t pid, int ms, const char *what)
{
	int64_t end = now_ms() + ms;
	int st;

	while (waitpid(pid, &st, WNOHANG) == 0) {
		if (now_ms() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			return fail(w, "%s (pid %d) did not exit in %d ms",
				    what, pid, ms);
		}
		nap_us(2000);
	}
	return 0;
}

static int reap_all(struct worker *w)
{
	int ret = 0, i;

	for (i = 0; i < w->nkids; i++)
		if (reap(w, w->kids[i], WAIT_MS, "fork child"))
			ret = -1;
	w->nkids = 0;
	return ret;
}

static int op_fork(struct worker *w, const struct op *o)
{
	struct prng g;
	pid_t pid;
	int i;

	if (w->nkids == MAX_KIDS && reap_all(w))
		return -1;
	pid = fork();
	if (pid < 0)
		return fail(w, "fork: %s", strerror(errno));
	if (pid) {
		w->kids[w->nkids++] = pid;
		return 0;
	}
	/* the child reads and writes its copy, then exits */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	prng_seed(&g, prng_mix(o->a[0], o->a[1]));
	for (i = 0; i < 32; i++) {
		struct region *r = pick_region(w, (uint32_t)prng_next(&g));
		size_t off, p;

		if (!r)
			break;
		off = prng_below(&g, (uint32_t)r->size);
		p = off / PG;
		if (r->poison[p])
			continue;
		if (r->prot[p] == PG_RW)
			r->addr[off] ^= 0xff;
		else if (r->prot[p] == PG_RO)
			(void)*(volatile uint8_t *)(r->addr + off);
	}
	nap_us(1000 * (o->a[2] % 50));
	_exit(0);
}

/* A child with its own context and traffic in flight, killed. */
static void kill_child_body(struct worker *w, const struct op *o, int fd)
{
	struct region *x = pick_region(w, o->a[0]);
	struct region *y = pick_region(w, o->a[1]);
	struct vu_ctx v = { 0 };
	struct vu_qp_pair qp = { 0 };
	struct ibv_mr *mx, *my;
	uint64_t id = 0;
	struct ibv_wc wc[16];
	int n = 0, i;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	plug_holes(w);
	if (!x || !y || vu_open(&v, &w->cfg) || vu_qp_pair_create(&v, &qp))
		goto out;
	mx = ibv_reg_mr(v.pd, x->addr, x->size, IBV_ACCESS_ON_DEMAND |
			IBV_ACCESS_LOCAL_WRITE | ACC_REMOTE);
	my = ibv_reg_mr(v.pd, y->addr, y->size, IBV_ACCESS_ON_DEMAND |
			IBV_ACCESS_LOCAL_WRITE | ACC_REMOTE);
	if (!mx || !my)
		goto out;
	for (;;) {
		for (; n < 32; n++) {
			uint32_t len = 1 + (uint32_t)(id * 7919 % x->size);
			uint32_t ylen = len < y->size ? len : (uint32_t)y->size;

			if (vu_post_send(&v, &qp.a, id % 2 ? IBV_WR_RDMA_WRITE :
					 IBV_WR_RDMA_READ, id, y->addr, ylen,
					 my->lkey, (uintptr_t)x->addr,
					 mx->rkey))
				break;
			id++;
		}
		if (id == 32 || (id > 32 && id < 40))
			(void)!write(fd, "x", 1);
		i = ibv_poll_cq(qp.a.cq, 16, wc);
		if (i > 0)
			n -= i;
		if (i < 0 || (i > 0 && wc[0].status != IBV_WC_SUCCESS)) {
			/* errors: the QP is gone; wait for the kill */
			(void)!write(fd, "x", 1);
			pause();
		}
	}
out:
	(void)!write(fd, "x", 1);
	pause();
	_exit(0);
}

static int op_kill_child(struct worker *w, const struct op *o)
{
	struct pollfd pfd;
	int fds[2], st;
	char c;
	pid_t pid;

	if (!pick_region(w, 0))
		return SKIP;
	if (pipe(fds))
		return fail(w, "pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		return fail(w, "fork: %s", strerror(errno));
	if (!pid) {
		close(fds[0]);
		kill_child_body(w, o, fds[1]);
	}
	close(fds[1]);
	pfd.fd = fds[0];
	pfd.events = POLLIN;
	st = poll(&pfd, 1, WAIT_MS);
	if (st == 1)
		(void)!read(fds[0], &c, 1);
	close(fds[0]);
	nap_us(1000 * (o->a[2] % 20));
	kill(pid, SIGKILL);
	if (reap(w, pid, WAIT_MS, "SIGKILLed child with traffic in flight"))
		return -1;
	if (st != 1)
		return fail(w, "child did not post its traffic in %d ms",
			    WAIT_MS);
	return 0;
}

/* ---- verbs ------------------------------------------------------------- */

static int nmrs(struct worker *w)
{
	int n = 0, i;

	for (i = 0; i < MAX_MRS; i++)
		n += w->m.mr[i].used;
	return n;
}

static struct mrent *pick_mr(struct worker *w, uint32_t x)
{
	int n = nmrs(w), i;

	if (!n)
		return NULL;
	x %= n;
	for (i = 0; i < MAX_MRS; i++)
		if (w->m.mr[i].used && !x--)
			return &w->m.mr[i];
	return NULL;
}

static struct mrent *free_mr(struct worker *w)
{
	int i;

	for (i = 0; i < MAX_MRS; i++)
		if (!w->m.mr[i].used)
			return &w->m.mr[i];
	return NULL;
}

static int op_reg(struct worker *w, const struct op *o, int kind)
{
	struct mrent *e = free_mr(w);
	struct region *r = NULL;
	unsigned int access = IBV_ACCESS_LOCAL_WRITE;
	size_t off = 0, len = SIZE_MAX, p;
	bool can = true;
	void *addr = NULL;

	if (!e || !w->open)
		return SKIP;
	if (kind != M_IMPLICIT) {
		r = pick_region(w, o->a[0]);
		if (!r)
			return SKIP;
		if (o->a[1] % 3) {
			off = o->a[2] % r->size;
			len = 1 + o->a[3] % (r->size - off);
		} else {
			len = r->size;
		}
		addr = r->addr + off;
	}
	access |= o->a[4] % 4 ? ACC_REMOTE : o->a[5] & ACC_REMOTE;
#ifdef RXE_FUZZ_WR_EXT
	if (o->a[6] % 2)
		access |= IBV_ACCESS_FLUSH_GLOBAL;
#endif
	if (kind != M_PINNED)
		access |= IBV_ACCESS_ON_DEMAND;
	e->mr = ibv_reg_mr(w->v.pd, addr, len, access);
	if (kind == M_PINNED) {
		for (p = off / PG; p <= (off + len - 1) / PG; p++)
			if (r->prot[p] != PG_RW || r->poison[p])
				can = false;
		if (e->mr && !can) {
			ibv_dereg_mr(e->mr);
			return fail(w, "pinned registration over a page that is not mapped read-write succeeded (+0x%zx, %zu)",
				    off, len);
		}
		if (!e->mr && can)
			return fail(w, "pinned registration of +0x%zx, %zu bytes: %s",
				    off, len, strerror(errno));
		if (!e->mr)
			return 0;
	} else if (!e->mr) {
		return fail(w, "%s ODP registration (+0x%zx, %zu): %s",
			    kind == M_IMPLICIT ? "implicit" : "explicit",
			    off, len, strerror(errno));
	}
	e->used = true;
	e->kind = kind;
	e->addr = (uintptr_t)addr;
	e->len = len;
	e->access = access;
	memset(e->kept, 0, sizeof(e->kept));
	return 0;
}

static int dereg(struct worker *w, struct mrent *e)
{
	int ret = ibv_dereg_mr(e->mr);

	model_mr_release(e);
	e->used = false;
	e->mr = NULL;
	if (ret)
		return fail(w, "ibv_dereg_mr: %s", strerror(ret));
	return 0;
}

static int op_dereg(struct worker *w, const struct op *o)
{
	struct mrent *e = pick_mr(w, o->a[0]);

	return e ? dereg(w, e) : SKIP;
}

/* Drain @q's CQ for @ms: stale completions of reset QPs. */
static void drain(struct vu_qp *q, int ms)
{
	int64_t end = now_ms() + ms;
	struct ibv_wc wc[16];

	while (now_ms() < end)
		if (ibv_poll_cq(q->cq, 16, wc) <= 0)
			nap_us(500);
}

/*
 * After an error completion: both QPs replaced by new ones (new QP
 * numbers), so that a response still in flight for the old ones finds no
 * QP. Brought through RESET to RTS instead, the same QPs start at PSN 0
 * again, where such a response is taken for the answer to the next
 * request: rxe fails that request with a bad response error (it completed
 * it as a success before patch 0014, which this fuzzer found so).
 *
 * It also ends the failed request's writes, and must come before the
 * bytes are checked: a requester that fails locally in the middle of a
 * WRITE or SEND (a source page it cannot read) completes the request with
 * its error at once, while the packets it sent before are still queued at
 * the responder, which writes them into the destination whenever it gets
 * to them (as a real responder would; it knows nothing of the failure),
 * tens of KiB after the completion at times. Checked before, those bytes
 * were settled to their old values and then changed under the shadow
 * (seed 20261257). ibv_destroy_qp() returns once rxe's responder task
 * has finished and the packets still queued are dropped: from then on,
 * each such byte holds its old or its new value for good.
 */
static int qp_replace(struct worker *w)
{
	vu_qp_pair_destroy(&w->v, &w->qp);
	memset(&w->qp, 0, sizeof(w->qp));
	/* the new queues must not be mapped where an MR points */
	plug_holes(w);
	if (vu_qp_pair_create(&w->v, &w->qp))
		return fail(w, "a new QP pair failed");
	return 0;
}

/* Both QPs to ERR, then RESET, INIT, RTR, RTS again. */
static int qp_recover(struct worker *w)
{
	struct ibv_qp_attr attr = { .qp_state = IBV_QPS_ERR };

	if (ibv_modify_qp(w->qp.a.qp, &attr, IBV_QP_STATE) ||
	    ibv_modify_qp(w->qp.b.qp, &attr, IBV_QP_STATE))
		return fail(w, "QP to ERR: %s", strerror(errno));
	drain(&w->qp.a, 5);
	drain(&w->qp.b, 5);
	if (vu_qp_connect(&w->v, w->qp.a.qp, w->qp.b.qp->qp_num) ||
	    vu_qp_connect(&w->v, w->qp.b.qp, w->qp.a.qp->qp_num))
		return fail(w, "QPs back to RTS failed");
	return 0;
}

/* Wait for the completion of @id on @q; older ones are stale. */
static int wait_wc(struct worker *w, struct vu_qp *q, uint64_t id,
		   struct ibv_wc *wc)
{
	int64_t end = now_ms() + WAIT_MS;
	int n;

	for (;;) {
		n = ibv_poll_cq(q->cq, 1, wc);
		if (n < 0)
			return fail(w, "ibv_poll_cq: %d", n);
		if (n == 1 && wc->wr_id == id) {
			if (q == &w->qp.a) {
				w->res->xfers++;
				w->res->errs += wc->status != IBV_WC_SUCCESS;
			}
			return 0;
		}
		if (n == 1)
			continue;
		if (now_ms() > end)
			return fail(w, "no completion of wr %llu in %d ms (hang)",
				    (unsigned long long)id, WAIT_MS);
		nap_us(200);
	}
}

static int op_qp_err(struct worker *w, const struct op *o)
{
	struct ibv_qp_attr attr = { .qp_state = IBV_QPS_ERR };

	if (!w->open)
		return SKIP;
	if (ibv_modify_qp(o->a[0] % 2 ? w->qp.a.qp : w->qp.b.qp, &attr,
			  IBV_QP_STATE))
		return fail(w, "QP to ERR: %s", strerror(errno));
	return qp_recover(w);
}

static int open_verbs(struct worker *w)
{
	int ret;

	plug_holes(w);
	ret = vu_open(&w->v, &w->cfg);
	if (ret)
		return ret;
	ret = vu_qp_pair_create(&w->v, &w->qp);
	if (ret) {
		vu_close(&w->v);
		return ret;
	}
	w->open = true;
	return 0;
}

static int close_verbs(struct worker *w)
{
	int ret = 0, i;

	if (!w->open)
		return 0;
	for (i = 0; i < MAX_MRS; i++)
		if (w->m.mr[i].used && dereg(w, &w->m.mr[i]))
			ret = -1;
	if (vu_qp_pair_destroy(&w->v, &w->qp))
		ret = fail(w, "destroying the QP pair failed");
	if (vu_close(&w->v))
		ret = fail(w, "closing the context failed");
	memset(&w->qp, 0, sizeof(w->qp));
	w->open = false;
	return ret;
}

static int op_ctx_close(struct worker *w, const struct op *o)
{
	struct mrent *e;
	int i;

	(void)o;
	if (!w->open)
		return SKIP;
	/* close with MRs still registered: the context takes them along */
	for (i = 0; i < MAX_MRS; i++) {
		e = &w->m.mr[i];
		model_mr_release(e);
		e->used = false;
		e->mr = NULL;
	}
	vu_qp_pair_destroy(&w->v, &w->qp);
	memset(&w->qp, 0, sizeof(w->qp));
	if (ibv_close_device(w->v.ctx))
		return fail(w, "ibv_close_device: %s", strerror(errno));
	memset(&w->v, 0, sizeof(w->v));
	w->open = false;
	if (open_verbs(w))
		return fail(w, "reopening the device failed");
	return 0;
}

/* A range of @len bytes (@align: 8-aligned) in one MR. */
static bool pick_seg(struct worker *w, struct prng *g, uint32_t len,
		     bool align, struct seg *s)
{
	struct mrent *e = pick_mr(w, (uint32_t)prng_next(g));
	uint64_t base, room, off;

	if (!e)
		return false;
	if (e->kind == M_IMPLICIT) {
		struct region *r = pick_region(w, (uint32_t)prng_next(g));

		if (!r)
			return false;
		base = (uintptr_t)r->addr;
		room = r->size;
		/* now and then across the region's end */
		if (prng_chance(g, 1, 16))
			room += PG;
	} else {
		base = e->addr;
		room = e->len;
	}
	if (len > room)
		len = (uint32_t)room;
	off = prng_below(g, (uint32_t)(room - len + 1));
	if (align) {
		off -= (base + off) % 8;
		if ((base + off) < base || base + off + len > base + room)
			return false;
	}
	s->m = e;
	s->addr = base + off;
	s->len = len;
	return len > 0;
}

static uint32_t xfer_len(struct prng *g)
{
	uint32_t bits = prng_below(g, 19);	/* up to 256 KiB */

	return 1 + prng_below(g, 1U << bits);
}

static const char *st_name(int st)
{
	return ibv_wc_status_str((enum ibv_wc_status)st);
}

static void describe(struct worker *w, char *b, size_t n,
		     const struct seg *s, int ns)
{
	static const char *const kn[] = { "odp", "implicit", "pinned" };
	size_t k = 0;
	int i;

	(void)w;
	for (i = 0; i < ns && k < n; i++)
		k += snprintf(b + k, n - k, "%s%s mr%d 0x%llx+%u",
			      i ? ", " : "", kn[s[i].m->kind],
			      (int)(s[i].m - w->m.mr),
			      (unsigned long long)s[i].addr, s[i].len);
}

static int check_segs(struct worker *w, const struct seg *s, int ns)
{
	int i;

	for (i = 0; i < ns; i++)
		if (oracle_check_range(&w->m, s[i].addr - PG, s[i].len + 2 * PG,
				       w->buf, sizeof(w->buf)))
			return -1;
	return 0;
}

static int op_xfer(struct worker *w, const struct op *o, int dir)
{
	struct seg local[MAX_SGE], remote[MAX_SGE], *src, *dst;
	struct ibv_sge sl[MAX_SGE], sr[MAX_SGE];
	struct ibv_send_wr wr = { 0 }, *bad;
	struct ibv_recv_wr rwr = { 0 }, *rbad;
	int nl = 1 + (int)(o->a[1] % MAX_SGE), nr = 1, i, want, ret;
	uint32_t len, total = 0;
	struct ibv_wc wc, rwc;
	struct expect x;
	struct prng g;
	char d1[256], d2[256];

	if (!w->open)
		return SKIP;
	prng_seed(&g, prng_mix(o->a[6], o->a[7]));
	len = xfer_len(&g);
	if (dir == X_SEND) {
		/* the receive's scatter list gets the pieces of len */
		nr = 1 + (int)(o->a[2] % MAX_SGE);
	}
	if (dir != X_SEND && !pick_seg(w, &g, len, false, &remote[0]))
		return SKIP;
	if (dir != X_SEND)
		len = remote[0].len;
	for (i = 0; i < nl; i++) {
		uint32_t piece = i == nl - 1 ? len - total :
				 prng_below(&g, len - total + 1);

		if (!piece || !pick_seg(w, &g, piece, false, &local[i])) {
			nl = i;
			break;
		}
		total += local[i].len;
	}
	if (!nl || !total)
		return SKIP;
	if (dir == X_SEND) {
		uint32_t got = 0;

		for (i = 0; i < nr; i++) {
			uint32_t piece = i == nr - 1 ? total - got :
					 prng_below(&g, total - got + 1);

			if (!piece || !pick_seg(w, &g, piece, false,
						&remote[i])) {
				nr = i;
				break;
			}
			got += remote[i].len;
		}
		/* the receive may be larger, never smaller */
		if (!nr || got < total)
			return SKIP;
	} else {
		remote[0].len = total;
	}
	src = dir == X_READ ? remote : local;
	dst = dir == X_READ ? local : remote;
	if (oracle_segs_overlap(&w->m, src, dir == X_READ ? nr : nl, dst,
				dir == X_READ ? nl : nr))
		return SKIP;
	oracle_xfer_expect(&w->m, src, dir == X_READ ? nr : nl, dst,
			   dir == X_READ ? nl : nr, dir, &x);
	/* SEND: dst may be longer than the message */
	if (dir == X_SEND && x.bad > total)
		x.bad = total;
	if (dir == X_SEND) {
		x.remote_bad = x.remote_bad && x.bad < total;
		x.local_bad = x.local_bad && x.bad < total;
	}

	for (i = 0; i < nl; i++) {
		sl[i].addr = local[i].addr;
		sl[i].length = local[i].len;
		sl[i].lkey = local[i].m->mr->lkey;
	}
	for (i = 0; i < nr; i++) {
		sr[i].addr = remote[i].addr;
		sr[i].length = remote[i].len;
		sr[i].lkey = remote[i].m->mr->lkey;
	}
	if (dir == X_SEND) {
		rwr.wr_id = ++w->wrid;
		rwr.sg_list = sr;
		rwr.num_sge = nr;
		ret = ibv_post_recv(w->qp.b.qp, &rwr, &rbad);
		if (ret)
			return fail(w, "ibv_post_recv: %s", strerror(ret));
	}
	wr.wr_id = ++w->wrid;
	wr.sg_list = sl;
	wr.num_sge = nl;
	wr.send_flags = IBV_SEND_SIGNALED;
	wr.opcode = dir == X_WRITE ? IBV_WR_RDMA_WRITE :
		    dir == X_READ ? IBV_WR_RDMA_READ : IBV_WR_SEND;
	if (dir != X_SEND) {
		wr.wr.rdma.remote_addr = remote[0].addr;
		wr.wr.rdma.rkey = remote[0].m->mr->rkey;
	}
	ret = ibv_post_send(w->qp.a.qp, &wr, &bad);
	if (ret)
		return fail(w, "ibv_post_send: %s", strerror(ret));
	if (wait_wc(w, &w->qp.a, wr.wr_id, &wc))
		return -1;

	describe(w, d1, sizeof(d1), local, nl);
	describe(w, d2, sizeof(d2), remote, nr);
	if (!x.local_bad && !x.remote_bad)
		want = IBV_WC_SUCCESS;
	else if (x.local_bad && x.remote_bad)
		want = -1;	/* any error: which is seen first is a race */
	else if (x.local_bad)
		want = IBV_WC_LOC_PROT_ERR;
	else
		want = dir == X_SEND ? IBV_WC_REM_OP_ERR :
		       IBV_WC_REM_ACCESS_ERR;
	if (want >= 0 ? (int)wc.status != want :
	    wc.status == IBV_WC_SUCCESS)
		return fail(w, "status %s, want %s; %u bytes, first refused byte %zu; local [%s] remote [%s]",
			    st_name(wc.status), want < 0 ? "an error" :
			    st_name(want), total, x.bad, d1, d2);
	if (dir == X_SEND && (want == IBV_WC_SUCCESS ||
			      want == IBV_WC_REM_OP_ERR)) {
		if (wait_wc(w, &w->qp.b, rwr.wr_id, &rwc))
			return -1;
		want = want == IBV_WC_SUCCESS ? IBV_WC_SUCCESS :
		       IBV_WC_LOC_PROT_ERR;
		if ((int)rwc.status != want ||
		    (want == IBV_WC_SUCCESS && rwc.byte_len != total))
			return fail(w, "receive status %s (%u bytes), want %s (%u); local [%s] receive [%s]",
				    st_name(rwc.status), rwc.byte_len,
				    st_name(want), total, d1, d2);
	}
	if (wc.status == IBV_WC_SUCCESS)
		oracle_xfer_apply(&w->m, src, dir == X_READ ? nr : nl, dst,
				  dir == X_READ ? nl : nr, total, total);
	else
		oracle_xfer_apply(&w->m, src, dir == X_READ ? nr : nl, dst,
				  dir == X_READ ? nl : nr, 0, x.bad);
	/* an error completion: the device may still write, see qp_replace() */
	if (wc.status != IBV_WC_SUCCESS && qp_replace(w))
		return -1;
	if (check_segs(w, local, nl) || check_segs(w, remote, nr))
		return fail(w, "after %s (%s), %u bytes, local [%s] remote [%s]: %s",
			    st_name(wc.status), dir == X_WRITE ? "WRITE" :
			    dir == X_READ ? "READ" : "SEND", total, d1, d2,
			    w->buf);
	return 0;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static int op_atomic(struct worker *w, const struct op *o, bool cas)
{
	struct seg l, r;
	struct chunk lc, rc;
	struct ibv_sge sge;
	struct ibv_send_wr wr = { 0 }, *bad;
	struct ibv_wc wc;
	uint64_t orig = 0, nv = 0, cmp, add;
	bool rok, lok, def = true;
	struct prng g;
	int want, i, ret;
	char d1[128], d2[128];

	if (!w->open)
		return SKIP;
	prng_seed(&g, prng_mix(o->a[6], o->a[7]));
	if (!pick_seg(w, &g, 8, true, &r) || r.len != 8 ||
	    !pick_seg(w, &g, 8, true, &l) || l.len != 8 ||
	    oracle_segs_overlap(&w->m, &r, 1, &l, 1))
		return SKIP;
	model_chunk(&w->m, r.m, r.addr, 8, &rc);
	model_chunk(&w->m, l.m, l.addr, 8, &lc);
	if (rc.n != 8 || lc.n != 8)
		return SKIP;
	rok = rc.can_write && (r.m->access & IBV_ACCESS_REMOTE_ATOMIC);
	lok = lc.can_write;
	for (i = 0; i < 8 && rc.st; i++)
		def = def && rc.st[i] == B_DEF;
	if (rc.st && def)
		orig = get64(rc.val);
	add = prng_next(&g);
	cmp = o->a[1] % 2 && def ? orig : prng_next(&g);
	nv = cas ? (orig == cmp ? add : orig) : orig + add;

	sge.addr = l.addr;
	sge.length = 8;
	sge.lkey = l.m->mr->lkey;
	wr.wr_id = ++w->wrid;
	wr.sg_list = &sge;
	wr.num_sge = 1;
	wr.send_flags = IBV_SEND_SIGNALED;
	wr.opcode = cas ? IBV_WR_ATOMIC_CMP_AND_SWP :
		    IBV_WR_ATOMIC_FETCH_AND_ADD;
	wr.wr.atomic.remote_addr = r.addr;
	wr.wr.atomic.rkey = r.m->mr->rkey;
	wr.wr.atomic.compare_add = cas ? cmp : add;
	wr.wr.atomic.swap = add;
	ret = ibv_post_send(w->qp.a.qp, &wr, &bad);
	if (ret)
		return fail(w, "ibv_post_send: %s", strerror(ret));
	if (wait_wc(w, &w->qp.a, wr.wr_id, &wc))
		return -1;
	describe(w, d1, sizeof(d1), &l, 1);
	describe(w, d2, sizeof(d2), &r, 1);
	want = rok && lok ? IBV_WC_SUCCESS : !rok && !lok ? -1 :
	       !rok ? IBV_WC_REM_ACCESS_ERR : IBV_WC_LOC_PROT_ERR;
	if (want >= 0 ? (int)wc.status != want :
	    wc.status == IBV_WC_SUCCESS)
		return fail(w, "status %s, want %s; local [%s] remote [%s]",
			    st_name(wc.status), want < 0 ? "an error" :
			    st_name(want), d1, d2);
	if (rok) {
		/* the responder did it, whether or not the reply landed */
		for (i = 0; i < 8; i++) {
			uint8_t b = (uint8_t)(nv >> (8 * i));

			if (!def) {
				rc.st[i] = B_ANY;
			} else if (lok) {
				rc.val[i] = b;
				rc.st[i] = B_DEF;
			} else if (rc.val[i] != b) {
				rc.alt[i] = b;
				rc.st[i] = B_TWO;
			}
			if (lok && lc.st) {
				lc.val[i] = (uint8_t)(orig >> (8 * i));
				lc.st[i] = def ? B_DEF : B_ANY;
			}
		}
	}
	if (wc.status != IBV_WC_SUCCESS && qp_replace(w))
		return -1;
	if (check_segs(w, &l, 1) || check_segs(w, &r, 1))
		return fail(w, "after %s: local [%s] remote [%s]: %s",
			    st_name(wc.status), d1, d2, w->buf);
	return 0;
}

#ifdef RXE_FUZZ_WR_EXT
/* QP a's extended send API, for what ibv_post_send() cannot post */
#define SEND_OPS	(IBV_QP_EX_WITH_SEND | IBV_QP_EX_WITH_RDMA_WRITE | \
			 IBV_QP_EX_WITH_RDMA_READ | \
			 IBV_QP_EX_WITH_ATOMIC_CMP_AND_SWP | \
			 IBV_QP_EX_WITH_ATOMIC_FETCH_AND_ADD | \
			 IBV_QP_EX_WITH_ATOMIC_WRITE | IBV_QP_EX_WITH_FLUSH)

/*
 * ATOMIC_WRITE of 8 bytes to an aligned remote target: it needs the MR's
 * REMOTE_WRITE right and a page the CPU may write now; then the 8 bytes
 * hold the value whether or not the acknowledgment came back in time.
 * There is no local side. A refusal changes nothing.
 */
static int op_atomic_write(struct worker *w, const struct op *o)
{
	struct ibv_qp_ex *qx;
	struct chunk rc;
	struct ibv_wc wc;
	struct prng g;
	struct seg r;
	uint64_t val;
	bool rok;
	char d[128];
	int want, ret, i;

	if (!w->open)
		return SKIP;
	prng_seed(&g, prng_mix(o->a[6], o->a[7]));
	if (!pick_seg(w, &g, 8, true, &r) || r.len != 8)
		return SKIP;
	model_chunk(&w->m, r.m, r.addr, 8, &rc);
	if (rc.n != 8)
		return SKIP;
	rok = rc.can_write && (r.m->access & IBV_ACCESS_REMOTE_WRITE);
	val = prng_next(&g);
	qx = ibv_qp_to_qp_ex(w->qp.a.qp);
	ibv_wr_start(qx);
	qx->wr_id = ++w->wrid;
	qx->wr_flags = IBV_SEND_SIGNALED;
	ibv_wr_atomic_write(qx, r.m->mr->rkey, r.addr, &val);
	ret = ibv_wr_complete(qx);
	if (ret)
		return fail(w, "ibv_wr_complete(ATOMIC_WRITE): %s",
			    strerror(ret));
	if (wait_wc(w, &w->qp.a, qx->wr_id, &wc))
		return -1;
	describe(w, d, sizeof(d), &r, 1);
	want = rok ? IBV_WC_SUCCESS : IBV_WC_REM_ACCESS_ERR;
	if ((int)wc.status != want)
		return fail(w, "status %s, want %s; remote [%s]",
			    st_name(wc.status), st_name(want), d);
	for (i = 0; rok && i < 8; i++) {
		rc.val[i] = (uint8_t)(val >> (8 * i));
		rc.st[i] = B_DEF;
	}
	if (wc.status != IBV_WC_SUCCESS && qp_replace(w))
		return -1;
	if (check_segs(w, &r, 1))
		return fail(w, "after %s: remote [%s]: %s",
			    st_name(wc.status), d, w->buf);
	return 0;
}

/*
 * FLUSH of a remote range (level RANGE) or of its whole MR (level MR):
 * rxe checks the MR's FLUSH right for the type asked for and, at the
 * range level, that the range lies in the MR, then makes what it wrote
 * visible (global) or persistent. An ODP MR offers no persistence, so a
 * persistent FLUSH is refused; a global one touches no page, whatever the
 * CPU maps. Now and then the range ends up to a page past an explicit
 * MR's end. No byte changes.
 */
static int op_flush(struct worker *w, const struct op *o)
{
	bool persistent = o->a[1] % 8 == 0, whole = o->a[2] % 2;
	struct ibv_qp_ex *qx;
	struct ibv_wc wc;
	struct prng g;
	struct seg r;
	bool ok;
	char d[128];
	int want, ret;

	if (!w->open)
		return SKIP;
	prng_seed(&g, prng_mix(o->a[6], o->a[7]));
	if (!pick_seg(w, &g, xfer_len(&g), false, &r))
		return SKIP;
	ok = !persistent && (r.m->access & IBV_ACCESS_FLUSH_GLOBAL);
	if (r.m->kind != M_IMPLICIT && o->a[3] % 8 == 0) {
		/* the MR's last bytes and up to a page past its end */
		r.addr = r.m->addr + r.m->len - r.len;
		r.len += 1 + o->a[4] % PG;
		ok = ok && whole;	/* the MR level checks no range */
	}
	qx = ibv_qp_to_qp_ex(w->qp.a.qp);
	ibv_wr_start(qx);
	qx->wr_id = ++w->wrid;
	qx->wr_flags = IBV_SEND_SIGNALED;
	ibv_wr_flush(qx, r.m->mr->rkey, r.addr, r.len,
		     persistent ? IBV_FLUSH_PERSISTENT : IBV_FLUSH_GLOBAL,
		     whole ? IBV_FLUSH_MR : IBV_FLUSH_RANGE);
	ret = ibv_wr_complete(qx);
	if (ret)
		return fail(w, "ibv_wr_complete(FLUSH): %s", strerror(ret));
	if (wait_wc(w, &w->qp.a, qx->wr_id, &wc))
		return -1;
	describe(w, d, sizeof(d), &r, 1);
	want = ok ? IBV_WC_SUCCESS : IBV_WC_REM_ACCESS_ERR;
	if ((int)wc.status != want)
		return fail(w, "%s FLUSH of %s: status %s, want %s; remote [%s]",
			    persistent ? "persistent" : "global",
			    whole ? "the MR" : "a range", st_name(wc.status),
			    st_name(want), d);
	if (wc.status != IBV_WC_SUCCESS && qp_replace(w))
		return -1;
	if (check_segs(w, &r, 1))
		return fail(w, "after FLUSH (%s): remote [%s]: %s",
			    st_name(wc.status), d, w->buf);
	return 0;
}
#else
static int op_atomic_write(struct worker *w, const struct op *o)
{
	(void)w;
	(void)o;
	return SKIP;	/* rdma-core 44 has no ibv_wr_atomic_write() */
}

static int op_flush(struct worker *w, const struct op *o)
{
	(void)w;
	(void)o;
	return SKIP;	/* nor ibv_wr_flush() */
}
#endif

static int op_advise(struct worker *w, const struct op *o)
{
	struct seg s;
	struct ibv_sge sge;
	struct chunk c;
	struct prng g;
	size_t done;
	bool good = true, wr = o->a[1] % 2;
	int ret;

	if (!w->open || w->no_advise)
		return SKIP;
	prng_seed(&g, prng_mix(o->a[6], o->a[7]));
	if (!pick_seg(w, &g, xfer_len(&g), false, &s) ||
	    s.m->kind == M_PINNED)
		return SKIP;
	for (done = 0; done < s.len; done += c.n) {
		model_chunk(&w->m, s.m, s.addr + done, s.len - done, &c);
		good = good && (wr ? c.can_write : c.can_read);
	}
	sge.addr = s.addr;
	sge.length = s.len;
	sge.lkey = s.m->mr->lkey;
	ret = ibv_advise_mr(w->v.pd, wr ? IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE :
			    IBV_ADVISE_MR_ADVICE_PREFETCH,
			    o->a[2] % 2 ? IBV_ADVISE_MR_FLAG_FLUSH : 0,
			    &sge, 1);
	if (ret == EOPNOTSUPP || ret == ENOSYS || ret == -EOPNOTSUPP) {
		w->no_advise = true;	/* rdma-core 44's rxe provider */
		return SKIP;
	}
	/*
	 * Transient, not a refusal: EBUSY (too many asynchronous prefetches
	 * in flight on the MR), EAGAIN (a synchronous one whose pages the
	 * churn threads kept invalidating for the kernel's fault timeout,
	 * HMM_RANGE_DEFAULT_TIMEOUT: seen on the debug kernel, seed
	 * 20261214). A prefetch changes no byte either way.
	 */
	if (ret && good && ret != EBUSY && ret != EAGAIN)
		return fail(w, "ibv_advise_mr(%s, %s) of a range the CPU maps: %s",
			    wr ? "PREFETCH_WRITE" : "PREFETCH",
			    o->a[2] % 2 ? "sync" : "async", strerror(ret));
	return 0;
}

static int run_op(struct worker *w, const struct op *o)
{
	int ret;

	switch (o->kind) {
	case OP_MAP:
	case OP_UNMAP:
	case OP_UNMAP_PART:
	case OP_REMAP:
	case OP_MPROTECT:
	case OP_MADVISE:
	case OP_HWPOISON:
	case OP_MREMAP:
	case OP_MIGRATE:
		pthread_mutex_lock(&w->lock);
		switch (o->kind) {
		case OP_MAP:
			ret = op_map(w, o);
			break;
		case OP_UNMAP:
			ret = op_unmap(w, o, false);
			break;
		case OP_UNMAP_PART:
			ret = op_unmap(w, o, true);
			break;
		case OP_REMAP:
			ret = op_remap(w, o);
			break;
		case OP_MPROTECT:
			ret = op_mprotect(w, o);
			break;
		case OP_MADVISE:
			ret = op_madvise(w, o);
			break;
		case OP_HWPOISON:
			ret = op_hwpoison(w, o);
			break;
		case OP_MREMAP:
			ret = op_mremap(w, o);
			break;
		default:
			ret = op_migrate(w, o);
			break;
		}
		pthread_mutex_unlock(&w->lock);
		return ret;
	case OP_FORK:
		return op_fork(w, o);
	case OP_KILL_CHILD:
		return op_kill_child(w, o);
	case OP_REG_ODP:
		return op_reg(w, o, M_ODP);
	case OP_REG_IMPLICIT:
		return op_reg(w, o, M_IMPLICIT);
	case OP_REG_PINNED:
		return op_reg(w, o, M_PINNED);
	case OP_DEREG:
		return op_dereg(w, o);
	case OP_WRITE:
		return op_xfer(w, o, X_WRITE);
	case OP_READ:
		return op_xfer(w, o, X_READ);
	case OP_SEND:
		return op_xfer(w, o, X_SEND);
	case OP_FETCH_ADD:
		return op_atomic(w, o, false);
	case OP_CMP_SWP:
		return op_atomic(w, o, true);
	case OP_ATOMIC_WRITE:
		return op_atomic_write(w, o);
	case OP_FLUSH:
		return op_flush(w, o);
	case OP_ADVISE:
		return op_advise(w, o);
	case OP_QP_ERR:
		return op_qp_err(w, o);
	case OP_CTX_CLOSE:
		return op_ctx_close(w, o);
	case OP_CHECK_ALL:
		/* RXE_FUZZ_SELFTEST: a fake bug, to watch the shrinker */
		if (getenv("RXE_FUZZ_SELFTEST") && pick_region(w, 1) &&
		    pick_region(w, 1) != pick_region(w, 0))
			return fail(w, "self-test: two regions at a check");
		if (oracle_check_all(&w->m, w->buf, sizeof(w->buf)))
			return fail(w, "%s", w->buf);
		return 0;
	}
	return SKIP;
}

static int count_nodes(void)
{
	return access("/sys/devices/system/node/node1", F_OK) ? 1 : 2;
}

/* RXE_ODP_DEV, else rxe0 if it exists, else the first device. */
static void pick_device(struct vu_config *cfg)
{
	static char name[64];
	struct ibv_device **l;
	int n, i;

	if (getenv("RXE_ODP_DEV"))
		return;
	l = ibv_get_device_list(&n);
	if (!l)
		return;
	for (i = 0; i < n; i++)
		if (!strcmp(ibv_get_device_name(l[i]), VU_DEFAULT_DEV))
			break;
	if (i == n && n > 0) {
		snprintf(name, sizeof(name), "%s", ibv_get_device_name(l[0]));
		cfg->dev_name = name;
	}
	ibv_free_device_list(l);
}

int exec_worker(const struct program *p, const bool *keep, int proc,
		struct fuzz_result *res)
{
	static struct worker wk;
	struct worker *w = &wk;
	struct sigaction sa = { .sa_sigaction = on_fatal,
				.sa_flags = SA_SIGINFO };
	size_t i;
	int ret, t;

	w->p = p;
	w->proc = proc;
	w->res = res;
	w->cur = -1;
	cur_w = w;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	pthread_mutex_init(&w->lock, NULL);
	w->nnodes = count_nodes();
	if (model_init(&w->m)) {
		snprintf(res->msg, sizeof(res->msg), "p%d: arena: %s", proc,
			 strerror(errno));
		res->setup = 1;
		return 2;
	}
	vu_config_init(&w->cfg);
	w->cfg.log_prefix = "rxe_fuzz: ";
	if (vu_config_from_env(&w->cfg)) {
		res->setup = 1;
		return 2;
	}
	pick_device(&w->cfg);
	w->cfg.max_sge = MAX_SGE;
	w->cfg.max_send_wr = 64;
	w->cfg.max_recv_wr = 64;
	w->cfg.cq_depth = 256;
	w->cfg.timeout_ms = WAIT_MS * (int)vu_time_scale();
#ifdef RXE_FUZZ_WR_EXT
	w->cfg.send_ops_flags = SEND_OPS;
	/*
	 * rxe's responder wants the QP's FLUSH rights too (else a FLUSH is
	 * an invalid request); the MR's decide then
	 */
	w->cfg.qp_access_extra = IBV_ACCESS_FLUSH_GLOBAL |
				 IBV_ACCESS_FLUSH_PERSISTENT;
#endif
	/* RXE_FUZZ_NO_VERBS: memory, oracle and shrinker only (no device) */
	ret = getenv("RXE_FUZZ_NO_VERBS") ? 0 : open_verbs(w);
	if (ret) {
		snprintf(res->msg, sizeof(res->msg),
			 "p%d: cannot open %s and connect a QP pair: %s",
			 proc, w->cfg.dev_name ? w->cfg.dev_name :
			 VU_DEFAULT_DEV, strerror(-ret));
		res->setup = 1;
		return 2;
	}
	w->nthr = p->nthreads < MAX_THREADS ? p->nthreads : MAX_THREADS;
	for (t = 0; t < w->nthr; t++) {
		thr_args[t].w = w;
		thr_args[t].seed = prng_mix(p->seed, (uint64_t)proc << 8 | t);
		if (pthread_create(&w->thr[t], NULL, churn, &thr_args[t])) {
			w->nthr = t;
			break;
		}
	}
	ret = 0;
	for (i = 0; i < p->nops && !ret; i++) {
		if ((keep && !keep[i]) || p->ops[i].proc != proc)
			continue;
		w->cur = (long)i;
		res->op = (long)i;
		ret = run_op(w, &p->ops[i]);
		res->skipped += ret == SKIP;
		ret = ret < 0;
		res->ops_run++;
	}
	w->stop = 1;
	for (t = 0; t < w->nthr; t++)
		pthread_join(w->thr[t], NULL);
	if (!ret) {
		w->cur = -1;
		if (oracle_check_all(&w->m, w->buf, sizeof(w->buf)))
			ret = fail(w, "at the end: %s", w->buf) < 0;
	}
	if (reap_all(w))
		ret = 1;
	if (close_verbs(w))
		ret = 1;
	return ret ? 1 : 0;
}

void exec_global_setup(bool verbose)
{
	const char *path = "/proc/sys/vm/nr_hugepages";
	long n = 0;
	FILE *f = fopen(path, "r");

	if (f) {
		if (fscanf(f, "%ld", &n) != 1)
			n = 0;
		fclose(f);
	}
	if (n >= 64)
		return;
	f = fopen(path, "w");
	if (f) {
		fprintf(f, "64\n");
		fclose(f);
	}
	if (verbose)
		fprintf(stderr, "rxe_fuzz: asked for 64 huge pages (%s)\n",
			path);
}
