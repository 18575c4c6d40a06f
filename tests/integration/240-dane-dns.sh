#!/bin/sh
# 240-dane-dns: DNS destinations and DANE with DNSSEC (spec 3 [global] dns_*,
# 4.5, 4.6, 4.8) against an offline DNSSEC lab.
#
# The lab (tests/dns/mkzones.sh, layout in its header): signed zone test. and
# its children insecure.test. (no DS), bogus.test. (expired RRSIGs) and
# cache.test. (signed, TLSA TTL 1), served by nsd on 127.0.0.1:DNSPORT, trust
# anchor = the DS of test.; every MX host is 127.0.0.1/2/3 or ::1 (or .4,
# where nothing listens) with TLSA records at _UPPORT._tcp.HOST.
# tests/dns/check.sh proves with unbound-host that each scenario validates
# as intended before the proxy is involved, so a broken lab fails here with
# its own message.
#
# Upstreams: tests/peers/smtp_server.py --log-sni with STARTTLS on 127.0.0.1,
# .2, .3 and [::1] at UPPORT (logs up1, up2, up3, up6), each with the lab
# leaf of its address (127.0.0.3 sends leaf + CA for DANE-TA; ::1 has lab1),
# logging the SNI of each handshake ("N sni NAME").  One proxy with one
# client route per scenario (tls = starttls, connect = mx:DOMAIN:UPPORT,
# security = dane unless said; helo_name ROUTE.proxy.test, so the upstream
# logs tell the routes apart), [global] dns_stub = test. 127.0.0.1@DNSPORT,
# dns_trust_anchor = the lab's test.ds, dns_timeout = 3s, stats; a second
# proxy whose dns_stub points at a port where nothing listens; a third with
# workers = 1 (the client session cache is per worker) for route cache.
# Each scenario is one SMTP session (tests/peers/smtp_dialog.py, all at
# once):
#   delivered: greeting "220 upstream.test ESMTP first line", the end of DATA
#     gets the upstream's "250 2.0.0 Ok: queued as TEST", the upstream at the
#     expected address got MAIL inside TLS, and the log has
#     "TRUST TLS connection established to HOST[IP]:UPPORT: ";
#   refused: a 421 greeting (exact or by pattern), then the proxy closes.
# Scenarios (route: domain, level -> outcome):
#   good: good.test -> Verified mx.good.test[127.0.0.1]
#   bad: bad.test (TLSA of another key) -> 421 4.7.5 Server certificate not
#     trusted|verified; the proxy reached 127.0.0.2 but sent no plaintext
#     after STARTTLS
#   ta: ta.test (TLSA 2 1 1 of the CA) -> Verified mx.ta.test[127.0.0.3]
#   insecure: insecure.test (no DS) -> delivered, trust word not Verified;
#     insecure-only (dane-only) -> 421 4.7.5, log "no TLSA records found"
#   half: half.insecure.test (insecure MX, secure host mx.good.test) ->
#     Trusted mx.good.test[127.0.0.1]; half-only (dane-only) -> 421 4.7.5
#   expired: bogus.test (MX BOGUS) -> 421 4.4.3, the log says why (bogus /
#     DNSSEC validation failure), no connection upstream
#   hostexpired: hostbogus.test (secure MX, BOGUS host) -> 421 4.4.3 or 4.7.5,
#     no connection upstream
#   notlsa: notlsa.test (no TLSA) -> delivered, not Verified; notlsa-only
#     (dane-only) -> 421 4.7.5
#   unusable: unusable.test (secure, only PKIX-EE 1 1 1) -> dane acts as
#     encrypt: delivered over TLS, not Verified, log "all TLSA records
#     unusable"; unusable-only (dane-only) -> 421 4.7.5
#   two: two.test, both up -> Verified mx1.two.test[127.0.0.2] (preference)
#   twodown: preferred MX on 127.0.0.4 (refused) -> Verified
#     mx2.twodown.test[127.0.0.1]
#   twobad: preferred MX's TLSA does not match -> the next MX, Verified
#     mx2.twobad.test[127.0.0.1] (Postfix: a TLS failure is a soft error of
#     that host, the next MX is tried)
#   nomx: nomx.test (no MX: implicit MX) -> Verified nomx.test[127.0.0.1]
#   nullmx: nullmx.test -> exactly "421 4.1.10 Domain nullmx.test does not
#     accept mail (nullMX)"
#   cname: cname.test (MX host a CNAME to mx.good.test) -> Verified
#     alias.cname.test or mx.good.test [127.0.0.1] (TLSA of the target)
#   nxdomain: nothere.test -> 421 4.4.4
#   v6: v6.test (MX host with AAAA ::1 only) -> Verified mx.v6.test[::1],
#     no IPv4 attempt
#   dual: dual.test (A 127.0.0.4, refused, and AAAA ::1) -> the IPv4
#     address is tried first (connect to mx.dual.test[127.0.0.4] refused),
#     then Verified mx.dual.test[::1]
#   (v6 and dual are left out, with a note, where ::1 cannot be bound)
#   dnsdown (second proxy): no DNS server -> 421 4.4.3 in under 8 s
#   static: bad.test with tlsa = 3 1 1 (the served key) -> Verified
#     mx.bad.test[127.0.0.2]: static records override DNS
#   secure: good.test, security = secure, ca_file = the test CA (match
#     nexthop:dot-nexthop) -> Verified; verify: security = verify, match =
#     hostname (the MX host) -> Verified
# SNI (the upstream's "sni" lines): good -> mx.good.test; cname -> mx.good.test
# (the TLSA base domain: the records were found at the CNAME target, RFC
# 7671 7); notlsa (dane acting as may) -> mx.notlsa.test, the MX host name;
# v6 -> mx.v6.test.
# Then: no upstream ever got a plaintext command after STARTTLS; SIGHUP
# (new resolver contexts) and good again.
# Session cache (third proxy, route cache: cache.test, MX mx.cache.test,
# 127.0.0.1, TLSA 3 1 1 lab1 with TTL 1; the cache is keyed by the TLSA
# answer, src/sesscache.c), sessions one after the other, no SIGHUP:
#   1 Verified ... established; 2 at once: Verified ... reused; 3 after the
#   TTL (the same RRset again): reused; then the RRset becomes lab1 + lab2
#   (cache.test.zone re-signed, nsd restarted on the same port, unbound-host
#   sees both records secure); 4 after the TTL: Verified ... established (a
#   full handshake: a session verified under one TLSA RRset is never
#   resumed under another); 5 at once: reused (the same RRset, which a
#   resolver may hand out in another order: the key is the set, not the
#   order of its records).  All five delivered.
# Metrics: tlsproxy_dns_lookups_total has type="MX" samples with
# outcome="ok" dnssec="secure" and with dnssec="bogus";
# tlsproxy_dane_total{route,result}: good verified, bad mismatch, insecure
# no_tlsa, half trusted, insecure-only refused, each >= 1.  Run it with the
# ASan build too (lib.sh checks the logs).
TP_TIMEOUT=${TP_TIMEOUT:-90}
. "$(dirname "$0")/lib.sh"
require_tool openssl curl ldns-keygen ldns-signzone ldns-key2ds unbound-host
command -v nsd >/dev/null 2>&1 || [ -x /usr/sbin/nsd ] || skip_all "nsd not installed"
need_certs

