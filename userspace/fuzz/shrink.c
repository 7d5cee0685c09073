// SPDX-License-Identifier: GPL-2.0
/*
 * shrink - run a (sub)program in a fresh process tree, one process per
 * worker, bounded in time; and shrink a failing program: first the
 * shortest failing prefix (bisection, then confirmed), then delta
 * debugging: drop chunks of operations, halving the chunk size down to
 * single operations, while the rest still fails at the same operation
 * (operations keep their program index). Every candidate runs in
 * new processes, so that no state leaks from one to the next.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

#include "fuzz.h"

#define MAX_CANDIDATES	200
#define SHRINK_SECONDS	(8 * 60)	/* inside make fuzz's 10 minutes of slack */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int quiet_run;

int run_program(const struct program *p, const bool *keep,
		struct fuzz_result *res, int timeout_s)
{
	struct fuzz_result *sh;
	size_t sz = (size_t)p->nprocs * sizeof(*sh);
	pid_t pid[64];
	int st[64], done = 0, i, ret = 0, n = p->nprocs > 64 ? 64 : p->nprocs;
	int64_t end = now_ms() + (int64_t)timeout_s * 1000;
	bool hung = false;

	memset(res, 0, sizeof(*res));
	res->op = -1;
	sh = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		  -1, 0);
	if (sh == MAP_FAILED) {
		snprintf(res->msg, sizeof(res->msg), "mmap: %s",
			 strerror(errno));
		return 2;
	}
	memset(sh, 0, sz);
	fflush(NULL);
	for (i = 0; i < n; i++) {
		sh[i].op = -1;
		pid[i] = fork();
		if (pid[i] < 0) {
			pid[i] = 0;
			continue;
		}
		if (!pid[i]) {
			if (quiet_run) {
				int fd = open("/dev/null", O_WRONLY);

				if (fd >= 0) {
					dup2(fd, 1);
					dup2(fd, 2);
				}
			}
			_exit(exec_worker(p, keep, i, &sh[i]));
		}
		st[i] = -1;
	}
	while (done < n) {
		done = 0;
		for (i = 0; i < n; i++) {
			if (!pid[i] || st[i] != -1) {
				done++;
				continue;
			}
			if (waitpid(pid[i], &st[i], WNOHANG) == pid[i])
				done++;
			else
				st[i] = -1;
		}
		if (done == n)
			break;
		if (now_ms() > end && !hung) {
			hung = true;
			for (i = 0; i < n; i++)
				if (pid[i] && st[i] == -1)
					kill(pid[i], SIGKILL);
			end = now_ms() + 30000;
		} else if (hung && now_ms() > end) {
			break;	/* unkillable: report what we have */
		}
		usleep(10000);
	}
	for (i = 0; i < n; i++) {
		res->ops_run += sh[i].ops_run;
		res->skipped += sh[i].skipped;
		res->xfers += sh[i].xfers;
		res->errs += sh[i].errs;
		if (ret == 1)
			continue;
		if (hung && st[i] != -1 && WIFSIGNALED(st[i]) &&
		    WTERMSIG(st[i]) == SIGKILL && !sh[i].failed) {
			res->op = sh[i].op;
			snprintf(res->msg, sizeof(res->msg),
				 "p%d op %ld %s: hang: the program did not end in %d s",
				 i, sh[i].op, sh[i].op >= 0 ?
				 op_name(p->ops[sh[i].op].kind) : "setup",
				 timeout_s);
			ret = 1;
		} else if (st[i] == -1) {
			res->op = sh[i].op;
			snprintf(res->msg, sizeof(res->msg),
				 "p%d op %ld: worker does not die after SIGKILL",
				 i, sh[i].op);
			ret = 1;
		} else if (sh[i].failed || (WIFEXITED(st[i]) &&
					    WEXITSTATUS(st[i]) == 1)) {
			res->op = sh[i].op;
			memcpy(res->msg, sh[i].msg, sizeof(res->msg));
			ret = 1;
		} else if (WIFSIGNALED(st[i])) {
			res->op = sh[i].op;
			snprintf(res->msg, sizeof(res->msg),
				 "p%d op %ld: worker killed by signal %d",
				 i, sh[i].op, WTERMSIG(st[i]));
			ret = 1;
		} else if (WIFEXITED(st[i]) && WEXITSTATUS(st[i]) == 2) {
			memcpy(res->msg, sh[i].msg, sizeof(res->msg));
			res->setup = 1;
			ret = 2;
		}
	}
	if (ret == 1)
		res->failed = 1;
	munmap(sh, sz);
	return ret;
}

static size_t count(const bool *keep, size_t n)
{
	size_t c = 0, i;

	for (i = 0; i < n; i++)
		c += keep[i];
	return c;
}

struct shrinker {
	const struct program	*p;
	int			timeout_s;
	int			tries;
	int64_t			end;
	struct fuzz_result	last;
};

/*
 * Does the candidate @keep still fail, at the same operation? A failure
 * elsewhere is another symptom (or a flaky one): following it would
 * shrink to a program that no longer shows the first.
 */
static bool still_fails(struct shrinker *s, const bool *keep)
{
	struct fuzz_result r;

	if (s->tries >= MAX_CANDIDATES || now_ms() > s->end)
		return false;
	s->tries++;
	if (run_program(s->p, keep, &r, s->timeout_s) != 1 ||
	    r.op != s->last.op)
		return false;
	s->last = r;
	if (fuzz_verbose)
		fprintf(stderr, "rxe_fuzz: shrink: %zu ops still fail: %s\n",
			count(keep, s->p->nops), r.msg);
	return true;
}

void shrink_program(const struct program *p, bool *keep, int timeout_s,
		    struct fuzz_result *res)
{
	struct shrinker s = { .p = p, .timeout_s = timeout_s };
	size_t n = p->nops, lo, hi, mid, i, chunk, start, kept;
	bool *cand = calloc(n ? n : 1, sizeof(*cand));

	if (!cand)
		return;
	quiet_run = 1;
	s.end = now_ms() + SHRINK_SECONDS * 1000LL;
	s.last = *res;
	/* the shortest failing prefix: ops [0, hi) fail */
	hi = res->op >= 0 ? (size_t)res->op + 1 : n;
	for (i = 0; i < n; i++)
		cand[i] = keep[i] && i < hi;
	if (hi < n && !still_fails(&s, cand))
		hi = n;
	lo = 0;
	while (lo + 1 < hi) {
		mid = lo + (hi - lo) / 2;
		for (i = 0; i < n; i++)
			cand[i] = keep[i] && i < mid;
		if (still_fails(&s, cand))
			hi = mid;
		else
			lo = mid;
	}
	for (i = hi; i < n; i++)
		keep[i] = false;
	/* then drop chunks, then single ops */
	for (chunk = count(keep, n) / 2; chunk >= 1; chunk /= 2) {
		for (start = 0; start < n; ) {
			memcpy(cand, keep, n * sizeof(*cand));
			for (i = start, kept = 0; i < n && kept < chunk; i++) {
				if (keep[i]) {
					cand[i] = false;
					kept++;
				}
			}
			if (kept && still_fails(&s, cand))
				memcpy(keep, cand, n * sizeof(*cand));
			else
				start = i;
			if (!kept)
				break;
		}
		if (s.tries >= MAX_CANDIDATES || now_ms() > s.end)
			break;
	}
	*res = s.last;
	quiet_run = 0;
	free(cand);
	if (fuzz_verbose)
		fprintf(stderr, "rxe_fuzz: shrink: %d candidates run\n",
			s.tries);
}
