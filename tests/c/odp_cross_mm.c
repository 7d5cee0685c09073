// SPDX-License-Identifier: GPL-2.0
/*
 * odp_cross_mm - an ODP MR mirrors the address space of the process that
 * registered it, whoever uses its keys (reliability.md §8 #8; issue 12).
 *
 * The parent registers an ODP MR over a buffer holding pattern A (made
 * resident by a READ) and forks; the child writes pattern B over its own
 * copy of the buffer (COW: the parent keeps A), then uses the parent's
 * keys:
 *  - child_own_context: from a device context, PD and QPs of its own, a
 *    WRITE whose local SGE names the parent's lkey must fail locally
 *    (IBV_WC_LOC_QP_OP_ERR, or LOC_PROT_ERR), and a READ of the parent's
 *    rkey with
 *    IBV_WC_REM_ACCESS_ERR (another PD); its destination stays poison;
 *  - child_on_parents_qp: through the QP the parent created (the child
 *    inherited its queues and the uverbs file), a WRITE from the buffer
 *    with the parent's lkey into the parent's second MR. uverbs refuses
 *    the child's doorbell (its credentials are not the file's), but the
 *    work request may sit in the shared send queue until the parent's
 *    next post rings it: then it runs in the parent's MR, so whatever
 *    lands holds A, the parent's bytes, never the child's B.
 * Either way, the parent's buffer still holds A and its own traffic
 * still works afterwards. Each case runs once, 200 times under make
 * stress (tu_rounds()).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "verbs_util.h"
#include "test_util.h"

#define SIZE		(4 * 4096)
#define SEED_A		11
#define SEED_B		12
#define ACC_ODP		(IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ | \
			 IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_ON_DEMAND)

FIXTURE(xmm) {
	struct vu_config	cfg;
	struct vu_ctx		v;
	struct vu_qp_pair	p;
	uint8_t			*buf;	/* pattern A, the ODP MR */
	uint8_t			*dst;	/* poison, a second ODP MR */
	struct ibv_mr		*mr, *dmr;
};

FIXTURE_SETUP(xmm)
{
	struct ibv_device_attr_ex ax;

	TU_OPEN_QUERY(&self->cfg, &self->v, &ax);
	TU_REQUIRE_CAP(ax.odp_caps.general_caps & IBV_ODP_SUPPORT,
		       "no ODP support");
	ASSERT_EQ(0, vu_qp_pair_create(&self->v, &self->p));
	self->buf = mmap(NULL, 2 * SIZE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->buf);
	self->dst = self->buf + SIZE;
	tu_fill(self->buf, SIZE, SEED_A);
	memset(self->dst, TU_POISON, SIZE);
	self->mr = vu_reg_mr(&self->v, self->buf, SIZE, ACC_ODP);
	self->dmr = vu_reg_mr(&self->v, self->dst, SIZE, ACC_ODP);
	ASSERT_NE(NULL, self->mr);
	ASSERT_NE(NULL, self->dmr);
	/* resident: the device has the parent's pages mapped */
	TU_ASSERT_OK(tu_xfer(&self->v, &self->p.a, IBV_WR_RDMA_READ, self->dst,
			     SIZE, self->dmr->lkey, (uintptr_t)self->buf,
			     self->mr->rkey));
	ASSERT_TRUE(tu_pattern_bytes("READ before the fork", self->dst,
				     SEED_A, SIZE));
	memset(self->dst, TU_POISON, SIZE);
}

FIXTURE_TEARDOWN(xmm)
{
	EXPECT_EQ(0, vu_dereg_mr(&self->v, self->dmr));
	EXPECT_EQ(0, vu_dereg_mr(&self->v, self->mr));
	if (self->buf)
		munmap(self->buf, 2 * SIZE);
	EXPECT_EQ(0, vu_qp_pair_destroy(&self->v, &self->p));
	EXPECT_EQ(0, vu_close(&self->v));
	EXPECT_TRUE(tu_live_back("umems", 0, 10000));
}

