#!/bin/bash
# perftest-pair.sh JSON TOOL [ARGS...]  (runs in the guest)
# Run one perftest benchmark between two processes on rxe0: a server and
# a client connecting to it over dummy0, both with the same ARGS. The
# client's report goes to JSON (perftest --out_json_file). Exits non-zero
# if either side fails.
set -euo pipefail

json=$1
tool=$2
shift 2
port=$((18515 + RANDOM % 1000))
common=(-d rxe0 -x 1 -p "$port" "$@")

"$tool" "${common[@]}" >"$json.server.log" 2>&1 &
server=$!
# Wait until the server listens (perftest binds within a second or two
# even under emulation); a server that never does fails below.
"$(dirname "$0")/../tests/vm/wait-listen.sh" "$port" "$server" || true
rc=0
"$tool" "${common[@]}" --out_json --out_json_file="$json" 10.0.0.1 \
	>"$json.client.log" 2>&1 || rc=$?
wait "$server" || rc=$((rc ? rc : $?))
if [ "$rc" != 0 ]; then
	echo "perftest-pair: $tool $* failed ($rc)" >&2
	tail -n 5 "$json.server.log" "$json.client.log" >&2
fi
exit "$rc"
