// SPDX-License-Identifier: GPL-2.0
/*
 * odp_mappings - ODP MRs over the mappings users really have: shared and
 * private file mappings on a real file system, the huge zero page, the
 * kernel's special mappings ([vvar], [vdso]), /dev/zero, rxe's own queue
 * mmap, an io_uring ring, and memory the kernel takes away because it is
 * (declared) broken (reliability.md §8 #1, #10, #15, #17, #18; issue 12).
 *
 * One RC QP pair on one rxe device: QP a, the peer, posts RDMA WRITE,
 * READ and atomics at the ODP MR under test from pinned local buffers
 * (src, dst; dst is also a remote target for the local-SGE checks). An
 * error completion leaves both QPs in the error state; the next operation
 * runs on a recreated pair. Every case checks the bytes an operation may
 * change (tagged patterns, tu_fill()) and those it must not (the rest of
 * the mapping against a shadow copy, the peer's destination beyond a READ,
 * POISON in the destination of a refused READ), the completion statuses,
 * and that the device faulted the memory in (the MR's page_faults counter
 * rises where it touched untouched memory).
 *
 * file (ext4 on a loop device, made in the fixture, unmounted at teardown):
 *  - remote_write_reaches_disk (§8 #15): RDMA WRITEs into a MAP_SHARED
 *    mapping whose pages are not in the page cache (mincore() says so);
 *    after msync(MS_SYNC), MADV_DONTNEED and fadvise/drop_caches (the
 *    pages leave the cache: they were clean, written back) pread() shows
 *    exactly the written bytes; after fsync, umount and mount, too.
 *  - remote_read_of_pwritten_file: READs of a file written with pwrite()
 *    (part on disk only, part dirty in the page cache; never touched
 *    through the mapping) return the file's bytes; then pwrite()s and
 *    READs of random ranges stay coherent.
 *  - truncate_under_mr: ftruncate() shrinks the file under a resident MR:
 *    remote WRITE, READ and atomic beyond EOF end with REM_ACCESS_ERR, a
 *    local SGE there with LOC_PROT_ERR, a one-packet WRITE across EOF
 *    changes nothing; the part before EOF works; after the file grows
 *    again the old tail reads zeros (CPU, pread, device). Then the same
 *    while a thread shrinks and grows the file during traffic.
 *  - private_readonly_file (§8 #1): a PROT_READ MAP_PRIVATE mapping of an
 *    O_RDONLY file: a REMOTE_READ MR reads the file; a writable ODP MR
 *    over it is accepted by our rxe (odp_mirror checks permissions per
 *    access, as ib_umem_odp does); after a READ cached read-only pages,
 *    WRITE and FETCH_ADD end with REM_ACCESS_ERR, a READ into it as a
 *    local SGE with LOC_PROT_ERR, and the file, its page cache and
 *    another mapping of it are unchanged.
 *
 * mem (special mappings; the poison cases come last):
 *  - huge_zero_page (§8 #1, #17): a READ of never-written THP memory
 *    (the huge zero page, checked through pagemap and kpageflags) returns
 *    zeros; a WRITE lands in a fresh page of this process only: the rest
 *    of the region, another region still on the huge zero page and a
 *    third one read afterwards all read zero; over PROT_READ the WRITE
 *    and FETCH_ADD after a READ end with REM_ACCESS_ERR.
 *  - vvar_vdso (§8 #1, #10): [vvar] is VM_IO|VM_PFNMAP: every READ or
 *    WRITE of it (through a read-only or a writable MR, or across into
 *    [vdso]) ends with REM_ACCESS_ERR and brings no byte. [vdso] is
 *    ordinary read-only memory to the mirror: a READ returns what the CPU
 *    sees; a WRITE or FETCH_ADD after it ends with REM_ACCESS_ERR and the
 *    vDSO (shared by every process) is unchanged.
 *  - dev_zero_shared (§8 #17): a MAP_SHARED /dev/zero mapping (shmem)
 *    works like memory: zeros first, random WRITEs/READs, coherence with
 *    a fork child that shares it, data kept over MADV_DONTNEED, zeros
 *    after MADV_REMOVE.
 *  - rxe_queue_mmap, io_uring_ring (§8 #17): an ODP MR over rxe's CQ ring
 *    (a mapping of /dev/infiniband/uverbs*) and over an io_uring SQ ring.
 *    Both are VM_MIXEDMAP mappings of ordinary kernel pages that the
 *    process may read and write itself: our rxe accepts them. A READ must
 *    return what the CPU sees, a WRITE (into bytes no one uses: the CQ
 *    ring's pad_1, the SQ index array) must land as a CPU store would, or
 *    either must end with REM_ACCESS_ERR and change nothing; no oops.
 *
 * mem, last in the file (the pages they poison stay poisoned until the
 * guest powers off; the kernel has no general unpoison):
 *  - soft_offline (§8 #18): MADV_SOFT_OFFLINE of a page the device had
 *    faulted in migrates it (its pfn changes), page_invalidations rises,
 *    a READ returns the same bytes and a WRITE lands in the new page.
 *  - hwpoison (§8 #18): MADV_HWPOISON of a page the device had written
 *    (the CPU never touches it afterwards; the injection itself sends the
 *    process one SIGBUS for the page, any other SIGBUS fails the case):
 *    READ, WRITE and FETCH_ADD of it end with REM_ACCESS_ERR and bring no
 *    byte, a local SGE on it with LOC_PROT_ERR; its neighbours work
 *    byte-exact. memory_failure() logs "Memory failure: 0x...: recovery
 *    action for dirty LRU page: Recovered", which is expected.
 *
 * Iterations: tu_rounds() (RXE_ODP_STRESS=1: 200 rounds), random choices
 * from tu_seed(). Needs root in the guest (mount, drop_caches, pagemap
 * pfns, kpageflags, MADV_HWPOISON). Environment skips: no loop/ext4
 * module, mkfs.ext4 or loop mount failing, THP or its huge zero page
 * disabled, no [vvar]/[vdso], io_uring disabled, no memory failure
 * support. A missing ODP capability of our rxe is a failure.
 *
 * Device: RXE_ODP_DEV (default rxe0), RXE_ODP_GID_IDX (default 1).
 *
 * The huge zero page, [vdso] and the rings: a READ of them is no leak
 * (the process reads them itself); what must never happen is a write
 * into a page that is not this process's to write.
 *
 * Mutation record (each case broken once on purpose in a scratch copy of
 * this file, run in the guest on our rxe, seen failing, reverted):
 *  - remote_write_reaches_disk: the file mapped MAP_PRIVATE: "file after
 *    msync: 21476 of 131072 bytes differ" (the WRITE stayed in private
 *    copies). A pinned MR instead of ODP: not registrable over a shared
 *    ext4 mapping (no long-term pins there), the case crashed on it.
 *  - remote_read_of_pwritten_file: the shadow misses the pwrite() of the
 *    second half: "READ of the whole file: byte 65536 is 0x48, want 0x2e".
 *  - truncate_under_mr: the file shrunk one page less than the test
 *    believes: the one-packet WRITE across "EOF" succeeds (want
 *    REM_ACCESS_ERR).
 *  - private_readonly_file: the private mapping PROT_READ | PROT_WRITE:
 *    the WRITE after the READ succeeds (COW), want REM_ACCESS_ERR.
 *  - huge_zero_page: B left writable: its WRITE after READ succeeds.
 *  - vvar_vdso: the vDSO checked against a copy one bit off: "byte 9 is
 *    0x00, want 0x01".
 *  - dev_zero_shared: /dev/zero mapped MAP_PRIVATE: "READ of the child's
 *    stores: 4084 of 12288 bytes differ".
 *  - rxe_queue_mmap: the copy not updated after the WRITE that landed:
 *    "rxe CQ ring: byte 16 is 0xb6, want 0x00".
 *  - io_uring_ring: the READ checked against the ring 4 bytes on: "byte
 *    12 is 0x00, want 0x03".
 *  - soft_offline: the neighbour offlined instead: "the page did not
 *    move" (pfn unchanged).
 *  - hwpoison: the neighbour poisoned instead: the injection's SIGBUS
 *    names another page than the one the case then expects refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/io_uring.h>
#include <linux/kernel-page-flags.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "verbs_util.h"
#include "test_util.h"

#ifndef MADV_SOFT_OFFLINE
#define MADV_SOFT_OFFLINE	101	/* uapi asm-generic/mman-common.h */
#endif

#define RW		(PROT_READ | PROT_WRITE)
#define ACC_ALL		(IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | \
			 IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_ATOMIC)
