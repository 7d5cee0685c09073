// SPDX-License-Identifier: GPL-2.0
/*
 * odp_stall_65 - an ODP MR over memory whose backing does not answer
 * (reliability.md §8 #18; issue 10 item 4).
 *
 * The memory is a MAP_PRIVATE mapping of a file on a FUSE file system
 * whose daemon (a small raw /dev/fuse server forked by each case) holds
 * the first READ it gets until the test lets it go. A device fault of a
 * page not in the page cache then waits for the daemon for as long as it
 * wants; odp_mirror runs such faults (of memory a file system backs) on
 * its fault work, and the driver's worker waits for one a bounded time
 * (ODP_FAULT_WAIT) before it retries.
 *
 * Every case waits until the daemon holds the READ (the stall is real),
 * acts, and lets the daemon go only after the action has returned, so
 * a kernel that waited for the fault would never get there (the case
 * times out, and rxe's deregistration warns after 50 s):
 *  - write_lands_once_the_backing_answers: no completion while the
 *    daemon holds the READ; once it answers, the WRITE completes and the
 *    page holds the file's bytes with the WRITE's in place;
 *  - dereg_returns_while_the_backing_stalls: ibv_dereg_mr() of the MR
 *    under the stalled WRITE returns 0, and the WRITE ends with a remote
 *    access error, before the daemon answers;
 *  - dereg_returns_while_a_prefetch_stalls: the same under an
 *    asynchronous prefetch (ibv_advise_mr(), which rdma-core 44's rxe
 *    provider lacks: this test is built against the rdma-core 65 lane);
 *  - killed_while_the_backing_stalls: a process whose MR is under the
 *    stalled WRITE is SIGKILLed and exits before the daemon answers;
 *    its MR and QPs go once the fault lets its mm go.
 * After each, the live counts of odp_mirror return to zero (the debugfs
 * read waits for the fault works to end) and the guest's unload check
 * runs at the end of the suite.
 *
 * Mutation record: with the fault run in the driver's worker (before
 * odp_fault_work.c), the three last cases hang in dereg (50 s, then
 * rxe's "Timed out waiting" warning and a free under the fault) and in
 * the killed process's exit; they time out.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "verbs_util.h"
#include "test_util.h"

#define PAGES		4
#define FILE_SEED	9	/* the file's bytes: tu_pattern(offset, 9) */
#define ACC_ODP		(IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ | \
			 IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_ON_DEMAND)
#define FUSE_BUF	(FUSE_MIN_READ_BUFFER + (1 << 20))

/* ---- the daemon ------------------------------------------------------ */

struct daemon {
	int	fd;		/* /dev/fuse */
	int	held_w;		/* writes 'R' once it holds a READ */
	int	go_r;		/* it lets the READ go on a byte here */
	size_t	size;		/* of its one file, "data", inode 2 */
	bool	held;		/* it held a READ already */
};

static void fuse_reply(struct daemon *d, uint64_t unique, int error,
		       const void *data, size_t len)
{
	struct fuse_out_header h = {
		.len = sizeof(h) + (error ? 0 : len),
		.error = error,
		.unique = unique,
	};
	struct iovec iov[2] = {
		{ &h, sizeof(h) }, { (void *)data, error ? 0 : len },
	};

	/* the kernel drops replies to requests it no longer waits for */
	if (writev(d->fd, iov, 2) < 0 && errno != ENOENT)
		_exit(3);
}

static void fuse_attr_of(struct daemon *d, uint64_t ino, struct fuse_attr *a)
{
	memset(a, 0, sizeof(*a));
	a->ino = ino;
	a->mode = ino == FUSE_ROOT_ID ? S_IFDIR | 0755 : S_IFREG | 0644;
	a->nlink = ino == FUSE_ROOT_ID ? 2 : 1;
	a->size = ino == FUSE_ROOT_ID ? 0 : d->size;
	a->blocks = (a->size + 511) / 512;
	a->blksize = 4096;
}

static void fuse_read_reply(struct daemon *d, uint64_t unique,
			    const struct fuse_read_in *r, uint8_t *out)
{
	size_t n = 0, i;
	char c;

	if (!d->held) {
		/* the first READ: say so, and wait to be let go */
		d->held = true;
		if (write(d->held_w, "R", 1) != 1 ||
		    read(d->go_r, &c, 1) != 1)
			_exit(4);
	}
	if (r->offset < d->size)
		n = d->size - r->offset < r->size ? d->size - r->offset
						  : r->size;
	for (i = 0; i < n; i++)
		out[i] = tu_pattern(r->offset + i, FILE_SEED);
	fuse_reply(d, unique, 0, out, n);
}

