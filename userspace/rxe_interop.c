// SPDX-License-Identifier: GPL-2.0
/*
 * rxe_interop - a data-checking interop test between two RDMA endpoints.
 *
 *   rxe_interop --server [options]          on one host
 *   rxe_interop --client HOST [options]     on the other (or the same)
 *
 * The two processes talk over a TCP side channel (--port, default 18515):
 * first a HELLO each way (QP numbers, PSNs, GID, active MTU, buffer address
 * and rkey, memory kind, ODP and device capabilities, which extended work
 * requests this libibverbs can post, and the test plan, which must be the
 * same on both sides), then, for each test case, a short exchange that lets
 * the side that posts the work requests (the driver) and its peer (the
 * servant, which fills, posts receives and checks its memory) take turns:
 *
 *   driver                         servant
 *   CASE (op, size, layout)  ->    fill the target, guards, post receives
 *                            <-    PREP
 *   post, wait for completions
 *   DONE (completion status) ->    reap receives, check every byte
 *                            <-    CHECK (verdict, first mismatch)
 *   check its own memory
 *   RESULT (the case's line) ->    prints the same verdict
 *
 * With --dir both the client drives every case, then the roles swap on the
 * same connection and the server drives them all. After a case that left a
 * QP in the error state both sides take their QPs through RESET back to RTS
 * (RECOVER), so one failure does not hide the cases after it.
 *
 * Each side's memory (--mem) is pinned (ibv_reg_mr), explicit ODP (the same
 * buffer registered with IBV_ACCESS_ON_DEMAND) or implicit ODP (one MR over
 * the whole address space, the buffer addressed by its VA). A side that asks
 * for ODP on a device that does not advertise it exits with status 2; only
 * UD cases fall back, to a separate pinned buffer, when ud_odp_caps lack
 * SEND/RECV (their line says so). The last MiB of each buffer is a scratch
 * region inside the same MR: --churn runs a thread that keeps zapping it
 * with MADV_DONTNEED and touching it again (invalidations of the same MR
 * while traffic runs), and zaps the pages of each case's destination before
 * the case, so the responder faults them back in.
 *
 * Every transfer starts at an unaligned offset on both sides (some mid-page,
 * some in the last bytes of a page, so that it crosses page boundaries),
 * derived from --seed and the case number. The source holds a pattern of
 * (seed, case, absolute byte offset in the source buffer), so a shifted or
 * misplaced copy shows; the destination is pre-filled with the complement
 * of what must arrive and fenced by 64 guard bytes on each side that hold
 * another pattern. Every destination byte and every guard byte is checked.
 * FETCH_ADD and CMP_SWP check the value returned and the new remote value,
 * at an address in the middle of a page, in the last 8 bytes of a page and
 * in a page nobody touched before; ATOMIC_WRITE checks its 8 bytes and the
 * guards; FLUSH follows a WRITE of the range it flushes.
 *
 * ATOMIC_WRITE and FLUSH run only when both devices advertise them
 * (device_cap_flags_ex), the servant's ODP caps include them (for ODP
 * memory), and the driver's libibverbs could create an ibv_qp_ex with
 * IBV_QP_EX_WITH_ATOMIC_WRITE / IBV_QP_EX_WITH_FLUSH. The tool is built
 * against rdma-core 44's headers and runs with a newer libibverbs as well:
 * what 44 lacks (the FLUSH work request, its access and capability bits) is
 * taken from the ABI (values and the layout of struct ibv_qp_ex), never from
 * newer headers. Those two are posted with ibv_wr_*(), everything else with
 * ibv_post_send(); when ibv_create_qp_ex() refuses both, the QP is a plain
 * one and their lines are "na".
 *
 * --pull IFACE adds one last case on the client (the server with --dir
 * server): with 100% loss on IFACE (tc netem) a WRITE must complete with
 * IBV_WC_RETRY_EXC_ERR, the servant's memory must be unchanged, and the next
 * work request must be flushed (IBV_WC_WR_FLUSH_ERR).
 *
 * Output on stdout, one line per case (both sides print the driver's
 * verdict, each from its own point of view):
 *
 *   ok|FAIL|na c2s|s2c:OP size=N loff=O roff=O mem=LOCAL/REMOTE [# note]
 *
 * c2s: the client drives; s2c: the server drives. Setup facts are printed
 * first as lines that start with "# ", and a summary line last:
 * "interop: N ok, N failed, N na". Exit status: 0 when no case failed, 1
 * when one did, 2 on a setup error (or a peer that went away).
 */
#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "verbs_util.h"

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

/*
 * What rdma-core 44's verbs.h lacks, with the values of the ABI (rdma-core
 * 45+ verbs.h, the kernel's ib_user_verbs.h).
 */
#define RI_ODP_SUPPORT_FLUSH		0x40U	/* IBV_ODP_SUPPORT_FLUSH */
#define RI_ODP_SUPPORT_ATOMIC_WRITE	0x80U	/* ..._ATOMIC_WRITE */
#define RI_ACCESS_FLUSH_GLOBAL		0x100U	/* IBV_ACCESS_FLUSH_GLOBAL */
#define RI_QP_EX_WITH_FLUSH		0x800ULL	/* IBV_QP_EX_WITH_FLUSH */
/* device_cap_flags_ex: IB_UVERBS_DEVICE_FLUSH_GLOBAL, ..._ATOMIC_WRITE */
#define RI_DEVICE_FLUSH_GLOBAL		0x4000000000ULL		/* bit 38 */
#define RI_DEVICE_ATOMIC_WRITE		0x10000000000ULL	/* bit 40 */
#define RI_WC_FLUSH			8		/* IBV_WC_FLUSH */
#define RI_FLUSH_GLOBAL			1		/* IBV_FLUSH_GLOBAL */
#define RI_FLUSH_RANGE			0		/* IBV_FLUSH_RANGE */

/*
 * struct ibv_qp_ex of rdma-core 45 and later: 44's, then wr_flush. Used
 * only on a QP that libibverbs created with RI_QP_EX_WITH_FLUSH, which an
 * older libibverbs refuses.
 */
struct ri_qp_ex_flush {
	struct ibv_qp_ex	ex;
	void			(*wr_flush)(struct ibv_qp_ex *qp, unsigned int rkey,
					    unsigned long remote_addr, size_t len,
					    unsigned char type, unsigned char level);
};

static_assert(offsetof(struct ri_qp_ex_flush, wr_flush) == sizeof(struct ibv_qp_ex),
	      "wr_flush must follow rdma-core 44's struct ibv_qp_ex");

#define RI_DEFAULT_PORT		"18515"
#define RI_DEFAULT_SIZES	"1,7,4095,4096,4097,65537,1M,8M"
#define RI_GUARD		64		/* guard bytes on each side */
#define RI_GRH			40		/* what a UD receive gets first */
#define RI_SLACK		(256UL << 10)	/* data area: 2 * max size + this */
#define RI_SCRATCH		(1024UL * 1024)	/* churned, at the end of the MR */
#define RI_FRESH_PAGES		16		/* untouched pages for atomics */
#define RI_FRESH_PER_PHASE	8
#define RI_UDBUF		(64UL << 10)	/* UD offsets stay below this */
#define RI_MAX_SIZES		32
#define RI_MAX_SIZE		(1024UL * 1024 * 1024)
#define RI_QKEY			0x11111111
#define RI_LINE			2048
#define RI_CONNECT_MS		30000		/* client: retry connect() so long */
#define RI_TCP_MS		120000		/* base bound of a side-channel read */
#define RI_PULL_MS		60000		/* bound of the cable pull's error */
/*
 * The RC QP's transport retry count: 7, what perftest and UCX set, except
 * in the cable pull, which reconnects at 6 first. rxe (upstream's as well
 * as ours) never stops retrying at 7, unlike IBTA's "7 retries" and
 * mlx5: a requester whose peer is gone keeps retransmitting until the
 * peer is back.
 */
#define RI_RETRY_CNT		7
#define RI_PULL_RETRY_CNT	6
#define RI_PULL_SIZE		4097
#define RI_RD_ATOMIC		16
#define RI_SALT_GUARD		0x6775617264ULL
#define RI_SALT_VALUE		0x76616c7565ULL

enum ri_op {
	OP_WRITE, OP_READ, OP_SEND1, OP_SEND3, OP_FADD, OP_CSWAP,
	OP_ATOMIC_WRITE, OP_FLUSH, OP_UD_SEND, OP_PULL, OP_NR
};

static const char * const ri_op_name[OP_NR] = {
	"write", "read", "send1", "send3", "fadd", "cswap", "atomic_write",
	"flush", "ud_send", "pull",
};

#define RI_OPS_ALL	((1U << OP_PULL) - 1)
#define RI_OPS_ATOMIC	((1U << OP_FADD) | (1U << OP_CSWAP))

enum ri_mem { MEM_PINNED, MEM_EXPLICIT, MEM_IMPLICIT, MEM_NR };

static const char * const ri_mem_name[MEM_NR] = {
	"pinned", "explicit", "implicit",
};

enum ri_dir { DIR_BOTH, DIR_CLIENT, DIR_SERVER, DIR_NR };

static const char * const ri_dir_name[DIR_NR] = { "both", "client", "server" };

/* The three places an atomic lands. */
enum { AT_MID, AT_PAGE_END, AT_FRESH, AT_NR };

static const char * const ri_at_note[AT_NR] = {
	"mid-page", "last 8 bytes of a page", "page never touched",
};

/* What this side's QP can post beyond the basic work requests. */
#define RI_CAN_ATOMIC_WRITE	1U
#define RI_CAN_FLUSH		2U

struct ri_opts {
	bool			server;
	const char		*host;
	const char		*port;
	const char		*dev;
	int			ib_port;
	int			gid_idx;
	enum ri_mem		mem;
	unsigned int		ops;
	size_t			sizes[RI_MAX_SIZES];
	int			nsizes;
	size_t			max_size;
	unsigned long long	seed;
	enum ri_dir		dir;
	bool			churn;
	const char		*pull;
	int			timeout_ms;
};

/* What one side tells the other in its HELLO. */
struct ri_side {
	const char		*name;		/* "client" or "server" */
	char			dev[64];
	unsigned int		qpn, psn, ud_qpn, lid;
	union ibv_gid		gid;
	int			mtu;		/* enum ibv_mtu, port's active */
	enum ri_mem		mem;
	unsigned long long	addr, len;
	unsigned int		rkey;
	unsigned int		odp_gen, odp_rc, odp_ud;
	unsigned long long	capx;
	unsigned int		can;		/* RI_CAN_* */
	bool			mr_flush;	/* MR and QP allow FLUSH_GLOBAL */
	bool			ud_pinned;	/* UD cases use a pinned buffer */
	unsigned int		rd_atom, init_rd_atom;
	bool			pull;
	char			plan[512];
};

struct ri_seg {
	size_t	off;
	size_t	len;
};

struct ri_case {
	int			no;
	enum ri_op		op;
	size_t			size;
	int			at;		/* atomics: AT_* */
	unsigned long long	key;
	unsigned long long	a, b;		/* add; compare, swap; value */
	struct ri_seg		drv[3], srv[3];	/* driver's, servant's memory */
	int			ndrv, nsrv;
	bool			fresh;		/* target in an untouched page */
	bool			recv_posted;	/* servant: its receive is up */
};

/* First mismatch of a check, and how many bytes were wrong. */
struct ri_bad {
	const char	*side;
	size_t		count;
	char		first[192];
};

struct ri_conn {
	int	fd;
	char	buf[RI_LINE * 2];
	size_t	len;
	int	timeout_ms;
};

struct ri {
	struct ri_opts		o;
	bool			client;
	struct vu_ctx		v;
	struct ibv_device_attr_ex ax;
	struct vu_qp		rc, ud;
	struct ibv_qp_ex	*qpx;
	char			qpx_note[128];
	struct ibv_ah		*ah;
	size_t			page;
	unsigned char		*buf;		/* data area, then scratch */
	size_t			buf_len, data_len;
	unsigned char		*scratch;
	struct ibv_mr		*mr;
	bool			mr_flush;
	unsigned char		*udbuf;		/* pinned UD fallback, or NULL */
	struct ibv_mr		*udmr;
	struct ri_side		me, peer;
	enum ibv_mtu		path_mtu;
	unsigned int		rd_out, rd_in;
	struct ri_conn		conn;
	bool			connected;
	bool			started;
	int			n_ok, n_fail, n_na;
	int			fresh_used;
	/* --churn */
	bool			churn_on;
	pthread_t		churn_thr;
	int			churn_stop;
	unsigned long		churn_rounds;
	/* --pull */
	bool			qdisc_set;
	unsigned int		retry_cnt;	/* the RC QP's, at RTS */
};

static struct ri *ri_g;	/* for ri_fatal() and the exit handler */

/* ---- small helpers ---- */

static long long ri_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void ri_nap_ms(int ms)
{
	struct timespec ts = {
		.tv_sec = ms / 1000,
		.tv_nsec = (long)(ms % 1000) * 1000000,
	};

	nanosleep(&ts, NULL);
}

static void ri_print_summary(struct ri *r)
{
	printf("interop: %d ok, %d failed, %d na\n", r->n_ok, r->n_fail, r->n_na);
	fflush(stdout);
}

static void ri_send(struct ri *r, const char *fmt, ...);

/*
 * A setup error, a dead peer or a protocol error: tell the peer (if it is
 * still there), print the summary if cases ran, exit 2.
 */
static void ri_fatal(const char *fmt, ...)
{
	struct ri *r = ri_g;
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fflush(stdout);
	fprintf(stderr, "rxe_interop: error: %s\n", msg);
	if (r && r->connected) {
		r->connected = false;
		ri_send(r, "ERROR %s", msg);
	}
	if (r && r->started)
		ri_print_summary(r);
	exit(2);
}

