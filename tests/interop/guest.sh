#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# guest.sh PLAN RESULTS  (runs in both guests of tests/vm/run-pair.sh)
#
# One row of the interop matrix between two guests on a wire: the steps
# of PLAN (smoke: make check's subset; full: make interop's; mtu: the
# ODP pairings and ibv_rc_pingpong, for the rows of other MTUs;
# step:NAME: one impaired step, e.g. step:loss50), the same
# in both guests, each started by both at a barrier of its own name
# (tests/vm/pair-barrier.py), so the two stay in step:
#
#   interop  userspace/out/rxe_interop between the two: side a serves,
#            side b connects; with --dir both, b drives every case (RC
#            WRITE, READ, SEND/RECV with 1 and 3 SGEs, atomics,
#            ATOMIC_WRITE and FLUSH where both ends have them, UD SEND)
#            and then a does, every byte checked on both sides. Each
#            side's memory (pinned, explicit or implicit ODP) is its own;
#            an impairment (netem on side a's eth0) and --churn
#            (MADV_DONTNEED of the responder's memory during traffic)
#            are per step. The cases a side drove are its result lines.
#   loss50   half of the RoCEv2 packets lost both ways (a prio band of
#            their own; TCP untouched): READ, atomics, ATOMIC_WRITE and
#            FLUSH retransmitted, our rxe on both sides only
#   pull     the cable pull: b drops its own egress (netem loss 100 %)
#            and a WRITE must end in IBV_WC_RETRY_EXC_ERR with nothing
#            written; the next WR is flushed
#   perftest ib_{write,read,send}_bw, perftest 4.5 and 25.01 (the newer
#            lane's, when built), --odp on every side that has ODP
#   pingpong ibv_rc_pingpong -o (explicit ODP) and -O (implicit ODP, our
#            rxe only), ODP on every side that has it
#
# Which steps a row runs follows what each side's rxe has (RXE_ODP_PAIR:
# ours, stock or an upstream kernel): Debian's stock rdma_rxe has no
# ODP, upstream's has explicit ODP and no implicit ODP. After every step
# on a side with our rxe, its ODP page fault counter must have moved when
# its memory was ODP and stayed still when pinned.
#
# Appends to RESULTS (side a's and side b's are kept apart by the
# caller, tests/interop/run.sh):
#
#   ok|fail interop.<step>.<dir>.<op>.<size>[.<n>] # <offsets, memory, why>
#   ok|fail interop.<step>.<check>  # the step's own checks
#
# <dir> is c2s (b drives) or s2c (a drives); a size that recurs in one
# step (atomics at several addresses) gets .<n>.
set -u

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)

if [ $# -ne 2 ] || ! : >>"$2"; then
	echo "usage: $0 smoke|full|mtu RESULTS (writable)" >&2
	exit 2
fi
plan=$1 results=$2
logs=$(dirname "$2")/interop-logs
mkdir -p "$logs"
tool=(env "$top/userspace/out/rxe_interop")
# rdma-core 44's libibverbs cannot post FLUSH: the tool runs with the newer
# lane's (rdma-core 65, same ABI) when it is built
if env65=$("$top/tests/lanes/build-newer-userspace.sh" --print-env 2>/dev/null); then
	# shellcheck source=/dev/null
	. "$env65"
	tool=(env "LD_LIBRARY_PATH=$RDMA_CORE_65_DIR/lib" "$top/userspace/out/rxe_interop")
fi
barrier=$top/tests/vm/pair-barrier.py
side=$RXE_ODP_SIDE peer=$RXE_ODP_PEER wire=$RXE_ODP_WIRE
read -r spec_a spec_b <<<"$RXE_ODP_PAIR"

# kind SPEC: ours, stock or upstream
kind() {
	case $1 in
	ours | ours:*) echo ours ;;
	stock | stock:*) echo stock ;;
	*) echo upstream ;;
	esac
}
kind_a=$(kind "$spec_a") kind_b=$(kind "$spec_b")
if [ "$side" = a ]; then mine=$kind_a; else mine=$kind_b; fi

# modes KIND: the memory a kind of rxe can register
modes() {
	case $1 in
	ours) echo pinned explicit implicit ;;
	upstream) echo pinned explicit ;;
	stock) echo pinned ;;
	esac
}

odp_faults() { "$top/tests/vm/odp-faults.sh"; }

pass() { echo "ok interop.$1${2:+ # $2}" >>"$results"; }
fail() {
	echo "fail interop.$1 # $2" >>"$results"
	echo "FAIL interop.$1: $2" >&2
}

# meet STEP: both sides arrive at STEP (a desynchronised plan fails here)
meet() {
	"$barrier" "$1" 300 >>"$logs/barrier.log" 2>&1 ||
		{ fail "$1.barrier" "$(tail -n 1 "$logs/barrier.log")"; return 1; }
}

