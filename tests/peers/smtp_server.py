#!/usr/bin/env python3
"""smtp_server.py PORT LOG [options] - a scriptable (mis)behaving SMTP server.

An asyncio SMTP server on 127.0.0.1:PORT (--addr: another address), used
as the upstream of client routes and as the backend of server routes.  It
logs what it receives, one line per event, to LOG (flushed at once), each
prefixed with the connection number (1, 2, ...):

  N connect from IP:PORT
  N proxy v1 PROXY TCP4 SRC DST SPORT DPORT   (--proxy: the header read)
  N proxy v2 PROXY TCP4 src=IP:PORT dst=IP:PORT   (or "v2 LOCAL", "none")
  N C: LINE        a command line received in plaintext
  N T: LINE        a command line received inside TLS
  N body: LINE     a line of message content (after DATA's 354, or in a
                   BDAT chunk)
  N tls ok VERSION | N tls failed REASON | N tls alert-sent
  N sni NAME       (--log-sni) the server name the client sent in its
                   ClientHello ("N sni -": none), after "tls ok" (not
                   after a failed handshake)
  N close

Behaviour (RAW arguments take Python escapes: \\r \\n \\x01 ...):
  --greeting RAW        the greeting (default: a two-line 220)
  --ehlo RAW            EHLO reply in plaintext (default: advertises
                        "starttls" in lower case on a middle line)
  --ehlo-tls RAW        EHLO reply inside TLS (default: STARTTLS on the
                        last line, so a proxy that removes it must fix the
                        separator of the line before)
  --starttls-reply RAW  the reply to STARTTLS (default "220 2.0.0 Ready to
                        start TLS"); a reply that does not start with "220"
                        leaves the session in plaintext
  --handshake ok|alert  alert: read the ClientHello, answer with a fatal TLS
                        handshake_failure alert and close
  --on-ehlo reply|close|silent   what to do with the first EHLO/HELO of a
                        connection (close: hang up; silent: never answer)
  --data-reply RAW      the reply to DATA (default 354); a reply that does
                        not start with "354" leaves the session in commands
  --dribble             write every reply one octet at a time, 2 ms apart
                        (replies split across many segments / TLS records)
  --proxy               expect a HAProxy PROXY v1/v2 header first (the
                        greeting is sent after it; no header within 5 s:
                        "proxy timeout" and hang up, as Postfix does)
  --addr IP             listen on IP instead of 127.0.0.1 (Linux lets a
                        server bind any 127.0.0.0/8 address: the DNS tests
                        put MX hosts on 127.0.0.2 and 127.0.0.3); an IPv6
                        address (::1) listens on IPv6 only, and "connect
                        from" then shows the peer as [IP]:PORT
  --rset-reply RAW      the reply to RSET (default "250 2.0.0 Ok")
  --after-rset MODE[:S] S seconds (0.3) after answering an RSET with no
                        command since: close (hang up), 421 (say so and
                        hang up) or noise (a stray 250 line; the session
                        goes on).  Logs "N after-rset MODE".
  --log-sni             log the SNI of each handshake ("N sni NAME"), read
                        with SSLContext.sni_callback
  --cert F --key F      certificate for STARTTLS (default: no TLS; STARTTLS
                        then gets 454)
  --implicit            implicit TLS (needs --cert): the handshake comes
                        first ("N tls ok VERSION"), every command is a "T:"
                        line and the greeting follows the handshake
  --fault STAGE[:MODE]  misbehave at STAGE, on every connection:
                          greeting  before sending the greeting (after the
                                    PROXY header; with --implicit after the
                                    handshake)
                          mail, rcpt  after receiving MAIL / RCPT (logged),
                                    instead of the reply
                          data      after 354, once the first body line
                                    arrived (logged)
                          dot       after the final ".", before the reply
                        MODE: close (default: hang up; inside TLS with
                        close_notify), reset (SO_LINGER 0: an RST, nothing
                        more), silent (never answer again; read and discard
                        until the peer closes).  Logs "N fault STAGE MODE".
  --partial-reply RAW   at the fault, send RAW first (e.g. the first line of
                        a multi-line reply: "250-first line\\r\\n")
  --cork                with --partial-reply: TCP_CORK the socket first, so
                        that RAW and what the fault sends next (a TLS
                        close_notify) leave together, in one segment, after
                        the kernel's 200 ms cork ceiling
Prints "ready" once listening; runs until killed.
"""
import argparse
import asyncio
import ipaddress
import socket
import ssl
import struct
import sys

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"
ALERT_HANDSHAKE_FAILURE = b"\x15\x03\x03\x00\x02\x02\x28"
FAULT_STAGES = ("greeting", "mail", "rcpt", "data", "dot")
FAULT_MODES = ("close", "reset", "silent")


