#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# run.sh RESULTS  (runs in the guest, rxe0 up: tests/vm/run-in-guest.sh)
#
# UCX and Open MPI over rxe0, as Debian 12 users run them (UCX 1.13.1,
# Open MPI 4.1.4), with each memory mode of tests/ucx/ucx-on-rxe.env:
#
#   uct.put_bw, uct.get, uct.am_bw   ucx_perftest over rc_verbs, zero copy,
#                                    64 KiB (am: 4 KiB, its segment limit)
#   uct.fadd, uct.cswap              ucx_perftest atomics over rc_verbs
#   ucp.tag_bw.rndv_get|rndv_put     UCP tag, rendezvous by RDMA READ / WRITE
#   ucp.put_bw, ucp.get              UCP RMA
#   ucp.tag_bw.ud                    UCP tag over ud_verbs alone, eager zero
#                                    copy (UD has no rendezvous by RDMA)
#   io_demo                          ucx-utils' client/server IO demo with
#                                    -q: every byte it moves is validated
#                                    (a mismatch aborts it)
#   mpi_exchange                     two Open MPI ranks, pml ucx and osc
#                                    ucx, point-to-point and one-sided, every
#                                    byte checked (tests/ucx/mpi_exchange.c)
#
# Modes: pinned, explicit (one ODP MR a buffer), implicit (one ODP MR a
# process). Cases whose memory UCX never registers on demand in a mode
# are not run in it: io_demo and Open MPI map their buffers blocking, so
# they have no explicit mode. Implicit cases run on the patched private
# UCX 1.13.1 of tests/ucx/build-ucx.sh (Debian's crashes at exit); the
# others on Debian's binaries.
#
# Each case passes when every process exits 0 within its time limit, the
# perftest client reports its final line, and rxe's device-wide ODP page
# fault counter (rdma statistic, netlink) moved in an ODP mode and stayed
# still when pinned: the mode really was used. Cases run one at a time,
# so the counter is theirs. Appends to RESULTS:
#
#   ok ucx.<case>.<mode> # <n> ODP page faults
#   fail ucx.<case>.<mode> # <reason>
#
# and writes a table of them to ucx-table.md beside RESULTS, with each
# case's logs (ucx.<case>.<mode>.*.log).
#
# Environment: RXE_ODP_UCX_TIMEOUT (seconds a process, default 120).
set -u

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
limit=${RXE_ODP_UCX_TIMEOUT:-120}

if [ $# -ne 1 ] || ! : >>"$1"; then
	echo "usage: $0 RESULTS (writable)" >&2
	exit 2
fi
results=$1
dir=$(cd "$(dirname "$results")" && pwd)
table=$dir/ucx-table.md
addr=10.0.0.1	# dummy0's, rxe0's netdev (tests/vm/guest-init.sh)

set -a
# shellcheck source=SCRIPTDIR/ucx-on-rxe.env
. "$here/ucx-on-rxe.env"
set +a

priv='' why_priv=''
if env_sh=$("$here/build-ucx.sh" --print-env 2>/dev/null); then
	# shellcheck source=/dev/null
	. "$env_sh"
	priv=$UCX_PRIVATE_DIR
else
	why_priv='the patched UCX is not built (tests/ucx/build-ucx.sh)'
fi
mpi_exchange=$here/out/mpi_exchange

odp_faults() { "$top/tests/vm/odp-faults.sh"; }

# mode_env MODE: the settings of a memory mode (NAME=value words) into
# the array menv.
mode_env() {
	case $1 in
	pinned) menv=('UCX_IB_REG_METHODS=rcache,direct') ;;
	explicit) menv=(UCX_IB_ODP_MAX_SIZE=inf) ;;
	implicit) menv=(UCX_IB_REG_METHODS=odp) ;;
	esac
}

# bin MODE TOOL: the UCX program a mode runs.
bin() {
	if [ "$1" = implicit ]; then
		echo "$priv/bin/$2"
	else
		echo "/usr/bin/$2"
	fi
}

