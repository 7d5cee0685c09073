/*
 * odp_lifecycle.pml: the per_mm / umem lifecycle of odp_mirror + rxe ODP,
 * for spin (see run.sh and README.md beside this file).
 *
 * One mm, two ODP MRs (umem 0 registered before the model starts, umem 1
 * possibly registered while everything else runs), one page under them,
 * one CPU invalidation, one fault in flight (an rxe responder access, or
 * an asynchronous ibv_advise_mr prefetch work), which runs in its caller
 * or on odp_mirror's fault work (memory a file system backs), whose
 * caller may stop waiting for it (ODP_FAULT_WAIT), process exit, the two
 * deregistrations (ibv_dereg_mr / uverbs context close, possibly after the
 * exit), device removal (which frees the counters umems add to) and module
 * unload, and the SRCU callback machinery behind mmu_notifier_put().
 *
 * Memory is modelled as state flags (UNALLOC / ALIVE / FREED); every access
 * asserts ALIVE. Module text is a flag per module; every callback into
 * odp_mirror asserts it is still loaded.
 *
 * Deliberate bugs (spin -DNAME, run.sh --mutants):
 *   BUG_NO_SYNCHRONIZE    odp_mirror_exit() skips mmu_notifier_synchronize()
 *   BUG_FREE_BEFORE_GRACE mmu_notifier_put() frees at once (no call_srcu)
 *   BUG_NO_READ_RETRY     odp_fault() records without mmu_interval_read_retry()
 *   BUG_REMOVE_NOT_FENCE  mmu_interval_notifier_remove() does not wait for a
 *                         running invalidation
 *   BUG_DYING_ONLY        odp_fault() trusts per_mm->dying, no mmget_not_zero()
 *   BUG_COPY_UNLOCKED     odp_access_stay() copies without down_read()
 *   BUG_NO_PUT            odp_mirror_umem_release() forgets odp_per_mm_put()
 *   BUG_WORK_NO_REF       the fault work holds no umem reference
 *   BUG_NO_DEAD_CHECK     the fault work records into a stopped umem
 * Assumptions outside our code, made false on purpose:
 *   RXE_CLEANUP_TIMEOUT   __rxe_cleanup() gives up waiting for MR references
 *                         (its 50 s wait_for_completion_timeout) and cleans up
 *   KERNEL_SYNC_GP_ONLY   mmu_notifier_synchronize() only waits for a grace
 *                         period, not for queued callbacks to have run
 */

#define NU 2		/* umems = ODP MRs */
#define NP 2		/* per_mm slots (mmu_notifier_get may allocate anew) */

#define UNALLOC 0
#define ALIVE   1
#define FREED   2

/* ---- module text ---------------------------------------------------- */
bool odp_text = 1;	/* odp_mirror.ko: ops, callbacks, free_notifier */
bool rxe_text = 1;	/* rdma_rxe.ko: responder, dereg */

/* ---- struct mm_struct ------------------------------------------------ */
byte mm_users = 1;	/* the process itself */
byte mm_count = 4;	/* users pin + per_mm[0] mmgrab + umem[0] insert mmgrab
			 * + umem[0]'s own mmgrab (odp_umem_init) */
bool mm_alive = 1;	/* mm_struct and mm->notifier_subscriptions */
byte pte_gen = 1;	/* page mapped at the MRs' address: its generation;
			 * a zap replaces it (gen+1), exit_mmap clears it (0) */

/* mmu_notifier_subscriptions, interval-tree half */
byte inv_seq = 2;	/* invalidate_seq: odd while the itree is invalidated */
byte active_ranges = 0;	/* active_invalidate_ranges */
bool in_tree[NU];	/* interval_sub in subscriptions->itree */
bool deferred[NU];	/* on deferred_list: inv_end toggles in_tree */

/* struct odp_per_mm (an mmu_notifier from mmu_notifier_get) */
byte pm_state[NP];
byte pm_users[NP];	/* mmu_notifier.users */
bool pm_listed[NP];	/* on subscriptions->list (hlist) */
bool pm_dying[NP];	/* odp_per_mm.dying */

