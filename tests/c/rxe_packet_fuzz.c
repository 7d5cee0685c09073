// SPDX-License-Identifier: GPL-2.0
/*
 * rxe_packet_fuzz - crafted RoCEv2 packets from a peer that is no rxe
 * (reliability.md §8 #24; issue 12): our rxe must drop them or NAK them,
 * never oops or WARN, never write where no valid packet wrote, and keep
 * its QP usable once reset.
 *
 * Set-up: a veth pair; rxefz on its end in this network namespace
 * (10.77.0.1), its other end in namespace odpfz (10.77.0.2), where the
 * test's "peer" is a raw IP socket (the packets: IPv4, UDP to port 4791,
 * BTH and extension headers, payload, pad and a valid ICRC that this
 * file computes as rxe_icrc.c checks it) and a UDP socket on port 4791
 * that receives what rxe answers. rxe's RC QP is connected to QP 0x4242
 * at 10.77.0.2; no rxe QP is behind it.
 *
 * The targets: a pinned MR, an ODP MR the CPU has faulted in, an ODP MR
 * nobody has touched, a 2 KiB type 1 memory window in the middle of the
 * pinned MR, and the process's implicit ODP MR; every byte is tagged and
 * has a shadow copy. Each round sends one packet of a family, then a
 * probe: a valid 8-byte READ of a pinned probe page at the expected PSN.
 * The families:
 *  - bad_icrc:   a valid WRITE with its ICRC flipped           (dropped)
 *  - opcode:     random opcode and header bytes, a bad rkey   (either)
 *  - range:      WRITE, READ, atomics, ATOMIC_WRITE and FLUSH with a
 *                valid rkey but a range across an end, before the start,
 *                wrapping past 2^64 or 2 GiB long; an MW rkey outside its
 *                window; the implicit rkey beyond the user address space
 *                                                            (NAK, error)
 *  - length:     payload longer or shorter than the RETH's length, past
 *                the MTU, a WRITE_FIRST shorter than the MTU, a wrong pad
 *                                                            (NAK, error)
 *  - truncated:  a valid WRITE cut short, or with bytes after its ICRC
 *                                                             (dropped)
 *  - psn:        a valid WRITE of marker bytes at a PSN ahead of or
 *                behind the expected one             (NAK sequence, or a
 *                                               duplicate: never executed)
 *  - dup_read:   the last probe's READ again (a duplicate) with a range
 *                that wraps past 2^64 or runs past the original's: the
 *                replay is refused and the QP lives. Found: rxe accepted
 *                the wrapping one (iova + resid <= va_org + length), then
 *                failed the copy and NAKed: any stale duplicate could
 *                kill the QP. Patch 0009 fixes it (mutation: its old
 *                check restored, round 6 of seed 1188625343 fails with
 *                "after a dup_read packet the probe got a NAK (syndrome
 *                0x62)")
 *  - atomic:     a misaligned atomic                         (NAK, error)
 * Rounds whose family must be dropped or ignored require the probe's
 * answer; the others take the QP's NAK and error state, then reset it.
 * Every few rounds and at the end, every target byte must equal its
 * shadow, and at the end a valid WRITE from the peer must land exactly.
 *
 * Rounds: tu_rounds(300, 3000); the seed is printed (tu_seed()).
 *
 * Two cases make the peer a responder to rxe's requests instead:
 * stray_response_fails_the_request (a response that fits no request)
 * and retransmission_keeps_each_psn (an ACK that crosses a
 * retransmission).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "verbs_util.h"
#include "test_util.h"

#define FZ_DEV		"rxefz"
#define FZ_NS		"odpfz"
#define FZ_LOCAL	"10.77.0.1"
#define FZ_PEER		"10.77.0.2"
#define ROCE_PORT	4791
#define PEER_QPN	0x4242
#define REGION		(4 * 4096)
#define WIN_OFF		(4096 + 1024)
#define WIN_LEN		2048
#define MARKER		0xee
#define PROBE_WAIT_MS	tu_ms(3000)
#define TASK_END	0x7ffffffff000ULL	/* x86-64 4-level TASK_SIZE */

/* BTH opcodes of the RC transport (IBA table 38) */
enum {
	OP_SEND_ONLY = 0x04, OP_WRITE_FIRST = 0x06, OP_WRITE_ONLY = 0x0a,
	OP_READ_REQ = 0x0c, OP_READ_RESP_FIRST = 0x0d,
	OP_READ_RESP_MIDDLE = 0x0e, OP_READ_RESP_LAST = 0x0f,
	OP_READ_RESP_ONLY = 0x10, OP_ACK = 0x11,
	OP_CMP_SWAP = 0x13, OP_FETCH_ADD = 0x14, OP_FLUSH = 0x1c,
	OP_ATOMIC_WRITE = 0x1d,
};

/* Bytes of BTH and extension headers of an RC opcode; 12 if unknown. */
static size_t hdr_len(uint8_t op)
{
	switch (op) {
	case 0x03: case 0x05: case 0x09: case 0x16: case 0x17:
		return 16;			/* + ImmDt or IETH */
	case 0x06: case 0x0a: case 0x0c: case 0x1d:
		return 28;			/* + RETH */
	case 0x0b:
		return 32;			/* + RETH, ImmDt */
	case 0x0d: case 0x0f: case 0x10: case 0x11:
		return 16;			/* + AETH */
	case 0x12:
		return 24;			/* + AETH, AtomicAckETH */
	case 0x13: case 0x14:
		return 40;			/* + AtomicETH */
	case 0x1c:
		return 32;			/* + FETH, RETH */
	default:
		return 12;
	}
}

/* ---- the wire format ---------------------------------------------------- */

static uint32_t crc_table[256];

static void crc_init(void)
{
	uint32_t c, i, k;

	for (i = 0; i < 256; i++) {
		for (c = i, k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320 ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
}

/* crc32_le() of the kernel: reflected, no inversion */
static uint32_t crc_update(uint32_t crc, const uint8_t *p, size_t n)
{
	while (n--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}

struct fz_pkt {
	uint8_t		b[4096];
	size_t		len;		/* IP header to ICRC */
};

#define IPH	20
#define UDPH	8
#define BTH_AT	(IPH + UDPH)

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, v >> 16);
	put16(p + 2, v);
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, v >> 32);
	put32(p + 4, v);
}

/*
 * Build IPv4 + UDP + BTH (to QP @qpn: @op, @psn, ack request) + @ext
 * (the extension headers, hdr_len(@op) - 12 bytes) + @pay + pad + ICRC
 * into @k. The
 * IP header is the one the kernel sends for a raw socket (it sets only
 * the checksum), so the ICRC covers what rxe will see.
 */
static void build(struct fz_pkt *k, uint32_t qpn, uint8_t op, uint32_t psn,
		  const uint8_t *ext, size_t ext_len,
		  const uint8_t *pay, size_t pay_len)
{
	uint8_t *ip = k->b, *udp = k->b + IPH, *bth = k->b + BTH_AT;
	uint8_t pseudo[IPH + UDPH + 12];
	size_t pad = (4 - (pay_len & 3)) & 3;
	size_t roce = 12 + ext_len + pay_len + pad + 4;
	uint32_t crc;

	memset(k->b, 0, BTH_AT + 12);
	ip[0] = 0x45;
	put16(ip + 2, IPH + UDPH + roce);
	put16(ip + 4, 0x1234);		/* fixed: the ICRC covers it */
	put16(ip + 6, 0x4000);		/* DF */
	ip[8] = 64;
	ip[9] = IPPROTO_UDP;
	inet_pton(AF_INET, FZ_PEER, ip + 12);
	inet_pton(AF_INET, FZ_LOCAL, ip + 16);
	put16(udp, 0xc000 | (psn & 0x3fff));
	put16(udp + 2, ROCE_PORT);
	put16(udp + 4, UDPH + roce);
	bth[0] = op;
	bth[1] = pad << 4;
	put16(bth + 2, 0xffff);
	put32(bth + 4, qpn & 0xffffff);
	put32(bth + 8, (1U << 31) | (psn & 0xffffff));
	memcpy(bth + 12, ext, ext_len);
	memcpy(bth + 12 + ext_len, pay, pay_len);
	memset(bth + 12 + ext_len + pay_len, 0, pad);

	/* rxe_icrc_hdr(): TTL, TOS, checksums and BTH resv8a masked */
	memcpy(pseudo, k->b, sizeof(pseudo));
	pseudo[1] = 0xff;
	pseudo[8] = 0xff;
	pseudo[10] = pseudo[11] = 0xff;
	pseudo[IPH + 6] = pseudo[IPH + 7] = 0xff;
	pseudo[BTH_AT + 4] = 0xff;
	crc = crc_update(0xdebb20e3, pseudo, sizeof(pseudo));
	crc = crc_update(crc, bth + 12, ext_len + pay_len + pad);
	crc = ~crc;
	memcpy(bth + 12 + ext_len + pay_len + pad, &crc, 4);	/* LE */
	k->len = BTH_AT + roce;
}

