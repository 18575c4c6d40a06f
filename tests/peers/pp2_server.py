#!/usr/bin/env python3
"""pp2_server.py PORT LOG - an SMTP backend that decodes PROXY v2 TLVs.

Listens on 127.0.0.1:PORT.  Every connection must start with a PROXY v2
header (haproxy's proxy-protocol.txt section 2.2); it is decoded and logged
to LOG, one event a line, each prefixed with the connection number:

  N header v2 PROXY TCP4 src=IP:PORT dst=IP:PORT len=BODYLEN
  N header none|bad ...           no or a malformed v2 header
  N authority NAME                PP2_TYPE_AUTHORITY (0x02), the SNI
  N ssl client=0xNN verify=V      PP2_TYPE_SSL (0x20): client byte, verify
  N ssl-version VALUE             sub-TLV PP2_SUBTYPE_SSL_VERSION (0x21)
  N ssl-cn VALUE                  sub-TLV PP2_SUBTYPE_SSL_CN (0x22)
  N ssl-cipher VALUE              sub-TLV PP2_SUBTYPE_SSL_CIPHER (0x23)
  N ssl-sub 0xNN HEX              any other sub-TLV
  N tlv 0xNN HEX                  any other TLV
  N tlv-error WHAT                a TLV that overruns its container
  N C: LINE                       an SMTP command
  N close

Then it speaks minimal SMTP: "220 pp2.test ESMTP", EHLO/HELO get 250,
MAIL/RCPT/RSET/NOOP 250, DATA 354 and 250 after the dot, QUIT 221.
Prints "ready" once listening; runs until killed.
"""
import asyncio
import ipaddress
import struct
import sys

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def printable(b):
    s = b.decode("latin-1")
    return "".join(c if 32 <= ord(c) < 127 else "\\x%02x" % ord(c) for c in s)


class Server:
    def __init__(self, log):
        self.n = 0
        self.log = open(log, "a", buffering=1, encoding="latin-1")

    def event(self, n, text):
        self.log.write("%d %s\n" % (n, text))

    def tlvs(self, n, data, sub=False):
        i = 0
        while i < len(data):
            if i + 3 > len(data):
                self.event(n, "tlv-error truncated TLV header at %d" % i)
                return
            t = data[i]
            ln = struct.unpack("!H", data[i + 1:i + 3])[0]
            v = data[i + 3:i + 3 + ln]
            if len(v) != ln:
                self.event(n, "tlv-error TLV 0x%02x length %d overruns %d" %
                           (t, ln, len(data) - i - 3))
                return
            i += 3 + ln
            if sub:
                name = {0x21: "ssl-version", 0x22: "ssl-cn",
                        0x23: "ssl-cipher"}.get(t)
                if name:
                    self.event(n, "%s %s" % (name, printable(v)))
                else:
                    self.event(n, "ssl-sub 0x%02x %s" % (t, v.hex()))
            elif t == 0x02:
                self.event(n, "authority %s" % printable(v))
            elif t == 0x20:
                if len(v) < 5:
                    self.event(n, "tlv-error PP2_TYPE_SSL of %d bytes" % len(v))
                    continue
                self.event(n, "ssl client=0x%02x verify=%d" %
                           (v[0], struct.unpack("!I", v[1:5])[0]))
                self.tlvs(n, v[5:], sub=True)
            else:
                self.event(n, "tlv 0x%02x %s" % (t, v.hex()))

    async def header(self, n, r):
        try:
            hdr = await asyncio.wait_for(r.readexactly(16), 5)
        except (asyncio.TimeoutError, asyncio.IncompleteReadError):
            self.event(n, "header none (nothing within 5 s)")
            return False
        if hdr[:12] != V2_SIG:
            self.event(n, "header none %s" % printable(hdr))
            return False
        ver_cmd, fam = hdr[12], hdr[13]
        ln = struct.unpack("!H", hdr[14:16])[0]
        body = await r.readexactly(ln)
        if ver_cmd != 0x21:
            self.event(n, "header bad ver/cmd 0x%02x" % ver_cmd)
            return False
        if fam == 0x11 and ln >= 12:
            src = ipaddress.IPv4Address(body[0:4])
            dst = ipaddress.IPv4Address(body[4:8])
            sp, dp = struct.unpack("!HH", body[8:12])
            self.event(n, "header v2 PROXY TCP4 src=%s:%d dst=%s:%d len=%d" %
                       (src, sp, dst, dp, ln))
            self.tlvs(n, body[12:])
        elif fam == 0x21 and ln >= 36:
            src = ipaddress.IPv6Address(body[0:16])
            dst = ipaddress.IPv6Address(body[16:32])
            sp, dp = struct.unpack("!HH", body[32:36])
            self.event(n, "header v2 PROXY TCP6 src=[%s]:%d dst=[%s]:%d len=%d"
                       % (src, sp, dst, dp, ln))
            self.tlvs(n, body[36:])
        else:
            self.event(n, "header bad family 0x%02x len=%d" % (fam, ln))
            return False
        return True

    async def session(self, r, w):
        self.n += 1
        n = self.n
        try:
            if not await self.header(n, r):
                return
            w.write(b"220 pp2.test ESMTP\r\n")
            await w.drain()
            while True:
                line = await r.readline()
                if not line:
                    break
                cmd = line.rstrip(b"\r\n").decode("latin-1")
                self.event(n, "C: " + cmd)
                verb = cmd.split(" ", 1)[0].upper()
                if verb == "EHLO":
                    w.write(b"250-pp2.test\r\n250 8BITMIME\r\n")
                elif verb in ("HELO", "MAIL", "RCPT", "RSET", "NOOP"):
                    w.write(b"250 2.0.0 Ok\r\n")
                elif verb == "DATA":
                    w.write(b"354 go ahead\r\n")
                    await w.drain()
                    while True:
                        d = await r.readline()
                        if not d or d.rstrip(b"\r\n") == b".":
                            break
                    w.write(b"250 2.0.0 Ok: queued as PP2\r\n")
                elif verb == "QUIT":
                    w.write(b"221 2.0.0 Bye\r\n")
                    await w.drain()
                    break
                else:
                    w.write(b"502 5.5.2 Error: command not recognized\r\n")
                await w.drain()
        except (OSError, ConnectionError, asyncio.IncompleteReadError,
                ValueError) as e:
            self.event(n, "error %s" % (str(e) or type(e).__name__))
        finally:
            self.event(n, "close")
            try:
                w.close()
            except Exception:
                pass


async def main():
    port, log = int(sys.argv[1]), sys.argv[2]
    srv = Server(log)
    server = await asyncio.start_server(srv.session, "127.0.0.1", port,
                                        reuse_address=True)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