/* SRCU (the global srcu of mm/mmu_notifier.c) */
bool srcu_reader = 0;	/* mn_hlist_release()'s read-side section */
bool cb_pending[NP];	/* call_srcu(mmu_notifier_free_rcu) queued, not run */
bool cb_gp[NP];		/* its grace period still waits for srcu_reader */

/* struct odp_mirror_umem */
byte um_state[NU];
byte um_pm[NU];		/* umem->per_mm */
byte sub_seq[NU];	/* umem->notifier.invalidate_seq */
byte r_count[NU];	/* umem->lock readers (writers: atomic steps) */
byte entry[NU];		/* umem->pfns entry of the page: 0 or its generation */
byte revoked[NU];	/* newest generation whose invalidate callback returned */
bool releasing[NU];	/* odp_mirror_umem_release() entered */
bool removed[NU];	/* mmu_interval_notifier_remove() returned */
byte um_refs[NU];	/* umem->ref: the owner's, and the fault work's */
bool um_dead[NU];	/* umem->dead: the mirror stopped */

/* the fault work (odp_fault_work.c): one at most in the model */
bool work_queued = 0;
bool work_ended = 0;
byte work_u;

/* struct rxe_mr */
bool mr_valid[NU];	/* in rxe's MR pool: lookup_mr() finds it */
byte mr_refs[NU];	/* references beyond the pool's own */
bool mr_gone[NU];	/* dereg done, or never registered */
bool reg_decided = 0;	/* umem 1 registered, or never will be */
bool fault_done = 0;
bool is_prefetch = 0;	/* the fault in flight is an async prefetch work */
bool dev_alive = 1;	/* struct rxe_dev, holding the counters umems add to */
bool inval_busy = 0;	/* a CPU invalidation holds its rmap / page-table locks */

/* ---- helpers ----------------------------------------------------------- */

/* mmdrop(): mm_count--; __mmdrop frees mm and its notifier_subscriptions */
inline mmdrop_body()
{
	assert(mm_alive && mm_count > 0);
	mm_count--;
	if
	:: mm_count == 0 -> mm_alive = 0
	:: else
	fi
}

inline mmdrop()
{
	d_step { mmdrop_body() }
}

/*
 * odp_umem_put() -> odp_umem_free() on the last reference: xa_destroy
 * (of reservations only: the stop emptied the table, and a stopped umem
 * records nothing), odp_per_mm_put -> mmu_notifier_put(), mmdrop() of the
 * umem's own mmgrab, kfree(umem). Inside a d_step.
 */
inline umem_put_body(i, s)
{
	assert(um_state[i] == ALIVE && um_refs[i] > 0);
	um_refs[i]--;
	if
	:: um_refs[i] == 0 ->
		/* no entry left: odp_live_entries back where it was */
		assert(entry[i] == 0);
		s = um_pm[i];
		assert(mm_alive && pm_state[s] == ALIVE && pm_users[s] > 0);
#ifndef BUG_NO_PUT
		pm_users[s]--;
#endif
		if
		:: pm_users[s] == 0 ->
			pm_listed[s] = 0;	/* hlist_del_init_rcu */
#ifdef BUG_FREE_BEFORE_GRACE
			assert(odp_text);	/* free_notifier right away */
			pm_state[s] = FREED;
			mmdrop_body()
#else
			cb_pending[s] = 1;	/* call_srcu(mmu_notifier_free_rcu) */
			cb_gp[s] = srcu_reader
#endif
		:: else
		fi;
		mmdrop_body();			/* umem->mm */
		um_state[i] = FREED		/* kfree(umem) */
	:: else
	fi
}

/* mn_itree_inv_start_range(): under subscriptions->lock */
inline inv_start(old, cur, s0, s1)
{
	assert(mm_alive);
	active_ranges++;
	old = pte_gen;
	s0 = in_tree[0];
	s1 = in_tree[1];
	if
	:: s0 || s1 -> inv_seq = inv_seq | 1	/* seq |= 1 */
	:: else
	fi;
	cur = inv_seq
}

/*
 * ops->invalidate = odp_umem_invalidate(), blockable range. The write
 * section is one atomic step: nothing outside umem->lock observes it, and
 * lock waiters block on r_count / the atomic itself.
 */
