#!/usr/bin/env python3
"""stall_sink.py PORT STALL_SECS DIR - a slow SMTP backend on 127.0.0.1:PORT.

Accepts one connection (creates DIR/accepted), answers the greeting, EHLO,
MAIL, RCPT and DATA (354), then reads nothing for STALL_SECS, then creates
DIR/reading and reads the body up to its "." line.  Writes
"received=N sha256=HEX" for the body to DIR/result, answers 250 and the
QUIT, and closes.
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
    f = conn.makefile("rb")
    conn.sendall(b"220 stall.test ESMTP\r\n")
    while True:
        line = f.readline()
        if not line:
            return 1
        verb = line[:4].upper()
        if verb == b"DATA":
            conn.sendall(b"354 go ahead\r\n")
            break
        conn.sendall(b"250-stall.test\r\n250 8BITMIME\r\n" if verb == b"EHLO"
                     else b"250 2.0.0 Ok\r\n")
    time.sleep(stall)
    touch(os.path.join(out, "reading"))
    h, n = hashlib.sha256(), 0
    while True:
        line = f.readline()
        if not line or line == b".\r\n":
            break
        h.update(line)
        n += len(line)
    with open(os.path.join(out, "result"), "w") as res:
        res.write("received=%d sha256=%s\n" % (n, h.hexdigest()))
    conn.sendall(b"250 2.0.0 Ok: queued\r\n")
    if f.readline()[:4].upper() == b"QUIT":
        conn.sendall(b"221 2.0.0 Bye\r\n")
    conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
