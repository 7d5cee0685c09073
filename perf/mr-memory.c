// SPDX-License-Identifier: GPL-2.0
/*
 * mr-memory: registration time, deregistration time and kernel memory of
 * untouched memory regions, explicit ODP against pinned.
 *
 *   mr-memory [-d DEV] [-r REPS] [-n COUNT] [-s SIZE[,SIZE...]]
 *             [-m MODE[,MODE]] [-v]
 *
 * For every size (default 1M,1G,64G) and mode (default odp,pinned) it
 * maps SIZE bytes of anonymous memory (PROT_READ|PROT_WRITE,
 * MAP_NORESERVE, never touched), reads /proc/meminfo, registers the range
 * (ibv_reg_mr, with IBV_ACCESS_ON_DEMAND for odp), reads /proc/meminfo
 * again, deregisters it, reads it a third time and unmaps. One untimed
 * warm-up round per row, then REPS (default 5) measured rounds; the table
 * shows medians, since Slab moves on its own (per-CPU caches, RCU frees).
 *
 * /proc/meminfo counts Slab in whole slab pages, and objects freed by the
 * warm-up round are reused, so one small allocation shows as 0 (or as a
 * whole new slab). ODP rounds therefore register COUNT MRs (default 256,
 * each on its own mapping: 256 x 64 GiB is 16 TiB of address space) and
 * divide every number by COUNT; pinned rounds register one MR (COUNT
 * pinned GiB would not fit).
 *
 *   kernel KiB  = delta Slab + delta VmallocUsed across ibv_reg_mr: memory
 *                 the kernel allocated for the MR (its translation tables,
 *                 the umem, the pinned page list)
 *   PT KiB      = delta PageTables (the CPU page tables pinning populates)
 *   used MiB    = drop of MemFree (includes the pinned pages themselves)
 *   left KiB    = Slab + VmallocUsed after ibv_dereg_mr minus before
 *                 ibv_reg_mr (a leak shows here, noise aside)
 *
 * Pinned rows larger than half of MemTotal are skipped (pinning 64 GiB in
 * a 4 GiB guest cannot work). Device: -d, else $RXE_ODP_DEV, else rxe0,
 * else the first device. Exit status: 0, or 1 if a registration that
 * should work failed.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <infiniband/verbs.h>

#define MAX_SIZES 16
#define MAX_REPS 101
#define MAX_COUNT 1024

struct meminfo {
	long slab, vmalloc, memfree, pagetables; /* KiB */
};

struct sample {				/* per MR */
	double reg_ms, dereg_ms;
	double kernel, slab, vmalloc, pt, left; /* KiB */
	double used;				/* MiB */
};

static int verbose;

static void read_meminfo(struct meminfo *m)
{
	char line[256];
	FILE *f = fopen("/proc/meminfo", "r");

	memset(m, 0, sizeof(*m));
	if (!f) {
		perror("/proc/meminfo");
		exit(2);
	}
	while (fgets(line, sizeof(line), f)) {
		long v;

		if (sscanf(line, "Slab: %ld", &v) == 1)
			m->slab = v;
		else if (sscanf(line, "VmallocUsed: %ld", &v) == 1)
			m->vmalloc = v;
		else if (sscanf(line, "MemFree: %ld", &v) == 1)
			m->memfree = v;
		else if (sscanf(line, "PageTables: %ld", &v) == 1)
			m->pagetables = v;
	}
	fclose(f);
}

static long memtotal_kib(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);

	return pages > 0 && psize > 0 ? pages / 1024 * psize : 0;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	case 't': case 'T': v <<= 40; end++; break;
	}
	if (*end == 'i' && end[1] == 'B')
		end += 2;
	if (*end || !v)
		return -1;
	*out = v;
	return 0;
}

