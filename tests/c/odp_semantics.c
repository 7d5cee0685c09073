// SPDX-License-Identifier: GPL-2.0
/*
 * odp_semantics - what an ODP MR of rxe does when the CPU mapping behind
 * it is read-only, inaccessible, missing, COW-shared with a fork child,
 * secret or replaced, and how an MR registered with iova != addr is
 * translated and bounded (DESIGN.md invariants 5 and 6; reliability.md
 * §5.3 and §8 #1, #2, #3, #8, #9, #10, #17).
 *
 * One RC QP pair on one rxe device: QP a (the "peer") posts RDMA WRITE,
 * READ, SEND and atomics at the ODP MR under test; every MR is an ODP MR.
 * An error completion moves both QPs to the error state, so the next
 * operation after one runs on a recreated pair. Every check is byte
 * exact against a shadow copy of the whole mapping, so a stray access
 * anywhere in it (guards included) fails the test.
 *
 * Before every expected refusal the test first makes the range resident
 * in the MR's mirror (a successful access), so that a refusal also proves
 * that the CPU-side change (mprotect, munmap, fork, MADV_DONTNEED)
 * invalidated the cached translation.
 *
 * Device: RXE_ODP_DEV (default rxe0), RXE_ODP_GID_IDX (default 1); skips
 * when the device does not exist or has no RC ODP support.
 *
 * A local protection failure (a WRITE or SEND source on a PROT_NONE page or
 * in memfd_secret memory, a READ or atomic response into a PROT_READ
 * destination) must complete with IBV_WC_LOC_PROT_ERR. For a send WQE that
 * the requester fails, rxe used to report IBV_WC_WR_FLUSH_ERR (the
 * requester moved the QP to the error state and the completer flushed that
 * WQE too); since patch 0003 the completer reports the failed WQE with its
 * own status and flushes only the WQEs behind it.
 *
 * Mutation record (each kernel change built in a scratch copy of the tree,
 * run in the guest; the test named fails, the rest of its group passes):
 *  - odp_umem.c: cached read-only entries used for writes (drop the
 *    ODP_ENTRY_WRITABLE test): write_to_prot_read (WRITE after READ
 *    succeeds), zero_page_read_then_write (the zero page gets written).
 *  - odp_umem.c: the invalidate callback keeps the entries (no xa_erase):
 *    write_to_prot_read, prot_none_page, munmap_hole, local_source_prot_none,
 *    fork_write_lands_in_parent_only, dontneed_and_remap_4mib.
 *  - rxe_odp.c: the MR iova used as the user address (upstream 7.2's
 *    class): iova_ne_addr, iova_zero_based, iova_near_top (in-range WRITE
 *    gets REM_ACCESS_ERR); write_to_prot_read still passes.
 *  - no bound at all (mr_check_range, odp_mirror_range_in and the umem
 *    bound all disabled): the three iova tests (out-of-range WRITE
 *    succeeds). Any one of the three bounds alone keeps them passing.
 *  - odp_fault() records every valid page of its PMD-wide snapshot but
 *    checks only the access's VMAs for memfd_secret (main before
 *    d6cf146): secret_neighbour_after_write and
 *    secret_neighbour_after_send oops the guest at the remote READ of
 *    the secret page ("BUG: unable to handle page fault" in memcpy_orig
 *    from odp_copy_chunk, rxe_receiver); the READ never completes, the
 *    case times out and the run exits 125.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "verbs_util.h"
#include "test_util.h"

#ifndef SYS_memfd_secret
#define SYS_memfd_secret	447	/* x86_64 and the generic table */
#endif

#define MAX_MAPS	12
#define MAX_MRS		8
#define GUARD		TU_GUARD	/* bytes no operation may touch */
#define POISON		TU_POISON	/* local destination bytes before a READ */
#define RW		(PROT_READ | PROT_WRITE)

/* Access flags of the MR under test, and of the peer's local buffers. */
#define ACC_TARGET	(IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | \
			 IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_ATOMIC)
#define ACC_LOCAL	IBV_ACCESS_LOCAL_WRITE

#define FETCH_ADD	IBV_WR_ATOMIC_FETCH_AND_ADD
#define CMP_SWAP	IBV_WR_ATOMIC_CMP_AND_SWP

struct mapping {
	void	*base;
	size_t	size;
};

/*
 * The working set of a case: the target @buf (@size bytes) and its shadow
 * @want (what @buf must hold), the peer's local source @src (@size bytes)
 * and destination @dst (@dst_size), each its own mapping; the ODP MRs @mr
 * (ACC_TARGET, from @addr in @buf at iova @iova), @smr and @dmr (ACC_LOCAL,
 * all of @src and @dst).
 */
struct ws {
	uint8_t		*buf, *want, *src, *dst, *addr;
	size_t		size, dst_size;
	uint64_t	iova;
	struct ibv_mr	*mr, *smr, *dmr;
};

FIXTURE(odp) {
	struct vu_config	cfg;
	struct vu_ctx		v;
	struct vu_qp_pair	qps;
	bool			qps_failed;	/* an error completion on qps */
	struct ws		w;
	struct mapping		maps[MAX_MAPS];
	struct ibv_mr		*mrs[MAX_MRS];
	int			fd;	/* memfd_secret, or -1 */
	uint64_t		wr_id;
	size_t			pg;
};

FIXTURE_SETUP(odp)
{
	const uint32_t need = IBV_ODP_SUPPORT_SEND | IBV_ODP_SUPPORT_RECV |
			      IBV_ODP_SUPPORT_WRITE | IBV_ODP_SUPPORT_READ |
			      IBV_ODP_SUPPORT_ATOMIC;
	struct ibv_device_attr_ex ax;
	uint32_t rc;

	self->fd = -1;
	self->pg = (size_t)sysconf(_SC_PAGESIZE);
	TU_OPEN_QUERY(&self->cfg, &self->v, &ax);
	TU_REQUIRE_CAP(ax.odp_caps.general_caps & IBV_ODP_SUPPORT,
		       "%s has no ODP support", self->cfg.dev_name);
	rc = ax.odp_caps.per_transport_caps.rc_odp_caps;
	TU_REQUIRE_CAP((rc & need) == need, "%s RC ODP caps 0x%x lack 0x%x",
		       self->cfg.dev_name, rc, need & ~rc);
	ASSERT_EQ(0, vu_qp_pair_create(&self->v, &self->qps));
}

FIXTURE_TEARDOWN(odp)
{
	int i;

	EXPECT_EQ(0, vu_qp_pair_destroy(&self->v, &self->qps));
	for (i = 0; i < MAX_MRS; i++)
		EXPECT_EQ(0, vu_dereg_mr(&self->v, self->mrs[i]));
	for (i = 0; i < MAX_MAPS; i++)
		if (self->maps[i].base)
			EXPECT_EQ(0, munmap(self->maps[i].base,
					    self->maps[i].size));
	if (self->fd >= 0)
		EXPECT_EQ(0, close(self->fd));
	EXPECT_EQ(0, vu_close(&self->v));
}

/* ---- helpers ----------------------------------------------------------- */

static void track_map(struct __test_metadata *_metadata,
		      FIXTURE_DATA(odp) *self, void *p, size_t size)
{
	int i;

	for (i = 0; i < MAX_MAPS && self->maps[i].base; i++)
		;
	ASSERT_LT(i, MAX_MAPS);
	self->maps[i].base = p;
	self->maps[i].size = size;
}

