// SPDX-License-Identifier: GPL-2.0
/*
 * unmap-cost: what an ODP MR's translation table adds to munmap and to
 * MADV_DONTNEED of the memory it maps.
 *
 *   unmap-cost [-s SIZE] [-r PAIRS] [-t]
 *
 * Each pair times one munmap and one MADV_DONTNEED of SIZE (default 256M)
 * bytes of anonymous memory that the CPU has written (4 KiB pages,
 * MADV_NOHUGEPAGE; with -t transparent huge pages), plain (A) and with an
 * ODP MR over it whose translation table holds all of it (B: one
 * FETCH_ADD per 2 MiB through a loopback RC QP pair, resident.h; the
 * entries are checked in odp_mirror's debugfs before the call), A then B
 * in odd pairs and B then A in even ones. The MR is deregistered after
 * the timed call. Prints every pair, then per call the medians and the
 * median of the per-pair ratios B / A with their quartiles. Needs our
 * odp_mirror (debugfs) and root; runs in the guest (perf/bench.sh).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "kv_file.h"
#include "resident.h"
#include "verbs_util.h"

#define LIVE_PATH	"/sys/kernel/debug/odp_mirror/live"
#define MAX_PAIRS	64
#define ACC		(IBV_ACCESS_ON_DEMAND | IBV_ACCESS_LOCAL_WRITE | \
			 IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ | \
			 IBV_ACCESS_REMOTE_ATOMIC)

enum call { CALL_MUNMAP, CALL_DONTNEED, NR_CALLS };
static const char *const call_name[NR_CALLS] = { "munmap", "MADV_DONTNEED" };

struct bench {
	struct vu_ctx		v;
	struct vu_qp_pair	qps;
	struct ibv_mr		*lmr;
	uint64_t		*res;
	uint64_t		size;
	int			thp;
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/*
 * One timed @call on fresh memory, with a resident ODP MR over it if
 * @odp. Its time in ms into *@ms; 0, or -1 with a line on stderr.
 */
static int one(struct bench *b, enum call call, int odp, double *ms)
{
	long want = b->thp ? b->size / RESIDENT_SPAN : b->size / 4096, got;
	struct ibv_mr *mr = NULL;
	uint8_t *buf;
	double t0;
	int ret = -1;

	buf = mmap(NULL, b->size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (buf == MAP_FAILED) {
		perror("mmap");
		return -1;
	}
	madvise(buf, b->size, b->thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	memset(buf, 1, b->size);
	if (odp) {
		mr = ibv_reg_mr(b->v.pd, buf, b->size, ACC);
		if (!mr) {
			perror("ibv_reg_mr");
			goto out;
		}
		if (resident_fill(&b->v, &b->qps, b->res, b->lmr->lkey, buf,
				  b->size, mr->rkey))
			goto out;
		got = (long)kv_file_value(LIVE_PATH, "entries");
		if (got != want) {
			fprintf(stderr, "%ld translation entries, not %ld: the MR does not hold all of the memory\n",
				got, want);
			goto out;
		}
	}
	t0 = now_ms();
	if (call == CALL_MUNMAP) {
		munmap(buf, b->size);
		buf = NULL;
	} else {
		madvise(buf, b->size, MADV_DONTNEED);
	}
	*ms = now_ms() - t0;
	ret = 0;
out:
	if (mr)
		ibv_dereg_mr(mr);
	if (buf)
		munmap(buf, b->size);
	return ret;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The @q quantile of @v[0..@n) (sorts @v), linear between ranks. */
static double quantile(double *v, int n, double q)
{
	double pos = q * (n - 1);
	int i = (int)pos;

	qsort(v, n, sizeof(*v), cmp_double);
	return i + 1 < n ? v[i] + (pos - i) * (v[i + 1] - v[i]) : v[i];
}

int main(int argc, char **argv)
{
	double ms[NR_CALLS][2][MAX_PAIRS], ratio[NR_CALLS][MAX_PAIRS];
	struct bench b = { .size = 256ULL << 20 };
	int pairs = 6, opt, p, c, k;

	while ((opt = getopt(argc, argv, "s:r:t")) != -1) {
		switch (opt) {
		case 's':
			if (resident_parse_size(optarg, &b.size) ||
			    b.size % RESIDENT_SPAN)
				return 2;
			break;
		case 'r':
			pairs = atoi(optarg);
			if (pairs < 1 || pairs > MAX_PAIRS)
				return 2;
			break;
		case 't':
			b.thp = 1;
			break;
		default:
			fprintf(stderr, "usage: %s [-s SIZE (2 MiB multiple)] [-r PAIRS] [-t]\n",
				argv[0]);
			return 2;
		}
	}
	if (resident_open(&b.v, &b.qps, &b.res, &b.lmr))
		return 1;
	if (kv_file_value(LIVE_PATH, "entries") != 0) {
		fprintf(stderr, "no %s, or entries already there: not our idle odp_mirror?\n",
			LIVE_PATH);
		return 1;
	}
	printf("%llu MiB, %s pages; ms per call, plain (A) and with a resident ODP MR (B)\n",
	       (unsigned long long)(b.size >> 20), b.thp ? "THP" : "4 KiB");
	printf("%-14s %4s %10s %10s %7s\n", "call", "pair", "A ms", "B ms", "B / A");
	for (p = 0; p < pairs; p++) {
		for (c = 0; c < NR_CALLS; c++) {
			for (k = 0; k < 2; k++) {
				int odp = (p % 2) ? !k : k;

				if (one(&b, c, odp, &ms[c][odp][p]))
					return 1;
			}
			ratio[c][p] = ms[c][1][p] / ms[c][0][p];
			printf("%-14s %4d %10.2f %10.2f %7.3f\n", call_name[c],
			       p + 1, ms[c][0][p], ms[c][1][p], ratio[c][p]);
		}
	}
	printf("\n%-14s %10s %10s %17s %17s\n", "call", "A median", "B median",
	       "B / A, median", "IQR");
	for (c = 0; c < NR_CALLS; c++)
		printf("%-14s %10.2f %10.2f %17.3f %8.3f … %.3f\n", call_name[c],
		       quantile(ms[c][0], pairs, 0.5),
		       quantile(ms[c][1], pairs, 0.5),
		       quantile(ratio[c], pairs, 0.5),
		       quantile(ratio[c], pairs, 0.25),
		       quantile(ratio[c], pairs, 0.75));
	resident_close(&b.v, &b.qps, b.res, b.lmr);
	return 0;
}
