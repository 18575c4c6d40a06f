#!/usr/bin/env python3
"""smtp_dialog.py [options] PORT STEP... - a scripted SMTP client (asyncio).

Connects to 127.0.0.1:PORT and runs the STEPs in order, printing a
transcript that the tests grep:

  local: IP:PORT          the client's own address (first line)
  C: LINE                 a line sent
  S: LINE                 a line received (every line of every reply)
  S: <EOF>                the server closed while a reply was expected
  S: <TIMEOUT>            no complete reply within --timeout
  TLS: VERSION CIPHER     handshake done (or "TLS: failed REASON")
  EOF | OPEN              result of an "eof" step
  QUIET | (S: lines)      result of a "quiet" step

Steps:
  r               read one reply (all its lines)
  s:TEXT          send TEXT + CRLF
  x:RAW           send RAW (Python escapes: \\r \\n \\x00 ...) in one write
  long:N          send N octets of "a" and CRLF, in one write ("C: <long N>")
  big:N           send N octets of "a" without CRLF, in one write
  tls             TLS handshake (no verification; SNI localhost)
  eof[:SECS]      read until the server closes (default 5 s): EOF or OPEN
  quiet:SECS      expect nothing for SECS: QUIET, else the lines received
  sleep:SECS      pause
  close           drop the connection at once: the socket is closed with no
                  TLS close_notify and nothing more read ("CLOSED")
  reset           the same with SO_LINGER 0: an RST ("RESET")
  pv1:SRC:SPORT:DST:DPORT   send a PROXY v1 header (TCP4)
  pv2:SRC:SPORT:DST:DPORT   send a PROXY v2 header (TCP4, PROXY command)

Options: --src IP (bind the source address, e.g. 127.0.0.5), --tls (implicit
TLS at connect), --timeout SECS per reply (default 10).  Ends with "done";
exits 0 unless the connect failed ("connect failed: ...").
"""
import argparse
import asyncio
import ipaddress
import socket
import ssl
import struct
import sys

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def out(s):
    print(s, flush=True)


def raw(s):
    return s.encode("latin-1").decode("unicode_escape").encode("latin-1")


def show(b):
    """A received line, printable; control characters as \\xNN."""
    s = b.decode("latin-1")
    return "".join(c if 32 <= ord(c) < 127 else "\\x%02x" % ord(c) for c in s)


def tls_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def proxy_v2(src, sport, dst, dport):
    body = (ipaddress.IPv4Address(src).packed + ipaddress.IPv4Address(dst).packed +
            struct.pack("!HH", int(sport), int(dport)))
    return V2_SIG + bytes([0x21, 0x11]) + struct.pack("!H", len(body)) + body


class Dialog:
    def __init__(self, r, w, timeout):
        self.r, self.w, self.timeout = r, w, timeout
        self.closed = False

    async def readline(self, timeout):
        line = await asyncio.wait_for(self.r.readline(), timeout)
        if not line:
            self.closed = True
        return line

    async def reply(self):
        if self.closed:
            out("S: <EOF>")
            return
        while True:
            try:
                line = await self.readline(self.timeout)
            except asyncio.TimeoutError:
                out("S: <TIMEOUT>")
                return
            except (OSError, ssl.SSLError, ConnectionError) as e:
                self.closed = True
                out("S: <EOF> (%s)" % e)
                return
            if not line:
                out("S: <EOF>")
                return
            text = line.rstrip(b"\r\n")
            out("S: " + show(text))
            if len(text) < 4 or text[3:4] != b"-":
                return

    async def send(self, data):
        try:
            self.w.write(data)
            await self.w.drain()
        except (OSError, ConnectionError) as e:
            out("send failed: %s" % e)

    async def eof(self, secs):
        loop = asyncio.get_running_loop()
        end = loop.time() + secs
        while not self.closed:
            left = end - loop.time()
            if left <= 0:
                out("OPEN")
                return
            try:
                line = await self.readline(left)
            except asyncio.TimeoutError:
                out("OPEN")
                return
            except (OSError, ssl.SSLError, ConnectionError):
                self.closed = True
                break
            if line:
                out("S: " + show(line.rstrip(b"\r\n")))
        out("EOF")

    async def quiet(self, secs):
        try:
            data = await asyncio.wait_for(self.r.read(65536), secs)
        except asyncio.TimeoutError:
            out("QUIET")
            return
        except (OSError, ssl.SSLError, ConnectionError):
            data = b""
        if not data:
            self.closed = True
            out("S: <EOF>")
            return
        for l in data.split(b"\n"):
            if l:
                out("S: " + show(l.rstrip(b"\r")))

    async def starttls(self):
        try:
            await asyncio.wait_for(
                self.w.start_tls(tls_context(), server_hostname="localhost"),
                self.timeout)
        except (OSError, ssl.SSLError, ConnectionError, asyncio.TimeoutError) as e:
            self.closed = True
            out("TLS: failed %s" % (str(e) or type(e).__name__))
            return
        obj = self.w.get_extra_info("ssl_object")
        out("TLS: %s %s" % (obj.version(), obj.cipher()[0]))


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("steps", nargs="*")
    ap.add_argument("--src")
    ap.add_argument("--tls", action="store_true")
    ap.add_argument("--timeout", type=float, default=10.0)
    a = ap.parse_intermixed_args()
    try:
        r, w = await asyncio.wait_for(asyncio.open_connection(
            "127.0.0.1", a.port, limit=1 << 20,
            local_addr=(a.src, 0) if a.src else None,
            ssl=tls_context() if a.tls else None,
            server_hostname="localhost" if a.tls else None), a.timeout)
    except (OSError, ssl.SSLError, asyncio.TimeoutError) as e:
        out("connect failed: %s" % (str(e) or type(e).__name__))
        return 1
    local = w.get_extra_info("sockname")
    out("local: %s:%d" % local[:2])
    if a.tls:
        obj = w.get_extra_info("ssl_object")
        out("TLS: %s %s" % (obj.version(), obj.cipher()[0]))
    d = Dialog(r, w, a.timeout)
    for step in a.steps:
        op, _, arg = step.partition(":")
        if op == "r":
            await d.reply()
        elif op == "s":
            out("C: " + arg)
            await d.send(arg.encode("latin-1") + b"\r\n")
        elif op == "x":
            out("C: <raw %s>" % arg)
            await d.send(raw(arg))
        elif op == "long":
            out("C: <long %s>" % arg)
            await d.send(b"a" * int(arg) + b"\r\n")
        elif op == "big":
            out("C: <%s octets without CRLF>" % arg)
            await d.send(b"a" * int(arg))
        elif op == "tls":
            await d.starttls()
        elif op == "eof":
            await d.eof(float(arg or 5))
        elif op == "quiet":
            await d.quiet(float(arg))
        elif op == "sleep":
            await asyncio.sleep(float(arg))
        elif op in ("close", "reset"):
            if op == "reset":
                w.get_extra_info("socket").setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            w.transport.abort()
            d.closed = True
            out("CLOSED" if op == "close" else "RESET")
        elif op in ("pv1", "pv2"):
            src, sport, dst, dport = arg.split(":")
            if op == "pv1":
                hdr = ("PROXY TCP4 %s %s %s %s\r\n" % (src, dst, sport, dport)).encode()
            else:
                hdr = proxy_v2(src, sport, dst, dport)
            out("C: <PROXY %s %s:%s -> %s:%s>" % (op[1:], src, sport, dst, dport))
            await d.send(hdr)
        else:
            out("bad step %r" % step)
            return 2
    out("done")
    try:
        w.close()
    except Exception:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