#define WRITE		IBV_WR_RDMA_WRITE
#define READ		IBV_WR_RDMA_READ
#define FETCH_ADD	IBV_WR_ATOMIC_FETCH_AND_ADD
#define POISON		TU_POISON
#define HUGE_SZ		(2UL << 20)
#define LOCAL_SIZE	(HUGE_SZ + (64UL << 10))	/* src and dst, each */
#define IMG_BYTES	(64L << 20)	/* the ext4 image */
#define FILE_PAGES	32
#define MAX_MAPS	12
#define MAX_MRS		8
#define TAIL_BYTE	0x77	/* WRITEs into a file's racing tail */

#define OK		IBV_WC_SUCCESS
#define REM_ERR		IBV_WC_REM_ACCESS_ERR
#define LOC_ERR		IBV_WC_LOC_PROT_ERR

/* The verbs side of every fixture, and what a case maps and registers. */
struct env {
	struct vu_config	cfg;
	struct vu_ctx		v;
	struct vu_qp_pair	qps;
	bool			failed;		/* an error completion on qps */
	size_t			pg;
	uint8_t			*src, *dst;	/* the peer's, pinned */
	struct ibv_mr		*smr, *dmr;
	struct ibv_mr		*mrs[MAX_MRS];
	void			*map[MAX_MAPS];
	size_t			map_len[MAX_MAPS];
	struct ibv_cq		*cq;		/* rxe_queue_mmap's */
	int			fd;		/* a case's file, or -1 */
};

/* ---- verbs ------------------------------------------------------------- */

/*
 * Open the device, require RC ODP, connect the pair, map and register the
 * peer's buffers. Skips (and returns) when the device is not there or,
 * on a stock rxe, lacks ODP: the caller checks _metadata->exit_code.
 */
static void env_open(struct __test_metadata *_metadata, struct env *e)
{
	const uint32_t need = IBV_ODP_SUPPORT_WRITE | IBV_ODP_SUPPORT_READ |
			      IBV_ODP_SUPPORT_ATOMIC | IBV_ODP_SUPPORT_SEND;
	struct ibv_device_attr_ex ax;
	uint32_t rc;

	e->fd = -1;
	e->pg = (size_t)sysconf(_SC_PAGESIZE);
	TU_OPEN_QUERY(&e->cfg, &e->v, &ax);
	rc = ax.odp_caps.per_transport_caps.rc_odp_caps;
	TU_REQUIRE_CAP(ax.odp_caps.general_caps & IBV_ODP_SUPPORT,
		       "%s has no ODP support", e->cfg.dev_name);
	TU_REQUIRE_CAP((rc & need) == need, "%s RC ODP caps 0x%x lack 0x%x",
		       e->cfg.dev_name, rc, need & ~rc);
	ASSERT_EQ(0, vu_qp_pair_create(&e->v, &e->qps));
	e->src = mmap(NULL, LOCAL_SIZE, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	e->dst = mmap(NULL, LOCAL_SIZE, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, e->src);
	ASSERT_NE(MAP_FAILED, e->dst);
	e->smr = vu_reg_mr(&e->v, e->src, LOCAL_SIZE,
			   IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ);
	e->dmr = vu_reg_mr(&e->v, e->dst, LOCAL_SIZE, ACC_ALL);
	ASSERT_NE(NULL, e->smr) TH_LOG("pinned MR: %s", strerror(errno));
	ASSERT_NE(NULL, e->dmr) TH_LOG("pinned MR: %s", strerror(errno));
}

static void env_close(struct __test_metadata *_metadata, struct env *e)
{
	int i;

	EXPECT_EQ(0, vu_qp_pair_destroy(&e->v, &e->qps));
	for (i = 0; i < MAX_MRS; i++)
		EXPECT_EQ(0, vu_dereg_mr(&e->v, e->mrs[i]));
	EXPECT_EQ(0, vu_dereg_mr(&e->v, e->smr));
	EXPECT_EQ(0, vu_dereg_mr(&e->v, e->dmr));
	if (e->cq)
		EXPECT_EQ(0, ibv_destroy_cq(e->cq));
	for (i = 0; i < MAX_MAPS; i++)
		if (e->map[i])
			EXPECT_EQ(0, munmap(e->map[i], e->map_len[i]));
	munmap(e->src, LOCAL_SIZE);
	munmap(e->dst, LOCAL_SIZE);
	if (e->fd >= 0)
		close(e->fd);
	EXPECT_EQ(0, vu_close(&e->v));
}

/* Unmap @p (of @n bytes) at teardown; NULL (MAP_FAILED) fails the case. */
static void *keep_map(struct __test_metadata *_metadata, struct env *e,
		      void *p, size_t n)
{
	int i;

	ASSERT_NE(MAP_FAILED, p) TH_LOG("mmap(%zu): %s", n, strerror(errno));
	for (i = 0; i < MAX_MAPS && e->map[i]; i++)
		;
	ASSERT_LT(i, MAX_MAPS);
	e->map[i] = p;
	e->map_len[i] = n;
	return p;
}

/* Unmap @p now (it was kept by keep_map()). */
static void drop_map(struct __test_metadata *_metadata, struct env *e,
		     void *p)
{
	int i;

	for (i = 0; i < MAX_MAPS && e->map[i] != p; i++)
		;
	ASSERT_LT(i, MAX_MAPS);
	ASSERT_EQ(0, munmap(p, e->map_len[i]));
	e->map[i] = NULL;
}

static uint8_t *anon(struct __test_metadata *_metadata, struct env *e,
		     size_t n)
{
	return keep_map(_metadata, e, mmap(NULL, n, RW, MAP_PRIVATE |
					   MAP_ANONYMOUS, -1, 0), n);
}

/* An ODP MR, or NULL with errno; deregistered at teardown. */
static struct ibv_mr *reg_try(struct __test_metadata *_metadata,
			      struct env *e, void *addr, size_t len,
			      unsigned int access)
{
	struct ibv_mr *mr = ibv_reg_mr(e->v.pd, addr, len,
				       access | IBV_ACCESS_ON_DEMAND);
	int i;

	if (!mr)
		return NULL;
	for (i = 0; i < MAX_MRS && e->mrs[i]; i++)
		;
	ASSERT_LT(i, MAX_MRS);
	e->mrs[i] = mr;
	return mr;
}

static struct ibv_mr *reg(struct __test_metadata *_metadata, struct env *e,
			  void *addr, size_t len, unsigned int access)
{
	struct ibv_mr *mr = reg_try(_metadata, e, addr, len, access);

	ASSERT_NE(NULL, mr) TH_LOG("ODP MR over %p + %zu (access 0x%x): %s",
				   addr, len, access, strerror(errno));
	return mr;
}

static void dereg(struct __test_metadata *_metadata, struct env *e,
		  struct ibv_mr *mr)
{
	int i;

	for (i = 0; i < MAX_MRS && e->mrs[i] != mr; i++)
		;
	ASSERT_LT(i, MAX_MRS);
	e->mrs[i] = NULL;
	ASSERT_EQ(0, vu_dereg_mr(&e->v, mr));
}

/* A fresh QP pair after an error completion. */
static void renew(struct __test_metadata *_metadata, struct env *e)
{
	if (!e->failed)
		return;
	ASSERT_EQ(0, vu_qp_pair_destroy(&e->v, &e->qps));
	ASSERT_EQ(0, vu_qp_pair_create(&e->v, &e->qps));
	e->failed = false;
}

/*
 * One WRITE or READ by the peer: local [@l, +@len) with @lkey, remote
 * @raddr of @rkey. Returns its status (-1: none), logged unless OK.
 */
static int xfer(struct __test_metadata *_metadata, struct env *e,
		enum ibv_wr_opcode op, void *l, uint32_t len, uint32_t lkey,
		const void *raddr, uint32_t rkey)
{
	int st;

	renew(_metadata, e);
	st = tu_xfer(&e->v, &e->qps.a, op, l, len, lkey, (uintptr_t)raddr,
		     rkey);
	if (st != OK) {
		e->failed = true;
		ksft_print_msg("%s of %u bytes at %p: %s (%d)\n",
			       op == WRITE ? "WRITE" : "READ", len, raddr,
			       st < 0 ? "no completion" :
			       ibv_wc_status_str((enum ibv_wc_status)st), st);
	}
	return st;
}

/* A FETCH_ADD of 1 at @raddr, its result into dst; its status. */
static int fadd(struct __test_metadata *_metadata, struct env *e,
		const void *raddr, uint32_t rkey)
{
	int st;

	renew(_metadata, e);
	st = tu_atomic(&e->v, &e->qps.a, FETCH_ADD,
		       (uint64_t *)(e->dst + LOCAL_SIZE - 8), e->dmr->lkey,
		       (uintptr_t)raddr, rkey, 1, 0);
	if (st != OK)
		e->failed = true;
	return st;
}

/* The peer WRITEs @len bytes of pattern @seed at @at; they land. */
static void write_ok(struct __test_metadata *_metadata, struct env *e,
		     struct ibv_mr *mr, uint8_t *at, size_t len,
		     unsigned int seed)
{
	tu_fill(e->src, len, seed);
	TU_ASSERT_OK(xfer(_metadata, e, WRITE, e->src, len, e->smr->lkey, at,
			  mr->rkey));
}

/*
 * The peer READs @len bytes at @at into dst (POISON around it); they must
 * be @want's, and no byte after them may change.
 */
static void read_same(struct __test_metadata *_metadata, struct env *e,
		      struct ibv_mr *mr, const uint8_t *at, size_t len,
		      const uint8_t *want, const char *what)
{
	memset(e->dst, POISON, len + 64);
	TU_ASSERT_OK(xfer(_metadata, e, READ, e->dst, len, e->dmr->lkey, at,
			  mr->rkey));
	ASSERT_TRUE(tu_same_bytes(what, e->dst, want, len));
	ASSERT_TRUE(tu_all_bytes("past the READ", e->dst + len, POISON, 64));
}

/* The peer READs @len bytes at @at; they must all be zero. */
static void read_zeros(struct __test_metadata *_metadata, struct env *e,
		       struct ibv_mr *mr, const uint8_t *at, size_t len,
		       const char *what)
{
	memset(e->dst, POISON, len + 64);
	TU_ASSERT_OK(xfer(_metadata, e, READ, e->dst, len, e->dmr->lkey, at,
			  mr->rkey));
	ASSERT_TRUE(tu_all_bytes(what, e->dst, 0, len));
	ASSERT_TRUE(tu_all_bytes("past the READ", e->dst + len, POISON, 64));
}

/* A READ of @len bytes at @at that must end with REM_ACCESS_ERR, bringing nothing. */
static void read_refused(struct __test_metadata *_metadata, struct env *e,
			 struct ibv_mr *mr, const void *at, size_t len,
			 const char *what)
{
	memset(e->dst, POISON, len + 64);
	TU_ASSERT_WC(REM_ERR, xfer(_metadata, e, READ, e->dst, len,
				   e->dmr->lkey, at, mr->rkey));
	ASSERT_TRUE(tu_all_bytes(what, e->dst, POISON, len + 64));
}

/* The MR's counter @name (page_faults, page_invalidations). */
static long long counter(struct ibv_mr *mr, const char *name)
{
	return tu_mr_counter(mr->rkey, name);
}

#define ASSERT_ROSE(mr, name, before, when)				\
	do {								\
		long long __now = counter(mr, name);			\
		ASSERT_LT(before, __now)				\
			TH_LOG("%s: %s did not rise (%lld, then %lld)",	\
			       when, name, (long long)(before), __now);	\
	} while (0)

/* ---- pages: residency, pfns, flags --------------------------------------- */

/* Pages of [@p, +@n) in the page cache (of a file mapping). */
static size_t resident(const void *p, size_t n, size_t pg)
{
	unsigned char vec[FILE_PAGES];
	size_t i, r = 0;

	if (n / pg > FILE_PAGES || mincore((void *)p, n, vec))
		return SIZE_MAX;
	for (i = 0; i < n / pg; i++)
		r += vec[i] & 1;
	return r;
}

/* The 64-bit word @index of /proc file @path; 0 if it cannot be read. */
static uint64_t proc_word(const char *path, uint64_t index)
{
	uint64_t w = 0;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return 0;
	if (pread(fd, &w, sizeof(w), (off_t)(index * sizeof(w))) != sizeof(w))
		w = 0;
	close(fd);
	return w;
}

/* The pfn mapped at @addr (pagemap; root sees pfns), 0 if none. */
static uint64_t pfn_at(const void *addr, size_t pg)
{
	uint64_t pm = proc_word("/proc/self/pagemap", (uintptr_t)addr / pg);

	return pm >> 63 ? pm & ((1ULL << 55) - 1) : 0;
}

static bool zero_pfn(uint64_t pfn)
{
	return pfn && proc_word("/proc/kpageflags", pfn) >> KPF_ZERO_PAGE & 1;
}

/* The first mapping of /proc/self/maps whose line contains @name. */
static bool find_mapping(const char *name, uintptr_t *lo, uintptr_t *hi)
{
	char line[512];
	bool found = false;
	FILE *f = fopen("/proc/self/maps", "r");

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, name) &&
			sscanf(line, "%" SCNxPTR "-%" SCNxPTR, lo, hi) == 2;
	fclose(f);
	return found;
}

