// SPDX-License-Identifier: GPL-2.0
/*
 * Host unit tests of include/rdma/odp_mirror_range.h: the iova to user
 * address rule of ibv_reg_mr_iova() and page spans, at the edges of the
 * 64-bit address space.
 */
#include <rdma/odp_mirror_range.h>

#include "kselftest_harness.h"

#define MAX64 UINT64_MAX

TEST(range_in_edges)
{
	ASSERT_TRUE(odp_mirror_range_in(0x1000, 0x1000, 0x1000, 0x1000));
	ASSERT_TRUE(odp_mirror_range_in(0x1000, 0x1000, 0x1fff, 1));
	ASSERT_TRUE(odp_mirror_range_in(0x1000, 0x1000, 0x2000, 0));
	ASSERT_FALSE(odp_mirror_range_in(0x1000, 0x1000, 0x2000, 1));
	ASSERT_FALSE(odp_mirror_range_in(0x1000, 0x1000, 0xfff, 1));
	ASSERT_FALSE(odp_mirror_range_in(0x1000, 0x1000, 0x1001, 0x1000));
}

/* The sum start + len would wrap: a naive end check would accept it. */
TEST(range_in_no_wrap)
{
	ASSERT_FALSE(odp_mirror_range_in(0x1000, 0x1000, 0x1800, MAX64));
	ASSERT_FALSE(odp_mirror_range_in(0x1000, 0x1000, MAX64, 2));
	ASSERT_TRUE(odp_mirror_range_in(0, MAX64, MAX64 - 1, 1));
	ASSERT_FALSE(odp_mirror_range_in(MAX64 - 1, 1, MAX64, 1));
}

TEST(iova_equals_addr)
{
	u64 va = 0;

	ASSERT_EQ(0, odp_mirror_iova_to_va(0x7f0000, 0x7f0000, 0x3000,
					   0x7f1234, 8, &va));
	ASSERT_EQ(0x7f1234, va);
}

/* ibv_reg_mr_iova(): byte at iova is at addr + (iova - hca_va). */
TEST(iova_differs_from_addr)
{
	u64 va = 0;

	ASSERT_EQ(0, odp_mirror_iova_to_va(0x7f0000, 0x10, 0x3000,
					   0x2010, 0x1000, &va));
	ASSERT_EQ(0x7f2000, va);
	ASSERT_EQ(0, odp_mirror_iova_to_va(0x1000, MAX64 - 0x2fff, 0x3000,
					   MAX64 - 0xfff, 0x1000, &va));
	ASSERT_EQ(0x3000, va);
}

TEST(iova_outside_mr)
{
	u64 va = 42;

	ASSERT_EQ(-EFAULT, odp_mirror_iova_to_va(0x7f0000, 0x10, 0x3000,
						 0xf, 1, &va));
	ASSERT_EQ(-EFAULT, odp_mirror_iova_to_va(0x7f0000, 0x10, 0x3000,
						 0x3010, 1, &va));
	ASSERT_EQ(-EFAULT, odp_mirror_iova_to_va(0x7f0000, 0x10, 0x3000,
						 0x11, MAX64, &va));
	ASSERT_EQ(42, va);
}

/* A registration near the top whose user range would wrap past zero. */
TEST(user_range_wraps)
{
	u64 va = 42;

	ASSERT_EQ(-EFAULT, odp_mirror_iova_to_va(MAX64 - 0xfff, 0, 0x3000,
						 0x1000, 1, &va));
	ASSERT_EQ(-EFAULT, odp_mirror_iova_to_va(MAX64 - 0xfff, 0, 0x3000,
						 0xfff, 2, &va));
	ASSERT_EQ(0, odp_mirror_iova_to_va(MAX64 - 0xfff, 0, 0x3000,
					   0xfff, 0, &va));
	ASSERT_EQ(MAX64, va);
}

TEST(page_span)
{
	u64 first = 0, n = 0;

	ASSERT_EQ(0, odp_mirror_page_span(0x1fff, 2, 12, &first, &n));
	ASSERT_EQ(1, first);
	ASSERT_EQ(2, n);
	ASSERT_EQ(0, odp_mirror_page_span(0x2000, 0x1000, 12, &first, &n));
	ASSERT_EQ(2, first);
	ASSERT_EQ(1, n);
	ASSERT_EQ(0, odp_mirror_page_span(0x200000, 0x200001, 21, &first, &n));
	ASSERT_EQ(1, first);
	ASSERT_EQ(2, n);
	ASSERT_EQ(0, odp_mirror_page_span(MAX64, 1, 12, &first, &n));
	ASSERT_EQ(MAX64 >> 12, first);
	ASSERT_EQ(1, n);
	ASSERT_EQ(-EOVERFLOW, odp_mirror_page_span(MAX64, 2, 12, &first, &n));
	ASSERT_EQ(-EINVAL, odp_mirror_page_span(0x1000, 0, 12, &first, &n));
}

/* An invalidation drops exactly the mirror's pages it overlaps. */
TEST(clip_pages)
{
	u64 first = 0, last = 0;

	ASSERT_TRUE(odp_mirror_clip_pages(0x10000, 0x20000, 0x0, MAX64, 12,
					  &first, &last));
	ASSERT_EQ(0x10, first);
	ASSERT_EQ(0x1f, last);
	ASSERT_TRUE(odp_mirror_clip_pages(0x10000, 0x20000, 0x12345, 0x12346,
					  12, &first, &last));
	ASSERT_EQ(0x12, first);
	ASSERT_EQ(0x12, last);
	ASSERT_TRUE(odp_mirror_clip_pages(0x10000, 0x20000, 0x1f000, 0x30000,
					  12, &first, &last));
	ASSERT_EQ(0x1f, first);
	ASSERT_EQ(0x1f, last);
	ASSERT_FALSE(odp_mirror_clip_pages(0x10000, 0x20000, 0x20000, 0x21000,
					   12, &first, &last));
	ASSERT_FALSE(odp_mirror_clip_pages(0x10000, 0x20000, 0x0, 0x10000,
					   12, &first, &last));
	ASSERT_TRUE(odp_mirror_clip_pages(0x10000, 0x20000, 0xffff, 0x10001,
					  12, &first, &last));
	ASSERT_EQ(0x10, first);
	ASSERT_EQ(0x10, last);
}

TEST_HARNESS_MAIN
