#!/bin/sh
# 260-mta-sts: MTA-STS (RFC 8461) and TLS reporting results (RFC 8460),
# spec 3 (mta_sts, mta_sts_cache), 4.8, 4.9, 4.10 and 8 (metrics), against
# the offline DNSSEC lab of 240/250 (tests/dns/mkzones.sh) and an HTTPS
# policy server (tests/peers/sts_server.py).
#
# Lab (layout in mkzones.sh's header): every domain D below has
# _mta-sts.D TXT "v=STSv1; id=..." (secure) and mta-sts.D A 127.0.0.2x;
# sts_server.py listens on 127.0.0.21 ... .26 port 443 (MTA-STS has no
# other port: the test needs root, else it is skipped), certificate
# stsweb.pem (SAN mta-sts.D for every D, the test CA) and, with the
# "badcert" switch, stswrong.pem (SAN mta-sts.wrong.test); it serves
# $LAB/sts/mta-sts.D/mta-sts.txt per Host header, logs "GET HOST PATH ->
# STATUS BYTES" and "TLS ADDR sni NAME cert LABEL -> ..." to $TP_TMP/sts.log,
# and reads its per-host switch files (status, content-type, oversize,
# badcert, ...) on every request.
#   D             MX host (address: upstream)      policy
#   sts1.test     mx.sts1.test (.1: up1, lab1)      enforce, mx: *.sts1.test
#   sts2.test     mx.sts2.test (.1: up1, lab1)      enforce, mx: mx.sts1.test,
#                                                   mx: *.test (one label)
#   sts3.test     mx.sts3.test (.2: up2, lab2: not valid for the name)
#                                                   enforce, mx: mx.sts3.test
#   sts4.test     mx.sts4.test (.2: up2, idem)      testing, mx: mx.sts4.test
#   ststlsa.test  mx.ststlsa.test (.1: up1), TLSA 3 1 1 of a key nobody
#                 serves (DANE fails)               enforce, would pass
#   sts5.test     mx.sts5.test (.1: up1); a signed child zone whose TXT
#                 (TTL 1) changes at runtime        enforce, mx: mx.sts5.test
# Upstreams: tests/peers/smtp_server.py --log-sni on 127.0.0.1 (up1, lab1)
# and 127.0.0.2 (up2, lab2) at the lab's UPPORT.
# Before the proxy: the lab self-check (tests/dns/check.sh), and curl
# --cacert CA --resolve mta-sts.D:443:ADDR fetches every policy as served
# (200 text/plain, the file's bytes), and the switches work (404, a bad
# certificate: curl exit 60); then sts.log is emptied.
#
# One proxy: [global] dns_stub/dns_trust_anchor/dns_timeout as 250,
# mta_sts_cache = $TP_TMP/sts.cache, stats; routes
#   gw       gateway (mta_sts not set: yes by default), port UPPORT,
#            ca_file = the test CA, helo_name gw.proxy.test
#   gwpf     the same with policy_file "sts3.test may"
#   gwoff    the same with mta_sts = no
#   c-sts1   client, starttls, connect = mx:sts1.test:UPPORT, security =
#            may, mta_sts = yes, ca_file = the test CA
#   c-sts2   the same to mx:sts2.test:UPPORT
#   c-nosts  mx:sts2.test:UPPORT, security = may, mta_sts not set (no)
# Sessions one after the other (tests/peers/smtp_dialog.py); a gateway
# session is EHLO, MAIL FROM:<NAME@mta.test>, RCPT TO:<u@D>, then DATA and
# a message (delivered) or RSET (refused), QUIT.  Scenarios:
#   good (good.test: DANE, no _mta-sts TXT) -> delivered, Verified;
#   sts1 (enforce, MX matches *.sts1.test) -> RCPT 250, delivered to up1
#     inside TLS, log "Verified TLS connection established to
#     mx.sts1.test[127.0.0.1]:UP: ... for sts1.test", SNI mx.sts1.test, one
#     GET of mta-sts.sts1.test/.well-known/mta-sts.txt -> 200, over TLS to
#     127.0.0.21 with SNI mta-sts.sts1.test;
#   sts2 (enforce, MX outside the patterns) -> RCPT 451 4.7.5, no
#     connection to 127.0.0.1 at all, a log line names MTA-STS and
#     mx.sts2.test;
#   sts3 (enforce, certificate not valid for mx.sts3.test) -> RCPT
#     "451 4.7.5 Server certificate not verified...", log "verification
#     failed for mx.sts3.test[127.0.0.2]:UP", no MAIL reached up2;
#   sts4 (testing, the same failing check) -> delivered to up2, not
#     Verified, log "MTA-STS testing: would fail: certificate-host-mismatch";
#   ststlsa (DANE TLSA mismatch + an enforce policy the MX would pass) ->
#     RCPT "451 4.7.5 Server certificate not trusted|verified: ...TLSA...":
#     DANE wins; log "verification failed for mx.ststlsa.test[127.0.0.1]";
#   gwpf: sts3.test with a policy_file entry "may" -> delivered (the
#     admin's entry wins over MTA-STS); gwoff: sts2.test -> delivered;
#   c-sts1 -> the upstream's greeting, delivered, log "Verified TLS
#     connection established to mx.sts1.test[127.0.0.1]:UP"; still one GET
#     of mta-sts.sts1.test (one cache per domain, every route);
#   c-sts2 -> greeting 421 4.7.5, then the proxy closes, no connection to
#     127.0.0.1; c-nosts (MTA-STS off) -> delivered.
# sts5, the policy id changing at runtime (the zone re-signed, nsd
# restarted on the same port, unbound-host sees the new id secure, then
# 2.5 s for the TTL of 1 s):
#   id s5id1 -> delivered, Verified mx.sts5.test, one GET;
#   id s5id2, the policy now "enforce, mx: mx.nowhere.test" -> a second GET
#     (200), RCPT 451 4.7.5: the new policy applies;
#   then, with the served policy back to "mx: mx.sts5.test" (which would
#     deliver), one new id per fetch failure: 301 (Location: a page that
#     serves the policy: never requested), 404, an oversized body (70000
#     octets > 64 KB), Content-Type text/html, a certificate for the wrong
#     name (sts.log: "cert bad", no GET); ids s5idredir, s5idnotfound,
#     s5idbig, s5idctype, s5idcert (no digits: a log line quoting the id
#     must not pass for the reason) -> each time the server saw the
#     attempt, RCPT 451 4.7.5 (the cached policy of id s5id2 is kept), and
#     the proxy logged why (per case: 301/redirect, 404, size, content
#     type, certificate);
#   the cache file names sts1.test, sts1id1, sts5.test, s5id2 and
#     mx.nowhere.test.
# Metrics (tests/peers/prom.py): exposition lint;
# tlsproxy_tlsrpt_results_total{route,domain,policy_type,result_type}:
# gw sts1.test sts success, gw sts2.test sts validation-failure, gw
# sts3.test sts certificate-host-mismatch, gw sts4.test sts
# certificate-host-mismatch (testing counts too), gw good.test tlsa success,
# gw ststlsa.test tlsa a failure type, c-sts1 sts1.test sts success,
# c-sts2 sts2.test sts validation-failure.
# Restart: SIGTERM (exit 0), every policy host answers 404, the proxy
# starts again with the same config: sts1 delivered and Verified with no
# new GET of mta-sts.sts1.test (the policy came from the cache file), sts2
# and sts5 RCPT 451 4.7.5 (their cached policies).
# Run it with the ASan build too (lib.sh checks the logs).
TP_TIMEOUT=${TP_TIMEOUT:-120}
. "$(dirname "$0")/lib.sh"
require_tool openssl curl ldns-keygen ldns-signzone ldns-key2ds unbound-host
command -v nsd >/dev/null 2>&1 || [ -x /usr/sbin/nsd ] || skip_all "nsd not installed"
"$PY" -c 'import socket; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.21", 443))' 2>/dev/null ||
    skip_all "cannot listen on 127.0.0.21:443 (MTA-STS policy hosts use port 443: run as root)"
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
WWW=$LAB_STS_DIR
phase "lab"