/* splitmix64's finalizer: the source of every pattern and offset. */
static unsigned long long ri_mix(unsigned long long x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* Byte @i of the pattern @key, a word of ri_mix() per 8 bytes. */
struct ri_pc {
	unsigned long long	key;
	unsigned long long	idx;
	unsigned long long	word;
	bool			valid;
};

static unsigned char ri_pc_byte(struct ri_pc *pc, size_t i)
{
	unsigned long long w = i >> 3;

	if (!pc->valid || pc->idx != w) {
		pc->word = ri_mix(pc->key + w);
		pc->idx = w;
		pc->valid = true;
	}
	return pc->word >> ((i & 7) * 8);
}

static size_t ri_round_up(size_t x, size_t a)
{
	return (x + a - 1) / a * a;
}

static size_t ri_round_down(size_t x, size_t a)
{
	return x / a * a;
}

static size_t ri_mtu_bytes(int mtu)
{
	return mtu >= IBV_MTU_256 && mtu <= IBV_MTU_4096 ? 128U << mtu : 256;
}

static const char *ri_gid_str(const union ibv_gid *gid, char *s, size_t n)
{
	if (!inet_ntop(AF_INET6, gid->raw, s, n))
		snprintf(s, n, "?");
	return s;
}

static void ri_bad_note(struct ri_bad *b, const char *what, size_t idx,
			size_t abs, unsigned char want, unsigned char got)
{
	if (!b->count++)
		snprintf(b->first, sizeof(b->first),
			 "%s %s byte %zu (buf+%zu): expected 0x%02x got 0x%02x",
			 b->side, what, idx, abs, want, got);
}

/* Append "; @s" (or just @s) to @why. */
static void ri_why(char *why, size_t n, const char *fmt, ...)
{
	size_t len = strlen(why);
	va_list ap;

	if (len && len + 2 < n) {
		memcpy(why + len, "; ", 3);
		len += 2;
	}
	if (len >= n)
		return;
	va_start(ap, fmt);
	vsnprintf(why + len, n - len, fmt, ap);
	va_end(ap);
}

static void ri_why_bad(char *why, size_t n, const struct ri_bad *b)
{
	if (b->count)
		ri_why(why, n, "%s (%zu bad bytes)", b->first, b->count);
}

/* ---- TCP side channel ---- */

static void ri_send(struct ri *r, const char *fmt, ...)
{
	char line[RI_LINE];
	size_t len, done = 0;
	va_list ap;
	ssize_t n;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	len = strlen(line);
	line[len++] = '\n';
	while (done < len) {
		n = send(r->conn.fd, line + done, len - done, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (!r->connected)
				return;	/* ri_fatal()'s courtesy ERROR */
			ri_fatal("side channel: send: %s", strerror(errno));
		}
		done += n;
	}
}

/* Read one line (without its '\n') within conn.timeout_ms. */
static void ri_recv(struct ri *r, char *line, size_t size)
{
	struct ri_conn *c = &r->conn;
	long long end = ri_now_ms() + c->timeout_ms;
	struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
	char *nl;
	ssize_t n;
	size_t len;

	for (;;) {
		nl = memchr(c->buf, '\n', c->len);
		if (nl) {
			len = nl - c->buf;
			if (len >= size)
				ri_fatal("side channel: line of %zu bytes", len);
			memcpy(line, c->buf, len);
			line[len] = '\0';
			c->len -= len + 1;
			memmove(c->buf, nl + 1, c->len);
			break;
		}
		if (c->len == sizeof(c->buf))
			ri_fatal("side channel: no newline in %zu bytes", c->len);
		n = end - ri_now_ms();
		if (n <= 0)
			ri_fatal("side channel: the peer said nothing for %d s",
				 c->timeout_ms / 1000);
		n = poll(&pfd, 1, n);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			ri_fatal("side channel: poll: %s", strerror(errno));
		if (!n)
			continue;
		n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			ri_fatal("side channel: recv: %s", strerror(errno));
		if (!n) {
			r->connected = false;
			ri_fatal("side channel: the peer closed the connection");
		}
		c->len += n;
	}
	if (!strncmp(line, "ERROR ", 6)) {
		r->connected = false;
		ri_fatal("the peer failed: %s", line + 6);
	}
}

/* Read a line that must start with @type (a word). */
static void ri_expect(struct ri *r, const char *type, char *line, size_t size)
{
	size_t n = strlen(type);

	ri_recv(r, line, size);
	if (strncmp(line, type, n) || (line[n] && line[n] != ' '))
		ri_fatal("side channel: expected %s, got \"%.80s\"", type, line);
}

/* The value of " @key=" in @line, before any " # " note; NULL if none. */
static const char *ri_kv(const char *line, const char *key, char *out,
			 size_t size)
{
	const char *note = strstr(line, " # ");
	size_t klen = strlen(key), n;
	const char *p = line;

	while ((p = strchr(p, ' '))) {
		p++;
		if (note && p > note)
			break;
		if (strncmp(p, key, klen) || p[klen] != '=')
			continue;
		p += klen + 1;
		n = strcspn(p, " ");
		if (n >= size)
			n = size - 1;
		memcpy(out, p, n);
		out[n] = '\0';
		return out;
	}
	return NULL;
}

static unsigned long long ri_kv_ull(const char *line, const char *key)
{
	char v[64], *end;
	unsigned long long x;

	if (!ri_kv(line, key, v, sizeof(v)))
		ri_fatal("side channel: no %s= in \"%.80s\"", key, line);
	errno = 0;
	x = strtoull(v, &end, 0);
	if (errno || *end || end == v)
		ri_fatal("side channel: bad %s=%s", key, v);
	return x;
}

static const char *ri_note(const char *line)
{
	const char *note = strstr(line, " # ");

	return note ? note + 3 : "";
}

static void ri_listen_accept(struct ri *r)
{
	struct addrinfo hints = {
		.ai_flags = AI_PASSIVE,
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
	};
	struct addrinfo *res, *ai;
	struct pollfd pfd = { .events = POLLIN };
	int one = 1, lfd = -1, ret;

	ret = getaddrinfo(NULL, r->o.port, &hints, &res);
	if (ret)
		ri_fatal("getaddrinfo(port %s): %s", r->o.port, gai_strerror(ret));
	for (ai = res; ai; ai = ai->ai_next) {
		lfd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
		if (lfd < 0)
			continue;
		setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (!bind(lfd, ai->ai_addr, ai->ai_addrlen) && !listen(lfd, 1))
			break;
		close(lfd);
		lfd = -1;
	}
	freeaddrinfo(res);
	if (lfd < 0)
		ri_fatal("cannot listen on TCP port %s: %s", r->o.port,
			 strerror(errno));
	pfd.fd = lfd;
	ret = poll(&pfd, 1, r->conn.timeout_ms);
	if (ret <= 0)
		ri_fatal("no client connected to TCP port %s within %d s",
			 r->o.port, r->conn.timeout_ms / 1000);
	r->conn.fd = accept(lfd, NULL, NULL);
	if (r->conn.fd < 0)
		ri_fatal("accept: %s", strerror(errno));
	close(lfd);
}

/* Connect to the server, retrying for up to RI_CONNECT_MS. */
static void ri_connect(struct ri *r)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
	};
	long long end = ri_now_ms() + RI_CONNECT_MS;
	struct addrinfo *res, *ai;
	int fd = -1, ret, err = 0;

	ret = getaddrinfo(r->o.host, r->o.port, &hints, &res);
	if (ret)
		ri_fatal("getaddrinfo(%s, %s): %s", r->o.host, r->o.port,
			 gai_strerror(ret));
	while (fd < 0) {
		for (ai = res; ai; ai = ai->ai_next) {
			fd = socket(ai->ai_family, ai->ai_socktype,
				    ai->ai_protocol);
			if (fd < 0)
				continue;
			if (!connect(fd, ai->ai_addr, ai->ai_addrlen))
				break;
			err = errno;
			close(fd);
			fd = -1;
		}
		if (fd >= 0)
			break;
		if (ri_now_ms() >= end) {
			freeaddrinfo(res);
			ri_fatal("cannot connect to %s port %s within %d s: %s",
				 r->o.host, r->o.port, RI_CONNECT_MS / 1000,
				 strerror(err));
		}
		ri_nap_ms(200);	/* pacing of the retries */
	}
	freeaddrinfo(res);
	r->conn.fd = fd;
}

static void ri_tcp_setup(struct ri *r)
{
	int one = 1;

	if (r->client)
		ri_connect(r);
	else
		ri_listen_accept(r);
	setsockopt(r->conn.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	r->connected = true;
}

/* ---- options ---- */

static void ri_usage(FILE *f)
{
	fprintf(f,
		"usage: rxe_interop --server [options]\n"
		"       rxe_interop --client HOST [options]\n"
		"\n"
		"  --port N          TCP side channel port (default " RI_DEFAULT_PORT ")\n"
		"  --dev NAME        RDMA device (default rxe0)\n"
		"  --ib-port N       its port (default 1)\n"
		"  --gid-idx N       GID index (default 1: RoCEv2, IPv4)\n"
		"  --mem KIND        pinned (default), explicit or implicit (ODP);\n"
		"                    each side chooses its own\n"
		"  --ops LIST        comma list of write, read, send1, send3, fadd,\n"
		"                    cswap, atomic_write, flush, ud_send (default: all)\n"
		"  --sizes LIST      comma list of sizes, K/M/G suffixes\n"
		"                    (default " RI_DEFAULT_SIZES ")\n"
		"  --seed N          offsets and patterns (default 1)\n"
		"  --dir DIR         who posts: both (client, then server; default),\n"
		"                    client or server\n"
		"      --dir, --ops, --sizes and --seed must be the same on both sides\n"
		"  --churn           as servant: MADV_DONTNEED each case's target\n"
		"                    before it, and a thread that churns the scratch\n"
		"                    MiB of the MR all along (ODP memory only)\n"
		"  --pull IFACE      last case: 100%% loss on IFACE (tc netem) during a\n"
		"                    WRITE, which must fail with RETRY_EXC_ERR; done by\n"
		"                    the client (by the server with --dir server).\n"
		"                    IFACE's root qdisc must be the default: it is\n"
		"                    deleted afterwards (needs tc and CAP_NET_ADMIN)\n"
		"  --timeout-ms N    bound of every completion wait (default 30000);\n"
		"                    a side-channel read waits 120 s + 2 * N + 60 s\n"
		"\n"
		"Output: one line per case, \"ok|FAIL|na c2s|s2c:OP size=N loff=O\n"
		"roff=O mem=LOCAL/REMOTE [# note]\", then \"interop: N ok, N failed,\n"
		"N na\". Exit status 0: nothing failed, 1: a case failed, 2: setup\n"
		"error.\n");
}

static size_t ri_parse_size(const char *s)
{
	unsigned long long x;
	char *end;

	errno = 0;
	x = strtoull(s, &end, 10);
	if (errno || end == s)
		return 0;
	switch (tolower((unsigned char)*end)) {
	case 'k':
		x <<= 10;
		end++;
		break;
	case 'm':
		x <<= 20;
		end++;
		break;
	case 'g':
		x <<= 30;
		end++;
		break;
	}
	if (*end || x > RI_MAX_SIZE)
		return 0;
	return x;
}

static void ri_parse_sizes(struct ri_opts *o, const char *arg)
{
	char *copy = strdup(arg), *tok, *save = NULL;

	o->nsizes = 0;
	o->max_size = 0;
	for (tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		size_t x = ri_parse_size(tok);

		if (!x) {
			fprintf(stderr, "rxe_interop: bad size \"%s\" (1..1G)\n",
				tok);
			exit(2);
		}
		if (o->nsizes == RI_MAX_SIZES) {
			fprintf(stderr, "rxe_interop: at most %d sizes\n",
				RI_MAX_SIZES);
			exit(2);
		}
		o->sizes[o->nsizes++] = x;
		if (x > o->max_size)
			o->max_size = x;
	}
	free(copy);
	if (!o->nsizes) {
		fprintf(stderr, "rxe_interop: --sizes: no size\n");
		exit(2);
	}
}

static void ri_parse_ops(struct ri_opts *o, const char *arg)
{
	char *copy = strdup(arg), *tok, *save = NULL;
	int i;

	o->ops = 0;
	for (tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (!strcmp(tok, "all")) {
			o->ops |= RI_OPS_ALL;
			continue;
		}
		for (i = 0; i < OP_PULL; i++)
			if (!strcmp(tok, ri_op_name[i]))
				break;
		if (i == OP_PULL) {
			fprintf(stderr, "rxe_interop: unknown op \"%s\"\n", tok);
			exit(2);
		}
		o->ops |= 1U << i;
	}
	free(copy);
	if (!o->ops) {
		fprintf(stderr, "rxe_interop: --ops: no op\n");
		exit(2);
	}
}

static int ri_parse_enum(const char *opt, const char *arg,
			 const char * const *names, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (!strcmp(arg, names[i]))
			return i;
	fprintf(stderr, "rxe_interop: %s: unknown value \"%s\"\n", opt, arg);
	exit(2);
}

static long ri_parse_long(const char *opt, const char *arg, long min, long max)
{
	char *end;
	long x;

	errno = 0;
	x = strtol(arg, &end, 0);
	if (errno || *end || end == arg || x < min || x > max) {
		fprintf(stderr, "rxe_interop: %s: expected an integer in [%ld, %ld]\n",
			opt, min, max);
		exit(2);
	}
	return x;
}

static bool ri_ifname_ok(const char *s)
{
	size_t n = strlen(s), i;

	if (!n || n > 15)
		return false;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("_.-@:", s[i]))
			return false;
	return true;
}

