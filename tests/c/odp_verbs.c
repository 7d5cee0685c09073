// SPDX-License-Identifier: GPL-2.0
/*
 * odp_verbs - the verbs that only pyverbs exercised on ODP memory, byte
 * exact in C (reliability.md §8; issue 12, "missing C cases"): RC work
 * requests with several SGEs (RDMA WRITE, READ, SEND/RECV), UD SEND/RECV,
 * receives posted on an SRQ, RDMA WRITE and SEND with immediate, and
 * SENDs that must fail: into an ODP receive buffer on a PROT_READ mapping
 * and into one whose pages were unmapped after registration.
 *
 * Memory: every buffer is a fresh mapping of its own memfd, whose contents
 * (guards, poison, source patterns) are written with pwrite() before the
 * mmap(): the process never touches a page of the mapping before the
 * device does, so the device faults the pages in (the MR's page_faults
 * counter, `rdma -d statistic mr`, must rise; it counts the pages a fault
 * asked for, not the neighbours that fault-around mapped with them, so
 * only a rise is asserted), and yet every byte has a known value
 * beforehand. Destination SGEs hold TU_POISON, everything around them
 * TU_GUARD; source SGEs hold a seed-derived pattern of the message. After
 * each operation every byte of every buffer is compared with its shadow.
 *
 * Each SGE starts in the middle of a page and crosses a page boundary; the
 * gather and scatter lists split the message at different places. rxe's
 * MTU on dummy0 is 1024, so an RC message is several packets.
 *
 * Variants: each buffer on its own explicit ODP MR over a MAP_SHARED
 * mapping (explicit), the same over MAP_PRIVATE (explicit_private: a
 * device write breaks COW from the page cache into a new anonymous page),
 * every buffer through one implicit ODP MR (implicit, MAP_PRIVATE), and
 * the second buffer of each side on a pinned MR (mixed: one work request
 * gathers or scatters across pinned and ODP MRs).
 *
 * Errors. A SEND whose receive buffer cannot be written (PROT_READ
 * mapping, or unmapped pages) must end the receive WQE with Local
 * Protection Error (IBA vol. 1 completion status; ibv_poll_cq(3): the
 * WR's scatter list does not reference memory valid for the operation)
 * and the SEND with a Remote Operational Error NAK (IBV_WC_REM_OP_ERR);
 * both QPs end in the error state and no byte is written anywhere.
 * Before each refusal the range is made resident in the MR's mirror by
 * a successful access, so that the refusal also shows the cached
 * translation is not used (PROT_READ: a remote READ first; munmap: a
 * SEND first). Found: rxe, ours and upstream's, ended that receive with
 * IBV_WC_LOC_QP_OP_ERR (copy_data() failed, RESPST_ERR_MALFORMED_WQE);
 * our patch 0010 reports the protection error.
 *
 * Mutation record (each run in the guest, then reverted): MRs registered
 * without IBV_ACCESS_ON_DEMAND: every case of the explicit variants
 * fails ("no page_faults counter"; send_into_prot_read: the pinned
 * registration of the PROT_READ mapping fails with EFAULT), implicit
 * passes; the READ's expected scatter shifted by one byte: read_3sge
 * fails in every variant (about 11000 bytes differ); the fault counters
 * read after the WRITE/READ instead of before: write_3sge, read_3sge and
 * write_imm fail ("no ODP page fault").
 *
 * Device: RXE_ODP_DEV (default rxe0), RXE_ODP_GID_IDX (default 1); skips
 * when the device does not exist or lacks ODP support (a failure with our
 * rxe, TU_REQUIRE_CAP).
 */
#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "verbs_util.h"
#include "test_util.h"

#define NSGE		3
#define REGION_SIZE	(4 * 4096)
#define MSG_LEN		11200	/* the 3-SGE message */
#define GRH_BYTES	40
#define UD_QKEY		0x1ee7c0de
#define ACC_ALL		(IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | \
			 IBV_ACCESS_REMOTE_READ)

/* A SEND into a receive buffer it cannot write: see the header. */
#define RECV_ERR	IBV_WC_LOC_PROT_ERR
#define SEND_ERR	IBV_WC_REM_OP_ERR

/* One buffer: its own memfd and mapping, and what each byte must hold. */
struct region {
	int		fd;
	uint8_t		*map;
	uint8_t		*want;	/* shadow of the mapping */
	uint8_t		*init;	/* the file's contents at mmap() */
	struct ibv_mr	*mr;	/* own MR (ODP or pinned); NULL: implicit */
	uint32_t	lkey, rkey;
	bool		odp, shared;
	long long	faults;	/* page_faults at the last snapshot */
};

/* An SGE: @len bytes at @off in region @r of a side. */
struct seg {
	int		r;
	size_t		off;
	uint32_t	len;
};

/* The 3-SGE message: gathered from sources, scattered to destinations. */
static const struct seg src3[NSGE] = {
	{ 0, 1000, 4000 }, { 1, 3000, 2200 }, { 2, 4090, 5000 },
};
static const struct seg dst3[NSGE] = {
	{ 0, 2055, 3000 }, { 1, 100, 5000 }, { 2, 3500, 3200 },
};
/* The remote side of a 3-SGE WRITE or READ: one range of region 0. */
static const struct seg whole = { 0, 2000, MSG_LEN };

