#!/usr/bin/env python3
"""soak_client.py - MTA-like SMTP load for the fault soak (tests/slow/soak.sh).

  soak_client.py run --route NAME=PORT... --clients N --seconds S --events FILE
                     [--seed N] [--timeout SECS] [--grace SECS]
  soak_client.py report --events FILE --accepted FILE [--backend-log FILE]
                     [--proxy-log FILE] [--examples N]

run: N concurrent clients (asyncio) spread evenly over the routes, for S
seconds.  Each behaves like an MTA's SMTP client with a queue: it connects
to 127.0.0.1:PORT, reads the greeting, sends EHLO, then one to three
messages on the connection (MAIL, RCPT, DATA - pipelined when PIPELINING is
offered, half of the time - the body, "."), then QUIT, reading every reply.
Each message has a unique Message-ID, a sender address naming it too (so
the backend's fault log names it), 8-bit text, dot-stuffed lines and
SMTP-looking lines in its body, and an X-Soak-Digest header (sha256 of the
body) the backend checks.  Each transaction (a message's attempt: from the
connection's greeting for the first message of a connection, from MAIL for
the next ones, to the reply to ".") ends as one of
  delivered   250 to "."
  deferred    a 4xx (the proxy's own 421 included)
  permanent   a 5xx (must never happen: the backend never sends one)
  noreply     the connection ended (EOF, reset or the client's reply
              timeout) while a reply was awaited and no reply line came
              for that command (and no 4xx had come in that transaction)
  malformed   a reply that is not "[2-5]DD[ -]text"
  cancelled   still running when the run was cut off (--grace after S)
Deferred, noreply and malformed messages go back into the client's queue
and are retried 0.5-2 s later with the same Message-ID, as an MTA does.
One event line per transaction goes to --events:
  txn t=SECS v=ROUTE w=CLIENT id=MSGID try=N out=OUTCOME stage=STAGE
      code=CODE how=eof|reset|timeout|- lport=PORT
(stage: greeting, ehlo, mail, rcpt, data, dot), one "quit ..." line per
QUIT (out=ok or noreply), "connfail ..." when a connect fails.

report: the figures, per route and in total, from the events and the
backend's accepted list (fault_backend.py --accepted): attempted messages,
transactions, delivered, deferred, noreply (by stage), 5xx, malformed, lost
(250 to the client, absent from the accepted list), duplicates at the
backend (accepted more than once), corrupt (digest mismatch), queued (never
delivered by the end), QUIT without 221.  The last line is
  TOTAL attempted=N transactions=N delivered=N deferred=N noreply=N 5xx=N
        malformed=N lost=N duplicates=N corrupt=N queued=N cancelled=N
With --backend-log and --proxy-log it shows, for the first --examples
no-reply transactions, the backend's fault events for that message and the
client route's log lines for that connection (by the client's port).
"""
import argparse
import asyncio
import collections
import hashlib
import random
import re
import sys
import time

REPLY = re.compile(rb"^[2-5][0-9][0-9]([ -]|$)")
WORDS = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do "
         "eiusmod tempor incididunt ut labore et dolore magna aliqua").split()
ODD_LINES = (
    b".", b"..", b".leading dot", b"...three dots", b". ", b"QUIT",
    b"DATA", b"STARTTLS", b"MAIL FROM:<evil@example.com>", b"RSET",
    b"250 2.0.0 Ok", b"354 go ahead", b"221 Bye",
    "8-bit: caf\u00e9 na\u00efve \u20ac \u00fc\u00f6\u00e4 \u65e5\u672c".encode(),
    b"\xe9\xe8 latin-1 octets \xff\xfe", b"", b"\t tab and spaces  ",
)


