#!/usr/bin/env python3
"""Stands in for systemd's notification socket in the tests.

    notify_listen.py PATH

Binds an AF_UNIX SOCK_DGRAM socket at PATH (the NOTIFY_SOCKET of the daemon
under test), prints {"bound": PATH} once it is bound, then one JSON line per
datagram received: {"t": <ms, CLOCK_MONOTONIC>, "pid": <sender pid or null>,
"msg": "<the datagram text>"}.  Runs until killed.
"""
import json
import os
import socket
import sys
import time


def main():
    if len(sys.argv) != 2:
        print("usage: notify_listen.py PATH", file=sys.stderr)
        return 2
    path = sys.argv[1]
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    # Ask for the sender's credentials, as systemd does (SO_PASSCRED).
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    print(json.dumps({"bound": path}), flush=True)

    creds_size = socket.CMSG_SPACE(12)  # struct ucred: pid, uid, gid
    while True:
        data, ancdata, _, _ = sock.recvmsg(65536, creds_size)
        pid = None
        for level, kind, value in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = int.from_bytes(value[0:4], sys.byteorder, signed=True)
        line = {"t": time.monotonic() * 1000.0, "pid": pid,
                "msg": data.decode("utf-8", "replace")}
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    sys.exit(main())