FIXTURE(verbs) {
	struct vu_config	cfg;
	struct vu_ctx		v;
	struct vu_qp_pair	qps;
	struct ibv_mr		*implicit;
	struct region		src[NSGE], dst[NSGE];
	struct vu_qp		x, y;	/* UD or SRQ cases' own QPs */
	struct ibv_srq		*srq;
	struct ibv_ah		*ah;
	uint8_t			msg[MSG_LEN];
	size_t			pg;
};

FIXTURE_VARIANT(verbs) {
	int	map_flags;	/* MAP_SHARED or MAP_PRIVATE */
	bool	implicit;	/* every buffer through one implicit MR */
	bool	mixed;		/* region 1 of each side pinned */
};

/* each buffer on an explicit ODP MR of its own */
FIXTURE_VARIANT_ADD(verbs, explicit) { .map_flags = MAP_SHARED };
/* the same, MAP_PRIVATE: a device write breaks COW from the page cache */
FIXTURE_VARIANT_ADD(verbs, explicit_private) { .map_flags = MAP_PRIVATE };
/* every buffer through one implicit ODP MR */
FIXTURE_VARIANT_ADD(verbs, implicit) {
	.map_flags = MAP_PRIVATE, .implicit = true
};
/* explicit ODP MRs, but region 1 of each side on a pinned MR */
FIXTURE_VARIANT_ADD(verbs, mixed) { .map_flags = MAP_SHARED, .mixed = true };

FIXTURE_SETUP(verbs)
{
	const uint32_t rc_need = IBV_ODP_SUPPORT_SEND | IBV_ODP_SUPPORT_RECV |
				 IBV_ODP_SUPPORT_WRITE | IBV_ODP_SUPPORT_READ |
				 IBV_ODP_SUPPORT_SRQ_RECV;
	const uint32_t ud_need = IBV_ODP_SUPPORT_SEND | IBV_ODP_SUPPORT_RECV;
	struct ibv_device_attr_ex ax;
	uint32_t rc, ud;
	int i;

	for (i = 0; i < NSGE; i++)
		self->src[i].fd = self->dst[i].fd = -1;
	self->pg = (size_t)sysconf(_SC_PAGESIZE);
	TU_OPEN_QUERY(&self->cfg, &self->v, &ax);
	rc = ax.odp_caps.per_transport_caps.rc_odp_caps;
	ud = ax.odp_caps.per_transport_caps.ud_odp_caps;
	TU_REQUIRE_CAP(ax.odp_caps.general_caps & IBV_ODP_SUPPORT,
		       "%s has no ODP support", self->cfg.dev_name);
	TU_REQUIRE_CAP((rc & rc_need) == rc_need,
		       "%s RC ODP caps 0x%x lack 0x%x", self->cfg.dev_name,
		       rc, rc_need & ~rc);
	TU_REQUIRE_CAP((ud & ud_need) == ud_need,
		       "%s UD ODP caps 0x%x lack 0x%x", self->cfg.dev_name,
		       ud, ud_need & ~ud);
	if (variant->implicit) {
		TU_REQUIRE_CAP(ax.odp_caps.general_caps &
			       IBV_ODP_SUPPORT_IMPLICIT,
			       "%s has no implicit ODP", self->cfg.dev_name);
		self->implicit = ibv_reg_mr(self->v.pd, NULL, SIZE_MAX,
					    ACC_ALL | IBV_ACCESS_ON_DEMAND);
		ASSERT_NE(NULL, self->implicit)
			TH_LOG("implicit ibv_reg_mr: %s", strerror(errno));
	}
	ASSERT_EQ(4096, self->pg);	/* the SGE layouts assume it */
	ASSERT_LE(NSGE, self->v.dev_attr.max_sge);
	self->v.cfg.max_sge = NSGE;
	ASSERT_EQ(0, vu_qp_pair_create(&self->v, &self->qps));
}

static void qp_free(struct vu_qp *q)
{
	if (q->qp)
		ibv_destroy_qp(q->qp);
	if (q->cq)
		ibv_destroy_cq(q->cq);
	q->qp = NULL;
	q->cq = NULL;
}

static int region_free(struct vu_ctx *v, struct region *r)
{
	int ret = vu_dereg_mr(v, r->mr);

	if (r->map && munmap(r->map, REGION_SIZE) && !ret)
		ret = -errno;
	if (r->fd >= 0 && close(r->fd) && !ret)
		ret = -errno;
	free(r->want);
	free(r->init);
	memset(r, 0, sizeof(*r));
	r->fd = -1;
	return ret;
}

FIXTURE_TEARDOWN(verbs)
{
	int i;

	qp_free(&self->x);
	qp_free(&self->y);
	if (self->ah)
		EXPECT_EQ(0, ibv_destroy_ah(self->ah));
	if (self->srq)
		EXPECT_EQ(0, ibv_destroy_srq(self->srq));
	EXPECT_EQ(0, vu_qp_pair_destroy(&self->v, &self->qps));
	for (i = 0; i < NSGE; i++) {
		EXPECT_EQ(0, region_free(&self->v, &self->src[i]));
		EXPECT_EQ(0, region_free(&self->v, &self->dst[i]));
	}
	EXPECT_EQ(0, vu_dereg_mr(&self->v, self->implicit));
	EXPECT_EQ(0, vu_close(&self->v));
}

