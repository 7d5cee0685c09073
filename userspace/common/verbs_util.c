// SPDX-License-Identifier: GPL-2.0
/*
 * verbs_util - small libibverbs helpers shared by the rxe-odp tools and tests.
 * See verbs_util.h for the contract of each function.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "verbs_util.h"

#define VU_QP_TIMEOUT		14	/* 4.096 us * 2^14 = 67 ms */
#define VU_QP_RETRY_CNT		7
#define VU_QP_RNR_RETRY		7	/* infinite */
#define VU_QP_MIN_RNR_TIMER	12	/* 0.64 ms */
#define VU_QP_RD_ATOMIC		16
#define VU_SPIN_NS		1000000	/* busy-poll this long, then nap */
#define VU_NAP_NS		50000

static void __attribute__((format(printf, 2, 3)))
vu_log(const struct vu_config *cfg, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%sverbs_util: ",
		cfg && cfg->log_prefix ? cfg->log_prefix : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/*
 * libibverbs reports errors three ways: a positive errno as the return value
 * (most calls), -1 with errno set (a few), or NULL with errno set. Map them
 * all to a negative errno.
 */
static int vu_err(int ret)
{
	if (ret > 0)
		return -ret;
	if (errno > 0)
		return -errno;
	return -EIO;
}

void vu_config_init(struct vu_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->dev_name = VU_DEFAULT_DEV;
	cfg->port = VU_DEFAULT_PORT;
	cfg->gid_idx = VU_DEFAULT_GID_IDX;
	cfg->max_send_wr = 64;
	cfg->max_recv_wr = 64;
	cfg->max_sge = 1;
	cfg->cq_depth = 128;
	cfg->timeout_ms = VU_DEFAULT_TIMEOUT_MS * (int)vu_time_scale();
	cfg->log_prefix = "";
}

static int vu_env_long(const struct vu_config *cfg, const char *name,
		       long min, long max, long *out)
{
	const char *s = getenv(name);
	char *end;
	long val;

	if (!s || !*s)
		return 0;
	errno = 0;
	val = strtol(s, &end, 0);
	if (errno || *end || val < min || val > max) {
		vu_log(cfg, "%s=%s: expected an integer in [%ld, %ld]",
		       name, s, min, max);
		return -EINVAL;
	}
	*out = val;
	return 0;
}

long vu_time_scale(void)
{
	const char *s = getenv("RXE_ODP_TIME_SCALE");
	long v = s ? atol(s) : 1;

	return v < 1 ? 1 : v > 100 ? 100 : v;
}

uint8_t vu_ack_timeout(uint8_t timeout)
{
	long scale;

	for (scale = vu_time_scale(); scale > 1 && timeout < 31; scale /= 2)
		timeout++;
	return timeout;
}

int vu_config_from_env(struct vu_config *cfg)
{
	const char *dev = getenv("RXE_ODP_DEV");
	long port = cfg->port, gid_idx = cfg->gid_idx;
	int ret;

	if (dev && *dev)
		cfg->dev_name = dev;
	ret = vu_env_long(cfg, "RXE_ODP_PORT", 1, UINT8_MAX, &port);
	if (ret)
		return ret;
	ret = vu_env_long(cfg, "RXE_ODP_GID_IDX", 0, INT_MAX, &gid_idx);
	if (ret)
		return ret;
	cfg->port = port;
	cfg->gid_idx = gid_idx;
	return 0;
}

static struct ibv_context *vu_open_by_name(const struct vu_config *cfg,
					   const char *name)
{
	struct ibv_device **list;
	struct ibv_context *ctx = NULL;
	int i, n;

	list = ibv_get_device_list(&n);
	if (!list) {
		/* ENOSYS: no uverbs in this kernel; same as "no device". */
		vu_log(cfg, "ibv_get_device_list: %s", strerror(errno));
		errno = ENODEV;
		return NULL;
	}
	for (i = 0; i < n; i++)
		if (!strcmp(ibv_get_device_name(list[i]), name))
			break;
	if (i == n) {
		vu_log(cfg, "no RDMA device named %s", name);
		errno = ENODEV;
		goto out;
	}
	ctx = ibv_open_device(list[i]);
	if (!ctx)
		vu_log(cfg, "ibv_open_device(%s): %s", name, strerror(errno));
out:
	ibv_free_device_list(list);
	return ctx;
}

int vu_open(struct vu_ctx *v, const struct vu_config *cfg)
{
	static const union ibv_gid zero_gid;
	const char *name;
	int ret;

	memset(v, 0, sizeof(*v));
	v->cfg = *cfg;
	name = cfg->dev_name ? cfg->dev_name : VU_DEFAULT_DEV;
	v->cfg.dev_name = name;

	v->ctx = vu_open_by_name(cfg, name);
	if (!v->ctx)
		return vu_err(0);

	ret = ibv_query_device(v->ctx, &v->dev_attr);
	if (ret) {
		ret = vu_err(ret);
		vu_log(cfg, "ibv_query_device(%s): %s", name, strerror(-ret));
		goto clean_ctx;
	}
	ret = ibv_query_port(v->ctx, cfg->port, &v->port_attr);
	if (ret) {
		ret = vu_err(ret);
		vu_log(cfg, "ibv_query_port(%s, %u): %s", name, cfg->port,
		       strerror(-ret));
		goto clean_ctx;
	}
	if (v->port_attr.state != IBV_PORT_ACTIVE) {
		ret = -ENETDOWN;
		vu_log(cfg, "%s port %u is %s, not active", name, cfg->port,
		       ibv_port_state_str(v->port_attr.state));
		goto clean_ctx;
	}
	ret = ibv_query_gid(v->ctx, cfg->port, cfg->gid_idx, &v->gid);
	if (ret) {
		ret = vu_err(ret);
		vu_log(cfg, "ibv_query_gid(%s, %u, %d): %s", name, cfg->port,
		       cfg->gid_idx, strerror(-ret));
		goto clean_ctx;
	}
	if (!memcmp(&v->gid, &zero_gid, sizeof(zero_gid))) {
		ret = -ENODATA;
		vu_log(cfg, "%s port %u: GID index %d is empty", name,
		       cfg->port, cfg->gid_idx);
		goto clean_ctx;
	}
	v->pd = ibv_alloc_pd(v->ctx);
	if (!v->pd) {
		ret = vu_err(0);
		vu_log(cfg, "ibv_alloc_pd(%s): %s", name, strerror(-ret));
		goto clean_ctx;
	}
	return 0;

clean_ctx:
	if (ibv_close_device(v->ctx))
		vu_log(cfg, "ibv_close_device(%s) failed", name);
	v->ctx = NULL;
	return ret;
}

/*
 * Fold @err, what releasing a resource with @call returned, into @ret, the
 * result of the releases before it: log a failure; the first error wins.
 */
static int vu_released(const struct vu_config *cfg, int ret, int err,
		       const char *call)
{
	if (!err)
		return ret;
	err = vu_err(err);
	vu_log(cfg, "%s: %s", call, strerror(-err));
	return ret ? ret : err;
}

int vu_close(struct vu_ctx *v)
{
	int ret = 0;

	if (v->pd)
		ret = vu_released(&v->cfg, ret, ibv_dealloc_pd(v->pd),
				  "ibv_dealloc_pd");
	v->pd = NULL;
	if (v->ctx)
		ret = vu_released(&v->cfg, ret, ibv_close_device(v->ctx),
				  "ibv_close_device");
	v->ctx = NULL;
	return ret;
}

static int vu_qp_create(struct vu_ctx *v, struct vu_qp *q)
{
	struct ibv_qp_init_attr attr = {
		.qp_type = IBV_QPT_RC,
		.sq_sig_all = 0,
		.cap = {
			.max_send_wr = v->cfg.max_send_wr,
			.max_recv_wr = v->cfg.max_recv_wr,
			.max_send_sge = v->cfg.max_sge,
			.max_recv_sge = v->cfg.max_sge,
		},
	};
	int ret;

	q->cq = ibv_create_cq(v->ctx, v->cfg.cq_depth, NULL, NULL, 0);
	if (!q->cq) {
		ret = vu_err(0);
		vu_log(&v->cfg, "ibv_create_cq(%d): %s", v->cfg.cq_depth,
		       strerror(-ret));
		return ret;
	}
	attr.send_cq = q->cq;
	attr.recv_cq = q->cq;
	if (v->cfg.send_ops_flags) {
		struct ibv_qp_init_attr_ex xattr = {
			.qp_type = attr.qp_type,
			.send_cq = attr.send_cq,
			.recv_cq = attr.recv_cq,
			.cap = attr.cap,
			.comp_mask = IBV_QP_INIT_ATTR_PD |
				     IBV_QP_INIT_ATTR_SEND_OPS_FLAGS,
			.pd = v->pd,
			.send_ops_flags = v->cfg.send_ops_flags,
		};

		q->qp = ibv_create_qp_ex(v->ctx, &xattr);
	} else {
		q->qp = ibv_create_qp(v->pd, &attr);
	}
	if (!q->qp) {
		ret = vu_err(0);
		vu_log(&v->cfg, "ibv_create_qp(RC): %s", strerror(-ret));
		goto clean_cq;
	}
	return 0;

clean_cq:
	if (ibv_destroy_cq(q->cq))
		vu_log(&v->cfg, "ibv_destroy_cq failed");
	q->cq = NULL;
	return ret;
}

static int vu_qp_destroy(struct vu_ctx *v, struct vu_qp *q)
{
	int ret = 0;

	if (q->qp)
		ret = vu_released(&v->cfg, ret, ibv_destroy_qp(q->qp),
				  "ibv_destroy_qp");
	q->qp = NULL;
	if (q->cq)
		ret = vu_released(&v->cfg, ret, ibv_destroy_cq(q->cq),
				  "ibv_destroy_cq");
	q->cq = NULL;
	return ret;
}

static int vu_modify_qp(struct vu_ctx *v, struct ibv_qp *q,
			struct ibv_qp_attr *attr, int mask, const char *what)
{
	int ret = ibv_modify_qp(q, attr, mask);

	if (ret) {
		ret = vu_err(ret);
		vu_log(&v->cfg, "ibv_modify_qp(QP %u to %s): %s",
		       q->qp_num, what, strerror(-ret));
	}
	return ret;
}

int vu_qp_connect_to(struct vu_ctx *v, struct ibv_qp *q, uint32_t dest_qpn,
		     const union ibv_gid *dgid, uint8_t rnr_retry,
		     uint8_t timeout)
{
	uint8_t rd_atomic = VU_QP_RD_ATOMIC;
	struct ibv_qp_attr attr;
	int ret;

	if (v->dev_attr.max_qp_rd_atom < rd_atomic)
		rd_atomic = v->dev_attr.max_qp_rd_atom;
	if (v->dev_attr.max_qp_init_rd_atom < rd_atomic)
		rd_atomic = v->dev_attr.max_qp_init_rd_atom;

	memset(&attr, 0, sizeof(attr));
	attr.qp_state = IBV_QPS_RESET;
	ret = vu_modify_qp(v, q, &attr, IBV_QP_STATE, "RESET");
	if (ret)
		return ret;

	memset(&attr, 0, sizeof(attr));
	attr.qp_state = IBV_QPS_INIT;
	attr.pkey_index = 0;
	attr.port_num = v->cfg.port;
	attr.qp_access_flags = IBV_ACCESS_REMOTE_READ |
			       IBV_ACCESS_REMOTE_WRITE |
			       IBV_ACCESS_REMOTE_ATOMIC | v->cfg.qp_access_extra;
	ret = vu_modify_qp(v, q, &attr, IBV_QP_STATE | IBV_QP_PKEY_INDEX |
			   IBV_QP_PORT | IBV_QP_ACCESS_FLAGS, "INIT");
	if (ret)
		return ret;

	memset(&attr, 0, sizeof(attr));
	attr.qp_state = IBV_QPS_RTR;
	attr.path_mtu = v->cfg.mtu ? v->cfg.mtu : v->port_attr.active_mtu;
	attr.dest_qp_num = dest_qpn;
	attr.rq_psn = 0;
	attr.max_dest_rd_atomic = rd_atomic;
	attr.min_rnr_timer = VU_QP_MIN_RNR_TIMER;
	attr.ah_attr.is_global = 1;
	attr.ah_attr.grh.dgid = *dgid;
	attr.ah_attr.grh.sgid_index = v->cfg.gid_idx;
	attr.ah_attr.grh.hop_limit = 1;
	attr.ah_attr.dlid = v->port_attr.lid;
	attr.ah_attr.port_num = v->cfg.port;
	ret = vu_modify_qp(v, q, &attr, IBV_QP_STATE | IBV_QP_AV |
			   IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
			   IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER,
			   "RTR");
	if (ret)
		return ret;

	memset(&attr, 0, sizeof(attr));
	attr.qp_state = IBV_QPS_RTS;
	attr.sq_psn = 0;
	attr.timeout = timeout;
	attr.retry_cnt = VU_QP_RETRY_CNT;
	attr.rnr_retry = rnr_retry;
	attr.max_rd_atomic = rd_atomic;
	return vu_modify_qp(v, q, &attr, IBV_QP_STATE | IBV_QP_SQ_PSN |
			    IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
			    IBV_QP_RNR_RETRY | IBV_QP_MAX_QP_RD_ATOMIC, "RTS");
}

int vu_qp_connect(struct vu_ctx *v, struct ibv_qp *q, uint32_t dest_qpn)
{
	return vu_qp_connect_to(v, q, dest_qpn, &v->gid, VU_QP_RNR_RETRY,
				vu_ack_timeout(VU_QP_TIMEOUT));
}

int vu_qp_pair_create(struct vu_ctx *v, struct vu_qp_pair *p)
{
	int ret;

	memset(p, 0, sizeof(*p));
	ret = vu_qp_create(v, &p->a);
	if (ret)
		return ret;
	ret = vu_qp_create(v, &p->b);
	if (ret)
		goto clean_a;
	ret = vu_qp_connect(v, p->a.qp, p->b.qp->qp_num);
	if (ret)
		goto clean_b;
	ret = vu_qp_connect(v, p->b.qp, p->a.qp->qp_num);
	if (ret)
		goto clean_b;
	return 0;

clean_b:
	vu_qp_destroy(v, &p->b);
clean_a:
	vu_qp_destroy(v, &p->a);
	return ret;
}

int vu_qp_pair_destroy(struct vu_ctx *v, struct vu_qp_pair *p)
{
	int ret, err;

	ret = vu_qp_destroy(v, &p->b);
	err = vu_qp_destroy(v, &p->a);
	return ret ? ret : err;
}

struct ibv_mr *vu_reg_mr(struct vu_ctx *v, void *addr, size_t len,
			 unsigned int access)
{
	struct ibv_mr *mr = ibv_reg_mr(v->pd, addr, len, access);

	if (!mr) {
		int err = errno;

		vu_log(&v->cfg, "ibv_reg_mr(%p, %zu, 0x%x): %s", addr, len,
		       access, strerror(err));
		errno = err;
	}
	return mr;
}

int vu_dereg_mr(struct vu_ctx *v, struct ibv_mr *mr)
{
	return mr ? vu_released(&v->cfg, 0, ibv_dereg_mr(mr), "ibv_dereg_mr") : 0;
}

int vu_post_send(struct vu_ctx *v, struct vu_qp *qp,
		 enum ibv_wr_opcode opcode, uint64_t wr_id,
		 void *addr, uint32_t len, uint32_t lkey,
		 uint64_t raddr, uint32_t rkey)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)addr,
		.length = len,
		.lkey = lkey,
	};
	struct ibv_send_wr wr = {
		.wr_id = wr_id,
		.sg_list = &sge,
		.num_sge = 1,
		.opcode = opcode,
		.send_flags = IBV_SEND_SIGNALED,
	};
	struct ibv_send_wr *bad = NULL;
	int ret;

	if (opcode == IBV_WR_RDMA_WRITE || opcode == IBV_WR_RDMA_READ) {
		wr.wr.rdma.remote_addr = raddr;
		wr.wr.rdma.rkey = rkey;
	}
	ret = ibv_post_send(qp->qp, &wr, &bad);
	if (ret) {
		ret = vu_err(ret);
		vu_log(&v->cfg, "ibv_post_send(QP %u, opcode %d, len %u): %s",
		       qp->qp->qp_num, opcode, len, strerror(-ret));
	}
	return ret;
}

