// SPDX-License-Identifier: GPL-2.0
/*
 * pinned_data - move data between two RC QPs on one rxe device with RDMA
 * WRITE, RDMA READ and SEND/RECV over ordinary (pinned) MRs, and compare
 * every byte: the target range must hold the source pattern, the guard
 * bytes around it (inside the same MR) must keep their poison, the source
 * must be unchanged.
 *
 * The fixture variant carries the operation and extra access flags OR'd
 * into the source and destination MRs (0 here). ODP variants reuse every
 * case by adding IBV_ACCESS_ON_DEMAND there.
 *
 * Device: RXE_ODP_DEV (default rxe0), RXE_ODP_GID_IDX (default 1); skips
 * when the device does not exist.
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

#define ITERS		3	/* transfers per case, reusing the MRs */
#define DST_POISON	TU_POISON	/* every destination byte before a transfer */
#define SRC_GUARD	TU_GUARD	/* source bytes outside the message */

enum xfer_op {
	XFER_WRITE,
	XFER_READ,
	XFER_SEND,
};

/*
 * One registered buffer: a page of guard, @off bytes of guard, the @len
 * message bytes at @msg, then at least a page of guard. The MR covers all
 * of it, so a stray access past the message stays inside the MR and shows
 * up as a changed guard byte rather than an access error.
 */
struct xfer_buf {
	uint8_t		*base;
	size_t		size;
	uint8_t		*msg;
	size_t		len;
	struct ibv_mr	*mr;
};

FIXTURE(rc) {
	struct vu_config	cfg;
	struct vu_ctx		v;
	struct vu_qp_pair	qps;
	struct xfer_buf		src;
	struct xfer_buf		dst;
};

FIXTURE_VARIANT(rc) {
	enum xfer_op	op;
	unsigned int	src_access;	/* extra IBV_ACCESS_* on the source MR */
	unsigned int	dst_access;	/* ... and on the destination MR */
	bool		dontneed;	/* MADV_DONTNEED both buffers each round */
};

FIXTURE_VARIANT_ADD(rc, write) {
	.op = XFER_WRITE,
};

FIXTURE_VARIANT_ADD(rc, read) {
	.op = XFER_READ,
};

FIXTURE_VARIANT_ADD(rc, send) {
	.op = XFER_SEND,
};

/*
 * The same work on ODP MRs, whose pages are dropped after every round:
 * each round must fault fresh pages in, never reuse a stale translation.
 */
FIXTURE_VARIANT_ADD(rc, odp_write) {
	.op = XFER_WRITE,
	.src_access = IBV_ACCESS_ON_DEMAND,
	.dst_access = IBV_ACCESS_ON_DEMAND,
	.dontneed = true,
};

FIXTURE_VARIANT_ADD(rc, odp_read) {
	.op = XFER_READ,
	.src_access = IBV_ACCESS_ON_DEMAND,
	.dst_access = IBV_ACCESS_ON_DEMAND,
	.dontneed = true,
};

FIXTURE_VARIANT_ADD(rc, odp_send) {
	.op = XFER_SEND,
	.src_access = IBV_ACCESS_ON_DEMAND,
	.dst_access = IBV_ACCESS_ON_DEMAND,
	.dontneed = true,
};

FIXTURE_SETUP(rc)
{
	int ret = tu_open(&self->cfg, &self->v);

	TU_REQUIRE_CAP(ret != -ENODEV, "no RDMA device %s",
		       self->cfg.dev_name);
	ASSERT_EQ(0, ret);
	ASSERT_EQ(0, vu_qp_pair_create(&self->v, &self->qps));
}

static int buf_free(struct vu_ctx *v, struct xfer_buf *b)
{
	int ret = 0;

	if (b->mr)
		ret = vu_dereg_mr(v, b->mr);
	if (b->base && munmap(b->base, b->size) && !ret)
		ret = -errno;
	memset(b, 0, sizeof(*b));
	return ret;
}

FIXTURE_TEARDOWN(rc)
{
	EXPECT_EQ(0, buf_free(&self->v, &self->dst));
	EXPECT_EQ(0, buf_free(&self->v, &self->src));
	EXPECT_EQ(0, vu_qp_pair_destroy(&self->v, &self->qps));
	EXPECT_EQ(0, vu_close(&self->v));
}

static int buf_alloc(struct vu_ctx *v, struct xfer_buf *b, size_t off,
		     size_t len, unsigned int access)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	b->size = (page + off + len + 2 * page - 1) / page * page;
	b->base = mmap(NULL, b->size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (b->base == MAP_FAILED) {
		b->base = NULL;
		return -errno;
	}
	b->msg = b->base + page + off;
	b->len = len;
	b->mr = vu_reg_mr(v, b->base, b->size, access);
	if (!b->mr)
		return -errno;
	return 0;
}