class Msg:
    __slots__ = ("id", "sender", "data", "tries", "size", "start")

    def __init__(self, rng, seed, route, worker, seq):
        tag = "soak.%d.%s.%d.%d" % (seed, route, worker, seq)
        self.id = "<%s@soak.test>" % tag
        self.sender = "%s@soak.test" % tag
        self.tries = 0
        self.start = 0.0        # when its current attempt began (wall clock)
        body = make_body(rng)
        head = ("Message-ID: %s\r\nFrom: <%s>\r\nTo: <rcpt@backend.test>\r\n"
                "Subject: soak %s\r\nMIME-Version: 1.0\r\n"
                "Content-Type: text/plain; charset=utf-8\r\n"
                "Content-Transfer-Encoding: 8bit\r\n"
                "X-Soak-Digest: %s\r\n\r\n" % (
                    self.id, self.sender, tag,
                    hashlib.sha256(body).hexdigest())).encode()
        msg = head + body
        self.size = len(msg)
        # dot-stuffing (RFC 5321 4.5.2) and the end of data
        lines = msg.split(b"\r\n")[:-1]
        self.data = b"".join((b"." + ln if ln.startswith(b".") else ln) + b"\r\n"
                             for ln in lines) + b".\r\n"


def make_body(rng):
    x = rng.random()
    if x < 0.70:
        size = rng.randrange(100, 2000)
    elif x < 0.95:
        size = rng.randrange(2000, 24000)
    else:
        size = rng.randrange(24000, 160000)
    out = []
    n = 0
    while n < size:
        y = rng.random()
        if y < 0.12:
            ln = rng.choice(ODD_LINES)
        elif y < 0.14:
            ln = b"x" * rng.randrange(200, 998)
        else:
            ln = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(1, 13))).encode()
        out.append(ln)
        n += len(ln) + 2
    return b"\r\n".join(out) + b"\r\n"


class NoReply(Exception):
    def __init__(self, how):
        super().__init__(how)
        self.how = how


