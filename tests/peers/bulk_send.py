#!/usr/bin/env python3
"""bulk_send.py PORT MEGABYTES - push one big message through 127.0.0.1:PORT.

An SMTP client: greeting, EHLO, MAIL, RCPT, DATA, then a body of MEGABYTES
MiB (one 1 MiB block of base64 lines, repeated; no line starts with "."),
".", QUIT.  Prints "sent=N sha256=HEX" for the body and "reply=LINE" for
the server's reply to the message.
"""
import base64
import hashlib
import os
import socket
import sys


def block():
    """About 1 MiB of 76-character base64 lines with CRLF."""
    return b"".join(base64.b64encode(os.urandom(57)) + b"\r\n"
                    for _ in range((1 << 20) // 78 + 1))


def reply(f):
    while True:
        line = f.readline()
        if not line:
            raise SystemExit("server closed")
        if len(line) < 4 or line[3:4] != b"-":
            return line.rstrip(b"\r\n").decode("latin-1")


def main():
    port, mb = int(sys.argv[1]), int(sys.argv[2])
    body = block()
    h = hashlib.sha256()
    s = socket.create_connection(("127.0.0.1", port))
    f = s.makefile("rb")
    reply(f)
    for cmd in (b"EHLO bulk.test", b"MAIL FROM:<a@bulk.test>",
                b"RCPT TO:<b@example.com>", b"DATA"):
        s.sendall(cmd + b"\r\n")
        r = reply(f)
    if not r.startswith("354"):
        raise SystemExit("DATA: " + r)
    for _ in range(mb):
        s.sendall(body)
        h.update(body)
    s.sendall(b".\r\n")
    r = reply(f)
    s.sendall(b"QUIT\r\n")
    reply(f)
    s.close()
    print("sent=%d sha256=%s" % (mb * len(body), h.hexdigest()), flush=True)
    print("reply=%s" % r, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
