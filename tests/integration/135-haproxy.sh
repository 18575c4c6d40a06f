#!/bin/sh
# 135-haproxy: scale-out behind a real HAProxy (README "Scale-out").
#
# client (127.0.0.2) -> HAProxy (mode tcp, balance roundrobin, send-proxy-v2)
# -> two tlsproxy hosts A and B (server routes with accept_proxy = yes,
# proxy_protocol = v2 and one shared ticket_key_file) -> a real Postfix
# smtpd with smtpd_upstream_proxy_protocol = haproxy.  A message over
# STARTTLS and one over implicit TLS reach Postfix, whose log shows the
# real client 127.0.0.2 and its port, never the 127.0.0.1 of HAProxy or
# tlsproxy; a TLS session made on one host is resumed on the other.
# The tlsproxy route lines and the HAProxy lines are the README's.
. "$(dirname "$0")/lib.sh"
require_tool haproxy postfix postconf ss openssl base64
require_root
need_certs

# wait_listen PORT: until something listens on 127.0.0.1:PORT, without
# connecting (a connection through HAProxy would take a roundrobin turn,
# one to the haproxy-mode smtpd is logged as an error)
wait_listen() {
	_i=0
	while ! ss -Hltn "sport = :$1" | grep -q LISTEN && [ $_i -lt 100 ]; do
		sleep 0.1
		_i=$((_i + 1))
	done
	[ $_i -lt 100 ]
}

pfport=$(free_port)
pf_init pfh
pf_main "$PF_DIR" smtpd_upstream_proxy_protocol=haproxy
pf_master "$PF_DIR" "127.0.0.1:$pfport inet n - n - - smtpd"
pfh=$PF_DIR
pf_start "$pfh"
wait_listen "$pfport" ||
    bail "postfix" "smtpd not listening on $pfport: $(tail -n 5 "$(pf_log "$pfh")")"
pflog=$(pf_log "$pfh")

# The fleet's shared session-ticket keys: one line of 80 random bytes.
umask 077
head -c 80 /dev/urandom | base64 -w0 >"$TP_TMP/tickets.keys"
echo >>"$TP_TMP/tickets.keys"
umask 022

# host NAME: the configuration of one tlsproxy host (README "Scale-out")
host() {
	cat >"$TP_TMP/$1.ini" <<EOF
[global]
shutdown_grace = 5s

[smtp]
mode = server
tls = starttls
accept = 127.0.0.1:0
connect = 127.0.0.1:$pfport
cert_file = $CERTS/rsa.pem
key_file = $CERTS/rsa.key
hostname = $1.test
accept_proxy = yes
proxy_protocol = v2
ticket_key_file = $TP_TMP/tickets.keys

[smtps]
mode = server
tls = implicit
accept = 127.0.0.1:0
connect = 127.0.0.1:$pfport
cert_file = $CERTS/rsa.pem
key_file = $CERTS/rsa.key
accept_proxy = yes
proxy_protocol = v2
ticket_key_file = $TP_TMP/tickets.keys
EOF
}
host a
host b
start_proxy "$TP_TMP/a.ini"
LA=$PROXY_LOG
start_proxy "$TP_TMP/b.ini"
LB=$PROXY_LOG

hp_smtp=$(free_port)
hp_smtps=$(free_port)
cat >"$TP_TMP/haproxy.cfg" <<EOF
global
	maxconn 200

defaults
	mode tcp
	timeout connect 5s
	timeout client 10m
	timeout server 10m

frontend smtp
	bind 127.0.0.1:$hp_smtp
	default_backend tlsproxy-smtp

backend tlsproxy-smtp
	balance roundrobin
	server a 127.0.0.1:$(route_port smtp "$LA") send-proxy-v2
	server b 127.0.0.1:$(route_port smtp "$LB") send-proxy-v2

frontend smtps
	bind 127.0.0.1:$hp_smtps
	default_backend tlsproxy-smtps

backend tlsproxy-smtps
	balance roundrobin
	server a 127.0.0.1:$(route_port smtps "$LA") send-proxy-v2
	server b 127.0.0.1:$(route_port smtps "$LB") send-proxy-v2
EOF
haproxy -c -f "$TP_TMP/haproxy.cfg" >"$TP_TMP/haproxy-c.out" 2>&1 ||
    bail "haproxy -c accepts the configuration" "$(tail -n 5 "$TP_TMP/haproxy-c.out" | tr '\n' ' ')"
spawn "$TP_TMP/haproxy.out" haproxy -db -f "$TP_TMP/haproxy.cfg"
HAPROXY_PID=$BG_PID
if wait_listen "$hp_smtp" && wait_listen "$hp_smtps"; then pass "haproxy listens"
else bail "haproxy listens" "$(tail -n 5 "$TP_TMP/haproxy.out" | tr '\n' ' ')"; fi

# local_port DLG: the client's own port, from the transcript
local_port() { sed -n 's/^local: .*:\([0-9]*\)$/\1/p' "$1"; }

