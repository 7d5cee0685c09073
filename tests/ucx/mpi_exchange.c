// SPDX-License-Identifier: GPL-2.0
/*
 * mpi_exchange - two MPI ranks exchange buffers and check every byte
 * (tests/ucx/run.sh runs it under OpenMPI's UCX pml over rxe0).
 *
 * For each size, on freshly allocated memory at an odd offset (so an ODP
 * registration first-touches it, and no transfer starts on a page
 * boundary): point-to-point MPI_Sendrecv of a pattern that names the
 * sender, the size and the round; then one-sided MPI_Put into and
 * MPI_Get from the peer's window, between fences. Any byte that differs
 * fails the run, naming the operation, size and offset.
 */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROUNDS	3
#define SKEW	13	/* bytes: transfers never start page aligned */

static const size_t sizes[] = {
	1, 7, 4096 + 3, 65536, (1 << 20) + 5, 4 << 20,
};

static uint8_t pattern(int rank, size_t size, int round, size_t i)
{
	uint64_t x = (uint64_t)i * 0x9e3779b97f4a7c15ull ^
		     ((uint64_t)rank << 56) ^ ((uint64_t)round << 48) ^ size;

	return (uint8_t)(x ^ x >> 29 ^ x >> 47);
}

static void fill(uint8_t *p, int rank, size_t size, int round)
{
	for (size_t i = 0; i < size; i++)
		p[i] = pattern(rank, size, round, i);
}

/* Index of the first byte of @p that is not @rank's pattern, or @size. */
static size_t first_bad(const uint8_t *p, int rank, size_t size, int round)
{
	for (size_t i = 0; i < size; i++)
		if (p[i] != pattern(rank, size, round, i))
			return i;
	return size;
}

static int report(const char *op, int rank, size_t size, int round,
		  size_t bad)
{
	if (bad == size)
		return 0;
	fprintf(stderr, "rank %d: %s of %zu bytes, round %d: byte %zu differs\n",
		rank, op, size, round, bad);
	return 1;
}

static uint8_t *alloc(size_t size)
{
	uint8_t *p = malloc(size + SKEW);

	if (!p) {
		perror("malloc");
		MPI_Abort(MPI_COMM_WORLD, 2);
	}
	return p;
}

/* Point-to-point: each rank sends its pattern and checks the peer's. */
static int sendrecv(int rank, int peer, size_t size, int round)
{
	uint8_t *tx = alloc(size), *rx = alloc(size);
	int bad;

	fill(tx + SKEW, rank, size, round);
	memset(rx, 0, size + SKEW);
	MPI_Sendrecv(tx + SKEW, (int)size, MPI_BYTE, peer, round,
		     rx + SKEW, (int)size, MPI_BYTE, peer, round,
		     MPI_COMM_WORLD, MPI_STATUS_IGNORE);
	bad = report("sendrecv", rank, size, round,
		     first_bad(rx + SKEW, peer, size, round));
	free(tx);
	free(rx);
	return bad;
}

/*
 * One-sided: rank r puts its pattern into the peer's window, then gets
 * the peer's own pattern back from the peer's second half.
 */
static int one_sided(int rank, int peer, size_t size, int round)
{
	uint8_t *win_mem = alloc(2 * size), *tx = alloc(size), *rx = alloc(size);
	uint8_t *base = win_mem + SKEW;
	MPI_Win win;
	int bad;

	memset(base, 0, size);
	fill(base + size, rank, size, round);
	fill(tx + SKEW, rank, size, round);
	memset(rx, 0, size + SKEW);
	MPI_Win_create(base, (MPI_Aint)(2 * size), 1, MPI_INFO_NULL,
		       MPI_COMM_WORLD, &win);
	MPI_Win_fence(0, win);
	MPI_Put(tx + SKEW, (int)size, MPI_BYTE, peer, 0, (int)size,
		MPI_BYTE, win);
	MPI_Get(rx + SKEW, (int)size, MPI_BYTE, peer, (MPI_Aint)size,
		(int)size, MPI_BYTE, win);
	MPI_Win_fence(0, win);
	bad = report("put", rank, size, round, first_bad(base, peer, size, round));
	bad |= report("get", rank, size, round,
		      first_bad(rx + SKEW, peer, size, round));
	MPI_Win_free(&win);
	free(win_mem);
	free(tx);
	free(rx);
	return bad;
}

int main(int argc, char **argv)
{
	int rank, nranks, bad = 0, any;
	size_t bytes = 0;

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &nranks);
	if (nranks != 2) {
		if (rank == 0)
			fprintf(stderr, "mpi_exchange: needs 2 ranks, has %d\n", nranks);
		MPI_Finalize();
		return 2;
	}
	for (int round = 0; round < ROUNDS; round++)
		for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
			bad |= sendrecv(rank, !rank, sizes[s], round);
			bad |= one_sided(rank, !rank, sizes[s], round);
			bytes += 3 * sizes[s];
		}
	MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_LOR, MPI_COMM_WORLD);
	if (rank == 0)
		printf("mpi_exchange: %s, %zu bytes checked per rank\n",
		       any ? "DATA MISMATCH" : "all bytes exact", bytes);
	MPI_Finalize();
	return any;
}