/* ---- files -------------------------------------------------------------- */

/* Run @cmd with system(); true when it exited 0 (else logged). */
static bool run(const char *cmd)
{
	int st = system(cmd);

	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st)) {
		ksft_print_msg("'%s' failed (status 0x%x)\n", cmd, st);
		return false;
	}
	return true;
}

/* @n bytes of file @fd are @want's, and the file ends there. */
static bool file_is(const char *what, int fd, const uint8_t *want, size_t n)
{
	uint8_t *got = malloc(n + 1);
	ssize_t r = got ? pread(fd, got, n + 1, 0) : -1;
	bool ok = r == (ssize_t)n && tu_same_bytes(what, got, want, n);

	if (r != (ssize_t)n)
		ksft_print_msg("%s: pread gave %zd of %zu bytes\n", what, r, n);
	free(got);
	return ok;
}

/*
 * Take the file's pages out of the page cache: unmap them from @map
 * (MADV_DONTNEED), fadvise(DONTNEED), drop_caches. Clean pages go; a
 * dirty one would stay, and fails the case.
 */
static void evict(struct __test_metadata *_metadata, struct env *e, int fd,
		  uint8_t *map, size_t n, const char *when)
{
	size_t r;

	ASSERT_EQ(0, madvise(map, n, MADV_DONTNEED));
	ASSERT_EQ(0, posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED));
	ASSERT_EQ(0, tu_write_long("/proc/sys/vm/drop_caches", 1));
	r = resident(map, n, e->pg);
	ASSERT_EQ(0, r) TH_LOG("%s: %zu pages still in the page cache", when,
			       r);
}

FIXTURE(file) {
	struct env	e;
	char		dir[64];	/* the image and the mount point */
	char		img[96];
	char		mnt[96];
	bool		mounted;
};

/* Undo what file_fs() made so far. */
static void file_fs_off(FIXTURE_DATA(file) *self)
{
	const char *made[] = { self->img, self->mnt, self->dir };
	size_t i;

	if (self->mounted && umount(self->mnt))
		ksft_print_msg("umount %s: %s\n", self->mnt, strerror(errno));
	else
		self->mounted = false;
	for (i = 0; i < sizeof(made) / sizeof(made[0]); i++)
		if (made[i][0] && remove(made[i]))
			ksft_print_msg("remove %s: %s\n", made[i],
				       strerror(errno));
}

/* Mount the image (again); false with a log line if it fails. */
static bool file_mount(FIXTURE_DATA(file) *self)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "mount -t ext4 -o loop %s %s", self->img,
		 self->mnt);
	self->mounted = run(cmd);
	return self->mounted;
}

/*
 * ext4 (4 KiB blocks) on a loop device over a 64 MiB image in /tmp.
 * Returns NULL, or why not (the fixture skips: the environment lacks it).
 */
static const char *file_fs(FIXTURE_DATA(file) *self)
{
	char cmd[256];
	int fd;

	if (!run("modprobe loop && modprobe ext4"))
		return "no loop or ext4 module (modprobe loop ext4 failed)";
	strcpy(self->dir, "/tmp/odp_mappings.XXXXXX");
	if (!mkdtemp(self->dir)) {
		self->dir[0] = 0;
		return "cannot make a directory in /tmp";
	}
	snprintf(self->img, sizeof(self->img), "%s/ext4.img", self->dir);
	snprintf(self->mnt, sizeof(self->mnt), "%s/mnt", self->dir);
	fd = open(self->img, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || ftruncate(fd, IMG_BYTES) || close(fd))
		return "cannot make the 64 MiB image in /tmp";
	snprintf(cmd, sizeof(cmd), "mkfs.ext4 -q -F -b 4096 %s", self->img);
	if (!run(cmd))
		return "mkfs.ext4 failed (no e2fsprogs?)";
	if (mkdir(self->mnt, 0700))
		return "cannot make the mount point";
	if (!file_mount(self))
		return "cannot mount ext4 on a loop device";
	return NULL;
}

FIXTURE_SETUP(file)
{
	const char *why;

	env_open(_metadata, &self->e);
	if (_metadata->exit_code)
		return;
	why = file_fs(self);
	if (why) {
		file_fs_off(self);
		SKIP(return, "%s", why);
	}
}

