#!/bin/sh
# mkzones.sh DIR DNSPORT UPPORT CAKEY CACERT - an offline DNSSEC lab for the
# DANE tests (spec 4.8): certificates, signed zones, nsd and unbound configs.
#
# Needs nsd, ldnsutils (ldns-keygen, ldns-signzone, ldns-key2ds) and openssl;
# start it with start_dns DIR (tests/integration/lib.sh), check it with
# tests/dns/check.sh DIR.  Nothing touches the Internet or port 53: nsd
# serves every zone on 127.0.0.1@DNSPORT, and a resolver reaches it through
# a stub for "test." with DIR/test.ds as its only trust anchor.
#
# Every MX host is 127.0.0.1, .2, .3 or ::1 (one upstream SMTP server per
# address, listening on UPPORT, the port in every TLSA name
# _UPPORT._tcp.HOST), 127.0.0.5 (a plaintext server, for the gateway's
# test) or 127.0.0.4 (nothing listens there).  The certificates, ECDSA P-256 leaves
# signed by the test CA (CAKEY, CACERT: tests/certs/mkcerts.sh's ca.key,
# ca.pem), are made here, so that names, keys and TLSA records always agree:
#   lab1.pem/.key   the servers on 127.0.0.1 and ::1; SAN every name below
#                   that resolves to 127.0.0.1 or ::1 (mx.good.test first;
#                   mx.sts1.test, mx.sts2.test, mx.sts5.test and
#                   mx.ststlsa.test last)
#   lab2.pem/.key   the server on 127.0.0.2; SAN mx1.two.test, mx.bad.test,
#                   mx1.twobad.test
#   lab3.pem/.key   the server on 127.0.0.3; SAN mx.ta.test; lab3.pem is the
#                   chain leaf + CA (DANE-TA needs the CA in the handshake)
#   wrong.pem/.key  a key no server uses (SAN mx.bad.test): the TLSA records
#                   that must not match publish its digest
#   stsweb.pem/.key the MTA-STS policy hosts (tests/peers/sts_server.py):
#                   SAN mta-sts.sts1.test ... mta-sts.sts5.test,
#                   mta-sts.ststlsa.test
#   stswrong.pem/.key  a policy host certificate for another name (SAN
#                   mta-sts.wrong.test): sts_server.py's "badcert" switch
# Their TLSA data (sha256 of the SubjectPublicKeyInfo, hex) are in
# DIR/lab.env with the ports and the CA's path (sh syntax, ". DIR/lab.env"):
# LAB_DIR LAB_CA LAB_DNSPORT LAB_UPPORT LAB_SPKI1 LAB_SPKI2 LAB_SPKI3
# LAB_SPKI_CA LAB_SPKI_WRONG, and LAB_KEY_CACHE: the base name (in DIR) of
# cache.test.'s signing key, to re-sign DIR/cache.test.zone after a change:
#   cd DIR && ldns-signzone -f cache.test.zone.signed cache.test.zone \
#       "$LAB_KEY_CACHE"
# (LAB_KEY_STS5 likewise for sts5.test.zone), LAB_STS_DIR (the policy
# tree below) and LAB_STS_ADDRS (the policy hosts' addresses).
#
# Zones (P = UPPORT; "T" = TLSA 3 1 1 of that leaf):
#   test.  signed (CSK ECDSAP256SHA256), trust anchor DIR/test.ds (its DS)
#     good.test       MX 10 mx.good.test;  mx.good A .1, _P._tcp T lab1
#     bad.test        MX 10 mx.bad.test;   mx.bad A .2, _P._tcp T wrong
#     ta.test         MX 10 mx.ta.test;    mx.ta A .3, TLSA 2 1 1 CA SPKI
#     hostbogus.test  MX 10 mx.bogus.test (secure MX, host in a bogus zone)
#     notlsa.test     MX 10 mx.notlsa.test; mx.notlsa A .1, no TLSA (NXDOMAIN)
#     unusable.test   MX 10 mx.unusable.test; mx.unusable A .1, only a
#                     PKIX-EE TLSA 1 1 1 lab1 (secure, unusable: RFC 7672 3.1)
#     two.test        MX 10 mx1.two.test (A .2, T lab2),
#                     MX 20 mx2.two.test (A .1, T lab1)
#     twodown.test    MX 10 mx1.twodown.test (A .4: refused, T lab1),
#                     MX 20 mx2.twodown.test (A .1, T lab1)
#     twobad.test     MX 10 mx1.twobad.test (A .2, T wrong: mismatch),
#                     MX 20 mx2.twobad.test (A .1, T lab1)
#     nomx.test       no MX; A .1, _P._tcp.nomx.test T lab1 (implicit MX)
#     nullmx.test     MX 0 .
#     cname.test      MX 10 alias.cname.test; alias.cname CNAME mx.good.test.
#     nothere.test    does not exist (NXDOMAIN, proven by NSEC)
#     v6.test         MX 10 mx.v6.test; mx.v6 AAAA ::1 only, _P._tcp T lab1
#     dual.test       MX 10 mx.dual.test; mx.dual A .4 (refused) and
#                     AAAA ::1, _P._tcp T lab1
#     plain.test      MX 10 mx.plain.test; mx.plain A .5, no TLSA (a server
#                     without STARTTLS listens there in 250-gateway)
#     plainenc.test   MX 10 mx.plain.test (the same host, another policy)
#     down.test       MX 10 mx.down.test; mx.down A .4 only (refused)
#   MTA-STS (RFC 8461; spec 4.10), no TLSA unless said; every domain D has
#   _mta-sts.D TXT "v=STSv1; id=..." and mta-sts.D A 127.0.0.2x, the
#   address of its policy host (sts_server.py serves them all on port 443):
#     sts1.test       MX 10 mx.sts1.test (A .1, lab1 has the name);
#                     id sts1id1, mta-sts A .21; policy enforce,
#                     mx: *.sts1.test (matches)
#     sts2.test       MX 10 mx.sts2.test (A .1, lab1 has the name);
#                     id sts2id1, mta-sts A .22; policy enforce,
#                     mx: mx.sts1.test, mx: *.test (a wildcard is one
#                     label: mx.sts2.test is outside the patterns)
#     sts3.test       MX 10 mx.sts3.test (A .2: lab2 is not valid for it);
#                     id sts3id1, mta-sts A .23; enforce, mx: mx.sts3.test
#     sts4.test       MX 10 mx.sts4.test (A .2: lab2 is not valid for it);
#                     id sts4id1, mta-sts A .24; testing, mx: mx.sts4.test
#     ststlsa.test    MX 10 mx.ststlsa.test (A .1, lab1 has the name),
#                     _P._tcp.mx.ststlsa T wrong (DANE fails); id
#                     ststlsaid1, mta-sts A .26; enforce,
#                     mx: mx.ststlsa.test (MTA-STS alone would pass)
#     sts5.test       NS ns.test. + DS: a signed child (below)
#     cache.test      NS ns.test. + DS: a signed child (below)
#     insecure.test   NS ns.test., no DS: an insecure delegation
#     bogus.test      NS ns.test. + DS: signed child whose RRSIGs expired
#   insecure.test.  unsigned
#     insecure.test       MX 10 mx.insecure.test; mx A .1, _P._tcp.mx T lab1
#     half.insecure.test  MX 10 mx.good.test (insecure MX, secure host)
#   bogus.test.  signed, but -i 20200101000000 -e 20200201000000: BOGUS
#     bogus.test      MX 10 mx.bogus.test; mx A .1, _P._tcp.mx T lab1
#   cache.test.  signed (its own CSK, LAB_KEY_CACHE), for the session cache
#                test, which changes its TLSA RRset and re-signs it
#     cache.test      MX 10 mx.cache.test; mx A .1, _P._tcp.mx T lab1 with
#                     TTL 1 (a resolver asks again a second later)
#   sts5.test.  signed (its own CSK, LAB_KEY_STS5), for the MTA-STS test,
#               which changes the policy id at runtime and re-signs it
#     sts5.test       MX 10 mx.sts5.test; mx A .1 (lab1 has the name),
#                     _mta-sts TXT "v=STSv1; id=s5id1" with TTL 1,
#                     mta-sts A .25; policy enforce, mx: mx.sts5.test
# The policy tree for tests/peers/sts_server.py: DIR/sts/mta-sts.D/
# mta-sts.txt (CRLF lines, max_age 86400) for each D above.
# Also DIR/nsd.conf (127.0.0.1@DNSPORT, state under DIR/run) and
# DIR/unbound.conf (stub test. -> 127.0.0.1@DNSPORT, trust anchor test.ds)
# for unbound-host -C and ub_ctx_config().
set -eu
usage="usage: mkzones.sh DIR DNSPORT UPPORT CAKEY CACERT"
[ $# -eq 5 ] || { echo "$usage" >&2; exit 2; }
dir=$1 dnsport=$2 upport=$3 cakey=$4 cacert=$5
for f in "$cakey" "$cacert"; do
	[ -r "$f" ] || { echo "mkzones: cannot read $f" >&2; exit 2; }
done
cakey=$(cd "$(dirname "$cakey")" && pwd)/$(basename "$cakey")
cacert=$(cd "$(dirname "$cacert")" && pwd)/$(basename "$cacert")
mkdir -p "$dir/run"
dir=$(cd "$dir" && pwd)
cd "$dir"
umask 022

# ---------------------------------------------------------------- certificates

# leaf NAME SAN...: NAME.key (P-256) and NAME.pem, CN = the first SAN
leaf() {
	_n=$1
	shift
	_san=
	for _h in "$@"; do _san="$_san${_san:+, }DNS:$_h"; done
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
	    -out "$_n.key" 2>/dev/null
	chmod 600 "$_n.key"
	printf '%s\n' \
	    "basicConstraints = critical, CA:FALSE" \
	    "keyUsage = critical, digitalSignature" \
	    "extendedKeyUsage = serverAuth" \
	    "subjectAltName = $_san" \
	    "subjectKeyIdentifier = hash" \
	    "authorityKeyIdentifier = keyid" >"$_n.ext"
	openssl req -new -key "$_n.key" -subj "/CN=$1" 2>/dev/null |
	    openssl x509 -req -CA "$cacert" -CAkey "$cakey" \
		-set_serial "0x$(openssl rand -hex 8)" -days 3650 -sha256 \
		-extfile "$_n.ext" -out "$_n.pem" 2>/dev/null
	rm -f "$_n.ext"
	[ -s "$_n.pem" ] || { echo "mkzones: could not sign $_n.pem" >&2; exit 1; }
}

# spki FILE: sha256 of the (first) certificate's SubjectPublicKeyInfo, hex
spki() {
	openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform DER |
	    openssl dgst -sha256 -r | cut -d' ' -f1
}

leaf lab1 mx.good.test mx.insecure.test mx.bogus.test mx.notlsa.test \
    mx2.two.test mx2.twodown.test mx2.twobad.test nomx.test mx.v6.test \
    mx.dual.test mx.cache.test mx.sts1.test mx.sts2.test mx.sts5.test \
    mx.ststlsa.test
leaf lab2 mx1.two.test mx.bad.test mx1.twobad.test
leaf lab3 mx.ta.test
cat "$cacert" >>lab3.pem
leaf wrong mx.bad.test
leaf stsweb mta-sts.sts1.test mta-sts.sts2.test mta-sts.sts3.test \
    mta-sts.sts4.test mta-sts.sts5.test mta-sts.ststlsa.test
leaf stswrong mta-sts.wrong.test
s1=$(spki lab1.pem)
s2=$(spki lab2.pem)
s3=$(spki lab3.pem)
sca=$(spki "$cacert")
swrong=$(spki wrong.pem)
for h in "$s1" "$s2" "$s3" "$sca" "$swrong"; do
	[ ${#h} = 64 ] || { echo "mkzones: bad SPKI digest '$h'" >&2; exit 1; }
done
cat >lab.env <<EOF
LAB_DIR='$dir'
LAB_CA='$cacert'
LAB_DNSPORT=$dnsport
LAB_UPPORT=$upport
LAB_SPKI1=$s1
LAB_SPKI2=$s2
LAB_SPKI3=$s3
LAB_SPKI_CA=$sca
LAB_SPKI_WRONG=$swrong
LAB_STS_DIR='$dir/sts'
LAB_STS_ADDRS='127.0.0.21 127.0.0.22 127.0.0.23 127.0.0.24 127.0.0.25 127.0.0.26'
EOF

# ---------------------------------------------------------------- MTA-STS policies

# policy HOST MODE MX...: DIR/sts/HOST/mta-sts.txt (RFC 8461 3.2, CRLF)
policy() {
	mkdir -p "sts/$1"
	_h=$1
	_m=$2
	shift 2
	{
		printf 'version: STSv1\r\nmode: %s\r\n' "$_m"
		for _x in "$@"; do printf 'mx: %s\r\n' "$_x"; done
		printf 'max_age: 86400\r\n'
	} >"sts/$_h/mta-sts.txt"
}
rm -rf sts
policy mta-sts.sts1.test enforce '*.sts1.test'
policy mta-sts.sts2.test enforce mx.sts1.test '*.test'
policy mta-sts.sts3.test enforce mx.sts3.test
policy mta-sts.sts4.test testing mx.sts4.test
policy mta-sts.sts5.test enforce mx.sts5.test
policy mta-sts.ststlsa.test enforce mx.ststlsa.test

# ---------------------------------------------------------------- zones

rm -f K*.key K*.private K*.ds ./*.zone ./*.signed
kt=$(ldns-keygen -a ECDSAP256SHA256 -k test.)		# -k: SEP flag; one CSK
kb=$(ldns-keygen -a ECDSAP256SHA256 -k bogus.test.)
kc=$(ldns-keygen -a ECDSAP256SHA256 -k cache.test.)
k5=$(ldns-keygen -a ECDSAP256SHA256 -k sts5.test.)
echo "LAB_KEY_CACHE=$kc" >>lab.env
echo "LAB_KEY_STS5=$k5" >>lab.env
p=_$upport._tcp

# zone ORIGIN RECORD...: a zone file on stdout, SOA and NS ns.test. first
zone() {
	printf '$ORIGIN %s\n$TTL 300\n' "$1"
	printf '@ SOA ns.test. hostmaster.test. 1 3600 600 86400 300\n@ NS ns.test.\n'
	shift
	for _r in "$@"; do printf '%s\n' "$_r"; done
}

zone test. \
    "ns A 127.0.0.1" \
    "good MX 10 mx.good.test." \
    "mx.good A 127.0.0.1" \
    "$p.mx.good TLSA 3 1 1 $s1" \
    "bad MX 10 mx.bad.test." \
    "mx.bad A 127.0.0.2" \
    "$p.mx.bad TLSA 3 1 1 $swrong" \
    "ta MX 10 mx.ta.test." \
    "mx.ta A 127.0.0.3" \
    "$p.mx.ta TLSA 2 1 1 $sca" \
    "hostbogus MX 10 mx.bogus.test." \
    "notlsa MX 10 mx.notlsa.test." \
    "mx.notlsa A 127.0.0.1" \
    "unusable MX 10 mx.unusable.test." \
    "mx.unusable A 127.0.0.1" \
    "$p.mx.unusable TLSA 1 1 1 $s1" \
    "two MX 10 mx1.two.test." \
    "two MX 20 mx2.two.test." \
    "mx1.two A 127.0.0.2" \
    "$p.mx1.two TLSA 3 1 1 $s2" \
    "mx2.two A 127.0.0.1" \
    "$p.mx2.two TLSA 3 1 1 $s1" \
    "twodown MX 10 mx1.twodown.test." \
    "twodown MX 20 mx2.twodown.test." \
    "mx1.twodown A 127.0.0.4" \
    "$p.mx1.twodown TLSA 3 1 1 $s1" \
    "mx2.twodown A 127.0.0.1" \
    "$p.mx2.twodown TLSA 3 1 1 $s1" \
    "twobad MX 10 mx1.twobad.test." \
    "twobad MX 20 mx2.twobad.test." \
    "mx1.twobad A 127.0.0.2" \
    "$p.mx1.twobad TLSA 3 1 1 $swrong" \
    "mx2.twobad A 127.0.0.1" \
    "$p.mx2.twobad TLSA 3 1 1 $s1" \
    "nomx A 127.0.0.1" \
    "$p.nomx TLSA 3 1 1 $s1" \
    "nullmx MX 0 ." \
    "cname MX 10 alias.cname.test." \
    "alias.cname CNAME mx.good.test." \
    "v6 MX 10 mx.v6.test." \
    "mx.v6 AAAA ::1" \
    "$p.mx.v6 TLSA 3 1 1 $s1" \
    "dual MX 10 mx.dual.test." \
    "mx.dual A 127.0.0.4" \
    "mx.dual AAAA ::1" \
    "$p.mx.dual TLSA 3 1 1 $s1" \
    "plain MX 10 mx.plain.test." \
    "mx.plain A 127.0.0.5" \
    "plainenc MX 10 mx.plain.test." \
    "down MX 10 mx.down.test." \
    "mx.down A 127.0.0.4" \
    "cache NS ns.test." \
    "$(ldns-key2ds -n -2 "$kc.key")" \
    "sts1 MX 10 mx.sts1.test." \
    "mx.sts1 A 127.0.0.1" \
    "_mta-sts.sts1 TXT \"v=STSv1; id=sts1id1\"" \
    "mta-sts.sts1 A 127.0.0.21" \
    "sts2 MX 10 mx.sts2.test." \
    "mx.sts2 A 127.0.0.1" \
    "_mta-sts.sts2 TXT \"v=STSv1; id=sts2id1\"" \
    "mta-sts.sts2 A 127.0.0.22" \
    "sts3 MX 10 mx.sts3.test." \
    "mx.sts3 A 127.0.0.2" \
    "_mta-sts.sts3 TXT \"v=STSv1; id=sts3id1\"" \
    "mta-sts.sts3 A 127.0.0.23" \
    "sts4 MX 10 mx.sts4.test." \
    "mx.sts4 A 127.0.0.2" \
    "_mta-sts.sts4 TXT \"v=STSv1; id=sts4id1\"" \
    "mta-sts.sts4 A 127.0.0.24" \
    "ststlsa MX 10 mx.ststlsa.test." \
    "mx.ststlsa A 127.0.0.1" \
    "$p.mx.ststlsa TLSA 3 1 1 $swrong" \
    "_mta-sts.ststlsa TXT \"v=STSv1; id=ststlsaid1\"" \
    "mta-sts.ststlsa A 127.0.0.26" \
    "sts5 NS ns.test." \
    "$(ldns-key2ds -n -2 "$k5.key")" \
    "insecure NS ns.test." \
    "bogus NS ns.test." \
    "$(ldns-key2ds -n -2 "$kb.key")" >test.zone
zone insecure.test. \
    "@ MX 10 mx.insecure.test." \
    "mx A 127.0.0.1" \
    "$p.mx TLSA 3 1 1 $s1" \
    "half MX 10 mx.good.test." >insecure.test.zone
zone bogus.test. \
    "@ MX 10 mx.bogus.test." \
    "mx A 127.0.0.1" \
    "$p.mx TLSA 3 1 1 $s1" >bogus.test.zone
zone cache.test. \
    "@ MX 10 mx.cache.test." \
    "mx A 127.0.0.1" \
    "$p.mx 1 TLSA 3 1 1 $s1" >cache.test.zone
zone sts5.test. \
    "@ MX 10 mx.sts5.test." \
    "mx A 127.0.0.1" \
    "_mta-sts 1 TXT \"v=STSv1; id=s5id1\"" \
    "mta-sts A 127.0.0.25" >sts5.test.zone

ldns-signzone -f test.zone.signed test.zone "$kt"
# expired signatures: validators find bogus.test. BOGUS
ldns-signzone -i 20200101000000 -e 20200201000000 \
    -f bogus.test.zone.signed bogus.test.zone "$kb"
ldns-signzone -f cache.test.zone.signed cache.test.zone "$kc"
ldns-signzone -f sts5.test.zone.signed sts5.test.zone "$k5"
printf '%s\n' "$(ldns-key2ds -n -2 "$kt.key")" >test.ds	# the trust anchor
grep -Eq '^test\.[[:space:]].*[[:space:]]DS[[:space:]]' test.ds ||
    { echo "mkzones: no DS in test.ds" >&2; exit 1; }

# ---------------------------------------------------------------- servers

cat >nsd.conf <<EOF
# nsd -c $dir/nsd.conf -d : the lab's zones on 127.0.0.1@$dnsport only
server:
  ip-address: 127.0.0.1@$dnsport
  port: $dnsport
  server-count: 1
  username: ""
  chroot: ""
  zonesdir: "$dir"
  database: ""
  zonelistfile: "$dir/run/zone.list"
  xfrdfile: "$dir/run/xfrd.state"
  xfrdir: "$dir/run"
  pidfile: "$dir/run/nsd.pid"
  logfile: "$dir/run/nsd.log"
  verbosity: 1
remote-control:
  control-enable: no
zone:
  name: test.
  zonefile: test.zone.signed
zone:
  name: insecure.test.
  zonefile: insecure.test.zone
zone:
  name: bogus.test.
  zonefile: bogus.test.zone.signed
zone:
  name: cache.test.
  zonefile: cache.test.zone.signed
zone:
  name: sts5.test.
  zonefile: sts5.test.zone.signed
EOF
cat >unbound.conf <<EOF
# unbound-host -C $dir/unbound.conf (or ub_ctx_config): the lab only
server:
  do-not-query-localhost: no        # the stub is on 127.0.0.1
  local-zone: "test." nodefault     # else unbound answers test. itself
  trust-anchor-file: "$dir/test.ds"
stub-zone:
  name: "test."
  stub-addr: 127.0.0.1@$dnsport
EOF
nsd=$(command -v nsd-checkconf || echo /usr/sbin/nsd-checkconf)
"$nsd" nsd.conf