static void size_str(uint64_t size, char *buf, size_t len)
{
	static const char units[] = "KMGT";
	int u = -1;

	while (size >= 1024 && !(size % 1024) && u < 3) {
		size /= 1024;
		u++;
	}
	if (u < 0)
		snprintf(buf, len, "%llu", (unsigned long long)size);
	else
		snprintf(buf, len, "%llu%ciB", (unsigned long long)size, units[u]);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median_d(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/*
 * One round: map COUNT ranges, register them all, deregister them all,
 * unmap; times and memory per MR. 0, or -1 on failure.
 */
static int one_round(struct ibv_pd *pd, uint64_t size, int odp, int count,
		     struct sample *s)
{
	struct meminfo m0, m1, m2;
	struct ibv_mr *mr[MAX_COUNT];
	void *buf[MAX_COUNT];
	double t0, t1, t2, t3;
	int access = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ |
		     IBV_ACCESS_REMOTE_WRITE;
	int i, n = 0, ret = -1;

	if (odp)
		access |= IBV_ACCESS_ON_DEMAND;
	for (i = 0; i < count; i++) {
		buf[i] = mmap(NULL, size, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
			      -1, 0);
		if (buf[i] == MAP_FAILED) {
			perror("mmap");
			goto unmap;
		}
	}
	read_meminfo(&m0);
	t0 = now_ms();
	for (n = 0; n < count; n++) {
		mr[n] = ibv_reg_mr(pd, buf[n], size, access);
		if (!mr[n]) {
			fprintf(stderr, "ibv_reg_mr(%llu bytes, %s): %s\n",
				(unsigned long long)size,
				odp ? "odp" : "pinned", strerror(errno));
			goto dereg;
		}
	}
	t1 = now_ms();
	read_meminfo(&m1);
	ret = 0;
dereg:
	t2 = now_ms();
	while (n--) {
		if (ibv_dereg_mr(mr[n])) {
			perror("ibv_dereg_mr");
			ret = -1;
		}
	}
	t3 = now_ms();
	read_meminfo(&m2);
unmap:
	while (i--)
		munmap(buf[i], size);
	if (ret)
		return ret;
	s->reg_ms = (t1 - t0) / count;
	s->dereg_ms = (t3 - t2) / count;
	s->slab = (m1.slab - m0.slab) * 1.0 / count;
	s->vmalloc = (m1.vmalloc - m0.vmalloc) * 1.0 / count;
	s->kernel = s->slab + s->vmalloc;
	s->pt = (m1.pagetables - m0.pagetables) * 1.0 / count;
	s->used = (m0.memfree - m1.memfree) / 1024.0 / count;
	s->left = (m2.slab + m2.vmalloc - m0.slab - m0.vmalloc) * 1.0 / count;
	return 0;
}

static void usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [-d DEV] [-r REPS] [-n COUNT] [-s SIZE[,SIZE...]] [-m odp,pinned] [-v]\n",
		prog);
	exit(2);
}

static struct ibv_context *open_device(const char *name)
{
	struct ibv_device **list = ibv_get_device_list(NULL);
	struct ibv_context *ctx = NULL;
	int i;

	if (!list || !list[0]) {
		fprintf(stderr, "no RDMA device\n");
		exit(2);
	}
	for (i = 0; list[i]; i++)
		if (!strcmp(ibv_get_device_name(list[i]), name))
			break;
	if (!list[i]) {
		if (strcmp(name, "rxe0")) {
			fprintf(stderr, "no device %s\n", name);
			exit(2);
		}
		i = 0;
	}
	ctx = ibv_open_device(list[i]);
	if (!ctx) {
		fprintf(stderr, "ibv_open_device(%s): %s\n",
			ibv_get_device_name(list[i]), strerror(errno));
		exit(2);
	}
	ibv_free_device_list(list);
	return ctx;
}