/* ---- buffers ------------------------------------------------------------ */

/* Shadow of a region not mapped yet: all TU_GUARD. */
static void region_plan(struct __test_metadata *_metadata, struct region *r)
{
	if (r->want)
		return;
	r->want = malloc(REGION_SIZE);
	ASSERT_NE(NULL, r->want);
	memset(r->want, TU_GUARD, REGION_SIZE);
}

/* Plan @n destination SGEs: TU_POISON. */
static void plan_poison(struct __test_metadata *_metadata, struct region *rs,
			const struct seg *s, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		region_plan(_metadata, &rs[s[i].r]);
		memset(rs[s[i].r].want + s[i].off, TU_POISON, s[i].len);
	}
}

/* Copy the message @msg along @n SGEs into the shadows (scatter). */
static void place(struct region *rs, const struct seg *s, int n,
		  const uint8_t *msg)
{
	int i;

	for (i = 0; i < n; i++) {
		memcpy(rs[s[i].r].want + s[i].off, msg, s[i].len);
		msg += s[i].len;
	}
}

/* Plan @n source SGEs holding message @msg (their shadows are planned). */
static void plan_source(struct __test_metadata *_metadata, struct region *rs,
			const struct seg *s, int n, const uint8_t *msg)
{
	int i;

	for (i = 0; i < n; i++)
		region_plan(_metadata, &rs[s[i].r]);
	place(rs, s, n, msg);
}

/*
 * Write the planned contents to a new memfd, map it with @prot (never
 * touching the mapping) and register it: region 1 of a side on a pinned
 * MR in the mixed variant, else through the implicit MR or on an explicit
 * ODP MR of its own.
 */
static void region_map(struct __test_metadata *_metadata,
		       FIXTURE_DATA(verbs) *self,
		       const FIXTURE_VARIANT(verbs) *variant, struct region *r,
		       int idx, int prot)
{
	bool pinned = variant->mixed && idx == 1;
	void *p;

	r->fd = memfd_create("odp_verbs", MFD_CLOEXEC);
	ASSERT_LE(0, r->fd) TH_LOG("memfd_create: %s", strerror(errno));
	ASSERT_EQ(REGION_SIZE, pwrite(r->fd, r->want, REGION_SIZE, 0));
	r->init = malloc(REGION_SIZE);
	ASSERT_NE(NULL, r->init);
	memcpy(r->init, r->want, REGION_SIZE);
	p = mmap(NULL, REGION_SIZE, prot, variant->map_flags, r->fd, 0);
	ASSERT_NE(MAP_FAILED, p) TH_LOG("mmap: %s", strerror(errno));
	r->map = p;
	r->shared = variant->map_flags == MAP_SHARED;
	r->odp = !pinned;
	if (variant->implicit && !pinned) {
		r->lkey = self->implicit->lkey;
		r->rkey = self->implicit->rkey;
		return;
	}
	r->mr = vu_reg_mr(&self->v, r->map, REGION_SIZE,
			  ACC_ALL | (pinned ? 0 : IBV_ACCESS_ON_DEMAND));
	ASSERT_NE(NULL, r->mr) TH_LOG("ibv_reg_mr: %s", strerror(errno));
	r->lkey = r->mr->lkey;
	r->rkey = r->mr->rkey;
}

/* Map every planned region of both sides, read-write. */
static void map_planned(struct __test_metadata *_metadata,
			FIXTURE_DATA(verbs) *self,
			const FIXTURE_VARIANT(verbs) *variant)
{
	int i;

	for (i = 0; i < NSGE; i++) {
		if (self->src[i].want && !self->src[i].map)
			region_map(_metadata, self, variant, &self->src[i], i,
				   PROT_READ | PROT_WRITE);
		if (self->dst[i].want && !self->dst[i].map)
			region_map(_metadata, self, variant, &self->dst[i], i,
				   PROT_READ | PROT_WRITE);
	}
}

/* The message of @len bytes: pattern @seed. */
static uint8_t *message(FIXTURE_DATA(verbs) *self, size_t len,
			unsigned int seed)
{
	tu_fill(self->msg, len, seed);
	return self->msg;
}

static uint64_t addr_of(const struct region *r, size_t off)
{
	return (uintptr_t)r->map + off;
}

/* The ibv_sge list of @n SGEs. */
static void sges(struct ibv_sge *sge, const struct region *rs,
		 const struct seg *s, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		sge[i].addr = addr_of(&rs[s[i].r], s[i].off);
		sge[i].length = s[i].len;
		sge[i].lkey = rs[s[i].r].lkey;
	}
}

/* Every byte of every mapped region equals its shadow. */
static bool all_same(FIXTURE_DATA(verbs) *self, const char *when)
{
	char what[96];
	bool ok = true;
	int i;

	for (i = 0; i < NSGE; i++) {
		snprintf(what, sizeof(what), "%s: source %d", when, i);
		if (self->src[i].map)
			ok &= tu_same_bytes(what, self->src[i].map,
					    self->src[i].want, REGION_SIZE);
		snprintf(what, sizeof(what), "%s: destination %d", when, i);
		if (self->dst[i].map)
			ok &= tu_same_bytes(what, self->dst[i].map,
					    self->dst[i].want, REGION_SIZE);
	}
	return ok;
}

