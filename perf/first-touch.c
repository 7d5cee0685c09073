// SPDX-License-Identifier: GPL-2.0
/*
 * first-touch: what a device fault adds to an RDMA WRITE, per page.
 *
 *   first-touch [-n PAGES] [-r ROUNDS] [-s SPAN]
 *
 * Each round maps PAGES (default 1024) anonymous 4 KiB pages
 * (MADV_NOHUGEPAGE) that the CPU has not touched, registers an ODP MR over
 * them and sends 8-byte RDMA WRITEs through a loopback RC QP pair, waiting
 * for each: two to each page in turn, the first of which faults the page
 * in (cold) and the second finds it resident (warm). With -s SPAN, each
 * WRITE fills SPAN pages instead (PAGES rounded up to a multiple of SPAN),
 * so its first touch faults SPAN pages.
 * Each round also times the CPU's own first touch of as many untouched
 * pages (one byte written to each: a page fault that allocates and zeroes
 * the page, which a device fault must do as well): the floor under the
 * device's fault.
 * Every WRITE and every touch is timed on its own, and a round's figures
 * are medians over its pages: the cold WRITE, the warm one, the fault's
 * cost (cold - warm of the same pages, timed one right after the other,
 * as the ABBA pairs of abba.sh) and the CPU's touch. Times scatter widely
 * under TCG (a warm WRITE takes 32 us for a while, then 80 or 130 us
 * for a while, as rxe's workers and the waiting process share the
 * vCPUs), so a WRITE's pair partner is the only fair comparison. It
 * prints, per round, those medians and the fault's share of a warm WRITE,
 * cost / warm; then the median share over the ROUNDS (default 5) rounds,
 * and a last line of medians for scripts (perf/sweep.sh): "first-touch
 * span S cold_us C warm_us W extra_per_page_us COST / S share COST / W
 * cpu_fault_us F". Runs in the guest, against whatever rxe is loaded (ODP
 * needed).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "verbs_util.h"

#define ACC_ODP	(IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | \
		 IBV_ACCESS_ON_DEMAND)

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The median of @n values (sorts them). */
static double median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return v[n / 2];
}

/* One WRITE of @len bytes at @raddr; its time in us. */
static double write_once(struct vu_ctx *v, struct vu_qp_pair *p,
			 struct ibv_mr *lmr, struct ibv_mr *mr, uint64_t raddr,
			 uint32_t len, uint64_t id)
{
	double start = now_us();

	if (vu_post_send(v, &p->a, IBV_WR_RDMA_WRITE, id, lmr->addr, len,
			 lmr->lkey, raddr, mr->rkey) ||
	    vu_wait_ok(v, &p->a, id, IBV_WC_RDMA_WRITE)) {
		fprintf(stderr, "first-touch: WRITE %llu failed\n",
			(unsigned long long)id);
		exit(1);
	}
	return now_us() - start;
}

struct round {
	double	cold;	/* median cold WRITE, us */
	double	warm;	/* median warm WRITE, us */
	double	cost;	/* median cold - warm of the same pages, us */
};

/*
 * Two WRITEs to each @span pages of @mr in turn (8 bytes if @span is 1,
 * else all of them), cold then warm; their medians. @t holds 3 values
 * a WRITE pair.
 */
static struct round write_pairs(struct vu_ctx *v, struct vu_qp_pair *p,
				struct ibv_mr *lmr, struct ibv_mr *mr,
				size_t pages, size_t span, size_t psz,
				double *t)
{
	uint32_t len = span == 1 ? 8 : span * psz;
	size_t i, n = pages / span;
	double *cold = t, *warm = t + n, *cost = t + 2 * n;
	struct round res;

	for (i = 0; i < n; i++) {
		uint64_t raddr = (uintptr_t)mr->addr + i * span * psz;

		cold[i] = write_once(v, p, lmr, mr, raddr, len, 2 * i);
		warm[i] = write_once(v, p, lmr, mr, raddr, len, 2 * i + 1);
		cost[i] = cold[i] - warm[i];
	}
	res.cold = median(cold, n);
	res.warm = median(warm, n);
	res.cost = median(cost, n);
	return res;
}

/*
 * The CPU's first touch of @pages untouched anonymous 4 KiB pages, one
 * byte written to each, each timed into @t; the median, in us.
 */
