#!/bin/sh
# 210-server-tls: server-route TLS extras (spec 3, 6; issue 4).
#
#   sni         chains chosen by the client's SNI: exact names (any case),
#               "*.example.com" for one more label, exact beats wildcard
#               whatever the order, KEYFILE optional; no SNI or no match ->
#               the default cert_file/eccert_file chain; also after STARTTLS
#   ask_ccert   asks, never refuses; the log says Trusted / Untrusted /
#               Anonymous and "client certificate: CN=..., issuer CN=..."
#               (", sha256 ..." at tls_loglevel 2)
#   req_ccert   a certificate that verifies against ca_file is required
#               (TLS 1.3 and 1.2, implicit and STARTTLS, with and without SNI);
#               a refused client's session ends when the client closes
#   PROXY v2    PP2_TYPE_SSL (client byte, verify result, version, CN,
#               cipher) and PP2_TYPE_AUTHORITY (the SNI), decoded by
#               tests/peers/pp2_server.py
#   client mode cert_file/key_file on a client route present a certificate
#               upstream (a req_ccert server route delivers with it, refuses
#               without or with an untrusted one; the local MTA then gets a
#               421, spec 4.6), with client routes in a second proxy
#   -t          sni / req_ccert configuration errors
. "$(dirname "$0")/lib.sh"
require_tool openssl /usr/sbin/smtp-sink
need_certs

if [ -n "${TP_CERTS:-}" ] && [ -d "$TP_CERTS" ] && [ -w "$TP_CERTS" ]; then
	EX=$TP_CERTS/extra
else
	EX=$TP_TMP/extra
fi
sh "$TP_ROOT/tests/certs/mkserverextra.sh" "$EX" "$CERTS" >"$TP_TMP/mkextra.out" 2>&1 ||
    bail "mkserverextra" "$(tail -n 3 "$TP_TMP/mkextra.out" | tr '\n' ' ')"
# an sni entry without KEYFILE: certificate and key in one file
cat "$EX/other.pem" "$EX/other.key" >"$TP_TMP/other-both.pem"
chmod 600 "$TP_TMP/other-both.pem"

nb=$(free_port)		# plain backend (smtp_server.py)
pb=$(free_port)		# PROXY v2 backend (pp2_server.py)
sink=$(free_port)	# smtp-sink for the client-mode routes
start_smtpd nb "$nb" --greeting '220 nb.test ESMTP\r\n'
start_sink "$sink"
: >"$TP_TMP/pb.log"
spawn "$TP_TMP/pb.out" "$PY" "$TP_PEERS/pp2_server.py" "$pb" "$TP_TMP/pb.log"
wait_file "$TP_TMP/pb.out" 5 '^ready' || bail "pp2_server" "$(cat "$TP_TMP/pb.out")"

