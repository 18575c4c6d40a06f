#!/usr/bin/env python3
"""stall_sink.py PORT STALL_SECS DIR - a slow backend on 127.0.0.1:PORT.

Accepts one connection and creates DIR/accepted, reads nothing for STALL_SECS,
then creates DIR/reading and reads everything until EOF.  Writes
"received=N sha256=HEX" to DIR/result and closes.
"""
import hashlib
import os
import socket
import sys
import time


def touch(path):
    open(path, "w").close()


def main():
    port, stall, out = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(1)
    print("ready", flush=True)
    conn, _ = ls.accept()
    touch(os.path.join(out, "accepted"))
    time.sleep(stall)
    touch(os.path.join(out, "reading"))
    h, n = hashlib.sha256(), 0
    while True:
        d = conn.recv(1 << 20)
        if not d:
            break
        h.update(d)
        n += len(d)
    with open(os.path.join(out, "result"), "w") as f:
        f.write("received=%d sha256=%s\n" % (n, h.hexdigest()))
    conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