enum {
	OPT_SERVER = 256, OPT_CLIENT, OPT_PORT, OPT_DEV, OPT_IB_PORT,
	OPT_GID_IDX, OPT_MEM, OPT_OPS, OPT_SIZES, OPT_SEED, OPT_DIR,
	OPT_CHURN, OPT_PULL, OPT_TIMEOUT, OPT_HELP,
};

static void ri_parse_args(struct ri_opts *o, int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "server",	no_argument,		NULL, OPT_SERVER },
		{ "client",	required_argument,	NULL, OPT_CLIENT },
		{ "port",	required_argument,	NULL, OPT_PORT },
		{ "dev",	required_argument,	NULL, OPT_DEV },
		{ "ib-port",	required_argument,	NULL, OPT_IB_PORT },
		{ "gid-idx",	required_argument,	NULL, OPT_GID_IDX },
		{ "mem",	required_argument,	NULL, OPT_MEM },
		{ "ops",	required_argument,	NULL, OPT_OPS },
		{ "sizes",	required_argument,	NULL, OPT_SIZES },
		{ "seed",	required_argument,	NULL, OPT_SEED },
		{ "dir",	required_argument,	NULL, OPT_DIR },
		{ "churn",	no_argument,		NULL, OPT_CHURN },
		{ "pull",	required_argument,	NULL, OPT_PULL },
		{ "timeout-ms",	required_argument,	NULL, OPT_TIMEOUT },
		{ "help",	no_argument,		NULL, OPT_HELP },
		{ NULL, 0, NULL, 0 },
	};
	bool roles = false;
	int c;

	memset(o, 0, sizeof(*o));
	o->port = RI_DEFAULT_PORT;
	o->dev = VU_DEFAULT_DEV;
	o->ib_port = VU_DEFAULT_PORT;
	o->gid_idx = VU_DEFAULT_GID_IDX;
	o->ops = RI_OPS_ALL;
	o->seed = 1;
	o->timeout_ms = 30000;
	ri_parse_sizes(o, RI_DEFAULT_SIZES);

	while ((c = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
		switch (c) {
		case OPT_SERVER:
			if (roles)
				goto twice;
			roles = true;
			o->server = true;
			break;
		case OPT_CLIENT:
			if (roles)
				goto twice;
			roles = true;
			o->host = optarg;
			break;
		case OPT_PORT:
			ri_parse_long("--port", optarg, 1, 65535);
			o->port = optarg;
			break;
		case OPT_DEV:
			o->dev = optarg;
			break;
		case OPT_IB_PORT:
			o->ib_port = ri_parse_long("--ib-port", optarg, 1, 255);
			break;
		case OPT_GID_IDX:
			o->gid_idx = ri_parse_long("--gid-idx", optarg, 0, 65535);
			break;
		case OPT_MEM:
			o->mem = ri_parse_enum("--mem", optarg, ri_mem_name,
					       MEM_NR);
			break;
		case OPT_OPS:
			ri_parse_ops(o, optarg);
			break;
		case OPT_SIZES:
			ri_parse_sizes(o, optarg);
			break;
		case OPT_SEED:
			o->seed = ri_parse_long("--seed", optarg, 0, 0x7fffffff);
			break;
		case OPT_DIR:
			o->dir = ri_parse_enum("--dir", optarg, ri_dir_name,
					       DIR_NR);
			break;
		case OPT_CHURN:
			o->churn = true;
			break;
		case OPT_PULL:
			if (!ri_ifname_ok(optarg)) {
				fprintf(stderr, "rxe_interop: --pull: bad interface name\n");
				exit(2);
			}
			o->pull = optarg;
			break;
		case OPT_TIMEOUT:
			o->timeout_ms = ri_parse_long("--timeout-ms", optarg,
						      100, 3600000);
			break;
		case OPT_HELP:
			ri_usage(stdout);
			exit(0);
		default:
			ri_usage(stderr);
			exit(2);
		}
	}
	if (optind != argc || !roles) {
		ri_usage(stderr);
		exit(2);
	}
	return;
twice:
	fprintf(stderr, "rxe_interop: give one of --server and --client\n");
	exit(2);
}

/* The plan both sides must agree on, as one word. */
static void ri_plan(const struct ri_opts *o, char *s, size_t n)
{
	size_t len;
	int i;

	len = snprintf(s, n, "%s/0x%x/%llu/", ri_dir_name[o->dir], o->ops,
		       o->seed);
	for (i = 0; i < o->nsizes && len < n; i++)
		len += snprintf(s + len, n - len, "%s%zu", i ? "," : "",
				o->sizes[i]);
}

/* ---- device, memory, QPs ---- */

static void ri_open(struct ri *r)
{
	struct vu_config cfg;
	int ret;

	vu_config_init(&cfg);
	cfg.dev_name = r->o.dev;
	cfg.port = r->o.ib_port;
	cfg.gid_idx = r->o.gid_idx;
	cfg.timeout_ms = r->o.timeout_ms;
	cfg.log_prefix = "# ";
	ret = vu_open(&r->v, &cfg);
	if (ret)
		ri_fatal("cannot open %s port %d GID index %d: %s", r->o.dev,
			 r->o.ib_port, r->o.gid_idx, strerror(-ret));
	ret = ibv_query_device_ex(r->v.ctx, NULL, &r->ax);
	if (ret)
		ri_fatal("ibv_query_device_ex(%s): %s", r->o.dev,
			 strerror(ret > 0 ? ret : errno));
}

static const char *ri_odp_bits(unsigned int caps, char *s, size_t n)
{
	static const char * const names[] = {
		"SEND", "RECV", "WRITE", "READ", "ATOMIC", "SRQ_RECV", "FLUSH",
		"ATOMIC_WRITE",
	};
	size_t len = 0;
	unsigned int i;

	s[0] = '\0';
	for (i = 0; i < ARRAY_SIZE(names); i++)
		if (caps & (1U << i))
			len += snprintf(s + len, n - len, "%s%s", len ? "," : "",
					names[i]);
	if (!len)
		snprintf(s, n, "none");
	return s;
}

/*
 * ODP memory needs the device to say so: never fall back silently. UD
 * cases are the exception (a separate pinned buffer, said on their line).
 */
static void ri_check_odp(struct ri *r)
{
	const struct ibv_odp_caps *odp = &r->ax.odp_caps;
	unsigned int need = IBV_ODP_SUPPORT_SEND | IBV_ODP_SUPPORT_RECV |
			    IBV_ODP_SUPPORT_WRITE | IBV_ODP_SUPPORT_READ;
	unsigned int rc = odp->per_transport_caps.rc_odp_caps;
	char s[128];

	if (r->o.mem == MEM_PINNED)
		return;
	if (!(odp->general_caps & IBV_ODP_SUPPORT))
		ri_fatal("--mem %s: %s does not advertise ODP (%s 0x%llx lacks %s)",
			 ri_mem_name[r->o.mem], r->o.dev,
			 "odp_caps.general_caps",
			 (unsigned long long)odp->general_caps,
			 "IBV_ODP_SUPPORT");
	if (r->o.mem == MEM_IMPLICIT &&
	    !(odp->general_caps & IBV_ODP_SUPPORT_IMPLICIT))
		ri_fatal("--mem implicit: %s does not advertise implicit ODP (%s 0x%llx lacks %s)",
			 r->o.dev, "odp_caps.general_caps",
			 (unsigned long long)odp->general_caps,
			 "IBV_ODP_SUPPORT_IMPLICIT");
	if (r->o.ops & RI_OPS_ATOMIC)
		need |= IBV_ODP_SUPPORT_ATOMIC;
	if ((rc & need) != need)
		ri_fatal("--mem %s: %s's rc_odp_caps (%s) lack %s",
			 ri_mem_name[r->o.mem], r->o.dev,
			 ri_odp_bits(rc, s, sizeof(s)),
			 ri_odp_bits(need & ~rc, s + 64, sizeof(s) - 64));
}

static struct ibv_mr *ri_reg(struct ri *r, void *addr, size_t len,
			     unsigned int access, const char *what)
{
	struct ibv_mr *mr = ibv_reg_mr(r->v.pd, addr, len, access);

	if (!mr)
		ri_fatal("ibv_reg_mr(%s, %zu bytes, access 0x%x): %s", what, len,
			 access, strerror(errno));
	return mr;
}

