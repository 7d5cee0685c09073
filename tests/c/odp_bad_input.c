// SPDX-License-Identifier: GPL-2.0
/*
 * odp_bad_input - the ODP registrations users get wrong, and an
 * unprivileged process that registers far more than it could pin
 * (reliability.md §5.1, §8 #19 and #22; DESIGN.md invariants 4 and 5;
 * issue 12). ibv_advise_mr()'s matrix (§8 #20) is odp_advise_matrix_65:
 * rdma-core 44's rxe provider has no advise_mr.
 *
 * Registration matrix (errno of ibv_reg_mr(), what our rxe answers):
 *   length 0, page-aligned or not                      EINVAL
 *   addr + length wraps past 2^64                      EOVERFLOW
 *   length SIZE_MAX, addr not NULL                     EINVAL (libibverbs:
 *                                                      ODP + SIZE_MAX means
 *                                                      implicit, from NULL)
 *   range ending past TASK_SIZE (length > TASK_SIZE,
 *   a range across the top of user space, kernel VA)   EFAULT
 *   the last user page, [TASK_SIZE - 4K, TASK_SIZE)    registers; accesses
 *                                                      REM_ACCESS_ERR
 *   unaligned addr and length                          works, byte-exact
 *                                                      to the MR's edges
 *   iova page offset != addr page offset               EINVAL (ib_core)
 *   iova != addr, same page offset                     works: iova X is
 *                                                      addr + (X - iova)
 *   implicit with iova != 0                            EINVAL
 *   REMOTE_WRITE or REMOTE_ATOMIC without LOCAL_WRITE  EINVAL (ib_core),
 *                                                      explicit and implicit
 *   ON_DEMAND | HUGETLB over normal anonymous memory   works (our rxe
 *                                                      faults huge and small
 *                                                      pages alike)
 *   each single access bit                             see bit_errno()
 *   an unmapped range, a PROT_NONE range               registers; accesses
 *                                                      REM_ACCESS_ERR until
 *                                                      memory is mapped
 *   rereg of an ODP MR: ibv_rereg_mr()                 refused in libibverbs
 *                                                      (rxe's provider has no
 *                                                      rereg_mr: EOPNOTSUPP)
 *   rereg through the kernel command (write() on the
 *   context's fd): access or translation               EOPNOTSUPP; PD: moves
 *                                                      the MR (its old PD's QPs
 *                                                      get REM_ACCESS_ERR),
 *                                                      data intact both ways
 * After every refusal odp_mirror's live umems, entries and children are
 * what they were before (nothing leaked, nothing half-built). Dereg
 * twice is not possible through libibverbs (the ibv_mr is freed).
 *
 * What one device access makes resident (invariant 4 at its finest,
 * and the cost a remote peer can impose): an 8-byte WRITE or READ into
 * memory without transparent huge pages must fault its page, not the
 * 2 MiB around it (device_first_touch_faults_its_page_only). Found
 * here: odp_fault() widened its hmm_range to whole PMDs and marked only
 * the requested pages with HMM_PFN_REQ_FAULT, but hmm_range_fault()
 * faults a whole pmd_none hole once any page of it needs a fault, and
 * from the first such PTE to the end of the walk step otherwise: one
 * 8-byte WRITE made 2 MiB resident and recorded 512 translations, one
 * READ recorded 512 (zero-page) translations; a remote peer could make a
 * process's whole registered memory resident 2 MiB per packet. Fixed in
 * the same change (odp_fault_request(): the request is faulted alone,
 * the window only looked at). The control (a PMD with a page table, the
 * request in its last page) passed before too.

 * Unprivileged DoS (§8 #22): a child drops to nobody (uid/gid 65534; the
 * uverbs node is made world read-writable for the case if it is not, and
 * restored), sets RLIMIT_MEMLOCK to 64 KiB (a pinned MR of 1 MiB must
 * then fail with ENOMEM: the limit holds), and registers 1000 explicit
 * ODP MRs of 1 GiB each over a 1000 GiB MAP_NORESERVE reservation (ODP
 * pins nothing, so the limit does not apply), plus an implicit MR; it
 * faults a page of every MR and 16 pages through the implicit MR with
 * 8-byte RDMA WRITEs (with the bug above each cost 2 MiB, and 2000 of
 * them drove the 4 GiB guest into the OOM killer). While it holds
 * all of that, the parent (root) measures: odp_mirror's translation
 * entries grew by at most two per page resident in the reservation (an
 * explicit and the implicit MR's), and the kernel's Slab + VmallocUsed by
 * at most 8 KiB per MR and 64 bytes per resident page, plus 8 MiB (a
 * table proportional to the 1000 GiB registered would be 2 GiB at 8
 * bytes a page). After the child exits, the live counts return to what
 * they were.
 *
 * Device: RXE_ODP_DEV (default rxe0), RXE_ODP_GID_IDX (default 1); skips
 * without RC ODP support (a failure with our rxe).
 *
 * Mutation record (test-side breaks, built outside the tree and run in
 * the guest; each made the case named fail, then was reverted):
 *  - the access-bit table expects EINVAL for bit 9 (FLUSH_PERSISTENT):
 *    access_bits_one_by_one, "Operation not supported (95), want Invalid
 *    argument".
 *  - the child keeps the guest's RLIMIT_MEMLOCK (8 MiB): the 1 MiB
 *    pinned MR registers, unprivileged_odp_mrs_bounded fails (ENOMEM
 *    expected, 0 seen): the control of the limit works.
 *  - a WRITE through the old PD's QP after the PD rereg expected to
 *    succeed: rereg_odp_mr, "remote access error (10), want success".
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <rdma/ib_user_verbs.h>

#include "kselftest_harness.h"
#include "verbs_util.h"
#include "test_util.h"

#define RW		(PROT_READ | PROT_WRITE)
#define ACC_ALL		(IBV_ACCESS_ON_DEMAND | IBV_ACCESS_LOCAL_WRITE | \
			 IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ | \
			 IBV_ACCESS_REMOTE_ATOMIC)
#define NPAGES		8
#define GIB		(1UL << 30)

/* ---- live counts ------------------------------------------------------ */

struct live {
	long	umems, entries, children;
};