# ---------------------------------------------------------------- peers

start_smtpd up1 "$UP" --addr 127.0.0.1 --cert "$LAB/lab1.pem" --key "$LAB/lab1.key" --log-sni
start_smtpd up2 "$UP" --addr 127.0.0.2 --cert "$LAB/lab2.pem" --key "$LAB/lab2.key" --log-sni
U1=$TP_TMP/up1.log U2=$TP_TMP/up2.log

SLOG=$TP_TMP/sts.log
: >"$SLOG"
set --
for a in $LAB_STS_ADDRS; do set -- "$@" --addr "$a"; done
spawn "$TP_TMP/sts.out" "$PY" "$TP_PEERS/sts_server.py" "$WWW" "$SLOG" "$@" \
    --cert "$LAB/stsweb.pem" --key "$LAB/stsweb.key" \
    --bad-cert "$LAB/stswrong.pem" --bad-key "$LAB/stswrong.key"
set --
wait_file "$TP_TMP/sts.out" 5 '^ready' ||
    bail "sts_server" "not ready: $(oneline "$TP_TMP/sts.out")"

# fetch D ADDR: curl the policy of D as an MTA-STS client would (the test
# CA, the name resolved to ADDR); FETCH "CODE CONTENT-TYPE", body in
# $TP_TMP/fetch.body, FETCH_RC curl's exit status
fetch() {
	FETCH_RC=0
	FETCH=$(curl -sS -m 5 --cacert "$CERTS/ca.pem" --resolve "mta-sts.$1:443:$2" \
	    -o "$TP_TMP/fetch.body" -w '%{http_code} %{content_type}' \
	    "https://mta-sts.$1/.well-known/mta-sts.txt" 2>"$TP_TMP/fetch.err") || FETCH_RC=$?
}
i=0
for d in sts1.test sts2.test sts3.test sts4.test sts5.test ststlsa.test; do
	i=$((i + 1))
	fetch "$d" "127.0.0.2$i"
	if [ "$FETCH_RC" = 0 ] && [ "$FETCH" = "200 text/plain" ] &&
	    cmp -s "$TP_TMP/fetch.body" "$WWW/mta-sts.$d/mta-sts.txt"; then
		pass "policy server: https://mta-sts.$d/ (127.0.0.2$i:443) serves its policy, 200 text/plain"
	else
		fail "policy server: https://mta-sts.$d/ (127.0.0.2$i:443) serves its policy" \
		    "curl exit $FETCH_RC, '$FETCH' $(oneline "$TP_TMP/fetch.err")"
	fi