CA=$CERTS/ca.pem
srv() { # NAME TLS BACKEND: a server route's first lines
	printf '\n[%s]\nmode = server\ntls = %s\naccept = 127.0.0.1:0\n' "$1" "$2"
	printf 'connect = 127.0.0.1:%s\nhostname = %s.test\nsmtp_timeout = 10s\n' "$3" "$1"
	printf 'cert_file = %s\nkey_file = %s\n' "$CERTS/rsa.pem" "$CERTS/rsa.key"
}
CFG=$TP_TMP/srvtls.ini
{
	printf '[global]\nshutdown_grace = 1s\n'
	srv sni implicit "$nb"
	printf 'eccert_file = %s\neckey_file = %s\n' "$CERTS/ec.pem" "$CERTS/ec.key"
	# the wildcard first: the exact name must still win
	printf 'sni = *.example.com %s %s\n' "$EX/wild.pem" "$EX/wild.key"
	printf 'sni = mail.example.com %s %s\n' "$EX/exact.pem" "$EX/exact.key"
	printf 'sni = other.example.net %s\n' "$TP_TMP/other-both.pem"
	srv snis starttls "$nb"
	printf 'sni = mail.example.com %s %s\n' "$EX/exact.pem" "$EX/exact.key"
	srv ask implicit "$nb"
	printf 'ask_ccert = yes\nca_file = %s\n' "$CA"
	srv asks starttls "$nb"
	printf 'ask_ccert = yes\nca_file = %s\n' "$CA"
	srv req implicit "$nb"
	printf 'req_ccert = yes\nca_file = %s\n' "$CA"
	srv reqs starttls "$nb"
	printf 'req_ccert = yes\nca_file = %s\n' "$CA"
	srv reqsni implicit "$nb"
	printf 'req_ccert = yes\nca_file = %s\n' "$CA"
	printf 'sni = mail.example.com %s %s\n' "$EX/exact.pem" "$EX/exact.key"
	srv asksni implicit "$nb"
	printf 'ask_ccert = yes\nca_file = %s\n' "$CA"
	printf 'sni = *.example.com %s %s\n' "$EX/wild.pem" "$EX/wild.key"
	srv pp2i implicit "$pb"
	printf 'proxy_protocol = v2\nask_ccert = yes\nca_file = %s\n' "$CA"
	printf 'sni = mail.example.com %s %s\n' "$EX/exact.pem" "$EX/exact.key"
	srv pp2s starttls "$pb"
	printf 'proxy_protocol = v2\n'
	srv ccin implicit "$sink"
	printf 'req_ccert = yes\nca_file = %s\n' "$CA"
	srv ccins starttls "$sink"
	printf 'req_ccert = yes\nca_file = %s\n' "$CA"
} >"$CFG"

"$TLSPROXY" -c "$CFG" -t >"$TP_TMP/t.out" 2>&1 && rc=0 || rc=$?
if [ "$rc" = 0 ]; then pass "-t accepts the test configuration"
else bail "-t accepts the test configuration" "exit $rc: $(head -n 5 "$TP_TMP/t.out" | tr '\n' ' ')"; fi
start_proxy "$CFG"
LOG1=$PROXY_LOG
# section NAME: a note with the time so far
section() { note "$1 (at $(($(date +%s) - TP_T0)) s)"; }

# ---------------------------------------------------------------- helpers

# tc NAME ROUTE [tls_client.py OPTION...]: one session; output in $TC
tc() {
	_n=$1
	_r=$2
	shift 2
	TC=$TP_TMP/$_n.tc
	timeout -k 2 30 "$PY" "$TP_PEERS/tls_client.py" "$(route_port "$_r" "$LOG1")" "$@" \
	    >"$TC" 2>&1 || true
}
# tc_get KEY [FILE]: the value of "KEY: ..." in a tls_client transcript
tc_get() { sed -n "s/^$1: //p" "${2:-$TC}" | head -n 1; }
# tc_sid ROUTE [LOG [END]]: the session id of the last tc session (by its
# port), once a line "ROUTE/SID: END" (ERE, default "disconnect") is logged
tc_sid() {
	_lp=$(tc_get local | sed 's/.*://')
	_sid=$(sed -n "s/.*: $1\\/\\([0-9a-f]*\\): connect from 127\\.0\\.0\\.1:$_lp\$/\\1/p" \
	    "${2:-$LOG1}" | head -n 1)
	[ -n "$_sid" ] && wait_for_log "$1/$_sid: ${3:-disconnect}" 5 "${2:-$LOG1}" || true
	echo "$_sid"
}
# sid_line ROUTE SID TEXT [LOG]: the line "ROUTE/SID: TEXT..." (TEXT is ERE)
sid_line() { grep -E -m 1 -e ": $1/$2: $3" "${4:-$LOG1}" || true; }
# expect_sid NAME ROUTE SID ERE [LOG]: the session logged a line matching ERE
expect_sid() {
	_l=$(sid_line "$2" "$3" "$4" "${5:-}")
	if [ -n "$_l" ]; then pass "$1"
	else fail "$1" "no line '$2/$3: $4' in: $(grep -F ": $2/$3: " "${5:-$LOG1}" | tr '\n' '|')"; fi
}
expect_no_sid() {
	_l=$(sid_line "$2" "$3" "$4" "${5:-}")
	if [ -z "$_l" ]; then pass "$1"
	else fail "$1" "unexpected line '$_l'"; fi
}
# expect_eq NAME GOT EXPECTED [CONTEXT]
expect_eq() {
	if [ "$2" = "$3" ]; then pass "$1"
	else fail "$1" "expected '$3', got '$2'${4:+ [$4]}"; fi
}
tcline() { oneline "$TC"; }