port=13000
rows=()

# record NAME MODE FAULTS0 [REASON]: a case's verdict, with the fault
# check when it did not fail otherwise.
record() {
	local name=ucx.$1.$2 mode=$2 f0=$3 why=${4:-} f1 n
	f1=$(odp_faults)
	n=$((f1 - f0))
	if [ -z "$why" ]; then
		if [ "$mode" = pinned ] && [ "$n" -ne 0 ]; then
			why="pinned, yet $n ODP page faults"
		elif [ "$mode" != pinned ] && [ "$n" -eq 0 ]; then
			why="no ODP page fault: the $mode mode was not used"
		fi
	fi
	if [ -z "$why" ]; then
		echo "ok $name # $n ODP page faults" >>"$results"
		rows+=("| $1 | $mode | ok | $n |")
	else
		echo "fail $name # $why" >>"$results"
		echo "FAIL $name: $why" >&2
		rows+=("| $1 | $mode | FAIL: $why | $n |")
	fi
}

# pair CASE MODE ENV... -- ARGS...: ucx_perftest server and client with
# the same ARGS, under the mode's settings and ENV.
pair() {
	local case=$1 mode=$2 envs=() f0 srv rc=0 src=0 why='' log
	shift 2
	while [ "$1" != -- ]; do
		envs+=("$1")
		shift
	done
	shift
	log=$dir/ucx.$case.$mode
	[ "$mode" != implicit ] || [ -n "$priv" ] ||
		{ record "$case" "$mode" "$(odp_faults)" "$why_priv"; return; }
	port=$((port + 1))
	f0=$(odp_faults)
	env "${menv[@]}" "${envs[@]}" timeout "$limit" \
		"$(bin "$mode" ucx_perftest)" "$@" -p "$port" >"$log.server.log" 2>&1 &
	srv=$!
	"$top/tests/vm/wait-listen.sh" "$port" "$srv" ||
		why="the server did not listen on $port"
	[ -n "$why" ] || env "${menv[@]}" "${envs[@]}" timeout "$limit" \
		"$(bin "$mode" ucx_perftest)" "$@" -p "$port" "$addr" \
		>"$log.client.log" 2>&1 || rc=$?
	wait "$srv" || src=$?
	if [ -n "$why" ]; then
		:
	elif [ "$rc" != 0 ] || [ "$src" != 0 ]; then
		why="client exited $rc, server $src"
	elif ! grep -q '^Final:' "$log.client.log"; then
		why="the client reported no final result"
	fi
	record "$case" "$mode" "$f0" "$why"
}

# io_demo MODE: the IO demo, data validated, over rdmacm's address.
io_demo() {
	local mode=$1 f0 srv rc=0 why='' log=$dir/ucx.io_demo.$1
	local args=(-q -d 1024:262144 -p $((port += 1)))

	[ "$mode" != implicit ] || [ -n "$priv" ] ||
		{ record io_demo "$mode" "$(odp_faults)" "$why_priv"; return; }
	f0=$(odp_faults)
	env "${menv[@]}" "$(bin "$mode" io_demo)" "${args[@]}" \
		>"$log.server.log" 2>&1 &
	srv=$!
	"$top/tests/vm/wait-listen.sh" "${args[-1]}" "$srv" ||
		why="the server did not listen on ${args[-1]}"
	[ -n "$why" ] || env "${menv[@]}" timeout "$limit" \
		"$(bin "$mode" io_demo)" "${args[@]}" -i 200 -o read,write "$addr" \
		>"$log.client.log" 2>&1 || rc=$?
	if [ -z "$why" ] && ! kill -0 "$srv" 2>/dev/null; then
		why="the server died (a validation failure aborts it)"
	elif [ -z "$why" ] && [ "$rc" != 0 ]; then
		why="client exited $rc"
	fi
	kill "$srv" 2>/dev/null
	wait "$srv"
	record io_demo "$mode" "$f0" "$why"
}

