// SPDX-License-Identifier: GPL-2.0
/*
 * odp_userfaultfd - ODP MRs over memory registered with userfaultfd
 * (reliability.md §8 #17; issue 10 item 4).
 *
 * The device faults through hmm_range_fault(), which does not let a fault
 * be retried (no FAULT_FLAG_ALLOW_RETRY); userfaultfd then refuses to
 * wait for its handler and the fault fails at once (SIGBUS, -EFAULT), as
 * it does for mlx5's ODP. So a remote access to a missing page of a uffd
 * region can never stall rxe behind a slow (or absent) handler: it is a
 * remote access error, the handler never hears of it, and nothing of the
 * region changes. Once the handler has filled the page (the CPU's own
 * fault), the device reaches it like any other.
 *
 * Cases:
 *  - missing_page_is_an_error_not_a_stall: WRITE, READ and FETCH_ADD at a
 *    missing page of the region each complete with REM_ACCESS_ERR within
 *    the completion timeout, and the handler saw no fault;
 *  - filled_page_works: the CPU touches the page, the handler fills it
 *    with a pattern (UFFDIO_COPY); a WRITE then lands byte-exact and a
 *    READ returns the handler's bytes; the missing neighbour still NAKs.
 * Each leaves the live counts of odp_mirror at zero after dereg.
 *
 * Mutation record: a fault path that requested FAULT_FLAG_ALLOW_RETRY
 * would queue the fault to the handler and stall; we cannot build that
 * against hmm_range_fault(), so the guard here is the behaviour itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "verbs_util.h"
#include "test_util.h"

#define PAGES		4
#define ACC_ODP		(IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ | \
			 IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_ATOMIC | \
			 IBV_ACCESS_ON_DEMAND)

FIXTURE(uffd) {
	struct vu_config	cfg;
	struct vu_ctx		v;
	struct ibv_device_attr_ex ax;
	struct vu_qp_pair	p;
	size_t			psz;
	uint8_t			*region;	/* registered with uffd */
	uint8_t			*local;		/* the peer's buffer */
	struct ibv_mr		*mr, *lmr;
	int			uffd;
	pthread_t		handler;
	bool			handler_running;
	volatile unsigned long	faults;		/* seen by the handler */
};

/* Fill every missing-page fault with pattern 7, counting them. */
static void *handle(void *arg)
{
	FIXTURE_DATA(uffd) *self = arg;
	struct uffd_msg msg;
	struct pollfd pfd = { .fd = self->uffd, .events = POLLIN };
	struct uffdio_copy c = { .len = self->psz };
	uint8_t *page = malloc(self->psz);

	tu_fill(page, self->psz, 7);
	while (poll(&pfd, 1, -1) > 0) {
		if (pfd.revents & (POLLERR | POLLHUP))
			break;
		if (read(self->uffd, &msg, sizeof(msg)) != sizeof(msg))
			break;
		if (msg.event != UFFD_EVENT_PAGEFAULT)
			continue;
		self->faults++;
		c.dst = msg.arg.pagefault.address & ~(self->psz - 1);
		c.src = (uintptr_t)page;
		ioctl(self->uffd, UFFDIO_COPY, &c);
	}
	free(page);
	return NULL;
}

FIXTURE_SETUP(uffd)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };

	TU_OPEN_QUERY(&self->cfg, &self->v, &self->ax);
	ASSERT_TRUE(self->ax.odp_caps.general_caps & IBV_ODP_SUPPORT)
		TH_LOG("our rxe must advertise ODP");
	ASSERT_EQ(0, vu_qp_pair_create(&self->v, &self->p));
	self->psz = getpagesize();
	self->region = mmap(NULL, PAGES * self->psz, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	self->local = mmap(NULL, self->psz, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->region);
	ASSERT_NE(MAP_FAILED, self->local);
	self->uffd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	ASSERT_LE(0, self->uffd) TH_LOG("userfaultfd: %s", strerror(errno));
	ASSERT_EQ(0, ioctl(self->uffd, UFFDIO_API, &api));
	reg.range.start = (uintptr_t)self->region;
	reg.range.len = PAGES * self->psz;
	ASSERT_EQ(0, ioctl(self->uffd, UFFDIO_REGISTER, &reg));
	ASSERT_EQ(0, pthread_create(&self->handler, NULL, handle, self));
	self->handler_running = true;
	self->mr = vu_reg_mr(&self->v, self->region, PAGES * self->psz,
			     ACC_ODP);
	ASSERT_NE(NULL, self->mr);
	self->lmr = vu_reg_mr(&self->v, self->local, self->psz,
			      IBV_ACCESS_LOCAL_WRITE);
	ASSERT_NE(NULL, self->lmr);
}

