#!/usr/bin/env python3
"""testssl_check.py JSONFILE - judge a testssl.sh --jsonfile report.

Prints one line per check, for tests/slow/testssl.sh to count:

  PASS NAME
  FAIL NAME: WHY
  NOTE TEXT            (not a failure: shown for the record)

Checks (issue 4: no vulnerable item, nothing below TLS 1.2, no weak cipher):
  - the report is complete: it parses, has scanTime, no FATAL scanProblem
  - no item of severity HIGH or CRITICAL, except cert_* items that are
    about how the test certificate was issued (validity period, no CRL or
    OCSP URI, no CAA record) rather than about the TLS service
  - SSLv2, SSLv3, TLS 1.0, TLS 1.1 not offered; TLS 1.2 and 1.3 offered
  - cipher categories NULL, aNULL, EXPORT, LOW and 3DES/IDEA not offered
  - RC4 and SWEET32 not vulnerable; client-initiated renegotiation refused
    (spec 5); secure renegotiation supported or TLS 1.3 only
  - the chain of trust verifies (testssl ran with --add-ca)
Exit status 0 when every check passed.
"""
import json
import sys

# issued-certificate properties, not the proxy's TLS (the tests' own CA)
CERT_ISSUANCE = ("cert_validityPeriod", "cert_revocation", "cert_ocspURL",
                 "cert_crlDistributionPoints", "DNS_CAArecord",
                 "cert_expirationStatus", "cert_extlifeSpan",
                 "cert_certificatePolicies_EV")


def main():
    path = sys.argv[1]
    fails = 0

    def ok(name):
        print("PASS %s" % name)

    def bad(name, why):
        nonlocal fails
        fails += 1
        print("FAIL %s: %s" % (name, why))

    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            items = json.load(f)
    except (OSError, ValueError) as e:
        bad("report parses", "%s: %s" % (path, e))
        return 1
    if isinstance(items, dict):  # --jsonfile-pretty
        items = [x for sc in items.get("scanResult", []) for k, v in sc.items()
                 if isinstance(v, list) for x in v]
    by_id = {}
    for x in items:
        base = x.get("id", "")
        by_id.setdefault(base, []).append(x)

    def finding(i):
        xs = by_id.get(i)
        return xs[0].get("finding", "") if xs else None

    # complete
    if "scanTime" in by_id:
        ok("report complete (scanTime %s s)" % finding("scanTime"))
    else:
        bad("report complete", "no scanTime item: testssl did not finish")
    for x in by_id.get("scanProblem", []):
        if x.get("severity") == "FATAL":
            bad("no fatal scan problem", x.get("finding", ""))
    # severities
    high = []
    for x in items:
        sev = x.get("severity", "")
        if sev not in ("HIGH", "CRITICAL"):
            continue
        if x.get("id", "").startswith(CERT_ISSUANCE):
            print("NOTE test certificate, not judged: %s %s %s" %
                  (x.get("id"), sev, x.get("finding", "")))
            continue
        high.append("%s %s: %s" % (x.get("id"), sev, x.get("finding", "")))
    if high:
        bad("no HIGH/CRITICAL item", "; ".join(high))
    else:
        ok("no HIGH/CRITICAL item (beyond the test certificate's issuance)")
    for x in items:
        if x.get("severity") in ("MEDIUM", "LOW", "WARN"):
            print("NOTE %s %s: %s" % (x.get("id"), x.get("severity"), x.get("finding", "")))
    # protocols
    for p in ("SSLv2", "SSLv3", "TLS1", "TLS1_1"):
        f = finding(p)
        if f is None:
            bad("%s not offered" % p, "no %s item" % p)
        elif f.startswith("not offered"):
            ok("%s not offered" % p)
        else:
            bad("%s not offered" % p, f)
    for p in ("TLS1_2", "TLS1_3"):
        f = finding(p)
        if f is not None and f.startswith("offered"):
            ok("%s offered" % p)
        else:
            bad("%s offered" % p, "%r" % f)
    # cipher categories
    for c in ("cipherlist_NULL", "cipherlist_aNULL", "cipherlist_EXPORT",
              "cipherlist_LOW", "cipherlist_3DES_IDEA"):
        f = finding(c)
        if f is None:
            bad("%s not offered" % c, "no %s item" % c)
        elif f.startswith("not offered"):
            ok("%s not offered" % c)
        else:
            bad("%s not offered" % c, f)
    for v in ("RC4", "SWEET32"):
        f = finding(v)
        if f is not None and f.startswith("not vulnerable"):
            ok("%s not vulnerable" % v)
        else:
            bad("%s not vulnerable" % v, "%r" % f)
    f = finding("secure_client_renego")
    if f is not None and ("not vulnerable" in f or f.startswith("not")):
        ok("client-initiated renegotiation refused (%s)" % f)
    else:
        bad("client-initiated renegotiation refused", "%r" % f)
    # chain of trust (testssl --add-ca with the test CA)
    trust = [x for i, xs in by_id.items() if i.startswith("cert_chain_of_trust") for x in xs]
    if not trust:
        bad("chain of trust verifies", "no cert_chain_of_trust item")
    for x in trust:
        if x.get("finding", "").startswith("passed"):
            ok("%s: %s" % (x.get("id"), x.get("finding")))
        else:
            bad("%s verifies" % x.get("id"), x.get("finding", ""))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
