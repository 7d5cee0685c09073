/* SPDX-License-Identifier: GPL-2.0 */
/*
 * test_util - byte patterns and byte-exact buffer checks shared by the C
 * tests. Header only (static inline), so that tests/c/ holds one .c per
 * test binary; include it after kselftest_harness.h (ksft_print_msg).
 */
#ifndef TEST_UTIL_H
#define TEST_UTIL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv_file.h"
#include "verbs_util.h"

#define TU_GUARD	0x5a	/* bytes no operation may touch */
#define TU_POISON	0xa5	/* destination bytes before a transfer */

/* Byte @i of pattern @seed; never TU_GUARD, TU_POISON or 0. */
static inline uint8_t tu_pattern(size_t i, unsigned int seed)
{
	uint32_t x = (uint32_t)i * 2654435761u ^ (seed + 1) * 0x9e3779b9u;
	uint8_t b;

	x ^= x >> 15;
	b = (uint8_t)(x ^ (x >> 8));
	if (b == TU_GUARD || b == TU_POISON || b == 0)
		b = 0x11;
	return b;
}

static inline void tu_fill(void *p, size_t n, unsigned int seed)
{
	uint8_t *b = p;
	size_t i;

	for (i = 0; i < n; i++)
		b[i] = tu_pattern(i, seed);
}

/* What byte i of a checked range must be: @buf[i], else pattern @seed, else @val. */
struct tu_want {
	const uint8_t	*buf;
	int		seed;	/* < 0: none */
	uint8_t		val;
};

/* Compare @n bytes at @got with @want; log the first few differences. */
static inline bool tu_check(const char *what, const void *got,
			    struct tu_want want, size_t n)
{
	const uint8_t *g = got;
	size_t i, bad = 0;
	uint8_t w;

	for (i = 0; i < n; i++) {
		w = want.buf ? want.buf[i] :
		    want.seed >= 0 ? tu_pattern(i, want.seed) : want.val;
		if (g[i] == w)
			continue;
		if (bad++ < 4)
			ksft_print_msg("%s: byte %zu is 0x%02x, want 0x%02x\n",
				       what, i, g[i], w);
	}
	if (bad)
		ksft_print_msg("%s: %zu of %zu bytes differ\n", what, bad, n);
	return !bad;
}

/* @n bytes at @got equal those at @want. */
static inline bool tu_same_bytes(const char *what, const void *got,
				 const void *want, size_t n)
{
	return tu_check(what, got, (struct tu_want){ .buf = want, .seed = -1 },
			n);
}

/* @n bytes at @got all equal @val. */
static inline bool tu_all_bytes(const char *what, const void *got,
				uint8_t val, size_t n)
{
	return tu_check(what, got, (struct tu_want){ .seed = -1, .val = val },
			n);
}

/* @n bytes at @got hold pattern @seed. */
static inline bool tu_pattern_bytes(const char *what, const void *got,
				    unsigned int seed, size_t n)
{
	return tu_check(what, got, (struct tu_want){ .seed = (int)seed }, n);
}

/*
 * Configure @cfg from the environment (vu_config_from_env(), diagnostics
 * as TAP comments) and vu_open() @v with it. Returns 0, -ENODEV when the
 * device does not exist, or another negative errno.
 */
static inline int tu_open(struct vu_config *cfg, struct vu_ctx *v)
{
	int ret;

	vu_config_init(cfg);
	cfg->log_prefix = "# ";
	ret = vu_config_from_env(cfg);
	return ret ? ret : vu_open(v, cfg);
}

/*
 * In a test or a fixture's setup: open the environment's RDMA device into
 * @v (tu_open(); the test is skipped when there is no such device) and
 * read its extended attributes into @ax.
 */
#define TU_OPEN_QUERY(cfg, v, ax) do {					\
	int __ret = tu_open(cfg, v);					\
									\
	if (__ret == -ENODEV)						\
		SKIP(return, "no RDMA device %s", (cfg)->dev_name);	\
	ASSERT_EQ(0, __ret);						\
	memset(ax, 0, sizeof(*(ax)));					\
	__ret = ibv_query_device_ex((v)->ctx, NULL, ax);		\
	ASSERT_EQ(0, __ret) TH_LOG("ibv_query_device_ex: %s",		\
				   strerror(__ret));			\
} while (0)

/* ---- one operation at a time ---------------------------------------- */

/* The status of @q's next completion, or -1 when none came in time. */
static inline int tu_reap(struct vu_ctx *v, struct vu_qp *q)
{
	struct ibv_wc wc;

	if (vu_poll_one(v, q, &wc))
		return -1;
	return wc.status;
}

/*
 * Post one RDMA WRITE or READ on @q with the local SGE [@laddr, +@len)
 * (@lkey) at @raddr/@rkey; wait for its completion. Returns its status,
 * or -1 when it could not be posted or did not complete in time.
 */