inline odp_umem_invalidate(i, cur, old)
{
	atomic {
		r_count[i] == 0 ->		/* down_write(&umem->lock) */
		assert(!removed[i]);		/* none after remove returned */
		assert(um_state[i] == ALIVE);	/* container_of(mni) not freed */
		assert(odp_text);		/* callback text is odp_mirror's */
		sub_seq[i] = cur;		/* mmu_interval_set_seq() */
		entry[i] = 0;			/* xa_erase() of the range */
		if				/* up_write() */
		:: revoked[i] < old -> revoked[i] = old
		:: else
		fi;
		/* odp_count(): umem's counter and the device's total; true */
		assert(um_state[i] == ALIVE && dev_alive)
	}
}

/* mn_itree_inv_end(): seq++ when the last range ends, deferred list, wake */
inline inv_end_body()
{
	{
		assert(mm_alive);
		active_ranges--;
		if
		:: active_ranges == 0 && (inv_seq & 1) ->
			inv_seq++;
			if
			:: deferred[0] ->	/* hlist walk touches interval_sub */
				assert(um_state[0] == ALIVE);
				in_tree[0] = !in_tree[0];
				deferred[0] = 0
			:: else
			fi;
			if
			:: deferred[1] ->
				assert(um_state[1] == ALIVE);
				in_tree[1] = !in_tree[1];
				deferred[1] = 0
			:: else
			fi
		:: else
		fi
	}
}

inline inv_end()
{
	d_step { inv_end_body() }
}

/* ---- process exit: the task side --------------------------------------- */
proctype Process()
{
	if
	:: /* ibv_reg_mr(ON_DEMAND) -> rxe_reg_user_mr -> rxe_odp_mr_init_user
	    * -> odp_mirror_umem_get(): kzalloc(umem) */
		/* odp_per_mm_get -> mmu_notifier_get(): find_get_mmu_notifier()
		 * or ops->alloc_notifier + __mmu_notifier_register (mmgrab) */
		d_step {
			um_state[1] = ALIVE;
			um_refs[1] = 1;		/* kref_init */
			mm_count++;		/* odp_umem_init: mmgrab */
			assert(mm_alive && mm_users > 0 && odp_text);
			if
			:: pm_listed[0] ->
				assert(pm_state[0] == ALIVE);
				pm_users[0]++;
				um_pm[1] = 0
			:: else ->
				assert(pm_state[1] == UNALLOC);
				pm_state[1] = ALIVE;
				pm_users[1] = 1;
				pm_listed[1] = 1;
				mm_count++;
				um_pm[1] = 1
			fi
		}
		/* mmu_interval_notifier_insert(): mmgrab, insert or defer */
		d_step {
			assert(mm_alive && mm_users > 0);
			mm_count++;
			if
			:: active_ranges > 0 ->
				if
				:: (inv_seq & 1) -> deferred[1] = 1
				:: else -> inv_seq = inv_seq | 1; in_tree[1] = 1
				fi;
				sub_seq[1] = inv_seq
			:: else ->
				sub_seq[1] = inv_seq - 1;
				in_tree[1] = 1
			fi;
			mr_valid[1] = 1;	/* rxe: MR in the pool, rkey usable */
			reg_decided = 1
		}
	:: d_step { mr_gone[1] = 1; reg_decided = 1 }	/* no second MR */
	fi;
	/* do_exit -> exit_mm -> mmput(): last user runs __mmput (Teardown) */
	mm_users--
}

