// SPDX-License-Identifier: GPL-2.0
/*
 * rxe_fuzz - a seeded verbs + mm fuzzer for rxe's ODP (issue 13).
 *
 *   rxe_fuzz [--seed S] [--ops N] [--procs P] [--threads T] [--minutes M]
 *            [--replay FILE] [--keep I,J,...] [--save FILE] [--no-shrink]
 *            [--verbose]
 *
 * A program is N operations generated up front from seed S (program.c):
 * map/munmap/MAP_FIXED remap/mprotect/madvise (DONTNEED, FREE, PAGEOUT,
 * HUGEPAGE+COLLAPSE)/MADV_HWPOISON (rarely: the page is lost for good)/
 * mremap/move_pages of anonymous, THP and hugetlb regions; fork (the child
 * touches its copy and exits); a child with its own context and traffic in
 * flight, SIGKILLed; registration and deregistration of explicit ODP,
 * implicit ODP (NULL, SIZE_MAX) and pinned MRs; RDMA WRITE, READ and
 * SEND/RECV with 1-3 SGEs at random offsets and lengths (up to 256 KiB),
 * FETCH_ADD and CMP_SWP; ATOMIC_WRITE, and FLUSH (global or persistent,
 * of a range or of the MR) on MRs with or without IBV_ACCESS_FLUSH_GLOBAL,
 * through rdma-core 65's ibv_wr_*() (skipped when built against 44);
 * ibv_advise_mr prefetch, sync and async (skipped when the provider has
 * none: rdma-core 44's rxe); QP to ERR and back through RESET/INIT/RTR/
 * RTS; closing and reopening the context.
 *
 * P worker processes run the operations that name them, each with its own
 * context, PD and loopback RC QP pair on RXE_ODP_DEV (default rxe0, else
 * the first device; GID index RXE_ODP_GID_IDX, default 1), its regions in
 * a reserved arena, and T threads that churn its memory without changing a
 * byte (MADV_PAGEOUT, move_pages() between NUMA nodes 0 and 1, THP
 * collapse). With --minutes, programs with seeds S, S+1, ... run until the
 * time is up; otherwise one program runs.
 *
 * The oracle (oracle.c) keeps a shadow of every byte of every region and
 * of the pages pinned MRs kept, and checks:
 *  - every completion status against the CPU permissions of the moment:
 *    an ODP MR reaches what the CPU maps now (a remote access to a page
 *    that is unmapped, PROT_NONE or poisoned, or a write to a PROT_READ
 *    one, ends with IBV_WC_REM_ACCESS_ERR, a SEND into such a receive
 *    buffer with IBV_WC_REM_OP_ERR and the receive with LOC_PROT_ERR, a
 *    local SGE there with IBV_WC_LOC_PROT_ERR); a pinned MR keeps its old
 *    pages whatever munmap, MAP_FIXED or MADV_DONTNEED do; an MR without
 *    the remote access bit refuses that access;
 *  - after each completion, the destination bytes, the source bytes and
 *    a page of guard on either side of each, byte for byte: the bytes of
 *    a refused message before the first refused byte may hold their old
 *    or new value, none from it on may change; MADV_FREE memory may read
 *    zeros; fork children and killed children never change a byte of ours;
 *  - every CPU-readable byte at the end (and at check_all operations).
 * After an error completion both QPs are replaced by new ones before any
 * byte is checked: the responder may still be writing packets of a
 * request that its requester already failed.
 *
 * A failure prints its seed and message, then shrinks (shrink.c; each
 * candidate in fresh processes) and prints the shrunk program, one
 * operation a line, which --replay FILE runs again (or --seed S --keep
 * with its op indices). Every wait is bounded: a hang is a failure. The
 * bounds (30 s a completion, a program's whole run) are multiplied by
 * RXE_ODP_TIME_SCALE, as the C tests' are (make fuzz FUZZ_DEBUG=1 sets 5).
 *
 * Output ends with "rxe_fuzz: N programs, N ops, N failed"; exit status
 * 0: nothing found, 1: a failure (shrunk program printed), 2: setup
 * problem (no device, bad arguments).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fuzz.h"
#include "verbs_util.h"

int fuzz_verbose;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: rxe_fuzz [--seed S] [--ops N] [--procs P] [--threads T]\n"
		"                [--minutes M] [--replay FILE] [--keep I,J,...]\n"
		"                [--save FILE] [--no-shrink] [--verbose]\n");
}

static int64_t now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static int parse_keep(const char *list, bool *keep, size_t n)
{
	char *s = strdup(list), *tok, *save = NULL;
	unsigned long i;

	if (!s)
		return -1;
	memset(keep, 0, n * sizeof(*keep));
	for (tok = strtok_r(s, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		i = strtoul(tok, NULL, 0);
		if (i >= n) {
			free(s);
			return -1;
		}
		keep[i] = true;
	}
	free(s);
	return 0;
}

static void report(const struct program *p, const bool *keep,
		   const struct fuzz_result *r, const char *save,
		   const char *replay)
{
	size_t i, n = 0;
	FILE *f;

	for (i = 0; i < p->nops; i++)
		n += !keep || keep[i];
	printf("rxe_fuzz: shrunk program (seed %llu, %zu of %zu ops) still fails: %s\n",
	       (unsigned long long)p->seed, n, p->nops, r->msg);
	if (replay)
		printf("rxe_fuzz: replay: rxe_fuzz --replay %s --no-shrink --keep ",
		       replay);
	else
		printf("rxe_fuzz: replay: rxe_fuzz --seed %llu --ops %zu --procs %d --threads %d --no-shrink --keep ",
		       (unsigned long long)p->seed, p->nops, p->nprocs,
		       p->nthreads);
	for (i = 0, n = 0; i < p->nops; i++)
		if (!keep || keep[i])
			printf("%s%zu", n++ ? "," : "", i);
	printf("\n");
	program_print(stdout, p, keep);
	if (save) {
		f = fopen(save, "w");
		if (f) {
			fprintf(f, "# %s\n", r->msg);
			program_print(f, p, keep);
			fclose(f);
		}
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "seed", required_argument, NULL, 's' },
		{ "ops", required_argument, NULL, 'n' },
		{ "procs", required_argument, NULL, 'p' },
		{ "threads", required_argument, NULL, 't' },
		{ "minutes", required_argument, NULL, 'm' },
		{ "replay", required_argument, NULL, 'r' },
		{ "keep", required_argument, NULL, 'k' },
		{ "save", required_argument, NULL, 'o' },
		{ "no-shrink", no_argument, NULL, 'x' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	unsigned long long seed = 1;
	long nops = 200, procs = 2, threads = 1;
	double minutes = 0;
	const char *replay = NULL, *keep_list = NULL, *save = NULL;
	bool shrink = true;
	long programs = 0, total_ops = 0, failed = 0;
	long skipped = 0, xfers = 0, errs = 0;
	struct fuzz_result r;
	struct program p;
	int64_t end;
	bool *keep;
	int c, ret, timeout;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((c = getopt_long(argc, argv, "s:n:p:t:m:r:k:o:xvh", opts,
				NULL)) != -1) {
		switch (c) {
		case 's':
			seed = strtoull(optarg, NULL, 0);
			break;
		case 'n':
			nops = strtol(optarg, NULL, 0);
			break;
		case 'p':
			procs = strtol(optarg, NULL, 0);
			break;
		case 't':
			threads = strtol(optarg, NULL, 0);
			break;
		case 'm':
			minutes = strtod(optarg, NULL);
			break;
		case 'r':
			replay = optarg;
			break;
		case 'k':
			keep_list = optarg;
			break;
		case 'o':
			save = optarg;
			break;
		case 'x':
			shrink = false;
			break;
		case 'v':
			fuzz_verbose = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (nops < 1 || procs < 1 || procs > 16 || threads < 0 ||
	    threads > 4 || minutes < 0) {
		usage(stderr);
		return 2;
	}
	exec_global_setup(fuzz_verbose);
	end = now_s() + (int64_t)(minutes * 60);
	for (;;) {
		if (replay) {
			ret = program_load(&p, replay);
			if (ret) {
				fprintf(stderr, "rxe_fuzz: %s: %s\n", replay,
					strerror(-ret));
				return 2;
			}
		} else {
			program_generate(&p, seed, (size_t)nops, (int)procs,
					 (int)threads);
		}
		keep = calloc(p.nops ? p.nops : 1, sizeof(*keep));
		if (!keep)
			return 2;
		memset(keep, 1, p.nops * sizeof(*keep));
		if (keep_list && parse_keep(keep_list, keep, p.nops)) {
			fprintf(stderr, "rxe_fuzz: --keep: bad index list\n");
			return 2;
		}
		printf("rxe_fuzz: seed %llu\n", (unsigned long long)p.seed);
		timeout = (120 + 3 * (int)(p.nops / (size_t)p.nprocs + 1)) *
			  (int)vu_time_scale();
		ret = run_program(&p, keep, &r, timeout);
		programs++;
		total_ops += r.ops_run;
		skipped += r.skipped;
		xfers += r.xfers;
		errs += r.errs;
		if (ret == 2) {
			printf("rxe_fuzz: setup problem: %s\n", r.msg);
			printf("rxe_fuzz: %ld programs, %ld ops, %ld failed\n",
			       programs, total_ops, failed);
			return 2;
		}
		if (ret == 1) {
			failed++;
			printf("rxe_fuzz: FAIL seed %llu: %s\n",
			       (unsigned long long)p.seed, r.msg);
			if (shrink)
				shrink_program(&p, keep, timeout, &r);
			report(&p, keep, &r, save, replay);
			printf("rxe_fuzz: %ld programs, %ld ops, %ld failed\n",
			       programs, total_ops, failed);
			return 1;
		}
		free(keep);
		program_free(&p);
		if (replay || !minutes || now_s() >= end)
			break;
		seed++;
	}
	printf("rxe_fuzz: %ld programs, %ld ops, %ld failed (%ld ops found nothing to act on; %ld work requests, %ld of them with the error completion the oracle expected)\n",
	       programs, total_ops, failed, skipped, xfers, errs);
	return 0;
}
