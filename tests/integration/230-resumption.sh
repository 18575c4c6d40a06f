#!/bin/sh
# 230-resumption: TLS session resumption both ways (spec 3, 8; issue 4).
#
# Server routes: session_tickets and ticket_key_file (base64 lines of 80
# bytes; the first encrypts, all decrypt; re-read on SIGHUP).  Five
# tlsproxy processes: A and B share one key file, C has another, D has
# session_tickets = no (no resumption at all, not even of its own sessions
# by session id), E has the defaults (tickets, keys of its own).  openssl s_client -sess_out on one and -sess_in on
# another must say Reused (same keys) or New (other keys, no tickets, a key
# that was rotated out); the ticket's key name (its first 16 bytes) is the
# first key's; rotation keeps old sessions resumable; an SNI chain does not
# change any of this.  -t and reload refuse bad key files.
#
# Client routes: session_cache = yes resumes upstream sessions ("... TLS
# connection reused to ..."), = no never does; the cache is emptied on
# reload, so a cached session never skips the new policy's verification
# (a wrong fingerprint or match after SIGHUP -> 421 4.7.5, nothing
# delivered), and a server whose certificate changed is verified again.
. "$(dirname "$0")/lib.sh"
require_tool openssl base64 /usr/sbin/smtp-sink
need_certs

if [ -n "${TP_CERTS:-}" ] && [ -d "$TP_CERTS" ] && [ -w "$TP_CERTS" ]; then
	EX=$TP_CERTS/extra
else
	EX=$TP_TMP/extra
fi
sh "$TP_ROOT/tests/certs/mkserverextra.sh" "$EX" "$CERTS" >"$TP_TMP/mkextra.out" 2>&1 ||
    bail "mkserverextra" "$(tail -n 3 "$TP_TMP/mkextra.out" | tr '\n' ' ')"

# section NAME: a note with the time so far
section() { note "$1 (at $(($(date +%s) - TP_T0)) s)"; }

nb=$(free_port)
start_smtpd nb "$nb" --greeting '220 nb.test ESMTP\r\n'

umask 077
newkey() { head -c 80 /dev/urandom | base64 -w0; }
# key_name LINE: the key name (first 16 bytes) of a key line, hex
key_name() { printf '%s' "$1" | base64 -d | head -c 16 | od -An -tx1 | tr -d ' \n'; }
K1=$(newkey)
K2=$(newkey)
K3=$(newkey)
TK=$TP_TMP/tickets.keys	# A and B
TKC=$TP_TMP/other.keys	# C
printf '%s\n' "$K1" >"$TK"
printf '%s\n' "$K3" >"$TKC"
chmod 600 "$TK" "$TKC"
umask 022

# srvcfg FILE KEYFILE|- yes|no|default: routes in (implicit), ins (STARTTLS),
# insni (implicit, an sni chain for mail.example.com), all to nb
srvcfg() {
	{
		printf '[global]\nshutdown_grace = 1s\n'
		for r in in:implicit ins:starttls insni:implicit; do
			printf '\n[%s]\nmode = server\ntls = %s\naccept = 127.0.0.1:0\n' "${r%%:*}" "${r#*:}"
			printf 'connect = 127.0.0.1:%s\ncert_file = %s\nkey_file = %s\n' "$nb" "$CERTS/rsa.pem" "$CERTS/rsa.key"
			[ "$3" = default ] || printf 'session_tickets = %s\n' "$3"
			[ "$2" = - ] || printf 'ticket_key_file = %s\n' "$2"
			[ "${r%%:*}" = insni ] && printf 'sni = mail.example.com %s %s\n' "$EX/exact.pem" "$EX/exact.key"
		done
	} >"$1"
}
srvcfg "$TP_TMP/a.ini" "$TK" yes
srvcfg "$TP_TMP/b.ini" "$TK" yes
srvcfg "$TP_TMP/c.ini" "$TKC" yes
srvcfg "$TP_TMP/d.ini" "$TK" no
srvcfg "$TP_TMP/e.ini" - default
for x in a b c d e; do
	"$TLSPROXY" -c "$TP_TMP/$x.ini" -t >"$TP_TMP/$x.t" 2>&1 ||
	    bail "-t accepts $x.ini" "$(head -n 3 "$TP_TMP/$x.t" | tr '\n' ' ')"
