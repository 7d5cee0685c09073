/* SPDX-License-Identifier: GPL-2.0 */
/*
 * verbs_util - small libibverbs helpers shared by the rxe-odp tools and tests.
 *
 * Everything is passed explicitly: a struct vu_config holds the knobs, a
 * struct vu_ctx the opened device and its protection domain, a struct
 * vu_qp_pair two RC QPs on that device connected to each other (loopback
 * through the device's own GID). Functions return 0 or a negative errno and
 * print one diagnostic line on failure, prefixed by cfg->log_prefix.
 */
#ifndef VERBS_UTIL_H
#define VERBS_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <infiniband/verbs.h>

#define VU_DEFAULT_DEV		"rxe0"
#define VU_DEFAULT_PORT		1
#define VU_DEFAULT_GID_IDX	1	/* RoCEv2, IPv4-mapped */
#define VU_DEFAULT_TIMEOUT_MS	10000

struct vu_config {
	const char	*dev_name;	/* NULL: VU_DEFAULT_DEV */
	uint8_t		port;
	int		gid_idx;
	enum ibv_mtu	mtu;		/* 0: the port's active MTU */
	uint32_t	max_send_wr;
	uint32_t	max_recv_wr;
	uint32_t	max_sge;
	int		cq_depth;
	int		timeout_ms;	/* bound of every completion wait */
	/*
	 * IBV_QP_EX_WITH_* of the extended send API (ibv_wr_*()) that
	 * vu_qp_create() gives its QPs; 0: plain ibv_create_qp()
	 */
	uint64_t	send_ops_flags;
	/* rights vu_qp_connect() grants beyond REMOTE_READ/WRITE/ATOMIC */
	unsigned int	qp_access_extra;
	const char	*log_prefix;	/* e.g. "# " inside a TAP producer */
};

struct vu_ctx {
	struct vu_config	cfg;
	struct ibv_context	*ctx;
	struct ibv_device_attr	dev_attr;
	struct ibv_port_attr	port_attr;
	union ibv_gid		gid;
	struct ibv_pd		*pd;
};

/* One RC QP with its own CQ, used for both its send and receive queues. */
struct vu_qp {
	struct ibv_cq	*cq;
	struct ibv_qp	*qp;
};

struct vu_qp_pair {
	struct vu_qp	a;
	struct vu_qp	b;
};

/* Fill @cfg with the defaults above. */
void vu_config_init(struct vu_config *cfg);

/*
 * RXE_ODP_TIME_SCALE, 1 to 100 (default 1): tests and tools multiply
 * their time bounds by it on kernels that run rxe many times slower
 * (make check-debug sets it for the KASAN + lockdep kernel);
 * vu_config_init() scales the default completion wait with it.
 */
long vu_time_scale(void);

/*
 * The local ACK timeout exponent @timeout (4.096 us * 2^timeout) raised
 * by log2 of vu_time_scale(), at most 31: a kernel that runs rxe 20 times
 * slower may take longer than the stock kernel's timeout to ACK, and a
 * requester that times out resends all of a multi-MiB message from the
 * last ACK, work the responder then has to do as well. (Suspected, not
 * shown, in odp_large's 3 MiB WRITEs on an overloaded debug boot: no
 * completion within 200 s, against about 7 s a WRITE; with the timeout
 * raised, a later boot counted no retransmission timeout there.)
 */
uint8_t vu_ack_timeout(uint8_t timeout);

/*
 * Override @cfg from the environment: RXE_ODP_DEV, RXE_ODP_PORT,
 * RXE_ODP_GID_IDX. For programs whose argv belongs to someone else (the
 * kselftest harness). Returns 0 or -EINVAL on a malformed value.
 */
int vu_config_from_env(struct vu_config *cfg);

/*
 * Open cfg->dev_name, query device and port, read the GID and allocate a PD.
 * Returns 0, -ENODEV when no device of that name exists, or another
 * negative errno. On failure @v holds nothing that needs vu_close().
 */
int vu_open(struct vu_ctx *v, const struct vu_config *cfg);

