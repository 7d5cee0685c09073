// SPDX-License-Identifier: GPL-2.0
/*
 * teardown - one cell of the ODP lifetime matrix (DESIGN.md invariants 2
 * and 3, issue 5 "Teardown matrix"), run ITERATIONS times in one process.
 *
 *   teardown --end {exit,kill,dereg,close,linkdel,rmmod}
 *            --load {idle,traffic,munmap,mprotect}
 *            [--fdpass] [--implicit] [-n ITERATIONS] [--seed N] [-v]
 *
 * Roles, per iteration:
 *   peer     this process: its own context, a pinned buffer and an RC QP
 *            connected to the owner's; it keeps a window of remote WRITE,
 *            READ and ATOMIC requests on the owner's ODP MR in flight
 *            across the end, and checks every completion: success before
 *            the end, only errors or flushes for what it posts after.
 *   owner    a child: registers a 16-page ODP MR (never touched by its
 *            CPU), a QP, and runs the load in a thread: MADV_DONTNEED of
 *            random ranges (traffic), MAP_FIXED replacement of random
 *            ranges then a real munmap of the whole MR at the end
 *            (munmap), mprotect R/O <-> R/W flips then PROT_NONE at the
 *            end (mprotect; the peer READs only).
 *   receiver (--fdpass) a child that maps a canary where the owner's MR
 *            is; the owner passes its context fd to it (SCM_RIGHTS) and
 *            exits; the peer's accesses to the MR must then NAK and the
 *            canary stay intact; the end then applies to the receiver.
 *
 * Ends: exit (the holder exits with everything registered), kill
 * (SIGKILL; iterations rotate between a plain kill, one racing an
 * ibv_dereg_mr and one racing the context close), dereg (ibv_dereg_mr during the load; afterwards a WRITE with
 * the old rkey must NAK and the owner's memory stay as it was), close
 * (the context fd closed with the MR and PD alive; the QP and CQ, whose
 * rings map the same file, are destroyed first), linkdel (`rdma link del
 * rxe0` blocks while users are left: rxe cannot disassociate; the holder
 * exits or is killed, the peer closes, the unregister completes; rxe0 is
 * re-created), rmmod (delete_module of rdma_rxe and odp_mirror refused,
 * EWOULDBLOCK, while a context is open; both succeed once none is, at
 * once after the last exit; both are loaded again from $RXE_ODP_BUILD and
 * rxe0 re-created).
 *
 * Ordering is by messages on socketpairs and by pidfd/waitpid; every wait
 * is bounded (a completion, a message, a child's exit, a module unload),
 * and a watchdog ends the whole run if an iteration exceeds its bound.
 *
 * Exit status: 0 all iterations passed, 1 a failure (reason on stderr, in
 * a line starting "FAIL"), 77 skipped (no implicit ODP on the device, and
 * RXE_ODP_EXPECT_ODP is not 1: with our rxe loaded a refused implicit MR
 * is a failure), 124 an iteration hung, 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/netlink.h>
#include <rdma/rdma_netlink.h>

#include "verbs_util.h"

extern char **environ;

#define MR_PAGES	16
#define WINDOW		8		/* requests in flight */
#define MAX_OP_LEN	8192
#define ITER_TIMEOUT_S	((int)(90 * vu_time_scale()))	/* watchdog per iteration */
#define STEP_MS		((int)(20000 * vu_time_scale()))	/* bound of one step */
#define CANARY_OWNER	0xa5
#define CANARY_RECV	0xc5
#define PEER_PATTERN	0x3c
/* where the owner maps its MR and the receiver its canary with --fdpass */
#define FDPASS_ADDR	((void *)0x100000000000UL)
#define LIVE_PATH	"/sys/kernel/debug/odp_mirror/live"
#define GID_PATH	"/sys/class/infiniband/rxe0/ports/1/gids/1"

enum end_kind { END_EXIT, END_KILL, END_DEREG, END_CLOSE, END_LINKDEL,
		END_RMMOD, END_N };
enum load_kind { LOAD_IDLE, LOAD_TRAFFIC, LOAD_MUNMAP, LOAD_MPROTECT,
		 LOAD_N };
static const char *const end_names[END_N] = {
	"exit", "kill", "dereg", "close", "linkdel", "rmmod" };
static const char *const load_names[LOAD_N] = {
	"idle", "traffic", "munmap", "mprotect" };

/* what a holder (owner or receiver) is told to do */
enum action { ACT_EXIT = 1, ACT_DEREG, ACT_CLOSE, ACT_HANDOFF };

enum msg_type {
	M_HELLO = 1,	/* owner -> peer: a=qpn b=rkey c=addr arg=len */
	M_PEER,		/* peer -> owner: a=qpn */
	M_READY,	/* child -> peer */
	M_FINAL,	/* peer -> owner: do the load's final step now */
	M_END,		/* peer -> holder: arg=enum action */
	M_END_DONE,	/* holder -> peer: a=return value of the action */
	M_CHECK,	/* peer -> holder: compare the canary */
	M_RESULT,	/* holder -> peer: a=bytes that differ */
	M_GOT_FD,	/* receiver -> peer */
	M_DIAG,		/* peer -> owner; owner -> peer: text (QP state) */
	M_SKIP,		/* owner -> peer: text */
	M_FAIL,		/* child -> peer: text */
};

struct msg {
	uint32_t	type;
	uint32_t	arg;
	uint64_t	a, b, c;
	char		text[160];
};

static struct {
	enum end_kind	end;
	enum load_kind	load;
	bool		fdpass;
	bool		implicit;
	int		iterations;
	unsigned int	seed;
	int		verbose;
} O = { .end = END_N, .load = LOAD_N, .iterations = 1 };

static struct vu_config cfg;
static size_t mr_len;

/* ---- small utilities ---------------------------------------------------- */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static unsigned int rnd(unsigned int n)
{
	return n ? (unsigned int)random() % n : 0;
}

static char fail_reason[512];

static void __attribute__((format(printf, 1, 2))) fail(const char *fmt, ...)
{
	va_list ap;

	if (fail_reason[0])
		return;		/* the first reason wins */
	va_start(ap, fmt);
	vsnprintf(fail_reason, sizeof(fail_reason), fmt, ap);
	va_end(ap);
}

