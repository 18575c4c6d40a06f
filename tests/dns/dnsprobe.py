#!/usr/bin/env python3
"""dnsprobe.py PORT [SECS] [NAME] - wait until a DNS server on 127.0.0.1:PORT
answers.

Sends a plain (non-DNSSEC) UDP query for NAME (default "test.") type SOA
every 100 ms and exits 0 at the first authoritative NOERROR answer to it;
exits 1 after SECS (default 5) seconds without one, printing the last
problem.  No resolver, no validation: it only tells that nsd has loaded its
zones and listens (the DNSSEC checks are tests/dns/check.sh's).
"""
import os
import socket
import struct
import sys
import time


def query(name, qid):
    head = struct.pack("!HHHHHH", qid, 0x0000, 1, 0, 0, 0)  # RD off
    q = b"".join(bytes([len(l)]) + l.encode("ascii")
                 for l in name.rstrip(".").split(".") if l) + b"\0"
    return head + q + struct.pack("!HH", 6, 1)  # SOA IN


def main():
    port = int(sys.argv[1])
    secs = float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
    name = sys.argv[3] if len(sys.argv) > 3 else "test."
    end = time.monotonic() + secs
    why = "no answer"
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    while time.monotonic() < end:
        qid = struct.unpack("!H", os.urandom(2))[0]
        try:
            s.sendto(query(name, qid), ("127.0.0.1", port))
            s.settimeout(0.1)
            data, _ = s.recvfrom(4096)
        except socket.timeout:
            continue
        except OSError as e:
            why = str(e)
            # ECONNREFUSED from an earlier ICMP port unreachable: retry
            s.close()
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            time.sleep(0.1)
            continue
        if len(data) < 12:
            why = "short answer"
            continue
        rid, flags, _, ancount = struct.unpack("!HHHH", data[:8])
        if rid != qid:
            continue
        rcode, aa = flags & 0xF, bool(flags & 0x0400)
        if rcode == 0 and aa and ancount > 0:
            return 0
        why = "rcode %d aa %d answers %d" % (rcode, aa, ancount)
        time.sleep(0.1)
    print("dnsprobe: 127.0.0.1:%d %s: %s" % (port, name, why))
    return 1


if __name__ == "__main__":
    sys.exit(main())