/* Undo vu_open(). Safe on a zeroed @v. Returns 0 or the first error. */
int vu_close(struct vu_ctx *v);

/*
 * Create two RC QPs (each with its own CQ) and bring both to RTS connected
 * to each other through the device's GID at cfg.gid_idx. Returns 0 or a
 * negative errno; on failure nothing is left allocated.
 */
int vu_qp_pair_create(struct vu_ctx *v, struct vu_qp_pair *p);

/*
 * Bring RC QP @q of @v from RESET through INIT and RTR to RTS, its peer
 * being QP number @dest_qpn on the same device's GID (remote read, write
 * and atomic access; infinite RNR retry). Returns 0 or a negative errno.
 */
int vu_qp_connect(struct vu_ctx *v, struct ibv_qp *q, uint32_t dest_qpn);

/*
 * vu_qp_connect() from any state (through RESET, so PSNs start at 0
 * again), the peer being QP @dest_qpn at GID @dgid, with the RNR retry
 * count @rnr_retry (7: infinite) and the local ACK timeout @timeout
 * (4.096 us * 2^timeout; 0: the requester never retransmits).
 */
int vu_qp_connect_to(struct vu_ctx *v, struct ibv_qp *q, uint32_t dest_qpn,
		     const union ibv_gid *dgid, uint8_t rnr_retry,
		     uint8_t timeout);

/* Undo vu_qp_pair_create(). Safe on a zeroed @p. */
int vu_qp_pair_destroy(struct vu_ctx *v, struct vu_qp_pair *p);

/*
 * Register [addr, addr + len) with @access (IBV_ACCESS_* flags, passed
 * through unchanged, so IBV_ACCESS_ON_DEMAND works too). Returns the MR or
 * NULL with errno set.
 */
struct ibv_mr *vu_reg_mr(struct vu_ctx *v, void *addr, size_t len,
			 unsigned int access);

/* Deregister @mr; NULL is a no-op. Returns 0 or a negative errno. */
int vu_dereg_mr(struct vu_ctx *v, struct ibv_mr *mr);

/*
 * Post one signaled work request with a single SGE on @qp's send queue.
 * @opcode is IBV_WR_SEND, IBV_WR_RDMA_WRITE or IBV_WR_RDMA_READ; @raddr
 * and @rkey are ignored for SEND. Returns 0 or a negative errno.
 */
int vu_post_send(struct vu_ctx *v, struct vu_qp *qp,
		 enum ibv_wr_opcode opcode, uint64_t wr_id,
		 void *addr, uint32_t len, uint32_t lkey,
		 uint64_t raddr, uint32_t rkey);

/* Post one receive with a single SGE. Returns 0 or a negative errno. */
int vu_post_recv(struct vu_ctx *v, struct vu_qp *qp, uint64_t wr_id,
		 void *addr, uint32_t len, uint32_t lkey);

/*
 * Wait up to cfg.timeout_ms for one completion on @qp's CQ and store it in
 * @wc, whatever its status. Returns 0, -ETIMEDOUT, or -EIO when
 * ibv_poll_cq() itself fails.
 */
int vu_poll_one(struct vu_ctx *v, struct vu_qp *qp, struct ibv_wc *wc);

/*
 * Wait for one completion and require IBV_WC_SUCCESS, @wr_id and @opcode.
 * Returns 0, -EIO on any mismatch (logged), or vu_poll_one()'s error.
 */
int vu_wait_ok(struct vu_ctx *v, struct vu_qp *qp, uint64_t wr_id,
	       enum ibv_wc_opcode opcode);

/*
 * Wait up to cfg.timeout_ms for QP @q to reach @state. rxe posts an error
 * completion before it moves the QP to the error state (the requester
 * after the completion, the responder after its NAK), so a caller that
 * just polled an error completion waits here before it looks at the
 * state. Returns 0, -ETIMEDOUT (the state it saw is logged), or the
 * negative errno of ibv_query_qp().
 */
int vu_wait_qp_state(struct vu_ctx *v, struct ibv_qp *q,
		     enum ibv_qp_state state);

#endif /* VERBS_UTIL_H */