int main(int argc, char **argv)
{
	const char *dev = getenv("RXE_ODP_DEV") ? getenv("RXE_ODP_DEV") : "rxe0";
	char sizes_arg[256] = "1M,1G,64G", modes_arg[64] = "odp,pinned";
	uint64_t sizes[MAX_SIZES];
	int nsizes = 0, reps = 5, count = 256, status = 0, opt, have_odp;
	struct ibv_device_attr_ex attr;
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	char *tok, *save;
	long memtotal;

	while ((opt = getopt(argc, argv, "d:r:n:s:m:v")) != -1) {
		switch (opt) {
		case 'd': dev = optarg; break;
		case 'r': reps = atoi(optarg); break;
		case 'n': count = atoi(optarg); break;
		case 's': snprintf(sizes_arg, sizeof(sizes_arg), "%s", optarg); break;
		case 'm': snprintf(modes_arg, sizeof(modes_arg), "%s", optarg); break;
		case 'v': verbose = 1; break;
		default: usage(argv[0]);
		}
	}
	if (optind != argc || reps < 1 || reps > MAX_REPS || count < 1 ||
	    count > MAX_COUNT)
		usage(argv[0]);
	for (tok = strtok_r(sizes_arg, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (nsizes == MAX_SIZES || parse_size(tok, &sizes[nsizes])) {
			fprintf(stderr, "bad size %s\n", tok);
			usage(argv[0]);
		}
		nsizes++;
	}

	ctx = open_device(dev);
	memset(&attr, 0, sizeof(attr));
	if (ibv_query_device_ex(ctx, NULL, &attr)) {
		fprintf(stderr, "ibv_query_device_ex failed\n");
		return 2;
	}
	have_odp = !!(attr.odp_caps.general_caps & IBV_ODP_SUPPORT);
	pd = ibv_alloc_pd(ctx);
	if (!pd) {
		perror("ibv_alloc_pd");
		return 2;
	}
	memtotal = memtotal_kib();

	printf("mr-memory on %s: MemTotal %ld MiB; untouched MAP_NORESERVE "
	       "anonymous memory; medians of %d rounds (+1 warm-up);\n"
	       "values per MR; an ODP round registers %d MRs, a pinned one 1\n",
	       ibv_get_device_name(ctx->device), memtotal / 1024, reps, count);
	printf("%-8s %-6s %3s %10s %10s %10s %9s %11s %8s %9s %8s\n", "size",
	       "mode", "MRs", "reg ms", "dereg ms", "kernel KiB", "Slab KiB",
	       "Vmalloc KiB", "PT KiB", "used MiB", "left KiB");
	for (int i = 0; i < nsizes; i++) {
		for (int odp = 1; odp >= 0; odp--) {
			static struct sample s[MAX_REPS];
			double reg[MAX_REPS], dereg[MAX_REPS], kern[MAX_REPS],
			       slab[MAX_REPS], vm[MAX_REPS], pt[MAX_REPS],
			       used[MAX_REPS], left[MAX_REPS];
			int n = odp ? count : 1;
			const char *mode = odp ? "odp" : "pinned";
			char sz[32];
			int r;

			if (!strstr(modes_arg, mode))
				continue;
			size_str(sizes[i], sz, sizeof(sz));
			if (odp && !have_odp) {
				printf("%-8s %-6s skipped: %s advertises no ODP\n",
				       sz, mode, ibv_get_device_name(ctx->device));
				continue;
			}
			if (!odp && sizes[i] / 1024 > (uint64_t)memtotal / 2) {
				printf("%-8s %-6s skipped: larger than half of MemTotal\n",
				       sz, mode);
				continue;
			}
			for (r = -1; r < reps; r++) {
				struct sample tmp;

				if (one_round(pd, sizes[i], odp, n,
					      r < 0 ? &tmp : &s[r]))
					break;
				if (verbose && r >= 0)
					fprintf(stderr,
						"  %s %s #%d: reg %.3f ms dereg %.3f ms kernel %.1f slab %.1f vmalloc %.1f pt %.1f used %.1f MiB left %.1f\n",
						sz, mode, r, s[r].reg_ms, s[r].dereg_ms,
						s[r].kernel, s[r].slab, s[r].vmalloc,
						s[r].pt, s[r].used, s[r].left);
			}
			if (r < reps) {
				printf("%-8s %-6s FAILED (see stderr)\n", sz, mode);
				status = 1;
				continue;
			}
			for (r = 0; r < reps; r++) {
				reg[r] = s[r].reg_ms;
				dereg[r] = s[r].dereg_ms;
				kern[r] = s[r].kernel;
				slab[r] = s[r].slab;
				vm[r] = s[r].vmalloc;
				pt[r] = s[r].pt;
				used[r] = s[r].used;
				left[r] = s[r].left;
			}
			printf("%-8s %-6s %3d %10.3f %10.3f %10.1f %9.1f %11.1f %8.1f %9.1f %8.1f\n",
			       sz, mode, n, median_d(reg, reps),
			       median_d(dereg, reps), median_d(kern, reps),
			       median_d(slab, reps), median_d(vm, reps),
			       median_d(pt, reps), median_d(used, reps),
			       median_d(left, reps));
			fflush(stdout);
		}
	}
	ibv_dealloc_pd(pd);
	ibv_close_device(ctx);
	return status;
}