/* ---- ODP fault counters ----------------------------------------------- */

static long long mr_faults(FIXTURE_DATA(verbs) *self, const struct region *r)
{
	return tu_mr_counter(r->mr ? r->mr->rkey : self->implicit->rkey,
			     "page_faults");
}

/* Snapshot page_faults of every mapped ODP region. */
static void snap_faults(struct __test_metadata *_metadata,
			FIXTURE_DATA(verbs) *self)
{
	struct region *r;
	int i;

	for (i = 0; i < 2 * NSGE; i++) {
		r = i < NSGE ? &self->src[i] : &self->dst[i - NSGE];
		if (!r->map || !r->odp)
			continue;
		r->faults = mr_faults(self, r);
		ASSERT_LE(0, r->faults) TH_LOG("no page_faults counter");
	}
}

/* The ODP MR behind @r has faulted pages in since the snapshot. */
#define ASSERT_FAULTED(r, what) do {					\
	if ((r)->odp)							\
		ASSERT_LT((r)->faults, mr_faults(self, r))		\
			TH_LOG("%s: no ODP page fault (page_faults %lld)", \
			       what, (r)->faults);			\
} while (0)

/* Every mapped ODP region has faulted since the snapshot. */
static void assert_all_faulted(struct __test_metadata *_metadata,
			       FIXTURE_DATA(verbs) *self)
{
	int i;

	for (i = 0; i < NSGE; i++) {
		if (self->src[i].map)
			ASSERT_FAULTED(&self->src[i], "source");
		if (self->dst[i].map)
			ASSERT_FAULTED(&self->dst[i], "destination");
	}
}

/* ---- posting and reaping ---------------------------------------------- */

static int post_send(struct ibv_qp *qp, struct ibv_send_wr *wr)
{
	struct ibv_send_wr *bad;

	wr->send_flags = IBV_SEND_SIGNALED;
	return ibv_post_send(qp, wr, &bad);
}

/* Post a receive of @n SGEs on @qp, or on @srq when given. */
static int post_recv(struct ibv_qp *qp, struct ibv_srq *srq, uint64_t id,
		     struct ibv_sge *sge, int n)
{
	struct ibv_recv_wr wr = { .wr_id = id, .sg_list = sge, .num_sge = n };
	struct ibv_recv_wr *bad;

	return srq ? ibv_post_srq_recv(srq, &wr, &bad) :
		     ibv_post_recv(qp, &wr, &bad);
}

/* The next completion on @q: success, @id, @opcode, @len bytes. */
static void reap_ok(struct __test_metadata *_metadata,
		    FIXTURE_DATA(verbs) *self, struct vu_qp *q,
		    struct ibv_wc *wc, uint64_t id, enum ibv_wc_opcode opcode,
		    uint32_t len)
{
	ASSERT_EQ(0, vu_poll_one(&self->v, q, wc));
	ASSERT_EQ(IBV_WC_SUCCESS, wc->status)
		TH_LOG("wr_id %lu: %s", (unsigned long)wc->wr_id,
		       ibv_wc_status_str(wc->status));
	ASSERT_EQ(id, wc->wr_id);
	ASSERT_EQ(opcode, wc->opcode);
	if (opcode & IBV_WC_RECV)	/* and RECV_RDMA_WITH_IMM */
		ASSERT_EQ(len, wc->byte_len);
}

/* ---- RC with several SGEs ----------------------------------------------- */

/*
 * One RDMA WRITE (with immediate @imm unless 0) gathering the message
 * from 3 source SGEs (3 MRs) into one range of destination 0, or one RDMA
 * READ of a range of source 0 scattered into 3 destination SGEs. A WRITE
 * with immediate consumes a receive WQE whose buffer (in destination 1)
 * it must leave untouched: only the completion tells the immediate and
 * the length.
 */
static void rdma_3sge(struct __test_metadata *_metadata,
		      FIXTURE_DATA(verbs) *self,
		      const FIXTURE_VARIANT(verbs) *variant,
		      enum ibv_wr_opcode op, uint32_t imm)
{
	const struct seg rbuf = { 1, 3000, 2000 };
	bool rd = op == IBV_WR_RDMA_READ;
	struct region *remote = rd ? self->src : self->dst;
	struct region *local = rd ? self->dst : self->src;
	const struct seg *lsg = rd ? dst3 : src3;
	struct ibv_sge sge[NSGE], rsge;
	struct ibv_send_wr wr = {
		.wr_id = op, .sg_list = sge, .num_sge = NSGE, .opcode = op,
		.imm_data = htobe32(imm),
	};
	struct ibv_wc wc;
	uint8_t *msg = message(self, MSG_LEN, op + imm);

	plan_source(_metadata, self->src, rd ? &whole : src3,
		    rd ? 1 : NSGE, msg);
	plan_poison(_metadata, self->dst, rd ? dst3 : &whole, rd ? NSGE : 1);
	if (imm)
		plan_poison(_metadata, self->dst, &rbuf, 1);
	map_planned(_metadata, self, variant);
	snap_faults(_metadata, self);