int vu_post_recv(struct vu_ctx *v, struct vu_qp *qp, uint64_t wr_id,
		 void *addr, uint32_t len, uint32_t lkey)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)addr,
		.length = len,
		.lkey = lkey,
	};
	struct ibv_recv_wr wr = {
		.wr_id = wr_id,
		.sg_list = &sge,
		.num_sge = 1,
	};
	struct ibv_recv_wr *bad = NULL;
	int ret;

	ret = ibv_post_recv(qp->qp, &wr, &bad);
	if (ret) {
		ret = vu_err(ret);
		vu_log(&v->cfg, "ibv_post_recv(QP %u, len %u): %s",
		       qp->qp->qp_num, len, strerror(-ret));
	}
	return ret;
}

static int vu_now_ns(int64_t *ns)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts))
		return -errno;
	*ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	return 0;
}

/*
 * One step of a bounded wait that began at @start: -ETIMEDOUT once
 * cfg.timeout_ms have passed, else spin briefly (then nap) to leave the
 * CPU to rxe's kernel work, and 0.
 */
static int vu_wait_step(struct vu_ctx *v, int64_t start)
{
	static const struct timespec nap = { .tv_nsec = VU_NAP_NS };
	int64_t now = 0;
	int ret;

	ret = vu_now_ns(&now);
	if (ret)
		return ret;
	if (now - start >= (int64_t)v->cfg.timeout_ms * 1000000)
		return -ETIMEDOUT;
	if (now - start < VU_SPIN_NS)
		sched_yield();
	else
		nanosleep(&nap, NULL);
	return 0;
}