CLIENT_ISSUER="CN=client.example.org, issuer CN=tlsproxy test CA"
ROGUE_ISSUER="CN=rogue.example.org, issuer CN=rogue.example.org"
CC="--cert $EX/client.pem --key $EX/client.key"
RC="--cert $EX/rogue.pem --key $EX/rogue.key"

# ---------------------------------------------------------------- sni
section 'sni'

# sni_case NAME ROUTE "CN KEYTYPE" [OPTION...]: the server certificate a
# client gets, and the session goes on to the backend
sni_case() {
	_name=$1
	_route=$2
	_exp=$3
	shift 3
	tc "$_name" "$_route" "$@"
	_got="$(tc_get peer | cut -d' ' -f1) $(tc_get peer-key)"
	expect_eq "sni: $_name: certificate $_exp" "$_got" "$_exp" "$(tcline)"
}
# (a TLS 1.3 client that accepts both gets the ECDSA chain of the two)
sni_case nosni sni "localhost ec"
if [ "$(tc_get greeting)" = "220 nb.test ESMTP" ] && [ "$(tc_get quit)" = "221 2.0.0 Bye" ]; then
	pass "sni: a session without SNI reaches the backend"
else fail "sni: a session without SNI reaches the backend" "$(tcline)"; fi
sni_case nosni-ecdsa sni "localhost ec" --ciphers12 ECDHE-ECDSA-AES128-GCM-SHA256
sni_case nosni-rsa sni "localhost rsa" --ciphers12 ECDHE-RSA-AES128-GCM-SHA256
sni_case exact sni "mail.example.com ec" --sni mail.example.com
if [ "$(tc_get greeting)" = "220 nb.test ESMTP" ]; then pass "sni: a session with an SNI chain reaches the backend"
else fail "sni: a session with an SNI chain reaches the backend" "$(tcline)"; fi
sni_case exact-case sni "mail.example.com ec" --sni MAIL.Example.COM
sni_case exact-tls12 sni "mail.example.com ec" --sni mail.example.com --max-tls 1.2
sni_case wildcard sni "wild.example.com ec" --sni foo.example.com
sni_case wildcard-case sni "wild.example.com ec" --sni Www.EXAMPLE.com
sni_case wildcard-two-labels sni "localhost ec" --sni a.b.example.com
sni_case wildcard-bare sni "localhost ec" --sni example.com
sni_case wildcard-suffix-only sni "localhost ec" --sni badexample.com
sni_case keyfile-optional sni "other.example.net ec" --sni other.example.net
sni_case nomatch sni "localhost ec" --sni unknown.test
sni_case nomatch-rsa sni "localhost rsa" --sni unknown.test --ciphers12 ECDHE-RSA-AES128-GCM-SHA256
sni_case starttls-exact snis "mail.example.com ec" --starttls --sni mail.example.com
if [ "$(tc_get ehlo)" = "250 8BITMIME" ]; then pass "sni: STARTTLS session with an SNI chain reaches the backend"
else fail "sni: STARTTLS session with an SNI chain reaches the backend" "$(tcline)"; fi
sni_case starttls-nosni snis "localhost rsa" --starttls
sni_case starttls-nomatch snis "localhost rsa" --starttls --sni foo.example.com