done
echo 404 >"$WWW/mta-sts.sts5.test/status"
fetch sts5.test 127.0.0.25
check "policy server: the status switch (404; got '$FETCH')" [ "${FETCH%% *}" = 404 ]
rm -f "$WWW/mta-sts.sts5.test/status"
: >"$WWW/mta-sts.sts5.test/badcert"
fetch sts5.test 127.0.0.25
check "policy server: the badcert switch: curl refuses the certificate (exit $FETCH_RC)" \
    [ "$FETCH_RC" = 60 ]
rm -f "$WWW/mta-sts.sts5.test/badcert"
check "policy server: the log has the requests and the bad certificate" \
    grep -q "^TLS 127\\.0\\.0\\.25 sni mta-sts\\.sts5\\.test cert bad -> " "$SLOG"
: >"$SLOG"	# from here on: the proxy's requests only
phase "peers"

# ---------------------------------------------------------------- the proxy

CFG=$TP_TMP/sts.ini
CACHE=$TP_TMP/sts.cache
printf 'sts3.test\tmay\n' >"$TP_TMP/policy"
gwroute() { # NAME [KEY=VALUE...]
	printf '\n[%s]\nmode = gateway\naccept = 127.0.0.1:0\nport = %s\n' "$1" "$UP"
	printf 'hostname = %s.test\nhelo_name = %s.proxy.test\nca_file = %s\n' "$1" "$1" "$CERTS/ca.pem"
	printf 'connect_timeout = 3s\nsmtp_timeout = 10s\n'
	shift
	for _kv in "$@"; do printf '%s = %s\n' "${_kv%%=*}" "${_kv#*=}"; done
}
croute() { # NAME DOMAIN [KEY=VALUE...]
	printf '\n[%s]\nmode = client\ntls = starttls\nsecurity = may\n' "$1"
	printf 'accept = 127.0.0.1:0\nconnect = mx:%s:%s\nca_file = %s\n' "$2" "$UP" "$CERTS/ca.pem"
	printf 'helo_name = %s.proxy.test\nsmtp_timeout = 10s\nconnect_timeout = 3s\n' "$1"
	shift 2
	for _kv in "$@"; do printf '%s = %s\n' "${_kv%%=*}" "${_kv#*=}"; done
}
{
	printf '[global]\nworkers = 2\nshutdown_grace = 2s\nstats = 127.0.0.1:0\n'
	printf 'dns_stub = test. 127.0.0.1@%s\ndns_trust_anchor = %s\ndns_timeout = 3s\n' \
	    "$DNSPORT" "$LAB/test.ds"
	printf 'mta_sts_cache = %s\n' "$CACHE"
	gwroute gw
	gwroute gwpf "policy_file=$TP_TMP/policy"
	gwroute gwoff "mta_sts=no"
	croute c-sts1 sts1.test "mta_sts=yes"
	croute c-sts2 sts2.test "mta_sts=yes"
	croute c-nosts sts2.test
} >"$CFG"
if "$TLSPROXY" -t -c "$CFG" >"$TP_TMP/t.out" 2>&1; then
	pass "-t: mta_sts_cache, mta_sts on gateway and mx: client routes accepted"
else
	fail "-t: mta_sts_cache, mta_sts" "$(head -n 5 "$TP_TMP/t.out" | tr '\n' ' ')"
