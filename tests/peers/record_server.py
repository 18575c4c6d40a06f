#!/usr/bin/env python3
"""record_server.py PORT CERT KEY LOG [starttls] - an SMTP server that logs
TLS records.

Serves one connection at a time on 127.0.0.1:PORT, with implicit TLS, or
with "starttls" a plaintext greeting and EHLO that offer STARTTLS first.  Each recv() on the TLS
socket returns the plaintext of one TLS record (OpenSSL's SSL_read never
spans records), so LOG gets one "N record: REPR" line per record received,
then "N close".  Answers like a plain SMTP server: 220, 250 to EHLO/HELO/
MAIL/RCPT/RSET/NOOP, 354 to DATA, 250 after the body's ".", 221 to QUIT
(then closes).  Prints "ready" once listening; runs until killed.
"""
import socket
import ssl
import sys


def starttls(raw, ctx):
    """The plaintext part: greeting, EHLO, STARTTLS; then TLS."""
    f = raw.makefile("rb")
    raw.sendall(b"220 record.test ESMTP\r\n")
    while True:
        line = f.readline()
        verb = line[:8].upper()
        if not line:
            raise OSError("closed before STARTTLS")
        if verb.startswith(b"STARTTLS"):
            raw.sendall(b"220 2.0.0 Ready to start TLS\r\n")
            return ctx.wrap_socket(raw, server_side=True)
        raw.sendall(b"250-record.test\r\n250 STARTTLS\r\n")


def serve(conn, n, log, greet):
    buf = b""
    body = False
    if greet:
        conn.sendall(b"220 record.test ESMTP\r\n")
    while True:
        try:
            d = conn.recv(65536)
        except (OSError, ssl.SSLError):
            break
        if not d:
            break
        log.write("%d record: %r\n" % (n, d))
        log.flush()
        buf += d
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            line = line.rstrip(b"\r")
            if body:
                if line == b".":
                    body = False
                    conn.sendall(b"250 2.0.0 Ok: queued\r\n")
                continue
            verb = line[:4].upper()
            if verb == b"DATA":
                body = True
                conn.sendall(b"354 go ahead\r\n")
            elif verb == b"QUIT":
                conn.sendall(b"221 2.0.0 Bye\r\n")
                return
            elif verb == b"EHLO":
                conn.sendall(b"250-record.test\r\n250 PIPELINING\r\n")
            else:
                conn.sendall(b"250 2.0.0 Ok\r\n")


def main():
    port, cert, key, logname = sys.argv[1:5]
    plain_first = sys.argv[5:6] == ["starttls"]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", int(port)))
    ls.listen(16)
    print("ready", flush=True)
    n = 0
    with open(logname, "a") as log:
        while True:
            raw, _ = ls.accept()
            n += 1
            try:
                if plain_first:
                    conn = starttls(raw, ctx)
                else:
                    conn = ctx.wrap_socket(raw, server_side=True)
                serve(conn, n, log, not plain_first)
                conn.close()
            except (OSError, ssl.SSLError) as e:
                log.write("%d error: %s\n" % (n, e))
            log.write("%d close\n" % n)
            log.flush()


if __name__ == "__main__":
    sys.exit(main())
