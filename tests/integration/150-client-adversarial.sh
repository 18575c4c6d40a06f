#!/bin/sh
# shellcheck disable=SC2154 # the P_NAME port variables are set by eval
# 150-client-adversarial: client + starttls routes against hostile or broken
# upstreams (tests/peers/smtp_server.py).
#   - STARTTLS stripping (not advertised / 454 / failed handshake) at
#     security = none, may and encrypt, each with its exact outcome; an EHLO
#     keyword that merely contains STARTTLS is not an offer;
#   - response injection after the 220 to STARTTLS;
#   - garbage, oversized and over-long greetings and EHLO replies (a
#     2000-octet line and a 100-line greeting are fine, 2100 octets and 101
#     lines are not);
#   - an upstream that hangs up, or goes silent, during the dialogue.
# Every failure reaches the local client as a 421 greeting (never a 5xx),
# and nothing of its mail reaches the upstream.
. "$(dirname "$0")/lib.sh"
need_certs

tlsup="--cert $CERTS/rsa.pem --key $CERTS/rsa.key"
# up NAME [OPTION...]: an upstream on a port of its own (port in $P_NAME)
up() {
	_name=$1
	shift
	_port=$(free_port)
	eval "P_$_name=$_port"
	# shellcheck disable=SC2086
	start_smtpd "$_name" "$_port" $tlsup "$@"
}
up notoff --ehlo '250-notoff.test\r\n250 PIPELINING\r\n'
up fakekw --ehlo '250-fakekw.test\r\n250-XSTARTTLS\r\n250-STARTTLSX\r\n250 PIPELINING\r\n'
up s454 --starttls-reply '454 4.7.0 TLS not available\r\n'
up hsfail --handshake alert
up inject --starttls-reply '220 go ahead\r\n250 fake\r\n'
up http --greeting 'HTTP/1.1 400 Bad Request\r\n'
up ctl --greeting '220 hi\x01there\r\n'
up code --greeting '2200 four-digit code\r\n'
up nocode --greeting '620 not a reply code\r\n'
long=$(awk 'BEGIN { s = "220 "; for (i = 0; i < 3000; i++) s = s "a"; printf "%s\\r\\n", s }')
up long --greeting "$long"
many=$(awk 'BEGIN { for (i = 0; i < 100; i++) printf "220-line %d\\r\\n", i; printf "220 last\\r\\n" }')
up many --greeting "$many"
ok100=$(awk 'BEGIN { printf "220-first of 100\\r\\n"; for (i = 0; i < 98; i++) printf "220-line %d\\r\\n", i; printf "220 last\\r\\n" }')
up ok100 --greeting "$ok100"
# ehlo_with_line N: an EHLO reply with a capability line of N octets
ehlo_with_line() {
	awk -v n="$1" 'BEGIN { s = "250-X-LONG "; while (length(s) < n) s = s "a"
		printf "250-longline.test\\r\\n%s\\r\\n250 STARTTLS\\r\\n", s }'
}
up ehlo2000 --ehlo "$(ehlo_with_line 2000)"
up ehlo2100 --ehlo "$(ehlo_with_line 2100)"
up badehlo --ehlo '250-badehlo.test\r\nxyz\r\n250 STARTTLS\r\n'
manyehlo=$(awk 'BEGIN { printf "250-manyehlo.test\\r\\n"; for (i = 0; i < 100; i++) printf "250-X-CAP%d\\r\\n", i; printf "250 STARTTLS\\r\\n" }')
up manyehlo --ehlo "$manyehlo"
up closer --on-ehlo close
up silent --on-ehlo silent
mute=$(free_port)
spawn "$TP_TMP/mute.out" "$PY" "$TP_PEERS/fake_server.py" "$mute" silent
wait_file "$TP_TMP/mute.out" 5 ready || bail "fake_server mute" "not ready"
# a port held bound but not listening: refused, and no later free_port
# (nor another peer) can take it
spawn "$TP_TMP/refused.out" "$PY" -c '
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
print("port=%d" % s.getsockname()[1], flush=True)
time.sleep(3600)
'
wait_file "$TP_TMP/refused.out" 5 '^port=' || bail "refused port" "no port"
refused=$(sed -n 's/^port=//p' "$TP_TMP/refused.out")