FIXTURE_TEARDOWN(file)
{
	env_close(_metadata, &self->e);
	if (self->mounted)
		EXPECT_EQ(0, umount(self->mnt)) TH_LOG("umount %s: %s",
						       self->mnt,
						       strerror(errno));
	self->mounted = false;
	file_fs_off(self);
}

/*
 * The file @name of @n bytes of pattern @seed (@want gets them), written
 * with pwrite() and fsync()ed; its fd, also in e->fd.
 */
static int new_file(struct __test_metadata *_metadata,
		    FIXTURE_DATA(file) *self, const char *name, size_t n,
		    uint8_t *want, unsigned int seed)
{
	char path[160];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", self->mnt, name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	ASSERT_LE(0, fd) TH_LOG("%s: %s", path, strerror(errno));
	self->e.fd = fd;
	tu_fill(want, n, seed);
	ASSERT_EQ((ssize_t)n, pwrite(fd, want, n, 0));
	ASSERT_EQ(0, fsync(fd));
	return fd;
}

/* A random range of [0, @n): *@off, and its length, at most @max. */
static size_t pick(unsigned int *rng, size_t n, size_t max, size_t *off)
{
	size_t len;

	*off = rand_r(rng) % (n - 1);
	len = 1 + rand_r(rng) % (n - *off);
	return len < max ? len : max;
}

/*
 * RDMA WRITEs into a MAP_SHARED mapping of an ext4 file whose pages are
 * not in the page cache reach the disk: after msync the pages are clean
 * and leave the cache, and pread() (from the disk) shows every byte;
 * after fsync, umount and mount, too.
 */
TEST_F_TIMEOUT(file, remote_write_reaches_disk, 3600)
{
	struct env *e = &self->e;
	size_t pg = e->pg, n = FILE_PAGES * pg, off, len;
	long r, rounds = tu_rounds(3, 200);
	unsigned int rng = tu_seed();
	uint8_t *want = anon(_metadata, e, n), *map;
	struct ibv_mr *mr;
	long long before;
	char path[160];
	int fd;

	fd = new_file(_metadata, self, "written", n, want, 1);
	map = keep_map(_metadata, e, mmap(NULL, n, RW, MAP_SHARED, fd, 0), n);
	mr = reg(_metadata, e, map, n, ACC_ALL);
	for (r = 0; r < rounds; r++) {
		if (r == 0) {
			off = pg + 0x123;	/* six pages, unaligned ends */
			len = 5 * pg + 0x456;
		} else {
			len = pick(&rng, n, LOCAL_SIZE, &off);
		}
		evict(_metadata, e, fd, map, n, "before the WRITE");
		before = counter(mr, "page_faults");
		write_ok(_metadata, e, mr, map + off, len, 100 + r);
		memcpy(want + off, e->src, len);
		ASSERT_ROSE(mr, "page_faults", before, "WRITE into the file");
		ASSERT_TRUE(tu_same_bytes("mapping after the WRITE", map, want,
					  n));
		ASSERT_EQ(0, msync(map, n, MS_SYNC));
		ASSERT_TRUE(file_is("file after msync", fd, want, n));
		evict(_metadata, e, fd, map, n, "after msync");
		ASSERT_TRUE(file_is("file read from the disk", fd, want, n));
	}

	dereg(_metadata, e, mr);
	drop_map(_metadata, e, map);
	ASSERT_EQ(0, fsync(fd));
	close(fd);
	e->fd = -1;
	ASSERT_EQ(0, umount(self->mnt)) TH_LOG("umount: %s", strerror(errno));
	self->mounted = false;
	ASSERT_TRUE(file_mount(self));
	snprintf(path, sizeof(path), "%s/written", self->mnt);
	e->fd = open(path, O_RDONLY);
	ASSERT_LE(0, e->fd) TH_LOG("%s: %s", path, strerror(errno));
	ASSERT_TRUE(file_is("file after umount and mount", e->fd, want, n));
}

/*
 * READs of a file that pwrite() wrote, never touched through the
 * mapping: the first half only on the disk (evicted), the second half
 * dirty in the page cache. Then pwrite() and READ random ranges.
 */
TEST_F_TIMEOUT(file, remote_read_of_pwritten_file, 3600)
{
	struct env *e = &self->e;
	size_t pg = e->pg, n = FILE_PAGES * pg, half = n / 2, off, len;
	long r, rounds = tu_rounds(4, 200);
	unsigned int rng = tu_seed();
	uint8_t *want = anon(_metadata, e, n), *map;
	struct ibv_mr *mr;
	long long before;
	int fd;

	fd = new_file(_metadata, self, "read", n, want, 2);
	map = keep_map(_metadata, e, mmap(NULL, n, RW, MAP_SHARED, fd, 0), n);
	mr = reg(_metadata, e, map, n, ACC_ALL);
	evict(_metadata, e, fd, map, n, "before the READ");
	tu_fill(want + half, half, 3);
	ASSERT_EQ((ssize_t)half, pwrite(fd, want + half, half, half));

	before = counter(mr, "page_faults");
	read_same(_metadata, e, mr, map, n, want, "READ of the whole file");
	ASSERT_ROSE(mr, "page_faults", before, "READ of the file");
	read_same(_metadata, e, mr, map + half - 0x321, 0x777,
		  want + half - 0x321, "READ across the halves");

	for (r = 0; r < rounds; r++) {
		len = pick(&rng, n, n, &off);
		tu_fill(want + off, len, 200 + r);
		ASSERT_EQ((ssize_t)len, pwrite(fd, want + off, len, off));
		if (r % 2) {
			ASSERT_EQ(0, fsync(fd));
			evict(_metadata, e, fd, map, n, "after fsync");
		}
		len = pick(&rng, n, n, &off);
		read_same(_metadata, e, mr, map + off, len, want + off,
			  "READ after pwrite");
	}
	ASSERT_TRUE(tu_same_bytes("the mapping", map, want, n));
	ASSERT_TRUE(file_is("the file", fd, want, n));
}

/* Shrinks the file to @keep bytes and grows it back, until @stop. */
struct truncator {
	int		fd;
	off_t		keep, full;
	volatile bool	stop;
	unsigned long	cycles;
	int		err;
};

static void *truncate_loop(void *arg)
{
	struct truncator *t = arg;

	while (!t->stop && !t->err) {
		if (ftruncate(t->fd, t->keep) || ftruncate(t->fd, t->full))
			t->err = errno;
		t->cycles++;
	}
	return NULL;
}

/*
 * ftruncate() shrinks a MAP_SHARED file under a resident ODP MR (to a
 * page boundary, @keep): every access beyond EOF fails and changes
 * nothing, the part before EOF works; grown again, the old tail reads
 * zeros. Then the same with a thread shrinking and growing the file
 * while WRITEs go before @keep and READs and WRITEs beyond it.
 */