	if (imm) {
		sges(&rsge, self->dst, &rbuf, 1);
		ASSERT_EQ(0, post_recv(self->qps.b.qp, NULL, 40, &rsge, 1));
	}
	sges(sge, local, lsg, NSGE);
	wr.wr.rdma.remote_addr = addr_of(&remote[0], whole.off);
	wr.wr.rdma.rkey = remote[0].rkey;
	ASSERT_EQ(0, post_send(self->qps.a.qp, &wr));
	reap_ok(_metadata, self, &self->qps.a, &wc, op,
		rd ? IBV_WC_RDMA_READ : IBV_WC_RDMA_WRITE, 0);
	if (imm) {
		reap_ok(_metadata, self, &self->qps.b, &wc, 40,
			IBV_WC_RECV_RDMA_WITH_IMM, MSG_LEN);
		ASSERT_EQ(IBV_WC_WITH_IMM, wc.wc_flags & IBV_WC_WITH_IMM);
		ASSERT_EQ(imm, be32toh(wc.imm_data));
	}

	place(self->dst, rd ? dst3 : &whole, rd ? NSGE : 1, msg);
	ASSERT_TRUE(all_same(self, rd ? "after the READ" : "after the WRITE"));
	if (imm)	/* the receive buffer is never accessed */
		self->dst[1].odp = false;
	assert_all_faulted(_metadata, self);
}

TEST_F(verbs, write_3sge)
{
	rdma_3sge(_metadata, self, variant, IBV_WR_RDMA_WRITE, 0);
}

TEST_F(verbs, read_3sge)
{
	rdma_3sge(_metadata, self, variant, IBV_WR_RDMA_READ, 0);
}

/*
 * A SEND gathered from 3 SGEs into a receive of 3 SGEs, optionally with
 * immediate data @imm (0: none).
 */
static void send_3sge(struct __test_metadata *_metadata,
		      FIXTURE_DATA(verbs) *self,
		      const FIXTURE_VARIANT(verbs) *variant, uint32_t imm)
{
	struct ibv_sge ssge[NSGE], rsge[NSGE];
	struct ibv_send_wr wr = {
		.wr_id = 3, .sg_list = ssge, .num_sge = NSGE,
		.opcode = imm ? IBV_WR_SEND_WITH_IMM : IBV_WR_SEND,
		.imm_data = htobe32(imm),
	};
	struct ibv_wc wc;
	uint8_t *msg = message(self, MSG_LEN, 3 + imm);

	plan_source(_metadata, self->src, src3, NSGE, msg);
	plan_poison(_metadata, self->dst, dst3, NSGE);
	map_planned(_metadata, self, variant);
	snap_faults(_metadata, self);

	sges(rsge, self->dst, dst3, NSGE);
	ASSERT_EQ(0, post_recv(self->qps.b.qp, NULL, 30, rsge, NSGE));
	sges(ssge, self->src, src3, NSGE);
	ASSERT_EQ(0, post_send(self->qps.a.qp, &wr));
	reap_ok(_metadata, self, &self->qps.a, &wc, 3, IBV_WC_SEND, 0);
	reap_ok(_metadata, self, &self->qps.b, &wc, 30, IBV_WC_RECV, MSG_LEN);
	ASSERT_EQ(imm ? IBV_WC_WITH_IMM : 0, wc.wc_flags & IBV_WC_WITH_IMM);
	if (imm)
		ASSERT_EQ(imm, be32toh(wc.imm_data));

	place(self->dst, dst3, NSGE, msg);
	ASSERT_TRUE(all_same(self, "after the SEND"));
	assert_all_faulted(_metadata, self);
}

TEST_F(verbs, send_recv_3sge)
{
	send_3sge(_metadata, self, variant, 0);
}

/* ---- immediate data ------------------------------------------------------ */

TEST_F(verbs, send_imm)
{
	send_3sge(_metadata, self, variant, 0xc0ffee01);
}

TEST_F(verbs, write_imm)
{
	rdma_3sge(_metadata, self, variant, IBV_WR_RDMA_WRITE_WITH_IMM,
		  0x12345678);
}

/* ---- UD and SRQ -------------------------------------------------------- */

/* A QP of @type with its own CQ, on @srq when given; NULL on failure. */
static struct ibv_qp *new_qp(FIXTURE_DATA(verbs) *self, struct vu_qp *q,
			     enum ibv_qp_type type, struct ibv_srq *srq)
{
	struct ibv_qp_init_attr ia;

	q->cq = ibv_create_cq(self->v.ctx, 16, NULL, NULL, 0);
	if (!q->cq)
		return NULL;
	memset(&ia, 0, sizeof(ia));
	ia.qp_type = type;
	ia.srq = srq;
	ia.send_cq = q->cq;
	ia.recv_cq = q->cq;
	ia.cap.max_send_wr = 8;
	ia.cap.max_recv_wr = srq ? 0 : 8;
	ia.cap.max_send_sge = NSGE;
	ia.cap.max_recv_sge = NSGE;
	q->qp = ibv_create_qp(self->v.pd, &ia);
	return q->qp;
}