route() { # NAME SECURITY UPSTREAM-PORT [EXTRA]
	printf '\n[%s]\nmode = client\ntls = starttls\nsecurity = %s\n' "$1" "$2"
	printf 'accept = 127.0.0.1:0\nconnect = 127.0.0.1:%s\n' "$3"
	printf 'helo_name = proxy.test\nsmtp_timeout = %s\n' "${4:-10s}"
}
{
	printf '[global]\nshutdown_grace = 5s\n'
	for lvl in none may encrypt; do
		for u in notoff s454 hsfail; do
			route "$lvl-$u" "$lvl" "$(eval echo "\$P_$u")"
		done
	done
	route fakekw encrypt "$P_fakekw"
	route inject-may may "$P_inject"
	route inject-encrypt encrypt "$P_inject"
	for u in http ctl code nocode long many ok100 ehlo2000 ehlo2100 badehlo manyehlo closer; do
		route "$u" encrypt "$(eval echo "\$P_$u")"
	done
	route silent encrypt "$P_silent" 2s
	route mute encrypt "$mute" 2s
	route refused encrypt "$refused"
} >"$TP_TMP/adv.ini"
start_proxy "$TP_TMP/adv.ini"

# conns UP: connections upstream UP has seen so far
conns() { grep -c ' connect from ' "$TP_TMP/$1.log" || true; }

# session ROUTE UP: a local client of ROUTE sends EHLO, MAIL, QUIT.  Sets
# DLG, and EV: a file of UP's events for the connections of this session.
session() {
	_first=$(($(conns "$2") + 1))
	dialog "$1" "$(route_port "$1")" r "s:EHLO c.test" r \
	    "s:MAIL FROM:<$1@example.org>" r s:QUIT r eof:5
	sleep 0.2	# the upstream logs its side of the close
	EV=$TP_TMP/$1.ev
	awk -v f="$_first" '$1 >= f' "$TP_TMP/$2.log" >"$EV"
	NCONN=$(($(conns "$2") - _first + 1))
}

# relayed ROUTE UP GREETING-ERE: the session went through (in plaintext)
relayed() {
	expect_reply_match "$1: greeting" "$DLG" "" "$3"
	expect_reply "$1: MAIL relayed to the upstream: 250" "$DLG" \
	    "MAIL FROM:<$1@example.org>" "250 2.0.0 Ok"
	expect_match "$1: upstream got the MAIL in plaintext" "$EV" \
	    "^[0-9]+ C: MAIL FROM:<$1@example\\.org>\$"
}

# refused_421 ROUTE GREETING-ERE: the session ended with a 421 greeting, and
# the upstream saw nothing of the client's mail
refused_421() {
	expect_reply_match "$1: 421 greeting" "$DLG" "" "$2"
	expect_line "$1: closed after the 421" "$DLG" "EOF"
	expect_no_match "$1: nothing of the mail reached the upstream" "$EV" \
	    ' [CT]: (MAIL|RCPT|DATA|EHLO c\.test)'
}

# between N LO HI: LO <= N <= HI
between() { [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]; }

first_line='^220 upstream\.test ESMTP first line$'
host='[^ ]*\[127\.0\.0\.1\]'

# ---- security = none: a plain relay, STARTTLS never sent
for u in notoff s454 hsfail; do
	session "none-$u" "$u"
	relayed "none-$u" "$u" '^220[ -]'
	expect_no_match "none-$u: STARTTLS never sent" "$EV" ' C: STARTTLS'
	check "none-$u: one upstream connection ($NCONN)" [ "$NCONN" = 1 ]
done

# ---- security = may: plaintext when TLS is not to be had
session may-notoff notoff
relayed may-notoff notoff "$first_line"
expect_no_match "may-notoff: STARTTLS not sent (not offered)" "$EV" ' C: STARTTLS'

session may-s454 s454
relayed may-s454 s454 "$first_line"
expect_match "may-s454: STARTTLS was tried" "$EV" '^[0-9]+ C: STARTTLS$'
check "may-s454: one upstream connection ($NCONN)" [ "$NCONN" = 1 ]

