/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the benchmarks that fill an ODP MR's translation table share:
 * a size parser and one FETCH_ADD per 2 MiB that makes all the present
 * pages of a region resident in its MR (a device fault records the
 * present pages of the 2 MiB around it).
 */
#ifndef PERF_RESIDENT_H
#define PERF_RESIDENT_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "verbs_util.h"

#define RESIDENT_SPAN	(2UL << 20)

/* "256M", "1G", "4096" ... into *@out; 0, or -1 for a bad or zero size. */
static inline int resident_parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);

	switch (*end) {
	case 'K': v <<= 10; break;
	case 'M': v <<= 20; break;
	case 'G': v <<= 30; break;
	case '\0': break;
	default: return -1;
	}
	*out = v;
	return v ? 0 : -1;
}

/*
 * Open the device of the environment (vu_config_from_env()), a QP pair,
 * and a 4 KiB buffer with its MR for resident_touch()'s results.
 * 0, or -1 (what failed is on stderr).
 */
static inline int resident_open(struct vu_ctx *v, struct vu_qp_pair *qps,
				uint64_t **res, struct ibv_mr **lmr)
{
	struct vu_config cfg;

	vu_config_init(&cfg);
	if (vu_config_from_env(&cfg) || vu_open(v, &cfg) ||
	    vu_qp_pair_create(v, qps))
		return -1;
	*res = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	*lmr = *res == MAP_FAILED ? NULL :
	       vu_reg_mr(v, *res, 4096, IBV_ACCESS_LOCAL_WRITE);
	return *lmr ? 0 : -1;
}

/* Undo resident_open(). */
static inline void resident_close(struct vu_ctx *v, struct vu_qp_pair *qps,
				  uint64_t *res, struct ibv_mr *lmr)
{
	vu_dereg_mr(v, lmr);
	munmap(res, 4096);
	vu_qp_pair_destroy(v, qps);
	vu_close(v);
}

/* One FETCH_ADD of 0 at @raddr; 0 when it succeeded. */
static inline int resident_touch(struct vu_ctx *v, struct vu_qp_pair *qps,
				 uint64_t *res, uint32_t lkey, uint64_t raddr,
				 uint32_t rkey)
{
	struct ibv_sge sge = { (uintptr_t)res, 8, lkey };
	struct ibv_send_wr wr = {
		.sg_list = &sge, .num_sge = 1,
		.opcode = IBV_WR_ATOMIC_FETCH_AND_ADD,
		.send_flags = IBV_SEND_SIGNALED,
		.wr.atomic = { .remote_addr = raddr, .rkey = rkey },
	}, *bad;
	struct ibv_wc wc;

	if (ibv_post_send(qps->a.qp, &wr, &bad) ||
	    vu_poll_one(v, &qps->a, &wc))
		return -1;
	return wc.status == IBV_WC_SUCCESS ? 0 : -1;
}

/*
 * Make the present pages of [@buf, @buf + @size) resident in @mr (rkey),
 * whose first byte is @buf's: one FETCH_ADD per 2 MiB, its 8-byte result
 * into @res (@lkey). 0, or -1 with a line on stderr.
 */
static inline int resident_fill(struct vu_ctx *v, struct vu_qp_pair *qps,
				uint64_t *res, uint32_t lkey, uint8_t *buf,
				uint64_t size, uint32_t rkey)
{
	uint64_t off;

	for (off = 0; off < size; off += RESIDENT_SPAN) {
		if (resident_touch(v, qps, res, lkey, (uintptr_t)buf + off,
				   rkey)) {
			fprintf(stderr, "FETCH_ADD at +%llu failed\n",
				(unsigned long long)off);
			return -1;
		}
	}
	return 0;
}

#endif