/* RETH: va, rkey, length */
static size_t reth(uint8_t *e, uint64_t va, uint32_t rkey, uint32_t len)
{
	put64(e, va);
	put32(e + 8, rkey);
	put32(e + 12, len);
	return 16;
}

/* AtomicETH: va, rkey, swap or add, compare */
static size_t atometh(uint8_t *e, uint64_t va, uint32_t rkey)
{
	put64(e, va);
	put32(e + 8, rkey);
	put64(e + 12, 1);
	put64(e + 20, 0);
	return 28;
}

/* ---- the fixture --------------------------------------------------------- */

enum target { T_PINNED, T_ODP, T_ODP_UNTOUCHED, T_WINDOW, T_IMPLICIT, T_NR };

FIXTURE(fuzz) {
	struct vu_config	cfg;
	struct vu_ctx		v;
	bool			net_up;
	union ibv_gid		peer_gid;
	struct ibv_cq		*cq;
	struct ibv_qp		*qp;
	uint8_t			*mem;		/* pinned, ODP, implicit's */
	uint8_t			*untouched;	/* ODP, never faulted */
	uint8_t			*shadow;	/* what @mem must hold */
	struct ibv_mr		*mr[T_NR];
	struct ibv_mw		*mw;
	uint8_t			*hole;		/* a PROT_NONE page */
	uint64_t		*probe;		/* one pinned page */
	struct ibv_mr		*probe_mr;
	struct ibv_mr		*rt_mr;		/* retransmission's source */
	uint32_t		rt_dqpn;	/* the peer QPN of this round */
	int			raw, udp;
	uint32_t		epsn;		/* the QP's expected PSN */
	unsigned int		seed;
	unsigned int		marker_writes;	/* marker packets sent */
};

FIXTURE_VARIANT(fuzz) {
	int	unused;
};

FIXTURE_VARIANT_ADD(fuzz, roce_v2) { };

/* Run a shell command; 0 when it exited 0. */
static int sh(const char *cmd)
{
	int ret = system(cmd);

	if (ret)
		ksft_print_msg("'%s' failed (%d)\n", cmd, ret);
	return ret;
}

static void net_down(void)
{
	if (system("rdma link delete " FZ_DEV " 2>/dev/null; "
		   "ip link delete odpfz0 2>/dev/null; "
		   "ip netns delete " FZ_NS " 2>/dev/null"))
		ksft_print_msg("cleaning up the fuzz network: nothing was left\n");
}

static int net_up(void)
{
	net_down();
	return sh("ip netns add " FZ_NS " && "
		  "ip link add odpfz0 type veth peer name odpfz1 && "
		  "ip link set odpfz1 netns " FZ_NS " && "
		  "ip addr add " FZ_LOCAL "/24 dev odpfz0 && "
		  "ip link set odpfz0 up && "
		  "sysctl -qw net.ipv6.conf.odpfz0.disable_ipv6=1 && "
		  "ip -n " FZ_NS " addr add " FZ_PEER "/24 dev odpfz1 && "
		  "ip -n " FZ_NS " link set odpfz1 up && "
		  "rdma link add " FZ_DEV " type rxe netdev odpfz0");
}

static void mapped_gid(union ibv_gid *g, const char *ip4)
{
	memset(g, 0, sizeof(*g));
	g->raw[10] = g->raw[11] = 0xff;
	inet_pton(AF_INET, ip4, &g->raw[12]);
}

/*
 * The index of rxefz's RoCE v2 GID for FZ_LOCAL; the GID table fills
 * in after the address is added, so poll it (10 ms steps, 10 s at most).
 * Returns the index or -1.
 */
static int find_gid_index(void)
{
	struct timespec step = { .tv_nsec = 10 * 1000 * 1000 };
	struct ibv_device **list = ibv_get_device_list(NULL);
	struct ibv_context *ctx = NULL;
	union ibv_gid want, g;
	char path[128], type[32];
	int i, n, idx = -1;

	mapped_gid(&want, FZ_LOCAL);
	for (i = 0; list && list[i]; i++)
		if (!strcmp(ibv_get_device_name(list[i]), FZ_DEV))
			ctx = ibv_open_device(list[i]);
	for (n = 0; ctx && idx < 0 && n < 1000; n++) {
		for (i = 0; i < 32 && idx < 0; i++) {
			FILE *f;

			if (ibv_query_gid(ctx, 1, i, &g) ||
			    memcmp(&g, &want, sizeof(g)))
				continue;
			snprintf(path, sizeof(path),
				 "/sys/class/infiniband/" FZ_DEV
				 "/ports/1/gid_attrs/types/%d", i);
			f = fopen(path, "r");
			if (f && fgets(type, sizeof(type), f) &&
			    !strncmp(type, "RoCE v2", 7))
				idx = i;
			if (f)
				fclose(f);
		}
		if (idx < 0)
			nanosleep(&step, NULL);
	}
	if (ctx)
		ibv_close_device(ctx);
	if (list)
		ibv_free_device_list(list);
	return idx;
}

/* The peer's sockets, made in its network namespace. */
static int peer_sockets(FIXTURE_DATA(fuzz) *self)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons(ROCE_PORT) };
	int here = open("/proc/self/ns/net", O_RDONLY);
	int there = open("/var/run/netns/" FZ_NS, O_RDONLY);
	int rcvbuf = 8 << 20;
	int ret = -1;

	if (here < 0 || there < 0 || setns(there, CLONE_NEWNET))
		goto out;
	self->raw = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
	self->udp = socket(AF_INET, SOCK_DGRAM, 0);
	inet_pton(AF_INET, FZ_PEER, &a.sin_addr);
	/* room for a burst of rxe's packets (a plug qdisc's release) */
	if (self->raw >= 0 && self->udp >= 0 &&
	    !setsockopt(self->udp, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf,
			sizeof(rcvbuf)) &&
	    !bind(self->udp, (struct sockaddr *)&a, sizeof(a)))
		ret = 0;
	if (setns(here, CLONE_NEWNET))
		ret = -1;
out:
	if (here >= 0)
		close(here);
	if (there >= 0)
		close(there);
	return ret;
}

/* (Re)connect the QP to the peer: RESET, INIT, RTR, RTS; PSNs from 0. */
static int qp_reset(FIXTURE_DATA(fuzz) *self)
{
	self->epsn = 0;
	return vu_qp_connect_to(&self->v, self->qp, PEER_QPN,
				&self->peer_gid, 7, 14);
}

#define ACC_ALL		(IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ | \
			 IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_ATOMIC)

static uint8_t *region(FIXTURE_DATA(fuzz) *self, enum target t)
{
	switch (t) {
	case T_PINNED:
	case T_WINDOW:
		return self->mem;
	case T_ODP:
		return self->mem + REGION;
	case T_ODP_UNTOUCHED:
		return self->untouched;
	default:
		return self->mem + 2 * REGION;
	}
}

static uint32_t rkey_of(FIXTURE_DATA(fuzz) *self, enum target t)
{
	return t == T_WINDOW ? self->mw->rkey : self->mr[t]->rkey;
}

