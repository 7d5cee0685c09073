// SPDX-License-Identifier: GPL-2.0
/*
 * odp_reclaim - bytes that rxe stores into an ODP MR survive reclaim.
 *
 * rxe writes the user pages of an ODP MR through the kernel mapping
 * (kmap + memcpy for WRITE and SEND, atomics on the kernel address), so
 * neither the PTE nor the folio becomes dirty, and hmm_range_fault() does
 * not fault a present, writable, clean PTE. Reclaim then treats such a
 * page as clean:
 *  - an anonymous page after MADV_FREE (lazy-free: clean, not swap-backed)
 *    is discarded, and the process reads zeros;
 *  - a clean swap-cache page (swapped in by a read, still holding its swap
 *    slot) is dropped, and the process reads the slot's older bytes.
 * A MAP_SHARED page of an ext4 file is written through a write fault once
 * writeback made it read-only, so it is dirtied; that case guards it.
 *
 * One RC QP pair on one rxe device: QP a (the peer) posts RDMA WRITE,
 * SEND and atomics at the ODP MR under test, from pinned local buffers.
 * Every check is byte exact over the whole mapping: the region and its
 * guard bytes (whole guard pages around the MR, and the bytes of the
 * MR's pages that no operation touches). Each case checks what the
 * process reads right after the operation, then after MADV_PAGEOUT.
 *
 *  - global.lazyfree_control: no MR; CPU-written pages after MADV_FREE
 *    and MADV_PAGEOUT read zeros (the kernel really discards lazy-free
 *    pages), and a page the CPU wrote after MADV_FREE keeps its bytes.
 *    Every lazyfree case repeats the first half on its guard pages.
 *  - lazyfree.<variant>.pageout_keeps_bytes: MADV_FREE, an ODP MR over
 *    the region, then a 256 KiB WRITE (page aligned, or unaligned start
 *    and end), one FETCH_ADD or CMP_AND_SWP per page, or a SEND into a
 *    receive buffer spanning 4 pages; MADV_PAGEOUT; every byte kept.
 *    implicit_write_256k writes through an implicit ODP MR. The aligned
 *    WRITEs' packets each lie in one page, so they take the in-page copy
 *    (odp_copy_recorded()) once the first has faulted the pages; the
 *    unaligned ones' pages are all touched by a packet that crosses a
 *    page and takes the general walk. The pinned variant (an ordinary MR)
 *    is the control: it passes on any kernel.
 *  - reclaim.swapped_in_clean: a zram swap device; CPU-written pages are
 *    swapped out (smaps Swap), read in again through the swap cache
 *    (MADV_WILLNEED, then a CPU read: clean swap-cache pages, checked in
 *    /proc/kpageflags), WRITTEN through an ODP MR, swapped out (smaps
 *    Swap) and read in: every byte the WRITE's.
 *  - reclaim.ext4_shared_file: a MAP_SHARED file on ext4 on a loop device;
 *    WRITEs through an ODP MR at unaligned offsets before and after
 *    writeback (msync) made the pages clean and read-only, msync, unmap,
 *    drop_caches, remount: the file holds every byte. A file written by
 *    CPU stores the same way is the control.
 *
 * The process is pinned to one CPU (tu_pin_cpu()) before it faults its
 * pages, so that MADV_FREE and MADV_PAGEOUT find them on the LRU lists.
 * Needs root in the guest (swapon, mount, /proc/kpageflags). Fails when
 * our rdma_rxe is loaded without the ODP capabilities a case needs;
 * skips on another rxe that lacks them.
 *
 * Device: RXE_ODP_DEV (default rxe0), RXE_ODP_GID_IDX (default 1).
 *
 * Mutation record (run in the guest):
 *  - today's main (rxe does not dirty the pages it stores into):
 *    lazyfree.write_256k, write_unaligned, fetch_add, cmp_swp and send
 *    fail, every page of the region reading back all zeros after
 *    MADV_PAGEOUT (64, 65, 8, 8 and 4 of as many); reclaim.swapped_in_clean
 *    fails, every WRITTEN byte reading back as it was swapped out before
 *    the WRITE; pinned_write_unaligned, global.lazyfree_control and
 *    reclaim.ext4_shared_file pass.
 *  - a scratch fix (odp_access_stay() marks the anonymous folio of each
 *    page it wrote dirty): every case passes.
 *  - odp_copy_recorded() without its odp_mark_dirty() (2026-12-06): the
 *    explicit and the implicit write_256k fail (byte 0 reads 0x00 after
 *    MADV_PAGEOUT, want 0xf9); every other case passes, the general walk
 *    dirtying their pages.
 *  - swapped_in_clean without MADV_WILLNEED: the read fault on zram
 *    (SWP_SYNCHRONOUS_IO, one swap user) skips the swap cache, the page
 *    has no swap slot and reclaim dirties it before swap-out, so the data
 *    survive on today's main; the kpageflags check fails the case instead.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/kernel-page-flags.h>

#include "kselftest_harness.h"
#include "verbs_util.h"
#include "test_util.h"

#define PG		4096UL
#define GUARD		TU_GUARD
#define RW		(PROT_READ | PROT_WRITE)
#define ACC_TARGET	(IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | \
			 IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_ATOMIC)
#define ACC_LOCAL	IBV_ACCESS_LOCAL_WRITE
#define FETCH_ADD	IBV_WR_ATOMIC_FETCH_AND_ADD
#define CMP_SWAP	IBV_WR_ATOMIC_CMP_AND_SWP

#define SRC_SIZE	(256UL << 10)	/* the peer's source buffer */
#define ZRAM_SIZE	(256L << 20)
#define IMG_SIZE	(64L << 20)	/* the ext4 image */
#define FILE_PAGES	8

