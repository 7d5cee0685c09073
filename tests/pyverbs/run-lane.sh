#!/bin/bash
# run-lane.sh LANE RESULTS [PATTERN...]  (runs in the guest)
# Run rdma-core's pyverbs suite of one userspace lane against rxe0 and
# append one result line per test to RESULTS (see pyverbs_results.py):
#   44  Debian 12's rdma-core 44 (python3-pyverbs, tests from its docs)
#   65  rdma-core 65 built by tests/lanes/build-newer-userspace.sh
#   56  Debian 13's rdma-core 56.1, built by the same script (--lane
#       debian13); its test_odp only, unless PATTERNs say otherwise
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
lane=$1
results=$2
shift 2

# The two hugepage ODP tests need reserved 2 MiB pages.
echo 128 >/proc/sys/vm/nr_hugepages

case $lane in
44)
	tests=$(mktemp -d)/tests
	cp -r /usr/share/doc/rdma-core/tests "$tests"
	gunzip -f "$tests"/*.gz
	;;
65)
	# shellcheck source=/dev/null
	. "$("$here/../lanes/build-newer-userspace.sh" --print-env)"
	tests=$(dirname "$RDMA_CORE_65_DIR")/tests
	export PYTHONPATH=$RDMA_CORE_65_PYTHONPATH
	;;
56)
	# shellcheck source=/dev/null
	. "$("$here/../lanes/build-newer-userspace.sh" --lane debian13 --print-env)"
	tests=$(dirname "$RDMA_CORE_56_DIR")/tests
	export PYTHONPATH=$RDMA_CORE_56_PYTHONPATH
	[ $# -gt 0 ] || set -- tests.test_odp
	;;
*)
	echo "run-lane: unknown lane $lane" >&2
	exit 2
	;;
esac
/usr/bin/python3 "$here/pyverbs_results.py" --tests "$tests" \
	--prefix "pyverbs$lane" --out "$results" "$@"
