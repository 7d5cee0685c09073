// SPDX-License-Identifier: GPL-2.0
/*
 * copy-limit: what one CPU of this boot copies and checksums per second,
 * the work rxe does for every byte it moves: a memcpy (user page to skb,
 * skb to user page) and the ICRC, a crc32 through the kernel crypto API's
 * shash "crc32" (rdma_rxe on 6.12), measured here through AF_ALG, which
 * hashes the caller's pages in place.
 *
 *   copy-limit [-s BYTES] [-t MS] [-r ROUNDS]
 *
 * Each figure is the median of ROUNDS (5) rounds of MS (300) ms, in MiB/s
 * (perftest's MB/sec), on BYTES (65536) buffers. Prints KEY VALUE lines:
 *
 *   memcpy MIBS                    memcpy between two warm buffers
 *   crc32 MIBS                     "crc32", as rxe asks for it
 *   crc32.driver NAME              what "crc32" resolved to (/proc/crypto)
 *   crc32-generic MIBS             each crc32 driver the kernel has
 *   crc32-pclmul MIBS
 *   memcpy_crc32 MIBS              a memcpy, then "crc32" of the copy
 */
#include <errno.h>
#include <linux/if_alg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static size_t size = 65536;
static long round_ms = 300;
static int rounds = 5;
static unsigned char *src, *dst;

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

/* An AF_ALG hash operation of crc32 implementation @name, -1 if none. */
static int crc32_open(const char *name)
{
	struct sockaddr_alg sa = { .salg_family = AF_ALG, .salg_type = "hash" };
	int tfm, op;

	tfm = socket(AF_ALG, SOCK_SEQPACKET, 0);
	if (tfm < 0)
		return -1;
	snprintf((char *)sa.salg_name, sizeof(sa.salg_name), "%s", name);
	if (bind(tfm, (struct sockaddr *)&sa, sizeof(sa))) {
		close(tfm);
		return -1;
	}
	op = accept(tfm, NULL, 0);
	close(tfm);
	return op;
}

/* crc32 of @buf through @op; 0 or -1. */
static int crc32_of(int op, const unsigned char *buf)
{
	unsigned char digest[4];

	if (send(op, buf, size, 0) != (ssize_t)size)
		return -1;
	return read(op, digest, sizeof(digest)) == sizeof(digest) ? 0 : -1;
}

enum work { COPY, CRC, COPY_CRC };

/* One round of @w; MiB/s, or -1 on an error. */
static double one_round(enum work w, int op)
{
	double t0 = now_s(), t;
	long n = 0;

	do {
		if (w != CRC)
			memcpy(dst, src, size);
		if (w != COPY && crc32_of(op, w == CRC ? src : dst))
			return -1;
		n++;
		t = now_s();
	} while (t - t0 < round_ms / 1e3);
	return n * (double)size / (t - t0) / (1 << 20);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Median MiB/s of the rounds of @w, or -1. */
static double measure(enum work w, int op)
{
	double r[64];
	int i;

	for (i = 0; i < rounds; i++) {
		r[i] = one_round(w, op);
		if (r[i] < 0)
			return -1;
	}
	qsort(r, rounds, sizeof(r[0]), cmp_double);
	return r[rounds / 2];
}

/* The driver of the highest priority "crc32" in /proc/crypto. */
static void print_crc32_driver(void)
{
	char line[256], name[128] = "", driver[128] = "", best[128] = "?";
	long prio, best_prio = -1;
	FILE *f = fopen("/proc/crypto", "r");

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "name : %127s", name) == 1)
			continue;
		if (sscanf(line, "driver : %127s", driver) == 1)
			continue;
		if (sscanf(line, "priority : %ld", &prio) == 1 &&
		    !strcmp(name, "crc32") && prio > best_prio) {
			best_prio = prio;
			snprintf(best, sizeof(best), "%s", driver);
		}
	}
	fclose(f);
	printf("crc32.driver %s\n", best);
}

int main(int argc, char **argv)
{
	static const char * const drivers[] = {
		"crc32", "crc32-generic", "crc32-pclmul",
	};
	double v;
	size_t i;
	int c, op;

	while ((c = getopt(argc, argv, "s:t:r:")) != -1) {
		switch (c) {
		case 's':
			size = strtoul(optarg, NULL, 0);
			break;
		case 't':
			round_ms = strtol(optarg, NULL, 0);
			break;
		case 'r':
			rounds = atoi(optarg);
			break;
		default:
			fprintf(stderr, "usage: %s [-s BYTES] [-t MS] [-r ROUNDS]\n",
				argv[0]);
			return 2;
		}
	}
	if (!size || round_ms <= 0 || rounds < 1 || rounds > 64) {
		fprintf(stderr, "copy-limit: bad -s, -t or -r\n");
		return 2;
	}
	src = malloc(size);
	dst = malloc(size);
	if (!src || !dst)
		return 1;
	for (i = 0; i < size; i++)
		src[i] = dst[i] = (unsigned char)(i * 131 + 7);

	printf("memcpy %.1f\n", measure(COPY, -1));
	for (i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++) {
		op = crc32_open(drivers[i]);
		if (op < 0) {
			printf("# %s: none (%s)\n", drivers[i], strerror(errno));
			continue;
		}
		v = measure(CRC, op);
		if (v < 0) {
			fprintf(stderr, "copy-limit: %s: %s\n", drivers[i],
				strerror(errno));
			return 1;
		}
		printf("%s %.1f\n", drivers[i], v);
		if (!i) {
			print_crc32_driver();
			printf("memcpy_crc32 %.1f\n", measure(COPY_CRC, op));
		}
		close(op);
	}
	return 0;
}