TEST_F_TIMEOUT(file, truncate_under_mr, 3600)
{
	struct env *e = &self->e;
	size_t pg = e->pg, n = FILE_PAGES * pg, keep = n / 2, tail = n - keep;
	size_t off, len, i;
	long r, rounds = tu_rounds(16, 400), oks = 0, errs = 0;
	unsigned int rng = tu_seed();
	uint8_t *want = anon(_metadata, e, n), *map;
	struct truncator t = { 0 };
	struct ibv_mr *mr;
	pthread_t thread;
	int fd, st;

	fd = new_file(_metadata, self, "truncated", n, want, 4);
	map = keep_map(_metadata, e, mmap(NULL, n, RW, MAP_SHARED, fd, 0), n);
	mr = reg(_metadata, e, map, n, ACC_ALL);
	/* every page resident and writable in the mirror */
	write_ok(_metadata, e, mr, map, n, 5);
	memcpy(want, e->src, n);
	ASSERT_TRUE(tu_same_bytes("after the first WRITE", map, want, n));

	ASSERT_EQ(0, ftruncate(fd, keep));
	memset(want + keep, 0, tail);
	tu_fill(e->src, n, 6);
	TU_ASSERT_WC(REM_ERR, xfer(_metadata, e, WRITE, e->src, 100,
				   e->smr->lkey, map + keep + 2 * pg + 10,
				   mr->rkey));
	TU_ASSERT_WC(REM_ERR, xfer(_metadata, e, WRITE, e->src, tail,
				   e->smr->lkey, map + keep, mr->rkey));
	/* one packet across EOF: all or nothing */
	TU_ASSERT_WC(REM_ERR, xfer(_metadata, e, WRITE, e->src, 256,
				   e->smr->lkey, map + keep - 128, mr->rkey));
	read_refused(_metadata, e, mr, map + keep + 5 * pg, 64,
		     "READ beyond EOF");
	TU_ASSERT_WC(REM_ERR, fadd(_metadata, e, map + n - 8, mr->rkey));
	/* local SGEs beyond EOF: source of a WRITE, destination of a READ */
	memset(e->dst, POISON, pg);
	TU_ASSERT_WC(LOC_ERR, xfer(_metadata, e, WRITE, map + keep + pg, 64,
				   mr->lkey, e->dst, e->dmr->rkey));
	ASSERT_TRUE(tu_all_bytes("target of a WRITE from beyond EOF", e->dst,
				 POISON, pg));
	TU_ASSERT_WC(LOC_ERR, xfer(_metadata, e, READ, map + keep + pg, 64,
				   mr->lkey, e->src, e->smr->rkey));
	ASSERT_TRUE(file_is("file after the refusals", fd, want, keep));

	/* before EOF all works */
	write_ok(_metadata, e, mr, map + pg + 7, 3 * pg, 7);
	memcpy(want + pg + 7, e->src, 3 * pg);
	read_same(_metadata, e, mr, map, keep, want, "READ up to EOF");
	ASSERT_TRUE(tu_same_bytes("mapping up to EOF", map, want, keep));

	/* grown again: nothing written beyond EOF shows */
	ASSERT_EQ(0, ftruncate(fd, n));
	read_zeros(_metadata, e, mr, map + keep, tail, "READ of the regrown tail");
	ASSERT_TRUE(tu_same_bytes("mapping after regrowth", map, want, n));
	ASSERT_TRUE(file_is("file after regrowth", fd, want, n));

	/* during traffic */
	t.fd = fd;
	t.keep = keep;
	t.full = n;
	ASSERT_EQ(0, pthread_create(&thread, NULL, truncate_loop, &t));
	for (r = 0; r < rounds && !t.err; r++) {
		len = pick(&rng, keep, pg, &off);
		tu_fill(e->src, len, 300 + r);
		st = xfer(_metadata, e, WRITE, e->src, len, e->smr->lkey,
			  map + off, mr->rkey);
		EXPECT_EQ(OK, st) TH_LOG("WRITE before EOF during truncation");
		if (st == OK)
			memcpy(want + off, e->src, len);
		len = pick(&rng, tail, pg, &off);
		memset(e->dst, POISON, len);
		memset(e->src, TAIL_BYTE, len);
		st = xfer(_metadata, e, r % 2 ? WRITE : READ, r % 2 ? e->src :
			  e->dst, len, r % 2 ? e->smr->lkey : e->dmr->lkey,
			  map + keep + off, mr->rkey);
		ASSERT_TRUE(st == OK || st == REM_ERR) TH_LOG("status %d", st);
		st == OK ? oks++ : errs++;
		/*
		 * The tail holds zeros or what a WRITE there stored while
		 * the file was long; a refused READ may bring a part.
		 */
		for (i = 0; !(r % 2) && i < len; i++)
			ASSERT_TRUE(e->dst[i] == 0 || e->dst[i] == TAIL_BYTE ||
				    (st != OK && e->dst[i] == POISON))
				TH_LOG("READ beyond keep: byte %zu is 0x%02x", i,
				       e->dst[i]);
	}
	t.stop = true;
	ASSERT_EQ(0, pthread_join(thread, NULL));
	ASSERT_EQ(0, t.err) TH_LOG("ftruncate: %s", strerror(t.err));
	ksft_print_msg("%lu truncations during %ld rounds; beyond keep: %ld ok, %ld refused\n",
		       t.cycles, r, oks, errs);
	ASSERT_EQ(0, ftruncate(fd, keep));
	ASSERT_EQ(0, ftruncate(fd, n));
	ASSERT_TRUE(tu_same_bytes("mapping after the race", map, want, n));
	ASSERT_TRUE(file_is("file after the race", fd, want, n));
	read_same(_metadata, e, mr, map, n, want, "READ after the race");
}

/*
 * A PROT_READ MAP_PRIVATE mapping of a file opened O_RDONLY: a
 * REMOTE_READ MR reads it; a writable ODP MR over it is accepted, and
 * after a READ cached read-only pages its WRITEs and atomics fail: the
 * file, its page cache and another mapping of it never change.
 */
TEST_F_TIMEOUT(file, private_readonly_file, 300)
{
	struct env *e = &self->e;
	size_t pg = e->pg, n = 8 * pg;
	uint8_t *want = anon(_metadata, e, n), *map, *other;
	struct ibv_mr *ro, *rw;
	long long before;
	char path[160];
	int fd;

	fd = new_file(_metadata, self, "readonly", n, want, 8);
	close(fd);
	snprintf(path, sizeof(path), "%s/readonly", self->mnt);
	ASSERT_EQ(0, chmod(path, 0444));
	fd = e->fd = open(path, O_RDONLY);
	ASSERT_LE(0, fd);
	map = keep_map(_metadata, e, mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd,
					  0), n);
	other = keep_map(_metadata, e, mmap(NULL, n, PROT_READ, MAP_SHARED, fd,
					    0), n);
	evict(_metadata, e, fd, other, n, "before the READ");

	ro = reg(_metadata, e, map, n, IBV_ACCESS_REMOTE_READ);
	before = counter(ro, "page_faults");
	read_same(_metadata, e, ro, map + 0x10, n - 0x20, want + 0x10,
		  "READ through a REMOTE_READ MR");
	ASSERT_ROSE(ro, "page_faults", before, "READ of the file");
	tu_fill(e->src, n, 9);
	TU_ASSERT_WC(REM_ERR, xfer(_metadata, e, WRITE, e->src, 64,
				   e->smr->lkey, map, ro->rkey));

	rw = reg_try(_metadata, e, map, n, ACC_ALL);
	if (!rw) {
		ksft_print_msg("writable ODP MR over a PROT_READ private file mapping refused: %s\n",
			       strerror(errno));
		ASSERT_FALSE(tu_rxe_is_ours())
			TH_LOG("our rxe checks permissions per access, not at registration");
	} else {
		ksft_print_msg("writable ODP MR over a PROT_READ private file mapping accepted\n");
		read_same(_metadata, e, rw, map, n, want, "READ through the writable MR");
		TU_ASSERT_WC(REM_ERR, xfer(_metadata, e, WRITE, e->src, pg + 100,
					   e->smr->lkey, map + pg - 50,
					   rw->rkey));
		TU_ASSERT_WC(REM_ERR, fadd(_metadata, e, map + 2 * pg, rw->rkey));
		/* a local SGE on it as the destination of a READ */
		TU_ASSERT_WC(LOC_ERR, xfer(_metadata, e, READ, map + 3 * pg, 128,
					   rw->lkey, e->src, e->smr->rkey));
		read_same(_metadata, e, rw, map, n, want,
			  "READ after the refused WRITEs");
	}
	ASSERT_TRUE(tu_same_bytes("private mapping", map, want, n));
	ASSERT_TRUE(tu_same_bytes("shared mapping", other, want, n));
	ASSERT_TRUE(file_is("file (page cache)", fd, want, n));
	ASSERT_EQ(0, madvise(map, n, MADV_DONTNEED));
	evict(_metadata, e, fd, other, n, "after the WRITEs");
	ASSERT_TRUE(file_is("file (disk)", fd, want, n));
}

/* ---- special mappings, and memory declared broken (poison, below) ---- */

FIXTURE(mem) {
	struct env	e;
};

FIXTURE_SETUP(mem)
{
	env_open(_metadata, &self->e);
}

FIXTURE_TEARDOWN(mem)
{
	env_close(_metadata, &self->e);
}

/* A 2 MiB-aligned region of @n bytes (a multiple of 2 MiB). */
static uint8_t *huge_aligned(struct __test_metadata *_metadata,
			     struct env *e, size_t n)
{
	uint8_t *p = anon(_metadata, e, n + HUGE_SZ);

	return (uint8_t *)(((uintptr_t)p + HUGE_SZ - 1) & ~(HUGE_SZ - 1));
}

/* Does @p map the huge zero page @zpfn, whole (pfns in a row)? */
static bool on_huge_zero(const uint8_t *p, uint64_t zpfn, size_t pg)
{
	return pfn_at(p, pg) == zpfn && pfn_at(p + HUGE_SZ - pg, pg) ==
	       zpfn + HUGE_SZ / pg - 1;
}

/*
 * Three 2 MiB regions A, B, C of never-written THP memory. A and B read
 * by the CPU map the huge zero page. A READ of A gives zeros; a WRITE
 * into A lands in a fresh page; B stays on the huge zero page and reads
 * zero, and so does C, read only afterwards. B made PROT_READ: a WRITE
 * and FETCH_ADD after a READ are refused.
 */