fi
start_proxy "$CFG"
P1_PID=$PROXY_PID
phase "proxy"

# ---------------------------------------------------------------- helpers

upre=$UP
QUEUED='250 2.0.0 Ok: queued as TEST'
NOTV='(Untrusted|Anonymous|Trusted)'

# deliver NAME DOMAIN [ROUTE]: a gateway session through ROUTE (gw) with a
# message from NAME@mta.test to u@DOMAIN; DLG is its transcript
deliver() {
	dialog "$1" "$(route_port "${3:-gw}")" --timeout 15 r "s:EHLO mta.test" r \
	    "s:MAIL FROM:<$1@mta.test>" r "s:RCPT TO:<u@$2>" r s:DATA r \
	    "x:Subject: $1\\r\\n\\r\\nbody\\r\\n.\\r\\n" r s:QUIT r eof
}
# attempt NAME DOMAIN [ROUTE]: the same up to RCPT, then RSET (a refusal
# leaves nothing half-done)
attempt() {
	dialog "$1" "$(route_port "${3:-gw}")" --timeout 15 r "s:EHLO mta.test" r \
	    "s:MAIL FROM:<$1@mta.test>" r "s:RCPT TO:<u@$2>" r s:RSET r s:QUIT r eof
}
# delivered NAME DOMAIN: NAME's RCPT got 250 and the message was accepted
delivered() {
	expect_reply "$1: RCPT u@$2: the upstream's 250" "$DLG" "RCPT TO:<u@$2>" "250 2.0.0 Ok"
	expect_match "$1: message accepted by the upstream" "$DLG" "^S: $QUEUED\$"
}
# deferred NAME DOMAIN ERE: NAME's RCPT got a reply matching ERE
deferred() {
	expect_reply_match "$1: RCPT u@$2: /$3/" "$DLG" "RCPT TO:<u@$2>" "$3"
	expect_reply "$1: the session goes on (RSET)" "$DLG" "RSET" "250 2.0.0 Ok"
}

# uconn LOG SENDER / ulines LOG N / upgot NAME LOG SENDER RCPT SUBJECT [C]
# as in 250-gateway: the upstream connection that got the transaction
uconn() {
	awk -v m="MAIL FROM:<$2>" '
		($2 == "T:" || $2 == "C:") { l = $0; sub(/^[0-9]+ [TC]: /, "", l)
		    if (l == m || index(l, m " ") == 1) { print $1; exit } }' "$1"
}
ulines() { awk -v n="$2" '$1 == n { sub(/^[0-9]+ /, ""); print }' "$1"; }
upgot() {
	_p=${6:-T}
	UC=$(uconn "$2" "$3")
	ulines "$2" "${UC:-none}" >"$TP_TMP/$1.conn"
	if [ -n "$UC" ] && grep -Eq "^$_p: MAIL FROM:<$3>" "$TP_TMP/$1.conn" &&
	    grep -Fxq "$_p: RCPT TO:<$4>" "$TP_TMP/$1.conn" &&
	    grep -Fxq "body: Subject: $5" "$TP_TMP/$1.conn"; then
		pass "$1: $(basename "$2" .log) got MAIL FROM:<$3>, RCPT TO:<$4> and the body ($_p:)"
	else
		fail "$1: $(basename "$2" .log) got MAIL FROM:<$3>, RCPT TO:<$4> and the body ($_p:)" \
		    "connection '${UC:-none}': $(oneline "$TP_TMP/$1.conn")"
	fi
}
# nomail NAME: no upstream got a MAIL from NAME@mta.test
nomail() {
	_c=$(cat "$U1" "$U2" | grep -c "MAIL FROM:<$1@mta\\.test>" || true)
	check "$1: no upstream got MAIL FROM:<$1@mta.test> (got $_c)" [ "$_c" = 0 ]
}
# nconn LOG: connections the upstream of LOG has seen
nconn() { grep -c ' connect from ' "$1" || true; }

# est ROUTE TRUST HOST IP [DOMAIN]: ERE of ROUTE's "TRUST TLS connection
# established|reused to HOST[IP]:UP: ..." (gateway lines end "for DOMAIN")
est() {
	printf '\\]: %s/[^: ]+: %s TLS connection (established|reused) to %s\\[%s\\]:%s: ' \
	    "$1" "$2" "$(printf '%s' "$3" | sed 's/\./\\./g')" \
	    "$(printf '%s' "$4" | sed 's/\./\\./g')" "$upre"
	if [ -n "${5:-}" ]; then
		printf '.* for %s$' "$(printf '%s' "$5" | sed 's/\./\\./g')"
	fi
}