FIXTURE_SETUP(fuzz)
{
	struct ibv_qp_init_attr qa = {
		.qp_type = IBV_QPT_RC,
		.cap = { .max_send_wr = 4, .max_recv_wr = 1,
			 .max_send_sge = 1, .max_recv_sge = 1 },
	};
	struct ibv_mw_bind bind = { .wr_id = 1,
				    .send_flags = IBV_SEND_SIGNALED };
	struct ibv_device_attr_ex ax;
	size_t i;
	int idx;

	self->raw = self->udp = -1;
	crc_init();
	self->seed = tu_seed();
	ASSERT_EQ(0, net_up());
	self->net_up = true;
	idx = find_gid_index();
	ASSERT_LE(0, idx) TH_LOG("no RoCE v2 GID of " FZ_LOCAL " on " FZ_DEV);

	vu_config_init(&self->cfg);
	self->cfg.log_prefix = "# ";
	self->cfg.dev_name = FZ_DEV;
	self->cfg.gid_idx = idx;
	ASSERT_EQ(0, vu_open(&self->v, &self->cfg));
	memset(&ax, 0, sizeof(ax));
	ASSERT_EQ(0, ibv_query_device_ex(self->v.ctx, NULL, &ax));
	TU_REQUIRE_CAP(ax.odp_caps.general_caps & IBV_ODP_SUPPORT,
		       "no ODP support");
	mapped_gid(&self->peer_gid, FZ_PEER);
	ASSERT_EQ(0, peer_sockets(self));

	self->cq = ibv_create_cq(self->v.ctx, 16, NULL, NULL, 0);
	ASSERT_NE(NULL, self->cq);
	qa.send_cq = qa.recv_cq = self->cq;
	self->qp = ibv_create_qp(self->v.pd, &qa);
	ASSERT_NE(NULL, self->qp);
	ASSERT_EQ(0, qp_reset(self));

	self->mem = mmap(NULL, 3 * REGION, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	self->untouched = mmap(NULL, REGION, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	self->probe = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	self->shadow = malloc(3 * REGION);
	self->hole = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
			  -1, 0);
	ASSERT_NE(MAP_FAILED, self->hole);
	ASSERT_NE(MAP_FAILED, self->mem);
	ASSERT_NE(MAP_FAILED, self->untouched);
	ASSERT_NE(MAP_FAILED, self->probe);
	ASSERT_NE(NULL, self->shadow);
	for (i = 0; i < 3 * REGION; i += 8) {
		uint64_t tag = 0xf022000000000000ULL | i;

		memcpy(self->shadow + i, &tag, 8);
	}
	memcpy(self->mem, self->shadow, 3 * REGION);
	for (i = 0; i < 512; i++)
		self->probe[i] = 0x9be0000000000000ULL | i;

	self->mr[T_PINNED] = vu_reg_mr(&self->v, self->mem, REGION,
				       ACC_ALL | IBV_ACCESS_MW_BIND);
	self->mr[T_ODP] = vu_reg_mr(&self->v, self->mem + REGION, REGION,
				    ACC_ALL | IBV_ACCESS_ON_DEMAND);
	self->mr[T_ODP_UNTOUCHED] = vu_reg_mr(&self->v, self->untouched,
					      REGION, ACC_ALL |
					      IBV_ACCESS_ON_DEMAND);
	self->mr[T_IMPLICIT] = vu_reg_mr(&self->v, NULL, SIZE_MAX,
					 ACC_ALL | IBV_ACCESS_ON_DEMAND);
	self->probe_mr = vu_reg_mr(&self->v, self->probe, 4096, ACC_ALL);
	for (i = 0; i < T_NR; i++)
		ASSERT_TRUE(i == T_WINDOW || self->mr[i]) TH_LOG("reg %zu", i);
	ASSERT_NE(NULL, self->probe_mr);

	self->mw = ibv_alloc_mw(self->v.pd, IBV_MW_TYPE_1);
	ASSERT_NE(NULL, self->mw);
	bind.bind_info.mr = self->mr[T_PINNED];
	bind.bind_info.addr = (uintptr_t)self->mem + WIN_OFF;
	bind.bind_info.length = WIN_LEN;
	bind.bind_info.mw_access_flags = IBV_ACCESS_REMOTE_READ |
		IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_ATOMIC;
	ASSERT_EQ(0, ibv_bind_mw(self->qp, self->mw, &bind));
	{
		struct vu_qp q = { .cq = self->cq, .qp = self->qp };

		ASSERT_EQ(IBV_WC_SUCCESS, tu_reap(&self->v, &q));
	}
}

FIXTURE_TEARDOWN(fuzz)
{
	size_t i;

	if (self->mw)
		EXPECT_EQ(0, ibv_dealloc_mw(self->mw));
	for (i = 0; i < T_NR; i++)
		EXPECT_EQ(0, vu_dereg_mr(&self->v, self->mr[i]));
	EXPECT_EQ(0, vu_dereg_mr(&self->v, self->probe_mr));
	EXPECT_EQ(0, vu_dereg_mr(&self->v, self->rt_mr));
	/*
	 * A round that failed may leave its plug holding rxe's packets, and
	 * destroying the QP waits for them.
	 */
	if (self->net_up && system("tc qdisc del dev odpfz0 root 2>/dev/null") == 0)
		ksft_print_msg("a round's plug qdisc was left on odpfz0\n");
	if (self->qp)
		EXPECT_EQ(0, ibv_destroy_qp(self->qp));
	if (self->cq)
		EXPECT_EQ(0, ibv_destroy_cq(self->cq));
	EXPECT_EQ(0, vu_close(&self->v));
	if (self->raw >= 0)
		close(self->raw);
	if (self->udp >= 0)
		close(self->udp);
	if (self->net_up)
		net_down();
	free(self->shadow);
	EXPECT_TRUE(tu_live_back("umems", 0, 10000));
	/* the mappings go with the test's process */
}

/* ---- rounds ------------------------------------------------------------- */

/* What a round's packet must lead to. */
enum outcome {
	LIVES,		/* dropped or ignored: the probe is answered */
	FAILS,		/* NAKed: the QP goes to the error state */
	EITHER,
};

static unsigned int rnd(FIXTURE_DATA(fuzz) *self, unsigned int n)
{
	return rand_r(&self->seed) % n;
}

static void send_pkt(struct __test_metadata *_metadata,
		     FIXTURE_DATA(fuzz) *self, const struct fz_pkt *k)
{
	struct sockaddr_in to = { .sin_family = AF_INET };

	inet_pton(AF_INET, FZ_LOCAL, &to.sin_addr);
	ASSERT_EQ((ssize_t)k->len,
		  sendto(self->raw, k->b, k->len, 0, (struct sockaddr *)&to,
			 sizeof(to))) TH_LOG("sendto: %s", strerror(errno));
}

/* A PSN at @d from the expected one (24 bits). */
static uint32_t psn_at(FIXTURE_DATA(fuzz) *self, int d)
{
	return (self->epsn + d) & 0xffffff;
}

/* A valid WRITE_ONLY of marker bytes into @t: where and how much. */
static void marker_write(FIXTURE_DATA(fuzz) *self, struct fz_pkt *k,
			 uint32_t psn)
{
	static const enum target ok[] = { T_PINNED, T_ODP, T_WINDOW,
					  T_IMPLICIT };
	enum target t = ok[rnd(self, 4)];
	uint32_t len = 1 + rnd(self, 64);
	uint64_t va = (uintptr_t)region(self, t) +
		      (t == T_WINDOW ? WIN_OFF + rnd(self, WIN_LEN - len) :
		       rnd(self, REGION - len));
	uint8_t e[16], pay[64];

	memset(pay, MARKER, sizeof(pay));
	reth(e, va, rkey_of(self, t), len);
	build(k, self->qp->qp_num, OP_WRITE_ONLY, psn, e, 16, pay, len);
	self->marker_writes++;
}

static enum outcome fam_bad_icrc(FIXTURE_DATA(fuzz) *self, struct fz_pkt *k)
{
	marker_write(self, k, self->epsn);
	k->b[k->len - 1 - rnd(self, 4)] ^= 1 << rnd(self, 8);
	return LIVES;
}

static enum outcome fam_opcode(FIXTURE_DATA(fuzz) *self, struct fz_pkt *k)
{
	uint8_t op = rnd(self, 8) ? rnd(self, 0x20) : rnd(self, 0x100);
	uint8_t e[32], pay[64];
	size_t i, ext = hdr_len(op) - 12;
	uint32_t bad_rkey = 0x00fffe00 | rnd(self, 0x100);
	static const int d[] = { 0, 0, 1, -1, 200, -200 };

	for (i = 0; i < sizeof(e); i++)
		e[i] = rnd(self, 0x100);
	for (i = 0; i < sizeof(pay); i++)
		pay[i] = rnd(self, 0x100);
	/* every rkey the headers may carry names no MR */
	if (ext >= 16 && op != OP_FLUSH)
		put32(e + 8, bad_rkey);
	if (op == OP_FLUSH)
		put32(e + 12, bad_rkey);
	build(k, self->qp->qp_num, op, psn_at(self, d[rnd(self, 6)]), e, ext,
	      pay, rnd(self, 65));
	return EITHER;
}

static enum outcome fam_range(FIXTURE_DATA(fuzz) *self, struct fz_pkt *k)
{
	static const uint8_t ops[] = { OP_WRITE_ONLY, OP_READ_REQ,
				       OP_FETCH_ADD, OP_CMP_SWAP,
				       OP_ATOMIC_WRITE };
	enum target t = rnd(self, T_NR);
	uint8_t op = ops[rnd(self, sizeof(ops))], e[32], pay[64];
	bool atomic = op == OP_FETCH_ADD || op == OP_CMP_SWAP;
	/* 8 bytes, aligned: an atomic or an ATOMIC_WRITE */
	bool eight = atomic || op == OP_ATOMIC_WRITE;
	uint64_t start = (uintptr_t)region(self, t), end = start + REGION;
	uint32_t len = eight ? 8 : 16;
	uint64_t va = 0;

	if (t == T_WINDOW) {
		start += WIN_OFF;
		end = start + WIN_LEN;
	}
	switch (rnd(self, 5)) {
	case 0:
		va = UINT64_MAX - 7;		/* va + len wraps */
		break;
	case 1:
		va = TASK_END - 8;		/* across the top of user space */
		break;
	case 2:
		if (t != T_IMPLICIT) {
			va = start - 8;		/* before the start */
			break;
		}
		va = (uintptr_t)self->hole;	/* PROT_NONE */
		break;
	case 3:
		if (t != T_IMPLICIT) {		/* across the end */
			va = eight ? end : end - 8;
			break;
		}
		va = (uintptr_t)self->hole + 4096 - 8;
		break;
	default:		/* 2 GiB from the start; an atomic: past */
		va = t == T_IMPLICIT ? (uintptr_t)self->hole :
		     eight ? end + 64 : start;
		len = eight ? len : 0x80000000U;
		break;
	}
	memset(pay, MARKER, sizeof(pay));
	if (atomic)
		build(k, self->qp->qp_num, op, self->epsn, e,
		      atometh(e, va, rkey_of(self, t)), NULL, 0);
	else
		build(k, self->qp->qp_num, op, self->epsn, e,
		      reth(e, va, rkey_of(self, t), len), pay,
		      op == OP_READ_REQ ? 0 : len > 64 ? 64 : len);
	return FAILS;
}

static enum outcome fam_length(FIXTURE_DATA(fuzz) *self, struct fz_pkt *k)
{
	static uint8_t pay[2048];
	uint64_t va = (uintptr_t)region(self, T_PINNED) + rnd(self, 1024);
	uint32_t rkey = rkey_of(self, T_PINNED), len = 16, n = 16;
	uint8_t op = OP_WRITE_ONLY, e[16];

	memset(pay, MARKER, sizeof(pay));
	switch (rnd(self, 4)) {
	case 0:
		n = 8;			/* shorter than the RETH says */
		break;
	case 1:
		n = 32;			/* longer */
		break;
	case 2:
		len = n = 1200;		/* past the MTU (1024 on this link) */
		break;
	default:
		op = OP_WRITE_FIRST;	/* a first packet shorter than the MTU */
		len = 4096;
		n = 512;
		break;
	}
	reth(e, va, rkey, len);
	build(k, self->qp->qp_num, op, self->epsn, e, 16, pay, n);
	return FAILS;
}

static enum outcome fam_truncated(FIXTURE_DATA(fuzz) *self, struct fz_pkt *k)
{
	size_t full, i;

	marker_write(self, k, self->epsn);
	full = k->len;
	if (rnd(self, 2)) {
		k->len = BTH_AT + rnd(self, full - BTH_AT);	/* cut */
	} else {
		k->len = full + 1 + rnd(self, 64);		/* padded */
		for (i = full; i < k->len; i++)
			k->b[i] = rnd(self, 0x100);
	}
	/* the UDP length says what is there: rxe, not UDP, must refuse it */
	put16(k->b + IPH + 4, k->len - IPH);
	return LIVES;
}

static enum outcome fam_psn(FIXTURE_DATA(fuzz) *self, struct fz_pkt *k)
{
	int d = 1 + rnd(self, 1000);

	marker_write(self, k, psn_at(self, rnd(self, 2) ? d : -d));
	return LIVES;
}

/* the probe's READ again, as a duplicate, with a range it never had */
static enum outcome fam_dup_read(FIXTURE_DATA(fuzz) *self, struct fz_pkt *k)
{
	static const uint64_t off[] = { 0, 4, 8, 4096 - 4 };
	uint64_t va = (uintptr_t)self->probe;
	uint32_t len = 8;
	uint8_t e[16];

	if (!self->epsn)	/* no READ in this QP's life yet */
		return fam_psn(self, k);
	switch (rnd(self, 3)) {
	case 0:
		va = UINT64_MAX - 3;	/* wraps: "inside" by a sum */
		break;
	case 1:
		va += off[rnd(self, 4)];	/* past the original's end */
		len = 16;
		break;
	default:
		va -= 8;		/* before the original's start */
		break;
	}
	reth(e, va, self->probe_mr->rkey, len);
	build(k, self->qp->qp_num, OP_READ_REQ, psn_at(self, -1), e, 16, NULL,
	      0);
	return LIVES;
}

static enum outcome fam_atomic(FIXTURE_DATA(fuzz) *self, struct fz_pkt *k)
{
	enum target t = rnd(self, 2) ? T_PINNED : T_ODP;
	uint64_t va = (uintptr_t)region(self, t) + 8 * rnd(self, 100) +
		      1 + rnd(self, 7);
	uint8_t e[32];

	build(k, self->qp->qp_num, rnd(self, 2) ? OP_FETCH_ADD : OP_CMP_SWAP,
	      self->epsn, e, atometh(e, va, rkey_of(self, t)), NULL, 0);
	return FAILS;
}

static const struct family {
	const char	*name;
	enum outcome	(*make)(FIXTURE_DATA(fuzz) *self, struct fz_pkt *k);
} families[] = {
	{ "bad_icrc", fam_bad_icrc }, { "opcode", fam_opcode },
	{ "range", fam_range }, { "length", fam_length },
	{ "truncated", fam_truncated }, { "psn", fam_psn },
	{ "dup_read", fam_dup_read }, { "atomic", fam_atomic },
};
#define NR_FAMILIES	(sizeof(families) / sizeof(families[0]))

static uint32_t get24(const uint8_t *p)
{
	return (p[0] << 16) | (p[1] << 8) | p[2];
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get24(p) << 40 | (uint64_t)get24(p + 3) << 16 |
	       p[6] << 8 | p[7];
}

/* A packet's opcode, PSN and first extension header, for a failure. */
static const char *describe(const struct fz_pkt *k)
{
	static char s[160];
	const uint8_t *b = k->b + BTH_AT, *e = b + 12;
	uint64_t va = get64(e);

	snprintf(s, sizeof(s),
		 "opcode %#x psn %#x, %zu bytes; va %#llx rkey %#x len %#x",
		 b[0], get24(b + 9), k->len, (unsigned long long)va,
		 (unsigned int)(e[8] << 24 | e[9] << 16 | e[10] << 8 | e[11]),
		 (unsigned int)(e[12] << 24 | e[13] << 16 | e[14] << 8 |
				e[15]));
	return s;
}

/*
 * The next packet rxe sends the peer into @d (@size bytes), waiting until
 * @bound ms after @t0 at most: its length, or -1 when none came in time.
 */
static ssize_t peer_recv(FIXTURE_DATA(fuzz) *self, uint8_t *d, size_t size,
			 const struct timespec *t0, long bound)
{
	struct pollfd pfd = { .fd = self->udp, .events = POLLIN };
	long left = bound - tu_ms_since(t0);

	if (left <= 0 || poll(&pfd, 1, left) <= 0)
		return -1;
	return recv(self->udp, d, size, 0);
}

enum answer { ANS_ANSWERED, ANS_NAK, ANS_NONE };

/*
 * Read what rxe sends the peer until the answer to the request at @psn
 * (a READ response of the probe's 8 bytes, or an ACK when @op is OP_ACK)
 * or a NAK that ends the QP comes (its syndrome in *@nak), or
 * PROBE_WAIT_MS pass. PSN sequence NAKs and RNR NAKs only say "not
 * yet"; answers to other PSNs are replays of duplicates.
 */
static enum answer await(struct __test_metadata *_metadata,
			 FIXTURE_DATA(fuzz) *self, uint32_t psn, uint8_t op,
			 uint8_t *nak)
{
	struct timespec t0;
	uint8_t d[2048];
	ssize_t n;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		n = peer_recv(self, d, sizeof(d), &t0, PROBE_WAIT_MS);
		if (n < 0)
			return ANS_NONE;
		if (n < 16)
			continue;
		if (d[0] == OP_ACK && (d[12] & 0xe0) == 0x60 &&
		    (d[12] & 0x1f)) {
			*nak = d[12];
			return ANS_NAK;
		}
		if (d[0] != op || get24(d + 9) != psn)
			continue;
		if (op == OP_READ_RESP_ONLY) {
			EXPECT_EQ(16 + 8 + 4, n) TH_LOG("probe response of %zd bytes", n);
			EXPECT_EQ(0, memcmp(d + 16, self->probe, 8))
				TH_LOG("the probe READ returned other bytes");
		} else {
			EXPECT_EQ(0, d[12] & 0xe0) TH_LOG("syndrome %#x", d[12]);
		}
		return ANS_ANSWERED;
	}
}