done
pass "-t accepts the five server configurations"
start_proxy "$TP_TMP/a.ini"; LA=$PROXY_LOG; PA=$PROXY_PID
start_proxy "$TP_TMP/b.ini"; LB=$PROXY_LOG; PB=$PROXY_PID
start_proxy "$TP_TMP/c.ini"; LC=$PROXY_LOG
start_proxy "$TP_TMP/d.ini"; LD=$PROXY_LOG
start_proxy "$TP_TMP/e.ini"; LE=$PROXY_LOG

# port X ROUTE: the port of ROUTE in proxy X (a b c d e)
port() {
	case $1 in a) _l=$LA ;; b) _l=$LB ;; c) _l=$LC ;; d) _l=$LD ;; e) _l=$LE ;; esac
	route_port "$2" "$_l"
}
# sc NAME X ROUTE [s_client OPTION...]: one s_client session that stays
# long enough for TLS 1.3 tickets to arrive and sends QUIT; the transcript in
# $TP_TMP/NAME.sc, "New" or "Reused" in HOW.  ROUTE ins adds -starttls smtp.
# (stdin: QUIT after 0.5 s when the session is saved, else after 0.1 s;
# SC_WAIT=SECS sets another delay)
sc() {
	_n=$1
	_x=$2
	_r=$3
	shift 3
	SC=$TP_TMP/$_n.sc
	[ "$_r" = ins ] && set -- -starttls smtp "$@"
	# TLS 1.3 tickets come after the handshake: wait for them when saving
	case " $* " in
	*" -sess_out "*) _w=0.5 ;;
	*) _w=0.1 ;;
	esac
	_w=${SC_WAIT:-$_w}
	(sleep "$_w"; printf 'QUIT\r\n') |
	    timeout -k 2 10 openssl s_client -connect "127.0.0.1:$(port "$_x" "$_r")" "$@" >"$SC" 2>&1 || true
	HOW=$(sed -n 's/^\(New\|Reused\), .*/\1/p' "$SC" | head -n 1)
	[ -n "$HOW" ] || HOW="no handshake: $(grep -m 2 -Ei 'error|errno|refused' "$SC" | tr '\n' ' ')"
}
# ticket_name SESSFILE: the key name in the session's ticket (hex), "none"
ticket_name() {
	openssl sess_id -in "$1" -noout -text 2>/dev/null | awk '
		/TLS session ticket:/ { getline; sub(/^ *[0-9a-f]+ - /, "");
			s = substr($0, 1, 47); gsub(/[- ]/, "", s); print s; f = 1; exit }
		END { if (!f) print "none" }'
}
# expect_how NAME EXPECTED: HOW (from the last sc) is EXPECTED
expect_how() {
	if [ "$HOW" = "$2" ]; then pass "$1: $2"
	else fail "$1: $2" "got '$HOW' [$(grep -m 2 -E '^(New|Reused),|:error:' "$SC" | tr '\n' '|')]"; fi
}
S=$TP_TMP	# session files
KN1=$(key_name "$K1")
KN2=$(key_name "$K2")
ZERO=00000000000000000000000000000000

# ---------------------------------------------------------------- shared keys
section "shared ticket keys"

for v in tls1_3 tls1_2; do
	for r in in ins; do
		sc "a-$r-$v" a "$r" "-$v" -sess_out "$S/a-$r-$v.sess"
		expect_how "A $r $v: first session" New
		got=$(ticket_name "$S/a-$r-$v.sess")
		if [ "$got" = "$KN1" ]; then pass "A $r $v: the ticket is under the first key of the file ($got)"
		else fail "A $r $v: the ticket is under the first key of the file" "key name $got, want $KN1"; fi
		sc "b-$r-$v" b "$r" "-$v" -sess_in "$S/a-$r-$v.sess"
		expect_how "B $r $v: a session from A (same key file)" Reused
		sc "c-$r-$v" c "$r" "-$v" -sess_in "$S/a-$r-$v.sess"
		expect_how "C $r $v: a session from A (another key file)" New
		sc "d-$r-$v" d "$r" "-$v" -sess_in "$S/a-$r-$v.sess"
		expect_how "D $r $v: a session from A (session_tickets = no, same key file)" New
	done
