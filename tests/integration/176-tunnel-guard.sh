#!/bin/sh
# shellcheck disable=SC2154 # the P_NAME port variables are set by eval
# 176-tunnel-guard: the SMTP tracker that now runs inside every relay
# (src/smtp_filter.c) keeps spec 4.2.5 and spec 5 in the tunnel too.
#   - server routes (implicit, and starttls inside TLS, and the plaintext
#     relay a MAIL started at security = may): XCLIENT and XFORWARD get
#     "550 5.7.0 Error: insufficient authorization" from the proxy, in
#     order with pipelined commands, and never reach the backend; the
#     backend's EHLO reply reaches the client without XCLIENT, XFORWARD and
#     PIPECONNECT (the last line's separator fixed when they were last);
#   - client routes: the local MTA is trusted, XCLIENT/XFORWARD and their
#     EHLO keywords pass through to the upstream and back;
#   - client + implicit: STARTTLS in the tunnel gets "454 4.7.0 TLS not
#     available" from the proxy, never reaches the upstream, and is not
#     advertised in the upstream's EHLO reply the client sees.
. "$(dirname "$0")/lib.sh"
need_certs

T=6	# seconds a dialog waits for one reply
tlsup="--cert $CERTS/rsa.pem --key $CERTS/rsa.key"
UPS=
# up NAME [OPTION...]: smtp_server.py on a port of its own ($P_NAME), its
# events in $TP_TMP/NAME.log; started in the background (ups_ready waits).
up() {
	_name=$1
	shift
	_port=$(free_port)
	eval "P_$_name=$_port"
	: >"$TP_TMP/$_name.log"
	# shellcheck disable=SC2086
	spawn "$TP_TMP/$_name.out" "$PY" "$TP_PEERS/smtp_server.py" "$_port" \
	    "$TP_TMP/$_name.log" $tlsup "$@"
	UPS="$UPS $_name"
}
ups_ready() {
	for _n in $UPS; do
		wait_file "$TP_TMP/$_n.out" 10 '^ready' ||
		    bail "smtp_server $_n" "not ready: $(tr '\n' ' ' <"$TP_TMP/$_n.out")"
	done
}

# Backends that offer to let their client speak for someone else.
mid='250-backend.test\r\n250-XCLIENT NAME ADDR PROTO HELO\r\n250-PIPELINING\r\n250-XFORWARD NAME ADDR PROTO HELO SOURCE\r\n250-PIPECONNECT\r\n250 8BITMIME\r\n'
last='250-backend.test\r\n250-PIPELINING\r\n250-XCLIENT NAME ADDR\r\n250-XFORWARD NAME ADDR\r\n250 PIPECONNECT\r\n'
up bx_mid --greeting '220 backend.test ESMTP\r\n' --ehlo "$mid" --ehlo-tls "$mid"
up bx_last --greeting '220 backend.test ESMTP\r\n' --ehlo "$last" --ehlo-tls "$last"
# Upstreams of client routes.
xup='250-upstream.test\r\n250-XCLIENT NAME ADDR\r\n250-XFORWARD NAME ADDR\r\n250 PIPELINING\r\n'
up ux_s --ehlo-tls "$xup"
up ux_i --implicit --ehlo-tls "$xup"
up ut_last --implicit	# its EHLO reply inside TLS ends in "250 STARTTLS"
up ut_mid --implicit --ehlo-tls '250-upstream.test\r\n250-STARTTLS\r\n250 PIPELINING\r\n'
ups_ready

server() { # NAME TLS BACKEND-PORT
	printf '\n[%s]\nmode = server\ntls = %s\nsecurity = may\n' "$1" "$2"
	printf 'accept = 127.0.0.1:0\nconnect = 127.0.0.1:%s\n' "$3"
	printf 'cert_file = %s\nkey_file = %s\n' "$CERTS/rsa.pem" "$CERTS/rsa.key"
	printf 'hostname = %s.test\nsmtp_timeout = 5s\nidle_timeout = 10s\n' "$1"
}
client() { # NAME TLS UPSTREAM-PORT
	printf '\n[%s]\nmode = client\ntls = %s\nsecurity = encrypt\n' "$1" "$2"
	printf 'accept = 127.0.0.1:0\nconnect = 127.0.0.1:%s\n' "$3"
	printf 'helo_name = guard.test\nsmtp_timeout = 5s\nidle_timeout = 10s\n'
}
{
	printf '[global]\nshutdown_grace = 5s\nlog_level = info\n'
	server xi_mid implicit "$P_bx_mid"
	server xs_mid starttls "$P_bx_mid"
	server xi_last implicit "$P_bx_last"
	server xs_last starttls "$P_bx_last"
	client cx_s starttls "$P_ux_s"
	client cx_i implicit "$P_ux_i"
	client ct_last implicit "$P_ut_last"
	client ct_mid implicit "$P_ut_mid"
} >"$TP_TMP/guard.ini"
start_proxy "$TP_TMP/guard.ini"