/* The probe: a valid 8-byte READ of the probe page at the expected PSN. */
static void send_probe(struct __test_metadata *_metadata,
		       FIXTURE_DATA(fuzz) *self)
{
	struct fz_pkt k;
	uint8_t e[16];

	reth(e, (uintptr_t)self->probe, self->probe_mr->rkey, 8);
	build(&k, self->qp->qp_num, OP_READ_REQ, self->epsn, e, 16, NULL, 0);
	send_pkt(_metadata, self, &k);
}

/*
 * Wait (bounded) for the QP to reach the error state, which it must after
 * a NAK (@must_be_error); then reset it.
 */
static void reset_after_error(struct __test_metadata *_metadata,
			      FIXTURE_DATA(fuzz) *self, bool must_be_error)
{
	int ret = vu_wait_qp_state(&self->v, self->qp, IBV_QPS_ERR);

	if (must_be_error) {
		ASSERT_EQ(0, ret);
	} else {
		ASSERT_TRUE(!ret || ret == -ETIMEDOUT);
	}
	ASSERT_EQ(0, qp_reset(self));
}

/* Every target byte as its shadow says (the untouched MR: zeros). */
static void check_memory(struct __test_metadata *_metadata,
			 FIXTURE_DATA(fuzz) *self, long round)
{
	ASSERT_TRUE(tu_same_bytes("targets", self->mem, self->shadow,
				  3 * REGION)) TH_LOG("after round %ld", round);
	ASSERT_TRUE(tu_all_bytes("untouched ODP MR", self->untouched, 0,
				 REGION)) TH_LOG("after round %ld", round);
}

