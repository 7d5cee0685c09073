// SPDX-License-Identifier: GPL-2.0
/*
 * srq_last_wqe - IB_EVENT_QP_LAST_WQE_REACHED comes once per entry of an
 * SRQ-attached QP into the error state (issue 16; patch 0008).
 *
 * rxe's responder flushes an SRQ-attached QP each time it runs in the
 * error state, and raised the event every time: once on entry, then for
 * each packet that still reached the QP. Consumers expect it once; UCX
 * asserts on the second. QP b (attached to an SRQ) is driven into the
 * error state, then its peer a keeps sending to it until a's own send
 * fails with RETRY_EXC_ERR (so several packets reached b, each running
 * b's responder); then b's events are counted. Ways into the error state:
 *  - modify_to_err: ibv_modify_qp(ERR); done twice on the same QP, with
 *    a RESET and reconnection in between: one event each time;
 *  - remote_access_error: a's WRITE with a bad rkey makes b's responder
 *    fail (class C error): one event;
 *  - destroy_during_traffic: b is destroyed after its event was acked
 *    while a's packets still come: ibv_destroy_qp() waits for every event
 *    reported to be acked, so a second event would hang it.
 *
 * Mutation record: on the tree before patch 0008, modify_to_err counted
 * 4 more events after the first entry, remote_access_error 6 more;
 * destroy_during_traffic passed there too (it guards that destroy
 * returns with every reported event acked).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "verbs_util.h"
#include "test_util.h"

#define SENDS		3

FIXTURE(srq) {
	struct vu_config	cfg;
	struct vu_ctx		v;
	struct ibv_device_attr_ex ax;
	struct ibv_srq		*srq;
	struct vu_qp		a, b;
	uint8_t			buf[4096];
	struct ibv_mr		*mr;
};

/* An RC QP with its own CQ; on @srq if given. */
static int make_qp(FIXTURE_DATA(srq) *self, struct vu_qp *q,
		   struct ibv_srq *srq)
{
	struct ibv_qp_init_attr ia = {
		.qp_type = IBV_QPT_RC, .srq = srq,
		.cap = { .max_send_wr = 8, .max_recv_wr = srq ? 0 : 8,
			 .max_send_sge = 1, .max_recv_sge = 1 },
	};

	q->cq = ibv_create_cq(self->v.ctx, 16, NULL, NULL, 0);
	if (!q->cq)
		return -1;
	ia.send_cq = ia.recv_cq = q->cq;
	q->qp = ibv_create_qp(self->v.pd, &ia);
	return q->qp ? 0 : -1;
}

/* a to RTS towards b, giving up quickly (retry_cnt 1, a short timeout). */
static int connect_a(FIXTURE_DATA(srq) *self)
{
	struct ibv_qp_attr attr = { .timeout = 10, .retry_cnt = 1 };

	if (vu_qp_connect(&self->v, self->a.qp, self->b.qp->qp_num))
		return -1;
	return ibv_modify_qp(self->a.qp, &attr,
			     IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT);
}

/* a <-> b, both to RTS. */
static int connect_pair(FIXTURE_DATA(srq) *self)
{
	if (vu_qp_connect(&self->v, self->b.qp, self->a.qp->qp_num))
		return -1;
	return connect_a(self);
}

FIXTURE_SETUP(srq)
{
	struct ibv_srq_init_attr sa = { .attr = { .max_wr = 16, .max_sge = 1 } };
	int fl;

	TU_OPEN_QUERY(&self->cfg, &self->v, &self->ax);
	self->srq = ibv_create_srq(self->v.pd, &sa);
	ASSERT_NE(NULL, self->srq);
	ASSERT_EQ(0, make_qp(self, &self->a, NULL));
	ASSERT_EQ(0, make_qp(self, &self->b, self->srq));
	ASSERT_EQ(0, connect_pair(self));
	self->mr = vu_reg_mr(&self->v, self->buf, sizeof(self->buf),
			     IBV_ACCESS_LOCAL_WRITE);
	ASSERT_NE(NULL, self->mr);
	fl = fcntl(self->v.ctx->async_fd, F_GETFL);
	ASSERT_EQ(0, fcntl(self->v.ctx->async_fd, F_SETFL, fl | O_NONBLOCK));
}

FIXTURE_TEARDOWN(srq)
{
	if (self->a.qp)
		ibv_destroy_qp(self->a.qp);
	if (self->b.qp)
		ibv_destroy_qp(self->b.qp);
	if (self->a.cq)
		ibv_destroy_cq(self->a.cq);
	if (self->b.cq)
		ibv_destroy_cq(self->b.cq);
	vu_dereg_mr(&self->v, self->mr);
	if (self->srq)
		ibv_destroy_srq(self->srq);
	vu_close(&self->v);
}

