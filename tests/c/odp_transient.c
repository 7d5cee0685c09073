// SPDX-License-Identifier: GPL-2.0
/*
 * odp_transient - a transient failure of an ODP access, at every packet
 * position of every operation, leaves the QP and the data as if it had
 * not happened.
 *
 * An access to an ODP MR that keeps losing its pages to invalidations
 * fails with -EAGAIN. odp_mirror's debugfs knob fail_access_nth makes the
 * Nth access from now fail that way, once. Each case arms it with N = 1,
 * 2, ... and runs its operation once per N, until an operation makes
 * fewer than N accesses (the knob is still armed afterwards); every
 * accesses of the operation, requester gather, responder scatter and
 * completer placement alike, is failed once that way. After each run
 * every byte of every buffer is checked against a shadow (the bytes the
 * operation writes, and the guard bytes around them that it must not),
 * with byte_len, and the QP must still work: the completion is a
 * success.
 *
 * Operations, all on ODP MRs at unaligned offsets across pages (the MTU
 * is rxe's on dummy0, 1024, so each is several packets):
 *  - SEND/RECV with 3 SGEs on each side;
 *  - RDMA WRITE and READ with 3 local SGEs;
 *  - FETCH_ADD and CMP_SWP (ODP target and ODP result buffer);
 *  - UD SEND into an ODP receive buffer (GRH + payload): a message whose
 *    placement fails is dropped (UD), and the receive WQE must take the
 *    next message exactly as if the first had never come.
 *
 * Mutation record (on the tree before patch 0007, which made these
 * pass): send_recv_3sge fails (requester: LOC_QP_OP_ERR at the first
 * gather; a retried packet of the receive lands at a stale offset);
 * write_3sge fails (LOC_QP_OP_ERR); read_3sge fails (the READ response
 * RNR NAK carries the request's PSN: no completion); ud_send shifts the
 * next message by the GRH; atomics: the retried atomic is taken for a
 * READ in progress.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "verbs_util.h"
#include "test_util.h"

#define KNOB		"/sys/kernel/debug/odp_mirror/fail_access_nth"
#define BUF_PAGES	8
#define ACC_ALL		(IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | \
			 IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_ATOMIC | \
			 IBV_ACCESS_ON_DEMAND)
/* No operation makes more accesses than this; a case that reaches it fails. */
#define MAX_POSITIONS	200
#define GRH_BYTES	40
#define UD_QKEY		0x11111111

/* Three SGEs: unaligned, across page boundaries. */
static const struct { size_t off, len; } src_sges[3] = {
	{ 100, 4900 }, { 6000, 100 }, { 8000, 5000 },
};
static const struct { size_t off, len; } dst_sges[3] = {
	{ 333, 3000 }, { 5000, 4113 }, { 12000, 2887 },
};
#define XFER_LEN	10000

FIXTURE(transient) {
	struct vu_config	cfg;
	struct vu_ctx		v;
	struct ibv_device_attr_ex ax;
	struct vu_qp_pair	p;
	size_t			len;
	uint8_t			*src, *dst;
	uint8_t			*shadow;	/* what dst must hold */
	struct ibv_mr		*src_mr, *dst_mr;
	unsigned int		seed;
};