/* ---- __mmput -> exit_mmap (from exit_mm or mmput_async's work) -------- */
proctype Teardown()
{
	byte old, cur, s;
	bool s0, s1, seen;

	/* mm_users reached 0: exit_mmap -> mmu_notifier_release
	 * -> __mmu_notifier_release -> mn_itree_release: every interval,
	 * MMU_NOTIFY_RELEASE */
	atomic { mm_users == 0 -> inv_start(old, cur, s0, s1) }
	if
	:: s0 -> odp_umem_invalidate(0, cur, old)
	:: else
	fi;
	if
	:: s1 -> odp_umem_invalidate(1, cur, old)
	:: else
	fi;
	inv_end();
	/* mn_hlist_release: srcu_read_lock, ->release of each listed notifier */
	s = 0;
	do
	:: s < NP ->
		d_step {
			srcu_reader = 1;
			seen = pm_listed[s]	/* hlist_for_each_entry_srcu */
		}
		if
		:: seen ->
			/* ->release = odp_per_mm_release(): WRITE_ONCE(dying) */
			d_step {
				assert(pm_state[s] == ALIVE);
				assert(odp_text);
				pm_dying[s] = 1
			}
		:: else
		fi;
		s++
	:: else -> break
	od;
	skip;
	d_step {
		pm_listed[0] = 0;	/* hlist_del_init_rcu() of every one */
		pm_listed[1] = 0;
		srcu_reader = 0;	/* srcu_read_unlock: grace periods end */
		cb_gp[0] = 0;
		cb_gp[1] = 0
	}
	/* synchronize_srcu(); then unmap_vmas/free_pgtables, which take the
	 * page-table and rmap locks an in-flight reclaim invalidation holds */
	atomic {
		!inval_busy -> pte_gen = 0;
		mmdrop_body()		/* __mmput -> mmdrop() */
	}
}

/* ---- CPU invalidation: munmap / madvise(DONTNEED) / reclaim ----------- */
proctype Invalidate()
{
	byte old, cur;
	bool s0, s1, go;

	/* zap -> mmu_notifier_invalidate_range_start -> mn_itree_invalidate */
	atomic {
		go = (pte_gen != 0);	/* a mapped page to invalidate */
		if
		:: go -> inval_busy = 1; inv_start(old, cur, s0, s1)
		:: else
		fi
	}
	if
	:: !go -> goto out
	:: else
	fi;
	if
	:: s0 -> odp_umem_invalidate(0, cur, old)
	:: else
	fi;
	if
	:: s1 -> odp_umem_invalidate(1, cur, old)
	:: else
	fi;
	/* ptep_clear_flush: the old page leaves the page table (freed after
	 * the TLB flush); the next touch maps a fresh page */
	d_step {
		if
		:: pte_gen == old -> pte_gen = old + 1
		:: else
		fi
	}
	/* mmu_notifier_invalidate_range_end -> mn_itree_inv_end */
	d_step {
		inv_end_body();
		inval_busy = 0		/* rmap / page-table locks dropped */
	}
out:	skip
}

