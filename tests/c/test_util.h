/* SPDX-License-Identifier: GPL-2.0 */
/*
 * test_util - byte patterns and byte-exact buffer checks shared by the C
 * tests. Header only (static inline), so that tests/c/ holds one .c per
 * test binary; include it after kselftest_harness.h (ksft_print_msg).
 */
#ifndef TEST_UTIL_H
#define TEST_UTIL_H

#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/swap.h>
#include <time.h>
#include <unistd.h>

#include "kv_file.h"
#include "verbs_util.h"

/* Milliseconds on CLOCK_MONOTONIC since @t0. */
static inline long tu_ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 +
	       (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/* A time bound of a test, times RXE_ODP_TIME_SCALE (vu_time_scale()). */
static inline long tu_ms(long ms)
{
	return ms * vu_time_scale();
}

/* The harness's per-test timeouts, scaled before any test runs. */
static inline void tu_scale_harness_timeouts(void)
{
	struct __fixture_metadata *f;
	struct __test_metadata *t;

	for (f = __fixture_list; f; f = f->next)
		for (t = f->tests; t; t = t->next)
			t->timeout *= (int)vu_time_scale();
}

#undef TEST_HARNESS_MAIN
#define TEST_HARNESS_MAIN \
	int main(int argc, char **argv) \
	{ \
		tu_scale_harness_timeouts(); \
		return test_harness_run(argc, argv); \
	}

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
	TU_REQUIRE_CAP(__ret != -ENODEV, "no RDMA device %s",		\
		       (cfg)->dev_name);				\
	ASSERT_EQ(0, __ret);						\
	memset(ax, 0, sizeof(*(ax)));					\
	__ret = ibv_query_device_ex((v)->ctx, NULL, ax);		\
	ASSERT_EQ(0, __ret) TH_LOG("ibv_query_device_ex: %s",		\
				   strerror(__ret));			\
} while (0)

/*
 * Our rdma_rxe is under test. The guest harness says which stack it
 * loaded (RXE_ODP_STACK=ours|stock, tests/vm/guest-init.sh); elsewhere,
 * ours is the out-of-tree module (taint flag O), as the DKMS package's
 * is. Debian's stock rdma_rxe is not.
 */
static inline bool tu_rxe_is_ours(void)
{
	const char *stack = getenv("RXE_ODP_STACK");
	char taint[32] = "";
	FILE *f;

	if (stack && *stack)
		return !strcmp(stack, "ours");
	f = fopen("/sys/module/rdma_rxe/taint", "r");
	if (!f)
		return false;
	if (!fgets(taint, sizeof(taint), f))
		taint[0] = 0;
	fclose(f);
	return strchr(taint, 'O') != NULL;
}

/*
 * In a test or a fixture's setup: a capability @cond that our rxe
 * advertises. Without it the test fails when our rdma_rxe is loaded
 * (tu_rxe_is_ours()) and is skipped on any other device.
 */