static struct live live_now(void)
{
	return (struct live){
		.umems = tu_live_count("umems"),
		.entries = tu_live_count("entries"),
		.children = tu_live_count("children"),
	};
}

/* odp_mirror holds what it held at @b. */
#define EXPECT_LIVE(b, what) do {					\
	struct live __n = live_now();					\
									\
	EXPECT_EQ((b).umems, __n.umems) TH_LOG("%s: live umems", what);	\
	EXPECT_EQ((b).entries, __n.entries)				\
		TH_LOG("%s: live entries", what);			\
	EXPECT_EQ((b).children, __n.children)				\
		TH_LOG("%s: live children", what);			\
} while (0)

/* ---- the registration fixture --------------------------------------- */

FIXTURE(reg) {
	struct vu_config	cfg;
	struct vu_ctx		v;
	struct vu_qp_pair	qps;
	bool			qps_failed;
	size_t			pg;
	uint8_t			*buf;	/* NPAGES, GUARD-filled */
	uint8_t			*local;	/* 2 * NPAGES, pinned: src, then dst */
	struct ibv_mr		*lmr;
	struct ibv_mr		*mr;	/* the case's MR, dereg at teardown */
	struct ibv_pd		*pd2;
	struct live		base;
};

FIXTURE_SETUP(reg)
{
	struct ibv_device_attr_ex ax;

	self->pg = (size_t)sysconf(_SC_PAGESIZE);
	TU_OPEN_QUERY(&self->cfg, &self->v, &ax);
	TU_REQUIRE_CAP((ax.odp_caps.general_caps & IBV_ODP_SUPPORT) &&
		       (ax.odp_caps.general_caps & IBV_ODP_SUPPORT_IMPLICIT) &&
		       (ax.odp_caps.per_transport_caps.rc_odp_caps &
			IBV_ODP_SUPPORT_WRITE),
		       "%s has no explicit and implicit RC ODP",
		       self->cfg.dev_name);
	ASSERT_EQ(0, vu_qp_pair_create(&self->v, &self->qps));
	self->buf = mmap(NULL, NPAGES * self->pg, RW,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	self->local = mmap(NULL, 2 * NPAGES * self->pg, RW,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->buf);
	ASSERT_NE(MAP_FAILED, self->local);
	memset(self->buf, TU_GUARD, NPAGES * self->pg);
	self->lmr = vu_reg_mr(&self->v, self->local, 2 * NPAGES * self->pg,
			      IBV_ACCESS_LOCAL_WRITE);
	ASSERT_NE(NULL, self->lmr);
	self->base = live_now();
}

FIXTURE_TEARDOWN(reg)
{
	EXPECT_EQ(0, vu_qp_pair_destroy(&self->v, &self->qps));
	EXPECT_EQ(0, vu_dereg_mr(&self->v, self->mr));
	EXPECT_EQ(0, vu_dereg_mr(&self->v, self->lmr));
	if (self->pd2)
		EXPECT_EQ(0, ibv_dealloc_pd(self->pd2));
	munmap(self->buf, NPAGES * self->pg);
	munmap(self->local, 2 * NPAGES * self->pg);
	EXPECT_EQ(0, vu_close(&self->v));
	/* everything the case registered is gone again */
	EXPECT_LIVE(self->base, "after teardown");
}

/*
 * ibv_reg_mr_iova(@addr, @len, @iova, @access) must fail with @err, and
 * odp_mirror must hold what it held before.
 */
static void refused(struct __test_metadata *_metadata,
		    FIXTURE_DATA(reg) *self, int err, void *addr, size_t len,
		    uint64_t iova, unsigned int access)
{
	struct live b = live_now();
	struct ibv_mr *mr;
	int got;
	char what[160];

	snprintf(what, sizeof(what),
		 "ibv_reg_mr_iova(%p, 0x%zx, iova 0x%" PRIx64 ", access 0x%x)",
		 addr, len, iova, access);
	errno = 0;
	mr = ibv_reg_mr_iova(self->v.pd, addr, len, iova, access);
	got = errno;
	if (mr)
		ibv_dereg_mr(mr);
	EXPECT_EQ(NULL, mr) TH_LOG("%s registered, want %s", what,
				   strerror(err));
	if (!mr)
		EXPECT_EQ(err, got) TH_LOG("%s: %s (%d), want %s", what,
					   strerror(got), got, strerror(err));
	EXPECT_LIVE(b, what);
}

/* The same with iova = addr. */
static void refused_at(struct __test_metadata *_metadata,
		       FIXTURE_DATA(reg) *self, int err, void *addr,
		       size_t len, unsigned int access)
{
	refused(_metadata, self, err, addr, len, (uintptr_t)addr, access);
}

/* Register the case's MR (self->mr); it must succeed. */
static struct ibv_mr *reg_ok(struct __test_metadata *_metadata,
			     FIXTURE_DATA(reg) *self, void *addr, size_t len,
			     uint64_t iova, unsigned int access)
{
	struct ibv_mr *mr = ibv_reg_mr_iova(self->v.pd, addr, len, iova,
					    access);

	ASSERT_NE(NULL, mr) TH_LOG("ibv_reg_mr_iova(%p, 0x%zx, iova 0x%" PRIx64 ", access 0x%x): %s",
				   addr, len, iova, access, strerror(errno));
	self->mr = mr;
	return mr;
}

/* Where READs land: the second half of the local buffer. */
#define DST(self)	((self)->local + NPAGES * (self)->pg)

/*
 * One WRITE (from the local buffer) or READ (into DST()) of @len bytes at
 * @raddr of the case's MR; returns its completion status. A failed
 * completion leaves the pair in the error state: the next call renews it.
 */
static int xfer(struct __test_metadata *_metadata, FIXTURE_DATA(reg) *self,
		enum ibv_wr_opcode op, uint32_t len, uint64_t raddr)
{
	uint8_t *l = op == IBV_WR_RDMA_READ ? DST(self) : self->local;
	int st;

	if (self->qps_failed) {
		EXPECT_EQ(0, vu_qp_pair_destroy(&self->v, &self->qps));
		EXPECT_EQ(0, vu_qp_pair_create(&self->v, &self->qps));
		self->qps_failed = false;
	}
	st = tu_xfer(&self->v, &self->qps.a, op, l, len, self->lmr->lkey,
		     raddr, self->mr->rkey);
	self->qps_failed = st != IBV_WC_SUCCESS;
	return st;
}

#define ASSERT_XFER(want, op, len, raddr)				\
	TU_ASSERT_WC(want, xfer(_metadata, self, op, len, raddr))

/* ---- 1. lengths and ranges ------------------------------------------- */

/* Length 0: EINVAL, whether or not the address is page-aligned. */
TEST_F(reg, length_zero)
{
	refused_at(_metadata, self, EINVAL, self->buf, 0, ACC_ALL);
	refused_at(_metadata, self, EINVAL, self->buf + 123, 0, ACC_ALL);
	refused_at(_metadata, self, EINVAL, self->buf, 0,
		   IBV_ACCESS_ON_DEMAND);
}

/*
 * addr + length past 2^64: EOVERFLOW, nothing allocated. Length SIZE_MAX
 * with a non-NULL address never reaches the kernel: libibverbs takes
 * SIZE_MAX with IBV_ACCESS_ON_DEMAND for an implicit MR, which must start
 * at NULL, and answers EINVAL.
 */
TEST_F(reg, range_wraps)
{
	uint8_t *top = (uint8_t *)(uintptr_t)(UINT64_MAX - self->pg + 1);
	size_t past = SIZE_MAX - (uintptr_t)self->buf + 2;

	refused_at(_metadata, self, EOVERFLOW, top, 2 * self->pg, ACC_ALL);
	refused_at(_metadata, self, EOVERFLOW, self->buf, past, ACC_ALL);
	refused_at(_metadata, self, EOVERFLOW, self->buf + 1, SIZE_MAX - 1,
		   ACC_ALL);
	refused_at(_metadata, self, EINVAL, self->buf + 1, SIZE_MAX, ACC_ALL);
}

/*
 * The end of user space (TASK_SIZE): 2^47 - 4 KiB with 4-level page
 * tables, 2^56 - 4 KiB with 5-level ones (told by whether a mapping above
 * 2^47 can be made).
 */
static uint64_t task_size(size_t pg)
{
	void *hint = (void *)(1UL << 48);
	void *p = mmap(hint, pg, RW, MAP_PRIVATE | MAP_ANONYMOUS |
		       MAP_FIXED_NOREPLACE, -1, 0);

	if (p == MAP_FAILED)
		return (1UL << 47) - pg;
	munmap(p, pg);
	return (1UL << 56) - pg;
}

/*
 * A range that ends past TASK_SIZE: EFAULT. The last user page itself
 * registers (unmapped: its accesses fail with a remote access error).
 */
TEST_F(reg, past_task_size)
{
	uint64_t ts = task_size(self->pg);
	uint8_t *last = (uint8_t *)(uintptr_t)(ts - self->pg);

	ksft_print_msg("TASK_SIZE 0x%" PRIx64 "\n", ts);
	refused_at(_metadata, self, EFAULT, self->buf, ts, ACC_ALL);
	refused_at(_metadata, self, EFAULT, last, 2 * self->pg, ACC_ALL);
	refused_at(_metadata, self, EFAULT, (void *)0xffff888000000000UL,
		   self->pg, ACC_ALL);
	refused_at(_metadata, self, EFAULT, (void *)(uintptr_t)ts, 1,
		   ACC_ALL);

	reg_ok(_metadata, self, last, self->pg, (uintptr_t)last, ACC_ALL);
	ASSERT_XFER(IBV_WC_REM_ACCESS_ERR, IBV_WR_RDMA_WRITE, 8,
		    (uintptr_t)last);
	ASSERT_XFER(IBV_WC_REM_ACCESS_ERR, IBV_WR_RDMA_READ, 8,
		    (uintptr_t)last);
}

/*
 * An ODP MR needs no alignment: [buf + 123, +2 pages + 77) takes a WRITE
 * of all of it and a READ brings it back; no byte around it changes, and
 * one byte more on either side is a remote access error.
 */
TEST_F(reg, unaligned_addr_and_length)
{
	const size_t at = 123, len = 2 * self->pg + 77;
	uint8_t *a = self->buf + at;
	uint64_t ra = (uintptr_t)a;

	reg_ok(_metadata, self, a, len, ra, ACC_ALL);
	tu_fill(self->local, len, 1);
	ASSERT_XFER(IBV_WC_SUCCESS, IBV_WR_RDMA_WRITE, len, ra);
	ASSERT_TRUE(tu_pattern_bytes("the MR after the WRITE", a, 1, len));
	ASSERT_TRUE(tu_all_bytes("before the MR", self->buf, TU_GUARD, at));
	ASSERT_TRUE(tu_all_bytes("after the MR", a + len, TU_GUARD,
				 NPAGES * self->pg - at - len));
	ASSERT_XFER(IBV_WC_SUCCESS, IBV_WR_RDMA_READ, len, ra);
	ASSERT_TRUE(tu_pattern_bytes("READ of the MR", DST(self), 1, len));

	tu_fill(self->local, len + 1, 2);
	ASSERT_XFER(IBV_WC_REM_ACCESS_ERR, IBV_WR_RDMA_WRITE, len + 1, ra);
	ASSERT_XFER(IBV_WC_REM_ACCESS_ERR, IBV_WR_RDMA_WRITE, 8, ra - 1);
	ASSERT_XFER(IBV_WC_REM_ACCESS_ERR, IBV_WR_RDMA_READ, 1, ra + len);
	ASSERT_TRUE(tu_pattern_bytes("the MR after refusals", a, 1, len));
	ASSERT_TRUE(tu_all_bytes("before the MR after refusals", self->buf,
				 TU_GUARD, at));
	ASSERT_TRUE(tu_all_bytes("after the MR after refusals", a + len,
				 TU_GUARD, NPAGES * self->pg - at - len));
}

/* ---- 2. iova ------------------------------------------------------- */

/*
 * iova with another page offset than addr: EINVAL. With the same page
 * offset the MR works at its iova: a WRITE at iova + k lands at addr + k.
 * An implicit MR's iova must be 0.
 */
TEST_F(reg, iova_rules)
{
	const size_t at = 0x128, k = 5000;
	uint8_t *a = self->buf + at;
	uint64_t iova = 0x10000000 + at;

	refused(_metadata, self, EINVAL, a, 2 * self->pg, iova + 8, ACC_ALL);
	refused(_metadata, self, EINVAL, a, 2 * self->pg, 0, ACC_ALL);
	refused(_metadata, self, EINVAL, NULL, SIZE_MAX, 1UL << 20, ACC_ALL);
	refused(_metadata, self, EINVAL, NULL, SIZE_MAX, self->pg, ACC_ALL);

	reg_ok(_metadata, self, a, 2 * self->pg, iova, ACC_ALL);
	tu_fill(self->local, 64, 3);
	ASSERT_XFER(IBV_WC_SUCCESS, IBV_WR_RDMA_WRITE, 64, iova + k);
	ASSERT_TRUE(tu_pattern_bytes("WRITE at iova + k", a + k, 3, 64));
	ASSERT_TRUE(tu_all_bytes("before iova + k", self->buf, TU_GUARD,
				 at + k));
	ASSERT_XFER(IBV_WC_SUCCESS, IBV_WR_RDMA_READ, 64, iova + k);
	ASSERT_TRUE(tu_pattern_bytes("READ at iova + k", DST(self), 3, 64));
	/* the user address is no iova of this MR */
	ASSERT_XFER(IBV_WC_REM_ACCESS_ERR, IBV_WR_RDMA_WRITE, 8,
		    (uintptr_t)a);
	ASSERT_TRUE(tu_all_bytes("after the WRITE at iova + k", a + k + 64,
				 TU_GUARD, NPAGES * self->pg - at - k - 64));
}

/* ---- 3. access flags ------------------------------------------------ */

/* Remote write or atomic access needs local write (IB spec): EINVAL. */
TEST_F(reg, remote_write_without_local_write)
{
	static const unsigned int bad[] = {
		IBV_ACCESS_REMOTE_WRITE,
		IBV_ACCESS_REMOTE_ATOMIC,
		IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ,
		IBV_ACCESS_REMOTE_ATOMIC | IBV_ACCESS_REMOTE_READ,
	};
	unsigned int i, acc;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		acc = bad[i] | IBV_ACCESS_ON_DEMAND;
		refused_at(_metadata, self, EINVAL, self->buf,
			   NPAGES * self->pg, acc);
		refused(_metadata, self, EINVAL, NULL, SIZE_MAX, 0, acc);
	}
}