/* ---- a fault in flight: rxe responder access, or async prefetch ------- */
proctype Fault()
{
	byte u, g, seq, faults, collisions, chunk;
	bool ok, recorded, eagain, prefetch;

	atomic {
		/* the request's rkey (or the advice's lkey) names MR 0 or 1 */
		if
		:: u = 0
		:: u = 1
		fi;
		/* rxe responder task (check_rkey), or ibv_advise_mr without
		 * FLUSH: rxe_odp_advise_mr -> rxe_odp_prefetch_prepare, then
		 * a work on rxe_wq */
		if
		:: prefetch = 0
		:: prefetch = 1; is_prefetch = 1
		fi;
		/* lookup_mr -> rxe_pool_get_index: kref_get_unless_zero */
		assert(rxe_text);
		ok = mr_valid[u];
		if
		:: ok -> mr_refs[u]++
		:: else
		fi
	}
	if
	:: !ok -> goto done
	:: ok && prefetch -> goto chunk_start
	:: else
	fi;
access:
	/* rxe_mr_copy -> rxe_odp_mr_copy -> odp_mirror_umem_access
	 * -> odp_access_stay: down_read(&umem->lock), odp_usable_pfn */
	skip;
	d_step {
		assert(um_state[u] == ALIVE && rxe_text && odp_text);
#ifndef BUG_COPY_UNLOCKED
		r_count[u]++;
#endif
		g = entry[u]
	}
	if
	:: g != 0 ->
		/* fn = odp_copy_chunk: memcpy through kmap_local_pfn(pfn);
		 * invariant 1 checked at the copy's start and at its end */
		assert(g > revoked[u] && um_state[u] == ALIVE);
		d_step {
			assert(g > revoked[u] && um_state[u] == ALIVE);
#ifndef BUG_COPY_UNLOCKED
			r_count[u]--		/* up_read */
#endif
		}
		goto put
	:: else ->
#ifndef BUG_COPY_UNLOCKED
		r_count[u]--		/* up_read; -ENOENT: fault it in */
#else
		skip
#endif
	fi;
	if
	:: faults == 2 -> goto put	/* ++lost > ODP_FAULT_RETRIES: -EAGAIN */
	:: else -> faults++
	fi;
	goto fault;
chunk_start:
	/* rxe_odp_prefetch_work -> odp_mirror_umem_prefetch: before each
	 * 2 MiB chunk, keep_going = rxe_odp_mr_valid (rxe_odp_mr_stop) */
	skip;
	d_step {
		assert(rxe_text && odp_text && um_state[u] == ALIVE);
		ok = mr_valid[u]
	}
	if
	:: !ok || chunk == 2 -> goto put	/* MR going away, or done */
	:: else -> chunk++
	fi;
fault:
	/* odp_fault(): READ_ONCE(umem->per_mm->dying), racy on purpose */
	skip;
	d_step {
		assert(um_state[u] == ALIVE && pm_state[um_pm[u]] == ALIVE);
		ok = !pm_dying[um_pm[u]]
	}
	if
	:: !ok -> goto put		/* -EFAULT */
	:: else
	fi;
	/* odp_fault_wait(): in the caller, or (memory a file system backs,
	 * a contended mmap lock) on the fault work: the first fault only,
	 * in the model */
	if
	:: faults + chunk <= 1 && !work_queued ->
		d_step {
			assert(um_state[u] == ALIVE && odp_text);
#ifndef BUG_WORK_NO_REF
			um_refs[u]++;		/* kref_get for the work */
#endif
			work_u = u;
			work_queued = 1		/* queue_work(odp_fault_wq) */
		}
		/* wait_for_completion_killable_timeout(ODP_FAULT_WAIT) */
		if
		:: work_ended ->		/* odp_fault_count(); its ret */
			if
			:: prefetch -> goto chunk_start
			:: else -> goto access
			fi
		:: skip -> goto put		/* -ETIME: -EAGAIN, retry later */
		fi
	:: skip
	fi;
#ifndef BUG_DYING_ONLY
	d_step {			/* mmget_not_zero(umem->notifier.mm) */
		assert(mm_alive);
		ok = (mm_users > 0);
		if
		:: ok -> mm_users++
		:: else
		fi
	}
	if
	:: !ok -> goto put		/* -EFAULT */
	:: else
	fi;
#endif
	collisions = 0;
	recorded = 0;
	eagain = 0;
retry:
	/* mmu_interval_read_begin(): waits out an invalidation that already
	 * set this range's seq */
	skip;
	d_step {
		assert(mm_alive);
		seq = sub_seq[u];
		ok = (seq == inv_seq)
	}
	if
	:: ok -> inv_seq != seq		/* wait_event(subscriptions->wq) */
	:: else
	fi;
	/* mmap_read_lock; hmm_range_fault(): a snapshot of the page table
	 * (faulting, or present pages only for PREFETCH_NO_FAULT), which
	 * exists only while the mm has users */
	d_step {
		assert(mm_alive && mm_users > 0);
		g = pte_gen;
		assert(g != 0)
	}
	/* down_write(&umem->lock) ... up_write(), odp_count(): one step */
	atomic {
		r_count[u] == 0 ->
#ifndef BUG_NO_READ_RETRY
		if
		:: sub_seq[u] != seq ->		/* mmu_interval_read_retry() */
			collisions++;		/* up_write; continue */
			eagain = (collisions == 2)	/* the timeout */
		:: else ->
#endif
			/* odp_record(): xa_store under the write lock */
			assert(um_state[u] == ALIVE && !releasing[u]);
			entry[u] = g;
			recorded = 1;
			/* odp_count(): page_faults and the device's total
			 * (a prefetch counts page_prefetch only) */
			assert(prefetch || dev_alive)
#ifndef BUG_NO_READ_RETRY
		fi
#endif
	}
	if
	:: !recorded && !eagain -> goto retry
	:: else
	fi;
#ifndef BUG_DYING_ONLY
	mm_users--;			/* mmput_async(): last user -> Teardown */
#endif
	if
	:: eagain -> goto put
	:: !eagain && prefetch -> goto chunk_start
	:: else -> goto access
	fi;
put:
	mr_refs[u]--;			/* rxe_put(mr) */
	/* the prefetch work goes on after its last rxe_put: kfree(p) */
	assert(rxe_text);
done:
	fault_done = 1			/* QP destroyed / work drained */
}

