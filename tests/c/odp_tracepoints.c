// SPDX-License-Identifier: GPL-2.0
/*
 * odp_tracepoints - odp_mirror's tracepoints (TRACE_SYSTEM odp_mirror)
 * report what happened: a first-touch WRITE shows an odp_mirror_fault
 * with ret=0 and recorded pages, MADV_DONTNEED an odp_mirror_invalidate
 * that dropped them, and an implicit MR the creation and the reclaim of
 * its child.
 *
 * The events go to tracefs (/sys/kernel/tracing, mounted by the guest),
 * read back after each step from the trace file.
 *
 * Mutation record: with the trace calls removed from odp_umem.c, every
 * case fails ("no odp_mirror_fault event").
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

#define TRACEFS		"/sys/kernel/tracing/"
#define EVENTS		TRACEFS "events/odp_mirror/enable"
#define ACC		(IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | \
			 IBV_ACCESS_ON_DEMAND)
#define LEN		(64 * 4096)

FIXTURE(trace) {
	struct vu_config	cfg;
	struct vu_ctx		v;
	struct ibv_device_attr_ex ax;
	struct vu_qp_pair	p;
	uint8_t			*buf, *src;
	struct ibv_mr		*smr;
};

FIXTURE_SETUP(trace)
{
	TU_OPEN_QUERY(&self->cfg, &self->v, &self->ax);
	TU_REQUIRE_CAP(self->ax.odp_caps.general_caps &
		       IBV_ODP_SUPPORT_IMPLICIT, "no implicit ODP");
	TU_REQUIRE_CAP(!access(EVENTS, W_OK), "no %s", EVENTS);
	ASSERT_EQ(0, vu_qp_pair_create(&self->v, &self->p));
	self->buf = mmap(NULL, LEN, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	self->src = mmap(NULL, LEN, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->buf);
	ASSERT_NE(MAP_FAILED, self->src);
	ASSERT_EQ(0, madvise(self->buf, LEN, MADV_NOHUGEPAGE));
	tu_fill(self->src, LEN, 5);
	self->smr = vu_reg_mr(&self->v, self->src, LEN,
			      IBV_ACCESS_LOCAL_WRITE);
	ASSERT_NE(NULL, self->smr);
	ASSERT_EQ(0, tu_write_long(EVENTS, 1));
}

FIXTURE_TEARDOWN(trace)
{
	tu_write_long(EVENTS, 0);
	vu_dereg_mr(&self->v, self->smr);
	vu_qp_pair_destroy(&self->v, &self->p);
	munmap(self->buf, LEN);
	munmap(self->src, LEN);
	vu_close(&self->v);
}

/* Empty the trace buffer. */
static int trace_clear(void)
{
	FILE *f = fopen(TRACEFS "trace", "w");

	if (!f)
		return -errno;
	return fclose(f) ? -errno : 0;
}

/*
 * How many events named @event the trace holds whose line also contains
 * @with (NULL: any); the first such line is copied to @line.
 */
static int trace_count(const char *event, const char *with, char *line,
		       size_t size)
{
	char buf[512], name[64];
	FILE *f = fopen(TRACEFS "trace", "r");
	int n = 0;

	if (!f)
		return -1;
	snprintf(name, sizeof(name), " %s: ", event);
	while (fgets(buf, sizeof(buf), f)) {
		if (!strstr(buf, name) || (with && !strstr(buf, with)))
			continue;
		if (!n++ && line)
			snprintf(line, size, "%s", buf);
	}
	fclose(f);
	return n;
}

TEST_F(trace, fault_and_invalidate)
{
	struct ibv_mr *mr = vu_reg_mr(&self->v, self->buf, LEN, ACC);
	char line[512] = "";

	ASSERT_NE(NULL, mr);
	ASSERT_EQ(0, trace_clear());
	TU_ASSERT_OK(tu_xfer(&self->v, &self->p.a, IBV_WR_RDMA_WRITE,
			     self->src, LEN, self->smr->lkey,
			     (uintptr_t)self->buf, mr->rkey));
	ASSERT_LE(1, trace_count("odp_mirror_fault", "flags=3", line,
				 sizeof(line)))
		TH_LOG("no odp_mirror_fault event for the WRITE");
	ksft_print_msg("%s", line);
	ASSERT_NE(NULL, strstr(line, "ret=0"));
	ASSERT_EQ(NULL, strstr(line, "recorded=-1"));

	ASSERT_EQ(0, trace_clear());
	ASSERT_EQ(0, madvise(self->buf, LEN, MADV_DONTNEED));
	ASSERT_LE(1, trace_count("odp_mirror_invalidate", NULL, line,
				 sizeof(line)))
		TH_LOG("no odp_mirror_invalidate event for MADV_DONTNEED");
	ksft_print_msg("%s", line);
	ASSERT_EQ(NULL, strstr(line, "dropped=0 "));
	vu_dereg_mr(&self->v, mr);
}

TEST_F(trace, implicit_child_comes_and_goes)
{
	struct ibv_mr *mr = ibv_reg_mr(self->v.pd, NULL, SIZE_MAX, ACC);
	char line[512] = "";

	ASSERT_NE(NULL, mr) TH_LOG("implicit MR: %s", strerror(errno));
	ASSERT_EQ(0, trace_clear());
	TU_ASSERT_OK(tu_xfer(&self->v, &self->p.a, IBV_WR_RDMA_WRITE,
			     self->src, 4096, self->smr->lkey,
			     (uintptr_t)self->buf, mr->rkey));
	ASSERT_LE(1, trace_count("odp_mirror_child_create", NULL, line,
				 sizeof(line)))
		TH_LOG("no odp_mirror_child_create event");
	ksft_print_msg("%s", line);
	ASSERT_EQ(0, ibv_dereg_mr(mr));
	ASSERT_LE(1, trace_count("odp_mirror_child_reclaim", NULL, line,
				 sizeof(line)))
		TH_LOG("no odp_mirror_child_reclaim event at dereg");
}

TEST_HARNESS_MAIN