# message NAME PORT starttls|implicit: one message from 127.0.0.2 through
# HAProxy; Postfix must see 127.0.0.2 and the client's own port.  (Not
# _n: lib.sh's check uses that name.)
message() {
	mn=$1
	mp=$2
	if [ "$3" = starttls ]; then
		set -- r "s:EHLO c.test" r s:STARTTLS r tls
	else
		set -- --tls r
	fi
	dialog "$mn" "$mp" --src 127.0.0.2 "$@" \
	    "s:EHLO client-$mn.example" r "s:MAIL FROM:<$mn@example.org>" r "s:RCPT TO:<$mn@example.com>" r \
	    s:DATA r "s:Subject: $mn" s: s:hello s:. r s:QUIT r eof
	expect_line "$mn: the client is 127.0.0.2" "$DLG" "local: 127.0.0.2:$(local_port "$DLG")"
	expect_reply_match "$mn: Postfix accepted the message" "$DLG" "." '^250 2\.0\.0 Ok: queued as '
	msp=$(local_port "$DLG")
	if grep -q '^S: 250 2\.0\.0 Ok: queued' "$DLG"; then
		wait_file "$pflog" 5 "to=<$mn@example\\.com>.* status=sent" || true
	fi
	if grep -Eq "smtpd\\[[0-9]+\\]: connect from [^ ]*\\[127\\.0\\.0\\.2\\]:$msp\$" "$pflog"; then
		pass "$mn: Postfix logs 'connect from ...[127.0.0.2]:$msp'"
	else
		fail "$mn: Postfix logs the real client 127.0.0.2:$msp" \
		    "$(grep 'smtpd\[' "$pflog" | tail -n 4 | tr '\n' '|')"
	fi
	check "$mn: Postfix logs client=...[127.0.0.2]:$msp for the message" \
	    grep -Eq "client=[^ ]*\\[127\\.0\\.0\\.2\\]:$msp\$" "$pflog"
	check "$mn: Postfix delivered the message" \
	    grep -Eq "to=<$mn@example\\.com>.* status=sent" "$pflog"
	if grep -Eq "[^0-9]127\\.0\\.0\\.2[]:]*$msp([^0-9]|\$)" "$LA" "$LB"; then
		pass "$mn: tlsproxy logs the client 127.0.0.2:$msp from HAProxy's header"
	else fail "$mn: tlsproxy logs the client 127.0.0.2:$msp" "$(tail -n 3 "$LA" "$LB" | tr '\n' '|')"; fi
}
message via-starttls "$hp_smtp" starttls
message via-implicit "$hp_smtps" implicit
check "no message in Postfix's log came from 127.0.0.1 (HAProxy or tlsproxy)" \
    [ "$(grep -Ec 'client=[^ ]*\[127\.0\.0\.1\]' "$pflog")" = 0 ]
expect_no_match "Postfix never logged a PROXY protocol error" "$pflog" 'haproxy read|proxy.*(error|invalid)|warning: .*proxy'

# ---- resumption across the fleet: a session made on one host is resumed
# on the other (shared ticket_key_file); which host served a handshake is
# told by the established/reused lines in each log.
# hs_count LOG: handshakes (new or resumed) a host has logged
hs_count() { log_count 'TLS connection (established|reused) from ' "$1"; }
# sc NAME PORT [s_client OPTION...]: one session through HAProxy; HOW is
# New or Reused, HOST the host (a or b) that served it
sc() {
	sn=$1
	sp=$2
	shift 2
	SC=$TP_TMP/$sn.sc
	_a=$(hs_count "$LA")
	_b=$(hs_count "$LB")
	case " $* " in
	*" -sess_out "*) _w=0.5 ;;	# TLS 1.3 tickets come after the handshake
	*) _w=0.2 ;;
	esac
	(sleep "$_w"; printf 'QUIT\r\n') |
	    timeout -k 2 10 openssl s_client -connect "127.0.0.1:$sp" "$@" >"$SC" 2>&1 || true
	HOW=$(sed -n 's/^\(New\|Reused\), .*/\1/p' "$SC" | head -n 1)
	[ -n "$HOW" ] || HOW="no handshake: $(grep -m 2 -Ei 'error|errno|refused' "$SC" | tr '\n' ' ')"
	HOST=
	_i=0
	while [ -z "$HOST" ] && [ $_i -lt 30 ]; do
		if [ "$(hs_count "$LA")" -gt "$_a" ]; then HOST=a
		elif [ "$(hs_count "$LB")" -gt "$_b" ]; then HOST=b
		else sleep 0.1; fi
		_i=$((_i + 1))
	done
}
# across NAME PORT [s_client OPTION...]: a session, then sessions offering
# it until one lands on the other host (roundrobin: the next one); that
# one must be resumed
across() {
	_an=$1
	_ap=$2
	shift 2
	sc "$_an-1" "$_ap" "$@" -sess_out "$TP_TMP/$_an.sess"
	first=$HOST
	if [ "$HOW" != New ] || [ -z "$first" ]; then
		fail "$_an: a first session" "$HOW on host '$first'"
		return 0
	fi
	for _try in 1 2 3; do
		sc "$_an-2" "$_ap" "$@" -sess_in "$TP_TMP/$_an.sess"
		[ -n "$HOST" ] && [ "$HOST" != "$first" ] && break
	done
	if [ -z "$HOST" ] || [ "$HOST" = "$first" ]; then
		fail "$_an: a session made on host $first resumed on the other host" "HAProxy never sent one to the other host"
	elif [ "$HOW" = Reused ]; then
		pass "$_an: a session made on host $first is resumed on host $HOST"
	else
		fail "$_an: a session made on host $first resumed on host $HOST" "got '$HOW'"
	fi
}
across resume-smtps-13 "$hp_smtps" -tls1_3
across resume-smtp-12 "$hp_smtp" -tls1_2 -starttls smtp

kill_pid "$HAPROXY_PID"
check "haproxy reported no alert" [ "$(grep -c '\[ALERT\]' "$TP_TMP/haproxy.out")" = 0 ]

done_testing
