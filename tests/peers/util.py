#!/usr/bin/env python3
"""Small socket helpers for the integration tests.

  util.py free-port                  print a free TCP port on 127.0.0.1
  util.py wait-port PORT [SECS]      exit 0 once 127.0.0.1:PORT accepts
  util.py refused PORT               exit 0 if a connect to PORT is refused
  util.py read-line PORT [SECS]      connect (plain TCP), print the first line
                                     received, then "EOF" or "OPEN" (whether the
                                     peer closed within SECS), and "elapsed=S"
  util.py wait-close PORT [SECS]     connect, send nothing, print "closed" or
                                     "open" and "elapsed=S" (time until EOF)
"""
import socket
import sys
import time


def connect(port, timeout):
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
    s.close()


def wait_port(port, secs=5.0):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        try:
            connect(port, 1).close()
            return 0
        except OSError:
            time.sleep(0.05)
    return 1


def refused(port):
    try:
        connect(port, 2).close()
    except ConnectionRefusedError:
        return 0
    except OSError as e:
        print("connect: %s" % e)
        return 1
    print("connect: accepted")
    return 1


def read_until_eof(s, end):
    """Read until EOF or deadline; True if the peer closed."""
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return False
        s.settimeout(left)
        try:
            if not s.recv(65536):
                return True
        except socket.timeout:
            return False
        except OSError:
            return True


def read_line(port, secs=5.0):
    t0 = time.monotonic()
    end = t0 + secs
    try:
        s = connect(port, secs)
    except OSError as e:
        print("connect failed: %s" % e)
        return 1
    buf = b""
    closed = False
    while b"\n" not in buf:
        left = end - time.monotonic()
        if left <= 0:
            break
        s.settimeout(left)
        try:
            d = s.recv(4096)
        except socket.timeout:
            break
        except OSError:
            closed = True
            break
        if not d:
            closed = True
            break
        buf += d
    line = buf.split(b"\n")[0].rstrip(b"\r").decode("latin-1")
    print("line=%s" % line)
    print("elapsed=%.2f" % (time.monotonic() - t0))
    if not closed:
        closed = read_until_eof(s, time.monotonic() + secs)
    print("EOF" if closed else "OPEN")
    s.close()
    return 0


def wait_close(port, secs=10.0):
    t0 = time.monotonic()
    s = connect(port, secs)
    closed = read_until_eof(s, t0 + secs)
    print("closed" if closed else "open")
    print("elapsed=%.2f" % (time.monotonic() - t0))
    return 0


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "free-port":
        free_port()
        return 0
    port = int(args[0])
    secs = float(args[1]) if len(args) > 1 else None
    if cmd == "wait-port":
        return wait_port(port, secs or 5.0)
    if cmd == "refused":
        return refused(port)
    if cmd == "read-line":
        return read_line(port, secs or 5.0)
    if cmd == "wait-close":
        return wait_close(port, secs or 10.0)
    print("unknown command %s" % cmd, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