static void __attribute__((format(printf, 1, 2))) vlog(const char *fmt, ...)
{
	va_list ap;

	if (!O.verbose)
		return;
	va_start(ap, fmt);
	fprintf(stderr, "# ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* ---- messages -------------------------------------------------------------- */

static int msg_send(int fd, uint32_t type, uint32_t arg, uint64_t a,
		    uint64_t b, uint64_t c)
{
	struct msg m = { .type = type, .arg = arg, .a = a, .b = b, .c = c };

	return send(fd, &m, sizeof(m), MSG_NOSIGNAL) == sizeof(m) ? 0 : -1;
}

static void __attribute__((format(printf, 3, 4)))
msg_send_text(int fd, uint32_t type, const char *fmt, ...)
{
	struct msg m = { .type = type };
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(m.text, sizeof(m.text), fmt, ap);
	va_end(ap);
	send(fd, &m, sizeof(m), MSG_NOSIGNAL);
}

/* 1: got one, 0: none yet, -1: the other end is gone */
static int msg_try(int fd, struct msg *m)
{
	ssize_t n = recv(fd, m, sizeof(*m), MSG_DONTWAIT);

	if (n == sizeof(*m))
		return 1;
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	return -1;
}

/* Wait up to @ms for a message; 1, 0 (timeout) or -1 (gone). */
static int msg_wait(int fd, struct msg *m, int ms)
{
	int64_t end = now_ms() + ms;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int r;

	for (;;) {
		r = msg_try(fd, m);
		if (r)
			return r;
		if (now_ms() >= end)
			return 0;
		poll(&pfd, 1, (int)(end - now_ms()));
	}
}

/* ---- QP set-up (both sides) ------------------------------------------- */

static struct ibv_qp *make_qp(struct vu_ctx *v, struct ibv_cq *cq)
{
	struct ibv_qp_init_attr attr = {
		.qp_type = IBV_QPT_RC,
		.send_cq = cq,
		.recv_cq = cq,
		.cap = { .max_send_wr = 64, .max_recv_wr = 4,
			 .max_send_sge = 1, .max_recv_sge = 1 },
	};

	return ibv_create_qp(v->pd, &attr);
}

/* ---- owner ------------------------------------------------------------------- */

static struct {
	uint8_t		*buf;
	atomic_int	stop;
	atomic_int	final;
} L;

static void *load_thread(void *arg)
{
	static const struct timespec pace = { .tv_nsec = 100000 };
	size_t page = getpagesize();
	unsigned int seed = (unsigned int)(uintptr_t)arg;

	(void)arg;
	while (!atomic_load(&L.stop)) {
		size_t first = rand_r(&seed) % MR_PAGES;
		size_t n = 1 + rand_r(&seed) % (MR_PAGES - first);
		uint8_t *p = L.buf + first * page;

		if (atomic_load(&L.final)) {
			/* the last step, racing the end */
			if (O.load == LOAD_MUNMAP)
				munmap(L.buf, mr_len);
			else if (O.load == LOAD_MPROTECT)
				mprotect(L.buf, mr_len, PROT_NONE);
			else
				madvise(L.buf, mr_len, MADV_DONTNEED);
			break;
		}
		switch (O.load) {
		case LOAD_TRAFFIC:
			madvise(p, n * page, MADV_DONTNEED);
			break;
		case LOAD_MUNMAP:
			/* unmap and map again under one mmap_lock: no hole */
			mmap(p, n * page, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
			break;
		case LOAD_MPROTECT:
			mprotect(p, n * page, rand_r(&seed) & 1 ?
				 PROT_READ : PROT_READ | PROT_WRITE);
			break;
		default:
			break;
		}
		nanosleep(&pace, NULL);
	}
	return NULL;
}

/* Stop the load, give the MR's range back a fresh R/W mapping, fill it. */
static void owner_canary(pthread_t *th)
{
	if (*th) {
		atomic_store(&L.stop, 1);
		pthread_join(*th, NULL);
		*th = 0;
	}
	mmap(L.buf, mr_len, PROT_READ | PROT_WRITE,
	     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	memset(L.buf, CANARY_OWNER, mr_len);
}

static size_t canary_diff(const uint8_t *p, uint8_t val)
{
	size_t i, n = 0;

	for (i = 0; i < mr_len; i++)
		n += p[i] != val;
	return n;
}

static void send_fd(int sock, int fd)
{
	char byte = 'F';
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = u.buf, .msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

	memset(&u, 0, sizeof(u));
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	sendmsg(sock, &mh, MSG_NOSIGNAL);
}

static int recv_fd(int sock, int ms)
{
	char byte;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = u.buf, .msg_controllen = sizeof(u.buf),
	};
	struct pollfd pfd = { .fd = sock, .events = POLLIN };
	struct cmsghdr *c;
	int fd;

	if (poll(&pfd, 1, ms) != 1 || recvmsg(sock, &mh, 0) != 1)
		return -1;
	c = CMSG_FIRSTHDR(&mh);
	if (!c || c->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

static void __attribute__((noreturn)) owner_main(int ctl, int fdsock)
{
	unsigned int access = IBV_ACCESS_ON_DEMAND | IBV_ACCESS_LOCAL_WRITE |
			      IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ |
			      IBV_ACCESS_REMOTE_ATOMIC;
	pthread_t th = 0;
	struct vu_ctx v;
	struct ibv_cq *cq;
	struct ibv_qp *qp;
	struct ibv_mr *mr;
	struct msg m;
	int ret;

	cfg.log_prefix = "# owner: ";
	if (vu_open(&v, &cfg)) {
		msg_send_text(ctl, M_FAIL, "owner: cannot open %s",
			      cfg.dev_name);
		_exit(1);
	}
	L.buf = mmap(O.fdpass ? FDPASS_ADDR : NULL, mr_len,
		     PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS |
		     (O.fdpass ? MAP_FIXED_NOREPLACE : 0), -1, 0);
	if (L.buf == MAP_FAILED) {
		msg_send_text(ctl, M_FAIL, "owner: mmap: %s", strerror(errno));
		_exit(1);
	}
	if (O.implicit) {
		struct ibv_device_attr_ex ax = { 0 };

		mr = ibv_reg_mr(v.pd, NULL, SIZE_MAX, access);
		if (!mr) {
			int err = errno;
			const char *expect = getenv("RXE_ODP_EXPECT_ODP");
			bool has = !ibv_query_device_ex(v.ctx, NULL, &ax) &&
				   (ax.odp_caps.general_caps &
				    IBV_ODP_SUPPORT_IMPLICIT);

			/* our rxe loaded (tests/vm/run-in-guest.sh): must work */
			if (expect && !strcmp(expect, "1"))
				has = true;
			msg_send_text(ctl, has ? M_FAIL : M_SKIP,
				      "implicit ODP MR refused: %s",
				      strerror(err));
			_exit(has ? 1 : 0);
		}
	} else {
		mr = ibv_reg_mr(v.pd, L.buf, mr_len, access);
		if (!mr) {
			msg_send_text(ctl, M_FAIL, "owner: ODP ibv_reg_mr: %s",
				      strerror(errno));
			_exit(1);
		}
	}
	cq = ibv_create_cq(v.ctx, 16, NULL, NULL, 0);
	qp = cq ? make_qp(&v, cq) : NULL;
	if (!qp) {
		msg_send_text(ctl, M_FAIL, "owner: QP: %s", strerror(errno));
		_exit(1);
	}
	msg_send(ctl, M_HELLO, (uint32_t)mr_len, qp->qp_num, mr->rkey,
		 (uintptr_t)L.buf);
	if (msg_wait(ctl, &m, STEP_MS) != 1 || m.type != M_PEER)
		_exit(3);
	ret = vu_qp_connect(&v, qp, (uint32_t)m.a);
	if (ret) {
		msg_send_text(ctl, M_FAIL, "owner: connect: %s",
			      strerror(-ret));
		_exit(1);
	}
	if (O.load != LOAD_IDLE &&
	    pthread_create(&th, NULL, load_thread,
			   (void *)(uintptr_t)random())) {
		msg_send_text(ctl, M_FAIL, "owner: pthread_create");
		_exit(1);
	}
	msg_send(ctl, M_READY, 0, 0, 0, 0);

	/* Everything else is the peer's to order; no message: peer gone. */
	for (;;) {
		if (msg_wait(ctl, &m, 3 * STEP_MS) != 1)
			_exit(3);
		switch (m.type) {
		case M_FINAL:
			atomic_store(&L.final, 1);
			break;
		case M_END:
			atomic_store(&L.final, 1);
			switch (m.arg) {
			case ACT_EXIT:
				exit(0);
			case ACT_HANDOFF:
				send_fd(fdsock, v.ctx->cmd_fd);
				exit(0);
			case ACT_DEREG:
				ret = ibv_dereg_mr(mr);
				owner_canary(&th);
				msg_send(ctl, M_END_DONE, 0, (uint64_t)ret, 0, 0);
				break;
			case ACT_CLOSE:
				/* the QP's and CQ's rings map the context's
				 * file: without them the close is the last
				 * reference, with the MR and PD still alive */
				ret = ibv_destroy_qp(qp);
				if (!ret)
					ret = ibv_destroy_cq(cq);
				if (!ret)
					ret = ibv_close_device(v.ctx);
				owner_canary(&th);
				msg_send(ctl, M_END_DONE, 0, (uint64_t)ret, 0, 0);
				break;
			}
			break;
		case M_CHECK:
			msg_send(ctl, M_RESULT, 0,
				 canary_diff(L.buf, CANARY_OWNER), 0, 0);
			break;
		case M_DIAG: {
			struct ibv_qp_attr qa;
			struct ibv_qp_init_attr qi;

			if (ibv_query_qp(qp, &qa, IBV_QP_STATE, &qi))
				msg_send_text(ctl, M_DIAG, "owner QP %u: query failed: %s",
					      qp->qp_num, strerror(errno));
			else
				msg_send_text(ctl, M_DIAG, "owner QP %u state %d, load %s",
					      qp->qp_num, qa.qp_state,
					      atomic_load(&L.stop) ? "stopped" : "running");
			break;
		}
		default:
			_exit(0);
		}
	}
}

/* ---- receiver (--fdpass) --------------------------------------------------- */

static void __attribute__((noreturn)) receiver_main(int ctl, int fdsock)
{
	uint8_t *canary;
	struct msg m;
	int fd;

	canary = mmap(FDPASS_ADDR, mr_len, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
		      -1, 0);
	if (canary != FDPASS_ADDR) {
		msg_send_text(ctl, M_FAIL, "receiver: mmap at %p: %s",
			      FDPASS_ADDR, strerror(errno));
		_exit(1);
	}
	memset(canary, CANARY_RECV, mr_len);
	msg_send(ctl, M_READY, 0, 0, 0, 0);
	fd = recv_fd(fdsock, STEP_MS);
	if (fd < 0) {
		msg_send_text(ctl, M_FAIL, "receiver: no fd received");
		_exit(1);
	}
	msg_send(ctl, M_GOT_FD, 0, 0, 0, 0);
	for (;;) {
		if (msg_wait(ctl, &m, 3 * STEP_MS) != 1)
			_exit(3);
		switch (m.type) {
		case M_CHECK:
			msg_send(ctl, M_RESULT, 0,
				 canary_diff(canary, CANARY_RECV), 0, 0);
			break;
		case M_END:
			if (m.arg == ACT_CLOSE) {
				msg_send(ctl, M_END_DONE, 0,
					 (uint64_t)close(fd), 0, 0);
				break;
			}
			exit(0);
		case M_FINAL:
			break;
		default:
			_exit(0);
		}
	}
}

/* ---- children, commands, modules ------------------------------------------ */

static pid_t owner_pid, recv_pid, spawn_pid;
static int owner_ctl = -1, recv_ctl = -1;
static const char *volatile step = "start";
static volatile int cur_iter;
static int64_t step_t0;

/* Name what the run waits for (the watchdog reports it); -vv times it. */
static void set_step(const char *what)
{
	int64_t t = now_ms();

	if (O.verbose > 1)
		fprintf(stderr, "#   %5" PRId64 " ms  %s\n", t - step_t0, step);
	step_t0 = t;
	step = what;
}

static void kill_children(void)
{
	if (owner_pid > 0)
		kill(owner_pid, SIGKILL);
	if (recv_pid > 0)
		kill(recv_pid, SIGKILL);
}

static void on_alarm(int sig)
{
	char buf[256];
	int n;

	(void)sig;
	n = snprintf(buf, sizeof(buf),
		     "FAIL iteration %d hung (> %d s) at step: %s\n",
		     cur_iter, ITER_TIMEOUT_S, step);
	n = write(2, buf, n);
	(void)n;
	kill_children();
	_exit(124);
}

/* Reap @pid if it has exited; 1 reaped (status in *st), 0 not yet. */
static int reap(pid_t *pid, int *st)
{
	pid_t r;

	if (*pid <= 0)
		return 1;
	r = waitpid(*pid, st, WNOHANG);
	if (r == 0)
		return 0;
	*pid = 0;
	return 1;
}

/* Wait (bounded) for @pid to exit; its wait status in *@st if given. */
static int reap_wait(pid_t *pid, int ms, const char *who, int *status)
{
	int64_t end = now_ms() + ms;
	static const struct timespec nap = { .tv_nsec = 1000000 };
	int st = 0, *stp = status ? status : &st;

	while (!reap(pid, stp)) {
		if (now_ms() >= end) {
			fail("%s did not exit within %d ms", who, ms);
			return -1;
		}
		nanosleep(&nap, NULL);
	}
	return 0;
}

static pid_t spawn(const char *const argv[])
{
	pid_t pid;
	int ret = posix_spawnp(&pid, argv[0], NULL, NULL,
			       (char *const *)argv, environ);

	if (ret) {
		fail("cannot run %s: %s", argv[0], strerror(ret));
		return -1;
	}
	return pid;
}

/* The state letter of /proc/PID/stat, or 0. */
static char proc_state(pid_t pid)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : 0;
}

static int live_counts(long *umems, long *per_mm, long *entries,
		       long *children)
{
	char key[64];
	long v;
	FILE *f = fopen(LIVE_PATH, "r");

	if (!f)
		return -1;
	*umems = *per_mm = *entries = *children = -1;
	while (fscanf(f, "%63s %ld", key, &v) == 2) {
		if (!strcmp(key, "umems"))
			*umems = v;
		else if (!strcmp(key, "per_mm"))
			*per_mm = v;
		else if (!strcmp(key, "entries"))
			*entries = v;
		else if (!strcmp(key, "children"))
			*children = v;
	}
	fclose(f);
	return 0;
}

static int check_live(const char *when)
{
	long umems, per_mm, entries, children;

	set_step("reading odp_mirror/live");
	if (live_counts(&umems, &per_mm, &entries, &children)) {
		fail("%s: cannot read %s", when, LIVE_PATH);
		return -1;
	}
	/* -1: the count is missing from the file, also a failure */
	if (umems || per_mm || entries || children) {
		fail("%s: leak: umems %ld, per_mm %ld, entries %ld, children %ld",
		     when, umems, per_mm, entries, children);
		return -1;
	}
	return 0;
}

static int delete_module(const char *name)
{
	return syscall(SYS_delete_module, name, O_NONBLOCK) ? -errno : 0;
}

static long unload_retried, unload_wait_max_ms;

/*
 * Unload @name once no user is left. The last user's context can outlive
 * its reaped process for a moment: when a responder fault holds the mm,
 * the final mmput (mmput_async) runs exit_mmap in a kworker, which drops
 * the mmapped queue's reference on the uverbs file through delayed_fput.
 * So retry EWOULDBLOCK for a bounded time, and count it.
 */
static int unload(const char *name)
{
	static const struct timespec nap = { .tv_nsec = 1000000 };
	int64_t t0 = now_ms(), waited;
	int ret, refusals = 0;

	while ((ret = delete_module(name)) == -EWOULDBLOCK &&
	       now_ms() - t0 < STEP_MS) {
		refusals++;
		nanosleep(&nap, NULL);
	}
	waited = now_ms() - t0;
	if (refusals) {
		unload_retried++;
		if (waited > unload_wait_max_ms)
			unload_wait_max_ms = waited;
		vlog("%s: refused %d times, unloaded after %" PRId64 " ms",
		     name, refusals, waited);
	}
	if (ret)
		fail("rmmod %s with no user left: %s (for %" PRId64 " ms)",
		     name, strerror(-ret), waited);
	return ret;
}

static int load_module(const char *rel)
{
	const char *dir = getenv("RXE_ODP_BUILD");
	char path[4096];
	int fd, ret;

	if (!dir) {
		fail("RXE_ODP_BUILD is not set: cannot load %s", rel);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fail("open %s: %s", path, strerror(errno));
		return -1;
	}
	ret = syscall(SYS_finit_module, fd, "", 0);
	if (ret)
		fail("finit_module %s: %s", path, strerror(errno));
	close(fd);
	return ret ? -1 : 0;
}

/* Wait until rxe0 exists with a RoCEv2 GID at index 1 and an active port. */
static int wait_rxe0(void)
{
	static const struct timespec nap = { .tv_nsec = 2000000 };
	int64_t end = now_ms() + STEP_MS;
	char buf[128];
	FILE *f;

	set_step("waiting for rxe0's GID");
	for (;;) {
		buf[0] = 0;
		f = fopen(GID_PATH, "r");
		if (f) {
			if (!fgets(buf, sizeof(buf), f))
				buf[0] = 0;
			fclose(f);
		}
		if (buf[0] && strncmp(buf, "0000:0000:0000:0000:0000:0000:0000:0000", 39))
			return 0;
		if (now_ms() >= end) {
			fail("rxe0 has no GID 1 within %d ms", STEP_MS);
			return -1;
		}
		nanosleep(&nap, NULL);
	}
}

static void nl_put_str(struct nlmsghdr *h, unsigned short type,
		       const char *str)
{
	struct nlattr *a = (struct nlattr *)((char *)h + NLMSG_ALIGN(h->nlmsg_len));
	size_t len = strlen(str) + 1;

	a->nla_type = type;
	a->nla_len = NLA_HDRLEN + len;
	memcpy((char *)a + NLA_HDRLEN, str, len);
	h->nlmsg_len = NLMSG_ALIGN(h->nlmsg_len) + NLA_ALIGN(a->nla_len);
}

/*
 * `rdma link add rxe0 type rxe netdev dummy0`, as one RDMA netlink
 * request (no exec: exec is slow in the guest). 0 or a negative errno.
 */
static int nl_link_add(void)
{
	union {
		struct nlmsghdr h;
		char buf[512];
	} req, ack;
	struct pollfd pfd = { .events = POLLIN };
	struct nlmsgerr *e;
	ssize_t n;
	int ret = -ETIMEDOUT;

	memset(&req, 0, sizeof(req));
	req.h.nlmsg_len = NLMSG_HDRLEN;
	req.h.nlmsg_type = RDMA_NL_GET_TYPE(RDMA_NL_NLDEV,
					    RDMA_NLDEV_CMD_NEWLINK);
	req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	req.h.nlmsg_seq = 1;
	nl_put_str(&req.h, RDMA_NLDEV_ATTR_DEV_NAME, "rxe0");
	nl_put_str(&req.h, RDMA_NLDEV_ATTR_NDEV_NAME, "dummy0");
	nl_put_str(&req.h, RDMA_NLDEV_ATTR_LINK_TYPE, "rxe");

	pfd.fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_RDMA);
	if (pfd.fd < 0)
		return -errno;
	if (send(pfd.fd, &req, req.h.nlmsg_len, 0) != (ssize_t)req.h.nlmsg_len) {
		ret = -errno;
		goto out;
	}
	while (poll(&pfd, 1, STEP_MS) == 1) {
		n = recv(pfd.fd, &ack, sizeof(ack), 0);
		if (n < (ssize_t)NLMSG_HDRLEN)
			break;
		if (ack.h.nlmsg_type != NLMSG_ERROR)
			continue;
		e = NLMSG_DATA(&ack.h);
		ret = e->error;
		break;
	}
out:
	close(pfd.fd);
	return ret;
}

static int link_add(void)
{
	int ret;

	set_step("rdma link add rxe0");
	ret = nl_link_add();
	if (ret) {
		fail("rdma link add rxe0 type rxe netdev dummy0: %s",
		     strerror(-ret));
		return -1;
	}
	return wait_rxe0();
}

static int reload_modules(void)
{
	set_step("loading odp_mirror and rdma_rxe");
	if (load_module("drivers/infiniband/core/odp_mirror.ko") ||
	    load_module("drivers/infiniband/sw/rxe/rdma_rxe.ko"))
		return -1;
	return link_add();
}

/* With TEARDOWN_TRACE=1, mark the run's steps in the ftrace buffer. */
static void __attribute__((format(printf, 1, 2))) mark(const char *fmt, ...)
{
	static int fd = -2;
	char buf[200];
	va_list ap;
	int n;

	if (fd == -2)
		fd = getenv("TEARDOWN_TRACE") ?
		     open("/sys/kernel/tracing/trace_marker", O_WRONLY | O_CLOEXEC) : -1;
	if (fd < 0)
		return;
	n = snprintf(buf, sizeof(buf), "teardown it %d: ", cur_iter);
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
	va_end(ap);
	if (write(fd, buf, n) < 0)
		fd = -1;
}

/* The first line of a small file, without its newline; "" if none. */
static void read_line(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "r");

	buf[0] = 0;
	if (f) {
		if (!fgets(buf, size, f))
			buf[0] = 0;
		fclose(f);
	}
	buf[strcspn(buf, "\n")] = 0;
}

/*
 * Kernel stacks of the threads that can explain a stall: ours (teardown
 * and its children) and any whose stack is in rxe, odp_mirror, hmm or the
 * mmu notifiers.
 */
static void dump_stacks(void)
{
	char path[600], comm[64], stack[4096];
	struct dirent *pe, *te;
	DIR *pd, *td;
	ssize_t n;
	int fd;

	pd = opendir("/proc");
	if (!pd)
		return;
	while ((pe = readdir(pd))) {
		if (pe->d_name[0] < '0' || pe->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/task", pe->d_name);
		td = opendir(path);
		if (!td)
			continue;
		while ((te = readdir(td))) {
			if (te->d_name[0] < '0' || te->d_name[0] > '9')
				continue;
			snprintf(path, sizeof(path), "/proc/%s/task/%s/comm",
				 pe->d_name, te->d_name);
			read_line(path, comm, sizeof(comm));
			snprintf(path, sizeof(path), "/proc/%s/task/%s/stack",
				 pe->d_name, te->d_name);
			fd = open(path, O_RDONLY);
			if (fd < 0)
				continue;
			n = read(fd, stack, sizeof(stack) - 1);
			close(fd);
			stack[n > 0 ? n : 0] = 0;
			if (strcmp(comm, "teardown") && !strstr(stack, "rxe") &&
			    !strstr(stack, "odp_") && !strstr(stack, "hmm_") &&
			    !strstr(stack, "mmu_notifier"))
				continue;
			fprintf(stderr, "DIAG --- task %s (%s)\n%s",
				te->d_name, comm, stack);
		}
		closedir(td);
	}
	closedir(pd);
}

static void diagnose(void);

/* ---- the peer ---------------------------------------------------------------- */

enum phase { PH_BEFORE, PH_DURING, PH_AFTER };

static struct {
	struct vu_ctx		v;
	bool			open;
	struct ibv_comp_channel	*ch;
	struct ibv_cq		*cq;
	struct ibv_qp		*qp;
	uint8_t			*lbuf;
	struct ibv_mr		*lmr;
	/* the owner's MR */
	uint64_t		raddr;
	uint32_t		rkey;
	/* traffic */
	bool			pumping;
	bool			dead;		/* a completion failed */
	enum phase		phase;
	int			outstanding;
	uint64_t		seq;
	long			done;		/* completions this iteration */
	long			status[32];	/* by ibv_wc_status, all run */
	long			late_nak;	/* access errors once the end began */
} P;

static int peer_open(void)
{
	set_step("opening the peer's context");
	cfg.log_prefix = "# peer: ";
	if (vu_open(&P.v, &cfg)) {
		fail("cannot open %s", cfg.dev_name);
		return -1;
	}
	P.lbuf = aligned_alloc(4096, MAX_OP_LEN + 4096);
	memset(P.lbuf, PEER_PATTERN, MAX_OP_LEN + 4096);
	P.lmr = ibv_reg_mr(P.v.pd, P.lbuf, MAX_OP_LEN + 4096,
			   IBV_ACCESS_LOCAL_WRITE);
	P.ch = P.lmr ? ibv_create_comp_channel(P.v.ctx) : NULL;
	if (!P.ch) {
		fail("peer: pinned MR / channel: %s", strerror(errno));
		return -1;
	}
	P.open = true;
	return 0;
}

static void peer_close(void)
{
	set_step("closing the peer's context");
	if (!P.open)
		return;
	ibv_dereg_mr(P.lmr);
	ibv_destroy_comp_channel(P.ch);
	vu_close(&P.v);
	free(P.lbuf);
	P.open = false;
}

static int peer_qp_create(void)
{
	set_step("creating the peer's QP");
	P.cq = ibv_create_cq(P.v.ctx, 128, NULL, P.ch, 0);
	P.qp = P.cq ? make_qp(&P.v, P.cq) : NULL;
	if (!P.qp || ibv_req_notify_cq(P.cq, 0)) {
		fail("peer: CQ/QP: %s", strerror(errno));
		return -1;
	}
	P.dead = P.pumping = false;
	P.phase = PH_BEFORE;
	P.outstanding = 0;
	P.done = 0;
	return 0;
}

static void peer_qp_destroy(void)
{
	set_step("destroying the peer's QP");
	if (P.qp)
		ibv_destroy_qp(P.qp);
	if (P.cq)
		ibv_destroy_cq(P.cq);
	P.qp = NULL;
	P.cq = NULL;
}

static int post_op(enum ibv_wr_opcode op)
{
	size_t page = getpagesize();
	struct ibv_sge sge = { .lkey = P.lmr->lkey };
	struct ibv_send_wr wr = {
		.wr_id = ((uint64_t)P.phase << 56) | P.seq++,
		.sg_list = &sge, .num_sge = 1, .opcode = op,
		.send_flags = IBV_SEND_SIGNALED,
	};
	struct ibv_send_wr *bad;
	uint64_t off;

	if (op == IBV_WR_ATOMIC_FETCH_AND_ADD ||
	    op == IBV_WR_ATOMIC_CMP_AND_SWP) {
		off = rnd(mr_len / 8) * 8;
		sge.addr = (uintptr_t)P.lbuf + MAX_OP_LEN + rnd(64) * 8;
		sge.length = 8;
		wr.wr.atomic.remote_addr = P.raddr + off;
		wr.wr.atomic.rkey = P.rkey;
		wr.wr.atomic.compare_add = 1;
		wr.wr.atomic.swap = 2;
	} else {
		sge.length = 1 + rnd(MAX_OP_LEN);
		off = rnd(mr_len - sge.length + 1);
		/* often start at a page boundary, often cross one */
		if (rnd(2))
			off = (off & ~(page - 1)) % (mr_len - sge.length + 1);
		sge.addr = (uintptr_t)P.lbuf + rnd(64);
		wr.wr.rdma.remote_addr = P.raddr + off;
		wr.wr.rdma.rkey = P.rkey;
	}
	if (ibv_post_send(P.qp, &wr, &bad)) {
		/* a QP in error may refuse; nothing is outstanding then */
		P.dead = true;
		return -1;
	}
	P.outstanding++;
	return 0;
}

static enum ibv_wr_opcode pick_op(void)
{
	static const enum ibv_wr_opcode ops[] = {
		IBV_WR_RDMA_WRITE, IBV_WR_RDMA_READ,
		IBV_WR_ATOMIC_FETCH_AND_ADD, IBV_WR_ATOMIC_CMP_AND_SWP };

	/* under the mprotect load the MR flips read-only: READ only */
	return O.load == LOAD_MPROTECT ? IBV_WR_RDMA_READ : ops[rnd(4)];
}

static void on_completion(const struct ibv_wc *wc)
{
	enum phase ph = wc->wr_id >> 56;

	P.outstanding--;
	P.done++;
	if (wc->status < 32)
		P.status[wc->status]++;
	if (wc->status == IBV_WC_SUCCESS) {
		if (ph == PH_AFTER)
		{
			mark("FAIL success after the end, wr %" PRIu64,
			     (uint64_t)(wc->wr_id & 0xffffffffffffffULL));
			fail("a request posted after the end succeeded (wr %" PRIu64 ", opcode %d): the MR was accessed after its teardown",
			     (uint64_t)(wc->wr_id & 0xffffffffffffffULL), wc->opcode);
		}
		return;
	}
	P.dead = true;
	if (P.phase == PH_BEFORE) {
		/* the end has not begun: the MR must serve everything */
		fail("%s before the end began (load %s): the ODP MR failed an access it must serve",
		     ibv_wc_status_str(wc->status), load_names[O.load]);
		return;
	}
	switch (wc->status) {
	case IBV_WC_REM_ACCESS_ERR:
	case IBV_WC_WR_FLUSH_ERR:
	case IBV_WC_RETRY_EXC_ERR:
		break;
	default:
		fail("unexpected completion %s (%d) for a request posted %s the end",
		     ibv_wc_status_str(wc->status), wc->status,
		     ph == PH_BEFORE ? "before" : ph == PH_DURING ?
		     "during" : "after");
		return;
	}
	if (wc->status == IBV_WC_REM_ACCESS_ERR)
		P.late_nak++;
}

/*
 * What a stalled wait leaves for the analysis, on stderr: both QPs'
 * states, rxe0's counters, and the kernel stacks that matter.
 */
static void diagnose(void)
{
	struct ibv_qp_attr qa;
	struct ibv_qp_init_attr qi;
	char path[400], val[64];
	struct dirent *de;
	struct msg m;
	DIR *d;

	if (P.qp && !ibv_query_qp(P.qp, &qa, IBV_QP_STATE, &qi))
		fprintf(stderr, "DIAG peer QP %u state %d, %d outstanding, %ld completions\n",
			P.qp->qp_num, qa.qp_state, P.outstanding, P.done);
	if (owner_pid > 0 && owner_ctl >= 0) {
		msg_send(owner_ctl, M_DIAG, 0, 0, 0, 0);
		while (msg_wait(owner_ctl, &m, 2000) == 1)
			if (m.type == M_DIAG) {
				fprintf(stderr, "DIAG %s\n", m.text);
				break;
			}
	}
	d = opendir("/sys/class/infiniband/rxe0/ports/1/hw_counters");
	if (d) {
		fprintf(stderr, "DIAG rxe0 counters:");
		while ((de = readdir(d))) {
			if (de->d_name[0] == '.' || !strcmp(de->d_name, "lifespan"))
				continue;
			snprintf(path, sizeof(path),
				 "/sys/class/infiniband/rxe0/ports/1/hw_counters/%s",
				 de->d_name);
			read_line(path, val, sizeof(val));
			if (strcmp(val, "0"))
				fprintf(stderr, " %s=%s", de->d_name, val);
		}
		fprintf(stderr, "\n");
		closedir(d);
	}
	dump_stacks();
	mark("DIAG dumped");
}

/*
 * Drive the peer's traffic until @until(@arg) holds, for at most @ms:
 * keep the window full while pumping, check every completion, wait on
 * the completion channel (and a short poll bound, for conditions that
 * have no fd). Returns 0, or -1 with fail() set.
 */
static int drive(bool (*until)(void *), void *arg, int ms, const char *what)
{
	int64_t end = now_ms() + ms;
	struct ibv_wc wc[16];
	struct pollfd pfd = { .fd = P.ch->fd, .events = POLLIN };
	struct ibv_cq *ev_cq;
	void *ev_ctx;
	int i, n;

	set_step(what);
	for (;;) {
		while (P.pumping && !P.dead && P.outstanding < WINDOW)
			if (post_op(pick_op()))
				break;
		do {
			n = ibv_poll_cq(P.cq, 16, wc);
			for (i = 0; i < n; i++)
				on_completion(&wc[i]);
		} while (n > 0);
		if (n < 0) {
			fail("ibv_poll_cq failed");
			return -1;
		}
		if (fail_reason[0])
			return -1;
		if (until(arg))
			return 0;
		if (now_ms() >= end) {
			fail("no progress within %d ms while %s (%d requests outstanding)",
			     ms, what, P.outstanding);
			diagnose();
			return -1;
		}
		if (poll(&pfd, 1, 2) == 1 &&
		    !ibv_get_cq_event(P.ch, &ev_cq, &ev_ctx)) {
			ibv_ack_cq_events(ev_cq, 1);
			ibv_req_notify_cq(ev_cq, 0);
		}
	}
}

/* conditions for drive() */
static bool until_done(void *arg)
{
	return P.done >= *(long *)arg || (P.dead && !P.outstanding);
}

static bool until_drained(void *arg)
{
	(void)arg;
	return !P.outstanding;
}

struct want_msg {
	int		fd;
	uint32_t	type;
	struct msg	m;
	bool		got;
};

static bool until_msg(void *arg)
{
	struct want_msg *w = arg;
	int r;

	if (w->got)
		return true;
	r = msg_try(w->fd, &w->m);
	if (r < 0) {
		fail("a child died while the peer waited for message %u",
		     w->type);
		return true;
	}
	if (r == 1 && w->m.type == M_FAIL) {
		fail("%s", w->m.text);
		return true;
	}
	if (r == 1 && w->m.type == w->type)
		w->got = true;
	return w->got;
}

static bool until_reaped(void *arg)
{
	int st;

	return reap((pid_t *)arg, &st);
}

static bool until_blocked(void *arg)
{
	pid_t pid = *(pid_t *)arg;
	int st;

	if (waitpid(pid, &st, WNOHANG) == pid) {
		*(pid_t *)arg = 0;
		fail("rdma link del rxe0 finished while contexts were still open (status %d)",
		     st);
		return true;
	}
	return proc_state(pid) == 'D';
}

/* Wait for a message of @type from @fd, driving traffic meanwhile. */
static int expect(int fd, uint32_t type, struct msg *out, const char *what)
{
	struct want_msg w = { .fd = fd, .type = type };

	if (drive(until_msg, &w, STEP_MS, what))
		return -1;
	if (out)
		*out = w.m;
	return 0;
}

/* ---- one iteration ------------------------------------------------------------- */

/*
 * The holder (owner, or the receiver after a hand-off) ends by @how, its
 * ends being told by message (or SIGKILL); for exit and kill this returns
 * once it has been reaped, for dereg and close once it has answered.
 */
static int end_holder(pid_t *pid, int ctl, int how, const char *who)
{
	struct msg m;

	if (how == END_KILL) {
		/* iterations rotate: a plain kill (racing the load's last
		 * step), a kill racing ibv_dereg_mr, one racing the close */
		switch (cur_iter % 3) {
		case 0:
			msg_send(ctl, M_FINAL, 0, 0, 0, 0);
			break;
		case 1:
			msg_send(ctl, M_END, ACT_DEREG, 0, 0, 0);
			break;
		default:
			msg_send(ctl, M_END, ACT_CLOSE, 0, 0, 0);
			break;
		}
		kill(*pid, SIGKILL);
		return drive(until_reaped, pid, STEP_MS, "waiting for the killed holder to be reaped");
	}
	if (how == END_EXIT) {
		msg_send(ctl, M_END, ACT_EXIT, 0, 0, 0);
		return drive(until_reaped, pid, STEP_MS, "waiting for the holder's exit");
	}
	msg_send(ctl, M_END, how == END_DEREG ? ACT_DEREG : ACT_CLOSE, 0, 0, 0);
	if (expect(ctl, M_END_DONE, &m, how == END_DEREG ?
		   "waiting for ibv_dereg_mr" : "waiting for the context close"))
		return -1;
	if (m.a) {
		fail("%s: %s returned %d", who,
		     how == END_DEREG ? "ibv_dereg_mr" : "close", (int)m.a);
		return -1;
	}
	return 0;
}

static int check_canary(int ctl, const char *who)
{
	struct msg m;

	msg_send(ctl, M_CHECK, 0, 0, 0, 0);
	if (msg_wait(ctl, &m, STEP_MS) != 1 || m.type != M_RESULT) {
		fail("%s did not answer the canary check", who);
		return -1;
	}
	if (m.a) {
		fail("%s's memory changed after the end: %" PRIu64 " of %zu canary bytes differ",
		     who, m.a, mr_len);
		return -1;
	}
	return 0;
}

/*
 * After the end: post a few more requests (the peer keeps posting across
 * it). If the responder QP is still there (dereg, fd passed), they must
 * NAK by themselves; otherwise move the QP to the error state and expect
 * flushes. Nothing posted from now on may succeed (on_completion()).
 */
static int probe_after_end(bool responder_alive)
{
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_ERR };
	bool probed = !P.dead;
	int k;

	P.phase = PH_AFTER;
	P.pumping = false;
	mark("end done, probing from wr %" PRIu64, P.seq);
	if (probed) {
		for (k = 0; k < 3; k++)
			if (post_op(k == 1 && O.load != LOAD_MPROTECT ?
				    IBV_WR_ATOMIC_FETCH_AND_ADD :
				    k == 2 ? IBV_WR_RDMA_READ :
				    IBV_WR_RDMA_WRITE))
				break;
	}
	if (!responder_alive && ibv_modify_qp(P.qp, &a, IBV_QP_STATE)) {
		fail("peer: modify QP to ERR failed");
		return -1;
	}
	if (drive(until_drained, NULL, STEP_MS, "draining the peer's requests after the end"))
		return -1;
	if (responder_alive && probed && !P.late_nak)
		fail("requests posted after the end found a live responder but no access error");
	return fail_reason[0] ? -1 : 0;
}

static int expect_refused(const char *mod)
{
	int ret = delete_module(mod);

	if (ret != -EWOULDBLOCK) {
		fail("delete_module(%s) with users left returned %d (%s), want EWOULDBLOCK",
		     mod, ret, ret ? strerror(-ret) : "unloaded");
		return -1;
	}
	return 0;
}

static int iteration(int it)
{
	int fdsock[2] = { -1, -1 }, sv[2];
	int holder_ctl, how = O.end, ret;
	pid_t *holder = &owner_pid;
	pid_t linkdel = 0;
	long k;
	struct msg m;

	cur_iter = it;
	step_t0 = now_ms();
	P.late_nak = 0;
	fflush(NULL);
	if (!P.open && peer_open())
		return -1;
	if (peer_qp_create())
		return -1;

	if (O.fdpass) {
		set_step("starting the receiver");
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) ||
		    socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, fdsock)) {
			fail("socketpair: %s", strerror(errno));
			return -1;
		}
		recv_pid = fork();
		if (recv_pid == 0) {
			close(sv[0]);
			receiver_main(sv[1], fdsock[1]);
		}
		close(sv[1]);
		close(fdsock[1]);
		recv_ctl = sv[0];
		if (msg_wait(recv_ctl, &m, STEP_MS) != 1 || m.type != M_READY) {
			fail("receiver: %s", m.type == M_FAIL ? m.text : "not ready");
			return -1;
		}
	}

	set_step("starting the owner");
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv)) {
		fail("socketpair: %s", strerror(errno));
		return -1;
	}
	owner_pid = fork();
	if (owner_pid == 0) {
		close(sv[0]);
		if (recv_ctl >= 0)
			close(recv_ctl);
		owner_main(sv[1], fdsock[0]);
	}
	close(sv[1]);
	if (fdsock[0] >= 0)
		close(fdsock[0]);
	owner_ctl = sv[0];
	if (msg_wait(owner_ctl, &m, STEP_MS) != 1 || m.type != M_HELLO) {
		if (m.type == M_SKIP) {
			printf("SKIP %s\n", m.text);
			exit(77);
		}
		fail("owner: %s", m.type == M_FAIL ? m.text : "no hello");
		return -1;
	}
	P.rkey = (uint32_t)m.b;
	P.raddr = m.c;
	set_step("connecting the peer's QP");
	ret = vu_qp_connect(&P.v, P.qp, (uint32_t)m.a);
	if (ret) {
		fail("peer: connect: %s", strerror(-ret));
		return -1;
	}
	msg_send(owner_ctl, M_PEER, 0, P.qp->qp_num, 0, 0);
	if (msg_wait(owner_ctl, &m, STEP_MS) != 1 || m.type != M_READY) {
		fail("owner: %s", m.type == M_FAIL ? m.text : "not ready");
		return -1;
	}

	/* Phase "before": fault the MR in, keep requests in flight. */
	if (O.load == LOAD_IDLE) {
		k = 1;
		post_op(IBV_WR_RDMA_WRITE);
		if (drive(until_done, &k, STEP_MS, "touching the idle MR"))
			return -1;
	} else {
		k = rnd(3 * WINDOW);
		P.pumping = true;
		if (drive(until_done, &k, STEP_MS, "running traffic before the end"))
			return -1;
	}

	/* The end. */
	P.phase = PH_DURING;
	mark("end %s begins, owner pid %d", end_names[O.end], owner_pid);
	holder_ctl = owner_ctl;
	if (O.fdpass) {
		struct want_msg w = { .fd = recv_ctl, .type = M_GOT_FD };

		msg_send(owner_ctl, M_END, ACT_HANDOFF, 0, 0, 0);
		if (drive(until_reaped, &owner_pid, STEP_MS, "waiting for the owner to pass its fd and exit") ||
		    drive(until_msg, &w, STEP_MS, "waiting for the receiver to get the fd"))
			return -1;
		/* the owner's mm is gone: the MR must NAK, nothing lands
		 * in the receiver's memory at the same address */
		if (probe_after_end(true) ||
		    check_canary(recv_ctl, "the fd receiver"))
			return -1;
		holder = &recv_pid;
		holder_ctl = recv_ctl;
	}

	switch (O.end) {
	case END_LINKDEL: {
		static const char *const argv[] = { "rdma", "link", "del",
						    "rxe0", NULL };

		linkdel = spawn_pid = spawn(argv);
		if (linkdel < 0)
			return -1;
		if (drive(until_blocked, &linkdel, STEP_MS, "waiting for rdma link del to block on the open contexts"))
			return -1;
		how = it & 1 ? END_KILL : END_EXIT;
		break;
	}
	case END_RMMOD:
		set_step("rmmod with users left");
		if (expect_refused("rdma_rxe") || expect_refused("odp_mirror"))
			return -1;
		how = it & 1 ? END_KILL : END_EXIT;
		break;
	default:
		break;
	}

	if (end_holder(holder, holder_ctl, how,
		       O.fdpass ? "the fd receiver" : "the owner"))
		return -1;
	if (!O.fdpass && probe_after_end(how == END_DEREG))
		return -1;
	if (how == END_DEREG || how == END_CLOSE) {
		if (check_canary(holder_ctl, O.fdpass ? "the fd receiver" : "the owner"))
			return -1;
		msg_send(holder_ctl, M_END, ACT_EXIT, 0, 0, 0);
		set_step("waiting for the holder's exit");
		if (reap_wait(holder, STEP_MS, "the holder", NULL))
			return -1;
	}
	if (linkdel > 0) {
		int st;

		if (waitpid(linkdel, &st, WNOHANG) == linkdel) {
			fail("rdma link del finished while the peer still had its context");
			return -1;
		}
	}
	if (O.end == END_RMMOD) {
		set_step("rmmod with only the peer left");
		if (expect_refused("rdma_rxe"))
			return -1;
	}

	peer_qp_destroy();
	if (O.end == END_LINKDEL || O.end == END_RMMOD)
		peer_close();

	if (O.end == END_LINKDEL) {
		int st;

		set_step("waiting for rdma link del");
		if (reap_wait(&linkdel, STEP_MS, "rdma link del", &st))
			return -1;
		if (!WIFEXITED(st) || WEXITSTATUS(st)) {
			fail("rdma link del rxe0 failed (wait status 0x%x)", st);
			return -1;
		}
		spawn_pid = 0;
		if (check_live("after rdma link del") || link_add())
			return -1;
	} else if (O.end == END_RMMOD) {
		set_step("rmmod rdma_rxe");
		if (unload("rdma_rxe"))
			return -1;
		/* odd iterations read the counts (which waits for the
		 * deferred frees); even ones unload at once */
		if ((it & 1) && check_live("after rmmod rdma_rxe"))
			return -1;
		set_step("rmmod odp_mirror");
		if (unload("odp_mirror"))
			return -1;
		if (reload_modules())
			return -1;
	}

	close(owner_ctl);
	owner_ctl = -1;
	if (recv_ctl >= 0)
		close(recv_ctl);
	recv_ctl = -1;
	return 0;
}