/* ---- MR deregistration: ibv_dereg_mr, or uverbs context close --------- */
proctype Dereg(byte i)
{
	byte s, wseq;

	reg_decided || i == 0;
	if
	:: mr_gone[i] -> goto out	/* never registered */
	:: else
	fi;
	/* rxe_dereg_mr -> rxe_odp_mr_stop (mr->state INVALID: lookups fail,
	 * prefetches stop at their next chunk) -> rxe_cleanup -> __rxe_cleanup:
	 * xa_erase from the pool, drop the pool's reference */
	mr_valid[i] = 0;
	/* wait_for_completion_timeout(&elem->complete): the last rxe_put */
#ifdef RXE_CLEANUP_TIMEOUT
	if
	:: mr_refs[i] == 0
	:: skip			/* WARN "Timed out waiting", cleans up anyway */
	fi;
#else
	mr_refs[i] == 0;
#endif
	/* pool->cleanup = rxe_mr_cleanup -> rxe_odp_mr_cleanup
	 * -> odp_mirror_umem_release() */
	/* mmu_interval_notifier_remove(), under subscriptions->lock */
	d_step {
		assert(rxe_text && odp_text);
		releasing[i] = 1;
		assert(mm_alive && um_state[i] == ALIVE);
		wseq = 0;
		if
		:: (inv_seq & 1) ->
			if
			:: deferred[i] -> deferred[i] = 0	/* insert not done */
			:: else -> deferred[i] = 1; wseq = inv_seq
			fi
		:: else ->
			assert(in_tree[i]);
			in_tree[i] = 0
		fi
	}
	/* wait_event(subscriptions->wq, mmu_interval_seq_released()), then
	 * mmdrop() pairing with insert's mmgrab */
	atomic {
#ifndef BUG_REMOVE_NOT_FENCE
		wseq == 0 || inv_seq != wseq ->
#endif
		removed[i] = 1;
		mmdrop_body()
	}
	/* odp_umem_remove(): down_write, dead = true, the tables emptied,
	 * up_write (one step); then the owner's odp_umem_put(): the last
	 * reference frees the umem, or the fault work's does later */
	d_step {
		r_count[i] == 0 ->
		assert(um_state[i] == ALIVE);
		um_dead[i] = 1;
		entry[i] = 0;
		umem_put_body(i, s);
		mr_gone[i] = 1
	}
out:	skip
}

/* ---- odp_mirror's fault work: odp_fault_work_fn() ---------------------- */
proctype FaultWork()
{
	byte u, g, seq, s;
	bool ok;

end:	work_queued;
	u = work_u;
	/* odp_fault(): READ_ONCE(umem->dead), racy; then mmget_not_zero of
	 * umem->mm, whose mm_struct the umem's own mmgrab keeps */
	d_step {
		assert(um_state[u] == ALIVE && odp_text && mm_alive);
		ok = !um_dead[u] && mm_users > 0;
		if
		:: ok -> mm_users++
		:: else
		fi
	}
	if
	:: !ok -> goto out		/* -EFAULT */
	:: else
	fi;
	/* mmu_interval_read_begin(), maybe on a notifier removed meanwhile */
	skip;
	d_step {
		assert(mm_alive && um_state[u] == ALIVE);
		seq = sub_seq[u];
		ok = (seq == inv_seq)
	}
	if
	:: ok -> inv_seq != seq
	:: else
	fi;
	/* mmap_read_lock; hmm_range_fault() (as long as the backing wants) */
	d_step {
		assert(mm_alive && mm_users > 0);
		g = pte_gen;
		assert(g != 0)
	}
	/* down_write; a stopped umem records nothing; read_retry; record */
	atomic {
		r_count[u] == 0 ->
		assert(um_state[u] == ALIVE);
		if
#ifndef BUG_NO_DEAD_CHECK
		:: um_dead[u] -> skip		/* -EFAULT */
#endif
		:: sub_seq[u] != seq -> skip	/* collision: cut here */
		:: else -> entry[u] = g
		fi
	}
	mm_users--;			/* mmput_async() */
out:	skip;
	/* complete_all(); odp_umem_put(): maybe the last reference */
	d_step {
		work_ended = 1;
#ifndef BUG_WORK_NO_REF
		umem_put_body(u, s)
#else
		skip
#endif
	}
}