/* A UD QP from RESET to RTS. */
static int ud_ready(FIXTURE_DATA(verbs) *self, struct ibv_qp *qp)
{
	struct ibv_qp_attr a = {
		.qp_state = IBV_QPS_INIT, .port_num = self->cfg.port,
		.qkey = UD_QKEY,
	};
	int ret;

	ret = ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX |
			    IBV_QP_PORT | IBV_QP_QKEY);
	a.qp_state = IBV_QPS_RTR;
	ret = ret ?: ibv_modify_qp(qp, &a, IBV_QP_STATE);
	a.qp_state = IBV_QPS_RTS;
	return ret ?: ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_SQ_PSN);
}

/*
 * UD: QP x sends two messages to QP y, each gathered from 2 ODP SGEs that
 * cross pages; y receives the first into one SGE (GRH, then the payload,
 * across a page boundary), the second into two (the GRH alone, then the
 * payload). The GRH bytes are the device's; every other byte is checked.
 */
TEST_F(verbs, ud_send)
{
	static const struct seg ssg[2][2] = {
		{ { 0, 4000, 300 }, { 1, 3996, 600 } },
		{ { 2, 8000, 500 }, { 0, 8100, 400 } },
	};
	static const struct seg rsg1 = { 0, 4096 - 200, GRH_BYTES + 900 };
	static const struct seg rsg2[2] = {
		{ 1, 9000, GRH_BYTES }, { 2, 12000, 1000 },
	};
	struct ibv_ah_attr aha = {
		.is_global = 1, .port_num = self->cfg.port,
		.grh = { .dgid = self->v.gid, .sgid_index = self->cfg.gid_idx,
			 .hop_limit = 1 },
	};
	struct ibv_sge sge[2], rsge[2];
	struct ibv_send_wr wr = {
		.sg_list = sge, .num_sge = 2, .opcode = IBV_WR_SEND,
		.wr.ud = { .remote_qkey = UD_QKEY },
	};
	struct ibv_wc wc;
	uint8_t msg[2][900];
	int m;

	ASSERT_NE(NULL, new_qp(self, &self->x, IBV_QPT_UD, NULL));
	ASSERT_NE(NULL, new_qp(self, &self->y, IBV_QPT_UD, NULL));
	ASSERT_EQ(0, ud_ready(self, self->x.qp));
	ASSERT_EQ(0, ud_ready(self, self->y.qp));
	self->ah = ibv_create_ah(self->v.pd, &aha);
	ASSERT_NE(NULL, self->ah) TH_LOG("ibv_create_ah (GID index %d): %s",
					 self->cfg.gid_idx, strerror(errno));

	for (m = 0; m < 2; m++) {
		tu_fill(msg[m], sizeof(msg[m]), 50 + m);
		plan_source(_metadata, self->src, ssg[m], 2, msg[m]);
	}
	plan_poison(_metadata, self->dst, &rsg1, 1);
	plan_poison(_metadata, self->dst, rsg2, 2);
	map_planned(_metadata, self, variant);
	snap_faults(_metadata, self);

	sges(rsge, self->dst, &rsg1, 1);
	ASSERT_EQ(0, post_recv(self->y.qp, NULL, 60, rsge, 1));
	sges(rsge, self->dst, rsg2, 2);
	ASSERT_EQ(0, post_recv(self->y.qp, NULL, 61, rsge, 2));
	wr.wr.ud.ah = self->ah;
	wr.wr.ud.remote_qpn = self->y.qp->qp_num;
	for (m = 0; m < 2; m++) {
		wr.wr_id = 70 + m;
		sges(sge, self->src, ssg[m], 2);
		ASSERT_EQ(0, post_send(self->x.qp, &wr));
		reap_ok(_metadata, self, &self->x, &wc, 70 + m, IBV_WC_SEND,
			0);
		reap_ok(_metadata, self, &self->y, &wc, 60 + m, IBV_WC_RECV,
			GRH_BYTES + sizeof(msg[m]));
		ASSERT_EQ(IBV_WC_GRH, wc.wc_flags & IBV_WC_GRH);
		ASSERT_EQ(self->x.qp->qp_num, wc.src_qp);
	}

	/* message 1: GRH, payload, and the rest of the SGE still poison */
	memcpy(self->dst[0].want + rsg1.off, self->dst[0].map + rsg1.off,
	       GRH_BYTES);
	memcpy(self->dst[0].want + rsg1.off + GRH_BYTES, msg[0],
	       sizeof(msg[0]));
	/* message 2: the GRH SGE, then the payload SGE (100 bytes spare) */
	memcpy(self->dst[1].want + rsg2[0].off, self->dst[1].map + rsg2[0].off,
	       GRH_BYTES);
	memcpy(self->dst[2].want + rsg2[1].off, msg[1], sizeof(msg[1]));
	ASSERT_TRUE(all_same(self, "after the UD SENDs"));
	assert_all_faulted(_metadata, self);
}

/*
 * SRQ: RC QP y takes its receives from an SRQ holding two receives of 3
 * ODP SGEs each; QP x sends two messages to it (one of 3 SGEs, one of 1),
 * which land in posting order.
 */