static int parse_kind(const char *s, const char *const *names, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (!strcmp(s, names[i]))
			return i;
	return -1;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: teardown --end {exit,kill,dereg,close,linkdel,rmmod}\n"
		"                --load {idle,traffic,munmap,mprotect}\n"
		"                [--fdpass] [--implicit] [-n ITERATIONS] [--seed N] [-v]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "end", required_argument, NULL, 'e' },
		{ "load", required_argument, NULL, 'l' },
		{ "fdpass", no_argument, NULL, 'f' },
		{ "implicit", no_argument, NULL, 'i' },
		{ "iterations", required_argument, NULL, 'n' },
		{ "seed", required_argument, NULL, 's' },
		{ "verbose", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	int c, it, ret;
	int64_t t0;
	long total;

	O.seed = (unsigned int)time(NULL) ^ getpid();
	while ((c = getopt_long(argc, argv, "n:v", lopts, NULL)) != -1) {
		switch (c) {
		case 'e':
			O.end = parse_kind(optarg, end_names, END_N);
			break;
		case 'l':
			O.load = parse_kind(optarg, load_names, LOAD_N);
			break;
		case 'f':
			O.fdpass = true;
			break;
		case 'i':
			O.implicit = true;
			break;
		case 'n':
			O.iterations = atoi(optarg);
			break;
		case 's':
			O.seed = strtoul(optarg, NULL, 0);
			break;
		case 'v':
			O.verbose++;
			break;
		default:
			usage();
		}
	}
	if ((int)O.end < 0 || O.end >= END_N || (int)O.load < 0 ||
	    O.load >= LOAD_N || O.iterations < 1 || optind != argc)
		usage();
	if (O.fdpass && (O.end == END_DEREG || O.implicit)) {
		fprintf(stderr, "teardown: --fdpass ends the receiver, which cannot dereg (rxe has no context import), and does not combine with --implicit\n");
		exit(2);
	}
	srandom(O.seed);
	mr_len = (size_t)MR_PAGES * getpagesize();
	vu_config_init(&cfg);
	if (vu_config_from_env(&cfg))
		exit(2);
	cfg.timeout_ms = STEP_MS;
	signal(SIGALRM, on_alarm);
	signal(SIGPIPE, SIG_IGN);

	t0 = now_ms();
	for (it = 0; it < O.iterations; it++) {
		alarm(ITER_TIMEOUT_S);
		ret = iteration(it);
		alarm(0);
		if (ret || fail_reason[0]) {
			fprintf(stderr, "FAIL iteration %d of %d (seed %u), step \"%s\": %s\n",
				it + 1, O.iterations, O.seed, step,
				fail_reason[0] ? fail_reason : "failed");
			kill_children();
			exit(1);
		}
		set_step("done");
		vlog("iteration %d ok", it + 1);
	}
	peer_close();
	total = 0;
	for (c = 0; c < 32; c++)
		total += P.status[c];
	printf("%d iterations in %.1f s; %ld completions: %ld success, %ld remote access error, %ld flushed, %ld retry exceeded\n",
	       O.iterations, (now_ms() - t0) / 1000.0, total,
	       P.status[IBV_WC_SUCCESS], P.status[IBV_WC_REM_ACCESS_ERR],
	       P.status[IBV_WC_WR_FLUSH_ERR], P.status[IBV_WC_RETRY_EXC_ERR]);
	if (unload_retried)
		printf("unload refused after the last user was gone in %ld iterations (deferred release), waited up to %ld ms\n",
		       unload_retried, unload_wait_max_ms);
	return 0;
}
