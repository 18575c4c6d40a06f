#!/usr/bin/env python3
"""smtp_many.py [options] LIST OUTDIR - many SMTP sessions at once (asyncio).

LIST has one "NAME PORT" per line.  For each, one session to 127.0.0.1:PORT
that tries to send one message: greeting, EHLO, MAIL, RCPT, DATA, a message
whose header "X-Case: NAME" tells it apart in a sink, QUIT, then reads until
the server closes.  The transcript goes to OUTDIR/NAME.dlg in the format of
smtp_dialog.py (local:, C:, S:, S: <EOF>, EOF/OPEN, done), so lib.sh's
reply_to reads it.  One summary line per session is printed:

  NAME|GREETING|DATA-REPLY|EOF-or-OPEN

(first line of the greeting, first line of the reply to the message body,
whether the server had closed at the end).  A session that fails early leaves
the rest empty.  Options: --jobs N sessions at a time (default 16),
--timeout SECS per reply (default 15).
"""
import argparse
import asyncio
import os
import sys


def show(b):
    s = b.decode("latin-1")
    return "".join(c if 32 <= ord(c) < 127 else "\\x%02x" % ord(c) for c in s)


class Session:
    def __init__(self, name, port, timeout):
        self.name, self.port, self.timeout = name, port, timeout
        self.lines = []
        self.closed = False
        self.r = self.w = None

    async def reply(self):
        """Read one reply; return its first line ("" on EOF/timeout)."""
        first = None
        if self.closed:
            self.lines.append("S: <EOF>")
            return ""
        while True:
            try:
                line = await asyncio.wait_for(self.r.readline(), self.timeout)
            except asyncio.TimeoutError:
                self.lines.append("S: <TIMEOUT>")
                return first or ""
            except (OSError, ConnectionError) as e:
                self.closed = True
                self.lines.append("S: <EOF> (%s)" % e)
                return first or ""
            if not line:
                self.closed = True
                self.lines.append("S: <EOF>")
                return first or ""
            text = line.rstrip(b"\r\n")
            self.lines.append("S: " + show(text))
            if first is None:
                first = show(text)
            if len(text) < 4 or text[3:4] != b"-":
                return first

    async def send(self, shown, data):
        self.lines.append("C: " + shown)
        if self.closed:
            return
        try:
            self.w.write(data)
            await self.w.drain()
        except (OSError, ConnectionError) as e:
            self.lines.append("send failed: %s" % e)

    async def run(self):
        greeting = data_reply = ""
        try:
            self.r, self.w = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", self.port), self.timeout)
        except (OSError, asyncio.TimeoutError) as e:
            self.lines.append("connect failed: %s" % (str(e) or type(e).__name__))
            return "%s|||" % self.name
        self.lines.append("local: %s:%d" % self.w.get_extra_info("sockname")[:2])
        greeting = await self.reply()
        for cmd in ("EHLO client.test", "MAIL FROM:<b@example.com>",
                    "RCPT TO:<a@example.com>", "DATA"):
            await self.send(cmd, cmd.encode() + b"\r\n")
            await self.reply()
        body = "X-Case: %s\r\nSubject: %s\r\n\r\nbody\r\n.\r\n" % (self.name, self.name)
        await self.send("<raw %s>" % body.replace("\r", "\\r").replace("\n", "\\n"),
                        body.encode())
        data_reply = await self.reply()
        await self.send("QUIT", b"QUIT\r\n")
        await self.reply()
        end = asyncio.get_running_loop().time() + 5
        while not self.closed:
            left = end - asyncio.get_running_loop().time()
            if left <= 0:
                break
            try:
                d = await asyncio.wait_for(self.r.read(65536), left)
            except asyncio.TimeoutError:
                break
            except (OSError, ConnectionError):
                d = b""
            if not d:
                self.closed = True
        self.lines.append("EOF" if self.closed else "OPEN")
        self.lines.append("done")
        try:
            self.w.close()
        except Exception:
            pass
        return "%s|%s|%s|%s" % (self.name, greeting, data_reply,
                                "EOF" if self.closed else "OPEN")


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("list")
    ap.add_argument("outdir")
    ap.add_argument("--jobs", type=int, default=16)
    ap.add_argument("--timeout", type=float, default=15.0)
    a = ap.parse_args()
    todo = []
    with open(a.list) as f:
        for line in f:
            if line.strip():
                name, port = line.split()
                todo.append((name, int(port)))
    sem = asyncio.Semaphore(a.jobs)

    async def one(name, port):
        async with sem:
            s = Session(name, port, a.timeout)
            summary = await s.run()
            with open(os.path.join(a.outdir, name + ".dlg"), "w") as f:
                f.write("\n".join(s.lines) + "\n")
            return summary

    for summary in await asyncio.gather(*(one(n, p) for n, p in todo)):
        print(summary, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