/* A private anonymous mapping, unmapped at teardown. */
static uint8_t *map_anon(struct __test_metadata *_metadata,
			 FIXTURE_DATA(odp) *self, size_t size, int prot)
{
	void *p = mmap(NULL, size, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	ASSERT_NE(MAP_FAILED, p) TH_LOG("mmap(%zu): %s", size,
					strerror(errno));
	track_map(_metadata, self, p, size);
	return p;
}

static void track_mr(struct __test_metadata *_metadata,
		     FIXTURE_DATA(odp) *self, struct ibv_mr *mr)
{
	int i;

	for (i = 0; i < MAX_MRS && self->mrs[i]; i++)
		;
	ASSERT_LT(i, MAX_MRS);
	self->mrs[i] = mr;
}

/* Register an ODP MR at @iova over [addr, addr + len); deregistered at teardown. */
static struct ibv_mr *reg_odp_iova(struct __test_metadata *_metadata,
				   FIXTURE_DATA(odp) *self, void *addr,
				   size_t len, uint64_t iova,
				   unsigned int access)
{
	struct ibv_mr *mr;

	mr = ibv_reg_mr_iova(self->v.pd, addr, len, iova,
			     access | IBV_ACCESS_ON_DEMAND);
	ASSERT_NE(NULL, mr) TH_LOG("ibv_reg_mr_iova(%p, %zu, 0x%" PRIx64 ", 0x%x): %s",
				   addr, len, iova, access, strerror(errno));
	track_mr(_metadata, self, mr);
	return mr;
}

static struct ibv_mr *reg_odp(struct __test_metadata *_metadata,
			      FIXTURE_DATA(odp) *self, void *addr, size_t len,
			      unsigned int access)
{
	return reg_odp_iova(_metadata, self, addr, len, (uintptr_t)addr,
			    access);
}

/*
 * Map the working set: @buf with @prot, the rest read-write. The target
 * MR will start at @buf, at iova @buf.
 */
static struct ws *ws_map(struct __test_metadata *_metadata,
			 FIXTURE_DATA(odp) *self, size_t size, size_t dst_size,
			 int prot)
{
	struct ws *w = &self->w;

	w->size = size;
	w->dst_size = dst_size;
	w->buf = map_anon(_metadata, self, size, prot);
	w->want = map_anon(_metadata, self, size, RW);
	w->src = map_anon(_metadata, self, size, RW);
	w->dst = map_anon(_metadata, self, dst_size, RW);
	w->addr = w->buf;
	w->iova = (uintptr_t)w->buf;
	return w;
}

/* Register @smr and @dmr. */
static void ws_reg_local(struct __test_metadata *_metadata,
			 FIXTURE_DATA(odp) *self)
{
	struct ws *w = &self->w;

	w->smr = reg_odp(_metadata, self, w->src, w->size, ACC_LOCAL);
	w->dmr = reg_odp(_metadata, self, w->dst, w->dst_size, ACC_LOCAL);
}

/* Register @mr over @len bytes from @addr at @iova, then @smr and @dmr. */
static void ws_reg(struct __test_metadata *_metadata, FIXTURE_DATA(odp) *self,
		   size_t len)
{
	struct ws *w = &self->w;

	w->mr = reg_odp_iova(_metadata, self, w->addr, len, w->iova,
			     ACC_TARGET);
	ws_reg_local(_metadata, self);
}

/* Fill the target with pattern @seed; the shadow follows. */
static void ws_fill(struct ws *w, unsigned int seed)
{
	tu_fill(w->buf, w->size, seed);
	memcpy(w->want, w->buf, w->size);
}

/* Remote address of byte @off of the target MR (@off may be negative). */
static uint64_t ra(const struct ws *w, int64_t off)
{
	return w->iova + (uint64_t)off;
}

/* The shadow of the byte at remote address @raddr of the target MR. */
static uint8_t *shadow(const struct ws *w, uint64_t raddr)
{
	return w->want + (w->addr - w->buf) + (raddr - w->iova);
}

/* The whole target equals its shadow. */
static bool ws_same(const char *what, const struct ws *w)
{
	return tu_same_bytes(what, w->buf, w->want, w->size);
}

/*
 * An error completion leaves both QPs in the error state: before the next
 * post, start afresh.
 */
static void live_qps(struct __test_metadata *_metadata,
		     FIXTURE_DATA(odp) *self)
{
	if (!self->qps_failed)
		return;
	ASSERT_EQ(0, vu_qp_pair_destroy(&self->v, &self->qps));
	ASSERT_EQ(0, vu_qp_pair_create(&self->v, &self->qps));
	self->qps_failed = false;
}

/* Post a receive of [@addr, @addr + @len) on QP b. */
static void post_recv_b(struct __test_metadata *_metadata,
			FIXTURE_DATA(odp) *self, uint64_t id, void *addr,
			uint32_t len, uint32_t lkey)
{
	live_qps(_metadata, self);
	ASSERT_EQ(0, vu_post_recv(&self->v, &self->qps.b, id, addr, len,
				  lkey));
}

static const char *wr_name(enum ibv_wr_opcode op)
{
	switch (op) {
	case IBV_WR_RDMA_WRITE:
		return "WRITE";
	case IBV_WR_RDMA_READ:
		return "READ";
	case IBV_WR_SEND:
		return "SEND";
	case FETCH_ADD:
		return "FETCH_ADD";
	case CMP_SWAP:
		return "CMP_SWAP";
	default:
		return "?";
	}
}

/*
 * Post @wr on QP a and wait for its completion; log it unless it
 * succeeded. Returns its status.
 */
static enum ibv_wc_status post_reap(struct __test_metadata *_metadata,
				    FIXTURE_DATA(odp) *self,
				    struct ibv_send_wr *wr)
{
	struct ibv_send_wr *bad = NULL;
	uint64_t raddr = wr->opcode == FETCH_ADD || wr->opcode == CMP_SWAP ?
			 wr->wr.atomic.remote_addr : wr->wr.rdma.remote_addr;
	struct ibv_wc wc;
	int ret;

	live_qps(_metadata, self);
	wr->wr_id = ++self->wr_id;
	wr->num_sge = 1;
	wr->send_flags = IBV_SEND_SIGNALED;
	ret = ibv_post_send(self->qps.a.qp, wr, &bad);
	ASSERT_EQ(0, ret) TH_LOG("ibv_post_send(%s): %s", wr_name(wr->opcode),
				 strerror(ret));
	ASSERT_EQ(0, vu_poll_one(&self->v, &self->qps.a, &wc));
	ASSERT_EQ(wr->wr_id, wc.wr_id);
	if (wc.status != IBV_WC_SUCCESS) {
		self->qps_failed = true;
		ksft_print_msg("%s of %u bytes at 0x%" PRIx64 ": %s (%d), vendor_err 0x%x\n",
			       wr_name(wr->opcode), wr->sg_list->length, raddr,
			       ibv_wc_status_str(wc.status), wc.status,
			       wc.vendor_err);
	}
	return wc.status;
}

/*
 * Post one WRITE, READ or SEND on QP a from/to the local SGE
 * [@laddr, @laddr + @len) with @lkey at remote @raddr/@rkey, and return
 * its completion status.
 */
static enum ibv_wc_status rdma(struct __test_metadata *_metadata,
			       FIXTURE_DATA(odp) *self, enum ibv_wr_opcode op,
			       void *laddr, uint32_t len, uint32_t lkey,
			       uint64_t raddr, uint32_t rkey)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)laddr, .length = len, .lkey = lkey,
	};
	struct ibv_send_wr wr = {
		.sg_list = &sge,
		.opcode = op,
		.wr.rdma = { .remote_addr = raddr, .rkey = rkey },
	};

	return post_reap(_metadata, self, &wr);
}

/*
 * Post one 8-byte atomic on QP a at @raddr/@rkey; the original value lands
 * in *@res (registered with @lkey). Returns its completion status.
 */
