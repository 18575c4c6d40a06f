#!/usr/bin/env python3
"""tls_client.py [options] PORT - one TLS client session for the server-TLS tests.

Connects to 127.0.0.1:PORT; with --starttls reads the greeting, sends EHLO
and STARTTLS first (implicit TLS otherwise).  Handshakes without verifying
the server, optionally with SNI and a client certificate, then reads the
greeting (inside TLS), sends "EHLO --ehlo" and QUIT.  Prints, flushed line by
line:

  local: IP:PORT               the client's own address (first line)
  tls: VERSION CIPHER          the handshake is done
  peer: SUBJECT-CN ISSUER-CN   the server certificate's CN and issuer CN
  peer-key: rsa|ec|other       its key type
  greeting: LINE               the last line of the greeting inside TLS
  ehlo: LINE                   the last line of the reply to EHLO
  quit: LINE                   the reply to QUIT
  error: WHAT                  where the session ended early and why
  done

Options: --starttls, --sni NAME (default: no SNI), --cert F --key F,
--max-tls 1.2|1.3, --ehlo NAME (default client.test), --timeout SECS (10),
--ciphers12 LIST (TLS 1.2 only, with these OpenSSL cipher suites, e.g.
ECDHE-ECDSA-AES128-GCM-SHA256 to accept only an ECDSA certificate).
Exit status 0 unless the connect failed.
"""
import argparse
import socket
import ssl
import subprocess
import sys


def out(s):
    print(s, flush=True)


class Closed(Exception):
    pass


def read_reply(s, buf):
    """One SMTP reply; returns (last line, rest of buffer)."""
    while True:
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            line = line.rstrip(b"\r").decode("latin-1")
            if len(line) < 4 or line[3] != "-":
                return line, buf
        d = s.recv(65536)
        if not d:
            raise Closed()
        buf += d


def cn_of(der):
    """(subject CN, issuer CN, key type) of a DER certificate, via openssl."""
    try:
        p = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout",
                            "-subject", "-issuer", "-nameopt", "multiline",
                            "-text"],
                           input=der, capture_output=True, timeout=10)
        text = p.stdout.decode("latin-1")
    except (OSError, subprocess.SubprocessError):
        return "?", "?", "?"
    subj = iss = "?"
    where = None
    for line in text.splitlines():
        t = line.strip()
        if line.startswith("subject="):
            where = "s"
        elif line.startswith("issuer="):
            where = "i"
        elif t.startswith("commonName") and where:
            v = t.split("=", 1)[1].strip()
            if where == "s":
                subj = v
            else:
                iss = v
        elif not line.startswith(" "):
            where = None
    kt = "other"
    if "rsaEncryption" in text:
        kt = "rsa"
    elif "id-ecPublicKey" in text:
        kt = "ec"
    return subj, iss, kt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--starttls", action="store_true")
    ap.add_argument("--sni")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--max-tls", choices=("1.2", "1.3"), default="1.3")
    ap.add_argument("--ehlo", default="client.test")
    ap.add_argument("--ciphers12")
    ap.add_argument("--timeout", type=float, default=10.0)
    a = ap.parse_args()

    try:
        s = socket.create_connection(("127.0.0.1", a.port), timeout=a.timeout)
    except OSError as e:
        out("connect failed: %s" % e)
        return 1
    out("local: %s:%d" % s.getsockname()[:2])
    buf = b""
    stage = "connect"
    try:
        if a.starttls:
            stage = "plain greeting"
            line, buf = read_reply(s, buf)
            stage = "plain EHLO"
            s.sendall(b"EHLO %s\r\n" % a.ehlo.encode())
            line, buf = read_reply(s, buf)
            stage = "STARTTLS"
            s.sendall(b"STARTTLS\r\n")
            line, buf = read_reply(s, buf)
            if not line.startswith("220"):
                out("error: STARTTLS refused: %s" % line)
                return 0
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if a.max_tls == "1.2":
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        if a.cert:
            ctx.load_cert_chain(a.cert, a.key or a.cert)
        if a.ciphers12:
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            ctx.set_ciphers(a.ciphers12)
        stage = "handshake"
        t = ctx.wrap_socket(s, server_hostname=a.sni,
                            do_handshake_on_connect=False)
        t.do_handshake()
        c = t.cipher()
        out("tls: %s %s" % (t.version(), c[0] if c else "?"))
        der = t.getpeercert(binary_form=True)
        if der:
            subj, iss, kt = cn_of(der)
            out("peer: %s %s" % (subj, iss))
            out("peer-key: %s" % kt)
        s = t
        buf = b""
        if not a.starttls:
            stage = "greeting"
            line, buf = read_reply(s, buf)
            out("greeting: %s" % line)
        stage = "EHLO"
        s.sendall(b"EHLO %s\r\n" % a.ehlo.encode())
        line, buf = read_reply(s, buf)
        out("ehlo: %s" % line)
        stage = "QUIT"
        s.sendall(b"QUIT\r\n")
        line, buf = read_reply(s, buf)
        out("quit: %s" % line)
    except Closed:
        out("error: %s: connection closed" % stage)
    except (ssl.SSLError, OSError) as e:
        out("error: %s: %s" % (stage, e))
    finally:
        try:
            s.close()
        except OSError:
            pass
    out("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
