#!/usr/bin/env python3
"""bulk_send.py PORT MEGABYTES - push bulk data through 127.0.0.1:PORT.

Sends MEGABYTES MiB (one random 1 MiB block, repeated), then shuts down its
write side and reads until the peer closes.  Prints "sent=N sha256=HEX".
"""
import hashlib
import os
import socket
import sys


def main():
    port, mb = int(sys.argv[1]), int(sys.argv[2])
    block = os.urandom(1 << 20)
    h = hashlib.sha256()
    s = socket.create_connection(("127.0.0.1", port))
    for _ in range(mb):
        s.sendall(block)
        h.update(block)
    s.shutdown(socket.SHUT_WR)
    while s.recv(65536):
        pass
    s.close()
    print("sent=%d sha256=%s" % (mb << 20, h.hexdigest()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
