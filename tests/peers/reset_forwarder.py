#!/usr/bin/env python3
"""reset_forwarder.py --map LPORT:TPORT... [options] - a TCP forwarder that
resets connections on purpose (the TLS hop of tests/slow/soak.sh).

Listens on 127.0.0.1:LPORT for each --map and forwards each connection to
127.0.0.1:TPORT, both ways, half-closes included.  A fraction (--abort-rate)
of the connections is aborted at a random point: after a random number of
octets (0 to --max-octets, counted both ways) or a random time (0 to
--max-delay seconds), whichever comes first; both sockets are then closed
with SO_LINGER 0, so both peers get a TCP reset.  A connect to the target
that fails resets the client's connection at once.

One line per aborted connection goes to --log:
  N abort LPORT->TPORT after OCTETS octets (up U, down D) SECS s (cause)
and "N connect-failed ..." lines; "ready" is printed once listening.
Runs until killed.
"""
import argparse
import asyncio
import random
import socket
import struct
import sys
import time

LINGER0 = struct.pack("ii", 1, 0)


def reset(w):
    try:
        sock = w.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
    except OSError:
        pass
    w.transport.abort()


class Forwarder:
    def __init__(self, a):
        self.a = a
        self.rng = random.Random(a.seed)
        self.n = 0
        self.log = open(a.log, "a", buffering=1)

    async def conn(self, r1, w1, lport, tport):
        self.n += 1
        n = self.n
        a = self.a
        try:
            r2, w2 = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", tport), 10)
        except (OSError, asyncio.TimeoutError) as e:
            self.log.write("%d connect-failed %d->%d %s\n" % (n, lport, tport, e))
            reset(w1)
            return
        t0 = time.monotonic()
        limit = None
        if self.rng.random() < a.abort_rate:
            limit = [self.rng.randrange(0, a.max_octets + 1),
                     self.rng.uniform(0, a.max_delay)]
        count = {"up": 0, "down": 0}
        done = asyncio.Event()
        why = []

        def abort(cause):
            if done.is_set():
                return
            why.append(cause)
            done.set()
            self.log.write("%d abort %d->%d after %d octets (up %d, down %d) %.3f s (%s)\n" % (
                n, lport, tport, count["up"] + count["down"], count["up"],
                count["down"], time.monotonic() - t0, cause))
            reset(w1)
            reset(w2)

        async def pump(r, w, name):
            try:
                while True:
                    room = 65536
                    if limit is not None:
                        room = max(1, min(room, limit[0] - count["up"] - count["down"]))
                    d = await r.read(room)
                    if not d:
                        break
                    w.write(d)
                    count[name] += len(d)
                    if limit is not None and count["up"] + count["down"] >= limit[0]:
                        abort("octets")
                        return
                    await w.drain()
                if w.can_write_eof():
                    w.write_eof()
            except (OSError, ConnectionError, RuntimeError):
                if not done.is_set():
                    done.set()
                    reset(w1)
                    reset(w2)

        async def timer():
            await asyncio.sleep(limit[1])
            abort("time")

        tasks = [asyncio.ensure_future(pump(r1, w2, "up")),
                 asyncio.ensure_future(pump(r2, w1, "down"))]
        extra = []
        if limit is not None:
            extra.append(asyncio.ensure_future(timer()))
        try:
            await asyncio.wait(tasks)
        finally:
            for t in extra:
                t.cancel()
            for w in (w1, w2):
                try:
                    w.close()
                except Exception:
                    pass


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--map", action="append", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--seed", type=int)
    ap.add_argument("--abort-rate", type=float, default=0.03)
    ap.add_argument("--max-octets", type=int, default=12000)
    ap.add_argument("--max-delay", type=float, default=3.0)
    a = ap.parse_args()
    f = Forwarder(a)
    servers = []
    for m in a.map:
        lport, tport = (int(x) for x in m.split(":"))
        servers.append(await asyncio.start_server(
            lambda r, w, lp=lport, tp=tport: f.conn(r, w, lp, tp),
            "127.0.0.1", lport, reuse_address=True, backlog=1024))
    print("ready", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
