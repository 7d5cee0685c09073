// SPDX-License-Identifier: GPL-2.0
/*
 * odp_memcg - ODP MRs inside a memory cgroup (issue 6): 1000 ODP MRs over
 * one 1 TiB MAP_NORESERVE mapping register inside memory.max=256M, their
 * kernel memory is charged to the cgroup, and filling the mapping beyond
 * the limit through the MRs ends in an error completion for the owner,
 * while a process outside the cgroup is not touched. An owner that the
 * cgroup's OOM killer ends during ODP traffic leaves no umem and no
 * translation behind (oom_kill_during_traffic, issue 12).
 *
 * The owner (a child moved into a fresh cgroup) registers the MRs, then
 * FETCH_ADDs through its own loopback QP pair into one new 2 MiB of the
 * mapping per operation (transparent huge pages, so each fault charges
 * 2 MiB) until a completion fails. So that the limit shows as that
 * failure rather than as a kill, the owner is unkillable by the OOM
 * killer and has its code and data locked in memory (mlockall() before
 * the big mapping): a process whose text the cgroup's reclaim took away
 * could not run on at the limit. The test process stays outside the
 * cgroup with a canary buffer.
 *
 * Needs root in the guest: it mounts cgroup2 at /sys/fs/cgroup when
 * nothing is there and enables the memory controller. Skips without a
 * memory controller or RC ODP atomics.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "verbs_util.h"
#include "test_util.h"

#define CG_ROOT		"/sys/fs/cgroup"
#define CG_LIMIT	(256UL << 20)
#define N_MRS		1000
#define TIB		(1UL << 40)
#define HUGE_SZ		(2UL << 20)
/*
 * FETCH_ADDs at most: 2 MiB each, four times the limit (slack for the odd
 * fault that gets no huge page and charges only 4 KiB)
 */
#define MAX_FILLS	(4 * CG_LIMIT / HUGE_SZ)
#define CANARY_SIZE	(16UL << 20)
/* translations_charged: 512 MiB of 4 KiB pages under a 1 GiB limit */
#define TRANS_SIZE	(512UL << 20)
#define TRANS_LIMIT	(1UL << 30)
#define ACC_ODP		(IBV_ACCESS_ON_DEMAND | IBV_ACCESS_LOCAL_WRITE | \
			 IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_ATOMIC)

/* What the owner tells the test, through a pipe. */
struct report {
	char		fail[160];	/* empty: no setup failure */
	int		mrs;		/* ODP MRs registered */
	long long	cur_before;	/* memory.current before them */
	long long	cur_after;	/* and after */
	int		fills_ok;	/* FETCH_ADDs that succeeded */
	int		first_err;	/* status of the first that failed */
	long long	cur_end;	/* memory.current after munmap */
	long		entries;	/* odp_mirror's live translations */
};

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, s, strlen(s));
	close(fd);
	return n == (ssize_t)strlen(s) ? 0 : -EIO;
}

FIXTURE(memcg) {
	char		dir[96];
	char		path[160];
	uint8_t		*canary;
};

/* @self->path = @self->dir/@file */
static const char *cg_file(FIXTURE_DATA(memcg) *self, const char *file)
{
	snprintf(self->path, sizeof(self->path), "%s/%s", self->dir, file);
	return self->path;
}

FIXTURE_SETUP(memcg)
{
	struct stat st;

	if (stat(CG_ROOT "/cgroup.controllers", &st) &&
	    mount("none", CG_ROOT, "cgroup2", 0, NULL))
		SKIP(return, "no cgroup2 at %s: %s", CG_ROOT, strerror(errno));
	if (write_str(CG_ROOT "/cgroup.subtree_control", "+memory"))
		SKIP(return, "no memory controller");
	snprintf(self->dir, sizeof(self->dir), CG_ROOT "/odp_memcg.%d",
		 getpid());
	ASSERT_EQ(0, mkdir(self->dir, 0755)) TH_LOG("mkdir %s: %s",
						    self->dir,
						    strerror(errno));
	ASSERT_EQ(0, tu_write_long(cg_file(self, "memory.max"), CG_LIMIT));
	/* no swap either way: what is charged stays charged */
	write_str(cg_file(self, "memory.swap.max"), "0");

	self->canary = mmap(NULL, CANARY_SIZE, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->canary);
	tu_fill(self->canary, CANARY_SIZE, 42);
}

FIXTURE_TEARDOWN(memcg)
{
	if (self->canary && self->canary != MAP_FAILED)
		munmap(self->canary, CANARY_SIZE);
	if (self->dir[0])
		rmdir(self->dir);
}