# ---------------------------------------------------------------- ask_ccert
section 'ask_ccert'

# ask_case NAME ROUTE TRUST CERTLINE|- [OPTION...]: served (greeting or EHLO
# reply from the backend); the TLS line says TRUST; the certificate line
ask_case() {
	_name=$1
	_route=$2
	_trust=$3
	_cl=$4
	shift 4
	tc "$_name" "$_route" "$@"
	if [ "$(tc_get quit)" = "221 2.0.0 Bye" ] && grep -q '^ehlo: 250' "$TC"; then
		pass "$_route: $_name: served"
	else fail "$_route: $_name: served" "$(tcline)"; fi
	_sid=$(tc_sid "$_route")
	_v=$(tc_get tls | cut -d' ' -f1)
	expect_sid "$_route: $_name: logged '$_trust TLS connection established from unknown[127.0.0.1]: $_v'" \
	    "$_route" "$_sid" "$_trust TLS connection established from unknown\\[127\\.0\\.0\\.1\\]: $_v with cipher "
	if [ "$_cl" = - ]; then
		expect_no_sid "$_route: $_name: no client certificate line" "$_route" "$_sid" "client certificate"
	else
		_l=$(sid_line "$_route" "$_sid" "client certificate: ")
		expect_eq "$_route: $_name: logged 'client certificate: $_cl'" \
		    "${_l#*: client certificate: }" "$_cl"
	fi
}
ask_case trusted ask Trusted "$CLIENT_ISSUER" $CC
ask_case trusted-tls12 ask Trusted "$CLIENT_ISSUER" $CC --max-tls 1.2
ask_case untrusted ask Untrusted "$ROGUE_ISSUER" $RC
ask_case untrusted-tls12 ask Untrusted "$ROGUE_ISSUER" $RC --max-tls 1.2
ask_case anonymous ask Anonymous - 
ask_case starttls-trusted asks Trusted "$CLIENT_ISSUER" --starttls $CC
ask_case starttls-untrusted asks Untrusted "$ROGUE_ISSUER" --starttls $RC
ask_case starttls-anonymous asks Anonymous - --starttls
# a client certificate on a route that did not ask for one is not sent
ask_case not-asked sni Anonymous - $CC
# ask_ccert and an SNI chain: the certificate is still checked against ca_file
ask_case sni-wildcard-trusted asksni Trusted "$CLIENT_ISSUER" --sni foo.example.com $CC
ask_case sni-nomatch-trusted asksni Trusted "$CLIENT_ISSUER" --sni unknown.test $CC

# ---------------------------------------------------------------- req_ccert
section 'req_ccert'