static void ri_alloc(struct ri *r)
{
	unsigned int access = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE |
			      IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_ATOMIC;
	unsigned int udodp = r->ax.odp_caps.per_transport_caps.ud_odp_caps;
	void *addr;
	size_t len;

	r->page = sysconf(_SC_PAGESIZE);
	r->data_len = ri_round_up(2 * r->o.max_size + RI_SLACK, r->page);
	r->buf_len = r->data_len + RI_SCRATCH;
	r->buf = mmap(NULL, r->buf_len, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (r->buf == MAP_FAILED)
		ri_fatal("mmap(%zu): %s", r->buf_len, strerror(errno));
	r->scratch = r->buf + r->data_len;

	if (r->o.mem != MEM_PINNED)
		access |= IBV_ACCESS_ON_DEMAND;
	addr = r->o.mem == MEM_IMPLICIT ? NULL : r->buf;
	len = r->o.mem == MEM_IMPLICIT ? SIZE_MAX : r->buf_len;
	/* FLUSH needs the access flag on the responder's MR (and QP) */
	if (r->ax.device_cap_flags_ex & RI_DEVICE_FLUSH_GLOBAL) {
		r->mr = ibv_reg_mr(r->v.pd, addr, len,
				   access | RI_ACCESS_FLUSH_GLOBAL);
		if (r->mr)
			r->mr_flush = true;
		else
			printf("# %s refused FLUSH_GLOBAL access on a %s MR (%s): no FLUSH here\n",
			       r->o.dev, ri_mem_name[r->o.mem], strerror(errno));
	}
	if (!r->mr)
		r->mr = ri_reg(r, addr, len, access, ri_mem_name[r->o.mem]);

	if ((r->o.ops & (1U << OP_UD_SEND)) && r->o.mem != MEM_PINNED &&
	    (udodp & (IBV_ODP_SUPPORT_SEND | IBV_ODP_SUPPORT_RECV)) !=
	    (IBV_ODP_SUPPORT_SEND | IBV_ODP_SUPPORT_RECV)) {
		r->udbuf = mmap(NULL, RI_UDBUF, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (r->udbuf == MAP_FAILED)
			ri_fatal("mmap(%lu): %s", RI_UDBUF, strerror(errno));
		r->udmr = ri_reg(r, r->udbuf, RI_UDBUF, IBV_ACCESS_LOCAL_WRITE,
				 "UD fallback");
	}
}

static struct ibv_cq *ri_cq(struct ri *r)
{
	struct ibv_cq *cq = ibv_create_cq(r->v.ctx, 64, NULL, NULL, 0);

	if (!cq)
		ri_fatal("ibv_create_cq: %s", strerror(errno));
	return cq;
}

/*
 * The RC QP: an ibv_qp_ex that can post ATOMIC_WRITE and FLUSH if this
 * libibverbs (and its provider) allows, else one of them, else a plain QP.
 */
static void ri_create_qps(struct ri *r)
{
	static const unsigned long long extra[] = {
		IBV_QP_EX_WITH_ATOMIC_WRITE | RI_QP_EX_WITH_FLUSH,
		IBV_QP_EX_WITH_ATOMIC_WRITE,
		RI_QP_EX_WITH_FLUSH,
	};
	struct ibv_qp_init_attr_ex xa;
	struct ibv_qp_init_attr ia = {
		.qp_type = IBV_QPT_RC,
		.cap = { .max_send_wr = 16, .max_recv_wr = 16,
			 .max_send_sge = 3, .max_recv_sge = 3 },
	};
	unsigned int i;
	int err = 0;

	r->rc.cq = ri_cq(r);
	ia.send_cq = r->rc.cq;
	ia.recv_cq = r->rc.cq;
	for (i = 0; i < ARRAY_SIZE(extra); i++) {
		memset(&xa, 0, sizeof(xa));
		xa.qp_type = IBV_QPT_RC;
		xa.send_cq = r->rc.cq;
		xa.recv_cq = r->rc.cq;
		xa.cap = ia.cap;
		xa.pd = r->v.pd;
		xa.comp_mask = IBV_QP_INIT_ATTR_PD |
			       IBV_QP_INIT_ATTR_SEND_OPS_FLAGS;
		xa.send_ops_flags = IBV_QP_EX_WITH_RDMA_WRITE |
				    IBV_QP_EX_WITH_RDMA_READ |
				    IBV_QP_EX_WITH_SEND |
				    IBV_QP_EX_WITH_ATOMIC_CMP_AND_SWP |
				    IBV_QP_EX_WITH_ATOMIC_FETCH_AND_ADD |
				    extra[i];
		r->rc.qp = ibv_create_qp_ex(r->v.ctx, &xa);
		if (r->rc.qp)
			break;
		if (!err)
			err = errno;
	}
	if (r->rc.qp) {
		r->qpx = ibv_qp_to_qp_ex(r->rc.qp);
		if (!r->qpx)
			ri_fatal("ibv_qp_to_qp_ex: NULL for a QP of ibv_create_qp_ex");
		if (extra[i] & IBV_QP_EX_WITH_ATOMIC_WRITE)
			r->me.can |= RI_CAN_ATOMIC_WRITE;
		if (extra[i] & RI_QP_EX_WITH_FLUSH)
			r->me.can |= RI_CAN_FLUSH;
		snprintf(r->qpx_note, sizeof(r->qpx_note), "ibv_qp_ex%s%s",
			 r->me.can & RI_CAN_ATOMIC_WRITE ? " +atomic_write" : "",
			 r->me.can & RI_CAN_FLUSH ? " +flush" : "");
	} else {
		r->rc.qp = ibv_create_qp(r->v.pd, &ia);
		if (!r->rc.qp)
			ri_fatal("ibv_create_qp(RC): %s", strerror(errno));
		snprintf(r->qpx_note, sizeof(r->qpx_note),
			 "plain QP (ibv_create_qp_ex with ATOMIC_WRITE/FLUSH: %s)",
			 strerror(err));
	}

	if (!(r->o.ops & (1U << OP_UD_SEND)))
		return;
	r->ud.cq = ri_cq(r);
	ia.qp_type = IBV_QPT_UD;
	ia.send_cq = r->ud.cq;
	ia.recv_cq = r->ud.cq;
	ia.cap.max_send_sge = 1;
	ia.cap.max_recv_sge = 1;
	r->ud.qp = ibv_create_qp(r->v.pd, &ia);
	if (!r->ud.qp)
		ri_fatal("ibv_create_qp(UD): %s", strerror(errno));
}

static int ri_modify(struct ibv_qp *qp, struct ibv_qp_attr *a, int mask,
		     const char *what)
{
	int ret = ibv_modify_qp(qp, a, mask);

	if (ret)
		ri_fatal("ibv_modify_qp(QP %u to %s): %s", qp->qp_num, what,
			 strerror(ret > 0 ? ret : errno));
	return 0;
}

static void ri_drain(struct vu_qp *q)
{
	struct ibv_wc wc[16];
	int i;

	for (i = 0; i < 1000; i++)
		if (ibv_poll_cq(q->cq, 16, wc) <= 0)
			break;
}

/* A QP to RESET, and its CQ emptied of what it completed before. */
static void ri_reset(struct vu_qp *q)
{
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_RESET };

	ri_modify(q->qp, &a, IBV_QP_STATE, "RESET");
	ri_drain(q);
}

/* RESET, INIT, RTR, RTS: our PSN @sq_psn, the peer's @rq_psn. */
static void ri_rc_connect(struct ri *r, unsigned int sq_psn,
			  unsigned int rq_psn)
{
	struct ibv_qp *qp = r->rc.qp;
	struct ibv_qp_attr a;

	ri_reset(&r->rc);

	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_INIT;
	a.port_num = r->o.ib_port;
	a.qp_access_flags = IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_WRITE |
			    IBV_ACCESS_REMOTE_ATOMIC;
	if (r->mr_flush)
		a.qp_access_flags |= RI_ACCESS_FLUSH_GLOBAL;
	ri_modify(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT |
		  IBV_QP_ACCESS_FLAGS, "INIT");

	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTR;
	a.path_mtu = r->path_mtu;
	a.dest_qp_num = r->peer.qpn;
	a.rq_psn = rq_psn;
	a.max_dest_rd_atomic = r->rd_in;
	a.min_rnr_timer = 12;
	a.ah_attr.is_global = 1;
	a.ah_attr.grh.dgid = r->peer.gid;
	a.ah_attr.grh.sgid_index = r->o.gid_idx;
	a.ah_attr.grh.hop_limit = 64;
	a.ah_attr.dlid = r->peer.lid;
	a.ah_attr.port_num = r->o.ib_port;
	ri_modify(qp, &a, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU |
		  IBV_QP_DEST_QPN | IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC |
		  IBV_QP_MIN_RNR_TIMER, "RTR");

	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTS;
	a.sq_psn = sq_psn;
	a.timeout = 14;
	a.retry_cnt = r->retry_cnt;
	a.rnr_retry = 7;
	a.max_rd_atomic = r->rd_out;
	ri_modify(qp, &a, IBV_QP_STATE | IBV_QP_SQ_PSN | IBV_QP_TIMEOUT |
		  IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY | IBV_QP_MAX_QP_RD_ATOMIC,
		  "RTS");
}

static void ri_ud_connect(struct ri *r)
{
	struct ibv_qp *qp = r->ud.qp;
	struct ibv_qp_attr a;

	ri_reset(&r->ud);

	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_INIT;
	a.port_num = r->o.ib_port;
	a.qkey = RI_QKEY;
	ri_modify(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT |
		  IBV_QP_QKEY, "INIT");
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTR;
	ri_modify(qp, &a, IBV_QP_STATE, "RTR");
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTS;
	a.sq_psn = r->me.psn;
	ri_modify(qp, &a, IBV_QP_STATE | IBV_QP_SQ_PSN, "RTS");
}

static void ri_create_ah(struct ri *r)
{
	struct ibv_ah_attr aa = {
		.is_global = 1,
		.dlid = r->peer.lid,
		.port_num = r->o.ib_port,
		.grh = {
			.dgid = r->peer.gid,
			.sgid_index = r->o.gid_idx,
			.hop_limit = 64,
		},
	};

	r->ah = ibv_create_ah(r->v.pd, &aa);
	if (!r->ah)
		ri_fatal("ibv_create_ah: %s", strerror(errno));
}

static enum ibv_qp_state ri_qp_state(struct ibv_qp *qp)
{
	struct ibv_qp_init_attr init;
	struct ibv_qp_attr a;

	if (ibv_query_qp(qp, &a, IBV_QP_STATE, &init))
		return IBV_QPS_UNKNOWN;
	return a.qp_state;
}

/* ---- HELLO ---- */

static void ri_hello_send(struct ri *r)
{
	const struct ri_side *m = &r->me;
	char gid[40], msg[RI_LINE];
	size_t len;
	int i;

	for (i = 0; i < 16; i++)
		snprintf(gid + 2 * i, 3, "%02x", m->gid.raw[i]);
	len = snprintf(msg, sizeof(msg),
		       "HELLO v=1 dev=%s qpn=%u psn=%u udqpn=%u lid=%u gid=%s",
		       m->dev, m->qpn, m->psn, m->ud_qpn, m->lid, gid);
	len += snprintf(msg + len, sizeof(msg) - len,
			" mtu=%d mem=%d addr=0x%llx len=%llu rkey=0x%x",
			m->mtu, m->mem, m->addr, m->len, m->rkey);
	len += snprintf(msg + len, sizeof(msg) - len,
			" odpg=0x%x odprc=0x%x odpud=0x%x capx=0x%llx can=0x%x",
			m->odp_gen, m->odp_rc, m->odp_ud, m->capx, m->can);
	snprintf(msg + len, sizeof(msg) - len,
		 " mrflush=%d udpinned=%d rdatom=%u initrd=%u pull=%d plan=%s",
		 m->mr_flush, m->ud_pinned, m->rd_atom, m->init_rd_atom,
		 m->pull, m->plan);
	ri_send(r, "%s", msg);
}

static void ri_hello_parse(struct ri *r, const char *line)
{
	struct ri_side *p = &r->peer;
	char gid[40];
	int i;

	if (ri_kv_ull(line, "v") != 1)
		ri_fatal("the peer speaks another protocol version");
	if (!ri_kv(line, "dev", p->dev, sizeof(p->dev)) ||
	    !ri_kv(line, "gid", gid, sizeof(gid)) || strlen(gid) != 32 ||
	    !ri_kv(line, "plan", p->plan, sizeof(p->plan)))
		ri_fatal("bad HELLO: \"%.200s\"", line);
	for (i = 0; i < 16; i++) {
		unsigned int x;

		if (sscanf(gid + 2 * i, "%2x", &x) != 1)
			ri_fatal("bad GID in HELLO: %s", gid);
		p->gid.raw[i] = x;
	}
	p->qpn = ri_kv_ull(line, "qpn");
	p->psn = ri_kv_ull(line, "psn");
	p->ud_qpn = ri_kv_ull(line, "udqpn");
	p->lid = ri_kv_ull(line, "lid");
	p->mtu = ri_kv_ull(line, "mtu");
	p->mem = ri_kv_ull(line, "mem");
	p->addr = ri_kv_ull(line, "addr");
	p->len = ri_kv_ull(line, "len");
	p->rkey = ri_kv_ull(line, "rkey");
	p->odp_gen = ri_kv_ull(line, "odpg");
	p->odp_rc = ri_kv_ull(line, "odprc");
	p->odp_ud = ri_kv_ull(line, "odpud");
	p->capx = ri_kv_ull(line, "capx");
	p->can = ri_kv_ull(line, "can");
	p->mr_flush = ri_kv_ull(line, "mrflush");
	p->ud_pinned = ri_kv_ull(line, "udpinned");
	p->rd_atom = ri_kv_ull(line, "rdatom");
	p->init_rd_atom = ri_kv_ull(line, "initrd");
	p->pull = ri_kv_ull(line, "pull");
	if (p->mem >= MEM_NR || p->mtu < IBV_MTU_256 || p->mtu > IBV_MTU_4096)
		ri_fatal("bad HELLO values: mem %d mtu %d", p->mem, p->mtu);
}

static unsigned int ri_min3(unsigned int a, unsigned int b, unsigned int c)
{
	unsigned int m = a < b ? a : b;

	m = m < c ? m : c;
	return m ? m : 1;
}

static void ri_fill_me(struct ri *r)
{
	struct ri_side *m = &r->me;
	const struct ibv_odp_caps *odp = &r->ax.odp_caps;

	snprintf(m->dev, sizeof(m->dev), "%s", r->o.dev);
	m->qpn = r->rc.qp->qp_num;
	m->psn = ri_mix(r->o.seed ^ ri_now_ms() ^ getpid()) & 0xffffff;
	m->ud_qpn = r->ud.qp ? r->ud.qp->qp_num : 0;
	m->lid = r->v.port_attr.lid;
	m->gid = r->v.gid;
	m->mtu = r->v.port_attr.active_mtu;
	m->mem = r->o.mem;
	m->addr = (unsigned long long)(uintptr_t)r->buf;
	m->len = r->buf_len;
	m->rkey = r->mr->rkey;
	m->odp_gen = odp->general_caps;
	m->odp_rc = odp->per_transport_caps.rc_odp_caps;
	m->odp_ud = odp->per_transport_caps.ud_odp_caps;
	m->capx = r->ax.device_cap_flags_ex;
	m->mr_flush = r->mr_flush;
	m->ud_pinned = r->udbuf;
	m->rd_atom = r->v.dev_attr.max_qp_rd_atom;
	m->init_rd_atom = r->v.dev_attr.max_qp_init_rd_atom;
	m->pull = r->o.pull;
	ri_plan(&r->o, m->plan, sizeof(m->plan));
}

/* The client drives in this phase: who is driver, who servant. */
static const struct ri_side *ri_driver(struct ri *r, bool client_drives)
{
	return client_drives == r->client ? &r->me : &r->peer;
}

static const struct ri_side *ri_servant(struct ri *r, bool client_drives)
{
	return client_drives == r->client ? &r->peer : &r->me;
}

/* Whether ATOMIC_WRITE / FLUSH can run this phase; else why not. */
static bool ri_avail(struct ri *r, bool client_drives, enum ri_op op,
		     char *why, size_t n)
{
	const struct ri_side *d = ri_driver(r, client_drives);
	const struct ri_side *s = ri_servant(r, client_drives);
	bool aw = op == OP_ATOMIC_WRITE;
	const char *name = aw ? "ATOMIC_WRITE" : "FLUSH";
	unsigned long long cap = aw ? RI_DEVICE_ATOMIC_WRITE :
				      RI_DEVICE_FLUSH_GLOBAL;
	unsigned int odp = aw ? RI_ODP_SUPPORT_ATOMIC_WRITE :
				RI_ODP_SUPPORT_FLUSH;

	if (!(d->can & (aw ? RI_CAN_ATOMIC_WRITE : RI_CAN_FLUSH)))
		snprintf(why, n, "the %s's libibverbs cannot post %s (no ibv_qp_ex with it)",
			 d->name, name);
	else if (!(d->capx & cap))
		snprintf(why, n, "the %s's %s does not advertise %s", d->name,
			 d->dev, name);
	else if (!(s->capx & cap))
		snprintf(why, n, "the %s's %s does not advertise %s", s->name,
			 s->dev, name);
	else if (s->mem != MEM_PINNED && !(s->odp_rc & odp))
		snprintf(why, n, "the %s's rc_odp_caps lack %s", s->name, name);
	else if (!aw && !s->mr_flush)
		snprintf(why, n, "the %s's MR has no FLUSH_GLOBAL access",
			 s->name);
	else
		return true;
	return false;
}

static void ri_print_ops(unsigned int ops)
{
	int i, n = 0;

	for (i = 0; i < OP_PULL; i++)
		if (ops & (1U << i))
			printf("%s%s", n++ ? "," : "", ri_op_name[i]);
}

static void ri_print_side(const char *who, const struct ri_side *s)
{
	char gid[64], rc[96], ud[96];

	printf("# %s: %s gid %s mtu %zu mem=%s%s odp general 0x%x rc %s ud %s",
	       who, s->dev, ri_gid_str(&s->gid, gid, sizeof(gid)),
	       ri_mtu_bytes(s->mtu), ri_mem_name[s->mem],
	       s->ud_pinned ? " (UD: pinned)" : "", s->odp_gen,
	       ri_odp_bits(s->odp_rc, rc, sizeof(rc)),
	       ri_odp_bits(s->odp_ud, ud, sizeof(ud)));
	printf(" atomic_write %s flush %s, %s\n",
	       s->capx & RI_DEVICE_ATOMIC_WRITE ? "yes" : "no",
	       s->capx & RI_DEVICE_FLUSH_GLOBAL ?
	       (s->mr_flush ? "yes" : "yes (not on its MR)") : "no",
	       s->can == (RI_CAN_ATOMIC_WRITE | RI_CAN_FLUSH) ?
	       "can post both" : s->can == RI_CAN_ATOMIC_WRITE ?
	       "can post atomic_write only" : s->can == RI_CAN_FLUSH ?
	       "can post flush only" : "can post neither");
}

static void ri_print_setup(struct ri *r)
{
	char why[256];
	int i, c;

	printf("# rxe_interop %s: %s port %d gid-idx %d, %s, TCP %s port %s\n",
	       r->me.name, r->o.dev, r->o.ib_port, r->o.gid_idx, r->qpx_note,
	       r->client ? r->o.host : "listening on", r->o.port);
	ri_print_side("local ", &r->me);
	ri_print_side("remote", &r->peer);
	printf("# path mtu %zu, rd_atomic %u out / %u in, timeout-ms %d\n",
	       ri_mtu_bytes(r->path_mtu), r->rd_out, r->rd_in,
	       r->o.timeout_ms);
	printf("# plan: dir=%s ops=", ri_dir_name[r->o.dir]);
	ri_print_ops(r->o.ops);
	printf(" sizes=");
	for (i = 0; i < r->o.nsizes; i++)
		printf("%s%zu", i ? "," : "", r->o.sizes[i]);
	printf(" seed=%llu\n", r->o.seed);
	for (c = 1; c >= 0; c--) {
		if ((c && r->o.dir == DIR_SERVER) ||
		    (!c && r->o.dir == DIR_CLIENT))
			continue;
		if (r->o.ops & (1U << OP_ATOMIC_WRITE))
			printf("# %s atomic_write: %s\n", c ? "c2s" : "s2c",
			       ri_avail(r, c, OP_ATOMIC_WRITE, why, sizeof(why)) ?
			       "available" : why);
		if (r->o.ops & (1U << OP_FLUSH))
			printf("# %s flush: %s\n", c ? "c2s" : "s2c",
			       ri_avail(r, c, OP_FLUSH, why, sizeof(why)) ?
			       "available" : why);
	}
	if (r->o.churn && r->o.mem == MEM_PINNED)
		printf("# --churn does nothing with --mem pinned\n");
	fflush(stdout);
}

/* ---- churn ---- */

static void *ri_churn_main(void *arg)
{
	struct ri *r = arg;
	size_t off;

	while (!__atomic_load_n(&r->churn_stop, __ATOMIC_RELAXED)) {
		if (madvise(r->scratch, RI_SCRATCH, MADV_DONTNEED))
			break;
		for (off = 0; off < RI_SCRATCH; off += r->page)
			r->scratch[off] = (unsigned char)r->churn_rounds;
		__atomic_add_fetch(&r->churn_rounds, 1, __ATOMIC_RELAXED);
		sched_yield();
	}
	return NULL;
}

static void ri_churn_start(struct ri *r)
{
	int ret;

	if (!r->o.churn || r->o.mem == MEM_PINNED)
		return;
	ret = pthread_create(&r->churn_thr, NULL, ri_churn_main, r);
	if (ret)
		ri_fatal("pthread_create: %s", strerror(ret));
	r->churn_on = true;
}

static void ri_churn_stop(struct ri *r)
{
	if (!r->churn_on)
		return;
	__atomic_store_n(&r->churn_stop, 1, __ATOMIC_RELAXED);
	pthread_join(r->churn_thr, NULL);
	r->churn_on = false;
	printf("# churn: %lu rounds of MADV_DONTNEED over the scratch MiB\n",
	       __atomic_load_n(&r->churn_rounds, __ATOMIC_RELAXED));
}

/* ---- patterns: fill and check ---- */

/* The message byte after the last one: its offset in the source. */
struct ri_src_cur {
	const struct ri_seg	*seg;
	int			n, k;
	size_t			pos;
};

static size_t ri_src_next(struct ri_src_cur *c)
{
	while (c->k < c->n && c->pos == c->seg[c->k].len) {
		c->k++;
		c->pos = 0;
	}
	if (c->k == c->n)
		return 0;
	return c->seg[c->k].off + c->pos++;
}

/* Source segments: the pattern of (key, offset). Fill or check. */
static void ri_src_walk(unsigned char *base, const struct ri_seg *seg, int n,
			unsigned long long key, bool fill, struct ri_bad *bad)
{
	struct ri_pc pc = { .key = key };
	size_t a, end;
	int k;

	for (k = 0; k < n; k++) {
		end = seg[k].off + seg[k].len;
		for (a = seg[k].off; a < end; a++) {
			unsigned char w = ri_pc_byte(&pc, a);

			if (fill)
				base[a] = w;
			else if (base[a] != w)
				ri_bad_note(bad, "src", a - seg[k].off, a, w,
					    base[a]);
		}
	}
}

/* A destination: where the data lands and what it must be. */
struct ri_dst {
	const struct ri_seg	*seg;
	int			nseg;
	const struct ri_seg	*src;	/* the data: the pattern of these */
	int			nsrc;
	const unsigned char	*want;	/* or these bytes */
	size_t			grh;	/* skipped before each segment */
	bool			zero;	/* guards are zero (untouched page) */
	bool			unchanged;	/* check the prefill instead */
};

/* Only these ranges, in a fill (the edges after a MADV_DONTNEED). */
struct ri_only {
	size_t	lo[6], hi[6];
	int	n;
};

static bool ri_only_has(const struct ri_only *only, size_t a)
{
	int i;

	if (!only)
		return true;
	for (i = 0; i < only->n; i++)
		if (a >= only->lo[i] && a < only->hi[i])
			return true;
	return false;
}

/*
 * Fill: the guards with their pattern (or leave them, @d->zero), the data
 * with the complement of what must arrive. Check: every byte of both.
 */
static void ri_dst_walk(unsigned char *base, const struct ri_dst *d,
			unsigned long long key, bool fill,
			const struct ri_only *only, struct ri_bad *bad)
{
	struct ri_pc pat = { .key = key };
	struct ri_pc gp = { .key = key ^ RI_SALT_GUARD };
	struct ri_src_cur sc = { .seg = d->src, .n = d->nsrc };
	const char *what;
	unsigned char w;
	size_t m = 0, a, g0, end, idx;
	int k;

	for (k = 0; k < d->nseg; k++) {
		const struct ri_seg *s = &d->seg[k];

		g0 = s->off - d->grh - RI_GUARD;
		end = s->off + s->len;
		for (a = g0; a < end + RI_GUARD; a++) {
			bool data = a >= s->off && a < end;

			if (!data && a >= s->off - d->grh && a < s->off)
				continue;	/* the GRH of a UD receive */
			if (data) {
				w = d->want ? d->want[m] :
				    ri_pc_byte(&pat, ri_src_next(&sc));
				idx = m++;
				what = d->unchanged ? "dst (must be unchanged)" : "dst";
				if (fill || d->unchanged)
					w = ~w;
			} else {
				w = d->zero ? 0 : ri_pc_byte(&gp, a);
				idx = a < s->off ? a - g0 : a - end;
				what = a < s->off ? "guard-lo" : "guard-hi";
			}
			if (fill) {
				if ((!d->zero || data) && ri_only_has(only, a))
					base[a] = w;
			} else if (base[a] != w) {
				ri_bad_note(bad, what, idx, a, w, base[a]);
			}
		}
	}
}

/*
 * --churn on the servant: zap every page of the destination (guards and
 * GRH included), so that the responder must fault them all back in. The
 * pages that hold guard bytes are filled again; those that hold only
 * destination bytes stay unpopulated (zero) until the transfer writes them.
 */
static int ri_churn_dst(struct ri *r, unsigned char *base,
			const struct ri_dst *d, unsigned long long key)
{
	struct ri_only only = { .n = 0 };
	size_t lo, hi, off, end;
	int k;

	for (k = 0; k < d->nseg; k++) {
		off = d->seg[k].off;
		end = off + d->seg[k].len;
		lo = ri_round_down(off - d->grh - RI_GUARD, r->page);
		hi = ri_round_up(end + RI_GUARD, r->page);
		if (madvise(base + lo, hi - lo, MADV_DONTNEED))
			return -errno;
		only.lo[only.n] = lo;
		only.hi[only.n++] = ri_round_up(off, r->page);
		only.lo[only.n] = ri_round_down(end, r->page);
		only.hi[only.n++] = hi;
	}
	ri_dst_walk(base, d, key, true, &only, NULL);
	return 0;
}

/* ---- cases ---- */

static unsigned long long ri_case_key(struct ri *r, int phase, int no)
{
	return ri_mix(ri_mix(r->o.seed) ^ ((unsigned long long)phase << 32 | no));
}

/*
 * An unaligned offset for @need bytes below @limit: in some page, at its
 * start, middle, last bytes or anywhere, never a multiple of 8.
 */
static size_t ri_pick(struct ri *r, unsigned long long key, unsigned int salt,
		      size_t need, size_t limit)
{
	unsigned long long h = ri_mix(key ^ ((unsigned long long)salt << 40));
	size_t page = r->page, span = (limit - need) / page - 2, s;

	switch ((h >> 56) & 3) {
	case 0:
		s = page - 1 - (h >> 32) % 64;	/* crosses at once */
		break;
	case 1:
		s = 1 + (h >> 32) % 63;
		break;
	case 2:
		s = page / 2 + (h >> 32) % 64;
		break;
	default:
		s = 1 + (h >> 32) % (page - 2);
		break;
	}
	if (!(s & 7))
		s++;
	return (1 + h % span) * page + s;
}

/* Three non-empty lengths that add up to @size (>= 3). */
static void ri_split3(unsigned long long h, size_t size, size_t *len)
{
	size_t c1 = 1 + h % (size - 2);
	size_t c2 = c1 + 1 + (h >> 32) % (size - c1 - 1);

	len[0] = c1;
	len[1] = c2 - c1;
	len[2] = size - c2;
}

/* @n segments of @len, apart by guards and an unaligned gap. */
static void ri_layout(struct ri *r, unsigned long long key, unsigned int salt,
		      const size_t *len, int n, size_t limit,
		      struct ri_seg *seg)
{
	size_t need = 0, off;
	int k;

	for (k = 0; k < n; k++)
		need += len[k] + 2 * RI_GUARD + r->page;
	off = ri_pick(r, key, salt, need, limit);
	for (k = 0; k < n; k++) {
		seg[k].off = off;
		seg[k].len = len[k];
		off += len[k] + 2 * RI_GUARD + 1 +
		       ri_mix(key + salt + k) % (r->page - 1);
		if (!(off & 7))
			off++;
	}
}

/* An 8-aligned target for an atomic, with room for the guards. */
static size_t ri_atomic_off(struct ri *r, struct ri_case *c, int phase)
{
	unsigned long long h = ri_mix(c->key ^ 0xa7);
	size_t page = r->page, in_page = 8 * (16 + h % (page / 8 - 32));
	size_t limit = r->data_len - RI_FRESH_PAGES * page;
	size_t base;

	switch (c->at) {
	case AT_PAGE_END:
		return ri_pick(r, c->key, 9, 3 * page, limit) / page * page +
		       page - 8;
	case AT_FRESH:
		if (r->fresh_used == RI_FRESH_PER_PHASE)
			ri_fatal("out of untouched pages");
		base = limit + (phase * RI_FRESH_PER_PHASE + r->fresh_used++) *
		       page;
		c->fresh = true;
		return base + in_page;
	default:
		return ri_pick(r, c->key, 9, 3 * page, limit) / page * page +
		       in_page;
	}
}

static void ri_at_bytes(unsigned long long v, unsigned char *b)
{
	memcpy(b, &v, 8);
}

/* The atomic target's value before the case. */
static unsigned long long ri_at_old(const struct ri_case *c)
{
	struct ri_pc pc = { .key = c->key };
	unsigned char b[8];
	unsigned long long v;
	int i;

	if (c->fresh)
		return 0;
	for (i = 0; i < 8; i++)
		b[i] = ri_pc_byte(&pc, c->srv[0].off + i);
	memcpy(&v, b, 8);
	return v;
}

static unsigned long long ri_at_new(const struct ri_case *c)
{
	unsigned long long old = ri_at_old(c);

	switch (c->op) {
	case OP_FADD:
		return old + c->a;
	case OP_CSWAP:
		return old == c->a ? c->b : old;
	default:
		return c->a;	/* ATOMIC_WRITE */
	}
}

/* The driver's layout of case @c (op, size, at, key set). */
static void ri_case_layout(struct ri *r, struct ri_case *c, int phase)
{
	size_t limit = r->data_len - RI_FRESH_PAGES * r->page, len[3];
	unsigned long long h = ri_mix(c->key ^ RI_SALT_VALUE);

	c->ndrv = 1;
	c->nsrv = 1;
	len[0] = c->size;
	switch (c->op) {
	case OP_SEND3:
		c->ndrv = 3;
		c->nsrv = 3;
		ri_split3(ri_mix(c->key + 1), c->size, len);
		ri_layout(r, c->key, 1, len, 3, limit, c->drv);
		ri_split3(ri_mix(c->key + 2), c->size, len);
		ri_layout(r, c->key, 2, len, 3, limit, c->srv);
		return;
	case OP_UD_SEND:
		/* below RI_UDBUF: fits a pinned fallback buffer too */
		ri_layout(r, c->key, 1, len, 1, RI_UDBUF, c->drv);
		len[0] = c->size + RI_GRH;
		ri_layout(r, c->key, 2, len, 1, RI_UDBUF, c->srv);
		c->srv[0].off += RI_GRH;
		c->srv[0].len = c->size;
		return;
	case OP_FADD:
	case OP_CSWAP:
	case OP_ATOMIC_WRITE:
		c->size = 8;
		c->srv[0].off = ri_atomic_off(r, c, phase);
		c->srv[0].len = 8;
		if (c->op == OP_ATOMIC_WRITE) {
			c->ndrv = 0;
			c->a = h;
		} else {
			len[0] = 8;
			ri_layout(r, c->key, 1, len, 1, limit, c->drv);
			c->a = c->op == OP_FADD ? h : ri_at_old(c);
			c->b = ri_mix(h);
			if (c->op == OP_CSWAP && c->at == AT_PAGE_END)
				c->a ^= 1ULL << 63;	/* compare fails */
		}
		return;
	default:
		ri_layout(r, c->key, 1, len, 1, limit, c->drv);
		ri_layout(r, c->key, 2, len, 1, limit, c->srv);
		return;
	}
}

static void ri_segs_str(const struct ri_seg *s, int n, char *out, size_t size)
{
	size_t len = 0;
	int k;

	out[0] = '\0';
	for (k = 0; k < n && len < size; k++)
		len += snprintf(out + len, size - len, "%s%zu:%zu", k ? "," : "",
				s[k].off, s[k].len);
	if (!n)
		snprintf(out, size, "-");
}

static int ri_segs_parse(const char *s, struct ri_seg *seg, size_t limit)
{
	int n = 0;

	if (!strcmp(s, "-"))
		return 0;
	while (*s && n < 3) {
		char *end;

		seg[n].off = strtoull(s, &end, 10);
		if (*end != ':')
			return -1;
		seg[n].len = strtoull(end + 1, &end, 10);
		if (seg[n].off < RI_GUARD + RI_GRH || seg[n].len > RI_MAX_SIZE ||
		    seg[n].off + seg[n].len + RI_GUARD > limit)
			return -1;
		n++;
		if (*end == ',')
			end++;
		else if (*end)
			return -1;
		s = end;
	}
	return *s ? -1 : n;
}

static void ri_case_send(struct ri *r, const struct ri_case *c)
{
	char d[128], s[128], v[80];

	ri_segs_str(c->drv, c->ndrv, d, sizeof(d));
	ri_segs_str(c->srv, c->nsrv, s, sizeof(s));
	snprintf(v, sizeof(v), "key=0x%llx a=0x%llx b=0x%llx", c->key, c->a,
		 c->b);
	ri_send(r, "CASE n=%d op=%s size=%zu at=%d fresh=%d drv=%s srv=%s %s",
		c->no, ri_op_name[c->op], c->size, c->at, c->fresh, d, s, v);
}

static void ri_case_parse(struct ri *r, const char *line, struct ri_case *c)
{
	char v[256];
	int i;

	memset(c, 0, sizeof(*c));
	c->no = ri_kv_ull(line, "n");
	if (!ri_kv(line, "op", v, sizeof(v)))
		ri_fatal("CASE without op");
	for (i = 0; i < OP_NR; i++)
		if (!strcmp(v, ri_op_name[i]))
			break;
	if (i == OP_NR)
		ri_fatal("CASE with unknown op %s", v);
	c->op = i;
	c->size = ri_kv_ull(line, "size");
	c->at = ri_kv_ull(line, "at");
	c->fresh = ri_kv_ull(line, "fresh");
	c->key = ri_kv_ull(line, "key");
	c->a = ri_kv_ull(line, "a");
	c->b = ri_kv_ull(line, "b");
	if (!ri_kv(line, "drv", v, sizeof(v)))
		ri_fatal("CASE without drv");
	c->ndrv = ri_segs_parse(v, c->drv, r->peer.len);
	if (!ri_kv(line, "srv", v, sizeof(v)))
		ri_fatal("CASE without srv");
	c->nsrv = ri_segs_parse(v, c->srv, c->op == OP_UD_SEND && r->udbuf ?
				RI_UDBUF : r->data_len);
	if (c->ndrv < 0 || c->nsrv < 1 || c->size > RI_MAX_SIZE)
		ri_fatal("CASE with a bad layout: \"%.200s\"", line);
}

/* Memory of this side for case @c, and the name for its line. */
static unsigned char *ri_base(struct ri *r, enum ri_op op)
{
	return op == OP_UD_SEND && r->udbuf ? r->udbuf : r->buf;
}

static unsigned int ri_lkey(struct ri *r, enum ri_op op)
{
	return op == OP_UD_SEND && r->udmr ? r->udmr->lkey : r->mr->lkey;
}

static const char *ri_mem_of(const struct ri_side *s, enum ri_op op)
{
	return op == OP_UD_SEND && s->ud_pinned ? "pinned" : ri_mem_name[s->mem];
}

/*
 * Where case @c puts its data on the driver (@servant false: a READ, the
 * old value of FETCH_ADD/CMP_SWP) or on the servant, and what it must be.
 */
static void ri_case_dst(const struct ri_case *c, bool servant,
			struct ri_dst *d, unsigned char *want8)
{
	bool atomic = c->op == OP_FADD || c->op == OP_CSWAP ||
		      c->op == OP_ATOMIC_WRITE;

	memset(d, 0, sizeof(*d));
	if (c->op == OP_READ) {
		d->seg = c->drv;
		d->nseg = c->ndrv;
		d->src = c->srv;
		d->nsrc = c->nsrv;
	} else if (atomic && !servant) {
		d->seg = c->drv;
		d->nseg = 1;
		ri_at_bytes(ri_at_old(c), want8);
		d->want = want8;
	} else if (atomic) {
		d->seg = c->srv;
		d->nseg = 1;
		ri_at_bytes(ri_at_new(c), want8);
		d->want = want8;
		d->zero = c->fresh;
	} else {
		d->seg = c->srv;
		d->nseg = c->nsrv;
		d->src = c->drv;
		d->nsrc = c->ndrv;
		d->grh = c->op == OP_UD_SEND ? RI_GRH : 0;
		d->unchanged = c->op == OP_PULL;
	}
}

/* Print a case's line (both sides) and count it. */
static void ri_line(struct ri *r, bool cd, const char *v, enum ri_op op,
		    size_t size, const char *loff, const char *roff,
		    const char *text)
{
	printf("%s %s:%s size=%zu loff=%s roff=%s mem=%s/%s%s%s\n", v,
	       cd ? "c2s" : "s2c", ri_op_name[op], size, loff, roff,
	       ri_mem_of(&r->me, op), ri_mem_of(&r->peer, op),
	       *text ? " # " : "", text);
	fflush(stdout);
	if (!strcmp(v, "ok"))
		r->n_ok++;
	else if (!strcmp(v, "na"))
		r->n_na++;
	else
		r->n_fail++;
}

static void ri_off_str(const struct ri_seg *s, int n, char *out, size_t size)
{
	if (n)
		snprintf(out, size, "%zu", s[0].off);
	else
		snprintf(out, size, "-");
}

static const char ri_ud_note[] =
	"pinned UD buffer (its ud_odp_caps lack SEND/RECV)";

/* The driver's verdict: its line, and the servant's copy (RESULT). */
static void ri_finish(struct ri *r, const struct ri_case *c, bool cd,
		      const char *verdict, const char *why)
{
	const struct ri_side *s = ri_servant(r, cd), *d = ri_driver(r, cd);
	char text[1400], doff[32], soff[32];

	snprintf(text, sizeof(text), "%s", why);
	if (strcmp(verdict, "na")) {
		if (c->op == OP_FADD || c->op == OP_CSWAP ||
		    c->op == OP_ATOMIC_WRITE)
			ri_why(text, sizeof(text), "%s%s", ri_at_note[c->at],
			       c->op == OP_CSWAP && c->at == AT_PAGE_END ?
			       ", compare fails" : "");
		if (c->op == OP_UD_SEND && d->ud_pinned)
			ri_why(text, sizeof(text), "%s: %s", d->name, ri_ud_note);
		if (c->op == OP_UD_SEND && s->ud_pinned)
			ri_why(text, sizeof(text), "%s: %s", s->name, ri_ud_note);
	}
	ri_off_str(c->drv, c->ndrv, doff, sizeof(doff));
	ri_off_str(c->srv, c->nsrv, soff, sizeof(soff));
	ri_send(r, "RESULT v=%s op=%s size=%zu doff=%s soff=%s # %s", verdict,
		ri_op_name[c->op], c->size, doff, soff, text);
	ri_line(r, cd, verdict, c->op, c->size, doff, soff, text);
}

/* The servant's copy of a RESULT. */
static void ri_result(struct ri *r, const char *line, bool cd)
{
	char v[16], op[32], doff[32], soff[32];
	int i;

	if (!ri_kv(line, "v", v, sizeof(v)) || !ri_kv(line, "op", op, sizeof(op)) ||
	    !ri_kv(line, "doff", doff, sizeof(doff)) ||
	    !ri_kv(line, "soff", soff, sizeof(soff)))
		ri_fatal("bad RESULT: \"%.200s\"", line);
	for (i = 0; i < OP_NR; i++)
		if (!strcmp(op, ri_op_name[i]))
			break;
	if (i == OP_NR)
		ri_fatal("RESULT with unknown op %s", op);
	ri_line(r, cd, v, i, ri_kv_ull(line, "size"), soff, doff, ri_note(line));
}

/* ---- posting ---- */

enum ri_verb { V_WRITE, V_READ, V_SEND, V_FADD, V_CSWAP, V_AW, V_FLUSH };

struct ri_wr {
	enum ri_verb		verb;
	unsigned long long	wr_id;
	struct ibv_sge		sge[3];
	int			nsge;
	unsigned long long	raddr;
	unsigned int		rkey;
	unsigned long long	a, b;
	size_t			len;	/* FLUSH */
};

/*
 * ATOMIC_WRITE and FLUSH, through the extended API (rdma-core 44 has no
 * other way to post them). Returns 0 or a negative errno.
 */
static int ri_post_ex(struct ri *r, struct ri_wr *w)
{
	struct ibv_qp_ex *x = r->qpx;
	unsigned char aw[8];

	ibv_wr_start(x);
	x->wr_id = w->wr_id;
	x->wr_flags = IBV_SEND_SIGNALED;
	if (w->verb == V_AW) {
		ri_at_bytes(w->a, aw);
		ibv_wr_atomic_write(x, w->rkey, w->raddr, aw);
	} else {
		((struct ri_qp_ex_flush *)x)->wr_flush(x, w->rkey, w->raddr,
						       w->len, RI_FLUSH_GLOBAL,
						       RI_FLUSH_RANGE);
	}
	return -ibv_wr_complete(x);
}

/*
 * Post @w on the RC QP. Everything but ATOMIC_WRITE and FLUSH goes through
 * ibv_post_send(), also on an ibv_qp_ex (the two APIs may take turns on a
 * QP): rdma-core 44's rxe provider computes the length of a multi-SGE
 * ibv_wr_set_sge_list() wrongly (fixed in rdma-core 64). Returns 0 or a
 * negative errno.
 */
static int ri_post(struct ri *r, struct ri_wr *w)
{
	struct ibv_send_wr wr = {
		.wr_id = w->wr_id,
		.sg_list = w->sge,
		.num_sge = w->nsge,
		.send_flags = IBV_SEND_SIGNALED,
	};
	struct ibv_send_wr *bad = NULL;

	switch (w->verb) {
	case V_WRITE:
	case V_READ:
		wr.opcode = w->verb == V_WRITE ? IBV_WR_RDMA_WRITE :
						 IBV_WR_RDMA_READ;
		wr.wr.rdma.remote_addr = w->raddr;
		wr.wr.rdma.rkey = w->rkey;
		break;
	case V_SEND:
		wr.opcode = IBV_WR_SEND;
		break;
	case V_FADD:
	case V_CSWAP:
		wr.opcode = w->verb == V_FADD ? IBV_WR_ATOMIC_FETCH_AND_ADD :
						IBV_WR_ATOMIC_CMP_AND_SWP;
		wr.wr.atomic.remote_addr = w->raddr;
		wr.wr.atomic.rkey = w->rkey;
		wr.wr.atomic.compare_add = w->a;
		wr.wr.atomic.swap = w->b;
		break;
	default:
		/* ri_avail() made sure that the QP can post them */
		return ri_post_ex(r, w);
	}
	return -ibv_post_send(r->rc.qp, &wr, &bad);
}

/* rxe's hw counter @name of our port (hw_counters in sysfs), or -1. */
static long long ri_hw_counter(struct ri *r, const char *name)
{
	char path[256];
	long long val = -1;
	FILE *f;

	snprintf(path, sizeof(path),
		 "/sys/class/infiniband/%s/ports/%u/hw_counters/%s",
		 r->o.dev, r->v.cfg.port, name);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fscanf(f, "%lld", &val) != 1)
		val = -1;
	fclose(f);
	return val;
}