# mark / since: the proxy log lines written after the last mark, in SINCE
PLOG_MARK=0
mark() { PLOG_MARK=$(wc -l <"$PROXY_LOG"); SLOG_MARK=$(wc -l <"$SLOG"); }
since() {
	SINCE=$TP_TMP/since.log
	tail -n "+$((PLOG_MARK + 1))" "$PROXY_LOG" >"$SINCE"
	SSINCE=$TP_TMP/ssince.log
	tail -n "+$((SLOG_MARK + 1))" "$SLOG" >"$SSINCE"
}
# gets HOST [FILE]: the number of GETs of HOST's policy URL in the policy
# server's log (or FILE)
gets() {
	grep -c "^GET $(printf '%s' "$1" | sed 's/\./\\./g') /\\.well-known/mta-sts\\.txt -> " \
	    "${2:-$SLOG}" || true
}

# ---------------------------------------------------------------- scenarios

# ---- good.test: DANE, no MTA-STS record
deliver good good.test
delivered good good.test
upgot good "$U1" good@mta.test u@good.test good
check "good: log: Verified TLS connection established to mx.good.test[127.0.0.1]:UP ... for good.test" \
    log_has "$(est gw Verified mx.good.test 127.0.0.1 good.test)"

# ---- sts1.test: enforce, the MX matches *.sts1.test
deliver sts1 sts1.test
delivered sts1 sts1.test
upgot sts1 "$U1" sts1@mta.test u@sts1.test sts1
check "sts1: log: Verified TLS connection established to mx.sts1.test[127.0.0.1]:UP: ... for sts1.test" \
    log_has "$(est gw Verified mx.sts1.test 127.0.0.1 sts1.test)"
check "sts1: SNI mx.sts1.test (RFC 8461 7.1: the MX host name)" \
    grep -Fxq "sni mx.sts1.test" "$TP_TMP/sts1.conn"
expect_match "sts1: the policy server: GET mta-sts.sts1.test /.well-known/mta-sts.txt -> 200" \
    "$SLOG" '^GET mta-sts\.sts1\.test /\.well-known/mta-sts\.txt -> 200 [0-9]+$'
check "sts1: the policy was fetched once (got $(gets mta-sts.sts1.test))" \
    [ "$(gets mta-sts.sts1.test)" = 1 ]
expect_match "sts1: the fetch reached 127.0.0.21 (mta-sts.sts1.test in the lab's DNS) with SNI mta-sts.sts1.test" \
    "$SLOG" '^TLS 127\.0\.0\.21 sni mta-sts\.sts1\.test cert default -> ok TLSv1\.[23]$'

# ---- sts2.test: enforce, the MX is outside the patterns
n1=$(nconn "$U1")
mark
attempt sts2 sts2.test
deferred sts2 sts2.test '^451 4\.7\.5 '
since
check "sts2: no connection to mx.sts2.test (127.0.0.1: $n1 connections before, $(nconn "$U1") after)" \
    [ "$(nconn "$U1")" = "$n1" ]
nomail sts2
expect_match "sts2: the policy server: GET mta-sts.sts2.test -> 200" "$SLOG" \
    '^GET mta-sts\.sts2\.test /\.well-known/mta-sts\.txt -> 200 '
if grep -E '\]: gw/' "$SINCE" | grep -i 'mta-sts' | grep -q 'mx\.sts2\.test'; then
	pass "sts2: log: a line about MTA-STS and mx.sts2.test (outside the policy's mx patterns)"
else
	fail "sts2: log: a line about MTA-STS and mx.sts2.test" "$(oneline "$SINCE")"
fi

# ---- sts3.test: enforce, the certificate is not valid for the MX name
mark
attempt sts3 sts3.test
deferred sts3 sts3.test '^451 4\.7\.5 Server certificate not verified'
since
expect_match "sts3: log: verification failed for mx.sts3.test[127.0.0.2]:UP" "$SINCE" \
    "gw/[^: ]+: .*verification failed for mx\\.sts3\\.test\\[127\\.0\\.0\\.2\\]:$upre"
check "sts3: the gateway reached mx.sts3.test (127.0.0.2) and sent STARTTLS" \
    grep -Eq '^[0-9]+ C: STARTTLS$' "$U2"
nomail sts3

# ---- sts4.test: testing, the same failing check: delivered, logged
mark
deliver sts4 sts4.test
delivered sts4 sts4.test
since
upgot sts4 "$U2" sts4@mta.test u@sts4.test sts4
expect_match "sts4: log: MTA-STS testing: would fail: certificate-host-mismatch" "$SINCE" \
    'gw/[^: ]+: .*MTA-STS testing: would fail: certificate-host-mismatch'