nb_sessions() { grep -c ' connect from ' "$TP_TMP/nb.log" || true; }
# req_ok NAME ROUTE [OPTION...]: served, Trusted
req_ok() {
	_name=$1
	_route=$2
	shift 2
	tc "$_name" "$_route" "$@"
	if [ "$(tc_get quit)" = "221 2.0.0 Bye" ]; then pass "$_route: $_name: served"
	else fail "$_route: $_name: served" "$(tcline)"; fi
	_sid=$(tc_sid "$_route" "$LOG1" "(disconnect|SSL_accept error)")
	expect_sid "$_route: $_name: logged Trusted ... and the client certificate" \
	    "$_route" "$_sid" "Trusted TLS connection established from unknown\\[127\\.0\\.0\\.1\\]: "
}
# req_refused NAME ROUTE [OPTION...]: the handshake fails (for TLS 1.3 the
# client sees the alert at its first read), the backend never hears of it
req_refused() {
	_name=$1
	_route=$2
	shift 2
	_before=$(nb_sessions)
	tc "$_name" "$_route" "$@"
	if grep -q '^error: ' "$TC" && ! grep -Eq '^(greeting|ehlo|quit): ' "$TC"; then
		pass "$_route: $_name: refused ($(tc_get error))"
	else fail "$_route: $_name: refused" "$(tcline)"; fi
	_sid=$(tc_sid "$_route" "$LOG1" "SSL_accept error")
	expect_sid "$_route: $_name: logged 'SSL_accept error from 127.0.0.1:...'" \
	    "$_route" "$_sid" "SSL_accept error from 127\\.0\\.0\\.1:[0-9]+: "
	expect_no_sid "$_route: $_name: no 'TLS connection established'" "$_route" "$_sid" "TLS connection established"
	expect_eq "$_route: $_name: the backend got no connection" "$(nb_sessions)" "$_before"
}
req_ok trusted req $CC
req_ok trusted-tls12 req $CC --max-tls 1.2
req_refused nocert req
req_refused nocert-tls12 req --max-tls 1.2
req_refused untrusted req $RC
req_refused untrusted-tls12 req $RC --max-tls 1.2
# a server certificate is no client certificate of this CA... but rsa.pem is
# signed by it and has clientAuth: served
req_ok ca-signed-leaf req --cert "$CERTS/rsa.pem" --key "$CERTS/rsa.key"
req_ok starttls-trusted reqs --starttls $CC
req_refused starttls-nocert reqs --starttls
req_refused starttls-untrusted reqs --starttls $RC
# req_ccert with an SNI chain: the SNI context must verify against ca_file too
req_ok sni-nomatch-trusted reqsni --sni unknown.test $CC
req_ok sni-exact-trusted reqsni --sni mail.example.com $CC
req_refused sni-exact-nocert reqsni --sni mail.example.com
req_refused sni-exact-untrusted reqsni --sni mail.example.com $RC
# A refused handshake must not keep the session (and its max_connections /
# client_limit slot) once the client has closed its end.
tc linger req --max-tls 1.2
sid=$(tc_sid req "$LOG1" "SSL_accept error")
if wait_for_log "req/$sid: disconnect" 3; then
	pass "req: the session of a refused client ends when the client closes ($(sid_line req "$sid" disconnect | sed 's/.* //'))"
else
	fail "req: the session of a refused client ends when the client closes" \
	    "no 'req/$sid: disconnect' within 3 s of the client's close: $(grep -F ": req/$sid: " "$LOG1" | tr '\n' '|')"
fi

# ---------------------------------------------------------------- tls_loglevel 2
section 'tls_loglevel 2'

CFG2=$TP_TMP/loglevel2.ini
{
	printf '[global]\nshutdown_grace = 1s\ntls_loglevel = 2\n'
	srv ask2 implicit "$nb"
	printf 'ask_ccert = yes\nca_file = %s\n' "$CA"
} >"$CFG2"
start_proxy "$CFG2"
LOG2=$PROXY_LOG
TC=$TP_TMP/ll2.tc
timeout -k 2 30 "$PY" "$TP_PEERS/tls_client.py" "$(route_port ask2 "$LOG2")" $CC >"$TC" 2>&1 || true
sid=$(tc_sid ask2 "$LOG2")
fp=$(openssl x509 -in "$EX/client.pem" -noout -fingerprint -sha256 | sed 's/^.*=//')
l=$(sid_line ask2 "$sid" "client certificate: " "$LOG2")
expect_eq "tls_loglevel 2: 'client certificate: CN=..., issuer CN=..., sha256 DIGEST'" \
    "${l#*: client certificate: }" "$CLIENT_ISSUER, sha256 $fp"
expect_sid "tls_loglevel 2: Trusted TLS connection established" ask2 "$sid" \
    "Trusted TLS connection established from unknown\\[127\\.0\\.0\\.1\\]: TLSv1\\.3 " "$LOG2"
stop_proxy
check "tls_loglevel 2 proxy: exit status 0 on SIGTERM" [ "$STOP_RC" = 0 ]

