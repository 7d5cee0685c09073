// SPDX-License-Identifier: GPL-2.0
/*
 * program - a program is a list of operations generated up front from a
 * seed. An operation is a kind and raw random numbers; the worker
 * resolves them against its state when it runs the operation (which
 * region, which MR, which offset), so that any subset of a program is a
 * valid program too: an operation that finds nothing to act on does
 * nothing. That is what lets the shrinker drop operations freely.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

static const struct {
	const char	*name;
	unsigned int	weight;
} kinds[OP_NR_KINDS] = {
	[OP_MAP]		= { "map",		8 },
	[OP_UNMAP]		= { "unmap",		2 },
	[OP_UNMAP_PART]		= { "unmap_part",	3 },
	[OP_REMAP]		= { "remap",		4 },
	[OP_MPROTECT]		= { "mprotect",		6 },
	[OP_MADVISE]		= { "madvise",		6 },
	[OP_HWPOISON]		= { "hwpoison",		0 },	/* see below */
	[OP_MREMAP]		= { "mremap",		2 },
	[OP_MIGRATE]		= { "migrate",		2 },
	[OP_FORK]		= { "fork",		1 },
	[OP_KILL_CHILD]		= { "kill_child",	1 },
	[OP_REG_ODP]		= { "reg_odp",		7 },
	[OP_REG_IMPLICIT]	= { "reg_implicit",	2 },
	[OP_REG_PINNED]		= { "reg_pinned",	4 },
	[OP_DEREG]		= { "dereg",		3 },
	[OP_WRITE]		= { "write",		14 },
	[OP_READ]		= { "read",		12 },
	[OP_SEND]		= { "send",		8 },
	[OP_FETCH_ADD]		= { "fetch_add",	5 },
	[OP_CMP_SWP]		= { "cmp_swp",		4 },
	[OP_ATOMIC_WRITE]	= { "atomic_write",	4 },
	[OP_FLUSH]		= { "flush",		3 },
	[OP_ADVISE]		= { "advise",		3 },
	[OP_QP_ERR]		= { "qp_err",		1 },
	[OP_CTX_CLOSE]		= { "ctx_close",	1 },
	[OP_CHECK_ALL]		= { "check_all",	1 },
};

/* MADV_HWPOISON loses a page for good: about one op in 400 */
#define HWPOISON_PER	400

const char *op_name(unsigned int kind)
{
	return kind < OP_NR_KINDS ? kinds[kind].name : "?";
}

int op_kind_by_name(const char *name)
{
	int i;

	for (i = 0; i < OP_NR_KINDS; i++)
		if (!strcmp(kinds[i].name, name))
			return i;
	return -1;
}

void program_generate(struct program *p, uint64_t seed, size_t nops,
		      int nprocs, int nthreads)
{
	unsigned int total = 0, w;
	struct prng r;
	size_t i;
	int k, j;

	for (k = 0; k < OP_NR_KINDS; k++)
		total += kinds[k].weight;
	prng_seed(&r, seed);
	p->seed = seed;
	p->nprocs = nprocs;
	p->nthreads = nthreads;
	p->nops = nops;
	p->ops = calloc(nops ? nops : 1, sizeof(*p->ops));
	if (!p->ops) {
		perror("rxe_fuzz: calloc");
		exit(2);
	}
	for (i = 0; i < nops; i++) {
		struct op *o = &p->ops[i];

		o->proc = (uint16_t)prng_below(&r, (uint32_t)nprocs);
		if (prng_below(&r, HWPOISON_PER) == 0) {
			o->kind = OP_HWPOISON;
		} else {
			w = prng_below(&r, total);
			for (k = 0; k < OP_NR_KINDS; k++) {
				if (w < kinds[k].weight)
					break;
				w -= kinds[k].weight;
			}
			o->kind = (uint16_t)k;
		}
		for (j = 0; j < OP_NARGS; j++)
			o->a[j] = (uint32_t)prng_next(&r);
	}
}

void program_free(struct program *p)
{
	free(p->ops);
	p->ops = NULL;
}

void program_print(FILE *f, const struct program *p, const bool *keep)
{
	size_t i;
	int j;

	fprintf(f, "# rxe_fuzz program: seed %llu procs %d threads %d ops %zu\n",
		(unsigned long long)p->seed, p->nprocs, p->nthreads, p->nops);
	for (i = 0; i < p->nops; i++) {
		const struct op *o = &p->ops[i];

		if (keep && !keep[i])
			continue;
		fprintf(f, "%zu p%u %s", i, o->proc, op_name(o->kind));
		for (j = 0; j < OP_NARGS; j++)
			fprintf(f, " %u", o->a[j]);
		fputc('\n', f);
	}
	fflush(f);
}

/* The format program_print() writes; '#' lines give seed and shape. */
int program_load(struct program *p, const char *path)
{
	unsigned long long seed = 0;
	size_t cap = 64, idx;
	char line[512], name[64];
	unsigned int proc;
	FILE *f;
	int n, j, off, pos;

	memset(p, 0, sizeof(*p));
	p->nprocs = 1;
	f = fopen(path, "r");
	if (!f)
		return -errno;
	p->ops = calloc(cap, sizeof(*p->ops));
	if (!p->ops) {
		fclose(f);
		return -ENOMEM;
	}
	while (fgets(line, sizeof(line), f)) {
		struct op *o;

		if (line[0] == '#') {
			sscanf(line, "# rxe_fuzz program: seed %llu procs %d threads %d",
			       &seed, &p->nprocs, &p->nthreads);
			continue;
		}
		if (sscanf(line, "%zu p%u %63s%n", &idx, &proc, name, &off) != 3)
			continue;
		n = op_kind_by_name(name);
		if (n < 0) {
			fprintf(stderr, "rxe_fuzz: %s: unknown op %s\n", path, name);
			fclose(f);
			return -EINVAL;
		}
		if (p->nops == cap) {
			struct op *more = realloc(p->ops, 2 * cap * sizeof(*more));

			if (!more) {
				fclose(f);
				return -ENOMEM;
			}
			p->ops = more;
			cap *= 2;
		}
		o = &p->ops[p->nops++];
		memset(o, 0, sizeof(*o));
		o->proc = (uint16_t)proc;
		o->kind = (uint16_t)n;
		for (j = 0; j < OP_NARGS; j++) {
			if (sscanf(line + off, "%u%n", &o->a[j], &pos) != 1)
				break;
			off += pos;
		}
		if ((int)proc >= p->nprocs)
			p->nprocs = (int)proc + 1;
	}
	fclose(f);
	p->seed = seed;
	return 0;
}