int vu_poll_one(struct vu_ctx *v, struct vu_qp *qp, struct ibv_wc *wc)
{
	int64_t start = 0;
	int n, ret;

	ret = vu_now_ns(&start);
	while (!ret) {
		n = ibv_poll_cq(qp->cq, 1, wc);
		if (n < 0) {
			vu_log(&v->cfg, "ibv_poll_cq(QP %u): %d",
			       qp->qp->qp_num, n);
			return -EIO;
		}
		if (n == 1)
			return 0;
		ret = vu_wait_step(v, start);
	}
	if (ret == -ETIMEDOUT)
		vu_log(&v->cfg, "QP %u: no completion within %d ms",
		       qp->qp->qp_num, v->cfg.timeout_ms);
	return ret;
}

int vu_wait_ok(struct vu_ctx *v, struct vu_qp *qp, uint64_t wr_id,
	       enum ibv_wc_opcode opcode)
{
	struct ibv_wc wc;
	int ret;

	ret = vu_poll_one(v, qp, &wc);
	if (ret)
		return ret;
	if (wc.status != IBV_WC_SUCCESS || wc.wr_id != wr_id ||
	    wc.opcode != opcode) {
		vu_log(&v->cfg, "QP %u: got wr_id %" PRIu64 " opcode %d %s (%d, vendor_err 0x%x), want wr_id %" PRIu64 " opcode %d success",
		       qp->qp->qp_num, wc.wr_id, wc.opcode,
		       ibv_wc_status_str(wc.status), wc.status, wc.vendor_err,
		       wr_id, opcode);
		return -EIO;
	}
	return 0;
}

int vu_wait_qp_state(struct vu_ctx *v, struct ibv_qp *q,
		     enum ibv_qp_state state)
{
	struct ibv_qp_init_attr init;
	struct ibv_qp_attr attr = { .qp_state = IBV_QPS_RESET };
	int64_t start = 0;
	int ret;

	ret = vu_now_ns(&start);
	while (!ret) {
		ret = ibv_query_qp(q, &attr, IBV_QP_STATE, &init);
		if (ret)
			return ret > 0 ? -ret : -EIO;
		if (attr.qp_state == state)
			return 0;
		ret = vu_wait_step(v, start);
	}
	if (ret == -ETIMEDOUT)
		vu_log(&v->cfg, "QP %u: state %d, not %d, after %d ms",
		       q->qp_num, attr.qp_state, state, v->cfg.timeout_ms);
	return ret;
}
