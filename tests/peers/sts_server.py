#!/usr/bin/env python3
"""sts_server.py DIR LOG [options] - an HTTPS server for MTA-STS policies.

Serves RFC 8461 policy files for the MTA-STS tests (spec 4.10): a GET of
https://HOST/.well-known/mta-sts.txt is answered, per Host header (port
and trailing dot dropped, lower case), from the directory DIR/HOST/:

  DIR/HOST/mta-sts.txt   the policy (sent as it is, CRLF or LF)

Every behaviour is switched by a file in DIR/HOST/, read again on every
request and handshake, so that a test changes it between sessions without
restarting the server (write the file, or remove it to switch back):

  status        an HTTP status code (e.g. 301, 404, 500) instead of 200; a
                3xx carries "Location: https://HOST/redirected/mta-sts.txt"
                (or the contents of DIR/HOST/location), a page that serves
                the policy with 200: a client that follows the redirect
                shows up as a GET of /redirected/mta-sts.txt in the log
  content-type  the Content-Type of the policy (default "text/plain")
  oversize      pad the policy with comment-like lines ("x-pad: ...") to the
                number of octets in the file (empty: 70000, more than the
                64 KB an MTA-STS client may read)
  delay         wait this many seconds (a decimal) before answering
  badcert       serve the --bad-cert certificate (e.g. one for a wrong name)
                instead of the host's own in the TLS handshake
  cert.pem, key.pem   the host's own certificate (default --cert/--key)

The certificate is chosen by the SNI the client sends (no SNI, or a name
without a directory: --cert/--key).  A Host without a directory, or any
other path, gets 404; methods other than GET (and HEAD) get 405.

LOG gets one line per event (flushed at once):

  TLS ADDR sni NAME cert LABEL -> ok VERSION
  TLS ADDR sni NAME cert LABEL -> failed REASON
  TLS ADDR sni NAME cert LABEL -> closed REASON    the connection ended
                 after the handshake without a request (REASON "without a
                 request", or the error): e.g. the client refused the
                 certificate once the handshake was over
  GET HOST PATH -> STATUS BYTES        (BYTES: the length of the body)

ADDR is the local address the client reached, NAME "-" without SNI, LABEL
"default", "host" (DIR/HOST/cert.pem) or "bad".

Options:
  --addr IP      listen on IP (repeatable: one listener per address; Linux
                 lets a server bind any 127.0.0.0/8 address; default
                 127.0.0.1)
  --port N       the port (default 443: MTA-STS has no other; binding it
                 needs root or CAP_NET_BIND_SERVICE)
  --cert F --key F          the default certificate chain and key
  --bad-cert F --bad-key F  the certificate served with "badcert"
Prints "ready" once every listener is bound; runs until killed.
"""
import argparse
import http.server
import os
import socket
import socketserver
import ssl
import sys
import threading
import time

POLICY_PATH = "/.well-known/mta-sts.txt"
REDIRECTED_PATH = "/redirected/mta-sts.txt"
OVERSIZE_DEFAULT = 70000


class Log:
    def __init__(self, path):
        self.f = open(path, "a", buffering=1, encoding="utf-8")
        self.lock = threading.Lock()

    def write(self, text):
        with self.lock:
            self.f.write(text + "\n")