static enum ibv_wc_status atomic_op(struct __test_metadata *_metadata,
				    FIXTURE_DATA(odp) *self,
				    enum ibv_wr_opcode op, uint64_t *res,
				    uint32_t lkey, uint64_t raddr,
				    uint32_t rkey, uint64_t compare_add,
				    uint64_t swap)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)res, .length = sizeof(*res), .lkey = lkey,
	};
	struct ibv_send_wr wr = {
		.sg_list = &sge,
		.opcode = op,
		.wr.atomic = {
			.remote_addr = raddr,
			.compare_add = compare_add,
			.swap = swap,
			.rkey = rkey,
		},
	};

	return post_reap(_metadata, self, &wr);
}

#define ASSERT_WC(want, expr) do {					\
	enum ibv_wc_status __got = (expr);				\
	ASSERT_EQ(want, __got) TH_LOG("completion %s (%d), want %s",	\
				      ibv_wc_status_str(__got), __got,	\
				      ibv_wc_status_str(want));		\
} while (0)

/*
 * The peer WRITEs [@l, @l + @len) of its source to @raddr of the target
 * MR; the completion must have status @st. One that succeeds is applied
 * to the shadow too.
 */
static void ws_write(struct __test_metadata *_metadata,
		     FIXTURE_DATA(odp) *self, enum ibv_wc_status st,
		     void *l, uint32_t len, uint64_t raddr)
{
	struct ws *w = &self->w;

	ASSERT_WC(st, rdma(_metadata, self, IBV_WR_RDMA_WRITE, l, len,
			   w->smr->lkey, raddr, w->mr->rkey));
	if (st == IBV_WC_SUCCESS && w->want)
		memcpy(shadow(w, raddr), l, len);
}

/*
 * The peer READs @len bytes at @raddr of the target MR into @l (in its
 * destination); the completion must have status @st.
 */
static void ws_read(struct __test_metadata *_metadata,
		    FIXTURE_DATA(odp) *self, enum ibv_wc_status st,
		    void *l, uint32_t len, uint64_t raddr)
{
	struct ws *w = &self->w;

	ASSERT_WC(st, rdma(_metadata, self, IBV_WR_RDMA_READ, l, len,
			   w->dmr->lkey, raddr, w->mr->rkey));
}

/* A READ as above that succeeds and brings the shadow's bytes. */
static void ws_read_same(struct __test_metadata *_metadata,
			 FIXTURE_DATA(odp) *self, const char *what,
			 void *l, uint32_t len, uint64_t raddr)
{
	ws_read(_metadata, self, IBV_WC_SUCCESS, l, len, raddr);
	ASSERT_TRUE(tu_same_bytes(what, l, shadow(&self->w, raddr), len));
}