NO_AUTHZ="550 5.7.0 Error: insufficient authorization"
XC='XCLIENT ADDR=1.2.3.4'
XF='XFORWARD NAME=x'
# no_x LOG: the backend never saw XCLIENT or XFORWARD, in any case
no_x() { expect_no_match "$1" "$2" ' [CT]: .*([Xx][Cc][Ll][Ii][Ee][Nn][Tt]|[Xx][Ff][Oo][Rr][Ww][Aa][Rr][Dd])'; }

# ---- server routes, inside TLS
for r in xi_mid xs_mid xi_last xs_last; do
	case $r in
	*_mid) ehlo="250-backend.test|250-PIPELINING|250 8BITMIME" ;;
	*_last) ehlo="250-backend.test|250 PIPELINING" ;;
	esac
	set -- "s:EHLO in.test" r "s:$XC" r "s:$XF" r "s:MAIL FROM:<$r@example.org>" r \
	    "s:$XC" r 'x:XFORWARD NAME=y\r\nNOOP\r\n' r r s:QUIT r eof:5
	case $r in
	xi_*) set -- --tls r "$@" ;;		# implicit TLS
	xs_*) set -- r "s:EHLO c.test" r s:STARTTLS r tls "$@" ;;
	esac
	dialog "$r" "$(route_port "$r")" --timeout $T "$@"
	d=$DLG
	expect_match "$r: TLS" "$d" '^TLS: TLSv1\.[23] '
	expect_reply "$r: EHLO inside TLS without XCLIENT, XFORWARD, PIPECONNECT" "$d" \
	    "EHLO in.test" "$ehlo"
	expect_reply "$r: $XC: 550 5.7.0 from the proxy" "$d" "$XC" "$NO_AUTHZ"
	expect_reply "$r: $XF: 550 5.7.0 from the proxy" "$d" "$XF" "$NO_AUTHZ"
	expect_reply "$r: MAIL relayed: 250" "$d" "MAIL FROM:<$r@example.org>" "250 2.0.0 Ok"
	got=$(reply_to "$d" "$XC" 2)
	check "$r: $XC after MAIL: 550 5.7.0 (got '$got')" [ "$got" = "$NO_AUTHZ" ]
	expect_reply "$r: pipelined XFORWARD, NOOP answered in order" "$d" \
	    '<raw XFORWARD NAME=y\r\nNOOP\r\n>' "$NO_AUTHZ|250 2.0.0 Ok"
	expect_reply "$r: QUIT 221" "$d" QUIT "221 2.0.0 Bye"
	b=$TP_TMP/bx_${r#x?_}.log
	expect_match "$r: the backend got the MAIL inside the relay" "$b" \
	    "^[0-9]+ C: MAIL FROM:<$r@example\\.org>\$"
	expect_match "$r: the backend got the NOOP after the dropped XFORWARD" "$b" '^[0-9]+ C: NOOP$'
done

# ---- server route, plaintext relay started by a MAIL at security = may
for r in xs_mid xs_last; do
	n=plain_$r
	case $r in
	*_mid) ehlo="250-backend.test|250-PIPELINING|250 8BITMIME" ;;
	*_last) ehlo="250-backend.test|250 PIPELINING" ;;
	esac
	dialog "$n" "$(route_port "$r")" --timeout $T r "s:EHLO c.test" r \
	    "s:MAIL FROM:<$n@example.org>" r "s:$XC" r "s:$XF" r s:RSET r \
	    "s:EHLO again.test" r s:QUIT r eof:5
	d=$DLG
	expect_reply "$n: MAIL starts the plaintext relay: 250 from the backend" "$d" \
	    "MAIL FROM:<$n@example.org>" "250 2.0.0 Ok"
	expect_reply "$n: $XC in the relay: 550 5.7.0 from the proxy" "$d" "$XC" "$NO_AUTHZ"
	expect_reply "$n: $XF in the relay: 550 5.7.0 from the proxy" "$d" "$XF" "$NO_AUTHZ"
	expect_reply "$n: the backend's EHLO reply without XCLIENT, XFORWARD, PIPECONNECT" "$d" \
	    "EHLO again.test" "$ehlo"
	b=$TP_TMP/bx_${r#x?_}.log
	expect_match "$n: the backend got the MAIL" "$b" "^[0-9]+ C: MAIL FROM:<$n@example\\.org>\$"
	expect_match "$n: the backend got the EHLO after them" "$b" '^[0-9]+ C: EHLO again\.test$'
done
no_x "no XCLIENT/XFORWARD reached backend bx_mid" "$TP_TMP/bx_mid.log"
no_x "no XCLIENT/XFORWARD reached backend bx_last" "$TP_TMP/bx_last.log"

# ---- client routes: the local MTA is trusted, XCLIENT passes
for r in cx_s cx_i; do
	u=$TP_TMP/ux_${r#cx_}.log
	dialog "$r" "$(route_port "$r")" --timeout $T r "s:EHLO c.test" r "s:$XC" r "s:$XF" r \
	    s:QUIT r eof:5
	d=$DLG
	expect_reply "$r: the upstream's EHLO reply with XCLIENT and XFORWARD" "$d" "EHLO c.test" \
	    "250-upstream.test|250-XCLIENT NAME ADDR|250-XFORWARD NAME ADDR|250 PIPELINING"
	expect_reply "$r: $XC answered by the upstream" "$d" "$XC" \
	    "502 5.5.2 Error: command not recognized"
	expect_reply "$r: $XF answered by the upstream" "$d" "$XF" \
	    "502 5.5.2 Error: command not recognized"
	expect_match "$r: the upstream got the XCLIENT inside TLS" "$u" "^[0-9]+ T: $XC\$"
	expect_match "$r: the upstream got the XFORWARD inside TLS" "$u" "^[0-9]+ T: $XF\$"
done

# ---- client + implicit: no STARTTLS in the tunnel
for r in ct_last ct_mid; do
	u=$TP_TMP/ut_${r#ct_}.log
	case $r in
	ct_last) ehlo="250-upstream.test|250-PIPELINING|250 SIZE 1000000" ;;
	ct_mid) ehlo="250-upstream.test|250 PIPELINING" ;;
	esac
	dialog "$r" "$(route_port "$r")" --timeout $T r "s:EHLO c.test" r s:STARTTLS r \
	    'x:NOOP\r\nSTARTTLS\r\nRSET\r\n' r r r s:starttls r "s:MAIL FROM:<$r@example.org>" r \
	    s:QUIT r eof:5
	d=$DLG
	expect_reply "$r: EHLO reply without STARTTLS" "$d" "EHLO c.test" "$ehlo"
	expect_reply "$r: STARTTLS: 454 4.7.0 from the proxy" "$d" STARTTLS \
	    "454 4.7.0 TLS not available"
	expect_reply "$r: pipelined NOOP, STARTTLS, RSET answered in order" "$d" \
	    '<raw NOOP\r\nSTARTTLS\r\nRSET\r\n>' "250 2.0.0 Ok|454 4.7.0 TLS not available|250 2.0.0 Ok"
	expect_reply "$r: starttls: 454 4.7.0" "$d" starttls "454 4.7.0 TLS not available"
	expect_reply "$r: the session goes on: MAIL 250" "$d" "MAIL FROM:<$r@example.org>" "250 2.0.0 Ok"
	expect_no_match "$r: no STARTTLS reached the upstream" "$u" \
	    ' [CT]: [Ss][Tt][Aa][Rr][Tt][Tt][Ll][Ss]'
	expect_match "$r: the upstream got the MAIL inside TLS" "$u" \
	    "^[0-9]+ T: MAIL FROM:<$r@example\\.org>\$"
done

check "the proxy is still running" alive "$PROXY_PID"

done_testing