T0=$(now_ms)
phase() { note "$1 done at $(ms_to_s $(($(now_ms) - T0))) s"; }

# ---------------------------------------------------------------- the lab

start_lab
if sh "$TP_ROOT/tests/dns/check.sh" "$LAB" >"$TP_TMP/check.out" 2>&1; then
	pass "DNS lab self-check: $(tail -n 1 "$TP_TMP/check.out")"
else
	sed 's/^/# /' "$TP_TMP/check.out"
	bail "DNS lab self-check" "the lab is broken (tests/dns/check.sh): $(grep -c '^FAIL' "$TP_TMP/check.out") checks failed"
fi
phase "lab"

# ---------------------------------------------------------------- upstreams

start_smtpd up1 "$UP" --addr 127.0.0.1 --cert "$LAB/lab1.pem" --key "$LAB/lab1.key" --log-sni
start_smtpd up2 "$UP" --addr 127.0.0.2 --cert "$LAB/lab2.pem" --key "$LAB/lab2.key" --log-sni
start_smtpd up3 "$UP" --addr 127.0.0.3 --cert "$LAB/lab3.pem" --key "$LAB/lab3.key" --log-sni
U1=$TP_TMP/up1.log U2=$TP_TMP/up2.log U3=$TP_TMP/up3.log U6=$TP_TMP/up6.log
# IPv6: an upstream on [::1]:UP, where the loopback has ::1
HAVE6=0
if "$PY" -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' 2>/dev/null; then
	HAVE6=1
	start_smtpd up6 "$UP" --addr ::1 --cert "$LAB/lab1.pem" --key "$LAB/lab1.key" --log-sni