/* ---- helpers ----------------------------------------------------------- */

/* Run a shell command; returns its exit status, or -1. */
static int __attribute__((format(printf, 1, 2))) sh(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	if (st == -1 || !WIFEXITED(st)) {
		ksft_print_msg("'%s' did not run or died\n", cmd);
		return -1;
	}
	if (WEXITSTATUS(st))
		ksft_print_msg("'%s' exited with %d\n", cmd, WEXITSTATUS(st));
	return WEXITSTATUS(st);
}

/*
 * The page flags (KPF_*) of the page mapped at @addr, from
 * /proc/self/pagemap and /proc/kpageflags; -1 when the page is not
 * present or its flags cannot be read (they need CAP_SYS_ADMIN).
 */
static int64_t page_flags(const void *addr)
{
	uint64_t pm, flags;
	int fd = open("/proc/self/pagemap", O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = pread(fd, &pm, sizeof(pm), (uintptr_t)addr / PG * sizeof(pm));
	close(fd);
	/* bit 63: present; bits 0-54: the PFN (0 without CAP_SYS_ADMIN) */
	if (n != sizeof(pm) || !(pm >> 63) || !(pm & ((1ULL << 55) - 1)))
		return -1;
	fd = open("/proc/kpageflags", O_RDONLY);
	if (fd < 0)
		return -1;
	n = pread(fd, &flags, sizeof(flags),
		  (pm & ((1ULL << 55) - 1)) * sizeof(flags));
	close(fd);
	return n == sizeof(flags) ? (int64_t)flags : -1;
}

/*
 * How many of the @pages pages from @p are not present or have flags
 * other than @want under @mask; logged as "@what".
 */
static size_t pages_not(const char *what, const uint8_t *p, size_t pages,
			uint64_t mask, uint64_t want)
{
	size_t i, bad = 0;
	int64_t f;

	for (i = 0; i < pages; i++) {
		f = page_flags(p + i * PG);
		if (f >= 0 && ((uint64_t)f & mask) == want)
			continue;
		if (bad++ < 4)
			ksft_print_msg("%s: page %zu flags 0x%" PRIx64 "%s\n",
				       what, i, f < 0 ? 0 : (uint64_t)f,
				       f < 0 ? " (not present)" : "");
	}
	if (bad)
		ksft_print_msg("%s: %zu of %zu pages\n", what, bad, pages);
	return bad;
}

/*
 * @n bytes (whole pages) at @got equal @want; on a difference also log
 * how many of the pages read back all zeros.
 */
static bool same_pages(const char *what, const uint8_t *got,
		       const uint8_t *want, size_t n)
{
	size_t i, zero = 0;

	if (tu_same_bytes(what, got, want, n))
		return true;
	for (i = 0; i < n; i += PG)
		zero += !memcmp(got + i, got + i + 1, PG - 1) && !got[i];
	ksft_print_msg("%s: %zu of %zu pages read all zeros\n", what, zero,
		       n / PG);
	return false;
}

/* An anonymous private mapping without huge pages; NULL on failure. */
static uint8_t *map_anon(size_t size)
{
	void *p = mmap(NULL, size, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	if (madvise(p, size, MADV_NOHUGEPAGE)) {
		munmap(p, size);
		return NULL;
	}
	return p;
}

static void unmap(uint8_t **p, size_t size)
{
	if (*p)
		munmap(*p, size);
	*p = NULL;
}

/* ---- the control: the kernel discards clean lazy-free pages ------------ */

/*
 * 64 CPU-written pages, MADV_FREE, MADV_PAGEOUT: the 63 that nobody wrote
 * since read zeros, the one the CPU wrote after MADV_FREE (its PTE dirty)
 * keeps its bytes.
 */
TEST(lazyfree_control)
{
	size_t n = 64 * PG, kept = 17 * PG;
	uint8_t *p, *want;

	ASSERT_LE(0, tu_pin_cpu());
	p = map_anon(n);
	want = malloc(PG);
	ASSERT_NE(NULL, p);
	ASSERT_NE(NULL, want);
	tu_fill(p, n, 1);
	ASSERT_EQ(0, madvise(p, n, MADV_FREE));
	tu_fill(p + kept, PG, 2);
	tu_fill(want, PG, 2);
	ASSERT_EQ(0, madvise(p, n, MADV_PAGEOUT));
	TU_ASSERT_DISCARDED(p, kept);
	TU_ASSERT_DISCARDED(p + kept + PG, n - kept - PG);
	ASSERT_TRUE(tu_same_bytes("page written by the CPU after MADV_FREE",
				  p + kept, want, PG));
	munmap(p, n);
	free(want);
}

/* ---- lazy-free pages changed by the peer -------------------------------- */

enum change { CH_WRITE, CH_FETCH_ADD, CH_CMP_SWAP, CH_SEND };

FIXTURE(lazyfree) {
	struct vu_config	cfg;
	struct vu_ctx		v;
	struct vu_qp_pair	qps;
	uint8_t			*map;	/* guard page, region, guard */
	size_t			map_size;
	uint8_t			*want;	/* what @map must hold */
	uint8_t			*src;	/* the peer's source */
	uint64_t		*res;	/* the peer's atomic results */
	struct ibv_mr		*mr;	/* under test, over the region */
	struct ibv_mr		*smr, *rmr;
};

FIXTURE_VARIANT(lazyfree) {
	enum change	change;
	bool		odp;	/* false: an ordinary (pinned) MR */
	bool		implicit;	/* the MR is implicit ODP */
	size_t		pages;	/* of the region */
	size_t		off;	/* WRITE, SEND: [off, off + len) */
	size_t		len;
};

FIXTURE_VARIANT_ADD(lazyfree, write_256k) {
	.change = CH_WRITE, .odp = true, .pages = 64, .len = 256 << 10,
};

FIXTURE_VARIANT_ADD(lazyfree, write_unaligned) {
	.change = CH_WRITE, .odp = true, .pages = 65, .off = 0x123,
	.len = 256 << 10,
};

FIXTURE_VARIANT_ADD(lazyfree, implicit_write_256k) {
	.change = CH_WRITE, .odp = true, .implicit = true, .pages = 64,
	.len = 256 << 10,
};

FIXTURE_VARIANT_ADD(lazyfree, fetch_add) {
	.change = CH_FETCH_ADD, .odp = true, .pages = 8,
};

FIXTURE_VARIANT_ADD(lazyfree, cmp_swp) {
	.change = CH_CMP_SWAP, .odp = true, .pages = 8,
};

FIXTURE_VARIANT_ADD(lazyfree, send) {
	.change = CH_SEND, .odp = true, .pages = 4, .off = 0x321,
	.len = 3 * PG - 0x321 + 0x2a0,
};

FIXTURE_VARIANT_ADD(lazyfree, pinned_write_unaligned) {
	.change = CH_WRITE, .odp = false, .pages = 65, .off = 0x123,
	.len = 256 << 10,
};

FIXTURE_SETUP(lazyfree)
{
	static const uint32_t need[] = {
		[CH_WRITE] = IBV_ODP_SUPPORT_WRITE,
		[CH_FETCH_ADD] = IBV_ODP_SUPPORT_ATOMIC,
		[CH_CMP_SWAP] = IBV_ODP_SUPPORT_ATOMIC,
		[CH_SEND] = IBV_ODP_SUPPORT_RECV,
	};
	struct ibv_device_attr_ex ax;
	uint32_t rc;

	ASSERT_EQ(PG, (size_t)sysconf(_SC_PAGESIZE));
	/* before any page of the region is faulted in */
	ASSERT_LE(0, tu_pin_cpu());
	TU_OPEN_QUERY(&self->cfg, &self->v, &ax);
	rc = ax.odp_caps.per_transport_caps.rc_odp_caps;
	if (variant->odp) {
		TU_REQUIRE_CAP(ax.odp_caps.general_caps & IBV_ODP_SUPPORT,
			       "%s has no ODP support", self->cfg.dev_name);
		TU_REQUIRE_CAP((rc & need[variant->change]) ==
			       need[variant->change],
			       "%s RC ODP caps 0x%x lack 0x%x",
			       self->cfg.dev_name, rc, need[variant->change]);
	}
	if (variant->implicit)
		TU_REQUIRE_CAP(ax.odp_caps.general_caps &
			       IBV_ODP_SUPPORT_IMPLICIT,
			       "%s has no implicit ODP", self->cfg.dev_name);
	ASSERT_EQ(0, vu_qp_pair_create(&self->v, &self->qps));

	self->map_size = (variant->pages + 2) * PG;
	self->map = map_anon(self->map_size);
	self->want = map_anon(self->map_size);
	self->src = map_anon(SRC_SIZE);
	self->res = (uint64_t *)map_anon(PG);
	ASSERT_NE(NULL, self->map);
	ASSERT_NE(NULL, self->want);
	ASSERT_NE(NULL, self->src);
	ASSERT_NE(NULL, self->res);
	self->smr = vu_reg_mr(&self->v, self->src, SRC_SIZE, ACC_LOCAL);
	self->rmr = vu_reg_mr(&self->v, self->res, PG, ACC_LOCAL);
	ASSERT_NE(NULL, self->smr);
	ASSERT_NE(NULL, self->rmr);
}

FIXTURE_TEARDOWN(lazyfree)
{
	EXPECT_EQ(0, vu_qp_pair_destroy(&self->v, &self->qps));
	EXPECT_EQ(0, vu_dereg_mr(&self->v, self->mr));
	EXPECT_EQ(0, vu_dereg_mr(&self->v, self->smr));
	EXPECT_EQ(0, vu_dereg_mr(&self->v, self->rmr));
	EXPECT_EQ(0, vu_close(&self->v));
	unmap(&self->map, self->map_size);
	unmap(&self->want, self->map_size);
	unmap(&self->src, SRC_SIZE);
	if (self->res)
		munmap(self->res, PG);
}

/* Byte offset in the region of the 8-byte word page @i's atomic targets. */
static size_t atomic_off(size_t i, size_t pages)
{
	if (i == pages - 1)
		return i * PG + PG - 8;	/* the region's last word */
	return i * PG + (i * 520) % PG;
}

/* One FETCH_ADD or CMP_AND_SWP per page of @reg; @want follows. */
static void change_atomics(struct __test_metadata *_metadata,
			   FIXTURE_DATA(lazyfree) *self,
			   const FIXTURE_VARIANT(lazyfree) *variant,
			   uint8_t *reg, uint8_t *want)
{
	size_t i, off;
	uint64_t old, add, swap;

	for (i = 0; i < variant->pages; i++) {
		off = atomic_off(i, variant->pages);
		memcpy(&old, want + off, 8);
		add = 0x0101010101010101ULL * (i + 1);
		swap = 0xfeedface00000000ULL | i;
		self->res[i] = 0;
		if (variant->change == CH_FETCH_ADD)
			TU_ASSERT_OK(tu_atomic(&self->v, &self->qps.a,
					       FETCH_ADD, &self->res[i],
					       self->rmr->lkey,
					       (uintptr_t)reg + off,
					       self->mr->rkey, add, 0));
		else
			TU_ASSERT_OK(tu_atomic(&self->v, &self->qps.a,
					       CMP_SWAP, &self->res[i],
					       self->rmr->lkey,
					       (uintptr_t)reg + off,
					       self->mr->rkey, old, swap));
		ASSERT_EQ(old, self->res[i]) TH_LOG("atomic on page %zu", i);
		old = variant->change == CH_FETCH_ADD ? old + add : swap;
		memcpy(want + off, &old, 8);
	}
}

/* The peer SENDs into a receive buffer [@reg + off, + len) of QP b. */
static void change_send(struct __test_metadata *_metadata,
			FIXTURE_DATA(lazyfree) *self,
			const FIXTURE_VARIANT(lazyfree) *variant,
			uint8_t *reg, uint8_t *want)
{
	ASSERT_EQ(0, vu_post_recv(&self->v, &self->qps.b, 5,
				  reg + variant->off, variant->len,
				  self->mr->lkey));
	ASSERT_EQ(0, vu_post_send(&self->v, &self->qps.a, IBV_WR_SEND, 6,
				  self->src, variant->len, self->smr->lkey,
				  0, 0));
	TU_ASSERT_OK(tu_reap(&self->v, &self->qps.a));
	ASSERT_EQ(0, vu_wait_ok(&self->v, &self->qps.b, 5, IBV_WC_RECV));
	memcpy(want + variant->off, self->src, variant->len);
}

/*
 * CPU-written region (guard bytes, or a pattern where atomics go) and
 * guard pages; MADV_FREE; the MR under test over the region; the peer's
 * change; the process reads it; MADV_PAGEOUT; the guard pages (lazy-free,
 * outside the MR, written by nobody) read zeros, and the region holds
 * every byte it held before.
 */
TEST_F_TIMEOUT(lazyfree, pageout_keeps_bytes, 120)
{
	size_t n = variant->pages * PG;
	uint8_t *reg = self->map + PG, *want = self->want + PG;
	unsigned int access = ACC_TARGET;

	memset(self->map, GUARD, self->map_size);
	if (variant->change == CH_FETCH_ADD || variant->change == CH_CMP_SWAP)
		tu_fill(reg, n, 3);
	memcpy(self->want, self->map, self->map_size);
	ASSERT_EQ(0, madvise(self->map, self->map_size, MADV_FREE));

	if (variant->odp)
		access |= IBV_ACCESS_ON_DEMAND;
	if (variant->implicit)
		self->mr = ibv_reg_mr(self->v.pd, NULL, SIZE_MAX, access);
	else
		self->mr = vu_reg_mr(&self->v, reg, n, access);
	ASSERT_NE(NULL, self->mr) TH_LOG("%s MR: %s",
					 variant->implicit ? "implicit ODP" :
					 variant->odp ? "ODP" : "pinned",
					 strerror(errno));
	tu_fill(self->src, SRC_SIZE, 4);
	switch (variant->change) {
	case CH_WRITE:
		TU_ASSERT_OK(tu_xfer(&self->v, &self->qps.a, IBV_WR_RDMA_WRITE,
				     self->src, variant->len, self->smr->lkey,
				     (uintptr_t)reg + variant->off,
				     self->mr->rkey));
		memcpy(want + variant->off, self->src, variant->len);
		break;
	case CH_FETCH_ADD:
	case CH_CMP_SWAP:
		change_atomics(_metadata, self, variant, reg, want);
		break;
	case CH_SEND:
		change_send(_metadata, self, variant, reg, want);
		break;
	}
	ASSERT_TRUE(same_pages("before MADV_PAGEOUT", self->map, self->want,
			       self->map_size));

	ASSERT_EQ(0, madvise(self->map, self->map_size, MADV_PAGEOUT));
	TU_ASSERT_DISCARDED(self->map, PG);
	TU_ASSERT_DISCARDED(reg + n, PG);
	ASSERT_TRUE(same_pages("region after MADV_PAGEOUT", reg, want, n));
}

/* ---- swap cache and ext4: system set-up in the test, undone at teardown */

FIXTURE(reclaim) {
	struct vu_config	cfg;
	struct vu_ctx		v;
	struct vu_qp_pair	qps;
	struct ibv_mr		*mr;	/* ODP, the MR under test */
	struct ibv_mr		*smr;	/* over @src */
	uint8_t			*src;	/* the peer's source */
	uint8_t			*map;	/* the mapping under test */
	uint8_t			*ctl;	/* ext4: the CPU file's */
	uint8_t			*want, *want_ctl;
	size_t			map_size;
	struct tu_zram		zram;	/* swap */
	/* ext4 */
	char			dir[64];
	char			img[96];
	char			mnt[96];
	char			loop[32];
	bool			mounted;
	int			fd, cfd;
};

FIXTURE_SETUP(reclaim)
{
	const uint32_t need = IBV_ODP_SUPPORT_WRITE;
	struct ibv_device_attr_ex ax;
	uint32_t rc;

	self->zram.dev = -1;
	self->fd = self->cfd = -1;
	ASSERT_EQ(PG, (size_t)sysconf(_SC_PAGESIZE));
	ASSERT_LE(0, tu_pin_cpu());
	TU_OPEN_QUERY(&self->cfg, &self->v, &ax);
	rc = ax.odp_caps.per_transport_caps.rc_odp_caps;
	TU_REQUIRE_CAP(ax.odp_caps.general_caps & IBV_ODP_SUPPORT,
		       "%s has no ODP support", self->cfg.dev_name);
	TU_REQUIRE_CAP((rc & need) == need, "%s RC ODP caps 0x%x lack 0x%x",
		       self->cfg.dev_name, rc, need);
	ASSERT_EQ(0, vu_qp_pair_create(&self->v, &self->qps));
	self->src = map_anon(SRC_SIZE);
	ASSERT_NE(NULL, self->src);
	self->smr = vu_reg_mr(&self->v, self->src, SRC_SIZE, ACC_LOCAL);
	ASSERT_NE(NULL, self->smr);
}

FIXTURE_TEARDOWN(reclaim)
{
	EXPECT_EQ(0, vu_qp_pair_destroy(&self->v, &self->qps));
	EXPECT_EQ(0, vu_dereg_mr(&self->v, self->mr));
	EXPECT_EQ(0, vu_dereg_mr(&self->v, self->smr));
	EXPECT_EQ(0, vu_close(&self->v));
	unmap(&self->src, SRC_SIZE);
	unmap(&self->map, self->map_size);
	unmap(&self->ctl, self->map_size);
	unmap(&self->want, self->map_size);
	unmap(&self->want_ctl, self->map_size);

	EXPECT_EQ(0, tu_zram_swap_off(&self->zram));

	if (self->fd >= 0)
		close(self->fd);
	if (self->cfd >= 0)
		close(self->cfd);
	if (self->mounted)
		EXPECT_EQ(0, umount(self->mnt)) TH_LOG("umount %s: %s",
						       self->mnt,
						       strerror(errno));
	if (self->loop[0])
		EXPECT_EQ(0, sh("losetup -d %s", self->loop));
	if (self->img[0])
		unlink(self->img);
	if (self->mnt[0])
		rmdir(self->mnt);
	if (self->dir[0])
		rmdir(self->dir);
}

/* Swap on a fresh zram device (256 MiB): tu_zram_swap_on(). */
static void swap_on(struct __test_metadata *_metadata,
		    FIXTURE_DATA(reclaim) *self)
{
	ASSERT_EQ(0, tu_zram_swap_on(&self->zram, ZRAM_SIZE))
		TH_LOG("no swap on zram: the swap cache case cannot run");
}

/* Swap out all of @self->map; smaps must show every page in swap. */
static void page_out(struct __test_metadata *_metadata,
		     FIXTURE_DATA(reclaim) *self, const char *when)
{
	ASSERT_EQ(0, madvise(self->map, self->map_size, MADV_PAGEOUT));
	ASSERT_EQ((long)(self->map_size >> 10), tu_smaps_kb(self->map, "Swap"))
		TH_LOG("%s: MADV_PAGEOUT did not swap out every page", when);
}

/*
 * A region of 16 pages (pattern A) between two guard pages, all swapped
 * out, then read by the CPU through the swap cache: MADV_WILLNEED reads
 * the pages into the swap cache, the CPU's read faults map them writable
 * and clean, their swap slots still allocated. An ODP MR over the region,
 * a WRITE of pattern B at an unaligned start and end, swap-out, read:
 * pattern B where the WRITE went, A and the guard bytes elsewhere.
 */
TEST_F_TIMEOUT(reclaim, swapped_in_clean, 180)
{
	size_t pages = 16, n = pages * PG, off = 0x40, len = n - 0x80;
	size_t i, stale = 0;
	uint8_t *reg, *want;

	swap_on(_metadata, self);
	self->map_size = n + 2 * PG;
	self->map = map_anon(self->map_size);
	self->want = map_anon(self->map_size);
	ASSERT_NE(NULL, self->map);
	ASSERT_NE(NULL, self->want);
	reg = self->map + PG;
	want = self->want + PG;
	memset(self->map, GUARD, self->map_size);
	tu_fill(reg, n, 5);
	memcpy(self->want, self->map, self->map_size);

	page_out(_metadata, self, "first swap-out");
	ASSERT_EQ(0, madvise(self->map, self->map_size, MADV_WILLNEED));
	ASSERT_TRUE(same_pages("after swap-in", self->map, self->want,
			       self->map_size));
	ASSERT_EQ(0, pages_not("not clean swap cache after swap-in",
			       self->map, pages + 2,
			       1ULL << KPF_SWAPCACHE | 1ULL << KPF_DIRTY,
			       1ULL << KPF_SWAPCACHE))
		TH_LOG("swap-in did not leave clean swap-cache pages: the case would prove nothing");

	self->mr = vu_reg_mr(&self->v, reg, n,
			     ACC_TARGET | IBV_ACCESS_ON_DEMAND);
	ASSERT_NE(NULL, self->mr) TH_LOG("ODP MR: %s", strerror(errno));
	tu_fill(self->src, len, 6);
	TU_ASSERT_OK(tu_xfer(&self->v, &self->qps.a, IBV_WR_RDMA_WRITE,
			     self->src, len, self->smr->lkey,
			     (uintptr_t)reg + off, self->mr->rkey));
	memcpy(want + off, self->src, len);
	ASSERT_TRUE(same_pages("after the WRITE", self->map, self->want,
			       self->map_size));

	page_out(_metadata, self, "second swap-out");
	for (i = 0; i < len; i++)
		stale += reg[off + i] != want[off + i] &&
			 reg[off + i] == tu_pattern(off + i, 5);
	if (stale)
		ksft_print_msg("%zu of the %zu WRITTEN bytes read back as they were before the WRITE\n",
			       stale, len);
	ASSERT_TRUE(same_pages("after swap-out and in", self->map, self->want,
			       self->map_size));
}

/* The loop device the image is attached to, into @self->loop. */
static void loop_attach(struct __test_metadata *_metadata,
			FIXTURE_DATA(reclaim) *self)
{
	char cmd[160];
	FILE *p;
	int st;

	snprintf(cmd, sizeof(cmd), "losetup --find --show %s", self->img);
	p = popen(cmd, "r");
	ASSERT_NE(NULL, p);
	if (!fgets(self->loop, sizeof(self->loop), p))
		self->loop[0] = 0;
	st = pclose(p);
	self->loop[strcspn(self->loop, "\n")] = 0;
	ASSERT_TRUE(WIFEXITED(st) && !WEXITSTATUS(st) && self->loop[0])
		TH_LOG("'%s' failed", cmd);
}

static void ext4_mount(struct __test_metadata *_metadata,
		       FIXTURE_DATA(reclaim) *self)
{
	ASSERT_EQ(0, mount(self->loop, self->mnt, "ext4", 0, NULL))
		TH_LOG("mount %s on %s: %s", self->loop, self->mnt,
		       strerror(errno));
	self->mounted = true;
}

/* ext4 (4 KiB blocks) on a loop device over an image in /tmp, mounted. */
static void ext4_on(struct __test_metadata *_metadata,
		    FIXTURE_DATA(reclaim) *self)
{
	int fd;

	ASSERT_EQ(0, sh("modprobe loop && modprobe ext4"));
	strcpy(self->dir, "/tmp/odp_reclaim.XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir)) TH_LOG("mkdtemp: %s",
						  strerror(errno));
	snprintf(self->img, sizeof(self->img), "%s/img", self->dir);
	fd = open(self->img, O_RDWR | O_CREAT | O_EXCL, 0600);
	ASSERT_LE(0, fd) TH_LOG("%s: %s", self->img, strerror(errno));
	ASSERT_EQ(0, ftruncate(fd, IMG_SIZE));
	close(fd);
	loop_attach(_metadata, self);
	ASSERT_EQ(0, sh("mkfs.ext4 -q -F -b 4096 %s", self->loop));
	snprintf(self->mnt, sizeof(self->mnt), "%s/mnt", self->dir);
	ASSERT_EQ(0, mkdir(self->mnt, 0700));
	ext4_mount(_metadata, self);
}

/* A file of @n guard bytes in the mounted ext4, synced; its fd. */
static int guard_file(FIXTURE_DATA(reclaim) *self, const char *name,
		      size_t n)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", self->mnt, name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0) {
		ksft_print_msg("%s: %s\n", path, strerror(errno));
		return -1;
	}
	memset(self->src, GUARD, n);
	if (pwrite(fd, self->src, n, 0) != (ssize_t)n || fsync(fd)) {
		ksft_print_msg("%s: %s\n", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* @n bytes of the file @name of the mounted ext4 are @want. */
static bool file_is(FIXTURE_DATA(reclaim) *self, const char *name,
		    const uint8_t *want, size_t n)
{
	char path[128];
	uint8_t *got = malloc(n + 1);
	bool ok = false;
	ssize_t r = -1;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", self->mnt, name);
	fd = open(path, O_RDONLY);
	if (got && fd >= 0)
		r = pread(fd, got, n + 1, 0);	/* and not a byte more */
	if (r == (ssize_t)n)
		ok = tu_same_bytes(path, got, want, n);
	else
		ksft_print_msg("%s: read %zd bytes, want %zu: %s\n", path, r,
			       n, strerror(errno));
	if (fd >= 0)
		close(fd);
	free(got);
	return ok;
}

/*
 * The peer WRITEs @len bytes of pattern @seed at byte @off of the file
 * mapping through the ODP MR; the CPU stores the same bytes into the
 * control file's mapping; both shadows follow; the process reads both.
 */
static void file_write(struct __test_metadata *_metadata,
		       FIXTURE_DATA(reclaim) *self, size_t off, size_t len,
		       unsigned int seed)
{
	tu_fill(self->src, len, seed);
	TU_ASSERT_OK(tu_xfer(&self->v, &self->qps.a, IBV_WR_RDMA_WRITE,
			     self->src, len, self->smr->lkey,
			     (uintptr_t)self->map + off, self->mr->rkey));
	memcpy(self->ctl + off, self->src, len);
	memcpy(self->want + off, self->src, len);
	memcpy(self->want_ctl + off, self->src, len);
	ASSERT_TRUE(tu_same_bytes("WRITTEN file mapping", self->map,
				  self->want, self->map_size));
	ASSERT_TRUE(tu_same_bytes("CPU-stored file mapping", self->ctl,
				  self->want_ctl, self->map_size));
}

/* msync(MS_SYNC) both file mappings: every page clean afterwards. */
static void file_sync(struct __test_metadata *_metadata,
		      FIXTURE_DATA(reclaim) *self)
{
	ASSERT_EQ(0, msync(self->map, self->map_size, MS_SYNC));
	ASSERT_EQ(0, msync(self->ctl, self->map_size, MS_SYNC));
	ASSERT_EQ(0, pages_not("dirty after msync", self->map, FILE_PAGES,
			       1ULL << KPF_DIRTY, 0));
	ASSERT_EQ(0, pages_not("dirty after msync (CPU file)", self->ctl,
			       FILE_PAGES, 1ULL << KPF_DIRTY, 0));
}

/*
 * Two 8-page files of guard bytes on ext4, each mapped MAP_SHARED and
 * read by the CPU (pages mapped read-only, clean). WRITEs through an ODP
 * MR over one, CPU stores into the other: one across pages 1-4 at an
 * unaligned start and end, msync (writeback: clean, read-only again),
 * one across pages 2-7, msync; unmap, drop_caches, remount: both files
 * hold every byte.
 */
TEST_F_TIMEOUT(reclaim, ext4_shared_file, 180)
{
	size_t n = FILE_PAGES * PG;

	ext4_on(_metadata, self);
	self->fd = guard_file(self, "rdma", n);
	self->cfd = guard_file(self, "cpu", n);
	ASSERT_LE(0, self->fd);
	ASSERT_LE(0, self->cfd);
	self->map_size = n;
	self->want = map_anon(n);
	self->want_ctl = map_anon(n);
	ASSERT_NE(NULL, self->want);
	ASSERT_NE(NULL, self->want_ctl);
	memset(self->want, GUARD, n);
	memset(self->want_ctl, GUARD, n);
	self->map = mmap(NULL, n, RW, MAP_SHARED, self->fd, 0);
	if (self->map == MAP_FAILED)
		self->map = NULL;
	self->ctl = mmap(NULL, n, RW, MAP_SHARED, self->cfd, 0);
	if (self->ctl == MAP_FAILED)
		self->ctl = NULL;
	ASSERT_NE(NULL, self->map) TH_LOG("mmap: %s", strerror(errno));
	ASSERT_NE(NULL, self->ctl) TH_LOG("mmap: %s", strerror(errno));
	ASSERT_TRUE(tu_same_bytes("file mapping", self->map, self->want, n));
	ASSERT_TRUE(tu_same_bytes("CPU file mapping", self->ctl,
				  self->want_ctl, n));

	self->mr = vu_reg_mr(&self->v, self->map, n,
			     ACC_TARGET | IBV_ACCESS_ON_DEMAND);
	ASSERT_NE(NULL, self->mr) TH_LOG("ODP MR: %s", strerror(errno));
	file_write(_metadata, self, PG + 0x234, 3 * PG + 0x777, 7);
	file_sync(_metadata, self);
	file_write(_metadata, self, 3 * PG - 0x55, 4 * PG + 0x99, 8);
	file_sync(_metadata, self);

	EXPECT_EQ(0, vu_dereg_mr(&self->v, self->mr));
	self->mr = NULL;
	unmap(&self->map, n);
	unmap(&self->ctl, n);
	close(self->fd);
	close(self->cfd);
	self->fd = self->cfd = -1;
	ASSERT_EQ(0, tu_write_long("/proc/sys/vm/drop_caches", 3));
	ASSERT_EQ(0, umount(self->mnt)) TH_LOG("umount: %s", strerror(errno));
	self->mounted = false;
	ext4_mount(_metadata, self);
	ASSERT_TRUE(file_is(self, "rdma", self->want, n));
	ASSERT_TRUE(file_is(self, "cpu", self->want_ctl, n));
}

TEST_HARNESS_MAIN
