#!/usr/bin/env python3
"""benchpeers.py - the Python peers of tests/bench/bench.sh.

  benchpeers.py ports N
      print N distinct free TCP ports on 127.0.0.1, one a line.

  benchpeers.py bulk IN_PORT SINK_PORT MBYTES [TIMEOUT]
      listen on SINK_PORT (a raw TCP sink in a child process that counts bytes),
      connect to IN_PORT and push MBYTES * 10^6 bytes through it.  Prints
      "bytes=N secs=S mbps=M": S runs from just before the first byte is sent to
      the sink's receipt of the last one; M is in 10^6 bytes per second.

  benchpeers.py idle-backend PORT
      an SMTP-ish backend that accepts any number of connections, sends
      "220 ok\\r\\n" on each and then stays idle.  Prints "ready" when listening.
      Runs until killed.

  benchpeers.py idle-clients PORT N PID [TIMEOUT]
      open N TLS sessions to 127.0.0.1:PORT (no verification), each completing
      the handshake and reading the backend's greeting line through the proxy,
      then hold them all open.  Reads VmRSS of process PID before the first
      session and once all N are up (after a short settling pause).  Prints
      "sessions=N rss_before_kb=A rss_after_kb=B kb_per_session=K tls=V/C"
      (V/C: protocol version and cipher of the first session) and exits,
      closing every session.

Every wait is bounded by TIMEOUT seconds (default 120); on timeout or error
the command prints "error: ..." to stderr and exits 1.
"""
import asyncio
import multiprocessing
import os
import socket
import ssl
import sys
import time

CHUNK = 1 << 20  # bytes per send/recv call in the bulk test


def fail(msg):
    print("error: " + msg, file=sys.stderr, flush=True)
    sys.exit(1)


def cmd_ports(n):
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    for s in socks:
        print(s.getsockname()[1])
        s.close()


# --- bulk --------------------------------------------------------------------

def _bulk_sink(lsock, nbytes, timeout, conn_end):
    """Child process: accept one connection, count nbytes, report the time."""
    lsock.settimeout(timeout)
    try:
        c, _ = lsock.accept()
    except OSError as e:
        conn_end.send(("error", "sink accept: %s" % e))
        return
    c.settimeout(timeout)
    buf = bytearray(CHUNK)
    got = 0
    try:
        while got < nbytes:
            n = c.recv_into(buf)
            if n == 0:
                break
            got += n
    except OSError as e:
        conn_end.send(("error", "sink recv after %d bytes: %s" % (got, e)))
        return
    t_end = time.monotonic()  # CLOCK_MONOTONIC: same clock in both processes
    conn_end.send(("ok", got, t_end))
    c.close()


def cmd_bulk(in_port, sink_port, mbytes, timeout):
    nbytes = int(mbytes * 1000 * 1000)
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", sink_port))
    lsock.listen(8)
    ctx = multiprocessing.get_context("fork")
    parent_end, child_end = ctx.Pipe(duplex=False)
    sink = ctx.Process(target=_bulk_sink,
                       args=(lsock, nbytes, timeout, child_end), daemon=True)
    sink.start()
    lsock.close()
    try:
        s = socket.create_connection(("127.0.0.1", in_port), timeout=timeout)
        payload = memoryview(b"x" * CHUNK)
        sent = 0
        t0 = time.monotonic()
        while sent < nbytes:
            n = min(CHUNK, nbytes - sent)
            s.sendall(payload[:n])
            sent += n
        s.shutdown(socket.SHUT_WR)
    except OSError as e:
        sink.kill()
        fail("bulk send: %s" % e)
    if not parent_end.poll(timeout):
        sink.kill()
        fail("bulk: sink did not receive all bytes within %ss" % timeout)
    res = parent_end.recv()
    sink.join(5)
    s.close()
    if res[0] != "ok":
        fail("bulk: " + res[1])
    _, got, t_end = res
    if got != nbytes:
        fail("bulk: sink received %d of %d bytes" % (got, nbytes))
    secs = t_end - t0
    print("bytes=%d secs=%.3f mbps=%.1f" % (got, secs, got / secs / 1e6))


# --- idle sessions ------------------------------------------------------------

async def _idle_backend(port):
    conns = []

    async def on_conn(reader, writer):
        writer.write(b"220 ok\r\n")
        conns.append(writer)  # keep it open and idle
        try:
            await reader.read()  # until the proxy closes it
        except OSError:
            pass
        conns.remove(writer)
        writer.close()

    server = await asyncio.start_server(on_conn, "127.0.0.1", port,
                                        backlog=4096, reuse_address=True)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


def vmrss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for pid %d" % pid)


async def _idle_clients(port, n, pid, timeout):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    rss_before = vmrss_kb(pid)
    inflight = asyncio.Semaphore(50)  # do not overflow the listen backlog
    writers = []
    negotiated = []

    async def one():
        async with inflight:
            r, w = await asyncio.open_connection("127.0.0.1", port, ssl=ctx,
                                                 server_hostname="localhost")
            line = await r.readline()
            if not line.startswith(b"220"):
                raise RuntimeError("greeting %r" % line)
            writers.append(w)
            if not negotiated:
                so = w.get_extra_info("ssl_object")
                negotiated.append("%s/%s" % (so.version(), so.cipher()[0]))

    tasks = [asyncio.ensure_future(one()) for _ in range(n)]
    done, pending = await asyncio.wait(tasks, timeout=timeout)
    errors = [t.exception() for t in done if t.exception() is not None]
    for t in pending:
        t.cancel()
    if pending or errors:
        first = repr(errors[0]) if errors else "timeout"
        fail("idle-clients: %d of %d sessions up (%d failed, %d pending; "
             "first error: %s)" % (len(writers), n, len(errors), len(pending),
                                   first))
    await asyncio.sleep(1.0)  # let the proxy settle (lazy frees, arenas)
    rss_after = vmrss_kb(pid)
    print("sessions=%d rss_before_kb=%d rss_after_kb=%d kb_per_session=%.1f "
          "tls=%s" % (n, rss_before, rss_after, (rss_after - rss_before) / n,
                      negotiated[0]), flush=True)
    for w in writers:
        w.close()  # close_notify, then FIN
    await asyncio.wait([asyncio.ensure_future(w.wait_closed()) for w in writers],
                       timeout=10)


def main(argv):
    if len(argv) < 2:
        fail(__doc__)
    cmd, args = argv[1], argv[2:]
    if cmd == "ports":
        cmd_ports(int(args[0]))
    elif cmd == "bulk":
        timeout = float(args[3]) if len(args) > 3 else 120.0
        cmd_bulk(int(args[0]), int(args[1]), float(args[2]), timeout)
    elif cmd == "idle-backend":
        asyncio.run(_idle_backend(int(args[0])))
    elif cmd == "idle-clients":
        timeout = float(args[3]) if len(args) > 3 else 120.0
        asyncio.run(_idle_clients(int(args[0]), int(args[1]), int(args[2]),
                                  timeout))
    else:
        fail("unknown command " + cmd)


if __name__ == "__main__":
    main(sys.argv)