/*
 * Wait for the completion of @wr_id, @opcode: 0, or the reason in @why
 * and -1 (timeout, a completion that is not the one), or its wc status.
 * A timeout says what the requester did meanwhile (its retries, the
 * sequence NAKs and packets it got, the packets it sent): a requester
 * that still retries has a lossy or slow path, one that sent nothing has
 * stopped.
 */
static int ri_wait(struct ri *r, struct vu_qp *q, unsigned long long wr_id,
		   int opcode, const char *what, char *why, size_t n)
{
	static const char * const counters[] = {
		"completer_retry_err", "rcvd_seq_err", "rcvd_pkts", "sent_pkts",
	};
	long long before[ARRAY_SIZE(counters)];
	struct ibv_wc wc;
	size_t i;
	int ret;

	for (i = 0; i < ARRAY_SIZE(counters); i++)
		before[i] = ri_hw_counter(r, counters[i]);
	ret = vu_poll_one(&r->v, q, &wc);
	if (ret == -ETIMEDOUT) {
		long long d[ARRAY_SIZE(counters)];

		for (i = 0; i < ARRAY_SIZE(counters); i++)
			d[i] = ri_hw_counter(r, counters[i]) - before[i];
		ri_why(why, n,
		       "timeout: no %s completion in %d ms (meanwhile %lld retries, %lld seq NAKs, %lld packets in, %lld out)",
		       what, r->v.cfg.timeout_ms, d[0], d[1], d[2], d[3]);
		return -1;
	}
	if (ret) {
		ri_why(why, n, "ibv_poll_cq failed (%s)", what);
		return -1;
	}
	if (wc.status != IBV_WC_SUCCESS) {
		ri_why(why, n, "%s: wc status %d (%s) vendor_err 0x%x", what,
		       wc.status, ibv_wc_status_str(wc.status), wc.vendor_err);
		return wc.status;
	}
	if (wc.wr_id != wr_id || (int)wc.opcode != opcode) {
		ri_why(why, n, "%s: completion wr_id %llu opcode %d, want wr_id %llu opcode %d",
		       what, (unsigned long long)wc.wr_id, wc.opcode, wr_id,
		       opcode);
		return -1;
	}
	return 0;
}