/* What an owner works with once it is in the cgroup. */
struct owner {
	struct vu_config	cfg;
	struct vu_ctx		v;
	struct vu_qp_pair	qps;
	struct ibv_mr		*lmr;	/* over @res */
	uint64_t		*res;	/* where FETCH_ADD results land */
	uint8_t			*buf;	/* the mapping the MRs are over */
};

/*
 * Move the calling process into the cgroup (unless @killable, unkillable
 * by the OOM killer), open the device with a loopback QP pair, lock what
 * is mapped so far into memory (unless @killable), then map @size bytes
 * (MAP_NORESERVE, after mlockall(), which must not populate them) into
 * o->buf with @advice. Returns NULL, or why it failed.
 */
static const char *owner_setup(FIXTURE_DATA(memcg) *self, struct owner *o,
			       size_t size, int advice, bool killable)
{
	char pid[16];

	snprintf(pid, sizeof(pid), "%d", getpid());
	if (write_str(cg_file(self, "cgroup.procs"), pid) ||
	    (!killable && write_str("/proc/self/oom_score_adj", "-1000")))
		return "cannot enter the cgroup";
	if (tu_open(&o->cfg, &o->v))
		return "cannot open the device";
	o->res = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (o->res == MAP_FAILED)
		return "mmap";
	o->lmr = vu_reg_mr(&o->v, o->res, 4096, IBV_ACCESS_LOCAL_WRITE);
	if (!o->lmr || vu_qp_pair_create(&o->v, &o->qps))
		return "local MR or QPs";
	/* everything mapped so far stays resident */
	if (!killable && mlockall(MCL_CURRENT))
		return "mlockall";
	o->buf = mmap(NULL, size, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (o->buf == MAP_FAILED)
		return "mmap";
	madvise(o->buf, size, advice);
	return NULL;
}

/* One FETCH_ADD of 1 at @raddr through @rkey; its completion status. */
static int owner_touch(struct owner *o, void *raddr, uint32_t rkey)
{
	return tu_atomic(&o->v, &o->qps.a, IBV_WR_ATOMIC_FETCH_AND_ADD,
			 o->res, o->lmr->lkey, (uintptr_t)raddr, rkey, 1, 0);
}

/* The owner: registers, fills, reports, cleans up. Never returns. */
static void __attribute__((noreturn))
owner(FIXTURE_DATA(memcg) *self, int out)
{
	static struct ibv_mr *mrs[N_MRS];
	struct report r = { .first_err = -2 };
	struct owner o = { 0 };
	const char *why;
	uint8_t *big;
	int i, st;

	why = owner_setup(self, &o, TIB, MADV_HUGEPAGE, false);
	if (why) {
		snprintf(r.fail, sizeof(r.fail), "%s", why);
		goto out;
	}
	big = o.buf;

	r.cur_before = tu_read_long(cg_file(self, "memory.current"));
	for (i = 0; i < N_MRS; i++) {
		mrs[i] = ibv_reg_mr(o.v.pd, big, TIB, ACC_ODP);
		if (!mrs[i]) {
			snprintf(r.fail, sizeof(r.fail),
				 "ODP MR %d of 1 TiB: %s", i, strerror(errno));
			goto out;
		}
		r.mrs++;
	}
	r.cur_after = tu_read_long(cg_file(self, "memory.current"));

	/* a new 2 MiB per FETCH_ADD, through MR i in turn */
	for (i = 0; i < (int)MAX_FILLS; i++) {
		st = owner_touch(&o, big + i * HUGE_SZ, mrs[i % N_MRS]->rkey);
		if (st != IBV_WC_SUCCESS) {
			r.first_err = st;
			break;
		}
		r.fills_ok++;
	}
	/* the owner handles the failure: it gives its memory back */
	munmap(big, TIB);
	r.cur_end = tu_read_long(cg_file(self, "memory.current"));
out:
	if (write(out, &r, sizeof(r)) != sizeof(r))
		_exit(3);
	/* exit tears the MRs, QPs and context down */
	_exit(0);
}

/*
 * Fork @fn as the owner and wait (bounded) for its report in *@r and for
 * its exit. Returns its wait status, or -1 when it did not report.
 */
static int run_owner(FIXTURE_DATA(memcg) *self,
		     void (*fn)(FIXTURE_DATA(memcg) *self, int out),
		     struct report *r)
{
	struct pollfd pfd;
	int p[2], status = -1;
	pid_t pid;

	if (pipe(p))
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid) {
		close(p[0]);
		fn(self, p[1]);
	}
	close(p[1]);
	pfd = (struct pollfd){ .fd = p[0], .events = POLLIN };
	if (poll(&pfd, 1, 300 * 1000) != 1 ||
	    read(p[0], r, sizeof(*r)) != (ssize_t)sizeof(*r)) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		close(p[0]);
		return -1;
	}
	close(p[0]);
	waitpid(pid, &status, 0);
	return status;
}

