# SPDX-License-Identifier: GPL-2.0
#
# rxe-odp: on-demand paging for soft-RoCE (rxe) on Debian's 6.12 kernels.
#
#   make          build rdma_rxe.ko and odp_mirror.ko out of tree, for the
#                 default kernel of kernels.matrix (KERNEL=<name>: another)
#   make check    host unit tests, then every guest suite (see tests/)
#   make stress   the C scenarios at their stress counts (200 rounds or
#                 more; tests/c/test_util.h) and the teardown matrix at
#                 1000 iterations a cell (several hours)
#   make demo     boot the guest, load our rxe, run perftest, print a table
#   make bench    ODP against pinned, 6 interleaved ABBA pairs per
#                 comparison in boots without debug options, on our rxe
#                 and on Debian sid's 7.x rxe (upstream ODP) side by side
#                 (perf/abba.sh; about 30 minutes; results in perf/results/)
#   make bench-lat  ODP - pinned latency (ib_write_lat, 8 B and 64 KiB),
#                 ABBA pairs in boots with one host thread per vCPU, ours
#                 and sid's 7.x (perf/abba.sh --lat)
#   make bench-sweep  ib_write_bw against message size (4 KiB to 8 MiB),
#                 pinned, ODP and implicit ODP, and first-touch cost
#                 against pages, with PNG plots (perf/sweep.sh; results in
#                 perf/results/)
#   make interop  the two-guest interop matrix (tests/interop): our rxe
#                 against ours, Debian's stock rxe and sid's upstream rxe
#                 on a wire, every byte checked, under loss and churn;
#                 writes tests/interop/matrix.md (about 30 minutes)
#   make fuzz     the seeded verbs + mm fuzzer (userspace/fuzz) in the
#                 guest for FUZZ_MINUTES (60) from FUZZ_SEED (the time);
#                 FUZZ_DEBUG=1 boots the debug kernel (and multiplies the
#                 fuzzer's time bounds by 5); results and the
#                 shrunk failing program in build/fuzz/
#   make check-debug
#                 the debug-kernel lane (tests/debug, not in CI): a kernel
#                 with KASAN, lockdep, kmemleak and fault injection built
#                 from the same source (about 20 minutes the first time),
#                 the C tests, the lifetime matrix, pyverbs test_odp and
#                 fault injection aimed at our code on it; results in
#                 tests/debug/last-run.md, the history of the lane's
#                 runs and finds in tests/debug/results.md (a few hours)
#   make doctor   tell whether this machine's running kernel can use
#                 rxe-odp, and what is missing (scripts/doctor.sh)
#   make lint     checkpatch --strict and kernel-doc on our kernel files
#   make dkms-install / dkms-remove
#                 install the DKMS package into /usr/src and build it for
#                 the running 6.12 kernel, and for later ones as they are
#                 installed (needs dkms, linux-source-6.12 and the
#                 kernel's headers; root)
#
# Kernel packages and userspace builds are cached in $(RXE_ODP_CACHE)
# (default ~/.cache/rxe-odp); the generated Kbuild tree is in build/.

TOP := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
export RXE_ODP_CACHE ?= $(HOME)/.cache/rxe-odp
KERNEL ?= $(shell $(TOP)/scripts/kernel-env.sh --list | head -n 1)
KVER := $(shell $(TOP)/scripts/kernel-env.sh --kver $(KERNEL))
KCACHE := $(RXE_ODP_CACHE)/$(KVER)

.PHONY: all modules kernel check check-debug stress demo bench bench-sweep bench-lat interop fuzz doctor lint clean dkms-install dkms-remove

DKMS_VERSION := $(shell sed -n 's/^PACKAGE_VERSION="\(.*\)"$$/\1/p' dkms.conf)

all: modules

kernel: $(KCACHE)/.extracted

$(KCACHE)/.extracted: kernels.matrix scripts/fetch-kernel.sh
	scripts/fetch-kernel.sh $(KERNEL) >/dev/null

modules: kernel
	scripts/build-modules.sh $(KERNEL)

check: modules
	tests/run-all.sh

check-debug: modules
	tests/debug/run.sh

stress: modules
	RXE_ODP_STRESS=1 RXE_ODP_C_TIMEOUT=7200 C_SUITE_TIMEOUT=43200 \
		LIFETIME_ITERATIONS=1000 tests/run-all.sh c lifetime

demo: modules
	tests/demo.sh

bench: modules
	perf/abba.sh --icount --smp 1 --kernel $(KERNEL) --kernel sid

bench-sweep: modules
	perf/sweep.sh --kernel $(KERNEL)

bench-lat: modules
	perf/abba.sh --lat --kernel $(KERNEL) --kernel sid

FUZZ_MINUTES ?= 60
FUZZ_SEED ?= $(shell date +%s)
# the guest's bound past FUZZ_MINUTES: boot, the last program, the unload
# and (debug kernel) the kmemleak scan; with 600 s a debug guest that
# shared the 2 cores with three others was killed (exit 124) before its
# fuzzer had reported
FUZZ_SLACK = $(if $(filter 1,$(FUZZ_DEBUG)),3600,600)
fuzz: modules
	$(MAKE) -C userspace
	rm -rf build/fuzz
	mkdir -p build/fuzz
	rc=0; tests/vm/run-in-guest.sh $(if $(filter 1,$(FUZZ_DEBUG)),--debug) \
		--timeout $$(( $(FUZZ_MINUTES) * 60 + $(FUZZ_SLACK) )) --out build/fuzz -- \
		env FUZZ_MINUTES=$(FUZZ_MINUTES) FUZZ_SEED=$(FUZZ_SEED) \
		RXE_ODP_TIME_SCALE=$(if $(filter 1,$(FUZZ_DEBUG)),5,1) \
		tests/fuzz/run.sh /results/fuzz.txt || rc=$$?; \
	cat build/fuzz/fuzz.txt 2>/dev/null || \
		echo "fail fuzz.rxe_fuzz # no results (guest exit $$rc)"; \
	exit $$rc

interop: modules
	rm -rf build/interop
	tests/lanes/build-newer-userspace.sh >/dev/null
	$(MAKE) -C userspace
	tests/interop/run.sh full build/interop build/interop/raw.txt
	tests/check-results.py build/interop/raw.txt tests/expected-skips.txt \
		tests/interop/expected-upstream.txt >build/interop/results.txt
	tests/interop/table.py build/interop/results.txt >tests/interop/matrix.md
	@grep -c '^ok ' build/interop/results.txt | sed 's/$$/ ok/'
	@! grep '^fail ' build/interop/results.txt

doctor:
	scripts/doctor.sh

lint: kernel
	scripts/lint.sh $(KCACHE)/src

clean:
	rm -rf build tests/unit/out userspace/out perf/out tests/lifetime/out

# (dkms add fails when the version is added already: not an error here)
dkms-install:
	scripts/dkms-source.sh /usr/src
	-dkms add rxe-odp/$(DKMS_VERSION)
	dkms install rxe-odp/$(DKMS_VERSION)

dkms-remove:
	dkms remove rxe-odp/$(DKMS_VERSION) --all
	rm -rf /usr/src/rxe-odp-$(DKMS_VERSION)