TEST_F(verbs, srq_send)
{
	static const struct seg rsg2[NSGE] = {
		{ 0, 11000, 2500 }, { 1, 8000, 1500 }, { 2, 12000, 2000 },
	};
	static const struct seg ssg2 = { 0, 6000, 6000 };
	struct ibv_srq_init_attr sa = {
		.attr = { .max_wr = 8, .max_sge = NSGE },
	};
	struct ibv_sge sge[NSGE];
	struct ibv_send_wr wr = { .opcode = IBV_WR_SEND, .sg_list = sge };
	struct ibv_wc wc;
	uint8_t *msg1 = message(self, MSG_LEN, 80), msg2[6000];

	self->srq = ibv_create_srq(self->v.pd, &sa);
	ASSERT_NE(NULL, self->srq) TH_LOG("ibv_create_srq: %s",
					  strerror(errno));
	ASSERT_NE(NULL, new_qp(self, &self->x, IBV_QPT_RC, NULL));
	ASSERT_NE(NULL, new_qp(self, &self->y, IBV_QPT_RC, self->srq));
	ASSERT_EQ(0, vu_qp_connect(&self->v, self->y.qp, self->x.qp->qp_num));
	ASSERT_EQ(0, vu_qp_connect(&self->v, self->x.qp, self->y.qp->qp_num));

	tu_fill(msg2, sizeof(msg2), 81);
	plan_source(_metadata, self->src, src3, NSGE, msg1);
	plan_source(_metadata, self->src, &ssg2, 1, msg2);
	plan_poison(_metadata, self->dst, dst3, NSGE);
	plan_poison(_metadata, self->dst, rsg2, NSGE);
	map_planned(_metadata, self, variant);
	snap_faults(_metadata, self);

	sges(sge, self->dst, dst3, NSGE);
	ASSERT_EQ(0, post_recv(NULL, self->srq, 90, sge, NSGE));
	sges(sge, self->dst, rsg2, NSGE);
	ASSERT_EQ(0, post_recv(NULL, self->srq, 91, sge, NSGE));

	wr.wr_id = 92;
	wr.num_sge = NSGE;
	sges(sge, self->src, src3, NSGE);
	ASSERT_EQ(0, post_send(self->x.qp, &wr));
	reap_ok(_metadata, self, &self->x, &wc, 92, IBV_WC_SEND, 0);
	reap_ok(_metadata, self, &self->y, &wc, 90, IBV_WC_RECV, MSG_LEN);
	ASSERT_EQ(self->y.qp->qp_num, wc.qp_num);

	wr.wr_id = 93;
	wr.num_sge = 1;
	sges(sge, self->src, &ssg2, 1);
	ASSERT_EQ(0, post_send(self->x.qp, &wr));
	reap_ok(_metadata, self, &self->x, &wc, 93, IBV_WC_SEND, 0);
	reap_ok(_metadata, self, &self->y, &wc, 91, IBV_WC_RECV,
		sizeof(msg2));
	ASSERT_EQ(self->y.qp->qp_num, wc.qp_num);

	place(self->dst, dst3, NSGE, msg1);
	place(self->dst, rsg2, NSGE, msg2);
	ASSERT_TRUE(all_same(self, "after the SENDs into the SRQ"));
	assert_all_faulted(_metadata, self);
}

/* ---- SENDs that must fail ----------------------------------------------- */

/*
 * Post a receive of @rs on QP b and a SEND of @ss from QP a: the receive
 * must end with RECV_ERR, the SEND with SEND_ERR, both QPs in the error
 * state (which rxe enters just after it posted the error completion).
 */
static void send_must_fail(struct __test_metadata *_metadata,
			   FIXTURE_DATA(verbs) *self, const struct seg *rs,
			   const struct seg *ss)
{
	struct ibv_sge rsge, ssge;
	struct ibv_send_wr wr = {
		.wr_id = 101, .sg_list = &ssge, .num_sge = 1,
		.opcode = IBV_WR_SEND,
	};
	struct ibv_wc wc;

	sges(&rsge, self->dst, rs, 1);
	ASSERT_EQ(0, post_recv(self->qps.b.qp, NULL, 100, &rsge, 1));
	sges(&ssge, self->src, ss, 1);
	ASSERT_EQ(0, post_send(self->qps.a.qp, &wr));
	ASSERT_EQ(0, vu_poll_one(&self->v, &self->qps.b, &wc));
	ASSERT_EQ((uint64_t)100, wc.wr_id);
	ASSERT_NE(IBV_WC_SUCCESS, wc.status);
	/* a wrong error status still lets the rest be checked */
	EXPECT_EQ(RECV_ERR, wc.status)
		TH_LOG("receive: %s (%d), want %s", ibv_wc_status_str(wc.status),
		       wc.status, ibv_wc_status_str(RECV_ERR));
	ASSERT_EQ(0, vu_poll_one(&self->v, &self->qps.a, &wc));
	ASSERT_EQ((uint64_t)101, wc.wr_id);
	ASSERT_NE(IBV_WC_SUCCESS, wc.status);
	EXPECT_EQ(SEND_ERR, wc.status)
		TH_LOG("SEND: %s (%d), want %s", ibv_wc_status_str(wc.status),
		       wc.status, ibv_wc_status_str(SEND_ERR));
	ASSERT_EQ(0, vu_wait_qp_state(&self->v, self->qps.b.qp, IBV_QPS_ERR));
	ASSERT_EQ(0, vu_wait_qp_state(&self->v, self->qps.a.qp, IBV_QPS_ERR));
}

