/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Tracepoints of odp_mirror (TRACE_SYSTEM odp_mirror): faults with their
 * retries, invalidations with the entries they drop, prefetches, and the
 * children of implicit umems as they come and go. Diagnostics: names and
 * fields may change between versions.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM odp_mirror

#if !defined(_ODP_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _ODP_TRACE_H

#include <linux/tracepoint.h>

/*
 * One odp_fault(): @npages pages at @va requested (@flags: 0 snapshot
 * only, 1 fault, 3 fault for writing), @tries snapshots taken, @recorded
 * pages of the request recorded (-1: none), @ret its result.
 */
TRACE_EVENT(odp_mirror_fault,
	    TP_PROTO(const void *umem, unsigned long va, unsigned long npages,
		     unsigned int flags, unsigned int tries, long recorded,
		     int ret),
	    TP_ARGS(umem, va, npages, flags, tries, recorded, ret),
	    TP_STRUCT__entry(__field(const void *, umem)
			     __field(unsigned long, va)
			     __field(unsigned long, npages)
			     __field(unsigned int, flags)
			     __field(unsigned int, tries)
			     __field(long, recorded)
			     __field(int, ret)),
	    TP_fast_assign(__entry->umem = umem;
			   __entry->va = va;
			   __entry->npages = npages;
			   __entry->flags = flags;
			   __entry->tries = tries;
			   __entry->recorded = recorded;
			   __entry->ret = ret;),
	    TP_printk("umem=%p va=0x%lx pages=%lu flags=%u tries=%u recorded=%ld ret=%d",
		      __entry->umem, __entry->va, __entry->npages,
		      __entry->flags, __entry->tries, __entry->recorded,
		      __entry->ret)
);

/*
 * One invalidate callback of a umem: the CPU range [@start, @end), the
 * pages its entries covered (@dropped) and the mmu_notifier_event.
 */
TRACE_EVENT(odp_mirror_invalidate,
	    TP_PROTO(const void *umem, unsigned long start, unsigned long end,
		     u64 dropped, int event),
	    TP_ARGS(umem, start, end, dropped, event),
	    TP_STRUCT__entry(__field(const void *, umem)
			     __field(unsigned long, start)
			     __field(unsigned long, end)
			     __field(u64, dropped)
			     __field(int, event)),
	    TP_fast_assign(__entry->umem = umem;
			   __entry->start = start;
			   __entry->end = end;
			   __entry->dropped = dropped;
			   __entry->event = event;),
	    TP_printk("umem=%p range=0x%lx-0x%lx dropped=%llu event=%d",
		      __entry->umem, __entry->start, __entry->end,
		      __entry->dropped, __entry->event)
);

/* One odp_mirror_umem_prefetch() of [@va, @va + @len). */
TRACE_EVENT(odp_mirror_prefetch,
	    TP_PROTO(const void *umem, u64 va, u64 len, bool write,
		     bool fault, int ret),
	    TP_ARGS(umem, va, len, write, fault, ret),
	    TP_STRUCT__entry(__field(const void *, umem)
			     __field(u64, va)
			     __field(u64, len)
			     __field(bool, write)
			     __field(bool, fault)
			     __field(int, ret)),
	    TP_fast_assign(__entry->umem = umem;
			   __entry->va = va;
			   __entry->len = len;
			   __entry->write = write;
			   __entry->fault = fault;
			   __entry->ret = ret;),
	    TP_printk("umem=%p va=0x%llx len=%llu write=%d fault=%d ret=%d",
		      __entry->umem, __entry->va, __entry->len,
		      __entry->write, __entry->fault, __entry->ret)
);

/* A child of implicit umem @parent covering [@start, @end). */
DECLARE_EVENT_CLASS(odp_mirror_child,
		    TP_PROTO(const void *parent, unsigned long start,
			     unsigned long end),
		    TP_ARGS(parent, start, end),
		    TP_STRUCT__entry(__field(const void *, parent)
				     __field(unsigned long, start)
				     __field(unsigned long, end)),
		    TP_fast_assign(__entry->parent = parent;
				   __entry->start = start;
				   __entry->end = end;),
		    TP_printk("parent=%p range=0x%lx-0x%lx", __entry->parent,
			      __entry->start, __entry->end)
);

DEFINE_EVENT(odp_mirror_child, odp_mirror_child_create,
	     TP_PROTO(const void *parent, unsigned long start,
		      unsigned long end),
	     TP_ARGS(parent, start, end));

DEFINE_EVENT(odp_mirror_child, odp_mirror_child_reclaim,
	     TP_PROTO(const void *parent, unsigned long start,
		      unsigned long end),
	     TP_ARGS(parent, start, end));

#endif /* _ODP_TRACE_H */

#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE odp_trace
#include <trace/define_trace.h>
