#!/usr/bin/env python3
"""mkcorpus.py - (re)write the seed corpora under tests/fuzz/corpus/.

Each target's input format is described at the top of its fuzz_*.c; the
seeds cover the happy paths, injections, long lines and the other cases
the unit tests pin down, so the fuzzers start from deep protocol states.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


GREETING = b"220-mx.example ESMTP Postfix\r\n220 ready\r\n"
EHLO_TLS = (b"250-mx.example\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
            b"250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250 8BITMIME\r\n")
EHLO_NOTLS = b"250-mx.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n"


def line():
    t = "smtp_line"
    write(t, "greeting", b"\x02\x00" + GREETING)
    write(t, "greeting-split", b"\x02\x01" + GREETING)
    write(t, "ehlo-starttls", b"\x03\x05" + EHLO_TLS)
    write(t, "bare-lf", b"\x02\x03250-a\n250-STARTTLS\n250 b\n\n")
    write(t, "too-long", b"\x03\x06" + b"250 " + b"a" * 3000 + b"\r\n250 ok\r\n")
    write(t, "max-510", b"\x02\x07" + b"x" * 510 + b"\r\n" + b"y" * 511 +
          b"\r\n" + b"z" * 510 + b"\n")
    write(t, "cr-at-edge", b"\x01\x02" + b"a" * 63 + b"\r" + b"\n" +
          b"b" * 64 + b"\r\r\n")
    write(t, "malformed", b"\x02\x04199 x\r\n600 y\r\n25x\r\n250ok\r\n"
          b"2500 z\r\n\r\n250\r\n")
    write(t, "code-change", b"\x02\x00250-a\r\n251 b\r\n220-a\r\n220 b\r\n")
    write(t, "101-lines", b"\x02\x06" + b"250-x\r\n" * 101 + b"250 x\r\n")
    write(t, "nonprintable", b"\x02\x01250 caf\xc3\xa9\r\n250 a\x00b\r\n"
          b"250 \x1b[0m\r\n")
    write(t, "starttls-words", b"\x02\x02250-mx\r\n250-STARTTLSX\r\n"
          b"250-starttls\r\n250 STARTTLS x\r\nSTARTTLS\r\nehlo  x\r\n")
    write(t, "max-1", b"\x00\x01a\r\nbb\r\n\r\nc\n")
    # spec 5: reported at the octet that passes the bound, LF or not
    write(t, "long-no-lf", b"\x01\x05" + b"2" * 3000)
    write(t, "long-then-good", b"\x01\x03" + b"a" * 65 + b"\r\n250 ok\r\n" +
          b"b" * 200 + b"\nc\n")
    write(t, "cr-boundary", b"\x01\x01" + b"a" * 64 + b"\rx\r\n" + b"b" * 64 +
          b"\r\r\n" + b"c" * 63 + b"\r\r\n" + b"d" * 64 + b"\r\n")


def client():
    t = "smtp_client"
    happy = GREETING + EHLO_TLS + b"220 2.0.0 Ready to start TLS\r\n"
    write(t, "happy-encrypt", b"\x00\x00" + happy)
    write(t, "happy-bytewise", b"\x00\x01" + happy)
    write(t, "happy-may-split", b"\x01\x05" + happy)
    write(t, "no-starttls-may", b"\x01\x00" + GREETING + EHLO_NOTLS)
    write(t, "no-starttls-encrypt", b"\x00\x02" + GREETING + EHLO_NOTLS)
    write(t, "refused-454", b"\x00\x03" + GREETING + EHLO_TLS +
          b"454 4.7.0 TLS not available due to local problem\r\n")
    write(t, "injection", b"\x00\x00" + GREETING + EHLO_TLS +
          b"220 ok\r\nX")
    write(t, "injection-reply", b"\x00\x04" + GREETING + EHLO_TLS +
          b"220 ok\r\n250 injected\r\n")
    write(t, "early-data", b"\x01\x00220 hi\r\n250 early\r\n")
    write(t, "long-line", b"\x01\x06220 " + b"x" * 2100 + b"\r\n")
    write(t, "malformed", b"\x01\x00hello\r\n")
    write(t, "greeting-554", b"\x01\x02554-5.7.1 go away\r\n554 bye\r\n")
    write(t, "plain-only", b"\x02\x00" + GREETING)
    write(t, "101-lines", b"\x01\x07" + GREETING + b"250-x\r\n" * 101 +
          b"250 x\r\n")
    write(t, "timeout-midreply", b"\x05\x00" + GREETING + b"250-mx\r\n250-P")
    write(t, "long-greeting", b"\x00\x07220 " + b"g" * 2044 + b"\r\n" +
          EHLO_TLS + b"220\n")
    # an upstream greeting that never ends: 421 at octet 2049
    write(t, "long-greeting-no-lf", b"\x00\x06" + b"2" * 5000)


def server():
    t = "smtp_server"
    sep = b"\x00\x00\x00\x00"
    backend = b"220 backend ESMTP\r\n250-backend\r\n250 PIPELINING\r\n"
    write(t, "starttls-injection", b"\x01\x00EHLO c\r\nSTARTTLS\r\n"
          b"MAIL FROM:<evil@example>\r\n")
    write(t, "starttls-bytewise", b"\x11\x01EHLO c\r\nSTARTTLS\r\nQUIT\r\n")
    write(t, "may-plaintext", b"\x00\x00HELO a\r\nEHLO c.example\r\n"
          b"MAIL FROM:<a@example>\r\nRCPT TO:<b@example>\r\n" + sep + backend)
    write(t, "may-plaintext-nohelo", b"\x00\x03MAIL FROM:<>\r\n" + sep +
          b"220-b\r\n220 b\r\n")
    write(t, "encrypt-530", b"\x01\x02EHLO c\r\nMAIL FROM:<a>\r\nDATA\r\n"
          b"QUIT\r\n")
    bad = b"NOOP " + b"b" * 508 + b"\r\n"
    write(t, "long-lines", b"\x01\x05" + bad + b"NOOP\r\n" + bad + bad +
          b"NOOP\r\n")
    write(t, "too-many-errors", b"\x00\x00" + b"EHLO\r\n" * 12)
    write(t, "pipelined", b"\x04\x00EHLO a\r\nNOOP\r\nNOOP\r\nHELP\r\n"
          b"RSET\r\nQUIT\r\n")
    caps = b"".join(bytes([65 + i % 26]) + b"\n" for i in range(511))
    # 511 one-letter keywords after a burst: the EHLO reply outgrows the
    # output buffer's margin (reply() ran past it before the room check).
    write(t, "huge-caps", b"\x0c\x00" + len(caps).to_bytes(2, "big") + caps
          + b"NOOP\r\n" * 35 + b"EHLO x\r\n" * 4)
    caps = (b"PIPELINING\nSIZE 5000\nCHUNKING\nAUTH PLAIN LOGIN\nSTARTTLS\n"
            b"8BITMIME\nDSN\n")
    write(t, "caps-auth-only", b"\x0a\x02" + len(caps).to_bytes(2, "big") +
          caps + b"EHLO c\r\nSTARTTLS\r\n")
    write(t, "caps-size", b"\x0c\x00" + len(caps).to_bytes(2, "big") + caps +
          b"ehlo c\r\nmail from:<>\r\n" + sep + backend)
    caps = b"K" * 600 + b"\nDSN\n"
    write(t, "long-keyword", b"\x08\x00" + len(caps).to_bytes(2, "big") +
          caps + b"EHLO c\r\n")
    write(t, "backend-refused", b"\x00\x00EHLO c\r\nMAIL FROM:<>\r\n" + sep +
          b"554 5.3.2 busy\r\n")
    write(t, "backend-malformed", b"\x00\x01EHLO c\r\nVRFY x\r\n" + sep +
          b"220 b\r\nhello\r\n")
    write(t, "backend-long", b"\x00\x06EHLO c\r\nVRFY x\r\n" + sep +
          b"220 " + b"l" * 2100 + b"\r\n")
    write(t, "nul-commands", b"\x00\x00EHLO a\x00b\r\nMAIL FROM:<a>\x00x\r\n"
          b"\x00\r\nEHLO c\r\nMAIL FROM:<a>\r\n" + sep + backend)
    write(t, "starttls-arg", b"\x10\x00STARTTLS x\r\nstarttls\r\n")
    # spec 5: 500 at octet 511, the rest to LF silent, the third 421
    write(t, "long-no-lf", b"\x00\x06" + b"a" * 3000 + b"\nNOOP\r\n" +
          b"b" * 600 + b"\r\n" + b"c" * 700)
    # spec 5: a client never speaks for the proxy
    caps = (b"PIPELINING\nXCLIENT NAME ADDR PROTO HELO\nxforward NAME ADDR\n"
            b"PIPECONNECT\nDSN\n")
    write(t, "xclient", b"\x08\x00" + len(caps).to_bytes(2, "big") + caps +
          b"EHLO c\r\nXCLIENT ADDR=1.2.3.4\r\n\tXFORWARD\tNAME=x\r\n"
          b"MAIL FROM:<a@example>\r\n" + sep + backend)


def ops(session):
    """Encode [(side, bytes)] as control byte + payload operations."""
    out = bytearray()
    for side, data in session:
        for i in range(0, len(data), 128):
            piece = data[i:i + 128]
            out.append(((len(piece) - 1) << 1) | (1 if side == "S" else 0))
            out += piece
    return bytes(out)


def filt():
    t = "smtp_filter"
    ehlo_reply = (b"250-mx.example\r\n250-PIPELINING\r\n250-STARTTLS\r\n"
                  b"250-CHUNKING\r\n250 STARTTLS\r\n")
    body = (b"Subject: STARTTLS\r\n\r\nSTARTTLS\r\nEHLO x\r\n.foo\r\n"
            b"DATA\r\n.\r\n")
    write(t, "ehlo", b"\x00" + ops([("C", b"EHLO c\r\n"), ("S", ehlo_reply)]))
    write(t, "ehlo-bytewise", b"\x01" + ops([("C", b"EHLO c\r\n"),
                                             ("S", ehlo_reply)]))
    write(t, "pipelined-starttls", b"\x05" + ops([
        ("C", b"NOOP\r\nSTARTTLS\r\nNOOP\r\n"), ("S", b"250 2.0.0 Ok\r\n"),
        ("S", b"250 2.0.0 Ok\r\n")]))
    write(t, "data-body", b"\x02" + ops([
        ("C", b"MAIL FROM:<a>\r\nRCPT TO:<b>\r\nDATA\r\n"),
        ("S", b"250 ok\r\n250 ok\r\n354 go\r\n"), ("C", body),
        ("C", b"STARTTLS\r\nQUIT\r\n"), ("S", b"250 queued\r\n221 bye\r\n")]))
    write(t, "data-refused", b"\x03" + ops([
        ("C", b"DATA\r\nSTARTTLS\r\nNOOP\r\n"), ("S", b"554 no\r\n"),
        ("S", b"250 ok\r\n")]))
    write(t, "bdat", b"\x04" + ops([
        ("C", b"BDAT 16\r\nSTARTTLS\r\nDATA\r\nBDAT 3 LAST\r\nEHL"),
        ("S", b"250 16 octets\r\n250 ok\r\n"), ("C", b"STARTTLS\r\n")]))
    longst = b"STARTTLS" + b" " * 200 + b"\r\n"
    write(t, "starttls-variants", b"\x06" + ops([
        ("C", b" STARTTLS\r\nSTARTTLS\t\r\nstarttls x\r\n" + longst +
         b"STARTTLSX\r\n"), ("S", b"500 unknown\r\n")]))
    write(t, "long-commands", b"\x07" + ops([
        ("C", b"MAIL FROM:<" + b"a" * 300 + b">\r\nEHLO " + b"h" * 300 +
         b"\r\n"), ("S", b"250 ok\r\n250-mx\r\n250 STARTTLS\r\n")]))
    write(t, "queue-full", b"\x00" + ops([("C", b"NOOP\r\n" * 70)] +
                                         [("S", b"250 ok\r\n")] * 70))
    big = b"250-mx.example\r\n250-STARTTLS\r\n" + b"".join(
        b"250-X-%080d\r\n" % i for i in range(60)) + b"250 STARTTLS\r\n"
    write(t, "ehlo-oversized", b"\x06" + ops([("C", b"EHLO c\r\nNOOP\r\n"),
                                              ("S", big), ("S", b"250 ok\r\n")]))
    write(t, "ehlo-last-bare", b"\x02" + ops([
        ("C", b"EHLO c\r\nEHLO d\r\n"),
        ("S", b"250-mx\r\n250-STARTTLS\r\n250\r\n250-mx\n250\n")]))
    write(t, "session", b"\x05" + ops([
        ("C", b"EHLO client.example\r\n"), ("S", ehlo_reply),
        ("C", b"STARTTLS\r\n"),
        ("C", b"MAIL FROM:<a@example>\r\nRCPT TO:<b@example>\r\nDATA\r\n"),
        ("S", b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go ahead\r\n"),
        ("C", body), ("C", b"NOOP\r\nSTARTTLS\r\nEHLO again\r\n"),
        ("S", b"250 2.0.0 Ok: queued\r\n250 2.0.0 Ok\r\n"),
        ("S", b"250-mx.example\r\n250-STARTTLS\r\n250 8BITMIME\r\n"),
        ("C", b"RSET\r\nQUIT\r\n"),
        ("S", b"250 2.0.0 Ok\r\n221 2.0.0 Bye\r\n")]))
    write(t, "unsolicited", b"\x01" + ops([
        ("S", b"421 4.4.2 timeout\r\n"), ("C", b"STARTTLS\r\n")]))
    write(t, "multiline-354", b"\x03" + ops([
        ("C", b"DATA\r\nSTARTTLS\r\n.\r\n"), ("S", b"354-go\r\n354 on\r\n"),
        ("S", b"250 ok\r\n")]))


FP = b"3B:0C:4C:79:0F:2A:8A:4E:8B:57:10:5B:3A:59:1E:E2:0D:6A:65:43:0C:AB:2B:63:3D:A4:97:1F:0C:11:91:9F"
HEX = b"a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"


def policy():
    """policy_map: a policy_file; its last line is also looked up."""
    t = "policy_map"
    write(t, "levels", b"a.example none\nb.example may\nc.example encrypt\n"
          b"d.example fingerprint match=" + FP + b"\ne.example verify\n"
          b"f.example secure match=nexthop:dot-nexthop\ng.example dane\n"
          b"h.example dane-only\ni.example MUST\nj.example "
          b"MUST_NOPEERMATCH\nx.y.g.example")
    write(t, "keys", b".example.com may\nexample.com secure\n"
          b"[mx.example.net]:25 encrypt\n[mx.example.net] verify\n"
          b"relay.example:587 encrypt\n[2001:db8::1]:25 may\n"
          b"[192.0.2.1] may\n.com none\na.b.c.example.com")
    write(t, "continued", b"# comment\n\npartner.example\n\tsecure\n"
          b"# inside\n    match=mx1.partner.example:mx2.partner.example\n"
          b"    { protocols = >=TLSv1.2\n      <=TLSv1.3 }\r\n"
          b"bank.example fingerprint { match = " + FP + b"\n  | " +
          FP[:59] + b" }\nsub.partner.example")
    write(t, "attributes", b"a.example encrypt protocols=!SSLv2:!SSLv3 "
          b"ciphers=high exclude=3DES:RC4,servername=mx.a.example\n"
          b"b.example dane { tlsa = 3 1 1 " + HEX + b" | 2 0 1 " + FP +
          b" } tlsa=3:1:1:" + HEX + b"\nc.example may connection_reuse=yes"
          b" enable_rpk=no policy_type=sts\nd.example secure tafile=x\n"
          b"b.example")
    write(t, "errors", b"  leading\nexample.com\nexample.com maybe\n"
          b"example.com may match=x\nexample.com may\n.x:25 may\n"
          b"[x may\n2001:db8::1 may\ne.example secure # c\n"
          b"f.example fingerprint match=AB:CD\ng.example secure {x\n"
          b"h.example secure =x {a=b}c\x00\nEXAMPLE.COM.")
    # a bracketed key longer than a host name (found by libFuzzer)
    write(t, "long-key", b"[" + b"a" * 262 + b"] may\n" + b"x." * 140 +
          b"example may\n." + b"a" * 300 + b" may\n" + b"b." * 200)
def gw_ops(session):
    """Encode [(kind, bytes)] for fuzz_smtp_gateway: M MTA, U upstream,
    L lost, A<n> how CONNECT is answered (0 ready, 1 451, 2 556)."""
    out = bytearray()
    for kind, data in session:
        if kind == "L":
            out.append(2)
            continue
        if kind == "A":
            out.append(3 | (data << 2))
            continue
        for i in range(0, len(data), 64):
            piece = data[i:i + 64]
            out.append(((len(piece) - 1) << 2) | (1 if kind == "U" else 0))
            out += piece
    return bytes(out)


def gateway():
    t = "smtp_gateway"
    ehlo_full = (b"250-mx.dst.example\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
                 b"250-8BITMIME\r\n250-DSN\r\n250 SMTPUTF8\r\n")
    ehlo_pipe = b"250-mx.dst.example\r\n250 PIPELINING\r\n"
    ehlo_none = b"250-mx.dst.example\r\n250 ENHANCEDSTATUSCODES\r\n"
    start = b"EHLO mta.example\r\nMAIL FROM:<s@src.example>\r\n"
    happy = [
        ("M", start + b"RCPT TO:<r@dst.example>\r\nRCPT TO:<x@other.example>"
         b"\r\nDATA\r\n"),
        ("U", ehlo_full), ("U", b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n"),
        ("M", b"Subject: x\r\n\r\n..dot\r\n.\r\nQUIT\r\n"),
        ("U", b"250 2.0.0 Ok: queued\r\n221 2.0.0 Bye\r\n")]
    write(t, "happy", b"\x00\x00" + gw_ops(happy))
    write(t, "happy-bytewise", b"\x01\x01" + gw_ops(happy))
    write(t, "happy-split", b"\x05\x00" + gw_ops(happy))
    write(t, "two-transactions", b"\x06\x00" + gw_ops([
        ("M", start + b"RCPT TO:<r@dst.example>\r\n"), ("U", ehlo_pipe),
        ("U", b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"), ("M", b"DATA\r\n"),
        ("U", b"354 go\r\n"), ("M", b"body\r\n.\r\n"),
        ("U", b"250 2.0.0 Ok\r\n"),
        ("M", b"MAIL FROM:<t@src.example>\r\nRCPT TO:<z@dst.example>\r\n"),
        ("U", b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"),
        ("M", b"RSET\r\n"), ("U", b"250 2.0.0 Ok\r\n"),
        ("M", b"MAIL FROM:<u@src.example>\r\nRCPT TO:<o@other.example>\r\n"),
        ("U", ehlo_full), ("U", b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"),
        ("M", b"QUIT\r\n")]))
    # flags bit 1: connection reuse (RSET, PARK, a kept upstream)
    write(t, "reuse-switch", b"\x06\x02" + gw_ops([
        ("M", start + b"RCPT TO:<r@dst.example>\r\n"), ("U", ehlo_pipe),
        ("U", b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"), ("M", b"DATA\r\n"),
        ("U", b"354 go\r\n"), ("M", b"body\r\n.\r\n"),
        ("U", b"250 2.0.0 Ok\r\n"),
        ("M", b"MAIL FROM:<t@src.example>\r\nRCPT TO:<z@other.example>\r\n"),
        ("U", b"250 2.0.0 Ok\r\n"), ("U", b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"),
        ("M", b"RSET\r\nMAIL FROM:<u@src.example>\r\nRCPT TO:<o@dst.example>\r\n"),
        ("U", b"250 2.0.0 Ok\r\n"), ("U", b"500 no\r\n"), ("U", ehlo_full),
        ("U", b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"), ("M", b"QUIT\r\n"),
        ("U", b"250 2.0.0 Ok\r\n")]))
    write(t, "reuse-quit", b"\x01\x03" + gw_ops([
        ("M", start + b"RCPT TO:<r@dst.example>\r\nDATA\r\n"),
        ("U", ehlo_full), ("U", b"250 ok\r\n250 ok\r\n354 go\r\n"),
        ("M", b"x\r\n.\r\nQUIT\r\n"), ("U", b"250 queued\r\n"),
        ("U", b"421 4.3.2 bye\r\n")]))
    write(t, "no-pipelining-params", b"\x02\x01" + gw_ops([
        ("M", b"EHLO m\r\nMAIL FROM:<s@src.example> BODY=8BITMIME SIZE=10 "
         b"RET=HDRS ENVID=x AUTH=<> SMTPUTF8 X-Y=1\r\nRCPT TO:<r@dst.example>"
         b" NOTIFY=NEVER ORCPT=rfc822;r@dst.example\r\n"
         b"RCPT TO:<q@dst.example>\r\nDATA\r\n"),
        ("U", ehlo_none), ("U", b"250 2.1.0 Ok\r\n"), ("U", b"250 2.1.5 r\r\n"),
        ("U", b"250 2.1.5 q\r\n"), ("U", b"354 go\r\n"),
        ("M", b".\r\n"), ("U", b"250 ok\r\n")]))
    write(t, "mail-refused", b"\x03\x00" + gw_ops([
        ("M", start + b"RCPT TO:<a@dst.example>\r\nRCPT TO:<b@dst.example>\r\n"
         b"DATA\r\nRCPT TO:<c@dst.example>\r\nRSET\r\n"),
        ("U", ehlo_pipe),
        ("U", b"553 5.7.1 rejected\r\n503 5.5.1 need MAIL\r\n"
         b"503 5.5.1 need MAIL\r\n554 no\r\n250 2.0.0 Ok\r\n"),
        ("M", start + b"RCPT TO:<a@dst.example>\r\n"),
        ("U", b"421 4.7.0 too many connections\r\n"),
        ("M", b"RCPT TO:<d@dst.example>\r\nDATA\r\n")]))
    write(t, "up-failed", b"\x04\x00" + gw_ops([
        ("A", 1), ("M", start + b"RCPT TO:<a@dst.example>\r\n"),
        ("A", 2), ("M", b"RCPT TO:<b@null.example>\r\n"),
        ("A", 0), ("M", b"RCPT TO:<c@dst.example>\r\nDATA\r\n"),
        ("U", ehlo_full), ("U", b"250 ok\r\n250 ok\r\n354 go\r\n")]))
    write(t, "lost-mid-body", b"\x07\x00" + gw_ops([
        ("M", start + b"RCPT TO:<a@dst.example>\r\nDATA\r\n"),
        ("U", ehlo_full), ("U", b"250 ok\r\n250 ok\r\n354 go\r\n"),
        ("M", b"Subject: half\r\n"), ("L", b""),
        ("M", b"rest\r\n.\r\nRCPT TO:<b@dst.example>\r\n"),
        ("M", b"MAIL FROM:<>\r\nRCPT TO:<c@dst.example>\r\n"),
        ("U", ehlo_pipe), ("M", b"RCPT TO:<d@dst.example>\r\n"), ("L", b""),
        ("M", b"DATA\r\nQUIT\r\n")]))
    long_line = b"NOOP " + b"x" * 2100 + b"\r\n"
    write(t, "long-lines", b"\x06\x00" + gw_ops([
        ("M", b"EHLO m\r\n" + long_line + b"NOOP\r\n" + long_line +
         b"MAIL FROM:<" + b"a" * 2050 + b">\r\n" + long_line + b"NOOP\r\n")]))
    write(t, "errors", b"\x02\x00" + gw_ops([
        ("M", b"FOO\r\nMAIL FROM:<a@b>\r\nRCPT TO:<a@b>\r\nDATA\r\nEHLO\r\n"
         b"VRFY x\r\n\r\nSTARTTLS\r\nEHLO m\r\nMAIL FROM:x\r\nRCPT TO:<a>\r\n"
         b"NOOP\r\n")]))
    write(t, "hostile-upstream", b"\x03\x00" + gw_ops([
        ("M", start + b"RCPT TO:<a@dst.example>\r\n"),
        ("U", b"250-mx\r\n251 code change\r\n"),
        ("M", b"RCPT TO:<b@dst.example>\r\n"), ("U", ehlo_full),
        ("U", b"250 ok\r\n250 ok\r\n250 unsolicited\r\n"),
        ("M", b"MAIL FROM:<>\r\nRCPT TO:<c@dst.example>\r\n"),
        ("U", ehlo_pipe), ("U", b"250 " + b"y" * 2100 + b"\r\n"),
        ("M", b"RCPT TO:<d@dst.example>\r\n"),
        ("U", b"421 4.4.2 idle timeout\r\n")]))
    # over TP_GW_REPLY_MAX; three at once compete for room in down_out
    big = b"".join(b"250-%060d\r\n" % i for i in range(64)) + b"250 end\r\n"
    write(t, "big-replies", b"\x00\x00" + gw_ops([
        ("M", start + b"RCPT TO:<a@dst.example>\r\n" +
         b"".join(b"RCPT TO:<r%d@dst.example>\r\n" % i for i in range(3)) +
         b"NOOP\r\n" * 20),
        ("U", ehlo_full), ("A", 0), ("U", b"250 ok\r\n" + big), ("A", 0),
        ("U", big * 3)]))
    write(t, "smtputf8", b"\x01\x00" + gw_ops([
        ("M", b"EHLO m\r\nMAIL FROM:<j\xc3\xb6rg@src.example> SMTPUTF8\r\n"
         b"RCPT TO:<r@dst.example>\r\nRCPT TO:<s@dst.example>\r\nRSET\r\n"
         b"MAIL FROM:<s@src.example> SMTPUTF8\r\n"
         b"RCPT TO:<\xc3\xa5@dst.example>\r\nRCPT TO:<r@dst.example>\r\n"),
        ("U", ehlo_pipe), ("U", b"250 ok\r\n250 ok\r\n")]))
    write(t, "helo-fallback", b"\x05\x01" + gw_ops([
        ("M", start + b"RCPT TO:<a@dst.example>\r\n"),
        ("U", b"502 5.5.2 Error: command not recognized\r\n"),
        ("U", b"554 5.7.1 go away\r\n"),
        ("M", b"RCPT TO:<a@dst.example>\r\n"), ("U", b"500 no\r\n"),
        ("U", b"250 mx\r\n"), ("U", b"250 ok\r\n"), ("U", b"250 ok\r\n"),
        ("M", b"EHLO again\r\n"), ("U", b"250 ok\r\n"),
        ("M", b"QUIT\r\n")]))


STS_P1 = (b"version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\n"
          b"mx: *.example.net\r\nmax_age: 604800\r\n")
STS_P2 = (b"version: STSv1\nmode: testing\nmx: MX1.Example.COM.\n"
          b"max_age: 86400")


def sts_entry(domain, sid, fetched, text, length=None):
    n = len(text) if length is None else length
    return (b"policy %s %s %d %d\n" % (domain, sid, fetched, n) + text +
            b"\n")


def sts():
    """mta_sts: every input is a policy, TXT lines and a cache file."""
    t = "mta_sts"
    write(t, "policy-crlf", STS_P1)
    write(t, "policy-lf", STS_P2)
    write(t, "policy-none", b"version: STSv1\nmode: none\nmax_age: 0\n")
    write(t, "policy-dups", b"\nmode:testing\nmode: enforce\nversion:\t"
          b"STSv1 \nmax_age: 31557600\nmax_age: x\nmx: a.example\n"
          b"mx: a.example\nfoo_bar: caf\xc3\xa9\n\n")
    write(t, "policy-bad", b"version: STSv1\nmode: enforce\n"
          b"max_age: 31557601\nmx: m*.example\nmx: a..b\n"
          b"key without colon\n\x00\r")
    write(t, "policy-long-mx", b"version: STSv1\nmode: enforce\n"
          b"max_age: 1\nmx: *." + b"a" * 63 + b"." + b"b" * 63 + b"." +
          b"c" * 63 + b"." + b"d" * 61 + b"\n")
    write(t, "txt-one", b"v=spf1 -all\nv=STSv1; id=20160831085700Z;\n"
          b"hello")
    write(t, "txt-two", b"\x05v=STSv1; id=abc\nv=STSv1;id=def; x=y")
    write(t, "txt-bad", b"\x01v=STSv1; id=abcdefghijklmnopqrstuvwxyz0123456"
          b"\nv=STSv1 ; id=a\nV=STSv1;\nv=STSv1; id=a; id=b")
    write(t, "txt-ext", b"v=STSv1; ext=!#$%&'()*+,-./:<>?@[]^_`{|}~; "
          b"id=" + b"9" * 32 + b";\t")
    write(t, "cache-two", b"# tlsproxy MTA-STS policy cache\n\n" +
          sts_entry(b"example.com", b"20160831085700Z", 1700000000,
                    STS_P1) +
          sts_entry(b"example.net", b"a1", 0, STS_P2))
    write(t, "cache-damaged", b"garbage\n" +
          sts_entry(b"example.com", b"x", 1, STS_P1, len(STS_P1) + 1) +
          sts_entry(b"Example.ORG.", b"y", 2, STS_P2) +
          sts_entry(b"bad_dom@in", b"z", 3, STS_P2) +
          b"policy example.net id 5 64")
    write(t, "cache-truncated", sts_entry(b"example.com", b"x", 1, STS_P1) +
          sts_entry(b"example.net", b"y", 2, STS_P2)[:-20])


if __name__ == "__main__":
    line()
    client()
    server()
    filt()
    policy()
    gateway()
    sts()
    sys.exit(0)