TEST_F_TIMEOUT(memcg, thousand_tib_mrs_and_fill_beyond_limit, 400)
{
	long long oom_global0, oom_global1, oom_cg;
	struct report r;
	int status;

	oom_global0 = kv_file_value("/proc/vmstat", "oom_kill");
	status = run_owner(self, owner, &r);
	ASSERT_NE(-1, status) TH_LOG("the owner did not report");

	ksft_print_msg("owner: %d MRs of 1 TiB, memory.current %lld -> %lld; %d x 2 MiB filled, then %s; after munmap %lld\n",
		       r.mrs, r.cur_before, r.cur_after, r.fills_ok,
		       r.first_err < 0 ? "no failure" :
		       ibv_wc_status_str((enum ibv_wc_status)r.first_err),
		       r.cur_end);
	ASSERT_STREQ("", r.fail);
	EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status))
		TH_LOG("owner status 0x%x", status);
	EXPECT_EQ(N_MRS, r.mrs);
	/* each MR's umem (a few hundred bytes) is charged to the cgroup */
	EXPECT_GE(r.cur_after - r.cur_before, (long long)N_MRS * 256);
	/* the limit ends the filling, with an error completion */
	EXPECT_LT(r.fills_ok, (int)MAX_FILLS);
	EXPECT_GE(r.fills_ok, (int)(CG_LIMIT / HUGE_SZ / 4));
	EXPECT_EQ(IBV_WC_REM_ACCESS_ERR, r.first_err);
	/* the filled memory and its translations went back to the cgroup */
	EXPECT_LT(r.cur_end, r.cur_after + (long long)(CG_LIMIT / 8));

	/* nothing outside the cgroup was touched */
	oom_cg = kv_file_value(cg_file(self, "memory.events"), "oom_kill");
	oom_global1 = kv_file_value("/proc/vmstat", "oom_kill");
	EXPECT_EQ(0, oom_cg);
	EXPECT_EQ(oom_global0, oom_global1);
	EXPECT_TRUE(tu_pattern_bytes("canary outside the cgroup",
				     self->canary, 42, CANARY_SIZE));
}

/*
 * The owner of translations_charged: 512 MiB of 4 KiB pages written by
 * the CPU (charged as they are), one explicit ODP MR over them, then one
 * FETCH_ADD per 2 MiB, each of whose faults records the 512 present
 * pages around it: the table's memory is allocated by rxe's worker.
 */
static void __attribute__((noreturn))
owner_translations(FIXTURE_DATA(memcg) *self, int out)
{
	struct report r = { .first_err = -2 };
	struct owner o = { 0 };
	struct ibv_mr *mr;
	const char *why;
	uint8_t *buf;
	size_t off;
	int st;

	why = owner_setup(self, &o, TRANS_SIZE, MADV_NOHUGEPAGE, false);
	if (why) {
		snprintf(r.fail, sizeof(r.fail), "%s", why);
		goto out;
	}
	buf = o.buf;
	memset(buf, 1, TRANS_SIZE);
	mr = ibv_reg_mr(o.v.pd, buf, TRANS_SIZE, ACC_ODP);
	if (!mr) {
		snprintf(r.fail, sizeof(r.fail), "ODP MR: %s", strerror(errno));
		goto out;
	}
	r.mrs = 1;
	r.cur_before = tu_read_long(cg_file(self, "memory.current"));
	for (off = 0; off < TRANS_SIZE; off += HUGE_SZ) {
		st = owner_touch(&o, buf + off, mr->rkey);
		if (st != IBV_WC_SUCCESS) {
			r.first_err = st;
			break;
		}
		r.fills_ok++;
	}
	r.cur_after = tu_read_long(cg_file(self, "memory.current"));
	r.entries = tu_live_count("entries");
out:
	if (write(out, &r, sizeof(r)) != sizeof(r))
		_exit(3);
	_exit(0);
}

/*
 * Translation memory is charged to the owner's cgroup although rxe's
 * worker, not the owner, allocates it (set_active_memcg() around the
 * table's allocations): about 10 bytes per 4 KiB page recorded, so
 * 131072 pages add well over 5 bytes each to memory.current.
 */
