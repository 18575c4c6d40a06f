#!/usr/bin/env python3
"""halfclose_client.py PORT N [CONCURRENCY] - what Exim does at the end.

N sessions with 127.0.0.1:PORT (CONCURRENCY at a time, default 1), each:
greeting, EHLO, MAIL, RCPT, DATA (one reply read after each), a short body,
then ".\\r\\nQUIT\\r\\n" in one write and shutdown(SHUT_WR) at once, then every
reply up to EOF.  Prints one line per session that missed something
("session K: ...") and a summary:
  sessions=N got250=X got221=Y
got250 counts sessions whose reply to "." was 250, got221 those that got
the 221 to QUIT after it.
"""
import asyncio
import sys


async def reply(reader):
    lines = []
    while True:
        line = await reader.readline()
        if not line:
            return lines, True
        lines.append(line.decode("latin-1").rstrip("\r\n"))
        if len(line) < 4 or line[3:4] != b"-":
            return lines, False


async def session(port, k):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        greeting, eof = await reply(reader)
        if eof or not greeting[0].startswith("220"):
            return False, False, "greeting %r" % greeting
        for cmd in ("EHLO halfclose.test", "MAIL FROM:<a@halfclose.test>",
                    "RCPT TO:<b@example.com>", "DATA"):
            writer.write(cmd.encode() + b"\r\n")
            got, eof = await reply(reader)
            if eof:
                return False, False, "EOF after %s" % cmd
        if not got[0].startswith("354"):
            return False, False, "DATA: %r" % got
        writer.write(b"Subject: half-close %d\r\n\r\nbody %d\r\n" % (k, k))
        await writer.drain()
        writer.write(b".\r\nQUIT\r\n")
        await writer.drain()
        writer.write_eof()
        rest = []
        while True:
            got, eof = await reply(reader)
            rest.extend(got)
            if eof:
                break
        c250 = bool(rest) and rest[0].startswith("250")
        c221 = len(rest) > 1 and rest[1].startswith("221")
        return c250, c221, "after '.': %r" % rest
    finally:
        writer.close()


async def main():
    port, n = int(sys.argv[1]), int(sys.argv[2])
    conc = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    sem = asyncio.Semaphore(conc)
    res = {"250": 0, "221": 0}

    async def one(k):
        async with sem:
            try:
                c250, c221, why = await asyncio.wait_for(session(port, k), 30)
            except (OSError, asyncio.TimeoutError) as e:
                c250, c221, why = False, False, repr(e)
            res["250"] += c250
            res["221"] += c221
            if not (c250 and c221):
                print("session %d: %s" % (k, why), flush=True)

    await asyncio.gather(*(one(k) for k in range(n)))
    print("sessions=%d got250=%d got221=%d" % (n, res["250"], res["221"]))


if __name__ == "__main__":
    asyncio.run(main())