/*
 * Read the async events pending now (waiting up to @wait_ms for the
 * first); ack each; return how many were LAST_WQE_REACHED for @qp.
 */
static int last_wqe_events(FIXTURE_DATA(srq) *self, struct ibv_qp *qp,
			   int wait_ms)
{
	struct pollfd pfd = { .fd = self->v.ctx->async_fd, .events = POLLIN };
	struct ibv_async_event ev;
	int n = 0;

	if (wait_ms && poll(&pfd, 1, wait_ms) <= 0)
		return 0;
	while (!ibv_get_async_event(self->v.ctx, &ev)) {
		if (ev.event_type == IBV_EVENT_QP_LAST_WQE_REACHED &&
		    ev.element.qp == qp)
			n++;
		ibv_ack_async_event(&ev);
	}
	return n;
}

static int set_state(struct ibv_qp *qp, enum ibv_qp_state s)
{
	struct ibv_qp_attr attr = { .qp_state = s };

	return ibv_modify_qp(qp, &attr, IBV_QP_STATE);
}

/*
 * a sends SENDS messages to b, which is in the error state and answers
 * none: each send ends in RETRY_EXC_ERR (the first) or WR_FLUSH_ERR once
 * a is in error too. Every packet that reached b ran b's responder.
 */
static void send_into_error(struct __test_metadata *_metadata,
			    FIXTURE_DATA(srq) *self)
{
	struct ibv_wc wc;
	int i;

	for (i = 0; i < SENDS; i++)
		ASSERT_EQ(0, vu_post_send(&self->v, &self->a, IBV_WR_SEND,
					  i, self->buf, 64, self->mr->lkey,
					  0, 0));
	for (i = 0; i < SENDS; i++) {
		ASSERT_EQ(0, vu_poll_one(&self->v, &self->a, &wc));
		ASSERT_NE(IBV_WC_SUCCESS, wc.status);
	}
}

TEST_F(srq, modify_to_err)
{
	int round;

	for (round = 0; round < 2; round++) {
		ASSERT_EQ(0, set_state(self->b.qp, IBV_QPS_ERR));
		ASSERT_EQ(1, last_wqe_events(self, self->b.qp, tu_ms(10000)))
			TH_LOG("round %d: no event on entry", round);
		send_into_error(_metadata, self);
		/* RESET drains b's responder; then count what came since */
		ASSERT_EQ(0, set_state(self->b.qp, IBV_QPS_RESET));
		ASSERT_EQ(0, last_wqe_events(self, self->b.qp, 0))
			TH_LOG("round %d: LAST_WQE_REACHED came more than once",
			       round);
		ASSERT_EQ(0, set_state(self->a.qp, IBV_QPS_RESET));
		ASSERT_EQ(0, connect_pair(self));
	}
}

TEST_F(srq, remote_access_error)
{
	uint8_t local[64];
	struct ibv_mr *lmr = vu_reg_mr(&self->v, local, sizeof(local),
				       IBV_ACCESS_LOCAL_WRITE);

	ASSERT_NE(NULL, lmr);
	/* a WRITE with an rkey that names nothing: b's responder fails */
	TU_ASSERT_WC(IBV_WC_REM_ACCESS_ERR,
		     tu_xfer(&self->v, &self->a, IBV_WR_RDMA_WRITE, local,
			     sizeof(local), lmr->lkey, 0x1000, 0xdead00));
	ASSERT_EQ(1, last_wqe_events(self, self->b.qp, tu_ms(10000)));
	/* a is in error: reconnect it alone and send into b's error */
	ASSERT_EQ(0, set_state(self->a.qp, IBV_QPS_RESET));
	ASSERT_EQ(0, connect_a(self));
	send_into_error(_metadata, self);
	ASSERT_EQ(0, set_state(self->b.qp, IBV_QPS_RESET));
	ASSERT_EQ(0, last_wqe_events(self, self->b.qp, 0));
	vu_dereg_mr(&self->v, lmr);
}

TEST_F(srq, destroy_during_traffic)
{
	ASSERT_EQ(0, set_state(self->b.qp, IBV_QPS_ERR));
	ASSERT_EQ(1, last_wqe_events(self, self->b.qp, tu_ms(10000)));
	send_into_error(_metadata, self);
	/* waits until every event reported for b was acked */
	ASSERT_EQ(0, ibv_destroy_qp(self->b.qp));
	self->b.qp = NULL;
}

TEST_HARNESS_MAIN
