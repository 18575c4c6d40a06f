#!/usr/bin/env python3
"""tls_idle.py PORT [SECS] - an idle TLS client.

Handshakes with 127.0.0.1:PORT (no verification), then sends nothing and reads
until the server closes or SECS (default 15) pass.  Prints "handshake ok",
then "closed" or "open", "elapsed=S" (since the handshake), "quiet=S"
(since the last byte received) and "last=LINE", the last line received.
"""
import socket
import ssl
import sys
import time


def main():
    port = int(sys.argv[1])
    secs = float(sys.argv[2]) if len(sys.argv) > 2 else 15.0
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", port), timeout=secs)
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    t0 = last = time.monotonic()
    print("handshake ok %s" % s.version(), flush=True)
    closed = False
    got = b""
    while time.monotonic() - t0 < secs:
        s.settimeout(max(0.01, secs - (time.monotonic() - t0)))
        try:
            d = s.recv(4096)
        except socket.timeout:
            break
        except (OSError, ssl.SSLError):
            closed = True
            break
        if not d:
            closed = True
            break
        last = time.monotonic()
        got += d
    now = time.monotonic()
    print("closed" if closed else "open")
    print("elapsed=%.2f" % (now - t0))
    print("quiet=%.2f" % (now - last))
    lines = got.decode("latin-1").splitlines()
    print("last=%s" % (lines[-1] if lines else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