expect_match "sts4: log: $NOTV TLS connection ... to mx.sts4.test[127.0.0.2]:UP (the route's level)" \
    "$SINCE" "$(est gw "$NOTV" mx.sts4.test 127.0.0.2)"

# ---- ststlsa.test: DANE fails, an enforce policy would pass: DANE wins
mark
attempt ststlsa ststlsa.test
deferred ststlsa ststlsa.test '^451 4\.7\.5 Server certificate not (trusted|verified): .*TLSA'
since
expect_match "ststlsa: log: verification failed for mx.ststlsa.test[127.0.0.1]:UP" "$SINCE" \
    "gw/[^: ]+: .*verification failed for mx\\.ststlsa\\.test\\[127\\.0\\.0\\.1\\]:$upre"
nomail ststlsa

# ---- policy_file wins; mta_sts = no
deliver pf sts3.test gwpf
delivered pf sts3.test
upgot pf "$U2" pf@mta.test u@sts3.test pf
deliver off sts2.test gwoff
delivered off sts2.test
upgot off "$U1" off@mta.test u@sts2.test off
phase "gateway"

# ---- client routes
# csession NAME ROUTE: a whole transaction through a client route
csession() {
	dialog "$1" "$(route_port "$2")" --timeout 15 r "s:EHLO c-$1.test" r \
	    "s:MAIL FROM:<$1@mta.test>" r "s:RCPT TO:<rcpt@$1.example>" r s:DATA r \
	    "x:Subject: $1\\r\\n\\r\\nbody\\r\\n.\\r\\n" r s:QUIT r eof
}
csession csts1 c-sts1
expect_reply "c-sts1: greeting is the upstream's first line" "$DLG" "" \
    "220 upstream.test ESMTP first line"
expect_match "c-sts1: message accepted by the upstream" "$DLG" "^S: $QUEUED\$"
upgot csts1 "$U1" csts1@mta.test rcpt@csts1.example csts1
check "c-sts1: log: Verified TLS connection established to mx.sts1.test[127.0.0.1]:UP" \
    log_has "$(est c-sts1 Verified mx.sts1.test 127.0.0.1)"
check "c-sts1: still one GET of mta-sts.sts1.test (one cache per domain; got $(gets mta-sts.sts1.test))" \
    [ "$(gets mta-sts.sts1.test)" = 1 ]

n1=$(nconn "$U1")
dialog csts2 "$(route_port c-sts2)" --timeout 15 r eof:5
expect_reply_match "c-sts2: greeting 421 4.7.5" "$DLG" "" '^421 4\.7\.5 '
expect_line "c-sts2: the proxy closes after the 421" "$DLG" "EOF"
check "c-sts2: no connection to mx.sts2.test (127.0.0.1: $n1 before, $(nconn "$U1") after)" \
    [ "$(nconn "$U1")" = "$n1" ]

csession cnosts c-nosts
expect_reply "c-nosts: greeting is the upstream's first line" "$DLG" "" \
    "220 upstream.test ESMTP first line"
expect_match "c-nosts: message accepted (mta_sts off on client routes by default)" \
    "$DLG" "^S: $QUEUED\$"
upgot cnosts "$U1" cnosts@mta.test rcpt@cnosts.example cnosts
phase "client routes"

# ---------------------------------------------------------------- sts5: the policy id changes

S5SERIAL=1
S5END=$(now_ms)
# s5id ID: sts5.test's TXT becomes "v=STSv1; id=ID" (zone re-signed, nsd
# restarted on the same port, unbound-host sees it secure), then wait until
# 2.5 s after the last sts5 session (TXT TTL 1 s; caches count whole seconds)
s5id() {
	S5SERIAL=$((S5SERIAL + 1))
	if (cd "$LAB" &&
	    sed -e "s/ SOA \\([^ ]* [^ ]*\\) [0-9][0-9]* 3600 600 86400 300\$/ SOA \\1 $S5SERIAL 3600 600 86400 300/" \
		-e "s/id=[A-Za-z0-9]*/id=$1/" sts5.test.zone >sts5.test.zone.new &&
	    mv sts5.test.zone.new sts5.test.zone &&
	    ldns-signzone -f sts5.test.zone.signed sts5.test.zone "$LAB_KEY_STS5") \
	    >"$TP_TMP/resign.out" 2>&1; then :
	else
		bail "sts5.test: re-sign for id $1" "$(oneline "$TP_TMP/resign.out")"
	fi
	kill_pid "$DNS_PID"
	start_dns "$LAB"
	_uh=$(command -v unbound-host || echo /usr/sbin/unbound-host)
	"$_uh" -C "$LAB/unbound.conf" -v -t TXT _mta-sts.sts5.test >"$TP_TMP/txt.out" 2>&1 || true
	if grep -Fq "has TXT record \"v=STSv1; id=$1\" (secure)" "$TP_TMP/txt.out"; then
		pass "sts5.test: TXT id=$1 served, secure"
	else
		fail "sts5.test: TXT id=$1 served, secure" "$(oneline "$TP_TMP/txt.out")"
	fi
	_w=$((2500 - ($(now_ms) - S5END)))
	if [ "$_w" -gt 0 ]; then sleep "$(ms_to_s "$_w")"; fi
}
# s5policy MX: the policy mta-sts.sts5.test serves: enforce, mx: MX
s5policy() {
	printf 'version: STSv1\r\nmode: enforce\r\nmx: %s\r\nmax_age: 86400\r\n' "$1" \
	    >"$WWW/mta-sts.sts5.test/mta-sts.txt"
}
H5=mta-sts.sts5.test

