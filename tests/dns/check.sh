#!/bin/sh
# check.sh DIR - self-check of the DNSSEC lab made by tests/dns/mkzones.sh.
#
# Asserts, with unbound-host (a validating resolver: DIR/unbound.conf, stub
# test. -> nsd, trust anchor DIR/test.ds), that every scenario of the lab
# validates as the DANE tests expect: secure answers, the insecure
# delegation, the BOGUS child, NXDOMAIN and NODATA proofs, the null MX, the
# CNAME, the IPv6-only and dual-stack MX hosts, the hosts without TLSA of
# the gateway test, the signed child cache.test.
# (TLSA TTL 1), the MTA-STS domains (their _mta-sts TXT records, policy
# host addresses, MX hosts, the signed child sts5.test. with TXT TTL 1 and
# the policy tree), and that each TLSA record holds the digest it should
# (and the certificates agree with lab.env).  Uses the running nsd if one answers on
# LAB_DNSPORT (start_dns in tests/integration/lib.sh), else starts its own and
# stops it (by its PID) at the end.  One line per check ("ok   ..." or
# "FAIL ..."), then "lab: N checks, M failed"; exit status 1 if any failed.
set -eu
dir=${1:?usage: check.sh DIR}
dir=$(cd "$dir" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
. "$dir/lab.env"
PY=${PY:-python3}
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
uhost=$(command -v unbound-host || echo /usr/sbin/unbound-host)
P=$LAB_UPPORT
up() { printf '%s' "$1" | tr 'a-f' 'A-F'; }
S1=$(up "$LAB_SPKI1") S2=$(up "$LAB_SPKI2") SCA=$(up "$LAB_SPKI_CA")
SW=$(up "$LAB_SPKI_WRONG")

nsd_pid=
if ! "$PY" "$here/dnsprobe.py" "$LAB_DNSPORT" 0.3 >/dev/null; then
	nsd=$(command -v nsd || echo /usr/sbin/nsd)
	"$nsd" -c "$dir/nsd.conf" -d >"$dir/run/nsd.out" 2>&1 &
	nsd_pid=$!
	trap 'kill $nsd_pid 2>/dev/null || true' EXIT
	"$PY" "$here/dnsprobe.py" "$LAB_DNSPORT" 5 || {
		echo "FAIL nsd does not answer: $(tail -n 3 "$dir/run/nsd.out" "$dir/run/nsd.log" 2>/dev/null | tr '\n' ' ')"
		exit 1
	}
fi

n=0
failed=0
ok() { n=$((n + 1)); echo "ok   $1"; }
bad() { n=$((n + 1)); failed=$((failed + 1)); echo "FAIL $1"; }

# q TYPE NAME: ask unbound-host; the answer, lines joined with "|", in OUT
q() {
	QT=$1 QN=$2
	OUT=$("$uhost" -C "$dir/unbound.conf" -v -t "$1" "$2" 2>&1 | tr '\n' '|') || true
}
# want WHAT ERE: OUT (the last q) matches ERE
want() {
	if printf '%s\n' "$OUT" | grep -Eq -e "$2"; then ok "$QT $QN: $1"
	else bad "$QT $QN: $1: no /$2/ in '$OUT'"; fi
}
sec='\(secure\)'
insec='\(insecure\)'
bogus='\(BOGUS \(security failure\)\)'
nx="not found: 3\\(NXDOMAIN\\)\\. $sec"

# ---- the certificates behind the TLSA records
spki() {
	openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform DER |
	    openssl dgst -sha256 -r | cut -d' ' -f1
}
for c in "lab1 $LAB_SPKI1" "lab2 $LAB_SPKI2" "lab3 $LAB_SPKI3" "wrong $LAB_SPKI_WRONG"; do
	f=${c%% *} h=${c#* }
	if [ "$(spki "$dir/$f.pem")" = "$h" ] &&
	    openssl verify -CAfile "$LAB_CA" "$dir/$f.pem" >/dev/null 2>&1; then
		ok "cert $f.pem: signed by the test CA, SPKI sha256 as in lab.env"
	else bad "cert $f.pem: SPKI or chain does not agree with lab.env / $LAB_CA"; fi
done
if [ "$(spki "$LAB_CA")" = "$LAB_SPKI_CA" ] &&
    [ "$(openssl crl2pkcs7 -nocrl -certfile "$dir/lab3.pem" | openssl pkcs7 -print_certs | grep -c '^subject=')" = 2 ]; then
	ok "cert lab3.pem: chain of two (leaf, CA); CA SPKI as in lab.env"
else bad "cert lab3.pem: not leaf + CA, or the CA's SPKI differs"; fi
if [ "$LAB_SPKI_WRONG" != "$LAB_SPKI1" ] && [ "$LAB_SPKI_WRONG" != "$LAB_SPKI2" ] &&
    [ "$LAB_SPKI_WRONG" != "$LAB_SPKI3" ]; then
	ok "cert wrong.pem: a key no upstream serves"
else bad "cert wrong.pem: shares a key with a served leaf"; fi
sans=$(openssl x509 -in "$dir/lab1.pem" -noout -ext subjectAltName 2>/dev/null | tr -d '\n ')
case $sans in *DNS:mx.good.test,*DNS:nomx.test,DNS:mx.v6.test,DNS:mx.dual.test,DNS:mx.cache.test,DNS:mx.sts1.test,DNS:mx.sts2.test,DNS:mx.sts5.test,DNS:mx.ststlsa.test) ok "cert lab1.pem: SAN mx.good.test ... nomx.test, mx.v6.test, mx.dual.test, mx.cache.test, mx.sts1/2/5.test, mx.ststlsa.test" ;;
*) bad "cert lab1.pem: SAN '$sans'" ;; esac
sans=$(openssl x509 -in "$dir/lab2.pem" -noout -ext subjectAltName 2>/dev/null | tr -d '\n ')
case $sans in *mx.sts3.test* | *mx.sts4.test*) bad "cert lab2.pem: must not name mx.sts3.test or mx.sts4.test: '$sans'" ;;
*) ok "cert lab2.pem: not valid for mx.sts3.test, mx.sts4.test" ;; esac
for c in "stsweb DNS:mta-sts.sts1.test,DNS:mta-sts.sts2.test,DNS:mta-sts.sts3.test,DNS:mta-sts.sts4.test,DNS:mta-sts.sts5.test,DNS:mta-sts.ststlsa.test" \
    "stswrong DNS:mta-sts.wrong.test"; do
	f=${c%% *} want=${c#* }
	sans=$(openssl x509 -in "$dir/$f.pem" -noout -ext subjectAltName 2>/dev/null | tr -d '\n ' | sed 's/^.*AlternativeName://')
	if [ "$sans" = "$want" ] && openssl verify -CAfile "$LAB_CA" "$dir/$f.pem" >/dev/null 2>&1 &&
	    [ -r "$dir/$f.key" ]; then
		ok "cert $f.pem: signed by the test CA, SAN $want"
	else bad "cert $f.pem: SAN '$sans' (want '$want'), or not signed by $LAB_CA"; fi
done

# ---- good.test: secure MX, secure host, matching TLSA 3 1 1
q MX good.test
want "secure MX" "mail is handled by 10 mx\\.good\\.test\\. $sec"
q A mx.good.test
want "secure A 127.0.0.1" "has address 127\\.0\\.0\\.1 $sec"
q TLSA "_$P._tcp.mx.good.test"
want "secure TLSA 3 1 1 lab1" "has TLSA record 3 1 1 $S1 $sec"

# ---- bad.test: TLSA of a key the server does not have
q MX bad.test
want "secure MX" "10 mx\\.bad\\.test\\. $sec"
q A mx.bad.test
want "secure A 127.0.0.2" "has address 127\\.0\\.0\\.2 $sec"
q TLSA "_$P._tcp.mx.bad.test"
want "secure TLSA 3 1 1 wrong (mismatch)" "has TLSA record 3 1 1 $SW $sec"

# ---- ta.test: DANE-TA(2) of the test CA
q MX ta.test
want "secure MX" "10 mx\\.ta\\.test\\. $sec"
q A mx.ta.test
want "secure A 127.0.0.3" "has address 127\\.0\\.0\\.3 $sec"
q TLSA "_$P._tcp.mx.ta.test"
want "secure TLSA 2 1 1 CA" "has TLSA record 2 1 1 $SCA $sec"

# ---- insecure.test: delegated without DS
q MX insecure.test
want "insecure MX" "10 mx\\.insecure\\.test\\. $insec"
q A mx.insecure.test
want "insecure A" "has address 127\\.0\\.0\\.1 $insec"
q TLSA "_$P._tcp.mx.insecure.test"
want "insecure TLSA (present)" "has TLSA record 3 1 1 $S1 $insec"
q MX half.insecure.test
want "insecure MX to a secure host" "10 mx\\.good\\.test\\. $insec"

# ---- bogus.test: DS in test., RRSIGs expired
q MX bogus.test
want "BOGUS MX" "10 mx\\.bogus\\.test\\. $bogus"
want "why: signature expired" "signature expired"
q A mx.bogus.test
want "BOGUS A" "$bogus"
q TLSA "_$P._tcp.mx.bogus.test"
want "BOGUS TLSA" "$bogus"
q MX hostbogus.test
want "secure MX to a host in the bogus zone" "10 mx\\.bogus\\.test\\. $sec"

# ---- notlsa.test: secure, no TLSA (NXDOMAIN proven)
q MX notlsa.test
want "secure MX" "10 mx\\.notlsa\\.test\\. $sec"
q A mx.notlsa.test
want "secure A" "has address 127\\.0\\.0\\.1 $sec"
q TLSA "_$P._tcp.mx.notlsa.test"
want "no TLSA: NXDOMAIN (secure)" "$nx"

# ---- unusable.test: secure, only an unusable (PKIX-EE) TLSA record
q MX unusable.test
want "secure MX" "10 mx\\.unusable\\.test\\. $sec"
q TLSA "_$P._tcp.mx.unusable.test"
want "TLSA 1 1 1 (secure)" "TLSA record 1 1 1 .* $sec"

# ---- two.test, twodown.test, twobad.test: two MX hosts
q MX two.test
want "secure MX 10 mx1" "10 mx1\\.two\\.test\\. $sec"
want "secure MX 20 mx2" "20 mx2\\.two\\.test\\. $sec"
q A mx1.two.test
want "A 127.0.0.2" "has address 127\\.0\\.0\\.2 $sec"
q TLSA "_$P._tcp.mx1.two.test"
want "TLSA 3 1 1 lab2" "has TLSA record 3 1 1 $S2 $sec"
q A mx2.two.test
want "A 127.0.0.1" "has address 127\\.0\\.0\\.1 $sec"
q TLSA "_$P._tcp.mx2.two.test"
want "TLSA 3 1 1 lab1" "has TLSA record 3 1 1 $S1 $sec"
q MX twodown.test
want "secure MX 10 mx1" "10 mx1\\.twodown\\.test\\. $sec"
want "secure MX 20 mx2" "20 mx2\\.twodown\\.test\\. $sec"
q A mx1.twodown.test
want "A 127.0.0.4 (nothing listens)" "has address 127\\.0\\.0\\.4 $sec"
q TLSA "_$P._tcp.mx2.twodown.test"
want "TLSA 3 1 1 lab1" "has TLSA record 3 1 1 $S1 $sec"
q MX twobad.test
want "secure MX 10 mx1" "10 mx1\\.twobad\\.test\\. $sec"
want "secure MX 20 mx2" "20 mx2\\.twobad\\.test\\. $sec"
q A mx1.twobad.test
want "A 127.0.0.2" "has address 127\\.0\\.0\\.2 $sec"
q TLSA "_$P._tcp.mx1.twobad.test"
want "TLSA 3 1 1 wrong (mismatch)" "has TLSA record 3 1 1 $SW $sec"
q TLSA "_$P._tcp.mx2.twobad.test"
want "TLSA 3 1 1 lab1" "has TLSA record 3 1 1 $S1 $sec"

# ---- nomx.test: no MX (NODATA), own address and TLSA
q MX nomx.test
want "no MX (secure NODATA)" "has no mail handler record $sec"
q A nomx.test
want "secure A" "has address 127\\.0\\.0\\.1 $sec"
q TLSA "_$P._tcp.nomx.test"
want "TLSA 3 1 1 lab1" "has TLSA record 3 1 1 $S1 $sec"

# ---- nullmx.test
q MX nullmx.test
want "null MX" "nullmx\\.test mail is handled by 0 \\. $sec"

# ---- cname.test: MX host is a CNAME to mx.good.test
q MX cname.test
want "secure MX" "10 alias\\.cname\\.test\\. $sec"
q A alias.cname.test
want "secure CNAME" "is an alias for mx\\.good\\.test\\. $sec"
want "secure target address" "mx\\.good\\.test has address 127\\.0\\.0\\.1 $sec"
q TLSA "_$P._tcp.alias.cname.test"
want "no TLSA at the alias (TLSA only at the target)" "$nx"

# ---- nothere.test
q MX nothere.test
want "NXDOMAIN (secure)" "$nx"
q A nothere.test
want "NXDOMAIN (secure)" "$nx"

# ---- v6.test: the MX host has an AAAA record (::1) only
q MX v6.test
want "secure MX" "10 mx\\.v6\\.test\\. $sec"
q AAAA mx.v6.test
want "secure AAAA ::1" "has IPv6 address ::1 $sec"
q A mx.v6.test
want "no A (secure NODATA)" "mx\\.v6\\.test has no address $sec"
q TLSA "_$P._tcp.mx.v6.test"
want "TLSA 3 1 1 lab1" "has TLSA record 3 1 1 $S1 $sec"

# ---- dual.test: A 127.0.0.4 (refused) and AAAA ::1
q MX dual.test
want "secure MX" "10 mx\\.dual\\.test\\. $sec"
q A mx.dual.test
want "secure A 127.0.0.4 (nothing listens)" "has address 127\\.0\\.0\\.4 $sec"
q AAAA mx.dual.test
want "secure AAAA ::1" "has IPv6 address ::1 $sec"
q TLSA "_$P._tcp.mx.dual.test"
want "TLSA 3 1 1 lab1" "has TLSA record 3 1 1 $S1 $sec"

# ---- plain.test, plainenc.test: a host without TLSA (on 127.0.0.5, where
# 250-gateway runs a server without STARTTLS); down.test: refused
q MX plain.test
want "secure MX" "10 mx\\.plain\\.test\\. $sec"
q MX plainenc.test
want "secure MX (the same host)" "10 mx\\.plain\\.test\\. $sec"
q A mx.plain.test
want "secure A 127.0.0.5" "has address 127\\.0\\.0\\.5 $sec"
q TLSA "_$P._tcp.mx.plain.test"
want "no TLSA: NXDOMAIN (secure)" "$nx"
q MX down.test
want "secure MX" "10 mx\\.down\\.test\\. $sec"
q A mx.down.test
want "secure A 127.0.0.4 (nothing listens)" "has address 127\\.0\\.0\\.4 $sec"

# ---- cache.test: a signed child (DS in test.), TLSA with TTL 1
q MX cache.test
want "secure MX (signed child)" "10 mx\\.cache\\.test\\. $sec"
q A mx.cache.test
want "secure A 127.0.0.1" "has address 127\\.0\\.0\\.1 $sec"
q TLSA "_$P._tcp.mx.cache.test"
want "TLSA 3 1 1 lab1" "has TLSA record 3 1 1 $S1 $sec"
if grep -Eq "^_$P\\._tcp\\.mx\\.cache\\.test\\.[[:space:]]+1[[:space:]]+IN[[:space:]]+TLSA[[:space:]]" \
    "$dir/cache.test.zone.signed"; then
	ok "cache.test.zone.signed: the TLSA RRset has TTL 1"
else bad "cache.test.zone.signed: no TLSA record with TTL 1"; fi
if [ -n "${LAB_KEY_CACHE:-}" ] && [ -r "$dir/$LAB_KEY_CACHE.private" ]; then
	ok "lab.env: LAB_KEY_CACHE names cache.test.'s key ($LAB_KEY_CACHE)"
else bad "lab.env: LAB_KEY_CACHE '${LAB_KEY_CACHE:-}' has no $dir/\$LAB_KEY_CACHE.private"; fi

# ---- MTA-STS: _mta-sts TXT, policy host addresses, MX hosts, policies
# sts DOMAIN ID MXIP POLICYIP MODE: the domain's records and policy file
sts() {
	q TXT "_mta-sts.$1"
	want "secure TXT v=STSv1; id=$2" "has TXT record \"v=STSv1; id=$2\" $sec"
	q A "mta-sts.$1"
	want "policy host: secure A $4" "has address $(printf '%s' "$4" | sed 's/\./\\./g') $sec"
	q MX "$1"
	want "secure MX 10 mx.$1" "mail is handled by 10 mx\.$(printf '%s' "$1" | sed 's/\./\\./g')\. $sec"
	q A "mx.$1"
	want "secure A $3" "has address $(printf '%s' "$3" | sed 's/\./\\./g') $sec"
	_f=$LAB_STS_DIR/mta-sts.$1/mta-sts.txt
	if [ -r "$_f" ] && [ "$(head -n 1 "$_f")" = "$(printf 'version: STSv1\r')" ] &&
	    grep -q "^mode: $5.\$" "$_f" && grep -q '^max_age: 86400.$' "$_f" &&
	    [ "$(grep -c "$(printf '\r')\$" "$_f")" = "$(wc -l <"$_f" | tr -d ' ')" ]; then
		ok "policy mta-sts.$1/mta-sts.txt: STSv1, mode $5, CRLF lines"
	else bad "policy $_f: missing, not mode $5, or not CRLF"; fi
}
sts sts1.test sts1id1 127.0.0.1 127.0.0.21 enforce
sts sts2.test sts2id1 127.0.0.1 127.0.0.22 enforce
sts sts3.test sts3id1 127.0.0.2 127.0.0.23 enforce
sts sts4.test sts4id1 127.0.0.2 127.0.0.24 testing
sts sts5.test s5id1 127.0.0.1 127.0.0.25 enforce
sts ststlsa.test ststlsaid1 127.0.0.1 127.0.0.26 enforce
for d in sts1 sts2 sts3 sts4 sts5; do
	q TLSA "_$P._tcp.mx.$d.test"
	want "no TLSA: NXDOMAIN (secure)" "$nx"
done
q TLSA "_$P._tcp.mx.ststlsa.test"
want "secure TLSA 3 1 1 wrong (DANE fails)" "has TLSA record 3 1 1 $SW $sec"
q TXT _mta-sts.good.test
want "no MTA-STS for the DANE domains: NXDOMAIN (secure)" "$nx"
if grep -Eq '^_mta-sts\.sts5\.test\.[[:space:]]+1[[:space:]]+IN[[:space:]]+TXT[[:space:]]' \
    "$dir/sts5.test.zone.signed"; then
	ok "sts5.test.zone.signed: the _mta-sts TXT has TTL 1"
else bad "sts5.test.zone.signed: no _mta-sts TXT record with TTL 1"; fi
if [ -n "${LAB_KEY_STS5:-}" ] && [ -r "$dir/$LAB_KEY_STS5.private" ]; then
	ok "lab.env: LAB_KEY_STS5 names sts5.test.'s key ($LAB_KEY_STS5)"
else bad "lab.env: LAB_KEY_STS5 '${LAB_KEY_STS5:-}' has no $dir/\$LAB_KEY_STS5.private"; fi
for f in mta-sts.sts1.test:'^mx: \*\.sts1\.test.$' \
    mta-sts.sts2.test:'^mx: \*\.test.$' mta-sts.sts5.test:'^mx: mx\.sts5\.test.$'; do
	if grep -q "${f#*:}" "$LAB_STS_DIR/${f%%:*}/mta-sts.txt"; then
		ok "policy ${f%%:*}: has /${f#*:}/"
	else bad "policy ${f%%:*}: no /${f#*:}/"; fi
done

echo "lab: $n checks, $failed failed"
[ "$failed" = 0 ]