FIXTURE_SETUP(transient)
{
	TU_OPEN_QUERY(&self->cfg, &self->v, &self->ax);
	ASSERT_TRUE(self->ax.odp_caps.general_caps & IBV_ODP_SUPPORT)
		TH_LOG("our rxe must advertise ODP");
	ASSERT_EQ(0, access(KNOB, W_OK)) TH_LOG("%s: %s", KNOB,
						 strerror(errno));
	self->v.cfg.max_sge = 3;
	ASSERT_EQ(0, vu_qp_pair_create(&self->v, &self->p));
	self->len = BUF_PAGES * getpagesize();
	self->src = mmap(NULL, self->len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	self->dst = mmap(NULL, self->len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->src);
	ASSERT_NE(MAP_FAILED, self->dst);
	self->shadow = malloc(self->len);
	ASSERT_NE(NULL, self->shadow);
	self->src_mr = vu_reg_mr(&self->v, self->src, self->len, ACC_ALL);
	self->dst_mr = vu_reg_mr(&self->v, self->dst, self->len, ACC_ALL);
	ASSERT_NE(NULL, self->src_mr);
	ASSERT_NE(NULL, self->dst_mr);
}

FIXTURE_TEARDOWN(transient)
{
	tu_write_long(KNOB, 0);
	vu_dereg_mr(&self->v, self->src_mr);
	vu_dereg_mr(&self->v, self->dst_mr);
	vu_qp_pair_destroy(&self->v, &self->p);
	if (self->src && self->src != MAP_FAILED)
		munmap(self->src, self->len);
	if (self->dst && self->dst != MAP_FAILED)
		munmap(self->dst, self->len);
	free(self->shadow);
	vu_close(&self->v);
}

/*
 * A fresh round: src holds pattern @seed, dst and its shadow the poison.
 * MADV_DONTNEED first, so that every round faults its pages again.
 */
static void round_init(FIXTURE_DATA(transient) *self, unsigned int seed)
{
	madvise(self->src, self->len, MADV_DONTNEED);
	madvise(self->dst, self->len, MADV_DONTNEED);
	tu_fill(self->src, self->len, seed);
	memset(self->dst, TU_POISON, self->len);
	memset(self->shadow, TU_POISON, self->len);
	self->seed = seed;
}

/* Arm the knob at @n; did the last operation leave it armed (too few)? */
static int arm(long n)
{
	return tu_write_long(KNOB, n);
}

static bool left_armed(void)
{
	long left = tu_read_long(KNOB);

	if (left > 0)
		tu_write_long(KNOB, 0);
	return left != 0;
}

/* Fill @sg from @sges over @base (@mr); the total length. */
static size_t fill_sges(struct ibv_sge *sg, const void *sges_v,
			uint8_t *base, struct ibv_mr *mr)
{
	const struct { size_t off, len; } *sges = sges_v;
	size_t total = 0;
	int i;

	for (i = 0; i < 3; i++) {
		sg[i].addr = (uintptr_t)(base + sges[i].off);
		sg[i].length = sges[i].len;
		sg[i].lkey = mr->lkey;
		total += sges[i].len;
	}
	return total;
}

/* The stream of the 3 source SGEs lands in the 3 destination SGEs. */
static void shadow_scatter(FIXTURE_DATA(transient) *self)
{
	uint8_t stream[XFER_LEN];
	size_t at = 0;
	int i;

	for (i = 0; i < 3; i++) {
		memcpy(stream + at, self->src + src_sges[i].off,
		       src_sges[i].len);
		at += src_sges[i].len;
	}
	for (at = 0, i = 0; i < 3; i++) {
		memcpy(self->shadow + dst_sges[i].off, stream + at,
		       dst_sges[i].len);
		at += dst_sges[i].len;
	}
}

static int post(struct ibv_qp *qp, struct ibv_send_wr *wr)
{
	struct ibv_send_wr *bad;

	return ibv_post_send(qp, wr, &bad);
}

/*
 * The next completion on @q, which must be a success at position @n (the
 * failed access redone); its byte_len.
 */
static uint32_t wc_ok(struct __test_metadata *_metadata,
		      FIXTURE_DATA(transient) *self, struct vu_qp *q,
		      const char *what, long n)
{
	struct ibv_wc wc;

	ASSERT_EQ(0, vu_poll_one(&self->v, q, &wc))
		TH_LOG("position %ld: no %s completion", n, what);
	ASSERT_EQ(IBV_WC_SUCCESS, wc.status)
		TH_LOG("position %ld: %s %s", n, what,
		       ibv_wc_status_str(wc.status));
	return wc.byte_len;
}

/* dst holds what its shadow says, every byte, at position @n. */
static void dst_exact(struct __test_metadata *_metadata,
		      FIXTURE_DATA(transient) *self, long n)
{
	ASSERT_TRUE(tu_same_bytes("dst", self->dst, self->shadow, self->len))
		TH_LOG("position %ld", n);
}

/* Positions n = 1, 2, ..., MAX_POSITIONS, the knob armed at each. */
#define FOR_EACH_POSITION(n)						\
	for (n = 1; n <= MAX_POSITIONS && !arm(n); n++)

TEST_F(transient, send_recv_3sge)
{
	struct ibv_sge ssg[3], rsg[3];
	struct ibv_recv_wr rwr = { .wr_id = 1, .sg_list = rsg, .num_sge = 3 };
	struct ibv_send_wr swr = {
		.wr_id = 2, .sg_list = ssg, .num_sge = 3,
		.opcode = IBV_WR_SEND, .send_flags = IBV_SEND_SIGNALED,
	};
	struct ibv_recv_wr *rbad;
	long n;

	ASSERT_EQ(XFER_LEN, fill_sges(ssg, src_sges, self->src, self->src_mr));
	ASSERT_EQ(XFER_LEN, fill_sges(rsg, dst_sges, self->dst, self->dst_mr));
	FOR_EACH_POSITION(n) {
		round_init(self, n);
		shadow_scatter(self);
		ASSERT_EQ(0, ibv_post_recv(self->p.b.qp, &rwr, &rbad));
		ASSERT_EQ(0, post(self->p.a.qp, &swr));
		wc_ok(_metadata, self, &self->p.a, "send", n);
		ASSERT_EQ(XFER_LEN, wc_ok(_metadata, self, &self->p.b,
					  "receive", n))
			TH_LOG("position %ld: byte_len", n);
		dst_exact(_metadata, self, n);
		if (left_armed())
			break;
	}
	ASSERT_LT(2, n) TH_LOG("too few accesses failed");
	ASSERT_GE(MAX_POSITIONS, n);
	ksft_print_msg("send_recv_3sge: %ld positions failed in turn\n", n - 1);
}

/* RDMA WRITE (or READ) with 3 local SGEs against a contiguous remote range. */
static void rdma_3sge(struct __test_metadata *_metadata,
		      FIXTURE_DATA(transient) *self, bool write)
{
	struct ibv_sge sg[3];
	struct ibv_send_wr wr = {
		.wr_id = 3, .sg_list = sg, .num_sge = 3,
		.send_flags = IBV_SEND_SIGNALED,
	};
	const size_t roff = 777;
	size_t at;
	long n;
	int i;

	FOR_EACH_POSITION(n) {
		round_init(self, n);
		if (write) {
			/* local src SGEs -> dst + roff */
			ASSERT_EQ(XFER_LEN, fill_sges(sg, src_sges, self->src,
						      self->src_mr));
			wr.opcode = IBV_WR_RDMA_WRITE;
			wr.wr.rdma.remote_addr = (uintptr_t)self->dst + roff;
			wr.wr.rdma.rkey = self->dst_mr->rkey;
			for (at = roff, i = 0; i < 3; i++) {
				memcpy(self->shadow + at,
				       self->src + src_sges[i].off,
				       src_sges[i].len);
				at += src_sges[i].len;
			}
		} else {
			/* src + roff -> local dst SGEs */
			ASSERT_EQ(XFER_LEN, fill_sges(sg, dst_sges, self->dst,
						      self->dst_mr));
			wr.opcode = IBV_WR_RDMA_READ;
			wr.wr.rdma.remote_addr = (uintptr_t)self->src + roff;
			wr.wr.rdma.rkey = self->src_mr->rkey;
			for (at = roff, i = 0; i < 3; i++) {
				memcpy(self->shadow + dst_sges[i].off,
				       self->src + at, dst_sges[i].len);
				at += dst_sges[i].len;
			}
		}
		ASSERT_EQ(0, post(self->p.a.qp, &wr));
		wc_ok(_metadata, self, &self->p.a, write ? "write" : "read", n);
		dst_exact(_metadata, self, n);
		if (left_armed())
			break;
	}
	ASSERT_LT(2, n) TH_LOG("too few accesses failed");
	ASSERT_GE(MAX_POSITIONS, n);
	ksft_print_msg("%s_3sge: %ld positions failed in turn\n",
		       write ? "write" : "read", n - 1);
}

TEST_F(transient, write_3sge)
{
	rdma_3sge(_metadata, self, true);
}

TEST_F(transient, read_3sge)
{
	rdma_3sge(_metadata, self, false);
}

TEST_F(transient, atomics)
{
	const size_t target = 3 * 4096 + 8, result = 5 * 4096 + 16;
	uint64_t *t = (uint64_t *)(self->dst + target);
	uint64_t *r = (uint64_t *)(self->src + result);
	uint64_t before, want, swap;
	enum ibv_wr_opcode op;
	long n;
	int k;

	for (k = 0; k < 2; k++) {
		op = k ? IBV_WR_ATOMIC_CMP_AND_SWP :
			 IBV_WR_ATOMIC_FETCH_AND_ADD;
		FOR_EACH_POSITION(n) {
			round_init(self, n);
			before = 0x1000 + n;
			memcpy(t, &before, sizeof(before));
			*r = 0;
			swap = 0xabcd0000 + (uint64_t)n;
			want = k ? swap : before + 5;
			memcpy(self->shadow + target, &want, sizeof(want));
			TU_ASSERT_OK(tu_atomic(&self->v, &self->p.a, op, r,
					       self->src_mr->lkey,
					       (uintptr_t)t,
					       self->dst_mr->rkey,
					       k ? before : 5, swap));
			ASSERT_EQ(before, *r) TH_LOG("position %ld: result",
						     n);
			ASSERT_TRUE(tu_same_bytes("dst", self->dst,
						  self->shadow, self->len))
				TH_LOG("position %ld", n);
			if (left_armed())
				break;
		}
		ASSERT_LT(1, n) TH_LOG("too few accesses failed");
		ASSERT_GE(MAX_POSITIONS, n);
		ksft_print_msg("%s: %ld positions failed in turn\n",
			       k ? "cmp_swp" : "fetch_add", n - 1);
	}
}

/* ---- UD ----------------------------------------------------------------- */

static int ud_qp(FIXTURE_DATA(transient) *self, struct ibv_cq *cq,
		 struct ibv_qp **qp)
{
	struct ibv_qp_init_attr ia = {
		.send_cq = cq, .recv_cq = cq, .qp_type = IBV_QPT_UD,
		.cap = { .max_send_wr = 4, .max_recv_wr = 4,
			 .max_send_sge = 2, .max_recv_sge = 2 },
	};
	struct ibv_qp_attr a = {
		.qp_state = IBV_QPS_INIT, .port_num = self->cfg.port,
		.qkey = UD_QKEY,
	};

	*qp = ibv_create_qp(self->v.pd, &ia);
	if (!*qp)
		return -1;
	if (ibv_modify_qp(*qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX |
			  IBV_QP_PORT | IBV_QP_QKEY))
		return -1;
	a.qp_state = IBV_QPS_RTR;
	if (ibv_modify_qp(*qp, &a, IBV_QP_STATE))
		return -1;
	a.qp_state = IBV_QPS_RTS;
	a.sq_psn = 0;
	return ibv_modify_qp(*qp, &a, IBV_QP_STATE | IBV_QP_SQ_PSN);
}

/* One UD message of @len bytes of pattern @seed from src + @soff. */
static int ud_send(struct ibv_qp *qp, struct ibv_ah *ah, uint32_t qpn,
		   FIXTURE_DATA(transient) *self, size_t soff, uint32_t len,
		   uint64_t wr_id)
{
	struct ibv_sge sg = {
		.addr = (uintptr_t)self->src + soff, .length = len,
		.lkey = self->src_mr->lkey,
	};
	struct ibv_send_wr wr = {
		.wr_id = wr_id, .sg_list = &sg, .num_sge = 1,
		.opcode = IBV_WR_SEND, .send_flags = IBV_SEND_SIGNALED,
		.wr.ud = { .ah = ah, .remote_qpn = qpn,
			   .remote_qkey = UD_QKEY },
	};

	return post(qp, &wr);
}

/* Which of the @n messages at @msg_off does @got hold (-1: none)? */
static int which_msg(FIXTURE_DATA(transient) *self, const uint8_t *got,
		     const size_t *msg_off, int n, uint32_t len)
{
	int m;

	for (m = 0; m < n; m++)
		if (!memcmp(got, self->src + msg_off[m], len))
			return m;
	return -1;
}

/*
 * Per round, a fresh receiving UD QP with two receives (WQE A and B, GRH
 * and payload in two SGEs each, in the ODP dst MR); messages 1, 2 and 3
 * are sent with the knob armed. A message whose placement fails is
 * dropped (UD's right), so A and B take two of the three, in order, each
 * whole and at its place: no GRH or byte of a dropped message may show.
 * The receiving QP goes at the end of the round, with whatever was still
 * on its way to it.
 */
TEST_F(transient, ud_send)
{
	const uint32_t mlen = 700;
	const size_t woff[2] = { 100, 4096 + 300 }, msg_off[3] = {
		64, 2 * 4096 - 200, 5 * 4096 + 5,	/* in src */
	};
	struct ibv_cq *scq, *rcq;
	struct ibv_qp *sqp, *rqp;
	struct ibv_ah_attr aha = {
		.is_global = 1, .port_num = self->cfg.port,
		.grh = { .dgid = self->v.gid, .sgid_index = self->cfg.gid_idx,
			 .hop_limit = 1 },
	};
	struct ibv_ah *ah;
	struct ibv_wc wc;
	long n, dropped = 0;
	int w, m, got[2];

	scq = ibv_create_cq(self->v.ctx, 8, NULL, NULL, 0);
	rcq = ibv_create_cq(self->v.ctx, 8, NULL, NULL, 0);
	ASSERT_NE(NULL, scq);
	ASSERT_NE(NULL, rcq);
	ASSERT_EQ(0, ud_qp(self, scq, &sqp));
	ah = ibv_create_ah(self->v.pd, &aha);
	ASSERT_NE(NULL, ah);

	FOR_EACH_POSITION(n) {
		struct vu_qp s = { .cq = scq, .qp = sqp };
		struct vu_qp r = { .cq = rcq };

		round_init(self, n);
		ASSERT_EQ(0, ud_qp(self, rcq, &rqp));
		r.qp = rqp;
		for (w = 0; w < 2; w++) {
			struct ibv_sge sg[2] = {
				{ (uintptr_t)self->dst + woff[w], GRH_BYTES,
				  self->dst_mr->lkey },
				{ (uintptr_t)self->dst + woff[w] + GRH_BYTES,
				  mlen + 100, self->dst_mr->lkey },
			};
			struct ibv_recv_wr rwr = {
				.wr_id = 10 + w, .sg_list = sg, .num_sge = 2,
			};
			struct ibv_recv_wr *bad;

			ASSERT_EQ(0, ibv_post_recv(rqp, &rwr, &bad));
		}
		for (m = 0; m < 3; m++) {
			ASSERT_EQ(0, ud_send(sqp, ah, rqp->qp_num, self,
					     msg_off[m], mlen, 20 + m));
			ASSERT_EQ(0, vu_poll_one(&self->v, &s, &wc));
			ASSERT_EQ(IBV_WC_SUCCESS, wc.status)
				TH_LOG("position %ld: send %d: %s", n, m,
				       ibv_wc_status_str(wc.status));
		}
		for (w = 0; w < 2; w++) {
			ASSERT_EQ(0, vu_poll_one(&self->v, &r, &wc))
				TH_LOG("position %ld: receive %d missing", n,
				       w);
			ASSERT_EQ(IBV_WC_SUCCESS, wc.status);
			ASSERT_EQ((uint64_t)(10 + w), wc.wr_id);
			ASSERT_EQ(GRH_BYTES + mlen, wc.byte_len);
			got[w] = which_msg(self, self->dst + woff[w] +
					   GRH_BYTES, msg_off, 3, mlen);
			ASSERT_LE(0, got[w])
				TH_LOG("position %ld: WQE %d holds no message whole at its place",
				       n, w);
			memcpy(self->shadow + woff[w] + GRH_BYTES,
			       self->src + msg_off[got[w]], mlen);
			/* the GRH bytes are the kernel's: as they are */
			memcpy(self->shadow + woff[w], self->dst + woff[w],
			       GRH_BYTES);
		}
		ASSERT_LT(got[0], got[1]) TH_LOG("position %ld", n);
		dropped += got[0] + got[1] > 1;
		ASSERT_TRUE(tu_same_bytes("dst", self->dst, self->shadow,
					  self->len))
			TH_LOG("position %ld: messages %d, %d", n, got[0] + 1,
			       got[1] + 1);
		ASSERT_EQ(0, ibv_destroy_qp(rqp));
		if (left_armed())
			break;
	}
	ASSERT_LT(2, n) TH_LOG("too few accesses failed");
	ASSERT_GE(MAX_POSITIONS, n);
	ksft_print_msg("ud_send: %ld positions failed in turn, a message dropped at %ld\n",
		       n - 1, dropped);
	ibv_destroy_ah(ah);
	ibv_destroy_qp(sqp);
	ibv_destroy_cq(scq);
	ibv_destroy_cq(rcq);
}

TEST_HARNESS_MAIN
