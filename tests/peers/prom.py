#!/usr/bin/env python3
"""prom.py - read Prometheus text exposition (format 0.0.4) for the tests.

  prom.py get FILE NAME [LABEL=VALUE...]         the sample's value, or "absent"
  prom.py delta OLD NEW NAME [LABEL=VALUE...]    NEW - OLD of one sample
                                                 ("absent" if either lacks it)
  prom.py sum FILE NAME [LABEL=VALUE...]         sum over the samples whose
                                                 labels include these
  prom.py lint FILE                              problems, one a line; exit 1
                                                 if there are any

Labels match in any order; a sample matches "get" only when its label set
is exactly the one given.  Numbers print as integers when integral.
lint checks: every line is a comment, blank or a sample "NAME{LABELS} VALUE";
each family has one # HELP and one # TYPE line before its samples; a
histogram's buckets rise with le, end with le="+Inf" equal to _count, and
it has _sum and _count; no sample appears twice; counters are >= 0.
"""
import math
import re
import sys

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\S+)?$')
LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)')


def parse_labels(s):
    out = {}
    pos = 0
    s = s or ""
    while pos < len(s):
        m = LABEL.match(s, pos)
        if not m:
            raise ValueError("bad labels {%s}" % s)
        out[m.group(1)] = m.group(2)
        pos = m.end()
    return out


def parse_value(v):
    if v in ("+Inf", "Inf"):
        return math.inf
    if v == "-Inf":
        return -math.inf
    return float(v)


def load(path):
    """[(name, labels dict, value, line)], {family: type}, {family: help}, problems"""
    samples, types, helps, problems = [], {}, {}, []
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            if line.startswith("#"):
                parts = line.split(None, 3)
                if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                    d = helps if parts[1] == "HELP" else types
                    if parts[2] in d:
                        problems.append("line %d: second # %s for %s" % (n, parts[1], parts[2]))
                    d[parts[2]] = parts[3] if len(parts) > 3 else ""
                continue
            m = SAMPLE.match(line)
            if not m:
                problems.append("line %d: not a sample: %r" % (n, line))
                continue
            try:
                labels = parse_labels(m.group(3))
                value = parse_value(m.group(4))
            except ValueError as e:
                problems.append("line %d: %s" % (n, e))
                continue
            samples.append((m.group(1), labels, value, n))
    return samples, types, helps, problems


def family_of(name, types):
    if name in types:
        return name
    for suf in ("_bucket", "_sum", "_count"):
        if name.endswith(suf) and name[:-len(suf)] in types:
            return name[:-len(suf)]
    return None


def fmt(v):
    if v is None:
        return "absent"
    if v == int(v):
        return str(int(v))
    return repr(v)


def want_labels(args):
    d = {}
    for a in args:
        k, _, v = a.partition("=")
        d[k] = v
    return d


def get(path, name, labels):
    samples = load(path)[0]
    for n, lab, v, _ in samples:
        if n == name and lab == labels:
            return v
    return None


def lint(path):
    samples, types, helps, problems = load(path)
    seen = set()
    first_line = {}
    for name, labels, value, line in samples:
        key = (name, tuple(sorted(labels.items())))
        if key in seen:
            problems.append("line %d: duplicate sample %s%s" % (line, name, labels))
        seen.add(key)
        fam = family_of(name, types)
        if fam is None:
            problems.append("line %d: %s has no # TYPE" % (line, name))
            continue
        first_line.setdefault(fam, line)
        if fam not in helps:
            problems.append("%s has no # HELP" % fam)
        if types[fam] == "counter" and value < 0:
            problems.append("line %d: negative counter %s" % (line, name))
    # TYPE before samples
    with open(path, encoding="utf-8", errors="replace") as f:
        type_line = {}
        for n, line in enumerate(f, 1):
            p = line.split()
            if len(p) >= 3 and p[0] == "#" and p[1] == "TYPE":
                type_line[p[2]] = n
    for fam, ln in first_line.items():
        if type_line.get(fam, 10**9) > ln:
            problems.append("%s: # TYPE after its first sample" % fam)
    # histograms
    for fam, t in types.items():
        if t != "histogram":
            continue
        groups = {}
        for name, labels, value, line in samples:
            if family_of(name, types) != fam:
                continue
            base = {k: v for k, v in labels.items() if k != "le"}
            g = groups.setdefault(tuple(sorted(base.items())), {"buckets": []})
            if name == fam + "_bucket":
                if "le" not in labels:
                    problems.append("line %d: bucket without le" % line)
                    continue
                g["buckets"].append((parse_value(labels["le"]), value))
            elif name == fam + "_sum":
                g["sum"] = value
            elif name == fam + "_count":
                g["count"] = value
        for key, g in groups.items():
            b = g["buckets"]
            where = "%s%s" % (fam, dict(key))
            if not b or b[-1][0] != math.inf:
                problems.append("%s: no le=\"+Inf\" bucket last" % where)
            for i in range(1, len(b)):
                if b[i][0] <= b[i - 1][0]:
                    problems.append("%s: le not rising at %s" % (where, b[i][0]))
                if b[i][1] < b[i - 1][1]:
                    problems.append("%s: bucket counts fall at le=%s" % (where, b[i][0]))
            if "count" not in g or "sum" not in g:
                problems.append("%s: no _sum or _count" % where)
            elif b and b[-1][1] != g["count"]:
                problems.append("%s: +Inf bucket %s != _count %s" % (where, b[-1][1], g["count"]))
    for p in problems:
        print(p)
    return 1 if problems else 0


def main():
    a = sys.argv[1:]
    if len(a) >= 3 and a[0] == "get":
        print(fmt(get(a[1], a[2], want_labels(a[3:]))))
    elif len(a) >= 4 and a[0] == "delta":
        o = get(a[1], a[3], want_labels(a[4:]))
        n = get(a[2], a[3], want_labels(a[4:]))
        print("absent" if o is None or n is None else fmt(n - o))
    elif len(a) >= 3 and a[0] == "sum":
        want = want_labels(a[3:])
        tot = 0.0
        for n, lab, v, _ in load(a[1])[0]:
            if n == a[2] and all(lab.get(k) == x for k, x in want.items()):
                tot += v
        print(fmt(tot))
    elif len(a) == 2 and a[0] == "lint":
        return lint(a[1])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