/* Serve one file system until it is unmounted or aborted. */
static void fuse_serve(struct daemon *d)
{
	static uint8_t buf[FUSE_BUF], out[FUSE_BUF];
	struct fuse_in_header *in = (void *)buf;
	void *arg = in + 1;
	ssize_t n;

	for (;;) {
		n = read(d->fd, buf, sizeof(buf));
		if (n < 0 && (errno == EINTR || errno == ENOENT))
			continue;
		if (n < (ssize_t)sizeof(*in))
			return;		/* ENODEV: unmounted or aborted */
		switch (in->opcode) {
		case FUSE_INIT: {
			const struct fuse_init_in *ii = arg;
			struct fuse_init_out o = {
				.major = FUSE_KERNEL_VERSION,
				.minor = FUSE_KERNEL_MINOR_VERSION,
				.max_readahead = ii->max_readahead,
				.max_background = 16,
				.congestion_threshold = 12,
				.max_write = 4096,
				.time_gran = 1,
			};

			fuse_reply(d, in->unique, 0, &o, sizeof(o));
			break;
		}
		case FUSE_LOOKUP: {
			struct fuse_entry_out e = {
				.nodeid = 2,
				.entry_valid = 3600,
				.attr_valid = 3600,
			};

			if (in->nodeid != FUSE_ROOT_ID ||
			    strcmp(arg, "data")) {
				fuse_reply(d, in->unique, -ENOENT, NULL, 0);
				break;
			}
			fuse_attr_of(d, 2, &e.attr);
			fuse_reply(d, in->unique, 0, &e, sizeof(e));
			break;
		}
		case FUSE_GETATTR: {
			struct fuse_attr_out a = { .attr_valid = 3600 };

			fuse_attr_of(d, in->nodeid, &a.attr);
			fuse_reply(d, in->unique, 0, &a, sizeof(a));
			break;
		}
		case FUSE_OPEN: {
			struct fuse_open_out o = { .fh = 1 };

			fuse_reply(d, in->unique, 0, &o, sizeof(o));
			break;
		}
		case FUSE_READ:
			fuse_read_reply(d, in->unique, arg, out);
			break;
		case FUSE_FLUSH:
		case FUSE_RELEASE:
		case FUSE_DESTROY:
			fuse_reply(d, in->unique, 0, NULL, 0);
			break;
		case FUSE_FORGET:
		case FUSE_BATCH_FORGET:
		case FUSE_INTERRUPT:
			break;		/* no reply */
		default:
			fuse_reply(d, in->unique, -ENOSYS, NULL, 0);
			break;
		}
	}
}

/* ---- the cases ------------------------------------------------------- */

FIXTURE(stall) {
	char		dir[32];
	char		path[64];
	bool		mounted;
	pid_t		daemon;
	int		held_r;		/* the daemon's 'R' */
	int		go_w;		/* a byte here lets it go */
	size_t		psz;
	uint8_t		*map;		/* the file, MAP_PRIVATE */
	int		file;
	struct vu_config cfg;
	struct vu_ctx	v;
	bool		opened;
	/* a stalled WRITE (stall_a_write()): the MRs' owner derefs them */
	struct vu_qp_pair p;
	struct ibv_mr	*mr, *lmr;
	uint8_t		*local;
};

/* Open /dev/fuse, loading fuse.ko if the node is not there yet. */
static int open_dev_fuse(void)
{
	int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);

	if (fd < 0 && errno == ENOENT && !system("modprobe fuse"))
		fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	return fd;
}

FIXTURE_SETUP(stall)
{
	struct daemon d = { .size = PAGES * getpagesize() };
	int held[2], go[2];
	char opts[128];

	self->psz = getpagesize();
	self->file = -1;
	/* a write to a daemon that has gone is an error, not a signal */
	signal(SIGPIPE, SIG_IGN);
	ASSERT_EQ(0, pipe2(held, O_CLOEXEC));
	ASSERT_EQ(0, pipe2(go, O_CLOEXEC));
	d.fd = open_dev_fuse();
	ASSERT_LE(0, d.fd) TH_LOG("/dev/fuse: %s", strerror(errno));
	strcpy(self->dir, "/tmp/odp_stall.XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	snprintf(opts, sizeof(opts),
		 "fd=%d,rootmode=40000,user_id=0,group_id=0", d.fd);
	ASSERT_EQ(0, mount("odp_stall", self->dir, "fuse", MS_NOSUID | MS_NODEV,
			   opts)) TH_LOG("mount fuse: %s", strerror(errno));
	self->mounted = true;

	self->daemon = fork();
	ASSERT_LE(0, self->daemon);
	if (!self->daemon) {
		close(held[0]);
		close(go[1]);
		d.held_w = held[1];
		d.go_r = go[0];
		fuse_serve(&d);
		_exit(0);
	}
	close(d.fd);
	close(held[1]);
	close(go[0]);
	self->held_r = held[0];
	self->go_w = go[1];

	snprintf(self->path, sizeof(self->path), "%s/data", self->dir);
	self->file = open(self->path, O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, self->file) TH_LOG("%s: %s", self->path, strerror(errno));
	self->map = mmap(NULL, PAGES * self->psz, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE, self->file, 0);
	ASSERT_NE(MAP_FAILED, self->map);
}