static int ri_post_wait(struct ri *r, struct ri_wr *w, int opcode,
			const char *what, char *why, size_t n)
{
	int ret = ri_post(r, w);

	if (ret) {
		ri_why(why, n, "posting %s: %s", what, strerror(-ret));
		return -1;
	}
	return ri_wait(r, &r->rc, w->wr_id, opcode, what, why, n);
}

static int ri_post_ud(struct ri *r, struct ri_wr *w, char *why, size_t n)
{
	struct ibv_send_wr wr = {
		.wr_id = w->wr_id,
		.sg_list = w->sge,
		.num_sge = 1,
		.opcode = IBV_WR_SEND,
		.send_flags = IBV_SEND_SIGNALED,
	};
	struct ibv_send_wr *bad = NULL;
	int ret;

	wr.wr.ud.ah = r->ah;
	wr.wr.ud.remote_qpn = r->peer.ud_qpn;
	wr.wr.ud.remote_qkey = RI_QKEY;
	ret = ibv_post_send(r->ud.qp, &wr, &bad);
	if (ret) {
		ri_why(why, n, "posting the UD send: %s", strerror(ret));
		return -1;
	}
	return ri_wait(r, &r->ud, w->wr_id, IBV_WC_SEND, "UD send", why, n);
}

/* The driver's work requests of case @c. 0: all completed fine. */
static int ri_drive_post(struct ri *r, const struct ri_case *c, char *why,
			 size_t n)
{
	unsigned char *base = ri_base(r, c->op);
	unsigned int lkey = ri_lkey(r, c->op);
	struct ri_wr w = {
		.wr_id = (unsigned long long)c->no << 8,
		.nsge = c->ndrv,
		.raddr = r->peer.addr + c->srv[0].off,
		.rkey = r->peer.rkey,
		.a = c->a,
		.b = c->b,
	};
	int k, ret;

	for (k = 0; k < c->ndrv; k++) {
		w.sge[k].addr = (uintptr_t)(base + c->drv[k].off);
		w.sge[k].length = c->drv[k].len;
		w.sge[k].lkey = lkey;
	}
	switch (c->op) {
	case OP_UD_SEND:
		return ri_post_ud(r, &w, why, n);
	case OP_READ:
		w.verb = V_READ;
		return ri_post_wait(r, &w, IBV_WC_RDMA_READ, "read", why, n);
	case OP_SEND1:
	case OP_SEND3:
		w.verb = V_SEND;
		return ri_post_wait(r, &w, IBV_WC_SEND, "send", why, n);
	case OP_FADD:
		w.verb = V_FADD;
		return ri_post_wait(r, &w, IBV_WC_FETCH_ADD, "fetch_add", why,
				    n);
	case OP_CSWAP:
		w.verb = V_CSWAP;
		return ri_post_wait(r, &w, IBV_WC_COMP_SWAP, "cmp_swp", why, n);
	case OP_ATOMIC_WRITE:
		w.verb = V_AW;
		return ri_post_wait(r, &w, IBV_WC_ATOMIC_WRITE, "atomic_write",
				    why, n);
	default:
		break;
	}
	w.verb = V_WRITE;
	ret = ri_post_wait(r, &w, IBV_WC_RDMA_WRITE, "write", why, n);
	if (ret || c->op != OP_FLUSH)
		return ret;
	/* FLUSH the range just written */
	w.verb = V_FLUSH;
	w.wr_id++;
	w.nsge = 0;
	w.len = c->size;
	return ri_post_wait(r, &w, RI_WC_FLUSH, "flush", why, n);
}