/*
 * IBV_ACCESS_HUGETLB with ON_DEMAND over normal anonymous memory: our
 * rxe takes it (huge and small pages are faulted alike) and the MR works.
 */
TEST_F(reg, hugetlb_flag_on_normal_memory)
{
	uint64_t ra = (uintptr_t)self->buf;

	reg_ok(_metadata, self, self->buf, NPAGES * self->pg, ra,
	       ACC_ALL | IBV_ACCESS_HUGETLB);
	tu_fill(self->local, 3 * self->pg, 4);
	ASSERT_XFER(IBV_WC_SUCCESS, IBV_WR_RDMA_WRITE, 3 * self->pg,
		    ra + 100);
	ASSERT_TRUE(tu_pattern_bytes("WRITE", self->buf + 100, 4,
				     3 * self->pg));
	ASSERT_XFER(IBV_WC_SUCCESS, IBV_WR_RDMA_READ, 3 * self->pg, ra + 100);
	ASSERT_TRUE(tu_pattern_bytes("READ", DST(self), 4,
				     3 * self->pg));
	ASSERT_TRUE(tu_all_bytes("around the WRITE", self->buf, TU_GUARD,
				 100));
}

/*
 * Each single access bit beside ON_DEMAND | LOCAL_WRITE: what
 * ibv_reg_mr() answers (0: registers).
 *   bits 0-4 (the remote rights, MW_BIND), 7 (HUGETLB), 8 (FLUSH_GLOBAL),
 *   20-29 (the optional range, e.g. RELAXED_ORDERING)   0
 *   5 (ZERO_BASED)                                      EOPNOTSUPP (rxe)
 *   9 (FLUSH_PERSISTENT: rxe ODP has no persistence)    EOPNOTSUPP
 *   10-19, 30, 31 (no such flag)                        EINVAL (ib_core)
 */