done
check "B logged 'TLS connection reused from unknown[127.0.0.1]'" \
    log_has ': in/[0-9a-f]+: [A-Za-z]+ TLS connection reused from unknown\[127\.0\.0\.1\]: TLSv1\.3 ' "$LB"
check "B logged a reused STARTTLS session" \
    log_has ': ins/[0-9a-f]+: [A-Za-z]+ TLS connection reused from unknown\[127\.0\.0\.1\]: TLSv1\.2 ' "$LB"
check "C logged no reused session" [ "$(log_count 'TLS connection reused' "$LC")" = 0 ]
check "D logged no reused session" [ "$(log_count 'TLS connection reused' "$LD")" = 0 ]
# a resumed session still reaches the backend (QUIT after 1 s: s_client
# may take most of 0.1 s to start, and quits at the end of its input
# before the greeting came)
SC_WAIT=1
sc b-in-greeting b in -tls1_3 -sess_in "$S/a-in-tls1_3.sess"
unset SC_WAIT
expect_how "B in tls1_3: a session from A, once more" Reused
if grep -q '^220 nb\.test ESMTP' "$SC"; then
	pass "B: the resumed session reached the backend (its greeting)"
else fail "B: the resumed session reached the backend" "$(grep -E '^[0-9]{3}[ -]' "$SC" | tr '\n' '|')"; fi
# session_tickets = no: no ticket at all
sc d-own-12 d in -tls1_2 -sess_out "$S/d-own-12.sess"
got=$(ticket_name "$S/d-own-12.sess")
check "D (session_tickets = no): no session ticket in TLS 1.2 (got $got)" [ "$got" = none ]
# session_tickets = no is no resumption at all (Postfix: cache timeout 0):
# not by session id from the process's own cache (TLS 1.2), not by a TLS
# 1.3 stateful ticket.  E (the defaults: tickets, no key file) resumes
# both, so the method does find a resumption where there is one.
for r in in ins; do
	for v in tls1_2 tls1_3; do
		sc "d-own-$r-$v" d "$r" "-$v" -sess_out "$S/d-own-$r-$v.sess"
		expect_how "D $r $v (session_tickets = no): first session" New
		# s_client saves nothing when it got no session id and no
		# ticket: then there is nothing it could offer
		if [ -s "$S/d-own-$r-$v.sess" ]; then
			sc "d-own2-$r-$v" d "$r" "-$v" -sess_in "$S/d-own-$r-$v.sess"
			expect_how "D $r $v (session_tickets = no): its own session offered again is not resumed" New
		else
			pass "D $r $v (session_tickets = no): nothing resumable handed out (s_client saved no session)"
		fi
		sc "e-own-$r-$v" e "$r" "-$v" -sess_out "$S/e-own-$r-$v.sess"
		expect_how "E $r $v (defaults): first session" New
		sc "e-own2-$r-$v" e "$r" "-$v" -sess_in "$S/e-own-$r-$v.sess"
		expect_how "E $r $v (defaults): its own session offered again is resumed" Reused
	done
done
got=$(ticket_name "$S/d-own-in-tls1_3.sess")
check "D (session_tickets = no): no session ticket in TLS 1.3 either (got $got)" [ "$got" = none ]
got=$(sed -n 's/^ *Session-ID: *\([0-9A-F]*\)$/\1/p' "$S/d-own-in-tls1_2.sc" | head -n 1)
check "D (session_tickets = no): no session id in TLS 1.2 (got '$got')" [ -z "$got" ]
check "D still logged no reused session" [ "$(log_count 'TLS connection reused' "$LD")" = 0 ]
check "E logged reused sessions" log_has ': ins?/[0-9a-f]+: [A-Za-z]+ TLS connection reused from ' "$LE"

# ---------------------------------------------------------------- SNI
section "tickets with an sni chain"

