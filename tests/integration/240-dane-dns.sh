#!/bin/sh
# 240-dane-dns: DNS destinations and DANE with DNSSEC (spec 3 [global] dns_*,
# 4.5, 4.6, 4.8) against an offline DNSSEC lab.
#
# The lab (tests/dns/mkzones.sh, layout in its header): signed zone test. and
# its children insecure.test. (no DS) and bogus.test. (expired RRSIGs), served
# by nsd on 127.0.0.1:DNSPORT, trust anchor = the DS of test.; every MX host
# is 127.0.0.1/2/3 (or .4, where nothing listens) with TLSA records at
# _UPPORT._tcp.HOST.  tests/dns/check.sh proves with unbound-host that each
# scenario validates as intended before the proxy is involved, so a broken
# lab fails here with its own message.
#
# Upstreams: tests/peers/smtp_server.py with STARTTLS on 127.0.0.1, .2 and .3
# at UPPORT (logs up1, up2, up3), each with the lab leaf of its address
# (127.0.0.3 sends leaf + CA for DANE-TA).  One proxy with one client route
# per scenario (tls = starttls, connect = mx:DOMAIN:UPPORT, security = dane
# unless said; helo_name ROUTE.proxy.test, so the upstream logs tell the
# routes apart), [global] dns_stub = test. 127.0.0.1@DNSPORT,
# dns_trust_anchor = the lab's test.ds, dns_timeout = 3s, stats; a second
# proxy whose dns_stub points at a port where nothing listens.  Each
# scenario is one SMTP session (tests/peers/smtp_dialog.py, all at once):
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
#   dnsdown (second proxy): no DNS server -> 421 4.4.3 in under 8 s
#   static: bad.test with tlsa = 3 1 1 (the served key) -> Verified
#     mx.bad.test[127.0.0.2]: static records override DNS
#   secure: good.test, security = secure, ca_file = the test CA (match
#     nexthop:dot-nexthop) -> Verified; verify: security = verify, match =
#     hostname (the MX host) -> Verified
# Then: no upstream ever got a plaintext command after STARTTLS; SIGHUP
# (new resolver contexts) and good again; tlsproxy_dns_lookups_total has
# type="MX" samples with outcome="ok" dnssec="secure" and with
# dnssec="bogus".  Run it with the ASan build too (lib.sh checks the logs).
TP_TIMEOUT=${TP_TIMEOUT:-90}
. "$(dirname "$0")/lib.sh"
require_tool openssl curl ldns-keygen ldns-signzone ldns-key2ds unbound-host
command -v nsd >/dev/null 2>&1 || [ -x /usr/sbin/nsd ] || skip_all "nsd not installed"
need_certs

T0=$(now_ms)
phase() { note "$1 done at $(ms_to_s $(($(now_ms) - T0))) s"; }

# ---------------------------------------------------------------- the lab

DNSPORT=$(free_port)
UP=$(free_port)
LAB=$TP_TMP/lab
sh "$TP_ROOT/tests/dns/mkzones.sh" "$LAB" "$DNSPORT" "$UP" \
    "$CERTS/ca.key" "$CERTS/ca.pem" >"$TP_TMP/mkzones.out" 2>&1 ||
    bail "mkzones" "$(tail -n 5 "$TP_TMP/mkzones.out" | tr '\n' ' ')"
. "$LAB/lab.env"
start_dns "$LAB"
if sh "$TP_ROOT/tests/dns/check.sh" "$LAB" >"$TP_TMP/check.out" 2>&1; then
	pass "DNS lab self-check: $(tail -n 1 "$TP_TMP/check.out")"
else
	sed 's/^/# /' "$TP_TMP/check.out"
	bail "DNS lab self-check" "the lab is broken (tests/dns/check.sh): $(grep -c '^FAIL' "$TP_TMP/check.out") checks failed"
fi
phase "lab"

# ---------------------------------------------------------------- upstreams

start_smtpd up1 "$UP" --addr 127.0.0.1 --cert "$LAB/lab1.pem" --key "$LAB/lab1.key"
start_smtpd up2 "$UP" --addr 127.0.0.2 --cert "$LAB/lab2.pem" --key "$LAB/lab2.key"
start_smtpd up3 "$UP" --addr 127.0.0.3 --cert "$LAB/lab3.pem" --key "$LAB/lab3.key"
U1=$TP_TMP/up1.log U2=$TP_TMP/up2.log U3=$TP_TMP/up3.log

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
global() { # STUB-PORT
	printf '[global]\nworkers = 2\nshutdown_grace = 3s\nstats = 127.0.0.1:0\n'
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
} >"$CFG"
DEAD=$(free_port)	# no DNS server here
"$PY" "$TP_PEERS/util.py" refused "$DEAD" >/dev/null ||
    bail "dead port" "something listens on $DEAD"
CFG2=$TP_TMP/dnsdown.ini
{
	global "$DEAD"
	route dnsdown good.test
} >"$CFG2"

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

for r in good ta insecure half notlsa two twodown twobad nomx cname static \
    secure verify; do
	session "$r" "$r"
done
for r in bad insecure-only half-only expired hostexpired notlsa-only nullmx \
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
nconns() { { conns "$U1" "$1"; conns "$U2" "$1"; conns "$U3" "$1"; } | grep -c . || true; }
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
for u in "$U1" "$U2" "$U3"; do
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
else
	fail "metrics" "no stats port in the log, or curl failed"
fi
phase "metrics"

done_testing