# ---- id s5id1: enforce, mx.sts5.test
deliver s5a sts5.test
S5END=$(now_ms)
delivered s5a sts5.test
upgot s5a "$U1" s5a@mta.test u@sts5.test s5a
check "s5a: log: Verified TLS connection ... to mx.sts5.test[127.0.0.1]:UP ... for sts5.test" \
    log_has "$(est gw Verified mx.sts5.test 127.0.0.1 sts5.test)"
check "s5a: one GET of $H5 (got $(gets $H5))" [ "$(gets $H5)" = 1 ]

# ---- id s5id2: the policy now names another MX: a second fetch, it applies
s5policy mx.nowhere.test
s5id s5id2
mark
attempt s5b sts5.test
S5END=$(now_ms)
since
deferred s5b sts5.test '^451 4\.7\.5 '
check "s5b: id changed: a second GET of $H5 (got $(gets $H5))" [ "$(gets $H5)" = 2 ]
expect_match "s5b: the second GET -> 200" "$SSINCE" \
    '^GET mta-sts\.sts5\.test /\.well-known/mta-sts\.txt -> 200 '
nomail s5b

# ---- fetch failures: the cached policy (id s5id2) is kept
# the policy served (if anything took it) would deliver to mx.sts5.test
s5policy mx.sts5.test
# s5fail CASE ID SWITCH CONTENT SERVER-ERE WHY-ERE: set the switch, change
# the id, then the RCPT is still refused by the cached policy; the policy
# server saw SERVER-ERE; the proxy's lines about sts5.test match WHY-ERE
s5fail() {
	printf '%s\n' "$4" >"$WWW/$H5/$3"
	s5id "$2"
	mark
	attempt "s5$1" sts5.test
	S5END=$(now_ms)
	since
	deferred "s5$1" sts5.test '^451 4\.7\.5 '
	nomail "s5$1"
	expect_match "s5$1: the policy server saw the attempt: /$5/" "$SSINCE" "$5"
	if grep -i 'sts5\.test' "$SINCE" | grep -Eiq -e "$6"; then
		pass "s5$1: log: the fetch failed, and why (/$6/)"
	else
		fail "s5$1: log: the fetch failed, and why (/$6/)" "$(oneline "$SINCE")"
	fi
	rm -f "$WWW/$H5/$3"
}
s5fail redir s5idredir status 301 '^GET mta-sts\.sts5\.test /\.well-known/mta-sts\.txt -> 301 ' \
    '301|redirect'
expect_no_match "s5redir: the redirect was not followed" "$SLOG" '/redirected/'
s5fail notfound s5idnotfound status 404 '^GET mta-sts\.sts5\.test /\.well-known/mta-sts\.txt -> 404 ' \
    '404|not found'
s5fail big s5idbig oversize 70000 '^GET mta-sts\.sts5\.test /\.well-known/mta-sts\.txt -> 200 7[0-9]{4}$' \
    'too (large|big|long)|size|65536|64 ?k|oversize|exceed|limit'
s5fail ctype s5idctype content-type text/html '^GET mta-sts\.sts5\.test /\.well-known/mta-sts\.txt -> 200 ' \
    'content.?type|text/html|text/plain'
s5fail cert s5idcert badcert '' '^TLS 127\.0\.0\.25 sni mta-sts\.sts5\.test cert bad -> ' \
    'certificate|verif|ssl|x509|peer|issuer|subject|webpki'
c=$(gets $H5 "$SSINCE")
check "s5cert: no GET over the refused certificate (got $c)" [ "$c" = 0 ]
phase "sts5"

# ---- the cache file
if [ -s "$CACHE" ]; then
	pass "cache file $CACHE written"
	for w in sts1.test sts1id1 sts5.test s5id2 mx.nowhere.test; do
		check "cache file: has '$w'" grep -Fq "$w" "$CACHE"
	done