# ---------------------------------------------------------------- PROXY v2 TLVs
section 'PROXY v2 TLVs'

# pp_conn: the pp2_server connection number of the last tc session
pp_conn() {
	_lp=$(tc_get local | sed 's/.*://')
	wait_file "$TP_TMP/pb.log" 5 " src=127\\.0\\.0\\.1:$_lp " || true
	sed -n "s/^\\([0-9]*\\) header v2 PROXY TCP4 src=127\\.0\\.0\\.1:$_lp .*/\\1/p" "$TP_TMP/pb.log" | head -n 1
}
# pp_get N KEY: the value of "N KEY VALUE" in the pp2_server log ("" = none)
pp_get() { sed -n "s/^$1 $2 //p" "$TP_TMP/pb.log" | head -n 1; }
pp_has() { grep -q "^$1 $2\\( \\|\$\\)" "$TP_TMP/pb.log"; }
# pp_case NAME ROUTE AUTHORITY|- CLIENTBYTE VERIFY|nonzero CN|- [OPTION...]
pp_case() {
	_name=$1 _route=$2 _auth=$3 _cb=$4 _ver=$5 _cn=$6
	shift 6
	tc "$_name" "$_route" "$@"
	if grep -q '^quit: 221' "$TC"; then pass "$_route: $_name: served"
	else fail "$_route: $_name: served" "$(tcline)"; fi
	_n=$(pp_conn)
	if [ -z "$_n" ]; then
		fail "$_route: $_name: the backend got a PROXY v2 header" "$(tail -n 8 "$TP_TMP/pb.log" | tr '\n' '|')"
		return
	fi
	_hdr=$(sed -n "s/^$_n header //p" "$TP_TMP/pb.log")
	_lp=$(tc_get local | sed 's/.*://')
	expect_eq "$_route: $_name: addresses" "$_hdr" \
	    "v2 PROXY TCP4 src=127.0.0.1:$_lp dst=127.0.0.1:$(route_port "$_route" "$LOG1") len=${_hdr##*len=}"
	if [ "$_auth" = - ]; then
		if pp_has "$_n" authority; then fail "$_route: $_name: no PP2_TYPE_AUTHORITY" "got '$(pp_get "$_n" authority)'"
		else pass "$_route: $_name: no PP2_TYPE_AUTHORITY without SNI"; fi
	else
		expect_eq "$_route: $_name: PP2_TYPE_AUTHORITY = $_auth" "$(pp_get "$_n" authority)" "$_auth"
	fi
	_ssl=$(pp_get "$_n" ssl)
	_gotcb=$(echo "$_ssl" | sed -n 's/^client=\([^ ]*\) .*/\1/p')
	_gotv=$(echo "$_ssl" | sed -n 's/.* verify=\([0-9]*\)$/\1/p')
	expect_eq "$_route: $_name: PP2_TYPE_SSL client byte $_cb" "$_gotcb" "$_cb" "ssl $_ssl"
	if [ "$_ver" = nonzero ]; then
		if [ -n "$_gotv" ] && [ "$_gotv" != 0 ]; then pass "$_route: $_name: PP2_TYPE_SSL verify result non-zero ($_gotv)"
		else fail "$_route: $_name: PP2_TYPE_SSL verify result non-zero" "ssl $_ssl"; fi
	else
		expect_eq "$_route: $_name: PP2_TYPE_SSL verify result $_ver" "$_gotv" "$_ver" "ssl $_ssl"
	fi
	expect_eq "$_route: $_name: PP2_SUBTYPE_SSL_VERSION" "$(pp_get "$_n" ssl-version)" "$(tc_get tls | cut -d' ' -f1)"
	expect_eq "$_route: $_name: PP2_SUBTYPE_SSL_CIPHER" "$(pp_get "$_n" ssl-cipher)" "$(tc_get tls | cut -d' ' -f2)"
	if [ "$_cn" = - ]; then
		if pp_has "$_n" ssl-cn; then fail "$_route: $_name: no PP2_SUBTYPE_SSL_CN" "got '$(pp_get "$_n" ssl-cn)'"
		else pass "$_route: $_name: no PP2_SUBTYPE_SSL_CN without a client certificate"; fi
	else
		expect_eq "$_route: $_name: PP2_SUBTYPE_SSL_CN" "$(pp_get "$_n" ssl-cn)" "$_cn"
	fi
	if grep -Eq "^$_n C: EHLO client\\.test\$" "$TP_TMP/pb.log"; then
		pass "$_route: $_name: the client's EHLO reached the backend after the header"
	else fail "$_route: $_name: the client's EHLO reached the backend" "$(grep "^$_n " "$TP_TMP/pb.log" | tr '\n' '|')"; fi
}
pp_case cert-nosni pp2i - 0x07 0 client.example.org $CC
pp_case nocert-sni-tls12 pp2i mail.example.com 0x01 0 - --sni mail.example.com --max-tls 1.2
pp_case rogue-sni pp2i unknown.test 0x07 nonzero rogue.example.org --sni unknown.test $RC
pp_case cert-sni-exact pp2i mail.example.com 0x07 0 client.example.org --sni mail.example.com $CC
pp_case starttls-sni pp2s foo.example.com 0x01 0 - --starttls --sni foo.example.com
pp_case starttls-nosni-tls12 pp2s - 0x01 0 - --starttls --max-tls 1.2
expect_no_match "pp2: every TLV well-formed and of a known type" "$TP_TMP/pb.log" \
    '^[0-9]+ (tlv-error|tlv 0x|ssl-sub |header (none|bad))'

