// SPDX-License-Identifier: GPL-2.0
/*
 * oracle - the shadow of every byte a worker owns, and what a transfer
 * must do to it.
 *
 * The device reaches memory through an MR:
 *  - an ODP MR (explicit or implicit) reaches whatever the CPU maps at
 *    its addresses now, with the CPU's permission of the moment: a page
 *    that is not mapped, PROT_NONE or poisoned cannot be read or written,
 *    a PROT_READ page cannot be written (odp_semantics, odp_implicit,
 *    odp_mappings);
 *  - a pinned MR reaches the pages it pinned at registration, whatever
 *    the CPU does later: when munmap, MAP_FIXED or MADV_DONTNEED replace
 *    a page under it, the MR keeps the old page (its shadow moves into
 *    a kept page, shared by every pinned MR that pinned that page, as
 *    the page itself is), and mprotect does not matter to it
 *    (pinned_data).
 *
 * A refused access ends the work request with an error; bytes of the
 * message before the first refused byte may have been moved by earlier
 * packets (each such byte may hold its old or its new value, settled by
 * the next CPU check), bytes from it on must be untouched. The responder
 * may still be writing such bytes after the error completion (a requester
 * that fails locally does not wait for it): exec.c checks them only once
 * the QPs are destroyed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "fuzz.h"
#include "model.h"

int model_init(struct model *m)
{
	size_t shadow = MAX_REGIONS * 3 * MAX_REGION + 3 * MAX_XFER;
	uint8_t *a, *s;
	int i;

	memset(m, 0, sizeof(*m));
	/* reserve the arena, 2 MiB aligned (THP and hugetlb regions) */
	a = mmap(NULL, ARENA_SIZE + HPG, PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (a == MAP_FAILED)
		return -1;
	m->arena = (uint8_t *)(((uintptr_t)a + HPG - 1) & ~(HPG - 1));
	s = mmap(NULL, shadow, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (s == MAP_FAILED)
		return -1;
	for (i = 0; i < MAX_REGIONS; i++) {
		m->reg[i].val = s;
		m->reg[i].alt = s + MAX_REGION;
		m->reg[i].st = s + 2 * MAX_REGION;
		s += 3 * MAX_REGION;
	}
	m->tval = s;
	m->talt = s + MAX_XFER;
	m->tst = s + 2 * MAX_XFER;
	return 0;
}

uint8_t *slot_addr(struct model *m, int slot, int half)
{
	return m->arena + (size_t)slot * SLOT_SIZE + (size_t)half * SLOT_HALF;
}

struct region *region_of(struct model *m, uint64_t a, size_t *pg)
{
	int i;

	for (i = 0; i < MAX_REGIONS; i++) {
		struct region *r = &m->reg[i];

		if (r->used && a >= (uintptr_t)r->addr &&
		    a < (uintptr_t)r->addr + r->size) {
			*pg = (a - (uintptr_t)r->addr) / PG;
			return r;
		}
	}
	return NULL;
}

void model_set(struct region *r, size_t off, size_t n, uint8_t v)
{
	memset(r->val + off, v, n);
	memset(r->st + off, B_DEF, n);
}

void model_chunk(struct model *m, struct mrent *e, uint64_t a, size_t max,
		 struct chunk *c)
{
	uint64_t mbase = e->addr & ~(PG - 1);
	struct region *r;
	size_t pg, off;

	struct kept *k;

	memset(c, 0, sizeof(*c));
	c->n = PG - (a & (PG - 1));
	if (c->n > max)
		c->n = max;
	k = e->kind == M_PINNED ? e->kept[(a - mbase) / PG] : NULL;
	if (k) {
		off = a & (PG - 1);
		c->val = k->val + off;
		c->alt = k->alt + off;
		c->st = k->st + off;
		c->can_read = c->can_write = true;
		return;
	}
	r = region_of(m, a, &pg);
	if (!r || r->prot[pg] == PG_ABSENT) {
		/* a pinned MR never loses its pages: model_detach() */
		return;
	}
	off = a - (uintptr_t)r->addr;
	c->val = r->val + off;
	c->alt = r->alt + off;
	c->st = r->st + off;
	c->cpu = r->addr + off;
	if (e->kind == M_PINNED) {
		c->can_read = c->can_write = true;
		return;
	}
	c->can_read = (r->prot[pg] == PG_RW || r->prot[pg] == PG_RO) &&
		      !r->poison[pg];
	c->can_write = r->prot[pg] == PG_RW && !r->poison[pg];
}

static bool pinned_page_in(struct mrent *e, uint64_t a, size_t n,
			   size_t *first, size_t *last)
{
	uint64_t mlo = e->addr & ~(PG - 1), mhi = e->addr + e->len;
	uint64_t lo = a & ~(PG - 1), hi = a + n;

	if (!e->used || e->kind != M_PINNED || hi <= mlo || lo >= mhi)
		return false;
	if (lo < mlo)
		lo = mlo;
	if (hi > mhi)
		hi = mhi;
	*first = (lo - mlo) / PG;
	*last = (hi - 1 - mlo) / PG;
	return true;
}

bool model_pinned_shares(struct model *m, uint64_t a, size_t n)
{
	size_t f, l, p;
	int i;

	for (i = 0; i < MAX_MRS; i++) {
		if (!pinned_page_in(&m->mr[i], a, n, &f, &l))
			continue;
		for (p = f; p <= l; p++)
			if (!m->mr[i].kept[p])
				return true;
	}
	return false;
}

void model_detach(struct model *m, uint64_t a, size_t n)
{
	uint64_t va, lo = a & ~(PG - 1);
	size_t f, l, pg;
	struct region *r;
	struct kept *k;
	int i;

	/* a page at a time: one copy for every pinned MR that shares it */
	for (va = lo; va < a + n; va += PG) {
		k = NULL;
		for (i = 0; i < MAX_MRS; i++) {
			struct mrent *e = &m->mr[i];
			size_t p;

			if (!pinned_page_in(e, va, 1, &f, &l))
				continue;
			p = f;
			if (e->kept[p])
				continue;
			if (!k) {
				k = calloc(1, sizeof(*k));
				if (!k) {
					perror("rxe_fuzz: calloc");
					exit(2);
				}
				r = region_of(m, va, &pg);
				if (r) {
					memcpy(k->val, r->val + (va - (uintptr_t)r->addr), PG);
					memcpy(k->alt, r->alt + (va - (uintptr_t)r->addr), PG);
					memcpy(k->st, r->st + (va - (uintptr_t)r->addr), PG);
				}
			}
			k->refs++;
			e->kept[p] = k;
		}
	}
}

void model_mr_release(struct mrent *e)
{
	size_t p;

	for (p = 0; p < REGION_PAGES + 1; p++) {
		if (e->kept[p] && --e->kept[p]->refs == 0)
			free(e->kept[p]);
		e->kept[p] = NULL;
	}
}

/* first message offset that @segs cannot serve (@write: to be written) */
static size_t segs_bad(struct model *m, const struct seg *s, int ns,
		       bool write, unsigned int need)
{
	size_t off = 0, done;
	struct chunk c;
	int i;

	for (i = 0; i < ns; i++) {
		if (need && !(s[i].m->access & need))
			return off;
		for (done = 0; done < s[i].len; done += c.n) {
			model_chunk(m, s[i].m, s[i].addr + done,
				    s[i].len - done, &c);
			if (write ? !c.can_write : !c.can_read)
				return off + done;
		}
		off += s[i].len;
	}
	return off;
}

void oracle_xfer_expect(struct model *m, const struct seg *src, int nsrc,
			const struct seg *dst, int ndst, int dir,
			struct expect *x)
{
	size_t sb, db, len = 0;
	int i;

	for (i = 0; i < nsrc; i++)
		len += src[i].len;
	sb = segs_bad(m, src, nsrc, false,
		      dir == X_READ ? IBV_ACCESS_REMOTE_READ : 0);
	db = segs_bad(m, dst, ndst, true,
		      dir == X_WRITE ? IBV_ACCESS_REMOTE_WRITE : 0);
	x->len = len;
	x->bad = sb < db ? sb : db;
	if (dir == X_READ) {
		x->local_bad = db < len;
		x->remote_bad = sb < len;
	} else {
		/* WRITE: the responder writes; SEND: the receiver does */
		x->local_bad = sb < len;
		x->remote_bad = db < len;
	}
}

void oracle_xfer_apply(struct model *m, const struct seg *src, int nsrc,
		       const struct seg *dst, int ndst, size_t good,
		       size_t maybe)
{
	size_t off = 0, done, j;
	struct chunk c;
	int i;

	/* the source bytes first: source and destination never overlap */
	for (i = 0; i < nsrc && off < maybe; i++) {
		for (done = 0; done < src[i].len && off < maybe; done += c.n) {
			model_chunk(m, src[i].m, src[i].addr + done,
				    src[i].len - done, &c);
			if (c.n > maybe - off)
				c.n = maybe - off;
			for (j = 0; j < c.n; j++, off++) {
				uint8_t st = c.st ? c.st[j] : B_ANY;

				m->tval[off] = c.st ? c.val[j] : 0;
				m->talt[off] = c.st ? c.alt[j] : 0;
				/* the device read one of the values */
				m->tst[off] = st == B_FREE ? B_TWO :
					      st == B_LOST ? B_ANY : st;
			}
		}
	}
	off = 0;
	for (i = 0; i < ndst && off < maybe; i++) {
		for (done = 0; done < dst[i].len && off < maybe; done += c.n) {
			model_chunk(m, dst[i].m, dst[i].addr + done,
				    dst[i].len - done, &c);
			if (c.n > maybe - off)
				c.n = maybe - off;
			for (j = 0; j < c.n; j++, off++) {
				if (!c.st)
					continue;
				if (off < good) {
					c.val[j] = m->tval[off];
					c.alt[j] = m->talt[off];
					c.st[j] = m->tst[off];
				} else if (c.st[j] == B_DEF &&
					   m->tst[off] == B_DEF) {
					if (c.val[j] != m->tval[off]) {
						c.alt[j] = m->tval[off];
						c.st[j] = B_TWO;
					}
				} else {
					/* a lazy-free page may stay clean */
					c.st[j] = c.st[j] == B_FREE ||
						  c.st[j] == B_LOST ?
						  B_LOST : B_ANY;
				}
			}
		}
	}
}

static const char *const kind_names[R_NR_KINDS] = { "anon", "thp", "hugetlb" };

static int check_region(struct model *m, struct region *r, size_t lo,
			size_t hi, char *msg, size_t msglen)
{
	size_t p, i, bad = 0, first = 0;
	uint8_t got, want = 0, alt = 0;
	int st = B_DEF;
	char alts[16];

	for (p = lo / PG; p * PG < hi; p++) {
		size_t s = p * PG > lo ? p * PG : lo;
		size_t e = (p + 1) * PG < hi ? (p + 1) * PG : hi;

		if ((r->prot[p] != PG_RW && r->prot[p] != PG_RO) ||
		    r->poison[p])
			continue;
		for (i = s; i < e; i++) {
			got = r->addr[i];
			switch (r->st[i]) {
			case B_DEF:
				if (got == r->val[i])
					continue;
				break;
			case B_FREE:
				if (got == r->val[i] || got == r->alt[i])
					continue;
				break;
			case B_LOST:
				continue;
			case B_TWO:
				if (got != r->val[i] && got != r->alt[i])
					break;
				/* fallthrough */
			case B_ANY:
				r->val[i] = got;
				r->st[i] = B_DEF;
				continue;
			}
			if (!bad++) {
				first = i;
				want = r->val[i];
				alt = r->alt[i];
				st = r->st[i];
			}
		}
	}
	if (!bad)
		return 0;
	snprintf(alts, sizeof(alts), st == B_DEF ? "" : " or 0x%02x", alt);
	snprintf(msg, msglen,
		 "region %d (%s, %zu KiB at %p) +0x%zx (page %zu): byte 0x%02x, want 0x%02x%s; %zu bytes differ in [0x%zx, 0x%zx)",
		 (int)(r - m->reg), kind_names[r->kind], r->size >> 10,
		 (void *)r->addr, first, first / PG, r->addr[first], want,
		 alts, bad, lo, hi);
	return -1;
}

int oracle_check_range(struct model *m, uint64_t a, size_t n, char *msg,
		       size_t msglen)
{
	uint64_t lo, hi, rlo, rhi;
	int i;

	for (i = 0; i < MAX_REGIONS; i++) {
		struct region *r = &m->reg[i];

		if (!r->used)
			continue;
		rlo = (uintptr_t)r->addr;
		rhi = rlo + r->size;
		lo = a > rlo ? a : rlo;
		hi = a + n < rhi ? a + n : rhi;
		if (lo >= hi)
			continue;
		if (check_region(m, r, lo - rlo, hi - rlo, msg, msglen))
			return -1;
	}
	return 0;
}

int oracle_check_all(struct model *m, char *msg, size_t msglen)
{
	int i;

	for (i = 0; i < MAX_REGIONS; i++)
		if (m->reg[i].used &&
		    check_region(m, &m->reg[i], 0, m->reg[i].size, msg, msglen))
			return -1;
	return 0;
}

struct span {
	uintptr_t	lo, hi;
	int		dst;
};

#define MAX_SPANS	(2 * (MAX_XFER / PG + 2 * MAX_SGE) + 4)

static int collect(struct model *m, const struct seg *s, int ns, int dst,
		   struct span *sp, int n)
{
	struct chunk c;
	size_t done;
	int i;

	for (i = 0; i < ns; i++) {
		for (done = 0; done < s[i].len; done += c.n) {
			model_chunk(m, s[i].m, s[i].addr + done,
				    s[i].len - done, &c);
			if (!c.val || n >= (int)MAX_SPANS)
				continue;
			sp[n].lo = (uintptr_t)c.val;
			sp[n].hi = (uintptr_t)c.val + c.n;
			sp[n].dst = dst;
			n++;
		}
	}
	return n;
}

/* Do the ranges of @y overlap each other or those of @x (by shadow)? */
bool oracle_segs_overlap(struct model *m, const struct seg *x, int nx,
			 const struct seg *y, int ny)
{
	static struct span sp[MAX_SPANS];
	int n, i, j;

	n = collect(m, x, nx, 0, sp, 0);
	n = collect(m, y, ny, 1, sp, n);
	for (i = 0; i < n; i++)
		for (j = i + 1; j < n; j++)
			if ((sp[i].dst || sp[j].dst) &&
			    sp[i].lo < sp[j].hi && sp[j].lo < sp[i].hi)
				return true;
	return false;
}
