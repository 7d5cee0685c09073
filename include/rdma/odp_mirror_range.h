/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Range arithmetic of the odp_mirror layer: MR iova to user address
 * translation and page spans, every step overflow-checked. Pure functions
 * with no kernel state, so tests/unit builds them on the host.
 */
#ifndef _RDMA_ODP_MIRROR_RANGE_H
#define _RDMA_ODP_MIRROR_RANGE_H

#include <linux/errno.h>
#include <linux/overflow.h>
#include <linux/types.h>

/**
 * odp_mirror_range_in() - Is [@start, @start + @len) inside an MR?
 * @mr_start: first iova of the MR
 * @mr_len: length of the MR in bytes
 * @start: first iova of the access
 * @len: length of the access in bytes
 *
 * A zero-length access is inside when @start lies in [@mr_start,
 * @mr_start + @mr_len]. No sum is formed, so nothing can wrap.
 *
 * Return: true when the access lies entirely inside the MR.
 */
static inline bool odp_mirror_range_in(u64 mr_start, u64 mr_len,
				       u64 start, u64 len)
{
	return start >= mr_start && len <= mr_len &&
	       start - mr_start <= mr_len - len;
}

/**
 * odp_mirror_iova_to_va() - Translate an MR iova range to a user address.
 * @user_addr: user virtual address the MR was registered at
 * @mr_iova: iova the MR was registered with (hca_va)
 * @mr_len: length of the MR in bytes
 * @iova: first iova of the access
 * @len: length of the access in bytes
 * @va: the user virtual address of @iova, on success
 *
 * Implements ibv_reg_mr_iova()'s rule: the byte at @iova is the byte at
 * @user_addr + (@iova - @mr_iova).
 *
 * Return: 0, or -EFAULT when the access leaves the MR or the user range
 * would wrap past the end of the address space.
 */
static inline int odp_mirror_iova_to_va(u64 user_addr, u64 mr_iova,
					u64 mr_len, u64 iova, u64 len,
					u64 *va)
{
	u64 addr, end;

	if (!odp_mirror_range_in(mr_iova, mr_len, iova, len))
		return -EFAULT;
	if (check_add_overflow(user_addr, iova - mr_iova, &addr) ||
	    check_add_overflow(addr, len, &end))
		return -EFAULT;
	*va = addr;
	return 0;
}

/**
 * odp_mirror_page_span() - Page indexes covered by a byte range.
 * @addr: first byte
 * @len: length in bytes, not zero
 * @page_shift: log2 of the page size
 * @first: index of the page holding @addr
 * @npages: number of pages the range touches
 *
 * Return: 0, or -EINVAL for an empty range, -EOVERFLOW when the range
 * wraps past the end of the address space.
 */
static inline int odp_mirror_page_span(u64 addr, u64 len,
				       unsigned int page_shift,
				       u64 *first, u64 *npages)
{
	u64 last;

	if (!len)
		return -EINVAL;
	if (check_add_overflow(addr, len - 1, &last))
		return -EOVERFLOW;
	*first = addr >> page_shift;
	*npages = (last >> page_shift) - *first + 1;
	return 0;
}

/**
 * odp_mirror_clip_pages() - Pages of a mirror hit by an invalidation.
 * @start: first byte of the mirror, page aligned
 * @end: end of the mirror (exclusive), page aligned, above @start
 * @inv_start: first byte of the invalidated range
 * @inv_end: end of the invalidated range (exclusive)
 * @page_shift: log2 of the page size
 * @first: index of the first page of the mirror to drop
 * @last: index of the last page of the mirror to drop (inclusive)
 *
 * Return: true when the ranges overlap (and @first, @last are set).
 */
static inline bool odp_mirror_clip_pages(u64 start, u64 end, u64 inv_start,
					 u64 inv_end, unsigned int page_shift,
					 u64 *first, u64 *last)
{
	u64 lo = inv_start > start ? inv_start : start;
	u64 hi = inv_end < end ? inv_end : end;

	if (lo >= hi)
		return false;
	*first = lo >> page_shift;
	*last = (hi - 1) >> page_shift;
	return true;
}

#endif /* _RDMA_ODP_MIRROR_RANGE_H */
