#!/bin/sh
# 130-proxy-protocol: proxy_protocol = v1|v2 towards the backend on server
# routes (starttls and implicit), accept_proxy = yes from a load balancer in
# front, client_limit per client IP, and a real Postfix smtpd with
# smtpd_upstream_proxy_protocol = haproxy whose log shows the real client
# address through a v1 and a v2 route.
. "$(dirname "$0")/lib.sh"
require_tool postfix postconf ss
require_root
need_certs

pb=$(free_port)		# records the PROXY header it gets
nb=$(free_port)		# plain backend for the client_limit routes
pfport=$(free_port)	# Postfix smtpd, haproxy protocol
start_smtpd pb "$pb" --proxy --greeting '220 pb.test ESMTP\r\n'
start_smtpd nb "$nb" --greeting '220 nb.test ESMTP\r\n'

pf_init pfb
pf_main "$PF_DIR" smtpd_upstream_proxy_protocol=haproxy
pf_master "$PF_DIR" "127.0.0.1:$pfport inet n - n - - smtpd"
pfb=$PF_DIR
pf_start "$pfb"
# (wait_port would connect, which the haproxy-mode smtpd logs as an error)
i=0
while ! ss -Hltn "sport = :$pfport" | grep -q LISTEN && [ $i -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
[ $i -lt 100 ] || bail "postfix" "smtpd not listening on $pfport: $(tail -n 5 "$(pf_log "$pfb")")"
pflog=$(pf_log "$pfb")

route() { # NAME TLS BACKEND-PORT [EXTRA LINES]
	printf '\n[%s]\nmode = server\ntls = %s\naccept = 127.0.0.1:0\n' "$1" "$2"
	printf 'connect = 127.0.0.1:%s\ncert_file = %s\nkey_file = %s\n' \
	    "$3" "$CERTS/rsa.pem" "$CERTS/rsa.key"
	printf 'hostname = %s.test\nsmtp_timeout = 10s\n%s\n' "$1" "${4:-}"
}
{
	printf '[global]\nshutdown_grace = 5s\n'
	route v1s starttls "$pb" "proxy_protocol = v1"
	route v2i implicit "$pb" "proxy_protocol = v2"
	route lb1 starttls "$pb" "proxy_protocol = v2
accept_proxy = yes"
	route lb2 implicit "$pb" "proxy_protocol = v1
accept_proxy = yes"
	route pf1 starttls "$pfport" "proxy_protocol = v1"
	route pf2 implicit "$pfport" "proxy_protocol = v2"
	route lim starttls "$nb" "client_limit = 2"
	route limi implicit "$nb" "client_limit = 2"
	route limlb starttls "$nb" "client_limit = 1
accept_proxy = yes"
} >"$TP_TMP/pp.ini"
start_proxy "$TP_TMP/pp.ini"

# local_port DLG: the client's own port, from the transcript
local_port() { sed -n 's/^local: .*:\([0-9]*\)$/\1/p' "$1"; }
# header_of EHLO-NAME: the PROXY header line of the pb session that sent it
header_of() {
	_s=$(grep -F " EHLO $1" "$TP_TMP/pb.log" | head -n 1 | cut -d' ' -f1)
	[ -z "$_s" ] || grep "^$_s proxy " "$TP_TMP/pb.log" | head -n 1 | cut -d' ' -f2-
}

# ---- v1 on a starttls route, v2 on an implicit route
dialog v1s "$(route_port v1s)" --src 127.0.0.5 r "s:EHLO c.test" r s:STARTTLS r tls \
    "s:EHLO client-v1s.example" r s:QUIT r eof
expect_reply_match "v1s: EHLO inside TLS answered by the backend" "$DLG" "EHLO client-v1s.example" '^250-upstream\.test'
sp=$(local_port "$DLG")
got=$(header_of client-v1s.example)
exp="proxy v1 PROXY TCP4 127.0.0.5 127.0.0.1 $sp $(route_port v1s)"
if [ "$got" = "$exp" ]; then pass "v1s: backend got '$exp'"
else fail "v1s: backend got a v1 header with the client's address" "expected '$exp', got '$got'"; fi

dialog v2i "$(route_port v2i)" --tls --src 127.0.0.6 r "s:EHLO client-v2i.example" r s:QUIT r eof
expect_reply "v2i: greeting from the backend" "$DLG" "" "220 pb.test ESMTP"
sp=$(local_port "$DLG")
got=$(header_of client-v2i.example)
exp="proxy v2 PROXY TCP4 src=127.0.0.6:$sp dst=127.0.0.1:$(route_port v2i)"
if [ "$got" = "$exp" ]; then pass "v2i: backend got '$exp'"
else fail "v2i: backend got a v2 header with the client's address" "expected '$exp', got '$got'"; fi

# ---- accept_proxy: the load balancer's address is passed on
dialog lb1 "$(route_port lb1)" pv1:192.0.2.7:5555:198.51.100.1:25 r "s:EHLO c.test" r \
    s:STARTTLS r tls "s:EHLO client-lb1.example" r s:QUIT r eof
expect_reply "lb1: greeting after a v1 header" "$DLG" "" "220 lb1.test ESMTP"
got=$(header_of client-lb1.example)
case $got in
"proxy v2 PROXY TCP4 src=192.0.2.7:5555 dst="*) pass "lb1: v1 in, v2 out with src 192.0.2.7:5555 ($got)" ;;
*) fail "lb1: v1 in, v2 out with src 192.0.2.7:5555" "got '$got'" ;;
esac
check "lb1: the proxy logs 192.0.2.7:5555" log_has 'lb1/[^:]+: .*192\.0\.2\.7[]:]*5555'