# impair [NETEM...]: side a's egress on the wire (none: back to default)
impair() {
	[ "$side" = a ] || return 0
	tc qdisc del dev "$wire" root 2>/dev/null
	[ $# -eq 0 ] || tc qdisc add dev "$wire" root netem "$@"
}

# impair_roce [NETEM...]: each side's RoCEv2 packets (UDP port 4791) only,
# through a prio band of their own, so that the tool's TCP side channel
# is not starved by a loss rate TCP's backoff cannot live with
impair_roce() {
	tc qdisc del dev "$wire" root 2>/dev/null
	[ $# -gt 0 ] || return 0
	tc qdisc add dev "$wire" root handle 1: prio &&
	tc qdisc add dev "$wire" parent 1:3 handle 30: netem "$@" &&
	tc filter add dev "$wire" parent 1: protocol ip u32 \
		match ip protocol 17 0xff match ip dport 4791 0xffff flowid 1:3
}

# fault_check STEP MEM F0: our rxe's ODP fault counter moved as MEM says
fault_check() {
	local n
	[ "$mine" = ours ] || return 0
	n=$(($(odp_faults) - $3))
	if [ "$2" = pinned ] && [ "$n" -ne 0 ]; then
		fail "$1.odp_faults.$side" "pinned, yet $n ODP page faults"
	elif [ "$2" != pinned ] && [ "$n" -eq 0 ]; then
		fail "$1.odp_faults.$side" "$2 memory, yet no ODP page fault"
	else
		pass "$1.odp_faults.$side" "$n ODP page faults ($2 memory)"
	fi
}

# interop STEP MEM_A MEM_B [rxe_interop options...]: one tool run; the
# lines of the cases this side drove become results.
interop() {
	local step=$1 mem_a=$2 mem_b=$3 mem f0 rc=0 drive role
	shift 3
	meet "$step" || return
	if [ "$side" = a ]; then
		mem=$mem_a drive=s2c role=(--server)
	else
		mem=$mem_b drive=c2s role=(--client "$peer")
	fi
	f0=$(odp_faults)
	timeout 1200 "${tool[@]}" "${role[@]}" --mem "$mem" "$@" \
		>"$logs/$step.$side.log" 2>&1 || rc=$?
	awk -v step="$step" -v drive="$drive" '
		$2 !~ "^" drive ":" { next }
		{
			split($2, od, ":"); sub("size=", "", $3)
			name = "interop." step "." drive "." od[2] "." $3
			if (++seen[name] > 1) name = name "." seen[name]
			note = $4 " " $5 " " $6
			for (i = 7; i <= NF; i++) note = note " " $i
			if ($1 == "ok") print "ok " name " # " note
			else if ($1 == "FAIL") print "fail " name " # " note
			else print "fail " name " # not run: " note
		}' "$logs/$step.$side.log" >>"$results"
	case $rc in
	0) pass "$step.run.$side" ;;
	1) fail "$step.run.$side" "a case failed (above)" ;;
	*) fail "$step.run.$side" "rxe_interop exited $rc: $(grep -v '^ok\|^FAIL' "$logs/$step.$side.log" | tail -n 1)" ;;
	esac
	fault_check "$step" "$mem" "$f0"
}

# client_server STEP SERVER_CMD... -- CLIENT_CMD...: a server on side a,
# its client on side b once it listens (port 18515, perftest's and
# ibv_rc_pingpong's); both must exit 0 within 300 s.
client_server() {
	local step=$1 cmd=() rc=0 pid
	shift
	while [ "$1" != -- ]; do cmd+=("$1"); shift; done
	shift
	meet "$step" || return
	if [ "$side" = a ]; then
		timeout 300 "${cmd[@]}" >"$logs/$step.a.log" 2>&1 &
		pid=$!
		"$top/tests/vm/wait-listen.sh" 18515 "$pid"
		meet "$step.listening" || { kill "$pid"; wait "$pid"; return; }
		wait "$pid" || rc=$?
	else
		meet "$step.listening" || return
		timeout 300 "$@" "$peer" >"$logs/$step.b.log" 2>&1 || rc=$?
	fi
	if [ "$rc" = 0 ]; then
		pass "$step.$side" "$(grep -E '^ *[0-9]+ +[0-9]+ ' "$logs/$step.$side.log" | tail -n 1 | tr -s ' \t' ' ')"
	else
		fail "$step.$side" "exited $rc: $(tail -n 1 "$logs/$step.$side.log")"
	fi
}

# odp_opt KIND OPTION: OPTION when the kind of rxe has ODP
odp_opt() { [ "$1" = stock ] || echo "$2"; }