def fault_arg(s):
    stage, _, mode = s.partition(":")
    mode = mode or "close"
    if stage not in FAULT_STAGES or mode not in FAULT_MODES:
        raise argparse.ArgumentTypeError(
            "STAGE[:MODE]: STAGE one of %s, MODE one of %s" %
            ("|".join(FAULT_STAGES), "|".join(FAULT_MODES)))
    return (stage, mode)


def raw(s):
    return s.encode("latin-1").decode("unicode_escape").encode("latin-1")


class Server:
    def __init__(self, a):
        self.a = a
        self.n = 0
        self.log = open(a.log, "a", buffering=1, encoding="latin-1")
        self.ctx = None
        if a.cert:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(a.cert, a.key or a.cert)
            if a.log_sni:
                self.ctx.sni_callback = self.on_sni

    @staticmethod
    def on_sni(obj, name, ctx):
        """ClientHello: remember the server name (None: none) on the
        SSLObject; the session logs it once the handshake is over."""
        obj.tp_sni = name
        return None

    def log_sni(self, n, obj):
        if self.a.log_sni and obj is not None:
            self.event(n, "sni %s" % (getattr(obj, "tp_sni", None) or "-"))

    async def send(self, w, data):
        """Write DATA; with --dribble one octet at a time, 2 ms apart."""
        if not self.a.dribble:
            w.write(data)
            await w.drain()
            return
        for i in range(len(data)):
            w.write(data[i:i + 1])
            await w.drain()
            await asyncio.sleep(0.002)

    def event(self, n, text):
        self.log.write("%d %s\n" % (n, text))

    async def fault(self, n, stage, r, w):
        """--fault at STAGE: do it and return True (the session then ends;
        after a reset the transport is gone already), else False."""
        a = self.a
        if a.fault is None or a.fault[0] != stage:
            return False
        mode = a.fault[1]
        if a.partial_reply is not None:
            if a.cork:
                w.get_extra_info("socket").setsockopt(
                    socket.IPPROTO_TCP, socket.TCP_CORK, 1)
            w.write(raw(a.partial_reply))
            await w.drain()
        self.event(n, "fault %s %s" % (stage, mode))
        if mode == "silent":
            while await r.read(65536):
                pass
        elif mode == "reset":
            sock = w.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                            struct.pack("ii", 1, 0))
            w.transport.abort()
        return True

    async def read_proxy(self, n, r):
        """Read a PROXY header (waiting at most 5 s, like Postfix); return
        bytes read that were not part of one, or None to hang up."""
        try:
            head = await asyncio.wait_for(r.readexactly(5), 5)
        except asyncio.TimeoutError:
            self.event(n, "proxy timeout")
            return None
        if head == b"PROXY":
            line = head + await r.readuntil(b"\n")
            self.event(n, "proxy v1 " + line.rstrip(b"\r\n").decode("latin-1"))
            return b""
        if head != V2_SIG[:5]:
            self.event(n, "proxy none")
            return head
        rest = await r.readexactly(16 - 5)
        hdr = head + rest
        if hdr[:12] != V2_SIG:
            self.event(n, "proxy bad-v2-signature")
            return b""
        ver_cmd, fam, ln = hdr[12], hdr[13], struct.unpack("!H", hdr[14:16])[0]
        body = await r.readexactly(ln)
        if ver_cmd >> 4 != 2:
            self.event(n, "proxy v2 bad-version %d" % (ver_cmd >> 4))
        elif ver_cmd & 0xF == 0:
            self.event(n, "proxy v2 LOCAL")
        elif fam == 0x11 and ln >= 12:
            src, dst = ipaddress.IPv4Address(body[0:4]), ipaddress.IPv4Address(body[4:8])
            sp, dp = struct.unpack("!HH", body[8:12])
            self.event(n, "proxy v2 PROXY TCP4 src=%s:%d dst=%s:%d" % (src, sp, dst, dp))
        elif fam == 0x21 and ln >= 36:
            src, dst = ipaddress.IPv6Address(body[0:16]), ipaddress.IPv6Address(body[16:32])
            sp, dp = struct.unpack("!HH", body[32:36])
            self.event(n, "proxy v2 PROXY TCP6 src=[%s]:%d dst=[%s]:%d" % (src, sp, dst, dp))
        else:
            self.event(n, "proxy v2 family=0x%02x len=%d" % (fam, ln))
        return b""

    async def session(self, r, w):
        self.n += 1
        n = self.n
        peer = w.get_extra_info("peername")
        if ":" in peer[0]:
            self.event(n, "connect from [%s]:%d" % peer[:2])
        else:
            self.event(n, "connect from %s:%d" % peer[:2])
        a = self.a
        tls = a.implicit
        first_ehlo = True
        pre = b""
        try:
            if tls:
                obj = w.get_extra_info("ssl_object")
                self.event(n, "tls ok %s" % obj.version())
                self.log_sni(n, obj)
            if a.proxy:
                pre = await self.read_proxy(n, r)
                if pre is None:
                    return
            if await self.fault(n, "greeting", r, w):
                return
            await self.send(w, raw(a.greeting))
            await w.drain()
            while True:
                line = pre + await r.readline()
                pre = b""
                if not line:
                    break
                cmd = line.rstrip(b"\r\n").decode("latin-1")
                self.event(n, ("T: " if tls else "C: ") + cmd)
                verb = cmd.split(" ", 1)[0].upper()
                if verb in ("EHLO", "HELO") and first_ehlo:
                    first_ehlo = False
                    if a.on_ehlo == "close":
                        break
                    if a.on_ehlo == "silent":
                        await r.read()
                        break
                if verb == "EHLO":
                    await self.send(w, raw(a.ehlo_tls if tls else a.ehlo))
                elif verb == "HELO":
                    await self.send(w, b"250 upstream.test\r\n")
                elif verb == "STARTTLS" and not tls:
                    if self.ctx is None:
                        await self.send(w, b"454 4.7.0 TLS not available\r\n")
                        continue
                    reply = raw(a.starttls_reply)
                    if reply.startswith(b"220") and a.handshake == "ok":
                        # Leave the ClientHello in the socket until
                        # start_tls takes the transport over (else the
                        # plaintext reader could swallow it).
                        w.transport.pause_reading()
                    await self.send(w, reply)
                    await w.drain()
                    if not reply.startswith(b"220"):
                        continue
                    if a.handshake == "alert":
                        try:
                            await asyncio.wait_for(r.read(1), 5)
                        except asyncio.TimeoutError:
                            pass
                        await self.send(w, ALERT_HANDSHAKE_FAILURE)
                        await w.drain()
                        self.event(n, "tls alert-sent")
                        break
                    try:
                        await asyncio.wait_for(w.start_tls(self.ctx), 10)
                    except (ssl.SSLError, OSError, asyncio.TimeoutError,
                            ConnectionError) as e:
                        self.event(n, "tls failed %s" % (str(e) or type(e).__name__))
                        break
                    tls = True
                    obj = w.get_extra_info("ssl_object")
                    self.event(n, "tls ok %s" % obj.version())
                    self.log_sni(n, obj)
                    first_ehlo = False
                elif verb == "STARTTLS":
                    await self.send(w, b"503 5.5.1 Error: TLS already active\r\n")
                elif verb == "RSET" and a.rset_reply is not None:
                    await self.send(w, raw(a.rset_reply))
                elif verb == "RSET" and a.after_rset is not None:
                    await self.send(w, b"250 2.0.0 Ok\r\n")
                    await w.drain()
                    mode, _, secs = a.after_rset.partition(":")
                    try:
                        pre = await asyncio.wait_for(
                            r.readline(), float(secs or "0.3"))
                        if not pre:
                            break
                        continue
                    except asyncio.TimeoutError:
                        pass
                    self.event(n, "after-rset %s" % mode)
                    if mode == "421":
                        await self.send(w, b"421 4.4.2 upstream.test Error: timeout exceeded\r\n")
                    elif mode == "noise":
                        await self.send(w, b"250 2.0.0 stray\r\n")
                        await w.drain()
                        continue
                    await w.drain()
                    break
                elif verb in ("MAIL", "RCPT", "RSET", "NOOP"):
                    if await self.fault(n, verb.lower(), r, w):
                        break
                    await self.send(w, b"250 2.0.0 Ok\r\n")
                elif verb == "DATA":
                    reply = raw(a.data_reply)
                    await self.send(w, reply)
                    if not reply.startswith(b"354"):
                        continue
                    first = True
                    while True:
                        d = await r.readline()
                        if not d:
                            break
                        d = d.rstrip(b"\r\n")
                        if d == b".":
                            break
                        self.event(n, "body: " + d.decode("latin-1"))
                        if first and await self.fault(n, "data", r, w):
                            return
                        first = False
                    if d == b"." and await self.fault(n, "dot", r, w):
                        break
                    await self.send(w, b"250 2.0.0 Ok: queued as TEST\r\n")
                elif verb == "BDAT":
                    parts = cmd.split()
                    size = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
                    chunk = await r.readexactly(size)
                    for d in chunk.split(b"\n"):
                        if d:
                            self.event(n, "body: " + d.rstrip(b"\r").decode("latin-1"))
                    await self.send(w, b"250 2.0.0 Ok: %d octets\r\n" % size)
                elif verb == "QUIT":
                    await self.send(w, b"221 2.0.0 Bye\r\n")
                    await w.drain()
                    break
                else:
                    await self.send(w, b"502 5.5.2 Error: command not recognized\r\n")
                await w.drain()
        except (OSError, ConnectionError, asyncio.IncompleteReadError,
                asyncio.LimitOverrunError, ssl.SSLError, ValueError) as e:
            self.event(n, "error %s" % (str(e) or type(e).__name__))
        finally:
            self.event(n, "close")
            try:
                w.close()
            except Exception:
                pass


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("log")
    ap.add_argument("--greeting",
                    default=r"220-upstream.test ESMTP first line\r\n220 upstream.test second line\r\n")
    ap.add_argument("--ehlo",
                    default=r"250-upstream.test\r\n250-PIPELINING\r\n250-starttls\r\n250 8BITMIME\r\n")
    ap.add_argument("--ehlo-tls",
                    default=r"250-upstream.test\r\n250-PIPELINING\r\n250-SIZE 1000000\r\n250 STARTTLS\r\n")
    ap.add_argument("--starttls-reply", default=r"220 2.0.0 Ready to start TLS\r\n")
    ap.add_argument("--handshake", choices=("ok", "alert"), default="ok")
    ap.add_argument("--on-ehlo", choices=("reply", "close", "silent"), default="reply")
    ap.add_argument("--data-reply", default=r"354 End data with <CR><LF>.<CR><LF>\r\n")
    ap.add_argument("--dribble", action="store_true")
    ap.add_argument("--proxy", action="store_true")
    ap.add_argument("--addr", default="127.0.0.1")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--implicit", action="store_true")
    ap.add_argument("--fault", type=fault_arg)
    ap.add_argument("--partial-reply")
    ap.add_argument("--cork", action="store_true")
    ap.add_argument("--log-sni", action="store_true")
    ap.add_argument("--rset-reply")
    ap.add_argument("--after-rset")
    a = ap.parse_args()
    if a.implicit and not a.cert:
        ap.error("--implicit needs --cert")
    srv = Server(a)
    server = await asyncio.start_server(srv.session, a.addr, a.port,
                                        limit=1 << 20, reuse_address=True,
                                        ssl=srv.ctx if a.implicit else None)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
