// SPDX-License-Identifier: GPL-2.0
/*
 * prng - splitmix64: every program, every worker's and thread's choices
 * follow from the seed printed first, so a run can be repeated.
 */
#include <stdio.h>

#include "fuzz.h"

void prng_seed(struct prng *r, uint64_t seed)
{
	r->s = seed * 0x9e3779b97f4a7c15ull + 0x2545f4914f6cdd1dull;
}

uint64_t prng_next(struct prng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint32_t prng_below(struct prng *r, uint32_t n)
{
	return (uint32_t)((prng_next(r) >> 32) * n >> 32);
}

bool prng_chance(struct prng *r, uint32_t num, uint32_t den)
{
	return prng_below(r, den) < num;
}

uint64_t prng_mix(uint64_t a, uint64_t b)
{
	struct prng r;

	prng_seed(&r, a ^ (b * 0xd6e8feb86659fd93ull));
	return prng_next(&r);
}