for v in tls1_3 tls1_2; do
	sc "a-sni-$v" a insni "-$v" -servername mail.example.com -sess_out "$S/a-sni-$v.sess"
	expect_how "A insni $v (SNI mail.example.com): first session" New
	got=$(ticket_name "$S/a-sni-$v.sess")
	if [ "$got" = "$KN1" ]; then pass "A insni $v: the ticket of an SNI session is under the first key ($got)"
	elif [ "$got" = "$ZERO" ]; then
		fail "A insni $v: the ticket of an SNI session is under the first key" \
		    "key name is 16 zero bytes: the ticket is encrypted under an all-zero key"
	else fail "A insni $v: the ticket of an SNI session is under the first key" "key name $got, want $KN1"; fi
	sc "a2-sni-$v" a insni "-$v" -servername mail.example.com -sess_in "$S/a-sni-$v.sess"
	expect_how "A insni $v: its own SNI session" Reused
	sc "b-sni-$v" b insni "-$v" -servername mail.example.com -sess_in "$S/a-sni-$v.sess"
	expect_how "B insni $v: an SNI session from A (same key file)" Reused
done
# Is the ticket of an SNI session protected by the file's key, or by an
# all-zero one?  Ticket = key name(16) IV(16) AES-256-CBC body HMAC-SHA256(32)
# with the HMAC key = bytes 16..47 of the key line (tls_server.c).  The
# method is checked first on a ticket of the in route under K1.
# ticket_hex SESSFILE: the whole ticket, hex
ticket_hex() {
	openssl sess_id -in "$1" -noout -text 2>/dev/null | awk '
		/TLS session ticket:/ { on = 1; next }
		on && /^ *[0-9a-f]+ - / { sub(/^ *[0-9a-f]+ - /, ""); s = substr($0, 1, 47); gsub(/[- ]/, "", s); t = t s; next }
		on { exit }
		END { print t }'
}
# hmac_ok TICKETHEX HMACKEYHEX: the ticket's HMAC verifies under this key
hmac_ok() {
	_l=${#1}
	[ "$_l" -gt 128 ] || return 1
	_mac=$(echo "$1" | cut -c $((_l - 63))-"$_l")
	_got=$(echo "$1" | cut -c 1-$((_l - 64)) | xxd -r -p |
	    openssl dgst -sha256 -mac HMAC -macopt "hexkey:$2" -r | cut -d' ' -f1)
	[ "$_got" = "$_mac" ]
}
k1hmac=$(printf '%s' "$K1" | base64 -d | head -c 48 | tail -c 32 | od -An -tx1 | tr -d ' \n')
if command -v xxd >/dev/null 2>&1; then
	if hmac_ok "$(ticket_hex "$S/a-in-tls1_2.sess")" "$k1hmac"; then
		pass "method: a ticket of route in verifies under K1's HMAC key"
		if hmac_ok "$(ticket_hex "$S/a-sni-tls1_2.sess")" "$ZERO$ZERO"; then
			fail "an SNI session's ticket is not made with an all-zero key" \
			    "its HMAC verifies under 32 zero bytes: anyone can forge or decrypt such tickets (session master secret)"
		else pass "an SNI session's ticket is not made with an all-zero key"; fi
	else
		fail "method: a ticket of route in verifies under K1's HMAC key" "(test problem?) ticket $(ticket_hex "$S/a-in-tls1_2.sess" | cut -c 1-64)..."
	fi
else
	note "xxd not installed: ticket HMAC check skipped"
fi

# ---------------------------------------------------------------- rotation
section "rotation"

# K2 first (encrypts), K1 still decrypts
printf '%s\n%s\n' "$K2" "$K1" >"$TK"
n=$(log_count 'reloaded configuration' "$LA")
kill -HUP "$PA"
wait_log_count 'reloaded configuration' $((n + 1)) 5 "$LA" ||
    fail "A reloads" "$(tail -n 3 "$LA" | tr '\n' ' ')"
for v in tls1_3 tls1_2; do
	sc "a-old-$v" a in "-$v" -msg -sess_in "$S/a-in-$v.sess" -sess_out "$S/a-renew-$v.sess"
	expect_how "A in $v after rotation: a session under the old key" Reused
	if [ "$v" = tls1_3 ]; then
		got=$(ticket_name "$S/a-renew-$v.sess")
	else
		# TLS 1.2: s_client saves no session after a resumption; the
		# renewed ticket is in the NewSessionTicket message (-msg):
		# type(1) length(3) lifetime(4) ticket length(2) ticket
		got=$(awk '
			/^<<< .*NewSessionTicket/ { on = 1; next }
			on && /^ +[0-9a-f][0-9a-f] / { for (i = 1; i <= NF; i++) h = h $i; next }
			on { exit }
			END { print (length(h) >= 52 ? substr(h, 21, 32) : "none") }' "$SC")
	fi
	check "A in $v after rotation: the ticket that replaces it is under the new key (got $got)" [ "$got" = "$KN2" ]
	sc "a-new-$v" a in "-$v" -sess_out "$S/a-new-$v.sess"
	expect_how "A in $v after rotation: a new session" New
	got=$(ticket_name "$S/a-new-$v.sess")
	check "A in $v after rotation: new tickets are under the new first key (got $got)" [ "$got" = "$KN2" ]
	# B has not re-read the file yet
	sc "b-new-$v" b in "-$v" -sess_in "$S/a-new-$v.sess"
	expect_how "B in $v before its SIGHUP: a session under the new key" New
done
n=$(log_count 'reloaded configuration' "$LB")
kill -HUP "$PB"
wait_log_count 'reloaded configuration' $((n + 1)) 5 "$LB" ||
    fail "B reloads" "$(tail -n 3 "$LB" | tr '\n' ' ')"
for v in tls1_3 tls1_2; do
	sc "b-new2-$v" b in "-$v" -sess_in "$S/a-new-$v.sess"
	expect_how "B in $v after its SIGHUP: a session under the new key" Reused
done

# a bad key file on reload: refused, the old keys stay
printf 'not base64 of 80 bytes\n' >"$TK"
n=$(log_count 'reload failed' "$LA")
kill -HUP "$PA"
if wait_log_count 'reload failed' $((n + 1)) 5 "$LA"; then pass "A: reload with a bad ticket_key_file fails"
else fail "A: reload with a bad ticket_key_file fails" "$(tail -n 3 "$LA" | tr '\n' ' ')"; fi
sc a-afterbad a in -tls1_3 -sess_in "$S/a-new-tls1_3.sess"
expect_how "A after the failed reload: the keys in use are kept" Reused

# K1 removed: its sessions are no longer resumed
umask 077
printf '%s\n' "$K2" >"$TK"
umask 022
n=$(log_count 'reloaded configuration' "$LA")
kill -HUP "$PA"
wait_log_count 'reloaded configuration' $((n + 1)) 5 "$LA" ||
    fail "A reloads" "$(tail -n 3 "$LA" | tr '\n' ' ')"
for v in tls1_3 tls1_2; do
	sc "a-gone-$v" a in "-$v" -sess_in "$S/a-in-$v.sess"
	expect_how "A in $v: a session under a key no longer in the file" New
	sc "a-kept-$v" a in "-$v" -sess_in "$S/a-new-$v.sess"
	expect_how "A in $v: a session under the remaining key" Reused
done

# ---------------------------------------------------------------- -t
section "-t"

# tcheck NAME ERE FILE-CONTENT MODE: -t refuses ticket_key_file (line 9)
tcheck() {
	_k=$TP_TMP/tcheck.keys
	rm -f "$_k"
	printf '%s' "$3" >"$_k"
	chmod "$4" "$_k"
	_f=$TP_TMP/tcheck.ini
	{
		printf '[global]\n\n[r]\nmode = server\naccept = 127.0.0.1:0\n'
		printf 'connect = 127.0.0.1:%s\ncert_file = %s\nkey_file = %s\n' "$nb" "$CERTS/rsa.pem" "$CERTS/rsa.key"
		printf 'ticket_key_file = %s\n' "$_k"
	} >"$_f"
	"$TLSPROXY" -c "$_f" -t >"$TP_TMP/tcheck.out" 2>&1 && _rc=0 || _rc=$?
	if [ "$_rc" = 1 ] && grep -Eq -e "tcheck\\.ini:9: .*$2" "$TP_TMP/tcheck.out"; then pass "-t: $1"
	else fail "-t: $1" "exit $_rc: $(head -n 3 "$TP_TMP/tcheck.out" | tr '\n' '|')"; fi
}
tcheck "ticket_key_file readable by others" "ticket_key_file .*(mode|readable|permission)" "$K1
" 644
tcheck "ticket_key_file with a short key" "ticket_key_file .*80 bytes" "$(head -c 48 /dev/urandom | base64 -w0)
" 600
tcheck "ticket_key_file without keys" "ticket_key_file .*(no key|80 bytes)" "" 600
rm -f "$TP_TMP/tcheck.keys"
tcheck "ticket_key_file that does not exist" "ticket_key_file" "" 600
rm -f "$TP_TMP/tcheck.keys"
sed -i "s|^ticket_key_file = .*|ticket_key_file = $TP_TMP/tcheck.keys|" "$TP_TMP/tcheck.ini"
"$TLSPROXY" -c "$TP_TMP/tcheck.ini" -t >"$TP_TMP/tcheck.out" 2>&1 && rc=0 || rc=$?
if [ "$rc" = 1 ] && grep -Eq 'tcheck\.ini:9: ticket_key_file' "$TP_TMP/tcheck.out"; then pass "-t: a missing ticket_key_file"
else fail "-t: a missing ticket_key_file" "exit $rc: $(head -n 3 "$TP_TMP/tcheck.out" | tr '\n' '|')"; fi

# ---------------------------------------------------------------- client session cache
section "client session cache"

sink=$(free_port)
start_sink "$sink"
CFGS=$TP_TMP/srv.ini
writesrv() { # CERT
	cat >"$CFGS.new" <<EOF
[global]
shutdown_grace = 1s

[srv]
mode = server
accept = 127.0.0.1:0
connect = 127.0.0.1:$sink
cert_file = $CERTS/$1.pem
key_file = $CERTS/$1.key

[srvs]
mode = server
tls = starttls
accept = 127.0.0.1:0
connect = 127.0.0.1:$sink
cert_file = $CERTS/$1.pem
key_file = $CERTS/$1.key
EOF
	mv "$CFGS.new" "$CFGS"
}
writesrv rsa
start_proxy "$CFGS"
LS=$PROXY_LOG
PS_=$PROXY_PID
SRVPORT=$(route_port srv "$LS")
SRVSPORT=$(route_port srvs "$LS")
# (the accept addresses stay "127.0.0.1:0" in the configurations written
# for reloads: the same accept key keeps the listener and its port)

good_fp=$(openssl x509 -in "$CERTS/rsa.pem" -noout -fingerprint -sha256 | sed 's/^.*=//')
wrong_fp=$(openssl x509 -in "$CERTS/rsa2.pem" -noout -fingerprint -sha256 | sed 's/^.*=//')
CFGC=$TP_TMP/cli.ini
# writecli POLICY-OF-cl POLICY-OF-clv: the client routes
# workers = 1: the client session cache is per worker (sesscache.c), and
# these cases expect the second session of a route to find the session the
# first one left; with several loops it may land on another worker.
writecli() {
	cat >"$CFGC.new" <<EOF
[global]
shutdown_grace = 1s
workers = 1

[cl]
mode = client
accept = 127.0.0.1:0
connect = 127.0.0.1:$SRVPORT
smtp_timeout = 10s
$1

[clv]
mode = client
accept = 127.0.0.1:0
connect = 127.0.0.1:$SRVPORT
smtp_timeout = 10s
$2

[cls]
mode = client
tls = starttls
accept = 127.0.0.1:0
connect = 127.0.0.1:$SRVSPORT
smtp_timeout = 10s

[cl12]
mode = client
accept = 127.0.0.1:0
connect = 127.0.0.1:$SRVPORT
protocols = <=TLSv1.2
smtp_timeout = 10s

[nocache]
mode = client
accept = 127.0.0.1:0
connect = 127.0.0.1:$SRVPORT
session_cache = no
smtp_timeout = 10s
EOF
	mv "$CFGC.new" "$CFGC"
}
ENC="security = encrypt"
VERIFY="security = verify
ca_file = $CERTS/ca.pem
match = localhost"
writecli "$ENC" "$VERIFY"
start_proxy "$CFGC"
LCL=$PROXY_LOG
PCL=$PROXY_PID

NDLV=0
# deliver ROUTE: one message through client ROUTE; sets DSID (its session
# id, once it ended) and DOK (yes when the message was accepted)
deliver() {
	NDLV=$((NDLV + 1))
	_n=$1-$NDLV
	dialog "$_n" "$(route_port "$1" "$LCL")" r "s:EHLO c.test" r "s:MAIL FROM:<$_n@example.org>" r \
	    "s:RCPT TO:<$_n@example.com>" r s:DATA r "s:Subject: $_n" s: s:hello s:. r s:QUIT r eof
	_lp=$(sed -n 's/^local: .*:\([0-9]*\)$/\1/p' "$DLG")
	DSID=$(sed -n "s/.*: $1\\/\\([0-9a-f]*\\): connect from 127\\.0\\.0\\.1:$_lp\$/\\1/p" "$LCL" | head -n 1)
	[ -n "$DSID" ] && wait_for_log ": $1/$DSID: disconnect" 5 "$LCL" || true
	DOK=no
	if reply_to "$DLG" "." | grep -q '^250'; then DOK=yes; fi
}
# how ROUTE SID: "reused" / "established" / "none" from the session's TLS line
how() {
	_l=$(grep -E -m 1 ": $1/$2: [A-Za-z]+ TLS connection (reused|established) to " "$LCL" || true)
	case $_l in
	*"TLS connection reused to"*) echo reused ;;
	*"TLS connection established to"*) echo established ;;
	*) echo none ;;
	esac
}
# cl_case NAME ROUTE DELIVERED(yes|no) HOW(reused|established|none) [TRUST]
cl_case() {
	deliver "$2"
	_h=$(how "$2" "$DSID")
	if [ "$DOK" = "$3" ] && [ "$_h" = "$4" ]; then
		pass "$1: delivered=$3, $4"
	else
		fail "$1: delivered=$3, $4" "delivered=$DOK, $_h; greeting '$(reply_to "$DLG" "")'; log: $(grep -F ": $2/$DSID: " "$LCL" | sed 's/^[^:]*: //' | tr '\n' '|')"
	fi
	if [ -n "${5:-}" ]; then
		check "$1: logged '$5 TLS connection $4 to 127.0.0.1[127.0.0.1]:$SRVPORT'" \
		    log_has ": $2/$DSID: $5 TLS connection $4 to 127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:[0-9]+: " "$LCL"
	fi
}

