/* SPDX-License-Identifier: GPL-2.0 */
/*
 * model - what one worker believes about its memory and MRs: the regions
 * (mappings inside a reserved arena), the CPU permission of every page,
 * the shadow of every byte, and the MRs with the memory each reaches.
 * oracle.c keeps it; exec.c changes the real things and tells it.
 */
#ifndef RXE_FUZZ_MODEL_H
#define RXE_FUZZ_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <infiniband/verbs.h>

#define PG		4096UL
#define HPG		(2UL << 20)
#define MAX_REGIONS	4
#define MAX_REGION	(4UL << 20)
#define REGION_PAGES	(MAX_REGION / PG)
#define SLOT_HALF	(16UL << 20)	/* a region lives in one half of its slot */
#define SLOT_SIZE	(2 * SLOT_HALF)
#define ARENA_SIZE	(MAX_REGIONS * SLOT_SIZE)
#define MAX_MRS		8
#define MAX_XFER	(256U << 10)
#define MAX_SGE		3

enum region_kind { R_ANON, R_THP, R_HUGE, R_NR_KINDS };

/* CPU permission of a page (its VMA), and holes */
enum pg_prot { PG_ABSENT, PG_RW, PG_RO, PG_NONE };

/* What a byte must hold */
enum b_state {
	B_DEF,		/* val */
	B_TWO,		/* val or alt; settled by the next CPU check */
	B_FREE,		/* val or alt (0): MADV_FREE, until written */
	B_ANY,		/* anything; settled by the next CPU check */
	B_LOST,		/* anything, until the device writes it for sure */
};

struct region {
	bool		used;
	int		kind;
	int		half;		/* which half of its slot */
	uint8_t		*addr;
	size_t		size;
	uint8_t		prot[REGION_PAGES];
	uint8_t		poison[REGION_PAGES];
	uint8_t		*val, *alt, *st;	/* MAX_REGION each */
};

enum mr_kind { M_ODP, M_IMPLICIT, M_PINNED };

/*
 * A page that pinned MRs kept after the CPU side replaced it (munmap,
 * MAP_FIXED, MADV_DONTNEED): its shadow, shared by every pinned MR that
 * had pinned it, as they share the page itself.
 */
struct kept {
	int		refs;
	uint8_t		val[PG], alt[PG], st[PG];
};

struct mrent {
	bool		used;
	int		kind;
	struct ibv_mr	*mr;
	uint64_t	addr;		/* implicit: 0 */
	size_t		len;		/* implicit: SIZE_MAX */
	unsigned int	access;
	/* pinned: the pages it kept, by page of the MR (NULL: the CPU's) */
	struct kept	*kept[REGION_PAGES + 1];
};

struct model {
	uint8_t		*arena;
	struct region	reg[MAX_REGIONS];
	struct mrent	mr[MAX_MRS];
	/* a transfer's source bytes, in message order */
	uint8_t		*tval, *talt, *tst;
};

/*
 * A contiguous run of bytes of an MR within one page: where their shadow
 * is (NULL: nothing mapped there) and whether the device may read/write.
 */
struct chunk {
	size_t		n;
	uint8_t		*val, *alt, *st;
	bool		can_read, can_write;
	uint8_t		*cpu;		/* CPU address, NULL for kept pages */
};

struct seg {
	struct mrent	*m;
	uint64_t	addr;		/* MR address space (iova == va) */
	uint32_t	len;
};

int model_init(struct model *m);
uint8_t *slot_addr(struct model *m, int slot, int half);
struct region *region_of(struct model *m, uint64_t a, size_t *pg);
void model_chunk(struct model *m, struct mrent *e, uint64_t a, size_t max,
		 struct chunk *c);
/* pinned MRs keep the pages [a, a + n) had: copy them out before a change */
void model_detach(struct model *m, uint64_t a, size_t n);
/* an MR goes away: drop its kept pages */
void model_mr_release(struct mrent *e);
/* pinned MRs that still share a page of [a, a + n) with the CPU */
bool model_pinned_shares(struct model *m, uint64_t a, size_t n);
void model_set(struct region *r, size_t off, size_t n, uint8_t v);

/* Oracle of one transfer; see oracle.c */
enum xfer_dir { X_WRITE, X_READ, X_SEND };

struct expect {
	size_t		bad;		/* message offset of the first refusal */
	bool		local_bad, remote_bad;
	size_t		len;
};

void oracle_xfer_expect(struct model *m, const struct seg *src, int nsrc,
			const struct seg *dst, int ndst, int dir,
			struct expect *x);
/* apply what the device did: [0, good) copied, [good, bad) maybe */
void oracle_xfer_apply(struct model *m, const struct seg *src, int nsrc,
		       const struct seg *dst, int ndst, size_t good,
		       size_t maybe);
/* byte-check [a, a + n) of every region overlapping it; 0 or -1 (@msg) */
int oracle_check_range(struct model *m, uint64_t a, size_t n, char *msg,
		       size_t msglen);
int oracle_check_all(struct model *m, char *msg, size_t msglen);
bool oracle_segs_overlap(struct model *m, const struct seg *x, int nx,
			 const struct seg *y, int ny);

#endif /* RXE_FUZZ_MODEL_H */
