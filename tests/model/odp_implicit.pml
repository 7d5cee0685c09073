/*
 * odp_implicit.pml: the children of an implicit ODP umem (odp_implicit.c),
 * for spin (see run.sh and README.md beside this file).
 *
 * One implicit MR, one 1 GiB slot of it, one page there. Two accesses
 * (rxe responder accesses or prefetch works) may each create the slot's
 * child, fault the page in and leave the child empty; one CPU
 * invalidation (munmap) empties it; the reclaim work takes empty
 * children away; the MR's deregistration releases the rest. A reclaimed
 * slot may be filled again by a later access, so there are up to NC child
 * objects. What odp_lifecycle.pml proves for every umem (the per_mm, the
 * strong fence of mmu_interval_notifier_remove(), the copy's read lock)
 * holds for each child; this model adds what is new: the children's own
 * lifetime, the parent's, and the reclaim work's.
 *
 * Memory is modelled as state flags (UNALLOC / ALIVE / FREED); every use
 * asserts ALIVE. The accesses end before the deregistration starts: rxe
 * holds an MR reference across each access and prefetch, and dereg waits
 * for them (proved in odp_lifecycle.pml).
 *
 * Deliberate bugs (spin -DNAME, run.sh --mutants):
 *   BUG_RECLAIM_UNLOCKED  the reclaim work takes children out without
 *                         children_lock held for writing
 *   BUG_CANCEL_FIRST      release cancels the reclaim work before it
 *                         removes the children
 *   BUG_NO_RECHECK        the reclaim work trusts the mark and does not
 *                         look whether the child is still empty
 */

#define NC 3		/* child objects: a slot refilled twice */
#define NONE NC		/* the slot holds no child */

#define UNALLOC 0
#define ALIVE   1
#define FREED   2

byte parent = ALIVE;	/* the implicit umem and its struct odp_implicit */

/* struct odp_implicit */
byte slot = NONE;	/* children xarray: the child installed in the slot */
bool mark = 0;		/* ODP_CHILD_MAYBE_EMPTY on the slot */
byte readers = 0;	/* children_lock readers */
bool writer = 0;	/* children_lock writer */
bool work_pending = 0;	/* reclaim_work queued */
bool work_running = 0;
bool work_disabled = 0;	/* inside cancel_work_sync() */

/*
 * The children (struct odp_mirror_umem with ->parent); index NONE is a
 * dummy that is never used, so that no index can be out of bounds.
 */
byte ch_state[NC + 1];
bool ch_in_tree[NC + 1];	/* interval notifier inserted, not removed */
byte ch_entries[NC + 1];	/* translation entries of the page: 0 or 1 */
byte ch_used[NC + 1];		/* accesses using the child right now */
byte next_child = 0;	/* the next child object to allocate */

/* the CPU side */
bool mapped = 1;	/* the page is mapped */
bool inv_running = 0;	/* an invalidation round is in progress */
byte accesses_done = 0;

/* odp_implicit_child_emptied(): mark the slot, queue the reclaim work */
inline child_emptied()
{
	assert(parent == ALIVE);	/* child->parent->implicit */
	atomic {
		if
		:: slot != NONE -> mark = 1	/* xa_set_mark() */
		:: else -> skip
		fi;
		if
		:: !work_disabled -> work_pending = 1	/* queue_work() */
		:: else -> skip
		fi
	}
}

/* odp_umem_remove() + kfree() of child c: the strong fence, then free */
inline child_destroy(c)
{
	/* mmu_interval_notifier_remove(): waits out a running invalidation */
	atomic { !inv_running -> ch_in_tree[c] = 0 };
	/* kfree(child) */
	atomic {
		assert(ch_used[c] == 0);
		ch_state[c] = FREED
	}
}