n0=$(sink_count)
cl_case "cl: first session" cl yes established Untrusted
cl_case "cl: second session resumes" cl yes reused Untrusted
cl_case "cl: third session resumes" cl yes reused
cl_case "cls (STARTTLS): first session" cls yes established
cl_case "cls (STARTTLS): second session resumes" cls yes reused
cl_case "cl12 (TLS 1.2): first session" cl12 yes established
cl_case "cl12 (TLS 1.2): second session resumes" cl12 yes reused
check "cl12: the resumed session is TLS 1.2" \
    log_has ": cl12/$DSID: [A-Za-z]+ TLS connection reused to .*: TLSv1\\.2 with cipher " "$LCL"
cl_case "nocache: first session" nocache yes established
cl_case "nocache: second session is not resumed" nocache yes established
cl_case "clv (verify): first session" clv yes established Verified
cl_case "clv (verify): second session resumes, still Verified" clv yes reused Verified
check "the server side logged the resumptions ('reused from')" \
    log_has ': srv/[0-9a-f]+: [A-Za-z]+ TLS connection reused from unknown\[127\.0\.0\.1\]: ' "$LS"
check "11 messages delivered so far" [ "$(sink_count)" = $((n0 + 11)) ]

# Many sessions at once (smtp-source, 10 in parallel, one message each):
# each resumes from the cache; a session's own ticket bookkeeping
# (OpenSSL's single-use marks on the session it resumed) never spoils the
# cached one for the others (it did: 1 in 6 sessions made a full
# handshake).
nr0=$(grep -Ec ': cl/[0-9a-f]+: [A-Za-z]+ TLS connection reused to ' "$LCL" || true)
ne0=$(grep -Ec ': cl/[0-9a-f]+: [A-Za-z]+ TLS connection established to ' "$LCL" || true)
nd0=$(log_count ': cl/[0-9a-f]+: disconnect' "$LCL")
timeout 60 /usr/sbin/smtp-source -s 10 -m 200 -l 500 "127.0.0.1:$(route_port cl "$LCL")" \
    >"$TP_TMP/source.out" 2>&1 && rc=0 || rc=$?
