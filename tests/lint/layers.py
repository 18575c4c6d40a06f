#!/usr/bin/env python3
"""layers.py - the dependency direction of ../shared/conventions.md, checked.

Every module (src/NAME.c with include/tlsproxy/NAME.h) has a rank below.
A module may include the headers of, and call the tp_* functions defined
by, modules of its own rank or lower; an #include or a call that points
to a higher rank is an error ("FILE:LINE: ... points up").  The tools
(tool_*) may use layers 1-3 only and never include uv.h.  A module that is
not in the table is an error too, so a new file gets a place.

Usage: python3 tests/lint/layers.py [ROOT]; exit 1 on any violation.
"""
import glob
import os
import re
import sys

# rank: layer.sublayer; same rank = may use each other
RANKS = {
    # 1 base
    'common': 1.0, 'buf': 1.0, 'parse': 1.0, 'log': 1.0,
    # 2 pure protocol and policy (no uv.h, no OpenSSL)
    'smtp_line': 2.0,
    'smtp_server': 2.1, 'smtp_client': 2.1, 'smtp_filter': 2.1,
    'smtp_gateway': 2.1, 'proxy_proto': 2.1, 'tls_policy': 2.1,
    'dns_parse': 2.1, 'mta_sts': 2.1, 'policy_map': 2.2,
    'config_keys': 2.3, 'config': 2.3, 'config_dns': 2.3,
    # 3 TLS (OpenSSL, no libuv), then the generation that holds it all
    'tls_keys': 3.0, 'tls_server': 3.1, 'tls_ctx': 3.2, 'tls_verify': 3.3,
    'tls_io': 3.3, 'gen': 3.4, 'gen_policy': 3.4,
    'metrics': 3.5,  # renders a generation's routes
    # 4 event layer (libuv): endpoint < per-thread services < session
    #   < listener < stats < worker
    'wctx': 4.0, 'side': 4.0,
    'dns': 4.1, 'connpool': 4.1, 'probe': 4.1,
    'sts': 4.2,
    'session': 4.3, 'conn': 4.3, 'conn_io': 4.3, 'upstream': 4.3,
    'dialogue': 4.3, 'relay': 4.3, 'gateway': 4.3, 'dest': 4.3,
    'reuse': 4.3, 'sesscache': 4.3,
    'listener': 4.4,
    'stats': 4.5,
    'worker': 4.6,
    # 5 top
    'priv': 5.0, 'daemon': 5.1, 'main': 5.2,
    # the tls verbs: layers 1-3 only (checked below), ranked for order
    'tool_ini': 3.9, 'tool_x509': 3.9, 'tool_tls_int': 3.92,
    'tool_tls_args': 3.92, 'tool_tls_cert': 3.92, 'tool_tls_enable': 3.92,
    'tool_tls_rewrite': 3.92, 'tool_tls_route': 3.92, 'tool_tls_tlsa': 3.92,
    'tool_tls': 3.92,
}
TOOLS = re.compile(r'^tool_')

INCLUDE = re.compile(r'^\s*#\s*include\s+"tlsproxy/([A-Za-z0-9_]+)\.(h|def)"')
SYSINC = re.compile(r'^\s*#\s*include\s+<uv\.h>')
DEFN = re.compile(r'^(tp_[A-Za-z0-9_]+)\(')
CALL = re.compile(r'\b(tp_[A-Za-z0-9_]+)\s*\(')


def strip_comments(text):
    """Blank out comments and string literals, keeping the line breaks."""
    out, i, n = [], 0, len(text)
    while i < n:
        if text.startswith('/*', i):
            j = text.find('*/', i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r'[^\n]', ' ', text[i:j]))
            i = j
        elif text.startswith('//', i):
            j = text.find('\n', i)
            j = n if j < 0 else j
            out.append(' ' * (j - i))
            i = j
        elif text[i] == '"':
            j = i + 1
            while j < n and text[j] != '"' and text[j] != '\n':
                j += 2 if text[j] == '\\' else 1
            out.append('"' + ' ' * (min(j, n) - i - 1))
            i = j
        else:
            out.append(text[i])
            i += 1
    return ''.join(out)


def module(path):
    return os.path.basename(path).rsplit('.', 1)[0]


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else '.'
    files = sorted(glob.glob(os.path.join(root, 'src', '*.c')) +
                   glob.glob(os.path.join(root, 'include', 'tlsproxy', '*.h')))
    errors = []
    owner = {}  # function -> module that defines it
    texts = {}
    for f in files:
        mod = module(f)
        if mod not in RANKS:
            errors.append('%s:1: module %s has no layer in tests/lint/'
                          'layers.py' % (f, mod))
            continue
        with open(f, encoding='utf-8') as fh:
            texts[f] = fh.read()
        if f.endswith('.c'):
            for line in texts[f].splitlines():
                m = DEFN.match(line)
                if m:
                    owner[m.group(1)] = mod
    for f, text in texts.items():
        mod = module(f)
        rank = RANKS[mod]
        for no, line in enumerate(text.splitlines(), 1):
            m = INCLUDE.match(line)
            if m:
                dep = m.group(1)
                if dep not in RANKS:
                    errors.append('%s:%d: includes %s, which has no layer'
                                  % (f, no, dep))
                elif RANKS[dep] > rank:
                    errors.append('%s:%d: #include "tlsproxy/%s.h" points '
                                  'up (%s is layer %s, %s is %s)'
                                  % (f, no, dep, mod, rank, dep, RANKS[dep]))
                elif TOOLS.match(mod) and RANKS[dep] >= 4:
                    errors.append('%s:%d: a tool includes %s (layer 4)'
                                  % (f, no, dep))
            if TOOLS.match(mod) and SYSINC.match(line):
                errors.append('%s:%d: a tool includes uv.h' % (f, no))
        if not f.endswith('.c'):
            continue
        for no, line in enumerate(strip_comments(text).splitlines(), 1):
            if DEFN.match(line):
                continue
            for m in CALL.finditer(line):
                dep = owner.get(m.group(1))
                if dep is not None and RANKS[dep] > rank:
                    errors.append('%s:%d: calls %s() of %s, which points up '
                                  '(%s is layer %s, %s is %s)'
                                  % (f, no, m.group(1), dep, mod, rank, dep,
                                     RANKS[dep]))
    for e in errors:
        print(e)
    print('layers: %d files, %d functions, %d violations'
          % (len(texts), len(owner), len(errors)))
    return 1 if errors else 0


if __name__ == '__main__':
    sys.exit(main())