/* ---- recovery ---- */

static unsigned int ri_new_psn(struct ri *r)
{
	return ri_mix(r->me.psn ^ ri_now_ms()) & 0xffffff;
}

/*
 * After a failed case: both sides' QP (RC or UD) through RESET to RTS. The
 * driver's goes to RESET first, so that nothing it still had in flight
 * (a send in an RNR loop, retries) reaches the servant's new connection.
 */
static void ri_recover(struct ri *r, bool ud)
{
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_RESET };
	unsigned int psn = ri_new_psn(r);
	char line[RI_LINE];

	ri_modify(ud ? r->ud.qp : r->rc.qp, &a, IBV_QP_STATE, "RESET");
	ri_send(r, "RECOVER ud=%d psn=%u", ud, psn);
	ri_expect(r, "RECOVERED", line, sizeof(line));
	if (ud)
		ri_ud_connect(r);
	else
		ri_rc_connect(r, psn, ri_kv_ull(line, "psn"));
	printf("# recovered: the %s QPs went through RESET to RTS again\n",
	       ud ? "UD" : "RC");
}

static void ri_serve_recover(struct ri *r, const char *line)
{
	bool ud = ri_kv_ull(line, "ud");
	unsigned int psn = ri_new_psn(r);

	if (ud)
		ri_ud_connect(r);
	else
		ri_rc_connect(r, psn, ri_kv_ull(line, "psn"));
	ri_send(r, "RECOVERED psn=%u", psn);
	printf("# recovered: the %s QPs went through RESET to RTS again\n",
	       ud ? "UD" : "RC");
}

/* ---- the servant ---- */

static bool ri_churning(struct ri *r, enum ri_op op)
{
	return r->o.churn && r->o.mem != MEM_PINNED && op != OP_PULL &&
	       !(op == OP_UD_SEND && r->udbuf);
}

static void ri_serve_post_recv(struct ri *r, struct ri_case *c, char *why,
			       size_t n)
{
	unsigned char *base = ri_base(r, c->op);
	size_t grh = c->op == OP_UD_SEND ? RI_GRH : 0;
	struct ibv_recv_wr wr = {
		.wr_id = c->no,
		.num_sge = c->nsrv,
	}, *bad = NULL;
	struct ibv_sge sge[3];
	int k, ret;

	for (k = 0; k < c->nsrv; k++) {
		sge[k].addr = (uintptr_t)(base + c->srv[k].off - grh);
		sge[k].length = c->srv[k].len + grh;
		sge[k].lkey = ri_lkey(r, c->op);
	}
	wr.sg_list = sge;
	ret = ibv_post_recv(c->op == OP_UD_SEND ? r->ud.qp : r->rc.qp, &wr,
			    &bad);
	if (ret)
		ri_why(why, n, "%s: ibv_post_recv: %s", r->me.name,
		       strerror(ret));
	else
		c->recv_posted = true;
}

static void ri_serve_prep(struct ri *r, struct ri_case *c)
{
	unsigned char *base = ri_base(r, c->op), want[8];
	char why[256] = "";
	struct ri_dst d;
	int ret;

	switch (c->op) {
	case OP_READ:
		ri_src_walk(base, c->srv, c->nsrv, c->key, true, NULL);
		break;
	case OP_FADD:
	case OP_CSWAP:
	case OP_ATOMIC_WRITE:
		if (c->fresh)
			break;	/* nobody touches that page before the case */
		ri_case_dst(c, true, &d, want);
		ri_dst_walk(base, &d, c->key, true, NULL, NULL);
		ri_src_walk(base, c->srv, 1, c->key, true, NULL);
		break;
	default:
		ri_case_dst(c, true, &d, want);
		ri_dst_walk(base, &d, c->key, true, NULL, NULL);
		if (ri_churning(r, c->op)) {
			ret = ri_churn_dst(r, base, &d, c->key);
			if (ret)
				ri_why(why, sizeof(why), "%s: madvise: %s",
				       r->me.name, strerror(-ret));
		}
		if (!why[0] && (c->op == OP_SEND1 || c->op == OP_SEND3 ||
				c->op == OP_UD_SEND))
			ri_serve_post_recv(r, c, why, sizeof(why));
		break;
	}
	ri_send(r, "PREP ok=%d%s%s", !why[0], why[0] ? " # " : "", why);
}

static void ri_serve_recv_wc(struct ri *r, const struct ri_case *c,
			     const struct ibv_wc *wc, char *why, size_t n,
			     bool *recover)
{
	bool ud = c->op == OP_UD_SEND;
	size_t len = c->size + (ud ? RI_GRH : 0);

	if (wc->status != IBV_WC_SUCCESS) {
		ri_why(why, n, "%s receive: wc status %d (%s) vendor_err 0x%x",
		       r->me.name, wc->status, ibv_wc_status_str(wc->status),
		       wc->vendor_err);
		*recover = true;
		return;
	}
	if (wc->wr_id != (unsigned int)c->no || wc->opcode != IBV_WC_RECV ||
	    wc->byte_len != len)
		ri_why(why, n, "%s receive: wr_id/opcode/byte_len %llu/%d/%u, want %d/%d/%zu",
		       r->me.name, (unsigned long long)wc->wr_id, wc->opcode,
		       wc->byte_len, c->no, IBV_WC_RECV, len);
	if (ud && (!(wc->wc_flags & IBV_WC_GRH) || wc->src_qp != r->peer.ud_qpn))
		ri_why(why, n, "%s UD receive: wc_flags 0x%x src_qp %u, want GRH from QP %u",
		       r->me.name, wc->wc_flags, wc->src_qp, r->peer.ud_qpn);
}

static void ri_serve_check(struct ri *r, struct ri_case *c, const char *line)
{
	unsigned char *base = ri_base(r, c->op), want[8];
	struct vu_qp *q = c->op == OP_UD_SEND ? &r->ud : &r->rc;
	struct ri_bad bad = { .side = r->me.name };
	bool ok = !ri_kv_ull(line, "st"), recover = false;
	enum ibv_qp_state state;
	char why[1024] = "";
	struct ri_dst d;
	struct ibv_wc wc;
	int ret;

	if (c->recv_posted) {
		/* the driver's send completed: so must the receive */
		if (ok)
			ret = vu_poll_one(&r->v, q, &wc);
		else
			ret = ibv_poll_cq(q->cq, 1, &wc) == 1 ? 0 : -ETIMEDOUT;
		if (ret) {
			ri_why(why, sizeof(why), "%s: no receive completion%s",
			       r->me.name, ok ? " (timeout)" : "");
			recover = true;
		} else {
			ri_serve_recv_wc(r, c, &wc, why, sizeof(why), &recover);
		}
	}
	if (c->op == OP_READ) {
		/* the responder must not have written its source */
		ri_src_walk(base, c->srv, c->nsrv, c->key, false, &bad);
	} else {
		ri_case_dst(c, true, &d, want);
		ri_dst_walk(base, &d, c->key, false, NULL, &bad);
	}
	ri_why_bad(why, sizeof(why), &bad);
	state = ri_qp_state(q->qp);
	if (state != IBV_QPS_RTS && c->op != OP_PULL) {
		ri_why(why, sizeof(why), "%s QP in state %d, not RTS",
		       r->me.name, state);
		recover = true;
	}
	ri_send(r, "CHECK ok=%d recover=%d%s%s", !why[0], recover,
		why[0] ? " # " : "", why);
}

/* Serve one phase: until END. */
static void ri_serve(struct ri *r, bool cd)
{
	char line[RI_LINE];
	struct ri_case c;
	bool have = false;

	memset(&c, 0, sizeof(c));
	for (;;) {
		ri_recv(r, line, sizeof(line));
		if (!strcmp(line, "END"))
			return;
		if (!strncmp(line, "CASE ", 5)) {
			ri_case_parse(r, line, &c);
			have = true;
			ri_serve_prep(r, &c);
		} else if (!strncmp(line, "DONE ", 5) && have) {
			ri_serve_check(r, &c, line);
			have = false;
		} else if (!strncmp(line, "RESULT ", 7)) {
			ri_result(r, line, cd);
		} else if (!strncmp(line, "RECOVER ", 8)) {
			ri_serve_recover(r, line);
		} else {
			ri_fatal("side channel: unexpected \"%.80s\"", line);
		}
	}
}

/* ---- the driver ---- */

static void ri_case_init(struct ri *r, struct ri_case *c, int phase, int no,
			 enum ri_op op, size_t size, int at)
{
	memset(c, 0, sizeof(*c));
	c->no = no;
	c->op = op;
	c->size = size;
	c->at = at;
	c->key = ri_case_key(r, phase, no);
}

