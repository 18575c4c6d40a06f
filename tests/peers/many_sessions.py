#!/usr/bin/env python3
"""many_sessions.py - thousands of idle TLS sessions (tests/slow/many-sessions.sh).

  many_sessions.py backend PORT STATUS
      An SMTP backend on 127.0.0.1:PORT that greets each connection with
      "220 hold.test ESMTP", then holds it, reading and discarding, until
      the peer hangs up.  Every 0.2 s, when it changed, it rewrites STATUS
      with "open=N accepted=N" (open now, accepted in all).  Prints "ready".

  many_sessions.py client PORT N STATUS CLOSEFILE [--jobs J] [--batch B]
      Opens N TLS sessions to 127.0.0.1:PORT (no verification), in batches
      of B (default 1000) with at most J (default 100) handshakes at a time;
      each session completes its handshake and reads the greeting (a line
      starting "220 ").  Then it holds them all, writing
      "established=N failed=N seconds=S" to STATUS, until CLOSEFILE exists
      (at most 600 s), closes every session (close_notify, then FIN) and
      writes "closed=N" to STATUS.  A session that fails is reported on
      stdout (the first 10 only) and counted.

Both raise their soft descriptor limit to the hard one.
"""
import argparse
import asyncio
import gc
import os
import resource
import ssl
import sys
import time


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def put(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text + "\n")
    os.replace(tmp, path)


async def backend(a):
    st = {"open": 0, "accepted": 0}

    async def session(r, w):
        st["open"] += 1
        st["accepted"] += 1
        try:
            w.write(b"220 hold.test ESMTP\r\n")
            await w.drain()
            while await r.read(65536):
                pass
        except (OSError, ConnectionError):
            pass
        finally:
            st["open"] -= 1
            try:
                w.close()
            except Exception:
                pass

    server = await asyncio.start_server(session, "127.0.0.1", a.port,
                                        reuse_address=True, backlog=4096)
    put(a.status, "open=0 accepted=0")
    print("ready", flush=True)
    last = None
    async with server:
        while True:
            now = "open=%d accepted=%d" % (st["open"], st["accepted"])
            if now != last:
                put(a.status, now)
                last = now
            await asyncio.sleep(0.2)


async def client(a):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    sem = asyncio.Semaphore(a.jobs)
    sessions = []
    failed = [0]

    async def one(i):
        async with sem:
            w = None
            try:
                r, w = await asyncio.wait_for(asyncio.open_connection(
                    "127.0.0.1", a.port, ssl=ctx, server_hostname="localhost",
                    ssl_handshake_timeout=60), 60)
                line = await asyncio.wait_for(r.readline(), 60)
                if not line.startswith(b"220 "):
                    raise ValueError("greeting %r" % line[:60])
                sessions.append(w)
            except (OSError, ssl.SSLError, asyncio.TimeoutError, ValueError) as e:
                failed[0] += 1
                if failed[0] <= 10:
                    print("session %d: %s" % (i, str(e) or type(e).__name__), flush=True)
                if w is not None:
                    w.transport.abort()

    t0 = time.monotonic()
    for start in range(0, a.n, a.batch):
        await asyncio.gather(*(one(i) for i in range(start, min(a.n, start + a.batch))))
        print("%d established, %d failed, %.1f s" % (
            len(sessions), failed[0], time.monotonic() - t0), flush=True)
    el = time.monotonic() - t0
    put(a.status, "established=%d failed=%d seconds=%.2f" % (len(sessions), failed[0], el))
    end = time.monotonic() + 600
    while not os.path.exists(a.closefile) and time.monotonic() < end:
        await asyncio.sleep(0.2)
    for w in sessions:
        w.close()
    await asyncio.gather(*(asyncio.wait_for(w.wait_closed(), 30) for w in sessions),
                         return_exceptions=True)
    put(a.status, "closed=%d" % len(sessions))
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("backend")
    b.add_argument("port", type=int)
    b.add_argument("status")
    c = sub.add_parser("client")
    c.add_argument("port", type=int)
    c.add_argument("n", type=int)
    c.add_argument("status")
    c.add_argument("closefile")
    c.add_argument("--jobs", type=int, default=100)
    c.add_argument("--batch", type=int, default=1000)
    a = ap.parse_args()
    raise_nofile()
    gc.disable()   # long-lived objects by the thousand: no full scans
    if a.cmd == "backend":
        return asyncio.run(backend(a))
    return asyncio.run(client(a))


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(0)