perftests() {
	local bins=(/usr/bin) ver bench dir
	if [ -n "$env65" ]; then
		bins+=("$PERFTEST_25_DIR")
	else
		fail perftest.25_01 "the newer userspace lane is not built"
	fi
	for dir in "${bins[@]}"; do
		ver=4_5
		[ "$dir" = /usr/bin ] || ver=25_01
		for bench in ib_write_bw ib_read_bw ib_send_bw; do
			# shellcheck disable=SC2046 # no word, or --odp
			client_server "perftest.$ver.$bench" \
				"$dir/$bench" -d rxe0 -x 1 -s 65536 -n 200 $(odp_opt "$mine" --odp) -- \
				"$dir/$bench" -d rxe0 -x 1 -s 65536 -n 200 $(odp_opt "$mine" --odp)
		done
	done
}

pingpongs() {
	local o
	for o in o O; do
		# implicit ODP: our rxe only, on both sides
		[ "$o" = o ] || { [ "$kind_a" = ours ] && [ "$kind_b" = ours ]; } || continue
		# shellcheck disable=SC2046 # no word, or the option
		client_server "pingpong.$o" \
			ibv_rc_pingpong -d rxe0 -g 1 -s 65536 -n 100 $(odp_opt "$mine" "-$o") -- \
			ibv_rc_pingpong -d rxe0 -g 1 -s 65536 -n 100 $(odp_opt "$mine" "-$o")
	done
}

# the memory of a side in the impaired steps: ours its ODP mode; the
# others pinned (upstream's ODP misplaces the bytes of any copy at an
# offset in a page, tests/interop/expected-upstream.txt: under loss it
# would show nothing more)
odp_mode() {
	case $1 in
	ours) echo "$2" ;;
	*) echo pinned ;;
	esac
}

sweep=1,7,4095,4097,65537,1M
# the impaired steps leave UD out: a datagram the wire lost (or doubled)
# is UD working as specified, not a case that failed; and ATOMIC_WRITE
# and FLUSH when a peer is not ours: its requester retransmits them to
# iova 0 and its responder drops a duplicate FLUSH (what patches 0012
# and 0013 fix in ours), so a lost packet fails them there
reliable=write,read,send1,send3,fadd,cswap,atomic_write,flush
[ "$kind_a" = ours ] && [ "$kind_b" = ours ] || reliable=write,read,send1,send3,fadd,cswap
impaired() {
	local name netem
	for name in "$@"; do
		case $name in
		loss50) retransmits; continue ;;
		loss1) netem='loss 1%' ;;
		loss5) netem='loss 5%' ;;
		reorder) netem='delay 10ms reorder 25% 50%' ;;
		duplicate) netem='duplicate 5%' ;;
		delay10) netem='delay 10ms' ;;
		esac
		# shellcheck disable=SC2086 # netem's words
		impair $netem
		interop "$name" "$(odp_mode "$kind_a" explicit)" "$(odp_mode "$kind_b" implicit)" \
			--churn --sizes "$sweep" --ops "$reliable"
		impair
	done
}

# retransmits: half of each side's packets lost, so that nearly every
# request that a retransmission must rebuild from its work request (READ
# at an offset, FETCH_ADD, CMP_SWP, ATOMIC_WRITE, FLUSH) or answer again
# from the responder's resources is retransmitted at least once: 25
# cases each way, each with about an even chance (patches 0012, 0013).
retransmits() {
	impair_roce loss 50% || { fail loss50.netem "tc could not impair RoCEv2 alone"; return; }
	interop loss50 "$(odp_mode "$kind_a" explicit)" "$(odp_mode "$kind_b" implicit)" \
		--ops read,fadd,cswap,atomic_write,flush --sizes 1,7,64,4095,4097,8193,12289,16385
	impair_roce
}

pull() {
	[ "$kind_a" = ours ] && [ "$kind_b" = ours ] || return 0
	interop pull explicit implicit --dir client --ops write --sizes 4097 \
		--pull "$wire"
}

case $plan in
smoke)
	impaired loss1
	[ "$kind_a" != ours ] || [ "$kind_b" != ours ] || impaired loss50
	pull
	;;
full)
	for mem_a in $(modes "$kind_a"); do
		for mem_b in $(modes "$kind_b"); do
			interop "$mem_a-$mem_b" "$mem_a" "$mem_b"
		done
	done
	impaired loss1 loss5 reorder duplicate delay10
	[ "$kind_a" != ours ] || [ "$kind_b" != ours ] || impaired loss50
	pull
	perftests
	pingpongs
	;;
step:*)
	impaired "${plan#step:}"
	;;
mtu)
	interop explicit-implicit explicit implicit
	interop implicit-explicit implicit explicit
	pingpongs
	;;
*)
	echo "guest.sh: unknown plan $plan" >&2
	exit 2
	;;
esac
exit 0
