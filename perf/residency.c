// SPDX-License-Identifier: GPL-2.0
/*
 * residency: kernel memory of ODP MRs against what is resident through
 * them, explicit and implicit, and what is left after munmap.
 *
 *   residency [-s SIZE[,SIZE...]] [-m MODE[,MODE]] [-t]
 *
 * For every mode (default explicit,implicit) and size R (default
 * 64M,256M,1G) it maps R bytes (MAP_NORESERVE), writes all of it with the
 * CPU (4 KiB pages, MADV_NOHUGEPAGE; with -t transparent huge pages,
 * MADV_HUGEPAGE), registers an ODP MR (over the mapping, or implicit) and
 * makes all of it resident in the MR: one FETCH_ADD per 2 MiB through a
 * loopback RC QP pair, each fault recording the present pages of its
 * 2 MiB. Then it munmaps the region and deregisters the MR.
 *
 *   entries     translation entries (odp_mirror debugfs "entries")
 *   children    1 GiB children of implicit MRs ("children")
 *   table KiB   delta Slab + VmallocUsed from registration to resident:
 *               the translation memory
 *   B/page      table KiB per resident 4 KiB page, in bytes
 *   munmap KiB  Slab + VmallocUsed after munmap minus after registration
 *               (0 within noise: translation memory follows residency)
 *   dereg KiB   after ibv_dereg_mr minus before the mapping (a leak
 *               shows here)
 *
 * Slab moves on its own by a few pages (per-CPU caches, RCU frees); the
 * entry and children counts are exact. Needs our odp_mirror (debugfs) and
 * root; runs in the guest (perf/residency.sh).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kv_file.h"
#include "resident.h"
#include "verbs_util.h"

#define LIVE_PATH	"/sys/kernel/debug/odp_mirror/live"
#define MAX_SIZES	8
#define ACC		(IBV_ACCESS_ON_DEMAND | IBV_ACCESS_LOCAL_WRITE | \
			 IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ | \
			 IBV_ACCESS_REMOTE_ATOMIC)

/* Slab + VmallocUsed from /proc/meminfo, KiB. */
static long kernel_kib(void)
{
	char key[64];
	long v, sum = 0;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return -1;
	while (fscanf(f, "%63s %ld kB\n", key, &v) == 2)
		if (!strcmp(key, "Slab:") || !strcmp(key, "VmallocUsed:"))
			sum += v;
	fclose(f);
	return sum;
}

/* A count of odp_mirror's debugfs live file; -1 if missing. */
static long live(const char *name)
{
	return (long)kv_file_value(LIVE_PATH, name);
}

static int row(struct vu_ctx *v, struct vu_qp_pair *qps, uint64_t *res,
	       struct ibv_mr *lmr, uint64_t size, int implicit, int thp)
{
	long k0, k1, k2, k3, k4, e2, c2;
	struct ibv_mr *mr;
	uint8_t *buf;

	k0 = kernel_kib();
	buf = mmap(NULL, size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (buf == MAP_FAILED)
		return -1;
	madvise(buf, size, thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	memset(buf, 1, size);
	mr = implicit ? ibv_reg_mr(v->pd, NULL, SIZE_MAX, ACC) :
			ibv_reg_mr(v->pd, buf, size, ACC);
	if (!mr) {
		perror("ibv_reg_mr");
		munmap(buf, size);
		return -1;
	}
	k1 = kernel_kib();
	resident_fill(v, qps, res, lmr->lkey, buf, size, mr->rkey);
	k2 = kernel_kib();
	e2 = live("entries");
	c2 = live("children");
	munmap(buf, size);
	/* reading the live counts waits for the children's reclaim */
	live("children");
	k3 = kernel_kib();
	if (live("entries") != 0)
		fprintf(stderr, "entries left after munmap: %ld\n",
			live("entries"));
	ibv_dereg_mr(mr);
	live("children");
	k4 = kernel_kib();
	printf("%-8s %-4s %8llu %9ld %8ld %9ld %7.1f %10ld %9ld\n",
	       implicit ? "implicit" : "explicit", thp ? "thp" : "4k",
	       (unsigned long long)(size >> 20), e2, c2, k2 - k1,
	       (k2 - k1) * 1024.0 / (size / 4096), k3 - k1, k4 - k0);
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t sizes[MAX_SIZES] = { 64ULL << 20, 256ULL << 20, 1ULL << 30 };
	int nsizes = 3, modes[2] = { 0, 1 }, nmodes = 2, thp = 0, opt, i, j;
	struct vu_qp_pair qps = { 0 };
	struct vu_ctx v;
	struct ibv_mr *lmr;
	uint64_t *res;
	char *tok;

	while ((opt = getopt(argc, argv, "s:m:t")) != -1) {
		switch (opt) {
		case 's':
			nsizes = 0;
			for (tok = strtok(optarg, ","); tok && nsizes < MAX_SIZES;
			     tok = strtok(NULL, ","))
				if (resident_parse_size(tok, &sizes[nsizes++]))
					return 2;
			break;
		case 'm':
			nmodes = 0;
			for (tok = strtok(optarg, ","); tok && nmodes < 2;
			     tok = strtok(NULL, ","))
				modes[nmodes++] = !strcmp(tok, "implicit");
			break;
		case 't':
			thp = 1;
			break;
		default:
			fprintf(stderr, "usage: %s [-s SIZE,...] [-m explicit,implicit] [-t]\n",
				argv[0]);
			return 2;
		}
	}
	if (resident_open(&v, &qps, &res, &lmr))
		return 1;
	if (live("entries") < 0) {
		fprintf(stderr, "no %s: not our odp_mirror?\n", LIVE_PATH);
		return 1;
	}
	printf("%-8s %-4s %8s %9s %8s %9s %7s %10s %9s\n", "mode", "page",
	       "res MiB", "entries", "children", "table KiB", "B/page",
	       "munmap KiB", "dereg KiB");
	for (i = 0; i < nmodes; i++)
		for (j = 0; j < nsizes; j++)
			if (row(&v, &qps, res, lmr, sizes[j], modes[i], thp))
				return 1;
	resident_close(&v, &qps, res, lmr);
	return 0;
}