static double cpu_touch_each(size_t pages, size_t psz, double *t)
{
	volatile uint8_t *buf = mmap(NULL, pages * psz, PROT_READ | PROT_WRITE,
				     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	size_t i;

	if (buf == MAP_FAILED ||
	    madvise((void *)buf, pages * psz, MADV_NOHUGEPAGE)) {
		perror("first-touch: mmap");
		exit(1);
	}
	for (i = 0; i < pages; i++) {
		double start = now_us();

		buf[i * psz] = 1;
		t[i] = now_us() - start;
	}
	munmap((void *)buf, pages * psz);
	return median(t, pages);
}

int main(int argc, char **argv)
{
	size_t pages = 1024, rounds = 5, span = 1, psz = getpagesize(), r;
	struct vu_config cfg;
	struct vu_qp_pair p;
	struct ibv_mr *lmr;
	struct vu_ctx v;
	double *share, *cold_us, *warm_us, *cost_us, *cpu_us, *t;
	uint8_t *src;
	int opt;

	while ((opt = getopt(argc, argv, "n:r:s:")) != -1) {
		if (opt == 'n')
			pages = strtoul(optarg, NULL, 0);
		else if (opt == 'r')
			rounds = strtoul(optarg, NULL, 0);
		else if (opt == 's')
			span = strtoul(optarg, NULL, 0);
		else
			return 2;
	}
	if (!pages || !rounds || !span || span > 4096)
		return 2;
	pages = (pages + span - 1) / span * span;
	share = calloc(rounds, sizeof(*share));
	cold_us = calloc(rounds, sizeof(*cold_us));
	warm_us = calloc(rounds, sizeof(*warm_us));
	cost_us = calloc(rounds, sizeof(*cost_us));
	cpu_us = calloc(rounds, sizeof(*cpu_us));
	t = calloc(3 * pages, sizeof(*t));
	src = calloc(span, psz);
	vu_config_init(&cfg);
	if (!share || !cold_us || !warm_us || !cost_us || !cpu_us || !t ||
	    !src ||
	    vu_config_from_env(&cfg) || vu_open(&v, &cfg) ||
	    vu_qp_pair_create(&v, &p))
		return 1;
	lmr = vu_reg_mr(&v, src, span * psz, IBV_ACCESS_LOCAL_WRITE);
	if (!lmr)
		return 1;

	printf("%-6s %10s %10s %10s %8s %12s\n", "round", "cold us",
	       "warm us", "fault us", "share", "CPU touch us");
	for (r = 0; r < rounds; r++) {
		uint8_t *buf = mmap(NULL, pages * psz, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		struct ibv_mr *mr;
		struct round res;

		if (buf == MAP_FAILED ||
		    madvise(buf, pages * psz, MADV_NOHUGEPAGE))
			return 1;
		mr = vu_reg_mr(&v, buf, pages * psz, ACC_ODP);
		if (!mr)
			return 1;
		res = write_pairs(&v, &p, lmr, mr, pages, span, psz, t);
		cold_us[r] = res.cold;
		warm_us[r] = res.warm;
		cost_us[r] = res.cost;
		share[r] = res.cost / res.warm;
		cpu_us[r] = cpu_touch_each(pages, psz, t);
		printf("%-6zu %10.1f %10.1f %10.1f %8.2f %12.2f\n", r, res.cold,
		       res.warm, res.cost, share[r], cpu_us[r]);
		vu_dereg_mr(&v, mr);
		munmap(buf, pages * psz);
	}
	printf("median share of a fault in a cold WRITE: %.2f of a warm WRITE "
	       "(%zu rounds of %zu pages, %zu a WRITE)\n",
	       median(share, rounds), rounds, pages, span);
	printf("the CPU's first touch of a page: %.2f us, %.2f of a warm WRITE\n",
	       median(cpu_us, rounds),
	       median(cpu_us, rounds) / median(warm_us, rounds));
	printf("first-touch span %zu cold_us %.2f warm_us %.2f extra_per_page_us %.3f share %.3f cpu_fault_us %.3f\n",
	       span, median(cold_us, rounds), median(warm_us, rounds),
	       median(cost_us, rounds) / span,
	       median(share, rounds), median(cpu_us, rounds));
	vu_dereg_mr(&v, lmr);
	vu_qp_pair_destroy(&v, &p);
	vu_close(&v);
	free(src);
	free(t);
	free(cpu_us);
	free(cost_us);
	free(warm_us);
	free(cold_us);
	free(share);
	return 0;
}