/* Wait for @pid; its exit status (0-255), or -1 when it did not exit. */
static int child_status(pid_t pid)
{
	int st;

	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

/* Child exit codes: 0 as required, else which step went wrong. */
enum { C_OK, C_OPEN, C_SETUP, C_WRITE, C_READ, C_TOUCHED };

static int child_own_context(uint8_t *buf, uint32_t lkey, uint32_t rkey)
{
	struct vu_config cfg;
	struct vu_ctx v = { 0 };
	struct vu_qp_pair p = { 0 };
	struct ibv_mr *mr;
	uint8_t *mine;
	int ret = C_OK, st;

	tu_fill(buf, SIZE, SEED_B);		/* the child's own copy now */
	if (tu_open(&cfg, &v))
		return C_OPEN;
	mine = mmap(NULL, SIZE, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mine == MAP_FAILED || vu_qp_pair_create(&v, &p))
		return C_SETUP;
	memset(mine, TU_POISON, SIZE);
	mr = vu_reg_mr(&v, mine, SIZE, ACC_ODP);
	if (!mr)
		return C_SETUP;
	/*
	 * The parent's lkey for the local SGE: another PD's key. rxe ends
	 * a WQE whose key names no MR of its PD with IBV_WC_LOC_QP_OP_ERR
	 * (mlx5: LOC_PROT_ERR); either is a local refusal, nothing is sent.
	 */
	st = tu_xfer(&v, &p.a, IBV_WR_RDMA_WRITE, buf, SIZE, lkey,
		     (uintptr_t)mine, mr->rkey);
	if (st != IBV_WC_LOC_QP_OP_ERR && st != IBV_WC_LOC_PROT_ERR) {
		ksft_print_msg("child: WRITE with the parent's lkey: %d\n", st);
		ret = C_WRITE;
	}
	/* the parent's rkey: another PD's MR */
	if (!ret && (tu_qp_reconnect(&v, p.a.qp, p.b.qp->qp_num,
				     TU_RNR_RETRY, 14) ||
		     tu_qp_reconnect(&v, p.b.qp, p.a.qp->qp_num,
				     TU_RNR_RETRY, 14) ||
		     tu_xfer(&v, &p.a, IBV_WR_RDMA_READ, mine, SIZE, mr->lkey,
			     (uintptr_t)buf, rkey) != IBV_WC_REM_ACCESS_ERR))
		ret = C_READ;
	if (!ret && !tu_all_bytes("child's destination", mine, TU_POISON,
				  SIZE))
		ret = C_TOUCHED;
	return ret;	/* the process's exit releases the rest */
}

/* Rounds of each case: 1, or 200 under make stress (tu_rounds()). */
#define ROUNDS	tu_rounds(1, 200)

static void own_context_round(struct __test_metadata *_metadata,
			      FIXTURE_DATA(xmm) *self)
{
	pid_t pid = fork();

	ASSERT_LE(0, pid);
	if (!pid)
		_exit(child_own_context(self->buf, self->mr->lkey,
					self->mr->rkey));
	ASSERT_EQ(C_OK, child_status(pid));
	ASSERT_TRUE(tu_pattern_bytes("parent's buffer", self->buf, SEED_A,
				     SIZE));
	TU_ASSERT_OK(tu_xfer(&self->v, &self->p.a, IBV_WR_RDMA_READ, self->dst,
			     SIZE, self->dmr->lkey, (uintptr_t)self->buf,
			     self->mr->rkey));
	ASSERT_TRUE(tu_pattern_bytes("READ after the child", self->dst,
				     SEED_A, SIZE));
}

TEST_F_TIMEOUT(xmm, child_own_context, 3600)
{
	long r;

	for (r = 0; r < ROUNDS; r++)
		own_context_round(_metadata, self);
}

static void parents_qp_round(struct __test_metadata *_metadata,
			     FIXTURE_DATA(xmm) *self)
{
	struct ibv_wc wc;
	pid_t pid = fork();
	int n, mine = 0;

	ASSERT_LE(0, pid);
	if (!pid) {
		tu_fill(self->buf, SIZE, SEED_B);
		/* its result does not matter: what may land does */
		vu_post_send(&self->v, &self->p.a, IBV_WR_RDMA_WRITE, 5,
			     self->buf, SIZE, self->mr->lkey,
			     (uintptr_t)self->dst, self->dmr->rkey);
		_exit(0);
	}
	ASSERT_EQ(0, child_status(pid));
	ASSERT_TRUE(tu_pattern_bytes("parent's buffer", self->buf, SEED_A,
				     SIZE));
	/* the parent's own READ: rings whatever the child queued too */
	ASSERT_EQ(0, vu_post_send(&self->v, &self->p.a, IBV_WR_RDMA_READ, 7,
				  self->dst + SIZE / 2, 64, self->dmr->lkey,
				  (uintptr_t)self->buf, self->mr->rkey));
	for (n = 0; n < 2 && !mine; n++) {
		ASSERT_EQ(0, vu_poll_one(&self->v, &self->p.a, &wc));
		if (wc.wr_id == 7) {
			ASSERT_EQ(IBV_WC_SUCCESS, wc.status);
			mine = 1;
		} else {
			ksft_print_msg("the child's WRITE ran in the parent: %s\n",
				       ibv_wc_status_str(wc.status));
		}
	}
	ASSERT_TRUE(mine);
	/* poison where the child's WRITE did not land, else A; never B */
	ASSERT_TRUE(tu_pattern_bytes("the READ", self->dst + SIZE / 2, SEED_A,
				     64));
	if (self->dst[0] != TU_POISON) {
		ASSERT_TRUE(tu_pattern_bytes("the child's WRITE", self->dst,
					     SEED_A, SIZE / 2));
	} else {
		ASSERT_TRUE(tu_all_bytes("no WRITE landed", self->dst,
					 TU_POISON, SIZE / 2));
	}
}

TEST_F_TIMEOUT(xmm, child_on_parents_qp, 3600)
{
	long r;

	for (r = 0; r < ROUNDS; r++)
		parents_qp_round(_metadata, self);
}

TEST_HARNESS_MAIN