TEST_F_TIMEOUT(fuzz, drops_or_naks, 7200)
{
	long rounds = tu_rounds(300, 3000), r;
	long seen[NR_FAMILIES][3] = { { 0 } };	/* answered, NAK, silent */
	struct fz_pkt k;
	enum outcome want;
	enum answer ans;
	size_t f;
	uint8_t nak = 0;

	for (r = 1; r <= rounds; r++) {
		f = rnd(self, NR_FAMILIES);
		want = families[f].make(self, &k);
		send_pkt(_metadata, self, &k);
		send_probe(_metadata, self);
		ans = await(_metadata, self, self->epsn, OP_READ_RESP_ONLY,
			    &nak);
		seen[f][ans]++;
		if (ans == ANS_ANSWERED) {
			ASSERT_NE(FAILS, want)
				TH_LOG("round %ld: %s packet was not refused: %s",
				       r, families[f].name, describe(&k));
			self->epsn = psn_at(self, 1);
		} else {
			ASSERT_NE(LIVES, want)
				TH_LOG("round %ld: after a %s packet the probe got %s (syndrome %#x): %s",
				       r, families[f].name,
				       ans == ANS_NAK ? "a NAK" : "no answer",
				       nak, describe(&k));
			reset_after_error(_metadata, self, ans == ANS_NAK);
		}
		if (!(r % 50))
			check_memory(_metadata, self, r);
	}
	check_memory(_metadata, self, rounds);

	/* the peer's valid WRITE still lands, exactly */
	{
		uint8_t e[16], pay[64];
		size_t off = 100;

		tu_fill(pay, sizeof(pay), self->seed);
		reth(e, (uintptr_t)region(self, T_ODP) + off,
		     rkey_of(self, T_ODP), sizeof(pay));
		build(&k, self->qp->qp_num, OP_WRITE_ONLY, self->epsn, e, 16,
		      pay, sizeof(pay));
		send_pkt(_metadata, self, &k);
		ASSERT_EQ(ANS_ANSWERED, await(_metadata, self, self->epsn,
					      OP_ACK, &nak));
		memcpy(self->shadow + REGION + off, pay, sizeof(pay));
		check_memory(_metadata, self, rounds + 1);
	}
	for (f = 0; f < NR_FAMILIES; f++)
		ksft_print_msg("%-10s probe answered %ld, NAK %ld, silent %ld\n",
			       families[f].name, seen[f][ANS_ANSWERED],
			       seen[f][ANS_NAK], seen[f][ANS_NONE]);
	ksft_print_msg("%ld rounds, %u marker WRITEs, none landed\n", rounds,
		       self->marker_writes);
}

/*
 * A duplicate READ whose MR has been deregistered since the original was
 * answered (the lifetime matrix found it on the debug kernel: a peer's
 * late retransmission of a READ it had completed reached the responder
 * after the MR's teardown). Stock rxe NAKed the duplicate and moved the
 * QP to the error state: the peer, past that PSN, ignored the NAK and
 * waited for answers to its later requests that never came. Patch 0016
 * NAKs the duplicate's PSN and keeps the QP: the next request (the
 * probe) is answered.
 */
