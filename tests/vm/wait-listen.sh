#!/bin/bash
# wait-listen.sh PORT PID: wait until a TCP listener on PORT exists, or
# process PID (the server that is to listen) is gone; at most 30 s. Exits
# 0 when the port listens, 1 otherwise. For client/server pairs in the
# guest, rather than sleeping a fixed time before the client starts.
port=$1 pid=$2
for _ in $(seq 300); do
	ss -Hltn "sport = :$port" | grep -q . && exit 0
	kill -0 "$pid" 2>/dev/null || exit 1
	sleep 0.1
done
exit 1