# mpi MODE: mpi_exchange on two ranks, pml ucx, osc ucx.
mpi() {
	local mode=$1 f0 rc=0 why='' out lib=() var xs=()
	local pml=/usr/lib/x86_64-linux-gnu/openmpi/lib/openmpi3/mca_pml_ucx.so

	if [ "$mode" = implicit ]; then
		[ -n "$priv" ] || { record mpi_exchange "$mode" "$(odp_faults)" "$why_priv"; return; }
		lib=(LD_LIBRARY_PATH="$priv/lib")
		out=$(env "${lib[@]}" ldd "$pml")
		grep -qF "$priv/lib/libucp.so.0 " <<<"$out" || {
			record mpi_exchange "$mode" "$(odp_faults)" \
				"Open MPI's pml ucx does not resolve the patched libucp"
			return
		}
	fi
	for var in $(env "${menv[@]}" "${lib[@]}" env | cut -d= -f1 |
		grep -E '^(UCX_|LD_LIBRARY_PATH$)'); do
		xs+=(-x "$var")
	done
	f0=$(odp_faults)
	env "${menv[@]}" "${lib[@]}" timeout "$limit" mpirun \
		--allow-run-as-root --oversubscribe -np 2 --mca pml ucx \
		--mca pml_ucx_devices any --mca osc ucx "${xs[@]}" \
		"$mpi_exchange" >"$dir/ucx.mpi_exchange.$mode.log" 2>&1 || rc=$?
	if [ "$rc" != 0 ]; then
		why="mpirun exited $rc"
	elif ! grep -q 'all bytes exact' "$dir/ucx.mpi_exchange.$mode.log"; then
		why="mpi_exchange did not report its bytes exact"
	fi
	record mpi_exchange "$mode" "$f0" "$why"
}

uct=(-d rxe0:1 -x rc_verbs -n 200 -w 10)
rc_tls=UCX_TLS=rc_verbs,ud_verbs
for mode in pinned explicit implicit; do
	mode_env "$mode"
	nb=()
	[ "$mode" != explicit ] || nb=(-B)	# map the buffers non-blocking
	pair uct.put_bw "$mode" -- "${uct[@]}" "${nb[@]}" -t put_bw -D zcopy -s 65536
	pair uct.get "$mode" -- "${uct[@]}" "${nb[@]}" -t get -D zcopy -s 65536
	pair uct.am_bw "$mode" -- "${uct[@]}" "${nb[@]}" -t am_bw -D zcopy -s 4096
	pair uct.fadd "$mode" -- "${uct[@]}" "${nb[@]}" -t fadd -s 8
	pair uct.cswap "$mode" -- "${uct[@]}" "${nb[@]}" -t cswap -s 8
	pair ucp.tag_bw.rndv_get "$mode" "$rc_tls" UCX_RNDV_SCHEME=get_zcopy -- \
		"${nb[@]}" -t tag_bw -s 65536 -n 100 -w 10
	pair ucp.tag_bw.rndv_put "$mode" "$rc_tls" UCX_RNDV_SCHEME=put_zcopy -- \
		"${nb[@]}" -t tag_bw -s 65536 -n 100 -w 10
	pair ucp.put_bw "$mode" "$rc_tls" -- "${nb[@]}" -t ucp_put_bw -s 65536 -n 100 -w 10
	pair ucp.get "$mode" "$rc_tls" -- "${nb[@]}" -t ucp_get -s 65536 -n 100 -w 10
	pair ucp.tag_bw.ud "$mode" UCX_TLS=ud_verbs UCX_ZCOPY_THRESH=0 -- \
		"${nb[@]}" -t tag_bw -s 2048 -n 100 -w 10
	[ "$mode" = explicit ] && continue
	io_demo "$mode"
	mpi "$mode"
done

{
	echo "| case | memory | result | ODP page faults |"
	echo "|---|---|---|---|"
	printf '%s\n' "${rows[@]}"
} >"$table"
cat "$table"
exit 0