TEST_F_TIMEOUT(fuzz, replayed_read_of_a_gone_mr_keeps_the_qp, 300)
{
	static const int access[] = { ACC_ALL, ACC_ALL | IBV_ACCESS_ON_DEMAND };
	struct fz_pkt k;
	struct ibv_mr *mr;
	uint8_t e[16], nak = 0;
	size_t i;

	for (i = 0; i < sizeof(access) / sizeof(access[0]); i++) {
		const char *kind = access[i] & IBV_ACCESS_ON_DEMAND ?
				   "ODP" : "pinned";

		mr = vu_reg_mr(&self->v, self->probe, 4096, access[i]);
		ASSERT_NE(NULL, mr);
		reth(e, (uintptr_t)self->probe, mr->rkey, 8);
		build(&k, self->qp->qp_num, OP_READ_REQ, self->epsn, e, 16,
		      NULL, 0);
		send_pkt(_metadata, self, &k);
		ASSERT_EQ(ANS_ANSWERED, await(_metadata, self, self->epsn,
					      OP_READ_RESP_ONLY, &nak))
			TH_LOG("%s: the first READ was not answered", kind);
		self->epsn = psn_at(self, 1);

		/* the MR goes; the READ comes again, as a duplicate */
		ASSERT_EQ(0, vu_dereg_mr(&self->v, mr));
		send_pkt(_metadata, self, &k);
		ASSERT_EQ(ANS_NAK, await(_metadata, self, psn_at(self, -1),
					 OP_READ_RESP_ONLY, &nak))
			TH_LOG("%s: the duplicate READ of a deregistered MR was answered, or not at all",
			       kind);
		EXPECT_EQ(0x62, nak) TH_LOG("%s: NAK syndrome %#x", kind, nak);

		/* the QP lives on: the probe (a READ at the next PSN) */
		send_probe(_metadata, self);
		ASSERT_EQ(ANS_ANSWERED, await(_metadata, self, self->epsn,
					      OP_READ_RESP_ONLY, &nak))
			TH_LOG("%s: the QP did not answer the request after the duplicate (NAK %#x)",
			       kind, nak);
		self->epsn = psn_at(self, 1);
	}
}

/*
 * Wait for rxe's request with BTH opcode @wire_op on the peer's socket;
 * true, with its PSN in @psn, once it came.
 */
static bool await_request(FIXTURE_DATA(fuzz) *self, uint8_t wire_op,
			  uint32_t *psn)
{
	struct pollfd pfd = { .fd = self->udp, .events = POLLIN };
	uint8_t d[2048];
	ssize_t n;

	while (poll(&pfd, 1, PROBE_WAIT_MS) > 0) {
		n = recv(self->udp, d, sizeof(d), 0);
		if (n >= 12 && d[0] == wire_op) {
			*psn = get24(d + 9);
			return true;
		}
	}
	return false;
}

/*
 * A response that fits no outstanding request (rxe_fuzz found one: a
 * FETCH_ADD on a QP just reset and reconnected, its PSNs at 0 again,
 * completed as a success with its result buffer untouched): the peer
 * answers our FETCH_ADD, then our READ, with a READ response MIDDLE at
 * the request's PSN. The request must complete with an error (rxe's check
 * gave up without a status, and the completer reported IBV_WC_SUCCESS
 * and warned; patch 0014), its local buffer untouched.
 */
TEST_F_TIMEOUT(fuzz, stray_response_fails_the_request, 600)
{
	static const struct {
		enum ibv_wr_opcode	op;
		uint8_t			wire_op;
		const char		*name;
	} reqs[] = {
		{ IBV_WR_ATOMIC_FETCH_AND_ADD, OP_FETCH_ADD, "FETCH_ADD" },
		{ IBV_WR_RDMA_READ, OP_READ_REQ, "READ" },
	};
	struct vu_qp q = { .cq = self->cq, .qp = self->qp };
	uint64_t *res = &self->probe[100], want = 0x5eed5eed5eed5eedULL;
	uint8_t pay[8] = { 0x51, 0x51, 0x51, 0x51 };
	struct fz_pkt k;
	struct ibv_wc wc;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(reqs); i++) {
		struct ibv_sge sge = {
			.addr = (uintptr_t)res, .length = 8,
			.lkey = self->probe_mr->lkey,
		};
		struct ibv_send_wr wr = {
			.wr_id = i, .sg_list = &sge, .num_sge = 1,
			.opcode = reqs[i].op, .send_flags = IBV_SEND_SIGNALED,
		}, *bad;
		uint32_t psn = 0;

		*res = want;
		if (reqs[i].op == IBV_WR_RDMA_READ) {
			wr.wr.rdma.remote_addr = 0x10000;
			wr.wr.rdma.rkey = 0x1234;
		} else {
			wr.wr.atomic.remote_addr = 0x10000;
			wr.wr.atomic.rkey = 0x1234;
			wr.wr.atomic.compare_add = 1;
		}
		ASSERT_EQ(0, ibv_post_send(self->qp, &wr, &bad));
		/* the request on the wire: its PSN */
		ASSERT_TRUE(await_request(self, reqs[i].wire_op, &psn))
			TH_LOG("no %s request from rxe", reqs[i].name);
		build(&k, self->qp->qp_num, 0x0e /* READ_RESPONSE_MIDDLE */,
		      psn, NULL, 0, pay, sizeof(pay));
		send_pkt(_metadata, self, &k);
		ASSERT_EQ(0, vu_poll_one(&self->v, &q, &wc))
			TH_LOG("no completion of the %s", reqs[i].name);
		EXPECT_NE(IBV_WC_SUCCESS, wc.status)
			TH_LOG("the %s completed successfully on a stray READ response MIDDLE",
			       reqs[i].name);
		ksft_print_msg("%s answered by a stray READ response MIDDLE: %s\n",
			       reqs[i].name, ibv_wc_status_str(wc.status));
		EXPECT_EQ(want, *res) TH_LOG("the %s's local buffer changed",
					     reqs[i].name);
		reset_after_error(_metadata, self, true);
	}
}

/*
 * A late ACK of earlier requests while a READ's response is in progress
 * (a responder answers each duplicate SEND or WRITE with its newest
 * acknowledged PSN, which is older than the READ): it answers nothing of
 * the READ. rxe took it as the end of a message and forgot that the
 * READ's response had begun; the READ's next response packet, a MIDDLE,
 * then failed the READ with IBV_WC_BAD_RESP_ERR (the debug lane's
 * implicit cells, findings/2026-12-06-stale-ack-ends-a-read.txt). The
 * peer answers a three-packet READ with FIRST, an ACK of the PSN before
 * the READ, MIDDLE and LAST: the READ must complete with all three
 * packets' data in place.
 */
TEST_F_TIMEOUT(fuzz, stale_ack_inside_a_read_response, 300)
{
	struct vu_qp q = { .cq = self->cq, .qp = self->qp };
	size_t mtu = 128 << self->v.port_attr.active_mtu, len = 3 * mtu, i;
	uint8_t aeth[4] = { 0x1f };	/* ACK, MSN 0 */
	uint8_t *buf = (uint8_t *)self->probe, pay[3][1024];
	struct ibv_sge sge = {
		.addr = (uintptr_t)buf, .length = len,
		.lkey = self->probe_mr->lkey,
	};
	struct ibv_send_wr wr = {
		.sg_list = &sge, .num_sge = 1, .opcode = IBV_WR_RDMA_READ,
		.send_flags = IBV_SEND_SIGNALED,
		.wr.rdma = { .remote_addr = 0x10000, .rkey = 0x1234 },
	}, *bad;
	struct fz_pkt k;
	struct ibv_wc wc;
	uint32_t psn = 0;

	ASSERT_GE(sizeof(pay[0]), mtu);
	ASSERT_GE(4096, len);
	for (i = 0; i < 3; i++)
		memset(pay[i], 0xa0 + i, mtu);
	memset(buf, 0, len);
	ASSERT_EQ(0, ibv_post_send(self->qp, &wr, &bad));
	ASSERT_TRUE(await_request(self, OP_READ_REQ, &psn))
		TH_LOG("no READ request from rxe");

	build(&k, self->qp->qp_num, OP_READ_RESP_FIRST, psn, aeth,
	      sizeof(aeth), pay[0], mtu);
	send_pkt(_metadata, self, &k);
	build(&k, self->qp->qp_num, OP_ACK, (psn - 1) & 0xffffff, aeth,
	      sizeof(aeth), NULL, 0);
	send_pkt(_metadata, self, &k);
	build(&k, self->qp->qp_num, OP_READ_RESP_MIDDLE, (psn + 1) & 0xffffff,
	      NULL, 0, pay[1], mtu);
	send_pkt(_metadata, self, &k);
	build(&k, self->qp->qp_num, OP_READ_RESP_LAST, (psn + 2) & 0xffffff,
	      aeth, sizeof(aeth), pay[2], mtu);
	send_pkt(_metadata, self, &k);

	ASSERT_EQ(0, vu_poll_one(&self->v, &q, &wc)) TH_LOG("no completion of the READ");
	EXPECT_EQ(IBV_WC_SUCCESS, wc.status)
		TH_LOG("the READ ended %s after a stale ACK inside its response",
		       ibv_wc_status_str(wc.status));
	for (i = 0; i < 3; i++)
		if (memcmp(buf + i * mtu, pay[i], mtu))
			break;
	EXPECT_EQ(3, i) TH_LOG("packet %zu of the READ's response is not in place", i);
	if (wc.status != IBV_WC_SUCCESS)
		reset_after_error(_metadata, self, true);
}

