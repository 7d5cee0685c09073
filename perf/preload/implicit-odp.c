// SPDX-License-Identifier: GPL-2.0
/*
 * implicit-odp.so: LD_PRELOAD it into a verbs program (perftest) to have
 * each ODP registration made implicit. ibv_reg_mr(pd, addr, len,
 * IBV_ACCESS_ON_DEMAND | ...) becomes ibv_reg_mr(pd, NULL, SIZE_MAX, same
 * access): one MR of the whole address space, whose iova is the virtual
 * address, so the program's addresses and keys work unchanged. Other
 * registrations, and implicit ones, pass through. Each call still gets
 * an MR of its own, which the program deregisters as before.
 *
 * perftest has no implicit ODP option; perf/sweep.sh runs its --odp
 * runs with this to measure implicit ODP beside explicit.
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <infiniband/verbs.h>

#undef ibv_reg_mr
#undef ibv_reg_mr_iova

typedef struct ibv_mr *(*reg_iova2_fn)(struct ibv_pd *, void *, size_t,
				       uint64_t, unsigned int);

static unsigned int made_implicit;

static struct ibv_mr *reg_implicit(struct ibv_pd *pd, unsigned int access)
{
	static reg_iova2_fn real;
	struct ibv_mr *mr;

	if (!real)
		real = (reg_iova2_fn)dlsym(RTLD_NEXT, "ibv_reg_mr_iova2");
	mr = real ? real(pd, NULL, SIZE_MAX, 0, access) : NULL;
	if (mr)
		made_implicit++;
	return mr;
}

/* What the caller's log shows: how many registrations were made implicit. */
__attribute__((destructor)) static void report(void)
{
	fprintf(stderr, "implicit-odp: %u registrations made implicit\n",
		made_implicit);
}

static int explicit_odp(void *addr, size_t length, unsigned int access)
{
	return (access & IBV_ACCESS_ON_DEMAND) &&
	       !(addr == NULL && length == SIZE_MAX);
}

struct ibv_mr *ibv_reg_mr_iova2(struct ibv_pd *pd, void *addr, size_t length,
				uint64_t iova, unsigned int access)
{
	static reg_iova2_fn real;

	if (explicit_odp(addr, length, access) && iova == (uintptr_t)addr)
		return reg_implicit(pd, access);
	if (!real)
		real = (reg_iova2_fn)dlsym(RTLD_NEXT, "ibv_reg_mr_iova2");
	return real ? real(pd, addr, length, iova, access) : NULL;
}

struct ibv_mr *ibv_reg_mr(struct ibv_pd *pd, void *addr, size_t length,
			  int access)
{
	return ibv_reg_mr_iova2(pd, addr, length, (uintptr_t)addr, access);
}