TEST_F_TIMEOUT(mem, huge_zero_page, 300)
{
	struct env *e = &self->e;
	size_t pg = e->pg, off = HUGE_SZ / 2 + 100, len = 5000;
	uint8_t *a, *b, *c, *want;
	struct ibv_mr *mr;
	long long before;
	uint64_t zpfn;

	if (tu_read_long("/sys/kernel/mm/transparent_hugepage/use_zero_page") != 1)
		SKIP(return, "no huge zero page (THP use_zero_page is not 1)");
	a = huge_aligned(_metadata, e, 3 * HUGE_SZ);
	b = a + HUGE_SZ;
	c = b + HUGE_SZ;
	want = anon(_metadata, e, HUGE_SZ);
	ASSERT_EQ(0, madvise(a, 3 * HUGE_SZ, MADV_HUGEPAGE));
	ASSERT_EQ(0, *(volatile uint8_t *)a + *(volatile uint8_t *)b);
	zpfn = pfn_at(a, pg);
	if (!zero_pfn(zpfn) || !on_huge_zero(a, zpfn, pg) ||
	    !on_huge_zero(b, zpfn, pg))
		SKIP(return, "no huge zero page was mapped by a read fault (THP disabled?)");

	mr = reg(_metadata, e, a, 3 * HUGE_SZ, ACC_ALL);
	before = counter(mr, "page_faults");
	read_zeros(_metadata, e, mr, a + off - 0x8000, 0x10000,
		   "READ of the huge zero page");
	ASSERT_ROSE(mr, "page_faults", before, "READ of the huge zero page");

	write_ok(_metadata, e, mr, a + off, len, 10);
	memcpy(want + off, e->src, len);
	ASSERT_TRUE(tu_same_bytes("A after the WRITE", a, want, HUGE_SZ));
	ASSERT_FALSE(zero_pfn(pfn_at(a + off, pg)))
		TH_LOG("the written page is still a zero page");
	read_same(_metadata, e, mr, a, HUGE_SZ, want, "READ of A");
	ASSERT_TRUE(on_huge_zero(b, zpfn, pg)) TH_LOG("B left the huge zero page");
	ASSERT_TRUE(tu_all_bytes("B, CPU", b, 0, HUGE_SZ));
	read_zeros(_metadata, e, mr, b, HUGE_SZ, "READ of B");
	ASSERT_TRUE(tu_all_bytes("C, CPU", c, 0, HUGE_SZ));
	ASSERT_TRUE(on_huge_zero(c, zpfn, pg));
	read_zeros(_metadata, e, mr, c, HUGE_SZ, "READ of C");

	/* §8 #1: write after READ on the read-only huge zero page */
	ASSERT_EQ(0, mprotect(b, HUGE_SZ, PROT_READ));
	read_zeros(_metadata, e, mr, b + pg, pg, "READ of PROT_READ B");
	TU_ASSERT_WC(REM_ERR, xfer(_metadata, e, WRITE, e->src, 2 * pg,
				   e->smr->lkey, b + pg / 2, mr->rkey));
	TU_ASSERT_WC(REM_ERR, fadd(_metadata, e, b + 3 * pg, mr->rkey));
	ASSERT_TRUE(tu_all_bytes("PROT_READ B after the refusals", b, 0,
				 HUGE_SZ));
	ASSERT_TRUE(on_huge_zero(b, zpfn, pg));
	ASSERT_TRUE(tu_all_bytes("C after the refusals", c, 0, HUGE_SZ));
	ASSERT_TRUE(tu_same_bytes("A at the end", a, want, HUGE_SZ));
}

/*
 * [vvar] (VM_IO | VM_PFNMAP) through a read-only and a writable MR: each
 * access is refused and brings nothing. [vdso]: a READ gives the CPU's
 * bytes (or is refused); a WRITE into its ELF header padding and a
 * FETCH_ADD after it are refused, and the vDSO is unchanged.
 */
TEST_F_TIMEOUT(mem, vvar_vdso, 300)
{
	struct env *e = &self->e;
	uintptr_t vl, vh, dl, dh;
	struct ibv_mr *mr;
	uint8_t *vdso, *copy, *end;
	size_t dn;
	int st;

	if (!find_mapping("[vvar]", &vl, &vh) ||
	    !find_mapping("[vdso]", &dl, &dh))
		SKIP(return, "no [vvar] or [vdso] in /proc/self/maps");
	vdso = (uint8_t *)dl;
	dn = dh - dl;
	copy = anon(_metadata, e, dn);
	memcpy(copy, vdso, dn);
	ksft_print_msg("[vvar] %#" PRIxPTR "-%#" PRIxPTR ", [vdso] %#" PRIxPTR "-%#" PRIxPTR "\n",
		       vl, vh, dl, dh);

	mr = reg_try(_metadata, e, (void *)vl, vh - vl, IBV_ACCESS_REMOTE_READ);
	if (!mr) {
		ksft_print_msg("read-only ODP MR over [vvar] refused: %s\n",
			       strerror(errno));
	} else {
		read_refused(_metadata, e, mr, (void *)vl, 64, "READ of [vvar]");
		read_refused(_metadata, e, mr, (void *)(vh - 256), 256,
			     "READ of [vvar]'s last page");
	}

	/* writable, across both: nothing of [vvar], [vdso] not written */
	mr = reg_try(_metadata, e, (void *)vl, dh - vl, ACC_ALL);
	if (!mr) {
		ksft_print_msg("writable ODP MR over [vvar] and [vdso] refused: %s\n",
			       strerror(errno));
		ASSERT_TRUE(tu_same_bytes("[vdso]", vdso, copy, dn));
		return;
	}
	read_refused(_metadata, e, mr, (void *)(vl + e->pg), 512,
		     "READ of [vvar] through a writable MR");
	tu_fill(e->src, 256, 11);
	TU_ASSERT_WC(REM_ERR, xfer(_metadata, e, WRITE, e->src, 128,
				   e->smr->lkey, (void *)vl, mr->rkey));
	read_refused(_metadata, e, mr, (void *)(vh - 64), 128,
		     "READ across [vvar] into [vdso]");

	memset(e->dst, POISON, dn + 64);
	st = xfer(_metadata, e, READ, e->dst, dn, e->dmr->lkey, vdso,
		  mr->rkey);
	ksft_print_msg("READ of [vdso]: %s\n",
		       st < 0 ? "none" : ibv_wc_status_str(st));
	end = st == OK ? e->dst + dn : e->dst;
	ASSERT_TRUE(st == OK || st == REM_ERR);
	ASSERT_TRUE(st != OK || tu_same_bytes("READ of [vdso]", e->dst, copy,
					      dn));
	ASSERT_TRUE(tu_all_bytes("past the READ", end, POISON,
				 e->dst + dn + 64 - end));
	/* e_ident[EI_PAD]: unused bytes of the ELF header */
	TU_ASSERT_WC(REM_ERR, xfer(_metadata, e, WRITE, e->src, 7,
				   e->smr->lkey, vdso + 9, mr->rkey));
	TU_ASSERT_WC(REM_ERR, fadd(_metadata, e, vdso + 8, mr->rkey));
	ASSERT_TRUE(tu_same_bytes("[vdso] after the refusals", vdso, copy, dn));
}

/*
 * The child of dev_zero_shared, on pipes @go (from the parent) and @done
 * (to it): CPU-writes pattern @seed at @p, says so, waits for a go and
 * checks @q for pattern @seed + 1. It ends with its parent.
 */
static void __attribute__((noreturn))
zero_child(const int go[2], const int done[2], uint8_t *p, const uint8_t *q,
	   size_t pg, unsigned int seed)
{
	char c = 0;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	close(go[1]);
	close(done[0]);
	tu_fill(p, pg, seed);
	if (write(done[1], "w", 1) != 1 || read(go[0], &c, 1) != 1)
		_exit(2);
	for (size_t i = 0; i < pg; i++)
		if (q[i] != tu_pattern(i, seed + 1))
			_exit(3);
	_exit(0);
}

/*
 * A MAP_SHARED mapping of /dev/zero (shmem) as an ODP MR: zeros, random
 * WRITEs and READs, a fork child's stores seen by the device and the
 * device's by the child, data kept over MADV_DONTNEED, zeros after
 * MADV_REMOVE.
 */