#define TU_REQUIRE_CAP(cond, fmt, ...) do {				\
	if (!(cond)) {							\
		ASSERT_FALSE(tu_rxe_is_ours())				\
			TH_LOG("our rdma_rxe is loaded, yet " fmt,	\
			       ##__VA_ARGS__);				\
		SKIP(return, fmt, ##__VA_ARGS__);			\
	}								\
} while (0)

/* ---- reclaim ------------------------------------------------------------ */

/*
 * Pin the calling process to the CPU it runs on; returns that CPU or a
 * negative errno. New anonymous pages wait in a per-CPU lru_add batch and
 * MADV_FREE parks pages in a per-CPU lazyfree batch; madvise() drains the
 * batches of its own CPU only (lru_add_drain()). A process that faults its
 * pages, calls MADV_FREE and MADV_PAGEOUT on one CPU has every page on the
 * LRU list when it matters: MADV_FREE marks each lazy-free, MADV_PAGEOUT
 * isolates and reclaims each. Pin before the pages are faulted in.
 */
static inline int tu_pin_cpu(void)
{
	cpu_set_t set;
	int cpu = sched_getcpu();

	if (cpu < 0)
		return -errno;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		return -errno;
	return cpu;
}

/*
 * After MADV_PAGEOUT: @n bytes at @p, clean lazy-free pages (written by
 * the CPU before MADV_FREE, by nobody since), read back as zeros: reclaim
 * discarded them. If not, a test that expects written bytes to survive
 * the same steps would pass without proving anything.
 */
#define TU_ASSERT_DISCARDED(p, n)					\
	ASSERT_TRUE(tu_all_bytes("lazy-free control", p, 0, n))	\
		TH_LOG("MADV_PAGEOUT did not discard clean lazy-free "	\
		       "pages: the reclaim checks would prove nothing")

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
 * Poll (at most @ms) until odp_mirror's live count @name is @want again:
 * the last put of a umem may come after its owner is reaped (a fault
 * work that still ran on it, an mmput_async()). True when it is.
 */
static inline bool tu_live_back(const char *name, long want, int ms)
{
	struct timespec t0, nap = { 0, 10 * 1000 * 1000 };

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (tu_live_count(name) != want) {
		if (tu_ms_since(&t0) >= tu_ms(ms))
			return false;
		nanosleep(&nap, NULL);
	}
	return true;
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
 * A device-wide counter of @v's port, through netlink (`rdma statistic
 * show link`): sysfs hw_counters caches values for 10 ms, netlink reads
 * them from the driver. -1 if not shown.
 */
static inline long long tu_dev_counter(const struct vu_ctx *v,
				       const char *name)
{
	char command[128];

	snprintf(command, sizeof(command), "rdma statistic show link %s/%u",
		 v->cfg.dev_name, v->cfg.port);
	return tu_field_of(command, "link ", name);
}

/* RXE_ODP_ROUNDS when set to a count (a cut-down run), else 0. */
static inline long tu_env_rounds(void)
{
	const char *s = getenv("RXE_ODP_ROUNDS");

	return s && atol(s) > 0 ? atol(s) : 0;
}

/*
 * Iterations of a scenario: FAST in make check, STRESS (200 rounds of
 * the scenario or more) under make stress (RXE_ODP_STRESS=1), or
 * RXE_ODP_ROUNDS when set.
 */
static inline long tu_rounds(long fast, long stress)
{
	const char *s = getenv("RXE_ODP_STRESS");
	long n = tu_env_rounds();

	if (n)
		return n;
	return s && !strcmp(s, "1") ? stress : fast;
}

/*
 * Is this a cut-down run (RXE_ODP_ROUNDS set, as by make check-debug)?
 * Cases whose work is a volume of data rather than rounds move less then.
 */
static inline bool tu_cut_down(void)
{
	return tu_env_rounds() > 0;
}

/*
 * The seed of a scenario's random choices: RXE_ODP_SEED when set (to
 * replay a failure), else one from the clock; printed either way.
 */
static inline unsigned int tu_seed(void)
{
	const char *s = getenv("RXE_ODP_SEED");
	unsigned int seed;
	struct timespec ts;

	if (s && *s) {
		seed = (unsigned int)strtoul(s, NULL, 0);
	} else {
		clock_gettime(CLOCK_REALTIME, &ts);
		seed = (unsigned int)(ts.tv_nsec ^ ts.tv_sec ^ getpid());
	}
	printf("# seed %u (replay: RXE_ODP_SEED=%u)\n", seed, seed);
	return seed;
}

/*
 * The per-MR counter NAME (page_faults, page_invalidations,
 * page_prefetch, fault_retries) of the MR with remote key RKEY, from `rdma -d statistic
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

/* ---- swap on zram --------------------------------------------------- */

#define TU_ZSWAP_ENABLED	"/sys/module/zswap/parameters/enabled"

/* A zram swap device of the test's; zero it, then set dev to -1. */
struct tu_zram {
	int	dev;		/* zram device number, or -1 */
	bool	swapped_on;
	bool	zswap_off;	/* we turned zswap off */
};

/*
 * Swap on a fresh zram device of @size bytes, zswap off (zswap would hand
 * back swapped-in pages dirty, and keep pages out of the swap device).
 * Returns 0, or a negative errno with the reason printed; undo with
 * tu_zram_swap_off() either way.
 */
static inline int tu_zram_swap_on(struct tu_zram *z, long size)
{
	char path[64], cmd[96], c = 0;
	FILE *f = fopen(TU_ZSWAP_ENABLED, "r");

	if (f) {
		c = (char)fgetc(f);
		fclose(f);
	}
	if (c == 'Y') {
		if (tu_write_long(TU_ZSWAP_ENABLED, 0))
			return -EIO;
		z->zswap_off = true;
	}
	if (system("modprobe zram")) {
		ksft_print_msg("no zram module\n");
		return -ENODEV;
	}
	z->dev = (int)tu_read_long("/sys/class/zram-control/hot_add");
	if (z->dev < 0) {
		ksft_print_msg("zram hot_add failed\n");
		return -EIO;
	}
	snprintf(path, sizeof(path), "/sys/block/zram%d/disksize", z->dev);
	if (tu_write_long(path, size))
		return -EIO;
	snprintf(cmd, sizeof(cmd), "mkswap /dev/zram%d >/dev/null", z->dev);
	if (system(cmd))
		return -EIO;
	snprintf(path, sizeof(path), "/dev/zram%d", z->dev);
	if (swapon(path, 0)) {
		ksft_print_msg("swapon %s: %s\n", path, strerror(errno));
		return -errno;
	}
	z->swapped_on = true;
	return 0;
}

/* Undo tu_zram_swap_on(), as far as it went. Returns 0 or -EIO. */
static inline int tu_zram_swap_off(struct tu_zram *z)
{
	char path[64];
	int ret = 0;

	if (z->swapped_on) {
		snprintf(path, sizeof(path), "/dev/zram%d", z->dev);
		if (swapoff(path)) {
			ksft_print_msg("swapoff %s: %s\n", path,
				       strerror(errno));
			ret = -EIO;
		}
		z->swapped_on = false;
	}
	if (z->dev >= 0 &&
	    tu_write_long("/sys/class/zram-control/hot_remove", z->dev))
		ret = -EIO;
	z->dev = -1;
	if (z->zswap_off && tu_write_long(TU_ZSWAP_ENABLED, 1))
		ret = -EIO;
	z->zswap_off = false;
	return ret;
}

/* ---- a QP pair whose requesters give up on RNR NAKs ------------------- */

/* RNR retries that end in IBV_WC_RNR_RETRY_EXC_ERR (7 would be infinite). */
#define TU_RNR_RETRY	6

/*
 * Bring RC QP @q from any state back through RESET, INIT and RTR to RTS,
 * its peer being QP @dest_qpn on @v's own GID (loopback), with the RNR
 * retry count @rnr_retry and the local ACK timeout @timeout
 * (vu_qp_connect_to()). Returns 0 or a negative errno.
 */
static inline int tu_qp_reconnect(struct vu_ctx *v, struct ibv_qp *q,
				  uint32_t dest_qpn, uint8_t rnr_retry,
				  uint8_t timeout)
{
	return vu_qp_connect_to(v, q, dest_qpn, &v->gid, rnr_retry, timeout);
}

/*
 * vu_qp_pair_create(), but with the requesters' RNR retry count
 * @rnr_retry and local ACK timeout @timeout (tu_qp_reconnect()).
 * Returns 0 or a negative errno; on failure nothing is left allocated.
 */
static inline int tu_qp_pair_create_timers(struct vu_ctx *v,
					   struct vu_qp_pair *p,
					   uint8_t rnr_retry, uint8_t timeout)
{
	int ret = vu_qp_pair_create(v, p);

	if (ret)
		return ret;
	ret = tu_qp_reconnect(v, p->a.qp, p->b.qp->qp_num, rnr_retry,
			      timeout);
	if (!ret)
		ret = tu_qp_reconnect(v, p->b.qp, p->a.qp->qp_num, rnr_retry,
				      timeout);
	if (ret) {
		ksft_print_msg("reconnecting QPs %u and %u (rnr_retry %u, timeout %u): %s\n",
			       p->a.qp->qp_num, p->b.qp->qp_num, rnr_retry,
			       timeout, strerror(-ret));
		vu_qp_pair_destroy(v, p);
	}
	return ret;
}

/*
 * vu_qp_pair_create(), but the requesters retry an RNR NAK only
 * @rnr_retry times (0-6; vu_qp_connect() sets 7, infinite): a responder
 * that keeps answering RNR ends the request with
 * IBV_WC_RNR_RETRY_EXC_ERR instead of a hang. Returns 0 or a negative
 * errno; on failure nothing is left allocated.
 */
static inline int tu_qp_pair_create_rnr(struct vu_ctx *v,
					struct vu_qp_pair *p,
					uint8_t rnr_retry)
{
	return tu_qp_pair_create_timers(v, p, rnr_retry, 14 /* 67 ms */);
}

/* Destroy the pair @p and create it afresh as tu_qp_pair_create_rnr(). */
static inline int tu_qp_pair_renew_rnr(struct vu_ctx *v, struct vu_qp_pair *p,
				       uint8_t rnr_retry)
{
	int ret = vu_qp_pair_destroy(v, p);

	return ret ? ret : tu_qp_pair_create_rnr(v, p, rnr_retry);
}

#endif /* TEST_UTIL_H */