static int bit_errno(unsigned int bit)
{
	if (bit <= 4 || bit == 6 || bit == 7 || bit == 8 ||
	    (bit >= 20 && bit <= 29))
		return 0;
	if (bit == 5 || bit == 9)
		return EOPNOTSUPP;
	return EINVAL;
}

TEST_F(reg, access_bits_one_by_one)
{
	unsigned int bit, acc;
	struct ibv_mr *mr;
	int want, got;

	for (bit = 0; bit < 32; bit++) {
		acc = IBV_ACCESS_ON_DEMAND | IBV_ACCESS_LOCAL_WRITE |
		      (1u << bit);
		want = bit_errno(bit);
		if (want) {
			refused_at(_metadata, self, want, self->buf,
				   NPAGES * self->pg, acc);
			continue;
		}
		errno = 0;
		mr = ibv_reg_mr(self->v.pd, self->buf, NPAGES * self->pg, acc);
		got = mr ? 0 : errno;
		EXPECT_EQ(0, got) TH_LOG("access bit %u (0x%x): %s", bit, acc,
					 strerror(got));
		if (mr)
			EXPECT_EQ(0, ibv_dereg_mr(mr));
	}
	EXPECT_LIVE(self->base, "after the access bits");
}

/* ---- 4. memory that is not there --------------------------------- */

/*
 * ODP defers errors: an MR over a range with nothing mapped registers;
 * each access is a remote access error until memory is mapped there,
 * then it works.
 */
