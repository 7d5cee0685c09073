// SPDX-License-Identifier: GPL-2.0
/*
 * The per-mm state of odp_mirror: one mmu_notifier per mm, refcounted by
 * mmu_notifier_get()/mmu_notifier_put(). Freeing is deferred by the
 * mmu_notifier core past an SRCU grace period (the strong unregister
 * fence); module exit waits for those frees with mmu_notifier_synchronize().
 */
#include <linux/error-injection.h>
#include <linux/mmu_notifier.h>
#include <linux/slab.h>

#include "odp_mirror_internal.h"

atomic_long_t odp_live_per_mm;

static struct mmu_notifier *odp_per_mm_alloc(struct mm_struct *mm)
{
	struct odp_per_mm *per_mm;

	per_mm = kzalloc(sizeof(*per_mm), GFP_KERNEL_ACCOUNT);
	if (!per_mm)
		return ERR_PTR(-ENOMEM);
	atomic_long_inc(&odp_live_per_mm);
	return &per_mm->mn;
}

static void odp_per_mm_free(struct mmu_notifier *mn)
{
	kfree(container_of(mn, struct odp_per_mm, mn));
	atomic_long_dec(&odp_live_per_mm);
}

static void odp_per_mm_release(struct mmu_notifier *mn, struct mm_struct *mm)
{
	struct odp_per_mm *per_mm = container_of(mn, struct odp_per_mm, mn);

	WRITE_ONCE(per_mm->dying, true);
}

static const struct mmu_notifier_ops odp_per_mm_ops = {
	.release = odp_per_mm_release,
	.alloc_notifier = odp_per_mm_alloc,
	.free_notifier = odp_per_mm_free,
};

/*
 * Context: process context of a task that holds a reference on @mm's
 * users; takes @mm's mmap lock for writing.
 */
struct odp_per_mm *odp_per_mm_get(struct mm_struct *mm)
{
	struct mmu_notifier *mn = mmu_notifier_get(&odp_per_mm_ops, mm);

	if (IS_ERR(mn))
		return ERR_CAST(mn);
	return container_of(mn, struct odp_per_mm, mn);
}
ALLOW_ERROR_INJECTION(odp_per_mm_get, ERRNO);

void odp_per_mm_put(struct odp_per_mm *per_mm)
{
	mmu_notifier_put(&per_mm->mn);
}
