#!/usr/bin/env python3
"""smtp_chat.py [options] PORT - a scriptable SMTP client session.

Connects to 127.0.0.1:PORT (with --tls: implicit TLS, no verification), reads
the greeting and prints "greeting: LINE".  With --wait-file F it then waits
(up to --timeout) until F exists.  Then for each --send CMD it sends the command
and prints "reply: LINE" (the last line of the reply).  With --hold it then
keeps the session open, reading, until the server closes it.  Always ends with
"closed" (the server closed the connection) or "done".  Output is flushed line
by line, so a test can poll it.
"""
import argparse
import os
import socket
import ssl
import sys
import time


class Closed(Exception):
    pass


def read_reply(s, buf):
    """Read one SMTP reply (possibly multi-line); return (last line, rest)."""
    while True:
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            line = line.rstrip(b"\r").decode("latin-1")
            if len(line) < 4 or line[3] != "-":
                return line, buf
        d = s.recv(65536)
        if not d:
            raise Closed()
        buf += d


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--tls", action="store_true")
    ap.add_argument("--wait-file")
    ap.add_argument("--send", action="append", default=[])
    ap.add_argument("--hold", action="store_true")
    ap.add_argument("--timeout", type=float, default=30.0)
    a = ap.parse_args()
    end = time.monotonic() + a.timeout
    s = socket.create_connection(("127.0.0.1", a.port), timeout=a.timeout)
    if a.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        s = ctx.wrap_socket(s, server_hostname="localhost")
    buf = b""
    try:
        line, buf = read_reply(s, buf)
        print("greeting: %s" % line, flush=True)
        if a.wait_file:
            while not os.path.exists(a.wait_file):
                if time.monotonic() > end:
                    print("timeout waiting for %s" % a.wait_file, flush=True)
                    return 1
                time.sleep(0.05)
        for cmd in a.send:
            s.sendall(cmd.encode() + b"\r\n")
            line, buf = read_reply(s, buf)
            print("reply: %s" % line, flush=True)
        if a.hold:
            s.settimeout(max(0.1, end - time.monotonic()))
            while s.recv(65536):
                pass
            raise Closed()
    except Closed:
        print("closed", flush=True)
        return 0
    except socket.timeout:
        print("timeout (still open)", flush=True)
        return 1
    except (OSError, ssl.SSLError) as e:
        print("closed (%s)" % e, flush=True)
        return 0
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