TEST_F(reg, unmapped_range)
{
	size_t n = 4 * self->pg;
	uint8_t *hole = mmap(NULL, n, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t ra = (uintptr_t)hole;
	void *p;

	ASSERT_NE(MAP_FAILED, hole);
	ASSERT_EQ(0, munmap(hole, n));
	reg_ok(_metadata, self, hole, n, ra, ACC_ALL);
	tu_fill(self->local, n, 5);
	memset(DST(self), TU_POISON, n);
	ASSERT_XFER(IBV_WC_REM_ACCESS_ERR, IBV_WR_RDMA_WRITE, n, ra);
	ASSERT_XFER(IBV_WC_REM_ACCESS_ERR, IBV_WR_RDMA_READ, 8, ra + n - 8);
	ASSERT_TRUE(tu_all_bytes("local buffer of a refused READ",
				 DST(self), TU_POISON, n));

	p = mmap(hole, n, RW, MAP_PRIVATE | MAP_ANONYMOUS |
		 MAP_FIXED_NOREPLACE, -1, 0);
	ASSERT_EQ((void *)hole, p) TH_LOG("remap: %s", strerror(errno));
	ASSERT_XFER(IBV_WC_SUCCESS, IBV_WR_RDMA_WRITE, n, ra);
	ASSERT_TRUE(tu_pattern_bytes("WRITE after the mapping came", hole,
				     5, n));
	EXPECT_EQ(0, munmap(hole, n));
}

/*
 * A range that is PROT_NONE when it is registered: registers; every
 * access is a remote access error and changes nothing; after
 * mprotect(RW) the same accesses work.
 */
TEST_F(reg, prot_none_range)
{
	size_t n = 4 * self->pg;
	uint64_t ra = (uintptr_t)self->buf;

	ASSERT_EQ(0, mprotect(self->buf, n, PROT_NONE));
	reg_ok(_metadata, self, self->buf, n, ra, ACC_ALL);
	tu_fill(self->local, n, 6);
	ASSERT_XFER(IBV_WC_REM_ACCESS_ERR, IBV_WR_RDMA_WRITE, 64, ra + 8);
	ASSERT_XFER(IBV_WC_REM_ACCESS_ERR, IBV_WR_RDMA_READ, 64, ra + 8);
	ASSERT_EQ(0, mprotect(self->buf, n, RW));
	ASSERT_TRUE(tu_all_bytes("PROT_NONE range after refusals", self->buf,
				 TU_GUARD, n));
	ASSERT_XFER(IBV_WC_SUCCESS, IBV_WR_RDMA_WRITE, n, ra);
	ASSERT_TRUE(tu_pattern_bytes("after mprotect(RW)", self->buf, 6, n));
}

/* ---- 5. rereg ---------------------------------------------------------- */

/*
 * The kernel's REREG_MR command for @mr, written on the context's fd as
 * libibverbs' ibv_cmd_rereg_mr() would (rxe's provider never sends it).
 * Returns 0 or the errno.
 */
static int kernel_rereg(struct ibv_mr *mr, uint32_t flags, struct ibv_pd *pd,
			void *addr, size_t len, uint32_t access)
{
	struct {
		struct ib_uverbs_cmd_hdr	hdr;
		struct ib_uverbs_rereg_mr	cmd;
	} req;
	struct ib_uverbs_rereg_mr_resp resp;

	memset(&req, 0, sizeof(req));
	req.hdr.command = IB_USER_VERBS_CMD_REREG_MR;
	req.hdr.in_words = sizeof(req) / 4;
	req.hdr.out_words = sizeof(resp) / 4;
	req.cmd.response = (uintptr_t)&resp;
	req.cmd.mr_handle = mr->handle;
	req.cmd.flags = flags;
	req.cmd.start = (uintptr_t)addr;
	req.cmd.length = len;
	req.cmd.hca_va = (uintptr_t)addr;
	req.cmd.pd_handle = pd->handle;
	req.cmd.access_flags = access;
	if (write(mr->context->cmd_fd, &req, sizeof(req)) ==
	    (ssize_t)sizeof(req))
		return 0;
	return errno;
}

/*
 * rereg of an ODP MR. libibverbs refuses it on rxe (no provider op).
 * Sent to the kernel anyway: a change of access or translation is
 * EOPNOTSUPP (an ODP umem's write access and range are fixed); a change
 * of PD moves the MR: the old PD's QPs get a remote access error and
 * change nothing, and back in its PD the MR works with its data intact.
 */
TEST_F(reg, rereg_odp_mr)
{
	size_t n = NPAGES * self->pg;
	uint64_t ra = (uintptr_t)self->buf;
	struct ibv_mr *mr = reg_ok(_metadata, self, self->buf, n, ra,
				   ACC_ALL);
	struct live b;
	int ret;

	tu_fill(self->local, n, 7);
	ASSERT_XFER(IBV_WC_SUCCESS, IBV_WR_RDMA_WRITE, n, ra);
	b = live_now();

	errno = 0;
	ret = ibv_rereg_mr(mr, IBV_REREG_MR_CHANGE_ACCESS, NULL, NULL, 0,
			   IBV_ACCESS_ON_DEMAND | IBV_ACCESS_LOCAL_WRITE);
	EXPECT_NE(0, ret);
	EXPECT_EQ(EOPNOTSUPP, errno) TH_LOG("ibv_rereg_mr: %s",
					    strerror(errno));

	EXPECT_EQ(EOPNOTSUPP, kernel_rereg(mr, IBV_REREG_MR_CHANGE_ACCESS,
					   self->v.pd, NULL, 0,
					   IBV_ACCESS_ON_DEMAND |
					   IBV_ACCESS_LOCAL_WRITE));
	EXPECT_EQ(EOPNOTSUPP, kernel_rereg(mr, IBV_REREG_MR_CHANGE_ACCESS,
					   self->v.pd, NULL, 0, ACC_ALL));
	EXPECT_EQ(EOPNOTSUPP, kernel_rereg(mr, IBV_REREG_MR_CHANGE_TRANSLATION, self->v.pd,
					   self->local, n, 0));
	EXPECT_LIVE(b, "after the refused rereg commands");

	/* still the same MR, same data */
	ASSERT_XFER(IBV_WC_SUCCESS, IBV_WR_RDMA_READ, n, ra);
	ASSERT_TRUE(tu_pattern_bytes("READ after refused rereg",
				     DST(self), 7, n));

	/* another PD: the MR is out of reach of this PD's QPs */
	self->pd2 = ibv_alloc_pd(self->v.ctx);
	ASSERT_NE(NULL, self->pd2);
	ASSERT_EQ(0, kernel_rereg(mr, IBV_REREG_MR_CHANGE_PD, self->pd2, NULL, 0, 0));
	tu_fill(self->local, n, 8);
	ASSERT_XFER(IBV_WC_REM_ACCESS_ERR, IBV_WR_RDMA_WRITE, n, ra);
	ASSERT_XFER(IBV_WC_REM_ACCESS_ERR, IBV_WR_RDMA_READ, 8, ra);
	ASSERT_TRUE(tu_pattern_bytes("the MR while in the other PD",
				     self->buf, 7, n));

	/* and back */
	ASSERT_EQ(0, kernel_rereg(mr, IBV_REREG_MR_CHANGE_PD, self->v.pd, NULL, 0, 0));
	ASSERT_XFER(IBV_WC_SUCCESS, IBV_WR_RDMA_READ, n, ra);
	ASSERT_TRUE(tu_pattern_bytes("READ back in its PD",
				     DST(self), 7, n));
	ASSERT_XFER(IBV_WC_SUCCESS, IBV_WR_RDMA_WRITE, n, ra);
	ASSERT_TRUE(tu_pattern_bytes("WRITE back in its PD", self->buf, 8,
				     n));
}

/* ---- 6. what one device access makes resident --------------------- */

/*
 * The Rss and translations that one 8-byte access at @off of the MR over
 * @m adds; it must succeed.
 */
static void one_access(struct __test_metadata *_metadata,
		       FIXTURE_DATA(reg) *self, enum ibv_wr_opcode op,
		       uint8_t *m, size_t off, long *rss_kb, long *entries)
{
	long e0 = tu_live_count("entries"), rss0 = tu_smaps_kb(m, "Rss");

	ASSERT_XFER(IBV_WC_SUCCESS, op, 8, (uintptr_t)m + off);
	if (op == IBV_WR_RDMA_WRITE) {
		ASSERT_TRUE(tu_pattern_bytes("WRITE", m + off, 9, 8));
	} else {
		ASSERT_TRUE(tu_all_bytes("READ of untouched memory",
					 DST(self), 0, 8));
	}
	*rss_kb = tu_smaps_kb(m, "Rss") - rss0;
	*entries = tu_live_count("entries") - e0;
	ksft_print_msg("%s of 8 bytes at +0x%zx: Rss +%ld kB, entries +%ld\n",
		       op == IBV_WR_RDMA_WRITE ? "WRITE" : "READ", off,
		       *rss_kb, *entries);
}

/*
 * A device access faults the pages it touches, as a CPU access would,
 * not the rest of the 2 MiB around them. Over 8 MiB of MAP_NORESERVE
 * memory without transparent huge pages (2 MiB-aligned, an ODP MR on it),
 * one 8-byte access at a time:
 *  - control: the CPU writes a byte 3 pages before the end of the first
 *    2 MiB block; a WRITE into the block's last page then makes that one
 *    page resident, and the snapshot records at most the two present;
 *  - a WRITE into the first page of the second block (nothing there yet,
 *    not even a page table), one into the middle of the third, a READ of
 *    the first page of the fourth: each must make at most its page
 *    resident (a READ maps the zero page: nothing) and record one
 *    translation.
 */
TEST_F(reg, device_first_touch_faults_its_page_only)
{
	const size_t n = 8UL << 20, mib2 = 2UL << 20;
	long rss, entries;
	uint8_t *map, *m;

	map = mmap(NULL, n + mib2, RW,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	ASSERT_NE(MAP_FAILED, map);
	ASSERT_EQ(0, madvise(map, n + mib2, MADV_NOHUGEPAGE));
	m = (uint8_t *)(((uintptr_t)map + mib2 - 1) & ~(uintptr_t)(mib2 - 1));
	reg_ok(_metadata, self, m, n, (uintptr_t)m, ACC_ALL);
	tu_fill(self->local, 8, 9);

	m[mib2 - 3 * self->pg] = 1;
	one_access(_metadata, self, IBV_WR_RDMA_WRITE, m, mib2 - 8, &rss,
		   &entries);
	ASSERT_EQ(4, rss);
	ASSERT_GE(2, entries);

	one_access(_metadata, self, IBV_WR_RDMA_WRITE, m, mib2 + 100, &rss,
		   &entries);
	EXPECT_EQ(4, rss) TH_LOG("one 8-byte WRITE made %ld kB resident",
				 rss);
	EXPECT_EQ(1, entries);
	one_access(_metadata, self, IBV_WR_RDMA_WRITE, m, 2 * mib2 + mib2 / 2,
		   &rss, &entries);
	EXPECT_EQ(4, rss) TH_LOG("one 8-byte WRITE made %ld kB resident",
				 rss);
	EXPECT_EQ(1, entries);
	one_access(_metadata, self, IBV_WR_RDMA_READ, m, 3 * mib2 + 8, &rss,
		   &entries);
	EXPECT_EQ(0, rss);
	EXPECT_EQ(1, entries) TH_LOG("one 8-byte READ recorded %ld translations",
				     entries);
	EXPECT_EQ(4, tu_mr_counter(self->mr->rkey, "page_faults"));
	EXPECT_EQ(0, vu_dereg_mr(&self->v, self->mr));
	self->mr = NULL;
	EXPECT_EQ(0, munmap(map, n + mib2));
}

/* ---- 7. an unprivileged process against kernel memory ------------- */

#define DOS_MRS		1000
#define DOS_STRIDE	1	/* a page faulted in every MR */
#define DOS_IMPLICIT	16	/* pages faulted through the implicit MR */
#define DOS_WRITES	(DOS_MRS / DOS_STRIDE + DOS_IMPLICIT)
#define DOS_MEMLOCK	(64UL << 10)
#define NOBODY		65534
#define DOS_WAIT_MS	tu_ms(300000)

/* What the unprivileged child tells the parent. */
struct dos_report {
	char	fail[160];	/* empty: no setup failure */
	int	pinned_errno;	/* of a 1 MiB pinned MR (0: it registered) */
	int	mrs;		/* 1 GiB ODP MRs registered */
	int	mr_errno;	/* why the next one failed (0: none did) */
	int	implicit;	/* the implicit MR registered */
	int	writes_ok;	/* WRITEs that completed and landed */
	int	first_bad;	/* status of the first that did not (-1) */
	long	rss_kb;		/* of the reservation, with all of it held */
};

/* The kB of the /proc/meminfo line @key ("Slab"); -1 if none. */
static long meminfo_kb(const char *key)
{
	char line[128], k[64];
	long v, found = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return -1;
	while (found < 0 && fgets(line, sizeof(line), f))
		if (sscanf(line, "%63[^:]: %ld", k, &v) == 2 &&
		    !strcmp(k, key))
			found = v;
	fclose(f);
	return found;
}

static long kernel_kb(void)
{
	return meminfo_kb("Slab") + meminfo_kb("VmallocUsed");
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One 8-byte WRITE of @tag to @dst through @rkey; count it in @r. */
static void dos_write(struct vu_ctx *v, struct vu_qp_pair *qps,
		      uint64_t *src, uint32_t lkey, uint64_t *dst,
		      uint32_t rkey, uint64_t tag, struct dos_report *r)
{
	int st;

	*src = tag;
	st = tu_xfer(v, &qps->a, IBV_WR_RDMA_WRITE, src, 8, lkey,
		     (uintptr_t)dst, rkey);
	if (st == IBV_WC_SUCCESS && *dst == tag)
		r->writes_ok++;
	else if (r->first_bad < 0)
		r->first_bad = st;
}

/*
 * The unprivileged child: drop to nobody with a small RLIMIT_MEMLOCK,
 * register and fault as the header says, report on @out, then wait for
 * the parent's word on @in (bounded) and exit with everything registered.
 */
static void __attribute__((noreturn)) dos_child(int in, int out)
{
	static struct ibv_mr *mrs[DOS_MRS];
	const struct rlimit lim = { DOS_MEMLOCK, DOS_MEMLOCK };
	struct dos_report r = { .first_bad = -1 };
	struct vu_qp_pair qps = { 0 };
	struct vu_config cfg;
	struct vu_ctx v;
	struct ibv_mr *pinned, *lmr, *imr;
	struct pollfd pfd = { .fd = in, .events = POLLIN };
	uint8_t *res, *small;
	uint64_t *src;
	int i;
	char c;

	if (setrlimit(RLIMIT_MEMLOCK, &lim) || setgroups(0, NULL) ||
	    setgid(NOBODY) || setuid(NOBODY) || getuid() != NOBODY ||
	    geteuid() != NOBODY) {
		snprintf(r.fail, sizeof(r.fail), "cannot become nobody: %s",
			 strerror(errno));
		goto out;
	}
	if (tu_open(&cfg, &v) || vu_qp_pair_create(&v, &qps)) {
		snprintf(r.fail, sizeof(r.fail),
			 "nobody cannot open %s or create QPs", cfg.dev_name);
		goto out;
	}
	small = mmap(NULL, 1UL << 20, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	src = mmap(NULL, 4096, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	res = mmap(NULL, DOS_MRS * GIB, RW,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (small == MAP_FAILED || src == MAP_FAILED || res == MAP_FAILED ||
	    madvise(res, DOS_MRS * GIB, MADV_NOHUGEPAGE)) {
		snprintf(r.fail, sizeof(r.fail), "mmap: %s", strerror(errno));
		goto out;
	}
	/* the limit holds for memory that is pinned */
	errno = 0;
	pinned = ibv_reg_mr(v.pd, small, 1UL << 20, IBV_ACCESS_LOCAL_WRITE);
	r.pinned_errno = pinned ? 0 : errno;
	lmr = ibv_reg_mr(v.pd, src, 4096,
			 IBV_ACCESS_ON_DEMAND | IBV_ACCESS_LOCAL_WRITE);
	if (!lmr) {
		snprintf(r.fail, sizeof(r.fail), "local ODP MR: %s",
			 strerror(errno));
		goto out;
	}
	for (i = 0; i < DOS_MRS; i++) {
		mrs[i] = ibv_reg_mr(v.pd, res + i * GIB, GIB, ACC_ALL);
		if (!mrs[i]) {
			r.mr_errno = errno;
			break;
		}
		r.mrs++;
	}
	imr = ibv_reg_mr(v.pd, NULL, SIZE_MAX, ACC_ALL);
	r.implicit = imr != NULL;

	/* a page of every DOS_STRIDE-th MR, then some through the implicit one */
	for (i = 0; i < r.mrs; i += DOS_STRIDE)
		dos_write(&v, &qps, src, lmr->lkey,
			  (uint64_t *)(res + i * GIB + GIB / 2), mrs[i]->rkey,
			  (uint64_t)i << 8 | 1, &r);
	for (i = 0; imr && i < DOS_IMPLICIT; i++)
		dos_write(&v, &qps, src, lmr->lkey,
			  (uint64_t *)(res + (61 * i + 1) * GIB + 4096),
			  imr->rkey, 0xabc000 + i, &r);
	r.rss_kb = tu_smaps_kb(res, "Rss");
out:
	if (write(out, &r, sizeof(r)) != sizeof(r))
		_exit(3);
	/* hold everything until the parent has measured */
	if (poll(&pfd, 1, DOS_WAIT_MS) != 1 || read(in, &c, 1) != 1)
		_exit(4);
	_exit(0);
}

/* The uverbs node of device @dev ("/dev/infiniband/uverbsN"), or "". */
static void uverbs_node(const char *dev, char *path, size_t size)
{
	char p[96], name[64];
	FILE *f;
	int n;

	path[0] = 0;
	for (n = 0; n < 16 && !path[0]; n++) {
		snprintf(p, sizeof(p),
			 "/sys/class/infiniband_verbs/uverbs%d/ibdev", n);
		f = fopen(p, "r");
		if (!f)
			continue;
		if (fgets(name, sizeof(name), f)) {
			name[strcspn(name, "\n")] = 0;
			if (!strcmp(name, dev))
				snprintf(path, size,
					 "/dev/infiniband/uverbs%d", n);
		}
		fclose(f);
	}
}

/* Poll until odp_mirror's live counts read @b again (at most @ms). */
static bool live_back(struct live b, int ms)
{
	uint64_t deadline = now_ms() + ms;
	struct live n;

	for (;;) {
		n = live_now();
		if (n.umems == b.umems && n.entries == b.entries &&
		    n.children == b.children)
			return true;
		if (now_ms() >= deadline) {
			ksft_print_msg("live: umems %ld entries %ld children %ld, want %ld %ld %ld\n",
				       n.umems, n.entries, n.children, b.umems,
				       b.entries, b.children);
			return false;
		}
		usleep(10000);
	}
}

/*
 * Fork the unprivileged child; once it reported, measure odp_mirror's
 * live counts into *@held and the kernel's memory into *@kb, then let
 * it exit. Returns its wait status (-1: none); @r holds its report.
 */
static int run_dos_child(struct dos_report *r, struct live *held, long *kb)
{
	int to_child[2], from_child[2], status = -1;
	struct pollfd pfd;
	pid_t pid;

	memset(r, 0, sizeof(*r));
	if (pipe(to_child) || pipe(from_child))
		return -1;
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid) {
		close(to_child[1]);
		close(from_child[0]);
		dos_child(to_child[0], from_child[1]);
	}
	close(to_child[0]);
	close(from_child[1]);
	pfd = (struct pollfd){ .fd = from_child[0], .events = POLLIN };
	if (poll(&pfd, 1, DOS_WAIT_MS) != 1 ||
	    read(from_child[0], r, sizeof(*r)) != (ssize_t)sizeof(*r))
		snprintf(r->fail, sizeof(r->fail), "the child did not report");
	/* the child holds its MRs and pages: measure */
	*held = live_now();
	*kb = kernel_kb();
	if (write(to_child[1], "x", 1) != 1)
		kill(pid, SIGKILL);
	close(to_child[1]);
	close(from_child[0]);
	if (waitpid(pid, &status, 0) != pid)
		status = -1;
	return status;
}

FIXTURE(dos) {
	char		node[64];	/* the uverbs device node */
	mode_t		mode;		/* its mode before */
	bool		chmodded;
};

/*
 * The device and odp_mirror must be there, and the uverbs node open to
 * everyone for the duration (chmod o+rw when it is not; teardown
 * restores it).
 */
FIXTURE_SETUP(dos)
{
	struct ibv_device_attr_ex ax;
	struct vu_config cfg;
	struct vu_ctx v;
	struct stat st;

	TU_OPEN_QUERY(&cfg, &v, &ax);
	ASSERT_EQ(0, vu_close(&v));
	TU_REQUIRE_CAP((ax.odp_caps.general_caps & IBV_ODP_SUPPORT) &&
		       (ax.odp_caps.general_caps & IBV_ODP_SUPPORT_IMPLICIT) &&
		       (ax.odp_caps.per_transport_caps.rc_odp_caps &
			IBV_ODP_SUPPORT_WRITE),
		       "%s has no explicit and implicit RC ODP", cfg.dev_name);
	TU_REQUIRE_CAP(!access(TU_LIVE_PATH, R_OK),
		       "no %s (odp_mirror not loaded?)", TU_LIVE_PATH);
	ASSERT_EQ(0, getuid()) TH_LOG("the test drops to nobody: run it as root");
	uverbs_node(cfg.dev_name, self->node, sizeof(self->node));
	ASSERT_NE(0, self->node[0]) TH_LOG("no uverbs node for %s",
					   cfg.dev_name);
	ASSERT_EQ(0, stat(self->node, &st));
	self->mode = st.st_mode & 07777;
	ksft_print_msg("%s mode %04o\n", self->node, self->mode);
	if ((self->mode & 0006) != 0006) {
		ASSERT_EQ(0, chmod(self->node, self->mode | 0006));
		self->chmodded = true;
	}
}

FIXTURE_TEARDOWN(dos)
{
	if (self->chmodded)
		EXPECT_EQ(0, chmod(self->node, self->mode));
}

TEST_F_TIMEOUT(dos, unprivileged_odp_mrs_bounded, 600)
{
	struct dos_report r;
	struct live b, held;
	long kb0, kb1, pages, bound_kb;
	int status;

	b = live_now();
	kb0 = kernel_kb();
	status = run_dos_child(&r, &held, &kb1);
	pages = r.rss_kb / 4;

	ksft_print_msg("nobody, RLIMIT_MEMLOCK %lu KiB: 1 MiB pinned MR: %s; %d ODP MRs of 1 GiB (next: %s), implicit %s; %d of %d WRITEs landed; Rss of the reservation %ld kB\n",
		       DOS_MEMLOCK >> 10,
		       r.pinned_errno ? strerror(r.pinned_errno) : "registered",
		       r.mrs, r.mr_errno ? strerror(r.mr_errno) : "-",
		       r.implicit ? "yes" : "no", r.writes_ok, DOS_WRITES,
		       r.rss_kb);
	ksft_print_msg("held: umems %ld -> %ld, entries %ld -> %ld, children %ld -> %ld; Slab + VmallocUsed %ld -> %ld kB\n",
		       b.umems, held.umems, b.entries, held.entries,
		       b.children, held.children, kb0, kb1);
	ASSERT_STREQ("", r.fail);
	EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status))
		TH_LOG("child status 0x%x", status);
	/* the memlock limit holds for pinning, not for ODP */
	EXPECT_EQ(ENOMEM, r.pinned_errno);
	EXPECT_EQ(DOS_MRS, r.mrs) TH_LOG("MR %d: %s", r.mrs,
					 strerror(r.mr_errno));
	EXPECT_TRUE(r.implicit);
	EXPECT_EQ(DOS_WRITES, r.writes_ok) TH_LOG("first failed WRITE: %d",
						  r.first_bad);
	/*
	 * translations follow residency, not the 1000 GiB registered: at
	 * most two per resident page (an explicit MR's and the implicit
	 * MR's), and the local buffer's
	 */
	EXPECT_LT(b.entries, held.entries);
	EXPECT_GE(b.entries + 2 * pages + 1, held.entries);
	EXPECT_LE(DOS_MRS + 2, held.umems - b.umems);
	/* 8 KiB per MR, 64 bytes per resident page, 8 MiB of slack */
	bound_kb = (long)(DOS_MRS + 2) * 8 + pages / 16 + 8192;
	EXPECT_GE(kb0 + bound_kb, kb1)
		TH_LOG("kernel memory grew by %ld kB, bound %ld kB", kb1 - kb0,
		       bound_kb);
	/* and all of it went away with the child */
	EXPECT_TRUE(live_back(b, tu_ms(10000)));
}

TEST_HARNESS_MAIN