/* ---- a retransmission keeps every PSN's request ------------------------ */

#define RT_PKTS		100	/* packets of the long request */
#define RT_ACK		0x1f
#define RT_RNR_NAK	(0x20 | 28)	/* retry after 163.84 ms */
#define RT_ACCESS_NAK	0x62		/* remote access error */
#define RT_RETRIES	"/sys/class/infiniband/" FZ_DEV \
			"/ports/1/hw_counters/completer_retry_err"

/* What the peer first saw at one PSN. */
struct rt_seen {
	bool		have;
	uint8_t		op;
	uint8_t		ext[28];	/* extension headers */
	uint32_t	len;		/* payload bytes */
	uint32_t	crc;		/* of the payload */
};

/*
 * The packets of the plug qdisc on odpfz0 that wait for their release:
 * rxe's skbs stay rxe's until they leave it. -1 if tc says nothing.
 */
static long plug_backlog(void)
{
	char line[512];
	long pkts = -1;
	FILE *p = popen("tc -s qdisc show dev odpfz0", "r");

	if (!p)
		return -1;
	while (fgets(line, sizeof(line), p)) {
		char *at = strstr(line, " backlog ");

		if (pkts < 0 && at)
			sscanf(at, " backlog %*s %ldp", &pkts);
	}
	pclose(p);
	return pkts;
}

/*
 * Receive what rxe sends the peer's QPN of this round for at most
 * tu_ms(10000) and check each
 * packet against the first one the peer saw at its PSN: opcode, headers
 * and payload must be the same (a retransmission resends a request, it
 * never makes a new one). Returns when PSN @psn has come @times times
 * since the last call (counted in @count[]), false on a timeout.
 */
static bool rt_take(struct __test_metadata *_metadata,
		    FIXTURE_DATA(fuzz) *self, struct rt_seen *seen,
		    unsigned int *count, uint32_t psn, unsigned int times)
{
	struct timespec t0;
	uint8_t d[2048];
	struct rt_seen now;
	ssize_t n;
	uint32_t p;

	memset(count, 0, (RT_PKTS + 2) * sizeof(*count));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (count[psn] < times) {
		n = peer_recv(self, d, sizeof(d), &t0, tu_ms(10000));
		if (n < 0) {
			char runs[512] = "";
			size_t at = 0;

			for (p = 0; p < RT_PKTS + 2 && at < sizeof(runs) - 32; p++)
				if (count[p] && (!p || count[p] != count[p - 1]))
					at += snprintf(runs + at, sizeof(runs) - at,
						       " %u:%ux", p, count[p]);
				else if (!count[p] && p && count[p - 1])
					at += snprintf(runs + at, sizeof(runs) - at,
						       " %u:0x", p);
			ksft_print_msg("timed out waiting for PSN %u; came (from PSN: times)%s\n",
				       psn, runs);
			return false;
		}
		if (n < 16 || n < (ssize_t)hdr_len(d[0]) + 4)
			continue;
		p = get24(d + 9);
		if (p > RT_PKTS + 1 || get24(d + 5) != self->rt_dqpn)
			continue;
		memset(&now, 0, sizeof(now));
		now.have = true;
		now.op = d[0];
		memcpy(now.ext, d + 12, hdr_len(d[0]) - 12);
		now.len = n - hdr_len(d[0]) - ((d[1] >> 4) & 3) - 4;
		now.crc = crc_update(0, d + hdr_len(d[0]), now.len);
		if (!seen[p].have)
			seen[p] = now;
		count[p]++;
		EXPECT_EQ(0, memcmp(&seen[p], &now, sizeof(now)))
			TH_LOG("PSN %u carried opcode %#x, %u bytes, va %#llx; now opcode %#x, %u bytes, va %#llx",
			       p, seen[p].op, seen[p].len,
			       (unsigned long long)get64(seen[p].ext),
			       now.op, now.len,
			       (unsigned long long)get64(now.ext));
		if (memcmp(&seen[p], &now, sizeof(now)))
			return false;
	}
	return true;
}

/*
 * The peer's response with AETH syndrome @syn at @psn: 0x1f an ACK of
 * every PSN up to @psn (credits unlimited), 0x20 | T an RNR NAK asking
 * for a retry after RNR timer code T.
 */
static void rt_aeth(struct __test_metadata *_metadata,
		    FIXTURE_DATA(fuzz) *self, uint8_t syn, uint32_t psn)
{
	uint8_t aeth[4] = { syn };	/* MSN 0 */
	struct fz_pkt k;

	build(&k, self->qp->qp_num, OP_ACK, psn, aeth, sizeof(aeth), NULL, 0);
	send_pkt(_metadata, self, &k);
}

/*
 * How far rxe's retransmission into the plug has got: the plug's backlog
 * once rxe has counted a retry beyond @retries, else 0.
 */
static long long rt_retransmitted(FIXTURE_DATA(fuzz) *self, long retries)
{
	(void)self;
	return tu_read_long(RT_RETRIES) > retries ? plug_backlog() : 0;
}

/*
 * Poll @probe(@self, @arg) every 10 ms, for tu_ms(10000) at most, until
 * it is @want or more; its last value.
 */
static long long rt_poll(FIXTURE_DATA(fuzz) *self,
			 long long (*probe)(FIXTURE_DATA(fuzz) *, long),
			 long arg, long long want)
{
	struct timespec t0, nap = { .tv_nsec = 10 * 1000 * 1000 };
	long long v;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while ((v = probe(self, arg)) < want && tu_ms_since(&t0) < tu_ms(10000))
		nanosleep(&nap, NULL);
	return v;
}

/* What follows request A in rt_round(). */
enum rt_mode {
	RT_ALONE,	/* nothing */
	RT_WITH_B,	/* request B */
	RT_RNR,		/* request B, and an RNR NAK of A before the ACK */
	RT_ACK_B,	/* request B, ACKed while A is resent */
	RT_NAK_B,	/* request B, NAKed while A is resent */
};

/*
 * A response that answers all of a WRITE or SEND while rxe is resending
 * it (in the field: the ACK of the first transmission, late, crossing the
 * retransmission; or the answer to the request after it; found by the
 * lifetime matrix on the debug kernel) found the request not pending (not
 * all its packets had gone out again), and stock rxe's completer did not
 * complete it:
 *  - an ACK of its last PSN moved the completer past the request. If
 *    nothing followed it, the QP hung: a timeout retries nothing once the
 *    requester's PSN is not past the completer's, and no ACK of the
 *    request comes again. If requests followed, the next retry started
 *    at the completer's PSN with the old request fully consumed: an empty
 *    ONLY of it took the PSN of the next request and every later request
 *    moved up one PSN, where the responder took them for duplicates (an
 *    atomic answered from its replay, a SEND eating a receive WQE);
 *  - an answer to a later PSN was dropped. A responder that NAKs the
 *    next request ends its side and answers nothing more: the request
 *    was resent for ever (retry_cnt 7), and the NAK never reached the
 *    request it failed.
 * Patch 0015 takes the answered request from the requester: it completes,
 * and the rest of it is not sent again.
 *
 * Made deterministic here: the QP is connected afresh (PSNs from 0, the
 * local ACK timeout @timeout, a peer QPN of its own for each round); the
 * peer receives request A of @op (RT_PKTS packets) and, unless @mode is
 * RT_ALONE, request B (8 bytes, PSN RT_PKTS), without answering; a plug
 * qdisc then holds what rxe retransmits after its ACK timeout, and rxe
 * stops in the middle of A (its in-flight skb limit). The peer answers
 * (RT_ACK_B: an ACK of B, RT_NAK_B: B's NAK, otherwise an ACK of A's last
 * PSN, with RT_RNR after an RNR NAK of A's first PSN), and A must then
 * complete successfully while its retransmission is still held, B with
 * the status of its answer. Unanswered, B must come again at its own PSN
 * after the plug opens, and again after the next timeout, and complete
 * on its ACK. Every PSN must carry the same request each time.
 */
