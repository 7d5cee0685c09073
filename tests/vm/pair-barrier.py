#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""pair-barrier.py NAME [TIMEOUT]: meet the other guest of a pair.

Both guests of tests/vm/run-pair.sh call it with the same NAME at the same
point of their command; it returns in each once both have arrived. Side a
(RXE_ODP_SIDE) listens on TCP port 18600, side b connects to
RXE_ODP_PEER (retrying while a is not there yet) and both exchange NAME.
A different NAME on the other side means the two commands went out of
step: exit 1, naming both. Nobody within TIMEOUT seconds (default 120):
exit 1. Use it before a client that cannot wait for its server (e.g.
ibv_rc_pingpong), after the server listens.
"""
import os
import socket
import sys
import time

PORT = 18600


def exchange(sock, name, deadline):
    sock.settimeout(max(deadline - time.monotonic(), 0.1))
    sock.sendall(name.encode() + b"\n")
    got = b""
    while not got.endswith(b"\n"):
        chunk = sock.recv(256)
        if not chunk:
            break
        got += chunk
    other = got.decode(errors="replace").strip()
    if other != name:
        sys.exit(f"pair-barrier: here '{name}', the peer at '{other}'")


def main():
    name = sys.argv[1]
    deadline = time.monotonic() + (float(sys.argv[2]) if len(sys.argv) > 2 else 120)
    side = os.environ["RXE_ODP_SIDE"]
    if side == "a":
        with socket.socket() as srv:
            srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            srv.bind(("", PORT))
            srv.listen(1)
            srv.settimeout(max(deadline - time.monotonic(), 0.1))
            try:
                conn, _ = srv.accept()
            except socket.timeout:
                sys.exit(f"pair-barrier: nobody came to '{name}'")
            with conn:
                exchange(conn, name, deadline)
        return
    while True:
        try:
            sock = socket.create_connection((os.environ["RXE_ODP_PEER"], PORT),
                                            timeout=5)
            break
        except OSError as err:
            if time.monotonic() > deadline:
                sys.exit(f"pair-barrier: peer never listened for '{name}': {err}")
            time.sleep(0.2)     # a poll interval, not a synchronisation
    with sock:
        exchange(sock, name, deadline)


if __name__ == "__main__":
    main()