static void ri_drive_case(struct ri *r, struct ri_case *c, int phase, bool cd)
{
	unsigned char *base = ri_base(r, c->op), want[8];
	struct vu_qp *q = c->op == OP_UD_SEND ? &r->ud : &r->rc;
	struct ri_bad bad = { .side = r->me.name };
	bool recover = false, local_dst;
	char why[1024] = "", line[RI_LINE];
	struct ri_dst d;

	if ((c->op == OP_ATOMIC_WRITE || c->op == OP_FLUSH) &&
	    !ri_avail(r, cd, c->op, why, sizeof(why)))
		return ri_finish(r, c, cd, "na", why);
	ri_case_layout(r, c, phase);

	local_dst = c->op == OP_READ || c->op == OP_FADD || c->op == OP_CSWAP;
	if (local_dst) {
		ri_case_dst(c, false, &d, want);
		ri_dst_walk(base, &d, c->key, true, NULL, NULL);
	} else {
		ri_src_walk(base, c->drv, c->ndrv, c->key, true, NULL);
	}
	ri_case_send(r, c);
	ri_expect(r, "PREP", line, sizeof(line));
	if (!ri_kv_ull(line, "ok")) {
		ri_why(why, sizeof(why), "%s", ri_note(line));
		return ri_finish(r, c, cd, "FAIL", why);
	}

	if (ri_drive_post(r, c, why, sizeof(why)))
		recover = true;
	ri_send(r, "DONE st=%d", recover);
	ri_expect(r, "CHECK", line, sizeof(line));
	if (!ri_kv_ull(line, "ok"))
		ri_why(why, sizeof(why), "%s", ri_note(line));
	if (ri_kv_ull(line, "recover"))
		recover = true;

	if (local_dst)
		ri_dst_walk(base, &d, c->key, false, NULL, &bad);
	else
		ri_src_walk(base, c->drv, c->ndrv, c->key, false, &bad);
	ri_why_bad(why, sizeof(why), &bad);
	if (!recover && ri_qp_state(q->qp) != IBV_QPS_RTS) {
		ri_why(why, sizeof(why), "%s QP in state %d, not RTS",
		       r->me.name, ri_qp_state(q->qp));
		recover = true;
	}
	ri_finish(r, c, cd, why[0] ? "FAIL" : "ok", why);
	if (recover)
		ri_recover(r, c->op == OP_UD_SEND);
}

static bool ri_seen(const size_t *sizes, int n, size_t size)
{
	int i;

	for (i = 0; i < n; i++)
		if (sizes[i] == size)
			return true;
	return false;
}

/* Drive one phase: every op of the plan, every size. */
static void ri_drive(struct ri *r, int phase, bool cd)
{
	size_t mtu = ri_mtu_bytes(r->path_mtu), done[RI_MAX_SIZES], size;
	struct ri_case c;
	int no = 0, op, i, nd, at;

	r->fresh_used = 0;
	for (op = 0; op < OP_PULL; op++) {
		if (!(r->o.ops & (1U << op)))
			continue;
		if (op == OP_FADD || op == OP_CSWAP || op == OP_ATOMIC_WRITE) {
			for (at = 0; at < AT_NR; at++) {
				ri_case_init(r, &c, phase, no++, op, 8, at);
				ri_drive_case(r, &c, phase, cd);
			}
			continue;
		}
		nd = 0;
		for (i = 0; i < r->o.nsizes; i++) {
			size = r->o.sizes[i];
			if (op == OP_UD_SEND) {
				/* UD: at most one packet of the path MTU */
				size = size < mtu ? size : mtu;
				if (ri_seen(done, nd, size))
					continue;
				done[nd++] = size;
			}
			/* three non-empty SGEs need three bytes */
			if (op == OP_SEND3 && size < 3)
				continue;
			ri_case_init(r, &c, phase, no++, op, size, 0);
			ri_drive_case(r, &c, phase, cd);
		}
	}
	ri_send(r, "END");
}

/* ---- the cable pull ---- */

/* "tc qdisc VERB dev IFACE root [REST]": its exit status. */
static int ri_tc(struct ri *r, const char *verb, const char *rest)
{
	char cmd[256];
	int ret;

	snprintf(cmd, sizeof(cmd),
		 "PATH=\"$PATH:/usr/sbin:/sbin\" tc qdisc %s dev %s root%s%s >&2",
		 verb, r->o.pull, rest ? " " : "", rest ? rest : "");
	fflush(stdout);
	ret = system(cmd);
	if (ret == -1)
		return -1;
	if (WIFEXITED(ret))
		return WEXITSTATUS(ret);
	return 128 + WTERMSIG(ret);
}

static void ri_atexit(void)
{
	struct ri *r = ri_g;

	if (r && r->qdisc_set) {
		r->qdisc_set = false;
		ri_tc(r, "del", NULL);
	}
}

/* The peer's GID is one of this port's: its packets never leave the device. */
static bool ri_same_device(struct ri *r)
{
	union ibv_gid gid;
	int i;

	for (i = 0; i < r->v.port_attr.gid_tbl_len; i++)
		if (!ibv_query_gid(r->v.ctx, r->o.ib_port, i, &gid) &&
		    !memcmp(&gid, &r->peer.gid, sizeof(gid)))
			return true;
	return false;
}

/*
 * 100% loss on the interface: the WRITE must run out of retries, write
 * nothing, and leave the QP in the error state, where the next work
 * request is flushed.
 */
static void ri_drive_pull(struct ri *r, int phase, bool cd)
{
	char why[1024] = "", line[RI_LINE];
	struct ri_wr w = { .verb = V_WRITE, .nsge = 1 };
	long long start, ms = 0;
	struct ri_case c;
	struct ibv_wc wc;
	int ret, st = -1;

	ri_case_init(r, &c, phase, 0, OP_PULL, RI_PULL_SIZE, 0);
	if (ri_same_device(r)) {
		snprintf(why, sizeof(why), "the peer is on this %s: no packet passes %s's qdisc",
			 r->o.dev, r->o.pull);
		ri_finish(r, &c, cd, "na", why);
		ri_send(r, "END");
		return;
	}
	r->retry_cnt = RI_PULL_RETRY_CNT;
	ri_recover(r, false);
	ri_case_layout(r, &c, phase);
	ri_src_walk(r->buf, c.drv, c.ndrv, c.key, true, NULL);
	ri_case_send(r, &c);
	ri_expect(r, "PREP", line, sizeof(line));
	if (!ri_kv_ull(line, "ok")) {
		ri_why(why, sizeof(why), "%s", ri_note(line));
		goto finish;
	}

	ret = ri_tc(r, "replace", "netem loss 100%");
	if (ret) {
		ri_why(why, sizeof(why), "tc qdisc replace dev %s root netem loss 100%%: exit %d",
		       r->o.pull, ret);
	} else {
		r->qdisc_set = true;
		w.wr_id = 0x9000;
		w.sge[0].addr = (uintptr_t)(r->buf + c.drv[0].off);
		w.sge[0].length = c.drv[0].len;
		w.sge[0].lkey = r->mr->lkey;
		w.raddr = r->peer.addr + c.srv[0].off;
		w.rkey = r->peer.rkey;
		start = ri_now_ms();
		ret = ri_post(r, &w);
		if (!ret) {
			r->v.cfg.timeout_ms = RI_PULL_MS;
			ret = vu_poll_one(&r->v, &r->rc, &wc);
			r->v.cfg.timeout_ms = r->o.timeout_ms;
			ms = ri_now_ms() - start;
			if (ret)
				ri_why(why, sizeof(why), "timeout: none in %d s at 100%% loss (%s)",
				       RI_PULL_MS / 1000, "timeout 14, retry_cnt 6");
			else
				st = wc.status;
		} else {
			ri_why(why, sizeof(why), "posting the write: %s",
			       strerror(-ret));
		}
		r->qdisc_set = false;
		ret = ri_tc(r, "del", NULL);
		if (ret)
			ri_why(why, sizeof(why), "tc qdisc del dev %s root: exit status %d",
			       r->o.pull, ret);
		if (st == IBV_WC_SUCCESS)
			ri_why(why, sizeof(why), "the write succeeded at 100%% loss on %s (%s)",
			       r->o.pull, "is the peer reached through it?");
		else if (st >= 0 && st != IBV_WC_RETRY_EXC_ERR)
			ri_why(why, sizeof(why), "wc status %d (%s), want %d (%s)",
			       st, ibv_wc_status_str(st), IBV_WC_RETRY_EXC_ERR,
			       ibv_wc_status_str(IBV_WC_RETRY_EXC_ERR));
	}
	ri_send(r, "DONE st=1");
	ri_expect(r, "CHECK", line, sizeof(line));
	if (!ri_kv_ull(line, "ok"))
		ri_why(why, sizeof(why), "%s", ri_note(line));

	if (st == IBV_WC_RETRY_EXC_ERR) {
		/* the QP is in error: the next work request is flushed */
		if (vu_wait_qp_state(&r->v, r->rc.qp, IBV_QPS_ERR))
			ri_why(why, sizeof(why), "QP state %d after RETRY_EXC_ERR, not ERR",
			       ri_qp_state(r->rc.qp));
		w.wr_id++;
		ret = ri_post(r, &w);
		if (ret) {
			ri_why(why, sizeof(why), "posting after the error: %s",
			       strerror(-ret));
		} else if (vu_poll_one(&r->v, &r->rc, &wc)) {
			ri_why(why, sizeof(why), "timeout: no completion of the next WR in %d ms",
			       r->o.timeout_ms);
		} else if (wc.status != IBV_WC_WR_FLUSH_ERR) {
			ri_why(why, sizeof(why), "next WR: wc status %d (%s), want %d (%s)",
			       wc.status, ibv_wc_status_str(wc.status),
			       IBV_WC_WR_FLUSH_ERR,
			       ibv_wc_status_str(IBV_WC_WR_FLUSH_ERR));
		}
	}
	if (!why[0])
		snprintf(why, sizeof(why), "RETRY_EXC_ERR after %lld.%03lld s, %s",
			 ms / 1000, ms % 1000,
			 "nothing written, the next WR flushed");
	else
		goto finish;
	ri_finish(r, &c, cd, "ok", why);
	ri_send(r, "END");
	return;
finish:
	ri_finish(r, &c, cd, "FAIL", why);
	ri_send(r, "END");
}

/* ---- main ---- */

static void ri_cleanup(struct ri *r)
{
	if (r->ah)
		ibv_destroy_ah(r->ah);
	if (r->ud.qp)
		ibv_destroy_qp(r->ud.qp);
	if (r->ud.cq)
		ibv_destroy_cq(r->ud.cq);
	if (r->rc.qp)
		ibv_destroy_qp(r->rc.qp);
	if (r->rc.cq)
		ibv_destroy_cq(r->rc.cq);
	vu_dereg_mr(&r->v, r->udmr);
	vu_dereg_mr(&r->v, r->mr);
	if (r->udbuf)
		munmap(r->udbuf, RI_UDBUF);
	munmap(r->buf, r->buf_len);
	vu_close(&r->v);
	if (r->conn.fd >= 0)
		close(r->conn.fd);
}

/* Which side pulls the cable, if any (false: none). */
static bool ri_pull_phase(struct ri *r, bool *cd)
{
	*cd = r->o.dir != DIR_SERVER;
	if (r->o.pull && *cd != r->client)
		printf("# --pull %s ignored: with --dir %s only the %s pulls\n",
		       r->o.pull, ri_dir_name[r->o.dir],
		       *cd ? "client" : "server");
	return *cd == r->client ? r->me.pull : r->peer.pull;
}

int main(int argc, char **argv)
{
	static struct ri ri;
	struct ri *r = &ri;
	char line[RI_LINE];
	bool cd;
	int i;

	setvbuf(stdout, NULL, _IOLBF, 0);
	ri_g = r;
	r->conn.fd = -1;
	r->retry_cnt = RI_RETRY_CNT;
	ri_parse_args(&r->o, argc, argv);
	r->client = !r->o.server;
	r->me.name = r->client ? "client" : "server";
	r->peer.name = r->client ? "server" : "client";
	r->conn.timeout_ms = RI_TCP_MS + 2 * r->o.timeout_ms + RI_PULL_MS;
	atexit(ri_atexit);

	ri_open(r);
	ri_check_odp(r);
	ri_alloc(r);
	ri_create_qps(r);
	ri_fill_me(r);
	ri_tcp_setup(r);
	ri_hello_send(r);
	ri_expect(r, "HELLO", line, sizeof(line));
	ri_hello_parse(r, line);
	if (strcmp(r->me.plan, r->peer.plan))
		ri_fatal("--dir, --ops, --sizes or --seed differ: %s here, %s on the %s",
			 r->me.plan, r->peer.plan, r->peer.name);
	r->path_mtu = r->me.mtu < r->peer.mtu ? r->me.mtu : r->peer.mtu;
	r->rd_out = ri_min3(RI_RD_ATOMIC, r->me.init_rd_atom, r->peer.rd_atom);
	r->rd_in = ri_min3(RI_RD_ATOMIC, r->me.rd_atom, r->peer.init_rd_atom);
	ri_rc_connect(r, r->me.psn, r->peer.psn);
	if (r->ud.qp) {
		ri_ud_connect(r);
		ri_create_ah(r);
	}
	/* both QPs are past RTR before anything is sent */
	ri_send(r, "READY");
	ri_expect(r, "READY", line, sizeof(line));
	ri_print_setup(r);
	r->started = true;
	ri_churn_start(r);

	for (i = 0; i < 2; i++) {
		cd = i == 0;	/* the client drives first */
		if ((cd && r->o.dir == DIR_SERVER) ||
		    (!cd && r->o.dir == DIR_CLIENT))
			continue;
		if (cd == r->client)
			ri_drive(r, i, cd);
		else
			ri_serve(r, cd);
	}
	if (ri_pull_phase(r, &cd)) {
		if (cd == r->client)
			ri_drive_pull(r, 2, cd);
		else
			ri_serve(r, cd);
	}

	ri_churn_stop(r);
	ri_send(r, "BYE");
	ri_expect(r, "BYE", line, sizeof(line));
	r->connected = false;
	ri_print_summary(r);
	ri_cleanup(r);
	return r->n_fail ? 1 : 0;
}