else
	fail "cache file $CACHE written" "missing or empty"
fi

# ---------------------------------------------------------------- metrics

sport=$(sed -n 's/.*stats: listening on .*:\([0-9][0-9]*\) (GET \/metrics)$/\1/p' "$PROXY_LOG" | tail -n 1)
M=$TP_TMP/metrics.txt
if [ -n "$sport" ] && curl -s -m 5 -o "$M" "http://127.0.0.1:$sport/metrics"; then
	prom() { "$PY" "$TP_PEERS/prom.py" "$@"; }
	if prom lint "$M" >"$TP_TMP/lint.out" 2>&1; then pass "metrics: exposition format (prom.py lint)"
	else fail "metrics: exposition format (prom.py lint)" "$(head -n 3 "$TP_TMP/lint.out" | tr '\n' '|')"; fi
	F=tlsproxy_tlsrpt_results_total
	for s in gw:sts1.test:sts:success gw:sts2.test:sts:validation-failure \
	    gw:sts3.test:sts:certificate-host-mismatch \
	    gw:sts4.test:sts:certificate-host-mismatch gw:good.test:tlsa:success \
	    c-sts1:sts1.test:sts:success c-sts2:sts2.test:sts:validation-failure; do
		r=${s%%:*} x=${s#*:}
		d=${x%%:*} x=${x#*:}
		pt=${x%%:*} rt=${x#*:}
		v=$(prom sum "$M" "$F" "route=$r" "domain=$d" "policy_type=$pt" "result_type=$rt")
		check "metrics: $F{route=\"$r\",domain=\"$d\",policy_type=\"$pt\",result_type=\"$rt\"} >= 1 (got $v)" \
		    awk -v v="$v" 'BEGIN { exit !(v + 0 >= 1) }'
	done
	all=$(prom sum "$M" "$F" route=gw domain=ststlsa.test policy_type=tlsa)
	ok=$(prom sum "$M" "$F" route=gw domain=ststlsa.test policy_type=tlsa result_type=success)
	check "metrics: $F{route=\"gw\",domain=\"ststlsa.test\",policy_type=\"tlsa\"} has a failure result_type (all $all, success $ok)" \
	    awk -v a="$all" -v s="$ok" 'BEGIN { exit !(a - s >= 1) }'
	all=$(prom sum "$M" "$F" policy_type=sts)
	ok=$(prom sum "$M" "$F" policy_type=sts result_type=success)
	check "metrics: $F policy_type=\"sts\" failures counted (all $all, success $ok)" \
	    awk -v a="$all" -v s="$ok" 'BEGIN { exit !(a - s >= 1 && s >= 1) }'
else
	fail "metrics" "no stats port in the log, or curl failed"
fi
phase "metrics"

# ---------------------------------------------------------------- restart

stop_proxy "$P1_PID"
check "restart: the proxy exits 0 on SIGTERM (status $STOP_RC)" [ "$STOP_RC" = 0 ]
for d in sts1.test sts2.test sts3.test sts4.test sts5.test ststlsa.test; do
	echo 404 >"$WWW/mta-sts.$d/status"
done
fetch sts1.test 127.0.0.21
check "restart: the policy hosts answer 404 now (got '$FETCH')" [ "${FETCH%% *}" = 404 ]
: >"$SLOG"
start_proxy "$CFG"

deliver r1 sts1.test
delivered r1 sts1.test
upgot r1 "$U1" r1@mta.test u@sts1.test r1
check "r1: log: Verified TLS connection ... to mx.sts1.test[127.0.0.1]:UP ... for sts1.test (the cached policy)" \
    log_has "$(est gw Verified mx.sts1.test 127.0.0.1 sts1.test)"
check "r1: no GET of mta-sts.sts1.test after the restart: the id is cached (got $(gets mta-sts.sts1.test))" \
    [ "$(gets mta-sts.sts1.test)" = 0 ]
attempt r2 sts2.test
deferred r2 sts2.test '^451 4\.7\.5 '
nomail r2
attempt r5 sts5.test
deferred r5 sts5.test '^451 4\.7\.5 '
nomail r5
phase "restart"

# ---------------------------------------------------------------- everywhere

for u in "$U1" "$U2"; do
	n=$(basename "$u" .log)
	after=$(awk '$2 == "C:" && toupper($3) == "STARTTLS" { st[$1] = 1; next }
		$2 == "C:" && st[$1] { print; exit }' "$u")
	check "$n: no plaintext command after STARTTLS${after:+ (got '$after')}" [ -z "$after" ]
	expect_no_match "$n: no MAIL/RCPT/DATA in plaintext" "$u" '^[0-9]+ C: (MAIL|RCPT|DATA)'
done

done_testing