FIXTURE_TEARDOWN(stall)
{
	/* let a held READ go, in case the case failed before it did */
	if (write(self->go_w, "G", 1) != 1)
		TH_LOG("the daemon is gone");
	vu_dereg_mr(&self->v, self->lmr);
	vu_dereg_mr(&self->v, self->mr);
	vu_qp_pair_destroy(&self->v, &self->p);
	free(self->local);
	if (self->opened)
		vu_close(&self->v);
	if (self->map && self->map != MAP_FAILED)
		munmap(self->map, PAGES * self->psz);
	if (self->file >= 0)
		close(self->file);
	if (self->mounted)
		umount2(self->dir, MNT_DETACH);
	if (self->daemon > 0) {
		kill(self->daemon, SIGKILL);
		waitpid(self->daemon, NULL, 0);
	}
	rmdir(self->dir);
	EXPECT_TRUE(tu_live_back("umems", 0, 10000));
	EXPECT_TRUE(tu_live_back("children", 0, 10000));
	EXPECT_TRUE(tu_live_back("entries", 0, 10000));
}

/* Wait until the daemon holds a READ: the device's fault is stalled. */
static bool daemon_holds_read(FIXTURE_DATA(stall) *self)
{
	char c;

	return read(self->held_r, &c, 1) == 1 && c == 'R';
}

static bool daemon_let_go(FIXTURE_DATA(stall) *self)
{
	return write(self->go_w, "G", 1) == 1;
}

/*
 * A QP pair whose requesters never give up: no retransmission timeout,
 * infinite RNR retries; a stalled responder is waited for, however long.
 */
static int patient_pair(struct vu_ctx *v, struct vu_qp_pair *p)
{
	return tu_qp_pair_create_timers(v, p, 7, 0);
}

/* Open the device, our rxe's; @self->v is closed by the teardown. */
static void open_verbs(struct __test_metadata *_metadata,
		       FIXTURE_DATA(stall) *self)
{
	struct ibv_device_attr_ex ax;

	TU_OPEN_QUERY(&self->cfg, &self->v, &ax);
	self->opened = true;
	TU_REQUIRE_CAP(ax.odp_caps.per_transport_caps.rc_odp_caps &
		       IBV_ODP_SUPPORT_WRITE, "RC WRITE to ODP MRs");
}

/* Post a WRITE of @len bytes of pattern 5 at @off of the mapping. */
static int post_write(struct vu_ctx *v, struct vu_qp_pair *p,
		      struct ibv_mr *lmr, struct ibv_mr *mr, size_t off,
		      uint32_t len)
{
	tu_fill(lmr->addr, len, 5);
	return vu_post_send(v, &p->a, IBV_WR_RDMA_WRITE, 1, lmr->addr, len,
			    lmr->lkey, (uintptr_t)mr->addr + off, mr->rkey);
}

/*
 * Open the device, an ODP MR over the mapping and a patient QP pair;
 * post a WRITE of 1000 bytes of pattern 5 at @off of the mapping and
 * wait until the daemon holds the READ that its fault needs.
 */
static void stall_a_write(struct __test_metadata *_metadata,
			  FIXTURE_DATA(stall) *self, size_t off)
{
	open_verbs(_metadata, self);
	ASSERT_EQ(0, patient_pair(&self->v, &self->p));
	self->local = malloc(self->psz);
	ASSERT_NE(NULL, self->local);
	self->mr = vu_reg_mr(&self->v, self->map, PAGES * self->psz, ACC_ODP);
	self->lmr = vu_reg_mr(&self->v, self->local, self->psz,
			      IBV_ACCESS_LOCAL_WRITE);
	ASSERT_NE(NULL, self->mr);
	ASSERT_NE(NULL, self->lmr);
	ASSERT_EQ(0, post_write(&self->v, &self->p, self->lmr, self->mr, off,
				1000));
	ASSERT_TRUE(daemon_holds_read(self));
}