FIXTURE_TEARDOWN(uffd)
{
	vu_dereg_mr(&self->v, self->lmr);
	vu_dereg_mr(&self->v, self->mr);
	vu_qp_pair_destroy(&self->v, &self->p);
	if (self->handler_running) {
		/* it waits in poll(), a cancellation point, holding nothing */
		pthread_cancel(self->handler);
		pthread_join(self->handler, NULL);
	}
	close(self->uffd);
	munmap(self->region, PAGES * self->psz);
	munmap(self->local, self->psz);
	vu_close(&self->v);
	EXPECT_TRUE(tu_live_back("umems", 0, 10000));
	EXPECT_TRUE(tu_live_back("entries", 0, 10000));
}

/* After an error completion, a fresh QP pair (both are in error). */
static int renew(FIXTURE_DATA(uffd) *self, enum ibv_wc_status st)
{
	if (st == IBV_WC_SUCCESS)
		return 0;
	return vu_qp_pair_destroy(&self->v, &self->p) ?:
	       vu_qp_pair_create(&self->v, &self->p);
}

/*
 * The peer's WRITE (1000 bytes of pattern 3 at +64), READ (of the same)
 * and FETCH_ADD (+1 at +0, result at local + 2048) on page @pg of the
 * region; each must complete with @want.
 */
static void access_page(struct __test_metadata *_metadata,
			FIXTURE_DATA(uffd) *self, int pg,
			enum ibv_wc_status want)
{
	uint64_t raddr = (uintptr_t)self->region + pg * self->psz;
	uint64_t *res = (uint64_t *)(self->local + 2048);

	tu_fill(self->local, 1000, 3);
	TU_ASSERT_WC(want, tu_xfer(&self->v, &self->p.a, IBV_WR_RDMA_WRITE,
				   self->local, 1000, self->lmr->lkey,
				   raddr + 64, self->mr->rkey));
	ASSERT_EQ(0, renew(self, want));
	memset(self->local, 0, 1000);
	TU_ASSERT_WC(want, tu_xfer(&self->v, &self->p.a, IBV_WR_RDMA_READ,
				   self->local, 1000, self->lmr->lkey,
				   raddr + 64, self->mr->rkey));
	ASSERT_EQ(0, renew(self, want));
	TU_ASSERT_WC(want, tu_atomic(&self->v, &self->p.a,
				     IBV_WR_ATOMIC_FETCH_AND_ADD, res,
				     self->lmr->lkey, raddr, self->mr->rkey,
				     1, 0));
	ASSERT_EQ(0, renew(self, want));
}

TEST_F(uffd, missing_page_is_an_error_not_a_stall)
{
	access_page(_metadata, self, 1, IBV_WC_REM_ACCESS_ERR);
	EXPECT_EQ(0, self->faults) TH_LOG("the handler was asked");
	EXPECT_EQ(0, tu_smaps_kb(self->region, "Rss"))
		TH_LOG("a page of the region appeared");
}

TEST_F(uffd, filled_page_works)
{
	uint8_t want[4096];
	uint64_t v;

	ASSERT_GE(sizeof(want), self->psz);
	/* the CPU's fault goes to the handler, which fills pattern 7 */
	v = self->region[2 * self->psz];
	ASSERT_EQ(1, self->faults);
	tu_fill(want, self->psz, 7);
	ASSERT_EQ(want[0], v);

	access_page(_metadata, self, 2, IBV_WC_SUCCESS);
	/* WRITE put 1000 bytes of pattern 3 at +64; READ read them back */
	tu_fill(want, self->psz, 7);
	memcpy(&v, want, sizeof(v));
	v += 1;					/* FETCH_ADD at +0 */
	memcpy(want, &v, sizeof(v));
	tu_fill(want + 64, 1000, 3);
	ASSERT_TRUE(tu_same_bytes("filled page", self->region + 2 * self->psz,
				  want, self->psz));
	ASSERT_TRUE(tu_pattern_bytes("READ back", self->local, 3, 1000));
	/* its missing neighbour is still an error, and still no fault */
	access_page(_metadata, self, 3, IBV_WC_REM_ACCESS_ERR);
	EXPECT_EQ(1, self->faults);
}

TEST_HARNESS_MAIN