TEST_F_TIMEOUT(memcg, translations_charged_to_owner, 400)
{
	const long pages = TRANS_SIZE / 4096;
	struct report r;
	int status;

	ASSERT_EQ(0, tu_write_long(cg_file(self, "memory.max"), TRANS_LIMIT));
	status = run_owner(self, owner_translations, &r);
	ASSERT_NE(-1, status) TH_LOG("the owner did not report");
	ksft_print_msg("owner: %d x 2 MiB touched (%s), %ld entries, memory.current %lld -> %lld (%+lld bytes)\n",
		       r.fills_ok, r.first_err < 0 ? "all" :
		       ibv_wc_status_str((enum ibv_wc_status)r.first_err),
		       r.entries, r.cur_before, r.cur_after,
		       r.cur_after - r.cur_before);
	ASSERT_STREQ("", r.fail);
	EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status));
	EXPECT_EQ((int)(TRANS_SIZE / HUGE_SZ), r.fills_ok);
	EXPECT_GE(r.entries, pages);
	EXPECT_GE(r.cur_after - r.cur_before, (long long)pages * 5);
}

/* ---- the owner killed by the OOM killer during traffic ----------------- */

#define OOM_MR_SIZE	(64UL << 20)
#define OOM_LIMIT	(128UL << 20)

struct oom_traffic {
	struct owner	*o;
	struct ibv_mr	*mr;
};

/* FETCH_ADDs through the ODP MR, one new page after the other, forever. */
static void *oom_traffic(void *arg)
{
	struct oom_traffic *t = arg;
	size_t off = 0;

	for (;;) {
		owner_touch(t->o, t->o->buf + off, t->mr->rkey);
		off = (off + 4096) % OOM_MR_SIZE;
	}
	return NULL;
}

/*
 * The owner of oom_kill_during_traffic, killable: one thread FETCH_ADDs
 * through an ODP MR (its faults charge the cgroup), the other fills
 * memory with the CPU until the cgroup's OOM killer ends the process.
 * Writes one byte to @out once the traffic runs; exits only if the
 * killer never comes (status 3) or setup fails (status 2).
 */
static void __attribute__((noreturn))
owner_oom(FIXTURE_DATA(memcg) *self, int out)
{
	struct owner o = { 0 };
	struct oom_traffic tr = { .o = &o };
	pthread_t t;
	uint8_t *p;
	size_t n;

	if (owner_setup(self, &o, OOM_MR_SIZE, MADV_NOHUGEPAGE, true))
		_exit(2);
	tr.mr = ibv_reg_mr(o.v.pd, o.buf, OOM_MR_SIZE, ACC_ODP);
	if (!tr.mr || owner_touch(&o, o.buf, tr.mr->rkey) != IBV_WC_SUCCESS)
		_exit(2);
	if (pthread_create(&t, NULL, oom_traffic, &tr) ||
	    write(out, "r", 1) != 1)
		_exit(2);
	for (n = 0; n < 4 * OOM_LIMIT; n += 1UL << 20) {
		p = mmap(NULL, 1UL << 20, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p != MAP_FAILED)
			memset(p, 0x5a, 1UL << 20);
	}
	_exit(3);
}

/*
 * The owner of ODP MRs is OOM-killed while its QPs fault pages in
 * through them (reliability.md §8 #14, issue 12): it dies of SIGKILL,
 * the cgroup counts the kill, and every umem and translation it had is
 * gone once it is reaped; nothing outside the cgroup is touched.
 */
TEST_F_TIMEOUT(memcg, oom_kill_during_traffic, 400)
{
	long umems = tu_live_count("umems"), entries = tu_live_count("entries");
	struct pollfd pfd;
	int p[2], status = 0;
	pid_t pid;
	char c;

	ASSERT_EQ(0, tu_write_long(cg_file(self, "memory.max"), OOM_LIMIT));
	ASSERT_EQ(0, pipe(p));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		close(p[0]);
		owner_oom(self, p[1]);
	}
	close(p[1]);
	pfd = (struct pollfd){ .fd = p[0], .events = POLLIN };
	EXPECT_EQ(1, poll(&pfd, 1, 300 * 1000));
	EXPECT_EQ(1, read(p[0], &c, 1)) TH_LOG("the owner's traffic never ran");
	close(p[0]);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
		TH_LOG("owner status 0x%x: not OOM-killed", status);
	EXPECT_LE(1, kv_file_value(cg_file(self, "memory.events"),
				   "oom_kill"));
	/*
	 * Reaped is not yet released: a fault work the kill interrupted
	 * may still hold a umem for a moment (CI saw umems 1 at once).
	 */
	EXPECT_TRUE(tu_live_back("umems", umems, 10000))
		TH_LOG("umems %ld, want %ld, 10 s after the owner was reaped",
		       tu_live_count("umems"), umems);
	EXPECT_TRUE(tu_live_back("entries", entries, 10000))
		TH_LOG("entries %ld, want %ld, 10 s after the owner was reaped",
		       tu_live_count("entries"), entries);
	EXPECT_TRUE(tu_pattern_bytes("canary outside the cgroup",
				     self->canary, 42, CANARY_SIZE));
}

TEST_HARNESS_MAIN