/* The message: pattern @iter; the rest of the buffer: SRC_GUARD. */
static void fill_src(struct xfer_buf *b, unsigned int iter)
{
	memset(b->base, SRC_GUARD, b->size);
	tu_fill(b->msg, b->len, iter);
}

/*
 * Compare @b against what it must hold: @guard outside the message and,
 * inside it, the pattern of @iter (or @guard too when @iter is negative).
 * Logs the first few differences; returns whether all bytes match.
 */
static bool buf_matches(const char *what, const struct xfer_buf *b,
			uint8_t guard, int iter)
{
	size_t head = b->msg - b->base, tail = b->size - head - b->len;
	char before[64], msg[64], after[64];
	bool ok;

	snprintf(before, sizeof(before), "%s, before the message", what);
	snprintf(msg, sizeof(msg), "%s, the message", what);
	snprintf(after, sizeof(after), "%s, after the message", what);
	ok = tu_all_bytes(before, b->base, guard, head);
	if (iter < 0)
		ok &= tu_all_bytes(msg, b->msg, guard, b->len);
	else
		ok &= tu_pattern_bytes(msg, b->msg, iter, b->len);
	ok &= tu_all_bytes(after, b->msg + b->len, guard, tail);
	if (!ok)
		ksft_print_msg("%s: message of %zu bytes at page offset %zu\n",
			       what, b->len, head % (size_t)sysconf(_SC_PAGESIZE));
	return ok;
}

/* Access flags each MR needs for @op; @deny drops the one the peer uses. */
static void xfer_access(enum xfer_op op, bool deny, unsigned int *src,
			unsigned int *dst)
{
	switch (op) {
	case XFER_WRITE:
		*src = 0;
		*dst = IBV_ACCESS_LOCAL_WRITE |
		       (deny ? 0 : IBV_ACCESS_REMOTE_WRITE);
		break;
	case XFER_READ:
		*src = deny ? 0 : IBV_ACCESS_REMOTE_READ;
		*dst = IBV_ACCESS_LOCAL_WRITE;
		break;
	case XFER_SEND:
		*src = 0;
		*dst = deny ? 0 : IBV_ACCESS_LOCAL_WRITE;
		break;
	}
}

static void xfer_setup(struct __test_metadata *_metadata,
		       FIXTURE_DATA(rc) *self,
		       const FIXTURE_VARIANT(rc) *variant,
		       size_t len, size_t src_off, size_t dst_off, bool deny)
{
	unsigned int src_access = 0, dst_access = 0;

	xfer_access(variant->op, deny, &src_access, &dst_access);
	ASSERT_EQ(0, buf_alloc(&self->v, &self->src, src_off, len,
			       src_access | variant->src_access));
	ASSERT_EQ(0, buf_alloc(&self->v, &self->dst, dst_off, len,
			       dst_access | variant->dst_access));
}

/* Post the variant's operation moving src->msg to dst->msg. */
static int xfer_post(FIXTURE_DATA(rc) *self, const FIXTURE_VARIANT(rc) *var,
		     uint64_t wr_id)
{
	struct xfer_buf *src = &self->src, *dst = &self->dst;
	struct vu_ctx *v = &self->v;
	int ret;

	switch (var->op) {
	case XFER_WRITE:
		return vu_post_send(v, &self->qps.a, IBV_WR_RDMA_WRITE, wr_id,
				    src->msg, src->len, src->mr->lkey,
				    (uintptr_t)dst->msg, dst->mr->rkey);
	case XFER_READ:
		return vu_post_send(v, &self->qps.a, IBV_WR_RDMA_READ, wr_id,
				    dst->msg, dst->len, dst->mr->lkey,
				    (uintptr_t)src->msg, src->mr->rkey);
	case XFER_SEND:
		ret = vu_post_recv(v, &self->qps.b, wr_id, dst->msg, dst->len,
				   dst->mr->lkey);
		if (ret)
			return ret;
		return vu_post_send(v, &self->qps.a, IBV_WR_SEND, wr_id,
				    src->msg, src->len, src->mr->lkey, 0, 0);
	}
	return -EINVAL;
}

static const enum ibv_wc_opcode xfer_wc_opcode[] = {
	[XFER_WRITE] = IBV_WC_RDMA_WRITE,
	[XFER_READ] = IBV_WC_RDMA_READ,
	[XFER_SEND] = IBV_WC_SEND,
};

