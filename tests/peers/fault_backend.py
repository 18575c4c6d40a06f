#!/usr/bin/env python3
"""fault_backend.py PORT [options] - an SMTP backend that fails on purpose.

An asyncio SMTP server on 127.0.0.1:PORT (PIPELINING, 8BITMIME, SIZE,
ENHANCEDSTATUSCODES) for the fault soak (tests/slow/soak.sh).  For each
connection it draws one plan when it accepts it:

  drop STAGE N fin|rst   hang up at STAGE of the Nth transaction on this
                         connection (rst: SO_LINGER 0, the peer gets a reset)
  tempfail STAGE N       answer the command at STAGE with a 4xx (421 and
                         hang up at the greeting and EHLO, and now and then
                         elsewhere)
  stall STAGE N          stop answering at STAGE and hold the connection
                         until the peer hangs up (the proxy's idle timeout)
  none

STAGEs, in session order:
  pre-greeting   before the 220
  post-greeting  after the 220 (at once, or when the next command arrives)
  post-ehlo      after the EHLO reply (likewise)
  post-mail      after the 250 to MAIL (likewise)
  post-rcpt      after the 250 to RCPT (likewise)
  post-354       after the 354 to DATA (likewise)
  mid-body       after some octets of the message
  on-dot         after the final "." and before any reply to it
  post-250       after the 250 to "." (at once, or when the next command
                 arrives)
  on-quit        QUIT received, no 221
The backend never sends a 5xx of its own (commands out of sequence get a
4xx), so any 5xx an SMTP client sees comes from somewhere else.

Every message it accepts is appended to the --accepted file as
"MESSAGE-ID DIGEST-CHECK OCTETS CONN" (DIGEST-CHECK ok/bad/none: whether the
body matched its X-Soak-Digest header, a sha256 of the body after the
header block) with one write(2) on an O_APPEND descriptor BEFORE the 250 is
written, so a killed backend never acknowledged a message it did not record.

Events go to --log, one a line, each after the time (seconds since the
epoch) and PID.N (process, connection): "plan ..." per connection, "fault
..." when a plan fires (with the MAIL FROM address of the
transaction, which names the message), "close".  Options:
--seed N, --drop-rate, --tempfail-rate, --stall-rate (fractions of
connections), --rst-rate (fraction of drops that reset), --no-faults.
Prints "ready" once listening; runs until killed.
"""
import argparse
import asyncio
import hashlib
import os
import random
import socket
import struct
import sys
import time

STAGES = ("pre-greeting", "post-greeting", "post-ehlo", "post-mail",
          "post-rcpt", "post-354", "mid-body", "on-dot", "post-250",
          "on-quit")
# where a tempfail can be answered (the reply to that command)
TEMPFAIL_AT = {
    "pre-greeting": b"421 4.3.2 backend.test busy, try later\r\n",
    "post-greeting": b"421 4.3.2 backend.test closing (EHLO)\r\n",
    "post-ehlo": b"451 4.3.0 MAIL deferred\r\n",
    "post-mail": b"450 4.2.1 RCPT deferred\r\n",
    "post-rcpt": b"451 4.3.0 DATA deferred\r\n",
    "on-dot": b"451 4.3.0 message deferred\r\n",
}
EHLO = (b"250-backend.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
        b"250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n")


class Drop(Exception):
    """The plan fired: hang up (how: fin or rst)."""


class Plan:
    def __init__(self, kind="none", stage=None, nth=1, how="fin", now=True):
        self.kind, self.stage, self.nth, self.how, self.now = \
            kind, stage, nth, how, now

    def __str__(self):
        if self.kind == "none":
            return "none"
        return "%s %s %d %s %s" % (self.kind, self.stage, self.nth, self.how,
                                   "now" if self.now else "next")


def digest_of(msg):
    """(Message-ID, check) of a message as received (dot-stuffing undone)."""
    head, sep, body = msg.partition(b"\r\n\r\n")
    mid, want = b"", None
    for line in head.split(b"\r\n"):
        low = line.lower()
        if low.startswith(b"message-id:"):
            mid = line[11:].strip()
        elif low.startswith(b"x-soak-digest:"):
            want = line[14:].strip().decode("latin-1")
    if want is None:
        check = "none"
    else:
        check = "ok" if hashlib.sha256(body).hexdigest() == want else "bad"
    return mid.decode("latin-1") or "<none>", check