# ---------------------------------------------------------------- client-mode certificates
section 'client-mode certificates'

# Client routes in a proxy of their own, to the req_ccert server routes
# ccin (implicit) and ccins (STARTTLS) of the first.
ccin=$(route_port ccin "$LOG1")
ccins=$(route_port ccins "$LOG1")
CFG3=$TP_TMP/clicert.ini
{
	printf '[global]\nshutdown_grace = 1s\n'
	cli() { # NAME TLS PORT [cert]
		printf '\n[%s]\nmode = client\ntls = %s\naccept = 127.0.0.1:0\n' "$1" "$2"
		printf 'connect = 127.0.0.1:%s\nsecurity = encrypt\nsmtp_timeout = 10s\n' "$3"
		if [ "${4:-}" = cert ]; then
			printf 'cert_file = %s\nkey_file = %s\n' "$EX/client.pem" "$EX/client.key"
		fi
	}
	cli ccout implicit "$ccin" cert
	cli ccnone implicit "$ccin"
	cli ccouts starttls "$ccins" cert
	cli ccnones starttls "$ccins"
	cli ccrogue implicit "$ccin"
	printf 'cert_file = %s\nkey_file = %s\n' "$EX/rogue.pem" "$EX/rogue.key"
	cli ccnone12 implicit "$ccin"
	printf 'protocols = <=TLSv1.2\n'
	cli ccrogue12 implicit "$ccin"
	printf 'cert_file = %s\nkey_file = %s\nprotocols = <=TLSv1.2\n' "$EX/rogue.pem" "$EX/rogue.key"
} >"$CFG3"
start_proxy "$CFG3"
LOG3=$PROXY_LOG

# deliver NAME ROUTE: one message through ROUTE
deliver() {
	dialog "$1" "$(route_port "$2" "$LOG3")" r "s:EHLO c.test" r "s:MAIL FROM:<$1@example.org>" r \
	    "s:RCPT TO:<$1@example.com>" r s:DATA r "s:Subject: $1" s: s:hello s:. r s:QUIT r eof
}
n0=$(sink_count)
deliver ccout ccout
expect_reply_match "ccout: the message is accepted through a req_ccert route" "$DLG" "." '^250 '
check "ccout: the sink got it" [ "$(sink_count)" = $((n0 + 1)) ]
check "ccin logged 'Trusted TLS connection established from unknown[127.0.0.1]'" \
    log_has ': ccin/[0-9a-f]+: Trusted TLS connection established from unknown\[127\.0\.0\.1\]: ' "$LOG1"