class Conn:
    def __init__(self, r, w, timeout):
        self.r, self.w, self.timeout = r, w, timeout
        self.dead = None        # how the connection ended, once it has

    async def reply(self):
        """(code, lines) of the next reply; code -1 if malformed.  Raises
        NoReply(how) if the connection ends before a whole reply line."""
        lines = []
        while True:
            if self.dead == "timeout":
                raise NoReply("timeout")
            try:
                line = await asyncio.wait_for(self.r.readline(), self.timeout)
            except asyncio.TimeoutError:
                self.dead = "timeout"
                raise NoReply("timeout")
            except (ConnectionResetError, BrokenPipeError):
                self.dead = "reset"
                raise NoReply("reset")
            except (OSError, ConnectionError, ValueError,
                    asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                self.dead = "reset"
                raise NoReply("reset")
            if not line.endswith(b"\n"):
                self.dead = self.dead or "eof"
                raise NoReply(self.dead)
            text = line.rstrip(b"\r\n")
            if not REPLY.match(text):
                return -1, lines + [text]
            lines.append(text)
            if text[3:4] != b"-":
                return int(text[:3]), lines

    async def send(self, data):
        """Write; a failed write is remembered, and the reply read next
        tells what happened."""
        if self.dead:
            return
        try:
            self.w.write(data)
            await asyncio.wait_for(self.w.drain(), self.timeout)
        except asyncio.TimeoutError:
            self.dead = "timeout"
        except (OSError, ConnectionError):
            self.dead = "reset"

    def abort(self):
        try:
            self.w.transport.abort()
        except Exception:
            pass


class Client:
    def __init__(self, run, idx, route, port):
        self.run, self.idx, self.route, self.port = run, idx, route, port
        self.rng = random.Random(run.seed * 100003 + idx)
        self.queue = []         # [due, Msg]
        self.seq = 0
        self.current = None     # (msg, stage, lport) while in a transaction

    def next_msgs(self, k):
        now = time.monotonic()
        out = []
        self.queue.sort(key=lambda e: e[0])
        while self.queue and len(out) < k and self.queue[0][0] <= now:
            out.append(self.queue.pop(0)[1])
        while len(out) < k:
            self.seq += 1
            out.append(Msg(self.rng, self.run.seed, self.route, self.idx, self.seq))
        return out

    def requeue(self, m, later=True):
        due = time.monotonic() + (self.rng.uniform(0.5, 2.0) if later else 0)
        self.queue.append([due, m])

    def txn(self, m, out, stage, code="-", how="-", lport=0, text=b""):
        self.current = None
        self.run.event("txn v=%s w=%d id=%s try=%d out=%s stage=%s code=%s how=%s lport=%d use=%d start=%.3f text=%s" % (
            self.route, self.idx, m.id, m.tries, out, stage, code, how, lport,
            self.run.uses[(self.route, lport)], m.start, squash(text)))
        if out != "delivered":
            self.requeue(m)

    async def loop(self):
        while time.monotonic() < self.run.deadline:
            k = self.rng.choice((1, 1, 1, 2, 2, 3))
            msgs = self.next_msgs(k)
            ok = await self.session(msgs)
            if not ok:
                await asyncio.sleep(self.rng.uniform(0.05, 0.3))

    async def session(self, msgs):
        """One connection; True if it got as far as a greeting."""
        to = self.run.timeout
        msgs[0].start = time.time()
        try:
            r, w = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", self.port, limit=1 << 20), to)
        except (OSError, asyncio.TimeoutError) as e:
            self.run.event("connfail v=%s w=%d err=%s" % (
                self.route, self.idx, (str(e) or type(e).__name__).replace(" ", "_")))
            for m in msgs:
                self.requeue(m, later=False)
            return False
        c = Conn(r, w, to)
        lport = w.get_extra_info("sockname")[1]
        self.run.uses[(self.route, lport)] += 1
        pending = list(msgs)
        try:
            first = pending[0]
            first.tries += 1
            self.current = (first, "greeting", lport)
            stage = "greeting"
            try:
                code, lines = await c.reply()
                if code != 220:
                    return self.early(c, pending, stage, code, lport, lines)
                stage = "ehlo"
                self.current = (first, stage, lport)
                await c.send(b"EHLO soak-client.test\r\n")
                code, lines = await c.reply()
                if code != 250:
                    return self.early(c, pending, stage, code, lport, lines)
            except NoReply as e:
                self.txn(first, "noreply", stage, how=e.how, lport=lport)
                for m in pending[1:]:
                    self.requeue(m, later=False)
                return True
            pipelining = any(ln[4:].upper().startswith(b"PIPELINING") for ln in lines)
            pipe = pipelining and self.rng.random() < 0.5
            while pending:
                m = pending.pop(0)
                if m is not first:
                    m.tries += 1
                    m.start = time.time()
                how = await self.transaction(c, m, pipe, lport)
                if how == "dead":
                    for m2 in pending:
                        self.requeue(m2, later=False)
                    return True
                if how == "quit" or time.monotonic() >= self.run.deadline:
                    for m2 in pending:
                        self.requeue(m2, later=False)
                    pending = []
            await self.quit(c, lport)
            return True
        except asyncio.CancelledError:
            if self.current is not None:
                m, stage, lp = self.current
                self.run.event("txn v=%s w=%d id=%s try=%d out=cancelled stage=%s code=- how=- lport=%d" % (
                    self.route, self.idx, m.id, m.tries, stage, lp))
            raise
        finally:
            self.current = None
            c.abort()

    def early(self, c, pending, stage, code, lport, lines):
        """The greeting or EHLO reply was not a 2xx."""
        out = outcome(code)
        self.txn(pending[0], out, stage, code=code, lport=lport, text=lines[-1])
        for m in pending[1:]:
            self.requeue(m, later=False)
        return True

    async def transaction(self, c, m, pipe, lport):
        """One message: "ok" (the connection goes on), "quit" (after a
        4xx: end it with QUIT, as an MTA does) or "dead"."""
        cmds = [("mail", b"MAIL FROM:<%s> BODY=8BITMIME SIZE=%d\r\n" % (
                    m.sender.encode(), m.size)),
                ("rcpt", b"RCPT TO:<rcpt@backend.test>\r\n"),
                ("data", b"DATA\r\n")]
        failed = None           # (outcome, stage, code, how, text): the first failure
        got354 = False
        if pipe:
            await c.send(b"".join(x[1] for x in cmds))
        for stage, line in cmds:
            if not failed:
                self.current = (m, stage, lport)
            if not pipe:
                await c.send(line)
            try:
                code, lines = await c.reply()
            except NoReply as e:
                if failed:
                    self.txn(m, failed[0], failed[1], code=failed[2], lport=lport, text=failed[4])
                else:
                    self.txn(m, "noreply", stage, how=e.how, lport=lport)
                return "dead"
            want = 354 if stage == "data" else 250
            if code == want:
                got354 = stage == "data"
                continue
            if not failed:
                failed = (outcome(code), stage, code, "-", lines[-1])
            if code == 421 or code == -1:
                self.txn(m, failed[0], failed[1], code=failed[2], lport=lport, text=failed[4])
                return "dead"
            if not pipe:
                break
        if failed:
            self.txn(m, failed[0], failed[1], code=failed[2], lport=lport, text=failed[4])
            if got354:
                await c.send(b".\r\n")      # an empty message after all
                try:
                    await c.reply()
                except NoReply:
                    return "dead"
            return "quit" if failed[0] == "deferred" else "dead"
        self.current = (m, "dot", lport)
        await c.send(m.data)
        try:
            code, lines = await c.reply()
        except NoReply as e:
            self.txn(m, "noreply", "dot", how=e.how, lport=lport)
            return "dead"
        if code == 250:
            self.txn(m, "delivered", "dot", code=250, lport=lport)
            return "ok"
        self.txn(m, outcome(code), "dot", code=code, lport=lport, text=lines[-1])
        return "quit" if 400 <= code < 500 and code != 421 else "dead"

    async def quit(self, c, lport):
        await c.send(b"QUIT\r\n")
        try:
            code, _ = await c.reply()
            self.run.event("quit v=%s w=%d out=%s code=%s lport=%d" % (
                self.route, self.idx, "ok" if code == 221 else "other", code, lport))
        except NoReply as e:
            self.run.event("quit v=%s w=%d out=noreply how=%s lport=%d" % (
                self.route, self.idx, e.how, lport))
            return
        # until the server hangs up (bounded)
        try:
            while await asyncio.wait_for(c.r.read(4096), 5):
                pass
        except (asyncio.TimeoutError, OSError, ConnectionError):
            pass


def squash(text):
    """A reply line as one event field (spaces become "_")."""
    t = text.decode("latin-1")[:80]
    return "".join(c if 33 <= ord(c) < 127 else "_" for c in t) or "-"


def outcome(code):
    if code == -1:
        return "malformed"
    if 400 <= code < 500:
        return "deferred"
    if code >= 500:
        return "permanent"
    return "malformed"      # a 2xx/3xx where another reply was due


class Run:
    def __init__(self, a):
        self.seed = a.seed if a.seed is not None else int(time.time()) % 1000000
        self.timeout = a.timeout
        self.t0 = time.monotonic()
        self.deadline = self.t0 + a.seconds
        self.out = open(a.events, "w", buffering=1)
        self.uses = collections.Counter()   # (route, client port): sessions

    def event(self, text):
        kind, rest = text.split(" ", 1)
        self.out.write("%s t=%.3f wall=%.3f %s\n" % (
            kind, time.monotonic() - self.t0, time.time(), rest))


async def run_main(a):
    run = Run(a)
    routes = []
    for spec in a.route:
        name, port = spec.split("=")
        routes.append((name, int(port)))
    print("seed %d, %d clients over %s, %g s" % (
        run.seed, a.clients, ",".join(n for n, _ in routes), a.seconds), flush=True)
    clients = [Client(run, i, *routes[i % len(routes)]) for i in range(a.clients)]
    tasks = [asyncio.ensure_future(c.loop()) for c in clients]
    done, left = await asyncio.wait(tasks, timeout=a.seconds + a.grace)
    for t in left:
        t.cancel()
    if left:
        await asyncio.wait(left, timeout=5)
    for t in done:
        if t.exception() is not None:
            print("client task failed: %r" % t.exception(), flush=True)
    print("stopped after %.1f s (%d clients cut off)" % (
        time.monotonic() - run.t0, len(left)), flush=True)
    return 0


def parse_kv(line):
    parts = line.split()
    return parts[0], dict(p.split("=", 1) for p in parts[1:] if "=" in p)


def report(a):
    txns = []
    quits = collections.Counter()
    connfail = 0
    with open(a.events, encoding="latin-1") as f:
        for line in f:
            kind, kv = parse_kv(line)
            if kind == "txn":
                txns.append(kv)
            elif kind == "quit":
                quits[(kv["v"], kv["out"])] += 1
            elif kind == "connfail":
                connfail += 1
    accepted = collections.Counter()
    corrupt = 0
    with open(a.accepted, encoding="latin-1") as f:
        for line in f:
            p = line.split()
            if len(p) >= 2:
                accepted[p[0]] += 1
                corrupt += p[1] == "bad"
    routes = sorted({t["v"] for t in txns})

    def figures(sel):
        ts = [t for t in txns if sel(t)]
        ids = {t["id"] for t in ts}
        delivered = {t["id"] for t in ts if t["out"] == "delivered"}
        c = collections.Counter(t["out"] for t in ts)
        f = collections.OrderedDict()
        f["attempted"] = len(ids)
        f["transactions"] = len(ts) - c["cancelled"]
        f["delivered"] = len(delivered)
        f["deferred"] = c["deferred"]
        f["noreply"] = c["noreply"]
        f["5xx"] = c["permanent"]
        f["malformed"] = c["malformed"]
        f["lost"] = len([i for i in delivered if accepted[i] == 0])
        f["duplicates"] = len([i for i in ids if accepted[i] > 1])
        f["queued"] = len(ids - delivered)
        f["cancelled"] = c["cancelled"]
        stages = collections.Counter("%s/%s" % (t["stage"], t["how"])
                                     for t in ts if t["out"] == "noreply")
        defer = collections.Counter("%s: %s" % (t["stage"], t.get("text", t["code"]))
                                    for t in ts if t["out"] == "deferred")
        return f, stages, defer

    def line(f):
        return " ".join("%s=%d" % kv for kv in f.items())

    for r in routes:
        f, stages, defer = figures(lambda t, r=r: t["v"] == r)
        print("route %s: %s" % (r, line(f)))
        if f["transactions"]:
            print("route %s: %.1f%% of transactions without a reply" % (
                r, 100.0 * f["noreply"] / f["transactions"]))
        print("route %s: no reply at (stage/how): %s" % (
            r, ", ".join("%s %d" % kv for kv in sorted(stages.items())) or "none"))
        print("route %s: deferred at (stage: reply):" % r)
        for k, v in sorted(defer.items()):
            print("route %s:   %5d %s" % (r, v, k))
        print("route %s: QUIT: 221 %d, other reply %d, no reply %d" % (
            r, quits[(r, "ok")], quits[(r, "other")], quits[(r, "noreply")]))
    f, stages, defer = figures(lambda t: True)
    extra = sum(n - 1 for n in accepted.values() if n > 1)
    print("backend: %d acceptances of %d distinct messages (%d extra copies), "
          "%d with a bad digest; %d failed connects" % (
              sum(accepted.values()), len(accepted), extra, corrupt, connfail))
    bad = [t for t in txns if t["out"] in ("noreply", "permanent", "malformed")]
    if bad and (a.backend_log or a.proxy_log):
        logs = Logs(a)
        why(logs, bad)
        examples(a, logs, bad)
    f["corrupt"] = corrupt
    print("TOTAL " + line(f))
    return 0


class Logs:
    """The backend's fault events by sender, the client route's log lines
    by session id, and the session id of a client connection."""

    def __init__(self, a):
        self.faults = collections.defaultdict(list)     # sender: [(wall, text)]
        self.lines = collections.defaultdict(list)      # sid: [line]
        self.connects = collections.defaultdict(list)   # (route, port): [sid]
        if a.backend_log:
            with open(a.backend_log, encoding="latin-1") as f:
                for ln in f:
                    m = re.match(r"([0-9.]+) \S+ fault (.*) txn \d+ sender <([^>]*)>", ln)
                    if m:
                        self.faults[m.group(3)].append((float(m.group(1)), m.group(2)))
        if a.proxy_log:
            conn = re.compile(r": (([^ /:]+)/[0-9a-f]+): connect from 127\.0\.0\.1:(\d+)$")
            line = re.compile(r": ([^ /:]+/[0-9a-f]+): (.*)$")
            with open(a.proxy_log, encoding="latin-1") as f:
                for ln in f:
                    ln = ln.rstrip("\n")
                    m = conn.search(ln)
                    if m:
                        self.connects[(m.group(2), m.group(3))].append(m.group(1))
                    m = line.search(ln)
                    if m:
                        self.lines[m.group(1)].append(ln)

    def fault(self, t):
        """The backend fault that most likely ended transaction T."""
        end = float(t.get("wall", 0))
        start = float(t.get("start", end - 40))
        best = None
        for w, text in self.faults.get(t["id"].strip("<>"), ()):
            if start - 0.05 <= w <= end + 0.05:
                best = text
        return best

    def sid(self, t):
        sids = self.connects.get((t["v"], t["lport"]), [])
        use = int(t.get("use", len(sids)))
        return sids[use - 1] if 0 < use <= len(sids) else None

    def reason(self, t):
        """What the client route logged about the session, in short."""
        sid = self.sid(t)
        if sid is None:
            return "(session not found in the log)"
        said = []
        for ln in self.lines[sid]:
            msg = ln.split(": ", 2)[-1]
            if re.match(r"(connect from|\w+ TLS connection (established|reused)|"
                        r"server certificate:)", msg):
                continue
            msg = re.sub(r"disconnect in=\S+ out=\S+ [0-9.]+s ?", "disconnect ", msg)
            msg = re.sub(r"\d+\.\d+\.\d+\.\d+(\[[^]]*\])?(:\d+)?", "ADDR", msg)
            said.append(msg.strip())
        return " / ".join(said)


def why(logs, bad):
    """Tables, one column per route: the backend fault behind each
    transaction without a reply, and what the client route logged for its
    session."""
    routes = sorted({t["v"] for t in bad})
    faults = collections.defaultdict(collections.Counter)
    reasons = collections.defaultdict(collections.Counter)
    for t in bad:
        f = logs.fault(t)
        if f:
            f = re.sub(r", (at once|on the next input)\)", ")", f)
        faults[(t["stage"], f or "none (a fault before MAIL, a reset on "
                "the TLS hop, a backend restart)")][t["v"]] += 1
        reasons[logs.reason(t)][t["v"]] += 1

    def table(title, rows, width=0):
        print(title)
        print("  " + " ".join("%6s" % r for r in routes))
        for key, c in sorted(rows.items(), key=lambda kv: -sum(kv[1].values()))[:30]:
            label = key if isinstance(key, str) else "%-8s %s" % key
            print("  " + " ".join("%6d" % c[r] for r in routes) + "  " + label)

    table("without a reply: the client's stage and the backend fault behind it",
          faults)
    table("without a reply: what the client route logged for the session",
          reasons)


def examples(a, logs, bad):
    seen = collections.Counter()
    shown = 0
    # those with a backend fault behind them first: they tell the most
    for t in sorted(bad, key=lambda t: logs.fault(t) is None):
        key = (t["v"], t["stage"], t["out"])
        if seen[key] >= 1 or shown >= a.examples:
            continue
        seen[key] += 1
        shown += 1
        print("example: %s %s at %s (%s) t=%s %s try %s, client port %s" % (
            t["v"], t["out"], t["stage"], t["how"] if t["out"] == "noreply" else t["code"],
            t["t"], t["id"], t["try"], t["lport"]))
        f = logs.fault(t)
        if f:
            print("   backend: fault %s" % f)
        sid = logs.sid(t)
        for ln in logs.lines.get(sid, ()):
            print("   proxy: " + ln)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--route", action="append", required=True)
    r.add_argument("--clients", type=int, default=120)
    r.add_argument("--seconds", type=float, default=60)
    r.add_argument("--events", required=True)
    r.add_argument("--seed", type=int)
    r.add_argument("--timeout", type=float, default=20)
    r.add_argument("--grace", type=float, default=30)
    p = sub.add_parser("report")
    p.add_argument("--events", required=True)
    p.add_argument("--accepted", required=True)
    p.add_argument("--backend-log")
    p.add_argument("--proxy-log")
    p.add_argument("--examples", type=int, default=12)
    a = ap.parse_args()
    if a.cmd == "run":
        return asyncio.run(run_main(a))
    return report(a)


if __name__ == "__main__":
    sys.exit(main())