static inline int tu_xfer(struct vu_ctx *v, struct vu_qp *q,
			  enum ibv_wr_opcode op, void *laddr, uint32_t len,
			  uint32_t lkey, uint64_t raddr, uint32_t rkey)
{
	if (vu_post_send(v, q, op, 7, laddr, len, lkey, raddr, rkey))
		return -1;
	return tu_reap(v, q);
}

/*
 * Post one 8-byte FETCH_ADD or CMP_AND_SWP on @q at @raddr/@rkey, the
 * original value landing in *@res (@lkey); wait for its completion.
 * Returns as tu_xfer().
 */
static inline int tu_atomic(struct vu_ctx *v, struct vu_qp *q,
			    enum ibv_wr_opcode op, uint64_t *res, uint32_t lkey,
			    uint64_t raddr, uint32_t rkey, uint64_t compare_add,
			    uint64_t swap)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)res, .length = sizeof(*res), .lkey = lkey,
	};
	struct ibv_send_wr wr = {
		.wr_id = 8, .sg_list = &sge, .num_sge = 1, .opcode = op,
		.send_flags = IBV_SEND_SIGNALED,
		.wr.atomic = {
			.remote_addr = raddr, .compare_add = compare_add,
			.swap = swap, .rkey = rkey,
		},
	};
	struct ibv_send_wr *bad;

	if (ibv_post_send(q->qp, &wr, &bad))
		return -1;
	return tu_reap(v, q);
}

/* Require completion status @want of tu_xfer() or tu_atomic(). */
#define TU_ASSERT_WC(want, expr) do {					\
	int __st = (expr);						\
	ASSERT_EQ(want, __st)						\
		TH_LOG("completion %s (%d), want %s",			\
		       __st < 0 ? "missing" :				\
		       ibv_wc_status_str((enum ibv_wc_status)__st), __st, \
		       ibv_wc_status_str(want));			\
} while (0)
#define TU_ASSERT_OK(expr)	TU_ASSERT_WC(IBV_WC_SUCCESS, expr)

/* ---- small files: sysfs, procfs, cgroupfs ----------------------------- */

/* The number a file starts with; -1 if it cannot be read. */
static inline long tu_read_long(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -1;

	if (!f)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

/* Write "@v\n" to a file. Returns 0 or a negative errno. */
static inline int tu_write_long(const char *path, long v)
{
	FILE *f = fopen(path, "w");
	int ret;

	if (!f)
		return -errno;
	ret = fprintf(f, "%ld\n", v) < 0 ? -EIO : 0;
	if (fclose(f) && !ret)
		ret = -errno;
	return ret;
}

/* ---- counters: rdma statistic, rdma resource, odp_mirror's debugfs ---- */

#define TU_LIVE_PATH	"/sys/kernel/debug/odp_mirror/live"

/* A line "NAME VALUE" of odp_mirror's debugfs file; -1 if missing. */
static inline long tu_live_count(const char *name)
{
	return (long)kv_file_value(TU_LIVE_PATH, name);
}

/*
 * The number after " NAME " in the first line of COMMAND's output that
 * contains MATCH; -1 if there is none.
 */
static inline long long tu_field_of(const char *command, const char *match,
				    const char *name)
{
	char line[1024], pat[80];
	long long v = -1;
	FILE *p = popen(command, "r");

	if (!p)
		return -1;
	snprintf(pat, sizeof(pat), " %s ", name);
	while (v < 0 && fgets(line, sizeof(line), p)) {
		char *at = strstr(line, pat);

		if (at && strstr(line, match))
			v = strtoll(at + strlen(pat), NULL, 10);
	}
	/* read to the end: the writer must not die of SIGPIPE */
	while (fgets(line, sizeof(line), p))
		;
	pclose(p);
	return v;
}

/*
 * The per-MR counter NAME (page_faults, page_invalidations,
 * page_prefetch) of the MR with remote key RKEY, from `rdma -d statistic
 * mr`, found by its restrack number in `rdma resource show mr`; -1 if not
 * shown.
 */
static inline long long tu_mr_counter(uint32_t rkey, const char *name)
{
	char match[32];
	long long mrn;

	snprintf(match, sizeof(match), " rkey 0x%x ", rkey);
	mrn = tu_field_of("rdma resource show mr", match, "mrn");
	if (mrn < 0)
		return -1;
	snprintf(match, sizeof(match), " mrn %lld ", mrn);
	return tu_field_of("rdma -d statistic mr", match, name);
}

/*
 * The value of the "@field:" line (kB) of the /proc/self/smaps entry of
 * the mapping that contains @addr; -1 if there is none.
 */
static inline long tu_smaps_kb(const void *addr, const char *field)
{
	char line[512];
	unsigned long lo, hi, a = (uintptr_t)addr;
	size_t flen = strlen(field);
	bool in = false;
	long v = -1;
	FILE *f = fopen("/proc/self/smaps", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			in = lo <= a && a < hi;
			continue;
		}
		if (in && !strncmp(line, field, flen) && line[flen] == ':') {
			v = strtol(line + flen + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return v;
}

#endif /* TEST_UTIL_H */