TEST_F(stall, write_lands_once_the_backing_answers)
{
	uint8_t *want = malloc(self->psz);
	struct ibv_wc wc;
	size_t i;

	ASSERT_NE(NULL, want);
	stall_a_write(_metadata, self, self->psz + 100);
	ASSERT_EQ(0, ibv_poll_cq(self->p.a.cq, 1, &wc))
		TH_LOG("a WRITE completed while its page could not be read");
	ASSERT_TRUE(daemon_let_go(self));
	TU_ASSERT_OK(tu_reap(&self->v, &self->p.a));

	for (i = 0; i < self->psz; i++)
		want[i] = tu_pattern(self->psz + i, FILE_SEED);
	tu_fill(want + 100, 1000, 5);
	EXPECT_TRUE(tu_same_bytes("written page", self->map + self->psz, want,
				  self->psz));
	free(want);
}

TEST_F(stall, dereg_returns_while_the_backing_stalls)
{
	stall_a_write(_metadata, self, 0);
	ASSERT_EQ(0, vu_dereg_mr(&self->v, self->mr));
	self->mr = NULL;
	/* the responder gave the MR up: the WRITE failed, not hung */
	TU_ASSERT_WC(IBV_WC_REM_ACCESS_ERR, tu_reap(&self->v, &self->p.a));
	ASSERT_TRUE(daemon_let_go(self));
}

TEST_F(stall, dereg_returns_while_a_prefetch_stalls)
{
	struct ibv_sge sge;

	open_verbs(_metadata, self);
	self->mr = vu_reg_mr(&self->v, self->map, PAGES * self->psz, ACC_ODP);
	ASSERT_NE(NULL, self->mr);
	sge.addr = (uintptr_t)self->map;
	sge.length = PAGES * self->psz;
	sge.lkey = self->mr->lkey;
	ASSERT_EQ(0, ibv_advise_mr(self->v.pd,
				   IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE, 0,
				   &sge, 1));
	ASSERT_TRUE(daemon_holds_read(self));
	ASSERT_EQ(0, vu_dereg_mr(&self->v, self->mr));
	self->mr = NULL;
	ASSERT_TRUE(daemon_let_go(self));
}

/* Poll odp_mirror's live umems until they read 0, at most @ms ms. */
static bool live_umems_reach_zero(int ms)
{
	const struct timespec tick = { .tv_nsec = 10 * 1000 * 1000 };

	for (; ms > 0; ms -= 10) {
		if (!tu_live_count("umems"))
			return true;
		nanosleep(&tick, NULL);
	}
	return !tu_live_count("umems");
}

/*
 * The child: its own device context, MR over the mapping it inherited
 * and a patient QP pair; it posts the WRITE, says so, and waits to die.
 */
static void stalled_child(FIXTURE_DATA(stall) *self, int posted_w)
{
	uint8_t *local = malloc(self->psz);
	struct vu_qp_pair p;
	struct ibv_mr *mr, *lmr;
	struct vu_ctx v;

	/* its exit would close it, and wait for the daemon's FLUSH */
	close(self->file);
	if (vu_open(&v, &self->cfg) || patient_pair(&v, &p))
		_exit(5);
	mr = vu_reg_mr(&v, self->map, PAGES * self->psz, ACC_ODP);
	lmr = vu_reg_mr(&v, local, self->psz, IBV_ACCESS_LOCAL_WRITE);
	if (!mr || !lmr || post_write(&v, &p, lmr, mr, 0, 1000))
		_exit(6);
	if (write(posted_w, "P", 1) != 1)
		_exit(7);
	pause();
	_exit(8);
}

TEST_F(stall, killed_while_the_backing_stalls)
{
	int posted[2], status;
	pid_t child;
	char c;

	/* the child opens the device itself: no verbs state across fork */
	vu_config_init(&self->cfg);
	ASSERT_EQ(0, vu_config_from_env(&self->cfg));
	ASSERT_EQ(0, pipe2(posted, O_CLOEXEC));
	child = fork();
	ASSERT_LE(0, child);
	if (!child)
		stalled_child(self, posted[1]);
	close(posted[1]);
	ASSERT_EQ(1, read(posted[0], &c, 1)) TH_LOG("the child failed");
	close(posted[0]);
	ASSERT_TRUE(daemon_holds_read(self));
	ASSERT_EQ(0, kill(child, SIGKILL));
	ASSERT_EQ(child, waitpid(child, &status, 0));
	ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	ASSERT_TRUE(daemon_let_go(self));
	/*
	 * The child's verbs objects go with its mm, whose queue mappings
	 * hold its uverbs file: when the fault work lets the mm go
	 * (mmput_async()), then a delayed fput closes the file. Nothing
	 * tells us when that has run; poll the live count, bounded.
	 */
	ASSERT_TRUE(live_umems_reach_zero(tu_ms(20000)))
		TH_LOG("the killed child's MR is still there");
}

TEST_HARNESS_MAIN