check "many: smtp-source exits 0" [ "$rc" = 0 ]
wait_log_count ': cl/[0-9a-f]+: disconnect' $((nd0 + 200)) 10 "$LCL" || true
nr=$(($(grep -Ec ': cl/[0-9a-f]+: [A-Za-z]+ TLS connection reused to ' "$LCL" || true) - nr0))
ne=$(($(grep -Ec ': cl/[0-9a-f]+: [A-Za-z]+ TLS connection established to ' "$LCL" || true) - ne0))
check "many: at least 196 of 200 sessions resumed ($nr resumed, $ne full)" [ "$nr" -ge 196 ]

# The policy changes: cl pins a WRONG fingerprint, clv matches a wrong
# name.  Both had a cached session.
writecli "security = fingerprint
fingerprint = $wrong_fp" "security = verify
ca_file = $CERTS/ca.pem
match = wrong.example"
n=$(log_count 'reloaded configuration' "$LCL")
kill -HUP "$PCL"
wait_log_count 'reloaded configuration' $((n + 1)) 5 "$LCL" ||
    bail "client proxy reloads" "$(tail -n 3 "$LCL" | tr '\n' ' ')"
n1=$(sink_count)
deliver cl
expect_reply "cl after SIGHUP (wrong fingerprint): 421 4.7.5 ... fingerprint mismatch" "$DLG" "" \
    "421 4.7.5 Server certificate not verified: fingerprint mismatch"