static void rt_round(struct __test_metadata *_metadata,
		     FIXTURE_DATA(fuzz) *self, enum ibv_wr_opcode op,
		     enum rt_mode mode, uint8_t *src, size_t len,
		     uint8_t timeout)
{
	static const char * const names[] = {
		[RT_RNR] = "WRITE, RNR NAK", [RT_ACK_B] = "WRITE, B's ACK",
		[RT_NAK_B] = "WRITE, B's NAK",
	};
	const char *name = names[mode] ? names[mode] :
			   op == IBV_WR_SEND ? "SEND" : "WRITE";
	bool answer_b = mode == RT_ACK_B || mode == RT_NAK_B;
	bool with_b = mode != RT_ALONE;
	enum ibv_wc_status want_b = mode == RT_NAK_B ? IBV_WC_REM_ACCESS_ERR :
				    IBV_WC_SUCCESS;
	struct vu_qp q = { .cq = self->cq, .qp = self->qp };
	struct rt_seen seen[RT_PKTS + 2] = { 0 };
	uint32_t last = with_b ? RT_PKTS : RT_PKTS - 1;
	unsigned int count[RT_PKTS + 2];
	struct ibv_sge sge[2];
	struct ibv_send_wr wr[2], *bad;
	struct ibv_wc wc;
	long long backlog;
	long retries;
	int i;

	/* a QPN of its own: what an earlier round left is not this one's */
	self->rt_dqpn = PEER_QPN + 1 + mode * 2 + (op == IBV_WR_SEND);
	ASSERT_EQ(0, vu_qp_connect_to(&self->v, self->qp, self->rt_dqpn,
				      &self->peer_gid, 7, timeout));
	retries = tu_read_long(RT_RETRIES);
	ASSERT_LE(0, retries);
	ASSERT_EQ(0, sh("tc qdisc add dev odpfz0 root plug && "
			"tc qdisc change dev odpfz0 root plug release_indefinite"))
		TH_LOG("no plug qdisc (sch_plug)");

	memset(wr, 0, sizeof(wr));
	for (i = 0; i < 2; i++) {
		sge[i].addr = (uintptr_t)src + (i ? len : 0);
		sge[i].length = i ? 8 : len;
		sge[i].lkey = self->rt_mr->lkey;
		wr[i].wr_id = i;
		wr[i].sg_list = &sge[i];
		wr[i].num_sge = 1;
		wr[i].opcode = op;
		wr[i].send_flags = IBV_SEND_SIGNALED;
		wr[i].wr.rdma.remote_addr = i ? 0x900000 : 0x100000;
		wr[i].wr.rdma.rkey = 0x1234;
		wr[i].next = i || !with_b ? NULL : &wr[1];
	}
	ASSERT_EQ(0, ibv_post_send(self->qp, wr, &bad));

	/* the first transmission: A at PSNs 0..RT_PKTS - 1, B at RT_PKTS */
	ASSERT_TRUE(rt_take(_metadata, self, seen, count, last, 1))
		TH_LOG("%s: the first transmission did not arrive", name);
	for (i = 0; i <= (int)last; i++)
		ASSERT_TRUE(seen[i].have) TH_LOG("%s: PSN %d never came", name, i);

	/*
	 * The retransmission after the timeout (rxe counts it when it
	 * starts) stops in the middle of A, in the plug.
	 */
	ASSERT_EQ(0, sh("tc qdisc change dev odpfz0 root plug block"));
	backlog = rt_poll(self, rt_retransmitted, retries, 1);
	ASSERT_LE(1, backlog) TH_LOG("%s: no retransmission after the timeout", name);
	backlog = plug_backlog();
	ASSERT_GT(RT_PKTS, backlog)
		TH_LOG("%s: the plug holds %lld packets, all of A's retransmission",
		       name, backlog);

	if (mode == RT_RNR)
		rt_aeth(_metadata, self, RT_RNR_NAK, 0);
	rt_aeth(_metadata, self, mode == RT_NAK_B ? RT_ACCESS_NAK : RT_ACK,
		answer_b ? RT_PKTS : RT_PKTS - 1);
	ASSERT_EQ(0, vu_poll_one(&self->v, &q, &wc))
		TH_LOG("%s: A never completed, although the peer answered all of it",
		       name);
	EXPECT_EQ(0, wc.wr_id);
	EXPECT_EQ(IBV_WC_SUCCESS, wc.status)
		TH_LOG("%s A: %s", name, ibv_wc_status_str(wc.status));
	if (answer_b) {
		ASSERT_EQ(0, vu_poll_one(&self->v, &q, &wc))
			TH_LOG("%s: B never completed", name);
		EXPECT_EQ(1, wc.wr_id);
		EXPECT_EQ(want_b, wc.status)
			TH_LOG("%s B: %s, want %s", name,
			       ibv_wc_status_str(wc.status),
			       ibv_wc_status_str(want_b));
	}
	ksft_print_msg("%s: A completed while the plug held %lld packets of its retransmission\n",
		       name, backlog);
	ASSERT_EQ(0, sh("tc qdisc change dev odpfz0 root plug release_indefinite"));
	if (with_b && !answer_b) {
		/* B when the plug opens, then again after the next timeout */
		ASSERT_TRUE(rt_take(_metadata, self, seen, count, RT_PKTS, 2))
			TH_LOG("%s: B came %u times after A", name,
			       count[RT_PKTS]);
		rt_aeth(_metadata, self, RT_ACK, RT_PKTS);
		ASSERT_EQ(0, vu_poll_one(&self->v, &q, &wc));
		EXPECT_EQ(1, wc.wr_id);
		EXPECT_EQ(IBV_WC_SUCCESS, wc.status)
			TH_LOG("%s B: %s", name, ibv_wc_status_str(wc.status));
	}
	ASSERT_EQ(0, sh("tc qdisc del dev odpfz0 root"));
}

/*
 * rt_round() with WRITEs and with SENDs, each alone and with B; then
 * with WRITEs and B: with an RNR NAK, and with B answered (ACK, NAK)
 * while A is resent.
 */
TEST_F_TIMEOUT(fuzz, retransmission_keeps_each_psn, 600)
{
	size_t len = RT_PKTS * (128 << self->v.port_attr.active_mtu);
	uint8_t *src = mmap(NULL, len + 4096, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t timeout = vu_ack_timeout(18);	/* 4.096 us * 2^18: 1 s */

	ASSERT_NE(MAP_FAILED, src);
	tu_fill(src, len + 8, self->seed);
	self->rt_mr = vu_reg_mr(&self->v, src, len + 8,
				IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_ON_DEMAND);
	ASSERT_NE(NULL, self->rt_mr);
	rt_round(_metadata, self, IBV_WR_RDMA_WRITE, RT_ALONE, src, len,
		 timeout);
	rt_round(_metadata, self, IBV_WR_SEND, RT_ALONE, src, len, timeout);
	rt_round(_metadata, self, IBV_WR_RDMA_WRITE, RT_WITH_B, src, len,
		 timeout);
	rt_round(_metadata, self, IBV_WR_SEND, RT_WITH_B, src, len, timeout);
	rt_round(_metadata, self, IBV_WR_RDMA_WRITE, RT_RNR, src, len,
		 timeout);
	rt_round(_metadata, self, IBV_WR_RDMA_WRITE, RT_ACK_B, src, len,
		 timeout);
	rt_round(_metadata, self, IBV_WR_RDMA_WRITE, RT_NAK_B, src, len,
		 timeout);
}

TEST_HARNESS_MAIN