class Backend:
    def __init__(self, a):
        self.a = a
        self.rng = random.Random(a.seed)
        self.n = 0
        self.log = open(a.log, "a", buffering=1, encoding="latin-1")
        self.acc = os.open(a.accepted, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.pid = os.getpid()

    def event(self, n, text):
        self.log.write("%.3f %d.%d %s\n" % (time.time(), self.pid, n, text))

    def plan(self):
        a, r = self.a, self.rng
        if a.no_faults:
            return Plan()
        x = r.random()
        nth = 1 if r.random() < 0.75 else 2
        now = r.random() < 0.5
        if x < a.drop_rate:
            how = "rst" if r.random() < a.rst_rate else "fin"
            return Plan("drop", r.choice(STAGES), nth, how, now)
        x -= a.drop_rate
        if x < a.tempfail_rate:
            return Plan("tempfail", r.choice(list(TEMPFAIL_AT)), nth,
                        "fin", now)
        x -= a.tempfail_rate
        if x < a.stall_rate:
            return Plan("stall", r.choice(STAGES), nth, "fin", now)
        return Plan()

    def record(self, n, msg):
        mid, check = digest_of(msg)
        os.write(self.acc, ("%s %s %d %d.%d\n" % (mid, check, len(msg),
                                                  self.pid, n)).encode())
        return mid, check

    async def session(self, r, w):
        self.n += 1
        n = self.n
        sock = w.get_extra_info("socket")
        peer = w.get_extra_info("peername")
        p = self.plan()
        st = {"txn": 1, "sender": "-"}
        self.event(n, "plan %s peer %s" % (p, peer[1] if peer else "?"))

        def at(stage):
            return (p.kind != "none" and p.stage == stage and
                    st["txn"] == p.nth)

        async def fire(stage, reply=None):
            """The plan's action at STAGE (the reply we would have sent
            is REPLY); returns only for a tempfail."""
            self.event(n, "fault %s at %s (%s, %s) txn %d sender %s" % (
                p.kind, stage, p.how, "at once" if p.now else "on the next input",
                st["txn"], st["sender"]))
            if p.kind == "tempfail":
                text = TEMPFAIL_AT[stage]
                w.write(text)
                await w.drain()
                if text.startswith(b"421"):
                    raise Drop("fin")
                return
            if p.kind == "stall":
                await hold(r)
                raise Drop("fin")
            raise Drop(p.how)

        async def after(stage):
            """A drop/stall planned for just after a reply: at once, or
            when the next command arrives (the caller reads it first)."""
            if at(stage) and p.kind != "tempfail":
                if not p.now:
                    try:
                        nxt = await asyncio.wait_for(r.readline(), 30)
                    except asyncio.TimeoutError:
                        nxt = b""
                    if nxt[:5].upper() == b"MAIL ":     # names the message
                        st["sender"] = nxt[10:].decode("latin-1").strip()
                await fire(stage)

        mail = rcpt = False
        try:
            if at("pre-greeting"):
                await fire("pre-greeting")
                raise Drop("fin")       # tempfail: 421 sent, hang up
            w.write(b"220 backend.test ESMTP soak\r\n")
            await w.drain()
            await after("post-greeting")
            while True:
                line = await r.readline()
                if not line:
                    break
                cmd = line.rstrip(b"\r\n")
                verb = cmd.split(b" ", 1)[0].upper()
                if verb in (b"EHLO", b"HELO"):
                    if at("post-greeting"):     # tempfail: 421 to EHLO
                        await fire("post-greeting")
                    mail = rcpt = False
                    w.write(EHLO if verb == b"EHLO" else b"250 backend.test\r\n")
                    await w.drain()
                    await after("post-ehlo")
                elif verb == b"MAIL":
                    st["sender"] = cmd[10:].decode("latin-1").strip() or "-"
                    if at("post-ehlo"):
                        await fire("post-ehlo")
                        continue
                    mail, rcpt = True, False
                    w.write(b"250 2.1.0 Ok\r\n")
                    await w.drain()
                    await after("post-mail")
                elif verb == b"RCPT":
                    if not mail:
                        w.write(b"451 4.5.1 need MAIL first (test backend)\r\n")
                        await w.drain()
                        continue
                    if at("post-mail"):
                        await fire("post-mail")
                        continue
                    rcpt = True
                    w.write(b"250 2.1.5 Ok\r\n")
                    await w.drain()
                    await after("post-rcpt")
                elif verb == b"DATA":
                    if not rcpt:
                        w.write(b"451 4.5.1 need RCPT first (test backend)\r\n")
                        await w.drain()
                        mail = False
                        continue
                    if at("post-rcpt"):
                        await fire("post-rcpt")
                        mail = rcpt = False
                        continue
                    w.write(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    await w.drain()
                    if at("post-354") and p.kind != "tempfail":
                        if not p.now:
                            await r.read(1)     # the first body octet
                        await fire("post-354")
                    msg = await self.body(r, at("mid-body") and p.kind != "tempfail")
                    if msg is None:             # mid-body fault
                        await fire("mid-body")
                    if at("on-dot"):
                        await fire("on-dot")
                        mail = rcpt = False
                        st["txn"] += 1
                        continue
                    mid, check = self.record(n, msg)
                    w.write(b"250 2.0.0 Ok: queued as %d.%d\r\n" % (self.pid, n))
                    await w.drain()
                    mail = rcpt = False
                    await after("post-250")
                    st["txn"] += 1
                elif verb == b"RSET":
                    mail = rcpt = False
                    w.write(b"250 2.0.0 Ok\r\n")
                    await w.drain()
                elif verb == b"NOOP":
                    w.write(b"250 2.0.0 Ok\r\n")
                    await w.drain()
                elif verb == b"QUIT":
                    # the quit belongs to the transaction after the last
                    if p.kind in ("drop", "stall") and p.stage == "on-quit" \
                            and st["txn"] >= p.nth:
                        st["txn"] = p.nth
                        await fire("on-quit")
                    w.write(b"221 2.0.0 Bye\r\n")
                    await w.drain()
                    break
                else:
                    w.write(b"502 5.5.2 Error: command not recognized\r\n")
                    await w.drain()
                    self.event(n, "unknown command %r" % cmd[:60])
        except Drop as d:
            if str(d) == "rst" and sock is not None:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                    struct.pack("ii", 1, 0))
                except OSError:
                    pass
                w.transport.abort()
        except (OSError, ConnectionError, asyncio.IncompleteReadError,
                asyncio.LimitOverrunError, ValueError) as e:
            self.event(n, "error %s" % (str(e) or type(e).__name__))
        finally:
            self.event(n, "close")
            try:
                w.close()
            except Exception:
                pass

    async def body(self, r, cut):
        """The message up to the final ".", dot-stuffing undone; None when
        CUT says to hang up part way through it."""
        limit = self.rng.randrange(0, 12000) if cut else -1
        got = bytearray()
        raw = 0
        lines = []
        while True:
            line = await r.readline()
            if not line:
                raise ConnectionError("EOF in message body")
            raw += len(line)
            if 0 <= limit <= raw:
                return None
            if line == b".\r\n" or line == b".\n":
                break
            if line.startswith(b"."):
                line = line[1:]
            lines.append(line)
        got = b"".join(lines)
        return bytes(got)


async def hold(r):
    """Read and discard until the peer hangs up (at most 120 s)."""
    try:
        while await asyncio.wait_for(r.read(65536), 120):
            pass
    except (asyncio.TimeoutError, OSError, ConnectionError):
        pass


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--accepted", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--drop-rate", type=float, default=0.10)
    ap.add_argument("--tempfail-rate", type=float, default=0.04)
    ap.add_argument("--stall-rate", type=float, default=0.005)
    ap.add_argument("--rst-rate", type=float, default=0.3)
    ap.add_argument("--no-faults", action="store_true")
    a = ap.parse_args()
    b = Backend(a)
    server = await asyncio.start_server(b.session, "127.0.0.1", a.port,
                                        limit=1 << 20, reuse_address=True,
                                        backlog=1024)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
