// SPDX-License-Identifier: GPL-2.0
/*
 * odp_memcg - ODP MRs inside a memory cgroup (issue 6): 1000 ODP MRs over
 * one 1 TiB MAP_NORESERVE mapping register inside memory.max=256M, their
 * kernel memory is charged to the cgroup, and filling the mapping beyond
 * the limit through the MRs ends in an error completion for the owner,
 * while a process outside the cgroup is not touched.
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
/* FETCH_ADDs at most: 2 MiB each, twice the limit */
#define MAX_FILLS	(2 * CG_LIMIT / HUGE_SZ)
#define CANARY_SIZE	(16UL << 20)
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

/* The owner: registers, fills, reports, cleans up. Never returns. */
static void __attribute__((noreturn))
owner(FIXTURE_DATA(memcg) *self, int out)
{
	static struct ibv_mr *mrs[N_MRS];
	struct report r = { .first_err = -2 };
	struct vu_config cfg;
	struct vu_qp_pair qps = { 0 };
	struct vu_ctx v;
	uint64_t *res;
	struct ibv_mr *lmr;
	char pid[16];
	uint8_t *big;
	int i, st;

	snprintf(pid, sizeof(pid), "%d", getpid());
	if (write_str(cg_file(self, "cgroup.procs"), pid) ||
	    write_str("/proc/self/oom_score_adj", "-1000")) {
		snprintf(r.fail, sizeof(r.fail), "cannot enter the cgroup");
		goto out;
	}
	if (tu_open(&cfg, &v)) {
		snprintf(r.fail, sizeof(r.fail), "cannot open the device");
		goto out;
	}
	res = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (res == MAP_FAILED) {
		snprintf(r.fail, sizeof(r.fail), "mmap: %s", strerror(errno));
		goto out;
	}
	lmr = vu_reg_mr(&v, res, 4096, IBV_ACCESS_LOCAL_WRITE);
	if (!lmr || vu_qp_pair_create(&v, &qps)) {
		snprintf(r.fail, sizeof(r.fail), "local MR or QPs");
		goto out;
	}
	/* everything but the big mapping (which comes later) stays resident */
	if (mlockall(MCL_CURRENT)) {
		snprintf(r.fail, sizeof(r.fail), "mlockall: %s",
			 strerror(errno));
		goto out;
	}
	big = mmap(NULL, TIB, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (big == MAP_FAILED) {
		snprintf(r.fail, sizeof(r.fail), "mmap: %s", strerror(errno));
		goto out;
	}
	madvise(big, TIB, MADV_HUGEPAGE);

	r.cur_before = tu_read_long(cg_file(self, "memory.current"));
	for (i = 0; i < N_MRS; i++) {
		mrs[i] = ibv_reg_mr(v.pd, big, TIB, ACC_ODP);
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
		st = tu_atomic(&v, &qps.a, IBV_WR_ATOMIC_FETCH_AND_ADD, res,
			       lmr->lkey, (uintptr_t)big + i * HUGE_SZ,
			       mrs[i % N_MRS]->rkey, 1, 0);
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

TEST_F_TIMEOUT(memcg, thousand_tib_mrs_and_fill_beyond_limit, 400)
{
	long long oom_global0, oom_global1, oom_cg;
	struct pollfd pfd;
	struct report r;
	int p[2], status;
	pid_t pid;

	oom_global0 = kv_file_value("/proc/vmstat", "oom_kill");
	ASSERT_EQ(0, pipe(p));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		close(p[0]);
		owner(self, p[1]);
	}
	close(p[1]);
	pfd = (struct pollfd){ .fd = p[0], .events = POLLIN };
	ASSERT_EQ(1, poll(&pfd, 1, 300 * 1000)) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	ASSERT_EQ((ssize_t)sizeof(r), read(p[0], &r, sizeof(r))) {
		waitpid(pid, NULL, 0);
	}
	close(p[0]);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));

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

TEST_HARNESS_MAIN