TEST_F_TIMEOUT(mem, dev_zero_shared, 3600)
{
	struct env *e = &self->e;
	size_t pg = e->pg, n = 16 * pg, off, len;
	long r, rounds = tu_rounds(8, 200);
	unsigned int rng = tu_seed();
	uint8_t *want = anon(_metadata, e, n), *map;
	int go[2], done[2], status, fd;
	struct ibv_mr *mr;
	long long before;
	pid_t pid;
	char c;

	fd = open("/dev/zero", O_RDWR);
	ASSERT_LE(0, fd);
	map = keep_map(_metadata, e, mmap(NULL, n, RW, MAP_SHARED, fd, 0), n);
	close(fd);
	mr = reg(_metadata, e, map, n, ACC_ALL);
	before = counter(mr, "page_faults");
	read_zeros(_metadata, e, mr, map, n, "READ of fresh /dev/zero memory");
	ASSERT_ROSE(mr, "page_faults", before, "READ of /dev/zero memory");
	for (r = 0; r < rounds; r++) {
		len = pick(&rng, n, n, &off);
		write_ok(_metadata, e, mr, map + off, len, 20 + r);
		memcpy(want + off, e->src, len);
		len = pick(&rng, n, n, &off);
		read_same(_metadata, e, mr, map + off, len, want + off,
			  "READ of /dev/zero memory");
	}
	ASSERT_TRUE(tu_same_bytes("/dev/zero mapping", map, want, n));

	/* shared with a child: its stores reach the device, and back */
	ASSERT_EQ(0, pipe(go));
	ASSERT_EQ(0, pipe(done));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		zero_child(go, done, map + 5 * pg, map + 6 * pg, pg, 30);
	close(go[0]);
	close(done[1]);
	ASSERT_EQ(1, read(done[0], &c, 1)) TH_LOG("the child did not write");
	tu_fill(want + 5 * pg, pg, 30);
	read_same(_metadata, e, mr, map + 4 * pg, 3 * pg, want + 4 * pg,
		  "READ of the child's stores");
	write_ok(_metadata, e, mr, map + 6 * pg, pg, 31);
	memcpy(want + 6 * pg, e->src, pg);
	ASSERT_EQ(1, write(go[1], "g", 1));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status))
		TH_LOG("the child did not see the WRITE (status 0x%x)", status);
	close(go[1]);
	close(done[0]);

	/* shmem keeps its pages over MADV_DONTNEED; MADV_REMOVE frees them */
	ASSERT_EQ(0, madvise(map, n, MADV_DONTNEED));
	read_same(_metadata, e, mr, map, n, want, "READ after MADV_DONTNEED");
	ASSERT_EQ(0, madvise(map + 8 * pg, 2 * pg, MADV_REMOVE));
	memset(want + 8 * pg, 0, 2 * pg);
	read_same(_metadata, e, mr, map, n, want, "READ after MADV_REMOVE");
	ASSERT_TRUE(tu_same_bytes("/dev/zero mapping at the end", map, want, n));
}

/*
 * A kernel-made mapping [@p, +@n) that the process may read and write
 * (rxe's queue, an io_uring ring) as an ODP MR: refused at registration;
 * or a READ of its first @rlen bytes brings the CPU's bytes and a WRITE
 * of @wlen bytes at @woff lands as a CPU store would; or each ends with
 * REM_ACCESS_ERR and changes nothing. No byte of it changes otherwise.
 */
static void kernel_ring(struct __test_metadata *_metadata, struct env *e,
			const char *what, uint8_t *p, size_t n, size_t rlen,
			size_t woff, size_t wlen)
{
	uint8_t *copy = anon(_metadata, e, n);
	struct ibv_mr *mr;
	int st;

	memcpy(copy, p, n);
	mr = reg_try(_metadata, e, p, n, ACC_ALL);
	if (!mr) {
		ksft_print_msg("%s: ODP MR refused: %s\n", what, strerror(errno));
		ASSERT_TRUE(tu_same_bytes(what, p, copy, n));
		return;
	}
	memset(e->dst, POISON, rlen + 64);
	st = xfer(_metadata, e, READ, e->dst, rlen, e->dmr->lkey, p, mr->rkey);
	ksft_print_msg("%s: ODP MR accepted; READ %s\n", what,
		       st < 0 ? "none" : ibv_wc_status_str(st));
	ASSERT_TRUE(st == OK || st == REM_ERR);
	if (st == OK)
		ASSERT_TRUE(tu_same_bytes(what, e->dst, copy, rlen));
	ASSERT_TRUE(tu_all_bytes("past the READ", e->dst + (st == OK ? rlen : 0),
				 POISON, st == OK ? 64 : rlen + 64));

	tu_fill(e->src, wlen, 40);
	st = xfer(_metadata, e, WRITE, e->src, wlen, e->smr->lkey, p + woff,
		  mr->rkey);
	ksft_print_msg("%s: WRITE %s\n", what,
		       st < 0 ? "none" : ibv_wc_status_str(st));
	ASSERT_TRUE(st == OK || st == REM_ERR);
	if (st == OK)
		memcpy(copy + woff, e->src, wlen);
	ASSERT_TRUE(tu_same_bytes(what, p, copy, n));
}

/* The start of a uverbs mapping in /proc/self/maps not in @old[@n_old]. */
static uintptr_t new_uverbs_map(const uintptr_t *old, int n_old,
				uintptr_t *hi)
{
	char line[512];
	uintptr_t lo, found = 0;
	FILE *f = fopen("/proc/self/maps", "r");
	int i;

	while (f && !found && fgets(line, sizeof(line), f)) {
		if (!strstr(line, "/dev/infiniband/uverbs") ||
		    sscanf(line, "%" SCNxPTR "-%" SCNxPTR, &lo, hi) != 2)
			continue;
		for (i = 0; i < n_old && old[i] != lo; i++)
			;
		if (i == n_old)
			found = lo;
	}
	if (f)
		fclose(f);
	return found;
}

/*
 * rxe's CQ ring (the queue libibverbs maps from the uverbs device) as an
 * ODP MR; the WRITE goes into its header's pad_1 (bytes 8-127 of struct
 * rxe_queue_buf, used by no one).
 */
TEST_F_TIMEOUT(mem, rxe_queue_mmap, 300)
{
	struct env *e = &self->e;
	uintptr_t old[64], lo, hi;
	int n_old = 0;
	struct ibv_wc wc;

	while (n_old < 64 && (old[n_old] = new_uverbs_map(old, n_old, &hi)))
		n_old++;
	e->cq = ibv_create_cq(e->v.ctx, 16, NULL, NULL, 0);
	ASSERT_NE(NULL, e->cq) TH_LOG("ibv_create_cq: %s", strerror(errno));
	lo = new_uverbs_map(old, n_old, &hi);
	ASSERT_NE(0, lo) TH_LOG("no new uverbs mapping for the CQ");
	kernel_ring(_metadata, e, "rxe CQ ring", (uint8_t *)lo, hi - lo, 128,
		    16, 48);
	ASSERT_EQ(0, ibv_poll_cq(e->cq, 1, &wc));
	/* the pair still works */
	write_ok(_metadata, e, e->dmr, e->dst, 64, 41);
	ASSERT_TRUE(tu_same_bytes("WRITE after", e->dst, e->src, 64));
}

/* io_uring's SQ ring as an ODP MR; the WRITE goes into its index array. */
TEST_F_TIMEOUT(mem, io_uring_ring, 300)
{
	struct env *e = &self->e;
	struct io_uring_params p = { 0 };
	size_t sq, cq, n;
	uint8_t *ring;
	int fd;

	fd = syscall(__NR_io_uring_setup, 4, &p);
	if (fd < 0)
		SKIP(return, "io_uring_setup: %s (io_uring disabled)",
		     strerror(errno));
	e->fd = fd;
	sq = p.sq_off.array + p.sq_entries * sizeof(uint32_t);
	cq = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	n = p.features & IORING_FEAT_SINGLE_MMAP && cq > sq ? cq : sq;
	ring = keep_map(_metadata, e, mmap(NULL, n, RW, MAP_SHARED |
					   MAP_POPULATE, fd,
					   IORING_OFF_SQ_RING), n);
	kernel_ring(_metadata, e, "io_uring SQ ring", ring, n, 64,
		    p.sq_off.array, p.sq_entries * sizeof(uint32_t));
}

/*
 * ---- poison: the last cases of the last fixture (the harness runs them
 * in this order): the pages they poison stay poisoned until power-off.
 */

/* @n bytes of never-THP anonymous memory, pattern @seed, also in @want. */
static uint8_t *small_pages(struct __test_metadata *_metadata, struct env *e,
			    size_t n, uint8_t **want, unsigned int seed)
{
	uint8_t *p = anon(_metadata, e, n);

	ASSERT_EQ(0, madvise(p, n, MADV_NOHUGEPAGE));
	*want = anon(_metadata, e, n);
	tu_fill(p, n, seed);
	memcpy(*want, p, n);
	return p;
}