static uint64_t load64(const void *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static void store64(void *p, uint64_t v)
{
	memcpy(p, &v, sizeof(v));
}

/*
 * The peer's 8-byte atomic @op at @raddr of the target MR, its result
 * landing in *@res (in its destination); the completion must have status
 * @st. One that succeeds must return the shadow's value, and the shadow
 * follows it.
 */
static void ws_atomic(struct __test_metadata *_metadata,
		      FIXTURE_DATA(odp) *self, enum ibv_wc_status st,
		      enum ibv_wr_opcode op, uint64_t *res, uint64_t raddr,
		      uint64_t compare_add, uint64_t swap)
{
	struct ws *w = &self->w;
	uint64_t old;

	ASSERT_WC(st, atomic_op(_metadata, self, op, res, w->dmr->lkey, raddr,
				w->mr->rkey, compare_add, swap));
	if (st != IBV_WC_SUCCESS)
		return;
	old = load64(shadow(w, raddr));
	ASSERT_EQ(old, *res);
	if (op == FETCH_ADD)
		store64(shadow(w, raddr), old + compare_add);
	else if (old == compare_add)
		store64(shadow(w, raddr), swap);
}

/* ---- 1. permissions follow the CPU ------------------------------------ */

/*
 * A remote WRITE (and atomic) into an ODP MR whose memory became PROT_READ
 * gets IBV_WC_REM_ACCESS_ERR and changes no byte, also after a remote READ
 * cached a read-only translation; after mprotect(RW) the WRITE lands.
 */
TEST_F(odp, write_to_prot_read)
{
	size_t pg = self->pg, size = 3 * pg, len = pg + 200;
	struct ws *w = ws_map(_metadata, self, size, size, RW);
	uint64_t *res = (uint64_t *)(w->dst + 2 * pg), at = ra(w, pg - 100);

	ws_reg(_metadata, self, size);
	ws_fill(w, 1);

	/* Writable translations become resident in the mirror. */
	tu_fill(w->src, len, 2);
	ws_write(_metadata, self, IBV_WC_SUCCESS, w->src, len, at);
	ASSERT_TRUE(ws_same("after the first WRITE", w));

	/* mprotect must drop them: the WRITE is refused. */
	ASSERT_EQ(0, mprotect(w->buf, size, PROT_READ));
	tu_fill(w->src, len, 3);
	ws_write(_metadata, self, IBV_WC_REM_ACCESS_ERR, w->src, len, at);
	ASSERT_TRUE(ws_same("PROT_READ after a refused WRITE", w));

	/* A READ works and caches read-only translations ... */
	memset(w->dst, POISON, 2 * pg);
	ws_read_same(_metadata, self, "READ of PROT_READ memory", w->dst, len,
		     at);

	/* ... which a WRITE or an atomic must not use. */
	ws_write(_metadata, self, IBV_WC_REM_ACCESS_ERR, w->src, len, at);
	ASSERT_TRUE(ws_same("PROT_READ, WRITE after READ", w));
	ws_read(_metadata, self, IBV_WC_SUCCESS, w->dst, 64, ra(w, 2 * pg));
	ws_atomic(_metadata, self, IBV_WC_REM_ACCESS_ERR, FETCH_ADD, res,
		  ra(w, 2 * pg), 1, 0);
	ASSERT_TRUE(ws_same("PROT_READ, atomic after READ", w));

	/* Writable again: the WRITE lands byte-exact. */
	ASSERT_EQ(0, mprotect(w->buf, size, RW));
	ws_write(_metadata, self, IBV_WC_SUCCESS, w->src, len, at);
	ASSERT_TRUE(ws_same("after mprotect(RW) and WRITE", w));
}

/*
 * Never-written PROT_READ anonymous memory (the shared zero page): a
 * remote READ returns zeros, a WRITE and an atomic after it get
 * IBV_WC_REM_ACCESS_ERR, and the memory and a fresh anonymous page still
 * read zero (the zero page was not written through).
 */
TEST_F(odp, zero_page_read_then_write)
{
	size_t pg = self->pg, size = 2 * pg;
	struct ws *w = ws_map(_metadata, self, size, size + pg, PROT_READ);
	uint8_t *fresh;

	ws_reg(_metadata, self, size);
	memset(w->dst, POISON, size);
	ws_read(_metadata, self, IBV_WC_SUCCESS, w->dst, size, ra(w, 0));
	ASSERT_TRUE(tu_all_bytes("READ of untouched PROT_READ memory", w->dst,
				 0, size));

	tu_fill(w->src, size, 4);
	ws_write(_metadata, self, IBV_WC_REM_ACCESS_ERR, w->src, size, ra(w, 0));
	ws_read(_metadata, self, IBV_WC_SUCCESS, w->dst, 8, ra(w, pg + 64));
	ws_atomic(_metadata, self, IBV_WC_REM_ACCESS_ERR, FETCH_ADD,
		  (uint64_t *)(w->dst + size), ra(w, pg + 64), 0x0101, 0);
	ASSERT_TRUE(tu_all_bytes("PROT_READ zero memory after WRITE/atomic",
				 w->buf, 0, size));
	fresh = map_anon(_metadata, self, pg, PROT_READ);
	ASSERT_TRUE(tu_all_bytes("a fresh anonymous page", fresh, 0, pg));
}

/*
 * A PROT_NONE page in the middle of an ODP MR (resident before the
 * mprotect): remote READ, WRITE and atomic of it get
 * IBV_WC_REM_ACCESS_ERR and change nothing, its neighbours still work;
 * after mprotect(RW) it holds its old data and a WRITE lands.
 */
TEST_F(odp, prot_none_page)
{
	size_t pg = self->pg, size = 3 * pg;
	struct ws *w = ws_map(_metadata, self, size, size + pg, RW);

	ws_reg(_metadata, self, size);
	ws_fill(w, 5);

	/* All three pages resident, then the middle one goes PROT_NONE. */
	ws_read_same(_metadata, self, "READ before mprotect", w->dst, size,
		     ra(w, 0));
	ASSERT_EQ(0, mprotect(w->buf + pg, pg, PROT_NONE));

	memset(w->dst, POISON, size);
	ws_read(_metadata, self, IBV_WC_REM_ACCESS_ERR, w->dst, pg, ra(w, pg));
	ASSERT_TRUE(tu_all_bytes("local buffer of a refused READ", w->dst,
				 POISON, size));
	tu_fill(w->src, size, 6);
	ws_write(_metadata, self, IBV_WC_REM_ACCESS_ERR, w->src, 100,
		 ra(w, pg + 1000));
	ws_atomic(_metadata, self, IBV_WC_REM_ACCESS_ERR, FETCH_ADD,
		  (uint64_t *)(w->dst + size), ra(w, pg + 8), 1, 0);

	/* The neighbours work on a fresh pair. */
	ws_write(_metadata, self, IBV_WC_SUCCESS, w->src, pg, ra(w, 0));
	ws_read_same(_metadata, self, "READ of the page after", w->dst, pg,
		     ra(w, 2 * pg));
	ASSERT_TRUE(tu_same_bytes("page before", w->buf, w->want, pg));
	ASSERT_TRUE(tu_same_bytes("page after", w->buf + 2 * pg,
				  w->want + 2 * pg, pg));

	/* Back to RW: old data intact, and a WRITE lands byte-exact. */
	ASSERT_EQ(0, mprotect(w->buf + pg, pg, RW));
	ASSERT_TRUE(ws_same("PROT_NONE page after the refusals", w));
	ws_write(_metadata, self, IBV_WC_SUCCESS, w->src + pg, pg - 3,
		 ra(w, pg + 1));
	ASSERT_TRUE(ws_same("after mprotect(RW) and WRITE", w));
}

/*
 * A page munmap'ed from the middle of a registered (and resident) ODP MR:
 * READ and WRITE of it get IBV_WC_REM_ACCESS_ERR, its neighbours work on
 * a fresh QP pair, and a new mapping at the hole reads as fresh zeros and
 * takes a WRITE.
 */
TEST_F(odp, munmap_hole)
{
	size_t pg = self->pg, size = 3 * pg;
	struct ws *w = ws_map(_metadata, self, size, size, RW);
	uint8_t *mid = w->buf + pg;
	void *p;

	ws_reg(_metadata, self, size);
	ws_fill(w, 7);

	ws_read_same(_metadata, self, "READ before munmap", w->dst, size,
		     ra(w, 0));
	ASSERT_EQ(0, munmap(mid, pg));

	memset(w->dst, POISON, size);
	ws_read(_metadata, self, IBV_WC_REM_ACCESS_ERR, w->dst, 16,
		ra(w, 2 * pg - 16));
	ASSERT_TRUE(tu_all_bytes("local buffer of a refused READ", w->dst,
				 POISON, size));
	tu_fill(w->src, size, 8);
	ws_write(_metadata, self, IBV_WC_REM_ACCESS_ERR, w->src, pg, ra(w, pg));

	ws_write(_metadata, self, IBV_WC_SUCCESS, w->src, pg, ra(w, 0));
	ws_write(_metadata, self, IBV_WC_SUCCESS, w->src + 2 * pg, pg,
		 ra(w, 2 * pg));
	ASSERT_TRUE(tu_same_bytes("page before the hole", w->buf, w->want, pg));
	ASSERT_TRUE(tu_same_bytes("page after the hole", w->buf + 2 * pg,
				  w->want + 2 * pg, pg));
	ws_read(_metadata, self, IBV_WC_SUCCESS, w->dst, pg, ra(w, 0));
	ws_read(_metadata, self, IBV_WC_SUCCESS, w->dst + 2 * pg, pg,
		ra(w, 2 * pg));
	ASSERT_TRUE(tu_same_bytes("READ of the page before", w->dst, w->want,
				  pg));
	ASSERT_TRUE(tu_same_bytes("READ of the page after", w->dst + 2 * pg,
				  w->want + 2 * pg, pg));

	/* A new page at the hole: fresh zeros, then a WRITE lands. */
	p = mmap(mid, pg, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	ASSERT_EQ((void *)mid, p);
	memset(w->dst, POISON, size);
	memset(w->want + pg, 0, pg);
	ws_read_same(_metadata, self, "READ across the remapped hole", w->dst,
		     size, ra(w, 0));
	ws_write(_metadata, self, IBV_WC_SUCCESS, w->src + pg, pg, ra(w, pg));
	ASSERT_TRUE(ws_same("after WRITE into the remapped hole", w));
}

/*
 * Local source on a PROT_NONE page: an RDMA WRITE and a SEND whose local
 * SGE is an ODP MR over a (previously resident) PROT_NONE page complete
 * with IBV_WC_LOC_PROT_ERR and move no byte.
 */
TEST_F(odp, local_source_prot_none)
{
	size_t pg = self->pg, size = 2 * pg;
	struct ws *w = ws_map(_metadata, self, size, size, RW);
	struct ibv_wc wc;

	ws_reg(_metadata, self, size);
	tu_fill(w->src, size, 9);

	/* The source page is resident, then becomes PROT_NONE. */
	ws_write(_metadata, self, IBV_WC_SUCCESS, w->src + pg, pg, ra(w, 0));
	ASSERT_TRUE(tu_same_bytes("first WRITE", w->buf, w->src + pg, pg));
	ASSERT_EQ(0, mprotect(w->src + pg, pg, PROT_NONE));
	memset(w->buf, POISON, size);

	ws_write(_metadata, self, IBV_WC_LOC_PROT_ERR, w->src + pg, pg,
		 ra(w, 0));
	ASSERT_TRUE(tu_all_bytes("target of the failed WRITE", w->buf, POISON,
				 size));

	post_recv_b(_metadata, self, 77, w->buf, size, w->mr->lkey);
	ASSERT_WC(IBV_WC_LOC_PROT_ERR,
		  rdma(_metadata, self, IBV_WR_SEND, w->src + pg - 8, 64,
		       w->smr->lkey, 0, 0));
	ASSERT_TRUE(tu_all_bytes("receive buffer of the failed SEND", w->buf,
				 POISON, size));
	/* Nothing arrived: the receive is still posted, not completed. */
	ASSERT_EQ(0, ibv_poll_cq(self->qps.b.cq, 1, &wc));
}

/*
 * Local destination read-only: the response of a remote READ (or atomic)
 * that would land in a PROT_READ page of a local ODP MR completes with
 * IBV_WC_LOC_PROT_ERR and the page is unchanged.
 */
TEST_F(odp, local_dest_prot_read)
{
	size_t pg = self->pg, size = 2 * pg;
	struct ws *w = ws_map(_metadata, self, size, size, RW);
	uint8_t *dst_was = w->want;	/* here the shadow of dst */

	ws_reg(_metadata, self, size);
	tu_fill(w->buf, size, 10);
	tu_fill(w->dst, size, 11);

	ws_read(_metadata, self, IBV_WC_SUCCESS, w->dst, 64, ra(w, 0));
	memcpy(dst_was, w->dst, size);
	ASSERT_EQ(0, mprotect(w->dst, size, PROT_READ));

	ws_read(_metadata, self, IBV_WC_LOC_PROT_ERR, w->dst + 100, pg,
		ra(w, 0));
	ASSERT_TRUE(tu_same_bytes("PROT_READ destination of a READ", w->dst,
				  dst_was, size));
	ws_atomic(_metadata, self, IBV_WC_LOC_PROT_ERR, FETCH_ADD,
		  (uint64_t *)(w->dst + pg), ra(w, 64), 1, 0);
	ASSERT_TRUE(tu_same_bytes("PROT_READ destination of an atomic", w->dst,
				  dst_was, size));
}

/* ---- 2. fork -------------------------------------------------------- */

struct child_report {
	uint8_t		ok;
	uint8_t		got;
	uint8_t		want;
	uint64_t	first_bad;
};

static struct child_report child_compare(const uint8_t *p, const uint8_t *want,
					 size_t n)
{
	struct child_report r = { .ok = 1 };
	size_t i;

	for (i = 0; i < n; i++) {
		if (p[i] != want[i]) {
			r.ok = 0;
			r.got = p[i];
			r.want = want[i];
			r.first_bad = i;
			break;
		}
	}
	return r;
}

/* Block on @fd for one byte; true when it came (false: the peer closed). */
static bool wait_byte(int fd)
{
	char c;
	ssize_t r;

	do {
		r = read(fd, &c, 1);
	} while (r < 0 && errno == EINTR);
	return r == 1;
}

static bool send_all(int fd, const void *p, size_t n)
{
	return write(fd, p, n) == (ssize_t)n;
}

/*
 * The child of a fork case, on pipes @go (from the parent) and @res (to
 * it): waits for a go; with @mine, writes @mine over @buf with the CPU,
 * tells the parent so ("w") and waits for another go; then reports
 * whether @buf holds @want (@mine, or the parent's bytes of before the
 * fork). Never returns.
 */
static void __attribute__((noreturn))
fork_child(const int go[2], const int res[2], uint8_t *buf,
	   const uint8_t *want, const uint8_t *mine, size_t size)
{
	struct child_report r = { 0 };

	close(go[1]);
	close(res[0]);
	if (!wait_byte(go[0]))
		_exit(1);
	if (mine) {
		memcpy(buf, mine, size);	/* breaks COW in the child */
		if (!send_all(res[1], "w", 1) || !wait_byte(go[0]))
			_exit(1);
		want = mine;
	}
	r = child_compare(buf, want, size);
	_exit(send_all(res[1], &r, sizeof(r)) && r.ok ? 0 : 1);
}

/* Let the child of fork_child() compare, and check its report and exit. */
static void check_child(struct __test_metadata *_metadata, int go[2],
			int res[2], pid_t pid)
{
	struct child_report r;
	ssize_t n;
	int status;

	ASSERT_TRUE(send_all(go[1], "g", 1));
	n = read(res[0], &r, sizeof(r));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EQ((ssize_t)sizeof(r), n) TH_LOG("no report from the child");
	ASSERT_TRUE(r.ok) TH_LOG("child's copy: byte %" PRIu64 " is 0x%02x, want 0x%02x",
				 r.first_bad, r.got, r.want);
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
	close(go[1]);
	close(res[0]);
}

/*
 * fork with the target of the working set (4 pages, pattern @seed, made
 * resident by @prime: a READ, or a WRITE of the same bytes) and the child
 * running fork_child(@mine). The shadow keeps the bytes of before the
 * fork, in the child too.
 */
static pid_t ws_fork(struct __test_metadata *_metadata,
		     FIXTURE_DATA(odp) *self, enum ibv_wr_opcode prime,
		     unsigned int seed, const uint8_t *mine, int go[2],
		     int res[2])
{
	size_t size = 4 * self->pg;
	struct ws *w = ws_map(_metadata, self, size, size, RW);
	pid_t pid;

	ws_reg(_metadata, self, size);
	ws_fill(w, seed);
	if (prime == IBV_WR_RDMA_WRITE) {
		memcpy(w->src, w->buf, size);
		ws_write(_metadata, self, IBV_WC_SUCCESS, w->src, size,
			 ra(w, 0));
	} else {
		ws_read(_metadata, self, IBV_WC_SUCCESS, w->dst, size,
			ra(w, 0));
	}

	ASSERT_EQ(0, pipe(go));
	ASSERT_EQ(0, pipe(res));
	pid = fork();
	ASSERT_LE(0, pid) TH_LOG("fork: %s", strerror(errno));
	if (pid == 0)
		fork_child(go, res, w->buf, w->want, mine, size);
	close(go[0]);
	close(res[1]);
	return pid;
}

/*
 * fork with an ODP MR over private anonymous memory whose writable
 * translations are resident: the peer's RDMA WRITE after the fork lands in
 * the parent (COW broken there) and the waiting child's copy keeps the old
 * bytes.
 */
TEST_F(odp, fork_write_lands_in_parent_only)
{
	size_t size = 4 * self->pg;
	struct ws *w = &self->w;
	int go[2], res[2];
	pid_t pid;

	pid = ws_fork(_metadata, self, IBV_WR_RDMA_WRITE, 12, NULL, go, res);
	tu_fill(w->src, size, 13);
	ws_write(_metadata, self, IBV_WC_SUCCESS, w->src, size, ra(w, 0));
	ASSERT_TRUE(tu_same_bytes("parent after the WRITE", w->buf, w->src,
				  size));
	ws_read(_metadata, self, IBV_WC_SUCCESS, w->dst, size, ra(w, 0));
	ASSERT_TRUE(tu_same_bytes("READ of the parent's MR", w->dst, w->src,
				  size));
	check_child(_metadata, go, res, pid);
}

/*
 * fork, then the child writes its own copy with the CPU: the peer's READ of
 * the parent's ODP MR returns the parent's bytes, its WRITE lands in the
 * parent only, and the child keeps what it wrote.
 */
TEST_F(odp, fork_child_writes_own_copy)
{
	size_t size = 4 * self->pg;
	uint8_t *mine = map_anon(_metadata, self, size, RW);
	struct ws *w = &self->w;
	int go[2], res[2];
	pid_t pid;

	tu_fill(mine, size, 15);
	pid = ws_fork(_metadata, self, IBV_WR_RDMA_READ, 14, mine, go, res);

	ASSERT_TRUE(send_all(go[1], "g", 1));
	ASSERT_TRUE(wait_byte(res[0])) TH_LOG("the child did not write");
	memset(w->dst, POISON, size);
	ws_read_same(_metadata, self,
		     "READ of the parent's MR after the child wrote", w->dst,
		     size, ra(w, 0));
	tu_fill(w->src, size, 16);
	ws_write(_metadata, self, IBV_WC_SUCCESS, w->src, size, ra(w, 0));
	ASSERT_TRUE(tu_same_bytes("parent after the WRITE", w->buf, w->src,
				  size));
	check_child(_metadata, go, res, pid);
}

/* ---- 3. iova != addr ------------------------------------------------ */

/*
 * An ODP MR over 2 pages at page offset 0x128 of a 4-page mapping (a guard
 * page or more on each side), registered at iova @iova_base + 0x128.
 */
static struct ws *iova_ws(struct __test_metadata *_metadata,
			  FIXTURE_DATA(odp) *self, uint64_t iova_base)
{
	size_t pg = self->pg;
	struct ws *w = ws_map(_metadata, self, 4 * pg, 4 * pg, RW);

	w->addr = w->buf + pg + 0x128;
	w->iova = iova_base + ((uintptr_t)w->addr & (pg - 1));
	return w;
}

/*
 * The MR of iova_ws(@iova_base): WRITE, READ, FETCH_ADD and CMP_SWAP at
 * iova X land at addr + (X - iova); out-of-range iovas get
 * IBV_WC_REM_ACCESS_ERR and no byte of the mapping changes. A decoy
 * mapping at the iova itself (when that address is free) must stay
 * untouched too.
 */
static void iova_case(struct __test_metadata *_metadata,
		      FIXTURE_DATA(odp) *self, uint64_t iova_base)
{
	size_t pg = self->pg, size = 4 * pg, len = 2 * pg;
	struct ws *w = iova_ws(_metadata, self, iova_base);
	uint64_t iova = w->iova, *res = (uint64_t *)(w->dst + 3 * pg), cur;
	uint8_t *decoy = NULL;
	void *p;

	ASSERT_NE((uint64_t)(uintptr_t)w->addr, iova);

	/* A decoy where an implementation using the iova as a VA would go. */
	p = mmap((void *)(uintptr_t)(iova & ~(uint64_t)(pg - 1)), size, RW,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (p != MAP_FAILED) {
		track_map(_metadata, self, p, size);
		decoy = p;
		memset(decoy, GUARD, size);
	} else {
		ksft_print_msg("no decoy at 0x%" PRIx64 ": %s\n", iova,
			       strerror(errno));
	}

	ws_reg(_metadata, self, len);
	ws_fill(w, 20);

	/* WRITE across a page boundary. */
	tu_fill(w->src, 5000, 21);
	ws_write(_metadata, self, IBV_WC_SUCCESS, w->src, 5000,
		 iova + pg - 1000);
	ASSERT_TRUE(ws_same("after WRITE at iova + pg - 1000", w));
	/* WRITE of exactly the whole MR. */
	tu_fill(w->src, len, 22);
	ws_write(_metadata, self, IBV_WC_SUCCESS, w->src, len, iova);
	ASSERT_TRUE(ws_same("after WRITE of the whole MR", w));
	/* READ. */
	memset(w->dst, POISON, 3 * pg);
	ws_read_same(_metadata, self, "READ at iova + 123", w->dst, 6000,
		     iova + 123);
	ASSERT_TRUE(tu_all_bytes("past the READ", w->dst + 6000, POISON,
				 3 * pg - 6000));
	/* FETCH_ADD on the first 8-byte word past a page boundary. */
	ws_atomic(_metadata, self, IBV_WC_SUCCESS, FETCH_ADD, res,
		  iova + pg - 0x128, 0x123456789ull, 0);
	/* CMP_SWAP on the last word of the MR: one that swaps, one that does not. */
	cur = load64(shadow(w, iova + len - 8));
	ws_atomic(_metadata, self, IBV_WC_SUCCESS, CMP_SWAP, res,
		  iova + len - 8, cur, 0xfeedfacecafebeefull);
	ws_atomic(_metadata, self, IBV_WC_SUCCESS, CMP_SWAP, res,
		  iova + len - 8, cur, 0x42);
	ASSERT_EQ(0xfeedfacecafebeefull, *res);
	ASSERT_TRUE(ws_same("after the atomics", w));

	/* Out of range: one byte before, one byte past the end, wrapping. */
	tu_fill(w->src, size, 23);
	ws_write(_metadata, self, IBV_WC_REM_ACCESS_ERR, w->src, 16, iova - 1);
	ws_write(_metadata, self, IBV_WC_REM_ACCESS_ERR, w->src, 17,
		 iova + len - 16);
	ws_write(_metadata, self, IBV_WC_REM_ACCESS_ERR, w->src, 32,
		 UINT64_MAX - 15);
	ws_write(_metadata, self, IBV_WC_REM_ACCESS_ERR, w->src, 2 * pg,
		 iova + pg);
	ASSERT_TRUE(ws_same("after out-of-range WRITEs", w));

	memset(w->dst, POISON, 3 * pg);
	ws_read(_metadata, self, IBV_WC_REM_ACCESS_ERR, w->dst, 16, iova - 1);
	ws_read(_metadata, self, IBV_WC_REM_ACCESS_ERR, w->dst, 17,
		iova + len - 16);
	ws_read(_metadata, self, IBV_WC_REM_ACCESS_ERR, w->dst, 32,
		UINT64_MAX - 15);
	ASSERT_TRUE(tu_all_bytes("local buffer of refused READs", w->dst,
				 POISON, 3 * pg));

	ws_atomic(_metadata, self, IBV_WC_REM_ACCESS_ERR, FETCH_ADD, res,
		  iova - 8, 1, 0);
	ws_atomic(_metadata, self, IBV_WC_REM_ACCESS_ERR, CMP_SWAP, res,
		  iova + len, 0, 1);
	ws_atomic(_metadata, self, IBV_WC_REM_ACCESS_ERR, FETCH_ADD, res,
		  UINT64_MAX - 7, 1, 0);
	ASSERT_TRUE(ws_same("after out-of-range READs and atomics", w));
	if (decoy)
		ASSERT_TRUE(tu_all_bytes("decoy at the iova", decoy, GUARD,
					 size));
}

/* iova = 0x10000000 + page offset of addr (iova != addr). */
TEST_F(odp, iova_ne_addr)
{
	iova_case(_metadata, self, 0x10000000);
}

/* iova = page offset of addr: the MR starts in the first page of iova space. */
TEST_F(odp, iova_zero_based)
{
	iova_case(_metadata, self, 0);
}

/*
 * An MR whose iova range ends just below 2^64: accesses in range land at
 * the right address; ones whose va + length wraps past 2^64 (which a naive
 * "va + len > iova + length" check accepts) get IBV_WC_REM_ACCESS_ERR and
 * change nothing.
 */
TEST_F(odp, iova_near_top)
{
	size_t pg = self->pg, len = 2 * pg;
	struct ws *w = iova_ws(_metadata, self,
			       (UINT64_MAX & ~(uint64_t)(pg - 1)) - 3 * pg);
	uint64_t iova = w->iova, *res = (uint64_t *)(w->dst + 3 * pg);

	ws_reg(_metadata, self, len);
	ws_fill(w, 24);

	tu_fill(w->src, 4 * pg, 25);
	ws_write(_metadata, self, IBV_WC_SUCCESS, w->src, 64, iova + len - 64);
	ws_read_same(_metadata, self, "READ at the MR's first iova", w->dst, 64,
		     iova);
	ws_atomic(_metadata, self, IBV_WC_SUCCESS, FETCH_ADD, res,
		  iova + len - 8, 3, 0);
	ASSERT_TRUE(ws_same("after in-range accesses", w));

	ws_write(_metadata, self, IBV_WC_REM_ACCESS_ERR, w->src, 3 * pg,
		 iova + len - 8);
	ws_write(_metadata, self, IBV_WC_REM_ACCESS_ERR, w->src, 16,
		 UINT64_MAX - 7);
	memset(w->dst, POISON, 3 * pg);
	ws_read(_metadata, self, IBV_WC_REM_ACCESS_ERR, w->dst, 3 * pg,
		iova + len - 8);
	ASSERT_TRUE(tu_all_bytes("local buffer of a wrapping READ", w->dst,
				 POISON, 3 * pg));
	ws_atomic(_metadata, self, IBV_WC_REM_ACCESS_ERR, FETCH_ADD, res,
		  UINT64_MAX - 7, 1, 0);
	ASSERT_TRUE(ws_same("after wrapping accesses", w));
}

/* ---- 4. memfd_secret ------------------------------------------------ */

/* An access to secret memory must fail, and should with REM_ACCESS_ERR. */
#define ASSERT_REFUSED(expr) do {					\
	enum ibv_wc_status __st = (expr);				\
	ASSERT_NE(IBV_WC_SUCCESS, __st);				\
	EXPECT_EQ(IBV_WC_REM_ACCESS_ERR, __st);				\
} while (0)

/*
 * In a test of the odp fixture: self->fd becomes a memfd_secret of @size
 * bytes; the test is skipped on a kernel without secretmem.
 */
#define OPEN_SECRET(size) do {						\
	int __fd = syscall(SYS_memfd_secret, 0);			\
									\
	if (__fd < 0 && errno == ENOSYS)				\
		SKIP(return, "memfd_secret: ENOSYS (secretmem disabled)"); \
	ASSERT_LE(0, __fd) TH_LOG("memfd_secret: %s", strerror(errno));	\
	self->fd = __fd;						\
	ASSERT_EQ(0, ftruncate(__fd, size));				\
} while (0)

/*
 * An ODP MR over memfd_secret memory: either registration fails, or every
 * remote READ/WRITE/atomic of it and a SEND from it complete with an
 * error (a SEND from it: IBV_WC_LOC_PROT_ERR); nothing leaks out, the
 * secret bytes stay unchanged, no oops.
 */
TEST_F(odp, memfd_secret)
{
	size_t pg = self->pg, size = 2 * pg;
	struct ws *w;
	struct ibv_mr *mr;
	uint8_t *sec;
	int fd;

	OPEN_SECRET(size);
	fd = self->fd;
	sec = mmap(NULL, size, RW, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, sec) TH_LOG("mmap(memfd_secret): %s",
					  strerror(errno));
	track_map(_metadata, self, sec, size);
	/* The working set with the secret mapping as its target. */
	w = ws_map(_metadata, self, size, size + pg, RW);
	w->buf = w->addr = sec;
	w->iova = (uintptr_t)sec;
	ws_fill(w, 30);
	ws_reg_local(_metadata, self);

	mr = ibv_reg_mr(self->v.pd, sec, size, ACC_TARGET | IBV_ACCESS_ON_DEMAND);
	if (!mr) {
		ksft_print_msg("ODP registration of memfd_secret memory refused: %s\n",
			       strerror(errno));
		ASSERT_TRUE(ws_same("secret memory", w));
		return;
	}
	track_mr(_metadata, self, mr);
	ksft_print_msg("ODP registration of memfd_secret memory succeeded\n");

	memset(w->dst, POISON, size + pg);
	ASSERT_REFUSED(rdma(_metadata, self, IBV_WR_RDMA_READ, w->dst, size,
			    w->dmr->lkey, (uintptr_t)sec, mr->rkey));
	ASSERT_TRUE(tu_all_bytes("local buffer of a READ of secret memory",
				 w->dst, POISON, size + pg));
	tu_fill(w->src, size, 31);
	ASSERT_REFUSED(rdma(_metadata, self, IBV_WR_RDMA_WRITE, w->src, 100,
			    w->smr->lkey, (uintptr_t)sec + 10, mr->rkey));
	ASSERT_REFUSED(atomic_op(_metadata, self, FETCH_ADD,
				 (uint64_t *)(w->dst + size), w->dmr->lkey,
				 (uintptr_t)sec + pg, mr->rkey, 1, 0));
	ASSERT_TRUE(tu_all_bytes("local buffer of an atomic on secret memory",
				 w->dst, POISON, size + pg));

	/* The secret MR as a local source. */
	post_recv_b(_metadata, self, 78, w->dst, size, w->dmr->lkey);
	ASSERT_WC(IBV_WC_LOC_PROT_ERR,
		  rdma(_metadata, self, IBV_WR_SEND, sec, 256, mr->lkey, 0, 0));
	ASSERT_TRUE(tu_all_bytes("receive buffer of a SEND from secret memory",
				 w->dst, POISON, size + pg));

	ASSERT_TRUE(ws_same("secret memory", w));
}

/* ---- 4b. memory next to memfd_secret memory --------------------------- */

/*
 * No completion on QP b's CQ, or only ones with an error status (a
 * receive that failed, or was flushed): no SEND landed in its receive.
 */
static void no_good_recv(struct __test_metadata *_metadata,
			 FIXTURE_DATA(odp) *self, const char *what)
{
	struct ibv_wc wc;
	int n;

	while ((n = ibv_poll_cq(self->qps.b.cq, 1, &wc)) == 1) {
		ksft_print_msg("%s: receive completion %s (%d)\n", what,
			       ibv_wc_status_str(wc.status), wc.status);
		ASSERT_NE(IBV_WC_SUCCESS, wc.status)
			TH_LOG("%s: a receive completed", what);
	}
	ASSERT_EQ(0, n);
}

/*
 * A 2 MiB-aligned ODP MR over 2 MiB of anonymous memory; after the
 * registration one memfd_secret page is mapped (MAP_FIXED) at +1 MiB
 * and written by the CPU. The first access to the MR, at +0 (@first: a
 * remote WRITE there, or a SEND that gathers from there through the
 * MR's lkey), must not make the secret page usable, although its 2 MiB
 * lie around it: a remote READ, WRITE, FETCH_ADD and CMP_SWP of the
 * secret page, a SEND into a receive buffer on it and a SEND from it
 * each complete with an error, the secret bytes stay as the CPU wrote
 * them, and afterwards WRITEs at +0, at +1 MiB - 4 KiB and past the
 * secret page land byte-exact (the whole 2 MiB equals its shadow).
 */
static void secret_neighbour(struct __test_metadata *_metadata,
			     FIXTURE_DATA(odp) *self, enum ibv_wr_opcode first)
{
	const size_t size = 2UL << 20, mid = 1UL << 20;
	size_t pg = self->pg;
	struct ws *w = &self->w;
	uint64_t *res;
	uint8_t *map, *sec;
	struct ibv_wc wc;
	void *p;
	int fd;

	OPEN_SECRET(pg);
	fd = self->fd;

	/* the working set: a 2 MiB-aligned target, its MRs */
	map = map_anon(_metadata, self, 2 * size, RW);
	w->buf = w->addr = (uint8_t *)(((uintptr_t)map + size - 1) &
				       ~(uintptr_t)(size - 1));
	w->size = w->dst_size = size;
	w->iova = (uintptr_t)w->buf;
	w->want = map_anon(_metadata, self, size, RW);
	w->src = map_anon(_metadata, self, size, RW);
	w->dst = map_anon(_metadata, self, size, RW);
	ws_reg(_metadata, self, size);
	res = (uint64_t *)(w->dst + size - pg);

	/* the secret page at +1 MiB (unmapped with the rest at teardown) */
	p = mmap(w->buf + mid, pg, RW, MAP_SHARED | MAP_FIXED, fd, 0);
	ASSERT_EQ((void *)(w->buf + mid), p) TH_LOG("mmap(memfd_secret): %s",
						    strerror(errno));
	sec = p;
	tu_fill(sec, pg, 80);
	memcpy(w->want + mid, sec, pg);

	/* the first access, at +0 */
	tu_fill(w->src, pg, 81);
	if (first == IBV_WR_RDMA_WRITE) {
		ws_write(_metadata, self, IBV_WC_SUCCESS, w->src, pg, ra(w, 0));
	} else {
		memcpy(w->buf, w->src, pg);
		memcpy(w->want, w->src, pg);
		memset(w->dst, POISON, pg);
		post_recv_b(_metadata, self, 90, w->dst, pg, w->dmr->lkey);
		ASSERT_WC(IBV_WC_SUCCESS, rdma(_metadata, self, IBV_WR_SEND,
					       w->buf, pg, w->mr->lkey, 0, 0));
		ASSERT_EQ(0, vu_poll_one(&self->v, &self->qps.b, &wc));
		ASSERT_EQ(IBV_WC_SUCCESS, wc.status);
		ASSERT_TRUE(tu_same_bytes("SEND gathered from +0", w->dst,
					  w->src, pg));
	}
	ASSERT_TRUE(ws_same("after the first access", w));

	/* remote READ, WRITE of the secret page */
	memset(w->dst, POISON, size);
	ASSERT_REFUSED(rdma(_metadata, self, IBV_WR_RDMA_READ, w->dst, 256,
			    w->dmr->lkey, ra(w, mid + 16), w->mr->rkey));
	ASSERT_TRUE(tu_all_bytes("local buffer of a READ of the secret page",
				 w->dst, POISON, size));
	tu_fill(w->src, size, 82);
	ASSERT_REFUSED(rdma(_metadata, self, IBV_WR_RDMA_WRITE, w->src, 100,
			    w->smr->lkey, ra(w, mid + 10), w->mr->rkey));
	ASSERT_TRUE(ws_same("after a WRITE of the secret page", w));

	/* a SEND into a receive buffer on the secret page */
	post_recv_b(_metadata, self, 91, sec + 64, 256, w->mr->lkey);
	ASSERT_NE(IBV_WC_SUCCESS, rdma(_metadata, self, IBV_WR_SEND, w->src,
				       256, w->smr->lkey, 0, 0));
	no_good_recv(_metadata, self, "SEND into the secret page");
	ASSERT_TRUE(ws_same("after a SEND into the secret page", w));

	/* a SEND gathered from the secret page */
	memset(w->dst, POISON, size);
	post_recv_b(_metadata, self, 92, w->dst, 256, w->dmr->lkey);
	ASSERT_WC(IBV_WC_LOC_PROT_ERR,
		  rdma(_metadata, self, IBV_WR_SEND, sec + 32, 256,
		       w->mr->lkey, 0, 0));
	no_good_recv(_metadata, self, "SEND from the secret page");
	ASSERT_TRUE(tu_all_bytes("receive buffer of a SEND from the secret page",
				 w->dst, POISON, size));

	/* atomics on the secret page */
	ASSERT_REFUSED(atomic_op(_metadata, self, FETCH_ADD, res, w->dmr->lkey,
				 ra(w, mid + 8), w->mr->rkey, 1, 0));
	ASSERT_REFUSED(atomic_op(_metadata, self, CMP_SWAP, res, w->dmr->lkey,
				 ra(w, mid + pg - 8), w->mr->rkey,
				 load64(sec + pg - 8), 0x42));
	ASSERT_TRUE(tu_all_bytes("local buffer of the atomics", w->dst,
				 POISON, size));
	ASSERT_TRUE(tu_same_bytes("the secret page after the refusals", sec,
				  w->want + mid, pg));

	/* the normal memory around it still works */
	tu_fill(w->src, size, 83);
	ws_write(_metadata, self, IBV_WC_SUCCESS, w->src, pg, ra(w, 0));
	ws_write(_metadata, self, IBV_WC_SUCCESS, w->src + pg, pg,
		 ra(w, mid - pg));
	ws_write(_metadata, self, IBV_WC_SUCCESS, w->src + 2 * pg, pg - 3,
		 ra(w, mid + pg + 3));
	memset(w->dst, POISON, size);
	ws_read_same(_metadata, self, "READ up to the secret page", w->dst,
		     2 * pg, ra(w, mid - 2 * pg));
	ws_read_same(_metadata, self, "READ from past the secret page",
		     w->dst + 2 * pg, 2 * pg, ra(w, mid + pg));
	ASSERT_TRUE(ws_same("the 2 MiB at the end", w));
}

/* The first access next to the secret page: a remote WRITE at +0. */
TEST_F_TIMEOUT(odp, secret_neighbour_after_write, 120)
{
	secret_neighbour(_metadata, self, IBV_WR_RDMA_WRITE);
}

/* The first access next to the secret page: a SEND gathered from +0. */
TEST_F_TIMEOUT(odp, secret_neighbour_after_send, 120)
{
	secret_neighbour(_metadata, self, IBV_WR_SEND);
}

/* ---- 5. many packets, MADV_DONTNEED and remap ---------------------- */

/*
 * The target @tgt of dontneed_and_remap_4mib (its pages fresh, @when):
 * a READ of all of it returns zeros, then a WRITE of all of it lands.
 */
static void zeros_then_write(struct __test_metadata *_metadata,
			     FIXTURE_DATA(odp) *self, const char *when,
			     unsigned int seed)
{
	struct ws *w = &self->w;
	size_t n = w->size;
	char what[64];

	memset(w->dst, POISON, n);
	ws_read(_metadata, self, IBV_WC_SUCCESS, w->dst, n, ra(w, 0));
	snprintf(what, sizeof(what), "4 MiB READ %s", when);
	ASSERT_TRUE(tu_all_bytes(what, w->dst, 0, n));
	tu_fill(w->src, n, seed);
	ws_write(_metadata, self, IBV_WC_SUCCESS, w->src, n, ra(w, 0));
	snprintf(what, sizeof(what), "4 MiB WRITE %s", when);
	ASSERT_TRUE(tu_same_bytes(what, w->buf, w->src, n));
}

/*
 * A 4 MiB ODP MR: a 4 MiB WRITE lands; after MADV_DONTNEED a 4 MiB READ
 * returns zeros and a new WRITE is seen by the CPU; the same after the
 * range is munmap'ed and mapped afresh (MAP_FIXED); guard pages around it
 * never change.
 */
TEST_F_TIMEOUT(odp, dontneed_and_remap_4mib, 300)
{
	size_t pg = self->pg, n = 4 << 20;
	struct ws *w = &self->w;	/* no shadow */
	uint8_t *map, *tgt;
	void *p;

	map = map_anon(_metadata, self, n + 2 * pg, RW);
	tgt = map + pg;
	w->size = w->dst_size = n;
	w->buf = w->addr = tgt;
	w->iova = (uintptr_t)tgt;
	w->src = map_anon(_metadata, self, n, RW);
	w->dst = map_anon(_metadata, self, n, RW);
	ws_reg(_metadata, self, n);
	memset(map, GUARD, n + 2 * pg);

	tu_fill(w->src, n, 40);
	ws_write(_metadata, self, IBV_WC_SUCCESS, w->src, n, ra(w, 0));
	ASSERT_TRUE(tu_same_bytes("4 MiB WRITE", tgt, w->src, n));

	/* MADV_DONTNEED: fresh zero pages, seen by the device too. */
	ASSERT_EQ(0, madvise(tgt, n, MADV_DONTNEED));
	zeros_then_write(_metadata, self, "after MADV_DONTNEED", 41);

	/* munmap + mmap(MAP_FIXED) at the same address. */
	ASSERT_EQ(0, munmap(tgt, n));
	p = mmap(tgt, n, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	ASSERT_EQ((void *)tgt, p);
	zeros_then_write(_metadata, self, "after remap", 42);
	ASSERT_TRUE(tu_all_bytes("guard page before", map, GUARD, pg));
	ASSERT_TRUE(tu_all_bytes("guard page after", tgt + n, GUARD, pg));
}

TEST_HARNESS_MAIN