/*
 * A receive buffer on a PROT_READ mapping (registered for LOCAL_WRITE:
 * ODP registration does not check the pages). A remote READ of it works
 * and faults it in read-only; a SEND into it must fail and change no
 * byte: the CPU reads every byte of the mapping back.
 */
TEST_F(verbs, send_into_prot_read)
{
	const struct seg held = { 0, 3000, 6000 }, into = { 1, 1000, 6000 },
			 rs = { 0, 3500, 4000 }, ss = { 0, 2000, 4000 };
	struct ibv_wc wc;
	uint8_t *msg = message(self, 6000, 5);

	/* the PROT_READ buffer holds a pattern; read it into destination 1 */
	region_plan(_metadata, &self->dst[0]);
	place(self->dst, &held, 1, msg);
	plan_poison(_metadata, self->dst, &into, 1);
	plan_source(_metadata, self->src, &ss, 1, message(self, 4000, 6));
	region_map(_metadata, self, variant, &self->dst[0], 0, PROT_READ);
	map_planned(_metadata, self, variant);
	ASSERT_EQ(0, tu_qp_pair_renew_rnr(&self->v, &self->qps, TU_RNR_RETRY));
	snap_faults(_metadata, self);

	ASSERT_EQ(0, vu_post_send(&self->v, &self->qps.a, IBV_WR_RDMA_READ, 1,
				  self->dst[1].map + into.off, into.len,
				  self->dst[1].lkey,
				  addr_of(&self->dst[0], held.off),
				  self->dst[0].rkey));
	reap_ok(_metadata, self, &self->qps.a, &wc, 1, IBV_WC_RDMA_READ,
		into.len);
	memcpy(self->dst[1].want + into.off, self->dst[0].want + held.off,
	       into.len);
	ASSERT_TRUE(all_same(self, "after the READ of the PROT_READ buffer"));
	ASSERT_FAULTED(&self->dst[0], "PROT_READ buffer");

	send_must_fail(_metadata, self, &rs, &ss);
	ASSERT_TRUE(all_same(self, "after the SEND into the PROT_READ buffer"));
}

/*
 * A receive buffer in pages unmapped after registration (and after a
 * SEND into them faulted them in): a SEND into it must fail. The mapped
 * pages around the hole are checked by the CPU, the hole's pages through
 * the file (a MAP_SHARED write would reach it; after MAP_PRIVATE, the
 * file keeps what it held at mmap()).
 */
TEST_F(verbs, send_into_munmapped)
{
	const struct seg rs = { 0, 4096 + 100, 5000 }, ss1 = { 0, 1000, 5000 },
			 ss2 = { 0, 7000, 5000 };
	uint8_t *hole, *file;
	struct ibv_sge rsge;
	struct ibv_wc wc;

	plan_poison(_metadata, self->dst, &rs, 1);
	plan_source(_metadata, self->src, &ss1, 1, message(self, 5000, 7));
	plan_source(_metadata, self->src, &ss2, 1, message(self, 5000, 8));
	map_planned(_metadata, self, variant);
	ASSERT_EQ(0, tu_qp_pair_renew_rnr(&self->v, &self->qps, TU_RNR_RETRY));
	snap_faults(_metadata, self);

	/* a SEND into the buffer works, and faults its pages in */
	sges(&rsge, self->dst, &rs, 1);
	ASSERT_EQ(0, post_recv(self->qps.b.qp, NULL, 10, &rsge, 1));
	ASSERT_EQ(0, vu_post_send(&self->v, &self->qps.a, IBV_WR_SEND, 11,
				  self->src[0].map + ss1.off, ss1.len,
				  self->src[0].lkey, 0, 0));
	reap_ok(_metadata, self, &self->qps.a, &wc, 11, IBV_WC_SEND, 0);
	reap_ok(_metadata, self, &self->qps.b, &wc, 10, IBV_WC_RECV, ss1.len);
	ASSERT_FAULTED(&self->dst[0], "receive buffer");
	place(self->dst, &rs, 1, message(self, 5000, 7));
	ASSERT_TRUE(all_same(self, "after the first SEND"));

	/* pages 1 and 2, which hold the whole receive buffer, go */
	hole = self->dst[0].map + self->pg;
	ASSERT_EQ(0, munmap(hole, 2 * self->pg));
	send_must_fail(_metadata, self, &rs, &ss2);

	/* the pages around the hole by the CPU, the hole through the file */
	ASSERT_TRUE(tu_same_bytes("before the hole", self->dst[0].map,
				  self->dst[0].want, self->pg));
	ASSERT_TRUE(tu_same_bytes("after the hole", hole + 2 * self->pg,
				  self->dst[0].want + 3 * self->pg, self->pg));
	file = malloc(2 * self->pg);
	ASSERT_NE(NULL, file);
	ASSERT_EQ((ssize_t)(2 * self->pg),
		  pread(self->dst[0].fd, file, 2 * self->pg, self->pg));
	EXPECT_TRUE(tu_same_bytes("the hole's pages in the file", file,
				  (self->dst[0].shared ? self->dst[0].want :
				   self->dst[0].init) + self->pg,
				  2 * self->pg));
	free(file);
	ASSERT_TRUE(tu_same_bytes("source", self->src[0].map,
				  self->src[0].want, REGION_SIZE));
}

TEST_HARNESS_MAIN