/*
 * Soft offline, one page a round: the device had it faulted in; the page
 * migrates (new pfn), the MR's page_invalidations rises, a READ returns
 * the same bytes and a WRITE lands in the new page.
 */
TEST_F_TIMEOUT(mem, soft_offline, 3600)
{
	struct env *e = &self->e;
	size_t pg = e->pg, n;
	long r, rounds = tu_rounds(2, 200);
	uint8_t *buf, *want, *at;
	struct ibv_mr *mr;
	long long before;
	uint64_t pfn;
	int err;

	n = (rounds + 2) * pg;
	buf = small_pages(_metadata, e, n, &want, 50);
	mr = reg(_metadata, e, buf, n, ACC_ALL);
	before = counter(mr, "page_faults");
	read_same(_metadata, e, mr, buf, n, want, "READ before soft offline");
	ASSERT_ROSE(mr, "page_faults", before, "first READ");
	for (r = 0; r < rounds; r++) {
		at = buf + (r + 1) * pg;
		pfn = pfn_at(at, pg);
		if (r < 2)
			before = counter(mr, "page_invalidations");
		err = madvise(at, pg, MADV_SOFT_OFFLINE) ? errno : 0;
		if (err == EINVAL && !r)
			SKIP(return, "no memory failure support (MADV_SOFT_OFFLINE: EINVAL)");
		ASSERT_EQ(0, err) TH_LOG("MADV_SOFT_OFFLINE: %s", strerror(err));
		ASSERT_NE(pfn, pfn_at(at, pg)) TH_LOG("the page did not move");
		if (r < 2)
			ASSERT_ROSE(mr, "page_invalidations", before,
				    "soft offline");
		read_same(_metadata, e, mr, at - pg, 3 * pg, want + r * pg,
			  "READ of the migrated page");
		write_ok(_metadata, e, mr, at + 100, pg - 200, 51 + r);
		memcpy(want + (r + 1) * pg + 100, e->src, pg - 200);
		ASSERT_TRUE(tu_same_bytes("after the WRITE", buf, want, n));
	}
}

/*
 * SIGBUS: MADV_HWPOISON itself sends one (memory_failure() with
 * MF_ACTION_REQUIRED: "Sending SIGBUS to ... due to hardware memory
 * corruption"), delivered as the madvise() returns; it is counted. Any
 * other means that the CPU touched a poisoned page: fail the case at
 * once (returning would fault again, forever).
 */
static volatile sig_atomic_t in_madvise, buses;
static void *volatile bus_addr;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	static const char msg[] = "# SIGBUS: a poisoned page was touched\n";

	(void)sig;
	(void)uc;
	if (in_madvise) {
		buses++;
		bus_addr = si->si_addr;
		return;
	}
	if (write(STDOUT_FILENO, msg, sizeof(msg) - 1) < 0)
		_exit(KSFT_FAIL);
	_exit(KSFT_FAIL);
}

/* "HardwareCorrupted:" of /proc/meminfo, in kB; -1 if not there. */
static long corrupted_kb(void)
{
	char line[128];
	long kb = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	while (f && kb < 0 && fgets(line, sizeof(line), f))
		if (sscanf(line, "HardwareCorrupted: %ld", &kb) != 1)
			kb = -1;
	if (f)
		fclose(f);
	return kb;
}

/*
 * MADV_HWPOISON of pages the device had written (every other page, one
 * a round): READ, WRITE and FETCH_ADD of each end with REM_ACCESS_ERR
 * and bring nothing, a local SGE on it with LOC_PROT_ERR; its neighbours
 * work byte-exact. The CPU never touches a poisoned page.
 */
TEST_F_TIMEOUT(mem, hwpoison, 3600)
{
	struct env *e = &self->e;
	size_t pg = e->pg, n, i;
	long r, rounds = tu_rounds(1, 200), kb;
	struct sigaction sa = {
		.sa_sigaction = on_sigbus, .sa_flags = SA_SIGINFO,
	};
	uint8_t *buf, *want, *at;
	struct ibv_mr *mr;
	long long before;
	int err;

	n = (2 * rounds + 3) * pg;
	ASSERT_LE(n, LOCAL_SIZE);
	buf = small_pages(_metadata, e, n, &want, 60);
	mr = reg(_metadata, e, buf, n, ACC_ALL);
	before = counter(mr, "page_faults");
	write_ok(_metadata, e, mr, buf + 10, n - 20, 61);
	memcpy(want + 10, e->src, n - 20);
	ASSERT_ROSE(mr, "page_faults", before, "first WRITE");
	ASSERT_TRUE(tu_same_bytes("after the first WRITE", buf, want, n));

	ASSERT_EQ(0, sigaction(SIGBUS, &sa, NULL));
	for (r = 0; r < rounds; r++) {
		at = buf + (2 * r + 2) * pg;
		kb = corrupted_kb();
		if (r < 2)
			before = counter(mr, "page_invalidations");
		buses = 0;
		in_madvise = 1;
		err = madvise(at, pg, MADV_HWPOISON) ? errno : 0;
		in_madvise = 0;
		if (err == EINVAL && !r)
			SKIP(return, "no memory failure support (MADV_HWPOISON: EINVAL)");
		ASSERT_EQ(0, err) TH_LOG("MADV_HWPOISON: %s", strerror(err));
		/* at most the one SIGBUS of the injection, for this page */
		ASSERT_GE(1, buses);
		ASSERT_TRUE(!buses || bus_addr == (void *)at)
			TH_LOG("SIGBUS for %p, poisoned %p", bus_addr, at);
		ASSERT_LE(kb + (long)(pg >> 10), corrupted_kb())
			TH_LOG("HardwareCorrupted did not rise");
		if (r < 2)
			ASSERT_ROSE(mr, "page_invalidations", before,
				    "MADV_HWPOISON");

		read_refused(_metadata, e, mr, at, pg, "READ of the poisoned page");
		read_refused(_metadata, e, mr, at + 1000, 16,
			     "short READ of the poisoned page");
		tu_fill(e->src, pg, 62);
		TU_ASSERT_WC(REM_ERR, xfer(_metadata, e, WRITE, e->src, 64,
					   e->smr->lkey, at + 64, mr->rkey));
		TU_ASSERT_WC(REM_ERR, fadd(_metadata, e, at + 8, mr->rkey));
		/* across it: the part from the poisoned page never arrives */
		memset(e->dst, POISON, 3 * pg);
		TU_ASSERT_WC(REM_ERR, xfer(_metadata, e, READ, e->dst, 3 * pg,
					   e->dmr->lkey, at - pg, mr->rkey));
		ASSERT_TRUE(tu_all_bytes("READ across: the poisoned page's part",
					 e->dst + pg, POISON, 2 * pg));
		for (i = 0; i < pg; i++)	/* the page before: its bytes or none */
			ASSERT_TRUE(e->dst[i] == POISON ||
				    e->dst[i] == want[at - buf - pg + i])
				TH_LOG("READ across: byte %zu is 0x%02x", i,
				       e->dst[i]);
		/* local SGEs on it */
		memset(e->dst, POISON, pg);
		TU_ASSERT_WC(LOC_ERR, xfer(_metadata, e, WRITE, at, 128,
					   mr->lkey, e->dst, e->dmr->rkey));
		ASSERT_TRUE(tu_all_bytes("target of a WRITE from the poisoned page",
					 e->dst, POISON, pg));
		TU_ASSERT_WC(LOC_ERR, xfer(_metadata, e, READ, at, 128,
					   mr->lkey, e->src, e->smr->rkey));

		/* the neighbours */
		read_same(_metadata, e, mr, at - pg, pg, want + (at - buf) - pg,
			  "READ of the page before");
		read_same(_metadata, e, mr, at + pg, pg, want + (at - buf) + pg,
			  "READ of the page after");
		write_ok(_metadata, e, mr, at - 100, 100, 63);
		memcpy(want + (at - buf) - 100, e->src, 100);
		write_ok(_metadata, e, mr, at + pg, 100, 64);
		memcpy(want + (at - buf) + pg, e->src, 100);
	}
	for (r = 0; r <= rounds; r++) {
		size_t o = (2 * r + 1) * pg;	/* the healthy pages */

		ASSERT_TRUE(tu_same_bytes("a healthy page", buf + o, want + o,
					  pg));
	}
	ASSERT_TRUE(tu_same_bytes("the first page", buf, want, pg));
	/* n = (2 * rounds + 3) pages: the last one healthy too */
	ASSERT_TRUE(tu_same_bytes("the last page", buf + n - pg,
				  want + n - pg, pg));
	signal(SIGBUS, SIG_DFL);
}

TEST_HARNESS_MAIN
