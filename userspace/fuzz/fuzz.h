/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rxe_fuzz - shared declarations of the seeded verbs + mm fuzzer (see
 * main.c for what it does and how to run it).
 *
 * prng.c     the generator (splitmix64), reproducible from a seed
 * program.c  the operations: kinds, generation, printing, parsing
 * oracle.c   the shadow of every buffer byte and what each access must do
 * exec.c     one worker process: verbs objects, mm, threads, the ops
 * shrink.c   runs (sub)programs in fresh processes, shrinks a failure
 * main.c     the command line
 */
#ifndef RXE_FUZZ_H
#define RXE_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* prng.c */
struct prng {
	uint64_t	s;
};

void prng_seed(struct prng *r, uint64_t seed);
uint64_t prng_next(struct prng *r);
/* uniform in [0, n); n > 0 */
uint32_t prng_below(struct prng *r, uint32_t n);
/* true with probability num/den */
bool prng_chance(struct prng *r, uint32_t num, uint32_t den);
/* mix two values into a new seed */
uint64_t prng_mix(uint64_t a, uint64_t b);

/* program.c */
enum op_kind {
	OP_MAP,		/* create a region in a free slot */
	OP_UNMAP,	/* munmap a whole region */
	OP_UNMAP_PART,	/* munmap pages of a region (THP split) */
	OP_REMAP,	/* mmap MAP_FIXED fresh memory over pages */
	OP_MPROTECT,	/* PROT_READ, PROT_NONE or back to RW */
	OP_MADVISE,	/* DONTNEED, FREE, PAGEOUT, HUGEPAGE+COLLAPSE */
	OP_HWPOISON,	/* MADV_HWPOISON of one page (sparingly) */
	OP_MREMAP,	/* move a region to its slot's other half */
	OP_MIGRATE,	/* move_pages() of a range to the other node */
	OP_FORK,	/* child reads and writes its copy, exits */
	OP_KILL_CHILD,	/* child with its own traffic in flight, SIGKILLed */
	OP_REG_ODP,	/* explicit ODP MR over a range */
	OP_REG_IMPLICIT,
	OP_REG_PINNED,
	OP_DEREG,
	OP_WRITE,
	OP_READ,
	OP_SEND,
	OP_FETCH_ADD,
	OP_CMP_SWP,
	OP_ATOMIC_WRITE,	/* 8 bytes, extended send API (rdma-core 65) */
	OP_FLUSH,	/* FLUSH global, of a range or the MR (65) */
	OP_ADVISE,	/* ibv_advise_mr prefetch, sync or async */
	OP_QP_ERR,	/* QP to ERR and back through RESET/INIT/RTR/RTS */
	OP_CTX_CLOSE,	/* close the context (every MR and QP), reopen */
	OP_CHECK_ALL,	/* compare every CPU-readable byte with the shadow */
	OP_NR_KINDS
};

#define OP_NARGS	8

struct op {
	uint16_t	proc;	/* worker that runs it */
	uint16_t	kind;	/* enum op_kind */
	uint32_t	a[OP_NARGS];	/* raw random arguments, resolved late */
};

struct program {
	uint64_t	seed;
	int		nprocs;
	int		nthreads;
	size_t		nops;
	struct op	*ops;
};

const char *op_name(unsigned int kind);
int op_kind_by_name(const char *name);
void program_generate(struct program *p, uint64_t seed, size_t nops,
		      int nprocs, int nthreads);
void program_free(struct program *p);
/* One op a line: "<index> p<proc> <kind> <a0> ... <a7>" */
void program_print(FILE *f, const struct program *p, const bool *keep);
int program_load(struct program *p, const char *path);

/* exec.c: run the ops of worker @proc; 0 ok, 1 failure (message in @msg) */
#define FUZZ_MSG_LEN	1024

struct fuzz_result {
	int		failed;		/* a worker failed */
	int		setup;		/* a setup problem, not a finding */
	long		op;		/* program index of the failing op */
	char		msg[FUZZ_MSG_LEN];
	long		ops_run;	/* ops executed, all workers */
	long		skipped;	/* of those, found nothing to act on */
	long		xfers;		/* work requests completed */
	long		errs;		/* of those, with the error expected */
};

int exec_worker(const struct program *p, const bool *keep, int proc,
		struct fuzz_result *res);
/* one-time setup in the parent (hugepages); never fails */
void exec_global_setup(bool verbose);

/* shrink.c */
/*
 * Run @p (the ops whose @keep entry is true; NULL: all) in a fresh
 * process tree, bounded in time. Returns 0 ok, 1 failure, 2 setup.
 */
int run_program(const struct program *p, const bool *keep,
		struct fuzz_result *res, int timeout_s);
/* Shrink a failing @p; @keep gets the smallest failing op set found. */
void shrink_program(const struct program *p, bool *keep, int timeout_s,
		    struct fuzz_result *res);

extern int fuzz_verbose;

#endif /* RXE_FUZZ_H */