else
	note "no IPv6 loopback (::1): routes v6 and dual left out"
	: >"$U6"
fi

# ---------------------------------------------------------------- the proxies

# route NAME DOMAIN [LEVEL [KEY=VALUE...]]: a client route to mx:DOMAIN:UP
route() {
	printf '\n[%s]\nmode = client\ntls = starttls\nsecurity = %s\n' "$1" "${3:-dane}"
	printf 'accept = 127.0.0.1:0\nconnect = mx:%s:%s\n' "$2" "$UP"
	printf 'helo_name = %s.proxy.test\nsmtp_timeout = 10s\nconnect_timeout = 3s\n' "$1"
	shift 2
	if [ $# -gt 0 ]; then shift; fi
	for _kv in "$@"; do printf '%s = %s\n' "${_kv%%=*}" "${_kv#*=}"; done
}
global() { # STUB-PORT [WORKERS]
	printf '[global]\nworkers = %s\nshutdown_grace = 3s\nstats = 127.0.0.1:0\n' "${2:-2}"
	printf 'dns_stub = test. 127.0.0.1@%s\ndns_trust_anchor = %s\ndns_timeout = 3s\n' \
	    "$1" "$LAB/test.ds"
}
CFG=$TP_TMP/dane.ini
{
	global "$DNSPORT"
	route good good.test
	route bad bad.test
	route ta ta.test
	route insecure insecure.test
	route insecure-only insecure.test dane-only
	route half half.insecure.test
	route half-only half.insecure.test dane-only
	route expired bogus.test
	route hostexpired hostbogus.test
	route notlsa notlsa.test
	route notlsa-only notlsa.test dane-only
	route unusable unusable.test
	route unusable-only unusable.test dane-only
	route two two.test
	route twodown twodown.test
	route twobad twobad.test
	route nomx nomx.test
	route nullmx nullmx.test
	route cname cname.test
	route nxdomain nothere.test
	route static bad.test dane "tlsa=3 1 1 $LAB_SPKI2"
	route secure good.test secure "ca_file=$CERTS/ca.pem"
	route verify good.test verify "ca_file=$CERTS/ca.pem" "match=hostname"
	if [ "$HAVE6" = 1 ]; then
		route v6 v6.test
		route dual dual.test
	fi
} >"$CFG"
DEAD=$(free_port)	# no DNS server here
"$PY" "$TP_PEERS/util.py" refused "$DEAD" >/dev/null ||
    bail "dead port" "something listens on $DEAD"
CFG2=$TP_TMP/dnsdown.ini
{
	global "$DEAD"
	route dnsdown good.test
} >"$CFG2"
CFG3=$TP_TMP/cache.ini
{
	global "$DNSPORT" 1
	route cache cache.test
} >"$CFG3"

if "$TLSPROXY" -t -c "$CFG" >"$TP_TMP/t.out" 2>&1; then
	pass "-t: dns_stub, dns_trust_anchor, dns_timeout and connect = mx:DOMAIN:PORT accepted"
else
	fail "-t: dns_* keys and mx: destinations" "$(head -n 5 "$TP_TMP/t.out" | tr '\n' ' ')"
fi
start_proxy "$CFG"
P1_LOG=$PROXY_LOG
P1_PID=$PROXY_PID
start_proxy "$CFG2"
P2_LOG=$PROXY_LOG
start_proxy "$CFG3"
P3_LOG=$PROXY_LOG
PROXY_LOG=$P1_LOG
PROXY_PID=$P1_PID
phase "proxies"

# ---------------------------------------------------------------- sessions

# session DLG ROUTE: a whole transaction through ROUTE in the background,
# sender DLG@sender.test; transcript $TP_TMP/DLG.dlg
DLG_PIDS=
session() {
	spawn_dialog "$1" "$(route_port "$2" "$P1_LOG")" --timeout 6 r \
	    "s:EHLO c-$1.test" r "s:MAIL FROM:<$1@sender.test>" r \
	    "s:RCPT TO:<rcpt@$2.example>" r s:DATA r "s:Subject: $1" s: \
	    "s:via route $2" s:. r s:QUIT r eof
	DLG_PIDS="$DLG_PIDS $BG_PID"
}
# refusal DLG ROUTE: read the greeting, then wait for the close
refusal() {
	spawn_dialog "$1" "$(route_port "$2" "$P1_LOG")" --timeout 6 r eof:5
	DLG_PIDS="$DLG_PIDS $BG_PID"
}
wait_dialogs() {
	for _p in $DLG_PIDS; do wait_pid "$_p" 40; done
	DLG_PIDS=
}

V6ROUTES=
if [ "$HAVE6" = 1 ]; then V6ROUTES="v6 dual"; fi
for r in good ta insecure half notlsa unusable two twodown twobad nomx cname static \
    secure verify $V6ROUTES; do
	session "$r" "$r"
done
for r in bad insecure-only half-only expired hostexpired notlsa-only unusable-only nullmx \
    nxdomain; do
	refusal "$r" "$r"
done
# meanwhile the proxy without DNS, timed
t=$(now_ms)
dialog dnsdown "$(route_port dnsdown "$P2_LOG")" --timeout 12 r eof:5
down_ms=$(($(now_ms) - t))
wait_dialogs
phase "sessions"

# ---------------------------------------------------------------- outcomes

upre=$(printf '%s' "$UP")
# est ROUTE TRUST HOST IP: ERE of ROUTE's "TRUST TLS connection established"
# line (TRUST and HOST are EREs, IP a plain address)
est() {
	printf '\\]: %s/[^: ]+: %s TLS connection established to %s\\[%s\\]:%s: ' \
	    "$1" "$2" "$3" "$(printf '%s' "$4" | sed 's/\./\\./g')" "$upre"
}

# delivered DLG ROUTE UPLOG TRUST HOST IP: the session DLG through ROUTE
# delivered to the upstream whose log is UPLOG, logged as TRUST to HOST[IP]
delivered() {
	_d=$TP_TMP/$1.dlg
	expect_reply "$1: greeting is the upstream's first line" "$_d" "" \
	    "220 upstream.test ESMTP first line"
	expect_reply "$1: end of data accepted by the upstream" "$_d" "." \
	    "250 2.0.0 Ok: queued as TEST"
	expect_reply "$1: QUIT" "$_d" "QUIT" "221 2.0.0 Bye"
	expect_match "$1: $(basename "$3" .log) ($6) got MAIL inside TLS" "$3" \
	    "^[0-9]+ T: MAIL FROM:<$1@sender\\.test>\$"
	check "$1: log: $4 TLS connection established to $5[$6]:UP" \
	    log_has "$(est "$2" "$4" "$5" "$6")"
}

# refused DLG ERE [exact]: the greeting matches ERE (is it, with "exact"),
# then the proxy closes; the message went nowhere
refused() {
	_d=$TP_TMP/$1.dlg
	if [ "${3:-}" = exact ]; then
		expect_reply "$1: greeting '$2'" "$_d" "" "$2"
	else
		expect_reply_match "$1: greeting /$2/" "$_d" "" "$2"
	fi
	expect_line "$1: the proxy closes after the 421" "$_d" "EOF"
}

# conns UPLOG ROUTE: the connections of ROUTE (its helo_name) in UPLOG, one
# a line, events joined with "|"
conns() {
	awk -v helo="$2.proxy.test" '
		{ n = $1; sub(/^[0-9]+ /, ""); ev[n] = ev[n] "|" $0 }
		$0 == "C: EHLO " helo { mine[n] = 1 }
		END { for (n in mine) print substr(ev[n], 2) }' "$1"
}
# nconns ROUTE: how many upstream connections ROUTE made, all upstreams
nconns() { { conns "$U1" "$1"; conns "$U2" "$1"; conns "$U3" "$1"; conns "$U6" "$1"; } | grep -c . || true; }
# snis UPLOG ROUTE: the SNI values ROUTE's connections to UPLOG's upstream
# logged ("-": none), sorted, unique, joined with ","
snis() {
	conns "$1" "$2" | tr '|' '\n' | sed -n 's/^sni //p' | sort -u |
	    tr '\n' ',' | sed 's/,$//'
}
# expect_sni ROUTE UPLOG NAME: every connection of ROUTE sent SNI NAME
expect_sni() {
	_s=$(snis "$2" "$1")
	if [ "$_s" = "$3" ]; then pass "$1: SNI $3"
	else fail "$1: SNI $3" "the upstream logged SNI '$_s' [$(conns "$2" "$1" | tr '\n' ' ' | cut -c 1-500)]"; fi
}
# route_log ROUTE: ROUTE's log lines of the first proxy into $TP_TMP/ROUTE.rlog
route_log() {
	grep -E "\\]: ((warning|error): )?$1/[^: ]+: " "$P1_LOG" >"$TP_TMP/$1.rlog" || true
	RLOG=$TP_TMP/$1.rlog
}
NOTV='(Untrusted|Anonymous|Trusted)'

# ---- good
delivered good good "$U1" Verified 'mx\.good\.test' 127.0.0.1

# ---- bad: a TLSA record of another key
refused bad '^421 4\.7\.5 Server certificate not (trusted|verified)'
c=$(conns "$U2" bad)
check "bad: the proxy reached mx.bad.test (127.0.0.2) and sent STARTTLS" \
    sh -c 'printf "%s\n" "$1" | grep -q "|C: STARTTLS"' - "$c"
if printf '%s\n' "$c" | grep -Eq '\|C: STARTTLS\|.*\|C: '; then
	fail "bad: no plaintext command after STARTTLS" "$c"
else pass "bad: no plaintext command after STARTTLS"; fi
expect_no_match "bad: no MAIL reached any upstream" "$U2" 'MAIL FROM:<bad@'
route_log bad
expect_match "bad: log: certificate verification failed for mx.bad.test[127.0.0.2]" \
    "$RLOG" "verification failed for mx\\.bad\\.test\\[127\\.0\\.0\\.2\\]:$upre"

# ---- ta: DANE-TA(2)
delivered ta ta "$U3" Verified 'mx\.ta\.test' 127.0.0.3

# ---- insecure delegation
delivered insecure insecure "$U1" "$NOTV" 'mx\.insecure\.test' 127.0.0.1
expect_no_match "insecure: not Verified" "$P1_LOG" "$(est insecure Verified '[^[]+' 127.0.0.1)"
refused insecure-only '^421 4\.7\.5 '
route_log insecure-only
expect_match "insecure-only: log: no TLSA records found" "$RLOG" 'no TLSA records found'

# ---- insecure MX, secure host: TLSA used, logged Trusted
delivered half half "$U1" Trusted 'mx\.good\.test' 127.0.0.1
refused half-only '^421 4\.7\.5 '

# ---- bogus MX RRset
refused expired '^421 4\.4\.3 '
route_log expired
# the domain is bogus.test: look for the word outside that name
if sed 's/bogus\.test//g' "$RLOG" | grep -Eiq 'bogus|dnssec|validation fail'; then
	pass "expired: log says why (bogus / DNSSEC validation failure)"
else fail "expired: log says why (bogus / DNSSEC validation failure)" "$(tr '\n' '|' <"$RLOG" | cut -c 1-500)"; fi
check "expired: no upstream connection" [ "$(nconns expired)" = 0 ]

# ---- secure MX, bogus host
refused hostexpired '^421 4\.(4\.3|7\.5) '
check "hostexpired: no upstream connection" [ "$(nconns hostexpired)" = 0 ]

# ---- no TLSA records
delivered notlsa notlsa "$U1" "$NOTV" 'mx\.notlsa\.test' 127.0.0.1
refused notlsa-only '^421 4\.7\.5 '

# ---- secure TLSA, none usable: encrypt (dane), refused (dane-only)
delivered unusable unusable "$U1" "$NOTV" 'mx\.unusable\.test' 127.0.0.1
check "unusable: log: all TLSA records unusable" \
    log_has "unusable/[^:]+: .*all TLSA records unusable"
refused unusable-only '^421 4\.7\.5 '

# ---- two MX hosts
delivered two two "$U2" Verified 'mx1\.two\.test' 127.0.0.2
delivered twodown twodown "$U1" Verified 'mx2\.twodown\.test' 127.0.0.1
delivered twobad twobad "$U1" Verified 'mx2\.twobad\.test' 127.0.0.1
c=$(conns "$U2" twobad)
check "twobad: the preferred MX (127.0.0.2) was tried first" [ -n "$c" ]
expect_no_match "twobad: nothing delivered to the mismatching MX" "$U2" 'MAIL FROM:<twobad@'

# ---- implicit MX, null MX, CNAME, NXDOMAIN
delivered nomx nomx "$U1" Verified 'nomx\.test' 127.0.0.1
refused nullmx '421 4.1.10 Domain nullmx.test does not accept mail (nullMX)' exact
check "nullmx: no upstream connection" [ "$(nconns nullmx)" = 0 ]
delivered cname cname "$U1" Verified '(alias\.cname\.test|mx\.good\.test)' 127.0.0.1
refused nxdomain '^421 4\.4\.4 '
check "nxdomain: no upstream connection" [ "$(nconns nxdomain)" = 0 ]

# ---- IPv6-only and dual-stack MX hosts
if [ "$HAVE6" = 1 ]; then
	delivered v6 v6 "$U6" Verified 'mx\.v6\.test' ::1
	route_log v6
	expect_no_match "v6: no IPv4 address tried" "$RLOG" 'mx\.v6\.test\[[0-9.]+\]'
	delivered dual dual "$U6" Verified 'mx\.dual\.test' ::1
	route_log dual
	refl=$(grep -nE "connect to mx\\.dual\\.test\\[127\\.0\\.0\\.4\\]:$upre: " "$RLOG" | head -n 1 | cut -d: -f1)
	estl=$(grep -nE "Verified TLS connection established to mx\\.dual\\.test\\[::1\\]:$upre: " "$RLOG" | head -n 1 | cut -d: -f1)
	check "dual: log: connect to mx.dual.test[127.0.0.4]:UP refused (IPv4 first)" \
	    grep -Eq "connect to mx\\.dual\\.test\\[127\\.0\\.0\\.4\\]:$upre: .*refused" "$RLOG"
	first=no
	if [ -n "$refl" ] && [ -n "$estl" ] && [ "$refl" -lt "$estl" ]; then first=yes; fi
	check "dual: the IPv4 address was tried before ::1 (route log lines ${refl:-none} < ${estl:-none})" \
	    [ "$first" = yes ]
fi

# ---- SNI: the TLSA base domain under DANE, else the MX host name
expect_sni good "$U1" mx.good.test
expect_sni cname "$U1" mx.good.test
expect_sni notlsa "$U1" mx.notlsa.test
if [ "$HAVE6" = 1 ]; then expect_sni v6 "$U6" mx.v6.test; fi

# ---- no DNS server
refused dnsdown '^421 4\.4\.3 '
lim=$((8000 + TP_SLACK * 1000))
check "dnsdown: 421 within dns_timeout (3 s) + slack: $(ms_to_s "$down_ms") s < $(ms_to_s "$lim") s" \
    [ "$down_ms" -lt "$lim" ]

# ---- static TLSA, secure, verify
delivered static static "$U2" Verified 'mx\.bad\.test' 127.0.0.2
delivered secure secure "$U1" Verified 'mx\.good\.test' 127.0.0.1
delivered verify verify "$U1" Verified 'mx\.good\.test' 127.0.0.1

# ---- never plaintext after STARTTLS, nothing of a mail in plaintext
for u in "$U1" "$U2" "$U3" "$U6"; do
	if [ "$u" = "$U6" ] && [ "$HAVE6" = 0 ]; then continue; fi
	n=$(basename "$u" .log)
	after=$(awk '$2 == "C:" && toupper($3) == "STARTTLS" { st[$1] = 1; next }
		$2 == "C:" && st[$1] { print; exit }' "$u")
	check "$n: no plaintext command after STARTTLS${after:+ (got '$after')}" [ -z "$after" ]
	expect_no_match "$n: no MAIL/RCPT/DATA in plaintext" "$u" '^[0-9]+ C: (MAIL|RCPT|DATA)'
done
phase "outcomes"

# ---------------------------------------------------------------- reload

kill -HUP "$P1_PID"
if wait_for_log 'reloaded configuration' 5 "$P1_LOG"; then pass "reload: reloaded configuration"
else fail "reload: reloaded configuration" "not logged within 5 s"; fi
session good2 good
wait_dialogs
delivered good2 good "$U1" Verified 'mx\.good\.test' 127.0.0.1
check "reload: two Verified sessions on route good" \
    [ "$(log_count "$(est good Verified 'mx\.good\.test' 127.0.0.1)" "$P1_LOG")" -ge 2 ]
phase "reload"

# ---------------------------------------------------------------- session cache

# csession K: transaction K through route cache of the third proxy (in the
# foreground), then CHOW: how its TLS session went ("Verified established",
# "Verified reused", ...: the K-th "TLS connection" line of route cache)
csession() {
	dialog "cache$1" "$(route_port cache "$P3_LOG")" --timeout 6 r \
	    "s:EHLO c-cache$1.test" r "s:MAIL FROM:<cache$1@sender.test>" r \
	    "s:RCPT TO:<rcpt@cache.example>" r s:DATA r "s:Subject: cache$1" s: \
	    "s:via route cache" s:. r s:QUIT r eof
	CEND=$(now_ms)
	_l=$(grep -E ": cache/[^: ]+: [A-Za-z]+ TLS connection (established|reused) to " "$P3_LOG" |
	    sed -n "${1}p")
	CHOW=$(printf '%s\n' "$_l" | sed -E -n "s/.*: cache\/[^: ]+: ([A-Za-z]+) TLS connection ([a-z]+) to mx\.cache\.test\[127\.0\.0\.1\]:$upre: .*/\1 \2/p")
	: "${CHOW:=${_l:-none}}"
}
# cache_case K WHAT HOW: session K (WHAT) was delivered, and Verified HOW
cache_case() {
	expect_reply "cache$1: $2: end of data accepted by the upstream" \
	    "$TP_TMP/cache$1.dlg" "." "250 2.0.0 Ok: queued as TEST"
	check "cache$1: $2: Verified TLS connection $3 to mx.cache.test[127.0.0.1]:UP (got '$CHOW')" \
	    [ "$CHOW" = "Verified $3" ]
}
# past_ttl: sleep until 2.5 s after the last session (TLSA TTL 1 s; caches
# count whole seconds)
past_ttl() {
	_w=$((2500 - ($(now_ms) - CEND)))
	if [ "$_w" -gt 0 ]; then sleep "$(ms_to_s "$_w")"; fi
}

csession 1
cache_case 1 "first session" established
csession 2
cache_case 2 "at once" reused
past_ttl
csession 3
cache_case 3 "after the TTL, same TLSA RRset" reused

# the TLSA RRset of mx.cache.test becomes lab1 + lab2 (still matching)
ctl=_$UP._tcp.mx.cache.test
if (cd "$LAB" &&
    sed 's/ SOA \(.*\) 1 3600 600 86400 300$/ SOA \1 2 3600 600 86400 300/' \
	cache.test.zone >cache.test.zone.new &&
    printf '%s\n' "_$UP._tcp.mx 1 TLSA 3 1 1 $LAB_SPKI2" >>cache.test.zone.new &&
    mv cache.test.zone.new cache.test.zone &&
    ldns-signzone -f cache.test.zone.signed cache.test.zone "$LAB_KEY_CACHE") \
    >"$TP_TMP/resign.out" 2>&1; then
	pass "cache.test: TLSA 3 1 1 lab2 added, zone re-signed"
else
	bail "cache.test: re-sign" "$(tail -n 3 "$TP_TMP/resign.out" | tr '\n' ' ')"
fi
kill_pid "$DNS_PID"
start_dns "$LAB"
uh=$(command -v unbound-host || echo /usr/sbin/unbound-host)
t1=$(printf '%s' "$LAB_SPKI1" | tr a-f A-F) t2=$(printf '%s' "$LAB_SPKI2" | tr a-f A-F)
"$uh" -C "$LAB/unbound.conf" -v -t TLSA "$ctl" >"$TP_TMP/tlsa2.out" 2>&1 || true
if grep -q "has TLSA record 3 1 1 $t1 (secure)" "$TP_TMP/tlsa2.out" &&
    grep -q "has TLSA record 3 1 1 $t2 (secure)" "$TP_TMP/tlsa2.out"; then
	pass "cache.test: nsd restarted, TLSA RRset lab1 + lab2 served, secure"
else
	fail "cache.test: nsd restarted, TLSA RRset lab1 + lab2 served, secure" "$(oneline "$TP_TMP/tlsa2.out")"
fi
past_ttl
csession 4
cache_case 4 "after the TLSA RRset changed" established
csession 5
cache_case 5 "at once, under the new RRset" reused
check "cache: no reload of the third proxy" [ "$(log_count 'reloaded configuration' "$P3_LOG")" = 0 ]
phase "session cache"

# ---------------------------------------------------------------- metrics

sport=$(sed -n 's/.*stats: listening on .*:\([0-9][0-9]*\) (GET \/metrics)$/\1/p' "$P1_LOG" | tail -n 1)
M=$TP_TMP/metrics.txt
if [ -n "$sport" ] && curl -s -m 5 -o "$M" "http://127.0.0.1:$sport/metrics"; then
	prom() { "$PY" "$TP_PEERS/prom.py" "$@"; }
	if prom lint "$M" >"$TP_TMP/lint.out" 2>&1; then pass "metrics: exposition format (prom.py lint)"
	else fail "metrics: exposition format (prom.py lint)" "$(head -n 3 "$TP_TMP/lint.out" | tr '\n' '|')"; fi
	v=$(prom sum "$M" tlsproxy_dns_lookups_total type=MX outcome=ok dnssec=secure)
	check "metrics: tlsproxy_dns_lookups_total{type=MX,outcome=ok,dnssec=secure} > 0 (got $v)" \
	    awk -v v="$v" 'BEGIN { exit !(v + 0 > 0) }'
	v=$(prom sum "$M" tlsproxy_dns_lookups_total type=MX dnssec=bogus)
	check "metrics: tlsproxy_dns_lookups_total{type=MX,dnssec=bogus} > 0 (got $v)" \
	    awk -v v="$v" 'BEGIN { exit !(v + 0 > 0) }'
	for rr in good:verified bad:mismatch insecure:no_tlsa half:trusted \
	    insecure-only:refused; do
		v=$(prom get "$M" tlsproxy_dane_total "route=${rr%%:*}" "result=${rr#*:}")
		check "metrics: tlsproxy_dane_total{route=\"${rr%%:*}\",result=\"${rr#*:}\"} >= 1 (got $v)" \
		    awk -v v="$v" 'BEGIN { exit !(v ~ /^[0-9]+$/ && v + 0 >= 1) }'
	done
else
	fail "metrics" "no stats port in the log, or curl failed"
fi
phase "metrics"

done_testing