/*
 * Move @len bytes from offset @src_off of a source page to offset @dst_off
 * of a destination page, ITERS times with a fresh pattern each time, and
 * check every byte of both buffers after each transfer.
 */
static void xfer_run(struct __test_metadata *_metadata,
		     FIXTURE_DATA(rc) *self,
		     const FIXTURE_VARIANT(rc) *variant,
		     size_t len, size_t src_off, size_t dst_off)
{
	struct ibv_wc wc;
	unsigned int iter;

	xfer_setup(_metadata, self, variant, len, src_off, dst_off, false);
	for (iter = 0; iter < ITERS; iter++) {
		fill_src(&self->src, iter);
		memset(self->dst.base, DST_POISON, self->dst.size);

		ASSERT_EQ(0, xfer_post(self, variant, iter));
		ASSERT_EQ(0, vu_wait_ok(&self->v, &self->qps.a, iter,
					xfer_wc_opcode[variant->op]));
		if (variant->op == XFER_SEND) {
			ASSERT_EQ(0, vu_poll_one(&self->v, &self->qps.b, &wc));
			ASSERT_EQ(IBV_WC_SUCCESS, wc.status);
			ASSERT_EQ((uint64_t)iter, wc.wr_id);
			ASSERT_EQ(IBV_WC_RECV, wc.opcode);
			ASSERT_EQ((uint32_t)len, wc.byte_len);
		}
		ASSERT_TRUE(buf_matches("destination", &self->dst, DST_POISON,
					iter)) TH_LOG("iteration %u", iter);
		ASSERT_TRUE(buf_matches("source", &self->src, SRC_GUARD,
					iter)) TH_LOG("iteration %u", iter);
		if (variant->dontneed) {
			ASSERT_EQ(0, madvise(self->src.base, self->src.size,
					     MADV_DONTNEED));
			ASSERT_EQ(0, madvise(self->dst.base, self->dst.size,
					     MADV_DONTNEED));
		}
	}
}

/* 1 byte into the last byte of a page: the guard starts on the next page. */
TEST_F(rc, one_byte)
{
	xfer_run(_metadata, self, variant, 1, 0, 4095);
}

/* 4095 bytes ending exactly at a page boundary at the destination. */
TEST_F(rc, page_minus_one)
{
	xfer_run(_metadata, self, variant, 4095, 0, 1);
}

/* 4099 bytes, source and destination differently unaligned, 3 pages each. */
TEST_F(rc, unaligned_cross_page)
{
	xfer_run(_metadata, self, variant, 4096 + 3, 4093, 4095);
}

/* 1 MiB, page aligned: many MTU-sized packets in one message. */
TEST_F(rc, one_mib)
{
	xfer_run(_metadata, self, variant, 1 << 20, 0, 0);
}

/*
 * The MR the peer accesses lacks the permission the operation needs (WRITE:
 * REMOTE_WRITE on the target, READ: REMOTE_READ on the source, SEND:
 * LOCAL_WRITE on the receive buffer). The requester must see an error
 * completion and no byte of either buffer may change.
 */
TEST_F(rc, access_denied)
{
	enum ibv_wc_status want = variant->op == XFER_SEND ?
				  IBV_WC_REM_OP_ERR : IBV_WC_REM_ACCESS_ERR;
	struct ibv_wc wc;

	xfer_setup(_metadata, self, variant, 4096 + 3, 4093, 4095, true);
	fill_src(&self->src, 0);
	memset(self->dst.base, DST_POISON, self->dst.size);

	ASSERT_EQ(0, xfer_post(self, variant, 1));
	ASSERT_EQ(0, vu_poll_one(&self->v, &self->qps.a, &wc));
	ASSERT_EQ((uint64_t)1, wc.wr_id);
	ASSERT_EQ(want, wc.status) TH_LOG("got %s, want %s",
					  ibv_wc_status_str(wc.status),
					  ibv_wc_status_str(want));
	if (variant->op == XFER_SEND) {
		/* The receive completes in error too; which one is rxe's. */
		ASSERT_EQ(0, vu_poll_one(&self->v, &self->qps.b, &wc));
		ASSERT_EQ((uint64_t)1, wc.wr_id);
		ASSERT_NE(IBV_WC_SUCCESS, wc.status);
		TH_LOG("receive completed with %s",
		       ibv_wc_status_str(wc.status));
	}
	ASSERT_TRUE(buf_matches("destination", &self->dst, DST_POISON, -1));
	ASSERT_TRUE(buf_matches("source", &self->src, SRC_GUARD, 0));
}

TEST_HARNESS_MAIN