/* odp_implicit_walk() -> odp_child_get() -> odp_access_range() */
proctype Access()
{
	byte c = NONE, mine = NONE;

	/* down_read(&imp->children_lock) */
	atomic { !writer -> readers++ };
	/* odp_child_get(): xa_load() */
	atomic {
		c = slot;
		if
		:: c != NONE -> ch_used[c]++
		:: else -> skip
		fi
	}
	if
	:: c == NONE && next_child < NC ->
		/* kzalloc + odp_umem_init + mmget_not_zero + odp_umem_insert */
		atomic {
			mine = next_child;
			next_child++;
			ch_state[mine] = ALIVE;
			ch_in_tree[mine] = 1
		}
		/* xa_cmpxchg(NULL -> child) */
		atomic {
			if
			:: slot == NONE -> slot = mine; c = mine; ch_used[c]++
			:: else -> c = slot; ch_used[c]++
			fi
		}
		if
		:: c != mine ->
			/* lost the race: remove and free our own */
			child_destroy(mine)
		:: else -> skip
		fi
	:: c == NONE && next_child >= NC -> goto out	/* model bound */
	:: c != NONE -> skip
	fi;

	/* odp_access_range(): odp_fault() records the page if mapped */
	atomic {
		assert(ch_state[c] == ALIVE);
		if
		:: mapped -> ch_entries[c] = 1
		:: else -> skip		/* -EFAULT: nothing recorded */
		fi
	}
	/* the copy, inside the child's read section */
	assert(ch_state[c] == ALIVE);
	/* odp_child_empty(child) -> odp_implicit_child_emptied() */
	if
	:: ch_entries[c] == 0 -> child_emptied()
	:: else -> skip
	fi;
	atomic { ch_used[c]--; c = NONE };
out:
	/* up_read(&imp->children_lock) */
	readers--;
	accesses_done++
}

/* munmap (then, maybe, a new mapping at the address): one invalidation
 * round over the children in the tree */
proctype Invalidate()
{
	byte c = 0;

	atomic { mapped = 0; inv_running = 1 };
	do
	:: c < NC ->
		/* odp_umem_invalidate(), on a child in the interval tree */
		atomic {
			if
			:: ch_in_tree[c] ->
				assert(ch_state[c] == ALIVE);
				if
				:: ch_entries[c] == 1 ->
					ch_entries[c] = 0;
					/* emptied && umem->parent */
					child_emptied()
				:: else -> skip
				fi
			:: else -> skip
			fi
		}
		c++
	:: else -> break
	od;
	/* mn_itree_inv_end() */
	inv_running = 0;
	/* the process may map the address again, for later accesses */
	if
	:: mapped = 1
	:: skip
	fi
}

/* odp_implicit_reclaim() -> odp_children_reap(imp, false) */
proctype Reclaim()
{
	byte dead;

end_idle:
	do
	:: atomic { work_pending -> work_pending = 0; work_running = 1 };
		assert(parent == ALIVE);
		dead = NONE;
#ifndef BUG_RECLAIM_UNLOCKED
		/* down_write(&imp->children_lock) */
		atomic { readers == 0 && !writer -> writer = 1 };
#endif
		atomic {
			if
			:: mark && slot != NONE ->
				mark = 0;
#ifdef BUG_NO_RECHECK
				dead = slot; slot = NONE
#else
				/* odp_child_empty(): only if still empty */
				if
				:: ch_entries[slot] == 0 -> dead = slot; slot = NONE
				:: else -> skip
				fi
#endif
			:: else -> skip
			fi
		}
#ifndef BUG_RECLAIM_UNLOCKED
		writer = 0;
#endif
		if
		:: dead != NONE ->
			/* a child with pages is never reclaimed */
			assert(ch_entries[dead] == 0);
			child_destroy(dead)
		:: else -> skip
		fi;
		work_running = 0
	od
}

/* odp_mirror_umem_release() -> odp_implicit_release() */
proctype Release()
{
	byte dead = NONE;

	/* rxe: the MR's references are gone, no access runs any more */
	accesses_done == 2;
#ifdef BUG_CANCEL_FIRST
	atomic { work_disabled = 1; work_pending = 0 };
	!work_running;
	work_disabled = 0;
#endif
	/* odp_children_reap(imp, true) */
	atomic { readers == 0 && !writer -> writer = 1 };
	atomic {
		dead = slot;
		slot = NONE;
		mark = 0
	}
	writer = 0;
	if
	:: dead != NONE -> child_destroy(dead)
	:: else -> skip
	fi;
#ifndef BUG_CANCEL_FIRST
	/* cancel_work_sync(&imp->reclaim_work) */
	atomic { work_disabled = 1; work_pending = 0 };
	!work_running;
	work_disabled = 0;
#endif
	/* xa_destroy + kfree(imp) + kfree(umem) */
	parent = FREED
}

/* Everything is torn down once nothing can move any more. */
proctype Final()
{
	byte c = 0;

	timeout ->
	assert(parent == FREED);
	assert(!work_pending && !work_running);
	do
	:: c < NC ->
		assert(ch_state[c] != ALIVE && !ch_in_tree[c]);
		c++
	:: else -> break
	od
}

init
{
	atomic {
		run Access();
		run Access();
		run Invalidate();
		run Reclaim();
		run Release();
		run Final()
	}
}