def read_switch(hostdir, name):
    """The stripped contents of DIR/HOST/NAME, or None when absent."""
    try:
        with open(os.path.join(hostdir, name), encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return None


def host_key(name):
    """A Host header or an SNI as a directory name: no port, no trailing
    dot, lower case; "" when it could name something outside DIR."""
    if not name:
        return ""
    h = name.strip()
    if h.startswith("["):
        h = h.split("]", 1)[0] + "]"
    else:
        h = h.rsplit(":", 1)[0] if h.count(":") == 1 else h
    h = h.rstrip(".").lower()
    if not h or "/" in h or h.startswith("."):
        return ""
    return h


class Contexts:
    """Server SSLContexts by (cert, key, mtimes), made on first use."""

    def __init__(self, a):
        self.a = a
        self.cache = {}
        self.lock = threading.Lock()

    def get(self, cert, key):
        try:
            stamp = (os.stat(cert).st_mtime_ns, os.stat(key).st_mtime_ns)
        except OSError:
            return None
        k = (cert, key, stamp)
        with self.lock:
            ctx = self.cache.get(k)
            if ctx is None:
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                ctx.load_cert_chain(cert, key)
                ctx.sni_callback = self.on_sni
                self.cache[k] = ctx
            return ctx

    def default(self):
        return self.get(self.a.cert, self.a.key or self.a.cert)

    def for_host(self, host):
        """(context, label) for the SNI HOST, switches read now."""
        d = os.path.join(self.a.dir, host) if host else None
        if d and os.path.isdir(d):
            if os.path.exists(os.path.join(d, "badcert")):
                if self.a.bad_cert:
                    return (self.get(self.a.bad_cert,
                                     self.a.bad_key or self.a.bad_cert),
                            "bad")
            c, k = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
            if os.path.exists(c):
                ctx = self.get(c, k if os.path.exists(k) else c)
                if ctx is not None:
                    return (ctx, "host")
        return (self.default(), "default")

    def on_sni(self, sslobj, name, ctx):
        host = host_key(name) if name else ""
        sslobj.tp_sni = name or "-"
        new, label = self.for_host(host)
        sslobj.tp_cert = label
        if new is not None and new is not ctx:
            sslobj.context = new
        return None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def version_string(self):
        return "sts_server"

    def log_message(self, fmt, *args):  # quiet: the LOG has the events
        pass

    def answer(self, status, body, ctype="text/plain", extra=(), head=False):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(body)
        self.close_connection = True

    def handle_one(self, head):
        srv = self.server
        self.connection.tp_requests = getattr(
            self.connection, "tp_requests", 0) + 1
        host = host_key(self.headers.get("Host", ""))
        path = self.path.split("?", 1)[0]
        d = os.path.join(srv.a.dir, host) if host else ""
        status, body, ctype, extra = 404, b"not found\n", "text/plain", []
        if d and os.path.isdir(d) and path in (POLICY_PATH, REDIRECTED_PATH):
            delay = read_switch(d, "delay")
            if delay:
                try:
                    time.sleep(float(delay))
                except ValueError:
                    pass
            try:
                with open(os.path.join(d, "mta-sts.txt"), "rb") as f:
                    policy = f.read()
            except OSError:
                policy = None
            st = read_switch(d, "status") if path == POLICY_PATH else None
            try:
                st = int(st) if st else 200
            except ValueError:
                st = 500
            if policy is None:
                pass
            elif st != 200:
                status = st
                body = b"%d\n" % status
                if 300 <= status < 400:
                    loc = read_switch(d, "location") or (
                        "https://%s%s" % (host, REDIRECTED_PATH))
                    extra.append(("Location", loc))
                    body = b"moved\n"
            else:
                status, body = 200, policy
                ctype = read_switch(d, "content-type") or "text/plain"
                over = read_switch(d, "oversize")
                if over is not None:
                    size = int(over) if over else OVERSIZE_DEFAULT
                    nl = b"\r\n" if policy.endswith(b"\r\n") else b"\n"
                    pad = b""
                    while len(body) + len(pad) < size:
                        pad += b"x-pad: " + b"a" * 70 + nl
                    body = body + pad
        self.answer(status, body, ctype, extra, head)
        srv.log.write("%s %s %s -> %d %d" % (
            self.command, host or "-", self.path, status, len(body)))

    def do_GET(self):
        self.handle_one(False)

    def do_HEAD(self):
        self.handle_one(True)

    def do_POST(self):
        self.answer(405, b"method not allowed\n")
        self.server.log.write("%s %s %s -> 405 0" % (
            self.command, host_key(self.headers.get("Host", "")) or "-",
            self.path))

    do_PUT = do_DELETE = do_OPTIONS = do_POST


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, a, ctxs, log):
        self.a, self.ctxs, self.log = a, ctxs, log
        self.address_family = (socket.AF_INET6 if ":" in addr[0]
                               else socket.AF_INET)
        super().__init__(addr, Handler)

    def server_bind(self):
        # HTTPServer.server_bind looks up the host name: not needed here
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def finish_request(self, request, client_address):
        """In the request's thread: the TLS handshake, then HTTP."""
        local = request.getsockname()[0]
        request.settimeout(10)
        conn = None
        try:
            conn = self.ctxs.default().wrap_socket(
                request, server_side=True, do_handshake_on_connect=False)
            conn.do_handshake()
        except (ssl.SSLError, OSError) as e:
            self.log.write("TLS %s sni %s cert %s -> failed %s" % (
                local, getattr(conn, "tp_sni", "-"),
                getattr(conn, "tp_cert", "default"),
                (str(e) or type(e).__name__).replace("\n", " ")))
            if conn is not None:
                conn.close()
            return
        self.log.write("TLS %s sni %s cert %s -> ok %s" % (
            local, getattr(conn, "tp_sni", "-"),
            getattr(conn, "tp_cert", "default"), conn.version()))
        why = "without a request"
        try:
            self.RequestHandlerClass(conn, client_address, self)
        except (ssl.SSLError, OSError) as e:
            why = (str(e) or type(e).__name__).replace("\n", " ")
        finally:
            try:
                conn.close()
            except OSError:
                pass
        if not getattr(conn, "tp_requests", 0):
            # e.g. the client refused the certificate once the handshake
            # was over (its alert, or just a close)
            self.log.write("TLS %s sni %s cert %s -> closed %s" % (
                local, getattr(conn, "tp_sni", "-"),
                getattr(conn, "tp_cert", "default"), why))

    def shutdown_request(self, request):
        # the TLS socket took over the descriptor (finish_request closes it)
        try:
            request.close()
        except OSError:
            pass

    def handle_error(self, request, client_address):
        self.log.write("error %s" % (sys.exc_info()[1],))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("log")
    ap.add_argument("--addr", action="append")
    ap.add_argument("--port", type=int, default=443)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key")
    ap.add_argument("--bad-cert")
    ap.add_argument("--bad-key")
    a = ap.parse_args()
    a.dir = os.path.abspath(a.dir)
    log = Log(a.log)
    ctxs = Contexts(a)
    if ctxs.default() is None:
        ap.error("cannot read --cert/--key")
    servers = []
    for addr in a.addr or ["127.0.0.1"]:
        try:
            servers.append(Server((addr, a.port), a, ctxs, log))
        except OSError as e:
            print("cannot listen on %s:%d: %s" % (addr, a.port, e),
                  file=sys.stderr, flush=True)
            sys.exit(1)
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    print("ready", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