check "cl after SIGHUP: logged 'server certificate verification failed ... fingerprint mismatch'" \
    log_has ": cl/$DSID: server certificate verification failed for 127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:$SRVPORT: fingerprint mismatch" "$LCL"
h=$(how cl "$DSID")
check "cl after SIGHUP: the cached session was dropped (handshake $h)" [ "$h" = established ]
deliver clv
expect_reply_match "clv after SIGHUP (wrong match): 421 4.7.5 ... name mismatch" "$DLG" "" \
    '^421 4\.7\.5 Server certificate not verified: name mismatch'
h=$(how clv "$DSID")
check "clv after SIGHUP: the cached session was dropped (handshake $h)" [ "$h" = established ]
check "nothing delivered under the new policy" [ "$(sink_count)" = "$n1" ]
# a later attempt (a session may have been cached meanwhile) fails too
deliver cl
expect_reply "cl, second attempt after SIGHUP: still 421 fingerprint mismatch" "$DLG" "" \
    "421 4.7.5 Server certificate not verified: fingerprint mismatch"
check "still nothing delivered" [ "$(sink_count)" = "$n1" ]

# The right fingerprint: verified, then resumed and still verified.
writecli "security = fingerprint
fingerprint = $good_fp" "$VERIFY"
n=$(log_count 'reloaded configuration' "$LCL")
kill -HUP "$PCL"
wait_log_count 'reloaded configuration' $((n + 1)) 5 "$LCL" ||
    bail "client proxy reloads" "$(tail -n 3 "$LCL" | tr '\n' ' ')"
cl_case "cl, right fingerprint: first session" cl yes established Verified
cl_case "cl, right fingerprint: second session resumes, still Verified" cl yes reused Verified

# The server's certificate changes (rsa -> rsa2, same policy on cl): the
# cached session cannot stand in for verifying the new certificate.
writesrv rsa2
n=$(log_count 'reloaded configuration' "$LS")
kill -HUP "$PS_"
wait_log_count 'reloaded configuration' $((n + 1)) 5 "$LS" ||
    bail "server proxy reloads" "$(tail -n 3 "$LS" | tr '\n' ' ')"
n2=$(sink_count)
deliver cl
expect_reply "cl after the server's certificate changed: 421 4.7.5 ... fingerprint mismatch" "$DLG" "" \
    "421 4.7.5 Server certificate not verified: fingerprint mismatch"
deliver clv
expect_reply_match "clv after the server's certificate changed (CN reloaded.test): 421 4.7.5 ... name mismatch" "$DLG" "" \
    '^421 4\.7\.5 Server certificate not verified: name mismatch \(names seen: reloaded\.test'
check "nothing delivered to the changed server" [ "$(sink_count)" = "$n2" ]

done_testing