dialog lb2 "$(route_port lb2)" pv2:203.0.113.9:6666:198.51.100.2:465 tls r "s:EHLO client-lb2.example" r s:QUIT r eof
expect_reply "lb2: greeting through TLS after a v2 header" "$DLG" "" "220 pb.test ESMTP"
got=$(header_of client-lb2.example)
if echo "$got" | grep -Eq '^proxy v1 PROXY TCP4 203\.0\.113\.9 [0-9.]+ 6666 [0-9]+$'; then
	pass "lb2: v2 in, v1 out with 203.0.113.9 port 6666 ($got)"
else fail "lb2: v2 in, v1 out with 203.0.113.9 port 6666" "got '$got'"; fi
check "lb2: the proxy logs 203.0.113.9:6666" log_has 'lb2/[^:]+: .*203\.0\.113\.9[]:]*6666'

# ---- accept_proxy = yes and no PROXY header: no session
dialog nohdr1 "$(route_port lb1)" 'x:EHLO c.test\r\n' r eof:5
expect_no_match "lb1 without a PROXY header: no greeting" "$DLG" '^S: [0-9]'
expect_line "lb1 without a PROXY header: closed" "$DLG" "EOF"
dialog nohdr2 "$(route_port lb2)" 'x:GET / HTTP/1.0\r\n\r\n' r eof:5
expect_no_match "lb2 without a PROXY header: no greeting" "$DLG" '^S: [0-9]'
expect_line "lb2 without a PROXY header: closed" "$DLG" "EOF"