check "ccin logged 'client certificate: $CLIENT_ISSUER'" \
    log_has ": ccin/[0-9a-f]+: client certificate: $CLIENT_ISSUER\$" "$LOG1"
deliver ccouts ccouts
expect_reply_match "ccouts: the message is accepted through a STARTTLS req_ccert route" "$DLG" "." '^250 '
check "ccouts: the sink got it" [ "$(sink_count)" = $((n0 + 2)) ]
check "ccins logged 'client certificate: $CLIENT_ISSUER'" \
    log_has ": ccins/[0-9a-f]+: client certificate: $CLIENT_ISSUER\$" "$LOG1"

# Refused by the server: the local MTA must get a 421 (spec 4.6: a
# temporary reply, as the greeting or as the reply to the command in
# progress), never a bare disconnect.  With TLS 1.3 the server's verdict on
# the client certificate arrives after the client's side of the handshake
# is done; with TLS 1.2 it ends the handshake.
for r in ccnone ccnones ccrogue ccnone12 ccrogue12; do
	dialog "$r" "$(route_port "$r" "$LOG3")" r "s:EHLO c.test" r "s:MAIL FROM:<$r@example.org>" r eof
	expect_match "$r: the local client gets a 421 reply (greeting: $(reply_to "$DLG" ""), EHLO: $(reply_to "$DLG" "EHLO c.test"))" \
	    "$DLG" '^S: 421 4\.'
	expect_no_match "$r: no 250 for the message" "$DLG" '^S: 250 .*queued|^S: 250 2\.0\.0 Ok'
done
check "client routes without (a trusted) certificate: nothing delivered" [ "$(sink_count)" = $((n0 + 2)) ]
check "ccin logged SSL_accept errors for them" log_has ': ccin/[0-9a-f]+: SSL_accept error from 127\.0\.0\.1:' "$LOG1"

# ---------------------------------------------------------------- -t
section '-t'

# tcheck NAME LINE ERE ROUTE-LINES: a server route with these lines from line
# 9 on; -t must exit 1 with "FILE:LINE: " matching ERE
tcheck() {
	_f=$TP_TMP/tcheck.ini
	{
		printf '[global]\n\n[r]\nmode = server\naccept = 127.0.0.1:0\n'
		printf 'connect = 127.0.0.1:%s\ncert_file = %s\nkey_file = %s\n' "$nb" "$CERTS/rsa.pem" "$CERTS/rsa.key"
		printf '%s\n' "$4"
	} >"$_f"
	"$TLSPROXY" -c "$_f" -t >"$TP_TMP/tcheck.out" 2>&1 && _rc=0 || _rc=$?
	if [ "$_rc" = 1 ] && grep -Eq -e "tcheck\\.ini:$2: .*$3" "$TP_TMP/tcheck.out"; then
		pass "-t: $1"
	else fail "-t: $1" "exit $_rc: $(head -n 3 "$TP_TMP/tcheck.out" | tr '\n' '|')"; fi
}
tcheck "req_ccert without ca_file" 9 "req_ccert needs ca_file or ca_path" "req_ccert = yes"
tcheck "sni with one field" 9 "sni" "sni = mail.example.com"
tcheck "sni with a missing certificate file" 10 "$TP_TMP/nonexistent.pem" \
    "sni = mail.example.com $EX/exact.pem $EX/exact.key
sni = a.example.com $TP_TMP/nonexistent.pem $EX/exact.key"
tcheck "sni with a key that does not match" 9 "does not match" \
    "sni = mail.example.com $EX/exact.pem $EX/wild.key"

done_testing