/* ---- SRCU callback invocation (srcu_invoke_callbacks) -----------------
 * mmu_notifier_free_rcu -> ops->free_notifier = odp_per_mm_free (kfree,
 * live count), then mmdrop() pairing with __mmu_notifier_register; one
 * step: odp_text is asserted when the callback runs, and Unload's wait
 * for !cb_pending stands for it having returned. */
inline free_rcu(s)
{
	d_step {
		cb_pending[s] && !cb_gp[s] ->	/* grace period over */
		assert(odp_text);
		assert(pm_state[s] == ALIVE);
		pm_state[s] = FREED;
		mmdrop_body();
		cb_pending[s] = 0
	}
}

proctype SrcuWorker()
{
end:	do
	:: free_rcu(0)
	:: free_rcu(1)
	od
}

/* ---- rdma link del + rmmod rdma_rxe + rmmod odp_mirror ---------------- */
proctype Unload()
{
	/* ib_unregister_device: waits for every uverbs context to close (rxe
	 * has no disassociate_ucontext), hence every MR, and for the QPs
	 * (their tasks drained); a prefetch work only holds MR references */
	mr_gone[0] && mr_gone[1] && (fault_done || is_prefetch);
	dev_alive = 0;			/* ib_dealloc_device: rxe_dev freed */
	/* rmmod rdma_rxe -> rxe_module_exit -> rxe_destroy_wq drains rxe_wq */
	fault_done;
	rxe_text = 0;
	/* rmmod odp_mirror -> odp_mirror_exit: destroy_workqueue() waits for
	 * the fault work (and with it the last umem put), then
	 * mmu_notifier_synchronize() */
	work_ended || !work_queued;
#ifndef BUG_NO_SYNCHRONIZE
#ifdef KERNEL_SYNC_GP_ONLY
	(!cb_pending[0] || !cb_gp[0]) && (!cb_pending[1] || !cb_gp[1]);
#else
	!cb_pending[0] && !cb_pending[1];
#endif
#endif
	odp_text = 0			/* module text freed */
}

/* ---- when nothing can move any more: everything was torn down -------- */
proctype Final()
{
	timeout ->
	assert(odp_text == 0 && rxe_text == 0);	/* unload completed */
	assert(!mm_alive && mm_count == 0);		/* no mm_struct leak */
	assert(pm_state[0] != ALIVE && pm_state[1] != ALIVE);
	assert(um_state[0] != ALIVE && um_state[1] != ALIVE);
	assert(!cb_pending[0] && !cb_pending[1] && !dev_alive)
}

init
{
	atomic {
		/* umem 0 registered before: per_mm slot 0, in the tree */
		pm_state[0] = ALIVE;
		pm_users[0] = 1;
		pm_listed[0] = 1;
		um_state[0] = ALIVE;
		um_refs[0] = 1;
		um_pm[0] = 0;
		sub_seq[0] = 1;
		in_tree[0] = 1;
		mr_valid[0] = 1;
		run Process();
		run Teardown();
		run Invalidate();
		run Fault();
		run Dereg(0);
		run Dereg(1);
		run FaultWork();
		run SrcuWorker();
		run Unload();
		run Final()
	}
}

#ifdef LIVENESS
/* every run ends with both modules unloaded and the mm_struct freed */
ltl all_torn_down { <> (odp_text == 0 && !mm_alive) }
#endif