# ---- a real Postfix smtpd behind a v1 (starttls) and a v2 (implicit) route
# pf_session NAME SRC starttls|implicit: one message through route NAME from
# the source address SRC
pf_session() {
	pn=$1
	psrc=$2
	if [ "$3" = starttls ]; then
		set -- r "s:EHLO c.test" r s:STARTTLS r tls
	else
		set -- --tls r
	fi
	dialog "$pn" "$(route_port "$pn")" --src "$psrc" "$@" \
	    "s:EHLO client-$pn.example" r "s:MAIL FROM:<$pn@example.org>" r "s:RCPT TO:<$pn@example.com>" r \
	    s:DATA r "s:Subject: $pn" s: s:hello s:. r s:QUIT r eof
	expect_reply_match "$pn: Postfix accepted the message" "$DLG" "." '^250 2\.0\.0 Ok: queued as '
	sp=$(local_port "$DLG")
	if grep -q '^S: 250 2\.0\.0 Ok: queued' "$DLG"; then
		wait_file "$pflog" 5 "to=<$pn@example\\.com>.* status=sent" || true
	fi
	if grep -Eq "smtpd\\[[0-9]+\\]: connect from [^ ]*\\[$psrc\\]:$sp\$" "$pflog"; then
		pass "$pn: Postfix logs 'connect from ...[$psrc]:$sp'"
	else
		fail "$pn: Postfix logs the real client address $psrc:$sp" \
		    "$(grep 'smtpd\[' "$pflog" | tail -n 4 | tr '\n' '|')"
	fi
	check "$pn: Postfix logs client=...[$psrc]:$sp for the message" \
	    grep -Eq "client=[^ ]*\\[$psrc\\]:$sp\$" "$pflog"
	check "$pn: Postfix delivered the message" \
	    grep -Eq "to=<$pn@example\\.com>.* status=sent" "$pflog"
}
pf_session pf1 127.0.0.5 starttls
pf_session pf2 127.0.0.6 implicit
expect_no_match "Postfix never logged a PROXY protocol error" "$pflog" 'haproxy read|proxy.*(error|invalid)'

# ---- client_limit on a starttls route: 421 4.7.0 for the third
# hold NAME ROUTE [OPTION...]: a session that read its greeting and stays
hold() {
	_n=$1
	_r=$2
	shift 2
	spawn_dialog "$_n" "$(route_port "$_r")" --timeout 40 "$@" r sleep:40
	HOLD_PID=$BG_PID
	if wait_file "$TP_TMP/$_n.dlg" 3 '^S: 220 '; then pass "$_n is served"
	else fail "$_n is served" "$(oneline "$TP_TMP/$_n.dlg")"; fi
}
hold lim-a lim --src 127.0.0.7
a=$HOLD_PID
hold lim-b lim --src 127.0.0.7
dialog lim-c "$(route_port lim)" --src 127.0.0.7 r eof
expect_reply "lim: third session from 127.0.0.7: 421 4.7.0" "$DLG" "" \
    "421 4.7.0 Too many connections from 127.0.0.7"
expect_line "lim: closed after the 421" "$DLG" "EOF"
dialog lim-d "$(route_port lim)" --src 127.0.0.8 r s:QUIT r
expect_reply "lim: another IP is served" "$DLG" "" "220 lim.test ESMTP"
n=$(log_count 'lim/[^:]+: disconnect')
kill_pid "$a"
wait_log_count 'lim/[^:]+: disconnect' $((n + 1)) 5 || true
dialog lim-e "$(route_port lim)" --src 127.0.0.7 r s:QUIT r
expect_reply "lim: a freed slot serves 127.0.0.7 again" "$DLG" "" "220 lim.test ESMTP"

# ---- client_limit on an implicit route: the third is closed, no greeting
hold limi-a limi --tls --src 127.0.0.9
hold limi-b limi --tls --src 127.0.0.9
dialog limi-c "$(route_port limi)" --tls --src 127.0.0.9 r eof:3
expect_no_match "limi: third session from 127.0.0.9 gets no greeting" "$DLG" '^S: [0-9]'
if grep -Eq '^(connect failed|EOF|S: <EOF>)' "$DLG"; then pass "limi: third session closed"
else fail "limi: third session closed" "$(oneline "$DLG")"; fi
dialog limi-d "$(route_port limi)" --tls --src 127.0.0.10 r s:QUIT r
expect_reply "limi: another IP is served" "$DLG" "" "220 nb.test ESMTP"

# ---- client_limit counts the address from the PROXY header
hold limlb-a limlb --src 127.0.0.11 pv1:192.0.2.50:1000:127.0.0.1:25
hold limlb-b limlb --src 127.0.0.11 pv1:192.0.2.51:1001:127.0.0.1:25
dialog limlb-c "$(route_port limlb)" --src 127.0.0.12 pv1:192.0.2.50:1002:127.0.0.1:25 r eof
expect_reply "limlb: a second session of 192.0.2.50 (via the header): 421 4.7.0" "$DLG" "" \
    "421 4.7.0 Too many connections from 192.0.2.50"

done_testing