session may-hsfail hsfail
relayed may-hsfail hsfail "$first_line"
check "may-hsfail: the proxy reconnected once ($NCONN connections)" [ "$NCONN" = 2 ]
c1=$(head -n 1 "$EV" | cut -d' ' -f1)
c2=$((c1 + 1))
expect_match "may-hsfail: first connection tried STARTTLS" "$EV" "^$c1 C: STARTTLS\$"
expect_no_match "may-hsfail: no STARTTLS on the second connection" "$EV" "^$c2 C: STARTTLS"
expect_match "may-hsfail: the mail went over the second connection" "$EV" \
    "^$c2 C: MAIL FROM:<may-hsfail@example\\.org>\$"

# ---- security = encrypt: a 421 with Postfix's code and reason, no mail sent
session encrypt-notoff notoff
refused_421 encrypt-notoff "^421 4\\.7\\.4 TLS is required, but was not offered by host $host\$"
session fakekw fakekw
refused_421 fakekw "^421 4\\.7\\.4 TLS is required, but was not offered by host $host\$"
expect_no_match "fakekw: XSTARTTLS/STARTTLSX are not STARTTLS" "$EV" ' C: STARTTLS'
session encrypt-s454 s454
refused_421 encrypt-s454 \
    "^421 4\\.7\\.5 TLS is required, but host $host refused to start TLS: 454 4\\.7\\.0 TLS not available\$"
session encrypt-hsfail hsfail
refused_421 encrypt-hsfail '^421 4\.7\.5 Cannot start TLS: handshake failure$'
check "encrypt-hsfail: no plaintext reconnect ($NCONN connections)" [ "$NCONN" = 1 ]

# ---- response injection: "220 go ahead\r\n250 fake\r\n" in one write
for r in inject-may inject-encrypt; do
	session "$r" inject
	refused_421 "$r" '^421 4\.5\.0 Protocol error: '
	expect_no_match "$r: the injected 250 never reached the client" "$DLG" 'fake'
	expect_no_match "$r: no TLS session was set up" "$EV" ' tls ok'
done

# ---- garbage and oversized replies
for r in http ctl code nocode long many ehlo2100 badehlo manyehlo; do
	session "$r" "$r"
	refused_421 "$r" '^421 4\.5\.0 Protocol error: '
done
session ok100 ok100
expect_reply "ok100: a 100-line greeting is fine, its first line replayed" "$DLG" "" "220 first of 100"
expect_reply "ok100: MAIL relayed" "$DLG" "MAIL FROM:<ok100@example.org>" "250 2.0.0 Ok"
expect_match "ok100: through TLS" "$EV" '^[0-9]+ T: MAIL FROM:<ok100@example\.org>$'

session ehlo2000 ehlo2000
expect_reply "ehlo2000: a 2000-octet EHLO reply line is fine" "$DLG" "" "220 upstream.test ESMTP first line"
expect_match "ehlo2000: through TLS" "$EV" '^[0-9]+ T: MAIL FROM:<ehlo2000@example\.org>$'

# ---- the upstream hangs up, goes silent, or is not there
session closer closer
refused_421 closer "^421 4\\.4\\.2 Lost connection with $host while "
t0=$(now_ms)
session silent silent
el=$(($(now_ms) - t0))
refused_421 silent "^421 4\\.4\\.2 Conversation with $host timed out while "
check "silent: the 421 came after smtp_timeout = 2s (session took $(ms_to_s "$el")s)" \
    between "$el" 1800 $((6000 + TP_SLACK * 1000))
: >"$TP_TMP/mute.log"
t0=$(now_ms)
session mute mute
el=$(($(now_ms) - t0))
expect_reply_match "mute (no greeting): 421 4.4.2 timed out" "$DLG" "" \
    "^421 4\\.4\\.2 Conversation with $host timed out while "
check "mute: after smtp_timeout = 2s (session took $(ms_to_s "$el")s)" \
    between "$el" 1800 $((6000 + TP_SLACK * 1000))
: >"$TP_TMP/refused.log"
session refused refused
expect_reply_match "refused: 421 4.4.1" "$DLG" "" '^421 4\.4\.1 '
cat "$TP_TMP"/*.dlg >"$TP_TMP/all.txt"
expect_no_match "no 5xx invented by the proxy in any session" "$TP_TMP/all.txt" '^S: 5'

done_testing
