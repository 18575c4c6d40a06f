#!/bin/sh
# 200-verify: client-mode verification levels (spec 3, 4.5, 4.6, 6; issue 4).
#
# One tlsproxy process: a server route per test leaf (tests/certs/mkleaves.sh),
# each in front of one smtp-sink, and one client route per (level, leaf,
# variant) case, each connecting to the server route of its leaf.  Every case
# is one SMTP session through its client route, and its outcome is asserted:
#   delivered:  the greeting is 220, the end of DATA gets 250, the sink holds
#               the message (found by its X-Case header), and the log says
#               "TRUST TLS connection established to HOST[IP]:PORT: ...";
#   refused:    the greeting is exactly "421 4.7.5 Server certificate not
#               trusted|verified: REASON", the connection closes, nothing is
#               delivered, and the log has "warning: ROUTE/SID: server
#               certificate verification failed for HOST[IP]:PORT: REASON".
# Then -t diagnostics (IP-literal verify/secure without match or nexthop,
# a chain in the wrong order, ...) and failover between connect addresses.
. "$(dirname "$0")/lib.sh"
require_tool openssl /usr/sbin/smtp-sink

# The leaves: beside the shared test certificates when run.sh made them (so
# that a second build's run reuses them), else in this test's tmpdir.
if [ -n "${TP_CERTS:-}" ] && [ -d "$TP_CERTS" ] && [ -w "$TP_CERTS" ]; then
	LV=$TP_CERTS/leaves
else
	LV=$TP_TMP/leaves
fi
t0=$(now_ms)
T0=$t0
# phase NAME: a note of the time since the start of the script
phase() { note "$1 done at $(ms_to_s $(($(now_ms) - T0))) s"; }
sh "$TP_ROOT/tests/certs/mkleaves.sh" "$LV" >"$TP_TMP/mkleaves.out" 2>&1 ||
    bail "mkleaves" "$(tail -n 3 "$TP_TMP/mkleaves.out" | tr '\n' ' ')"
note "mkleaves.sh: $(ms_to_s $(($(now_ms) - t0))) s"

# ---------------------------------------------------------------- digests

# cert_fp FILE: sha256 of the first certificate, "AB:CD:..." (openssl's form)
cert_fp() { openssl x509 -in "$1" -noout -fingerprint -sha256 | sed 's/^.*=//'; }
# spki FILE DGST: DGST (sha256, sha512) of the leaf's SubjectPublicKeyInfo, hex
spki() {
	openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform DER |
	    openssl dgst "-$2" -r | cut -d' ' -f1
}
# spki_full FILE: the SubjectPublicKeyInfo itself, hex
spki_full() {
	openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform DER |
	    od -An -v -tx1 | tr -d ' \n'
}
# cert_dgst FILE DGST: digest of the certificate's DER, hex
cert_dgst() { openssl x509 -in "$1" -outform DER | openssl dgst "-$2" -r | cut -d' ' -f1; }
lower() { tr 'A-F' 'a-f'; }

good_fp=$(cert_fp "$LV/good.pem")			# AB:CD:... upper case
good_fp_plain=$(echo "$good_fp" | tr -d ':' | lower)	# abcd... no colons
good_spki=$(spki "$LV/good.pem" sha256)
good_spki_colons=$(echo "$good_spki" | sed 's/../&:/g; s/:$//')
wrong_fp=$(cert_fp "$LV/wrongname.pem")
selfsigned_fp=$(cert_fp "$LV/selfsigned.pem")
expired_fp=$(cert_fp "$LV/expired.pem")
other_spki=$(spki "$LV/expired.pem" sha256)	# the key the bad leaves share
good_cert256=$(cert_dgst "$LV/good.pem" sha256)
good_spki512=$(spki "$LV/good.pem" sha512)
good_spki_full=$(spki_full "$LV/good.pem")		# 588 hex digits
ecdsa_spki_full=$(spki_full "$LV/ecdsa.pem")		# 182 hex digits
root_cert256=$(cert_dgst "$LV/root.pem" sha256)
root_spki_full=$(spki_full "$LV/root.pem")		# the root is ECDSA too
root_spki256=$(spki "$LV/root.pem" sha256)
inter_cert256=$(cert_dgst "$LV/inter.pem" sha256)
[ ${#good_fp} = 95 ] && [ ${#good_spki} = 64 ] && [ ${#good_spki512} = 128 ] &&
    [ ${#root_cert256} = 64 ] ||
    bail "digests" "could not compute digests: '$good_fp' '$good_spki'"

phase digests
# ---------------------------------------------------------------- routes

sink=$(free_port)
start_sink "$sink"

leaves="good wrongname wildcard expired notyet selfsigned untrusted intermediate rsa1024 ecdsa localhost"
set -- $leaves
ports=$("$PY" - "$#" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
)
for l in $leaves; do
	eval "P_$l=\${ports%% *}"
	ports=${ports#* }
done
# port LEAF: the port of LEAF's server route
port() { eval "echo \$P_$1"; }

CFG=$TP_TMP/verify.ini
CASES=$TP_TMP/cases	# NAME|LEVEL|LEAF|EXPECT|DETAIL|CONNECT-PORTS|HOST
CHOST=127.0.0.1		# the host part of the connect addresses of case_
{
	printf '[global]\nshutdown_grace = 3s\n'
	for l in $leaves; do
		printf '\n[srv_%s]\nmode = server\naccept = 127.0.0.1:%s\n' "$l" "$(port "$l")"
		printf 'connect = 127.0.0.1:%s\ncert_file = %s\nkey_file = %s\n' \
		    "$sink" "$LV/$l.pem" "$LV/$l.key"
		# OpenSSL (Debian: security level 2) refuses to load an RSA-1024
		# certificate; protocols below TLS 1.2 put the route at level 0.
		[ "$l" = rsa1024 ] && printf 'protocols = >=TLSv1\n'
	done
} >"$CFG"
: >"$CASES"

# case NAME LEVEL LEAF EXPECT DETAIL [KEY=VALUE...]: a client route NAME at
# security LEVEL connecting to LEAF's server route.  EXPECT/DETAIL:
#   ok TRUST          delivered; logged "TRUST TLS connection established"
#   trusted REASON    421 4.7.5 Server certificate not trusted: REASON
#   verified REASON   421 4.7.5 Server certificate not verified: REASON
#   refused PREFIX    not delivered: a 421 4.7.5 greeting starting PREFIX
#   observe -         no assertion: the outcome goes into the table
# LEAF may be "a,b" (connect = both, in that order).
case_() {
	_name=$1 _lvl=$2 _leaf=$3 _exp=$4 _det=$5
	shift 5
	_conn= _ports=
	for _l in $(echo "$_leaf" | tr ',' ' '); do
		_conn="$_conn${_conn:+, }$CHOST:$(port "$_l")"
		_ports="$_ports${_ports:+ }$(port "$_l")"
	done
	{
		printf '\n[%s]\nmode = client\ntls = implicit\n' "$_name"
		printf 'accept = 127.0.0.1:0\nconnect = %s\nsecurity = %s\n' "$_conn" "$_lvl"
		for _kv in "$@"; do printf '%s\n' "$_kv" | sed 's/=/ = /'; done
	} >>"$CFG"
	printf '%s|%s|%s|%s|%s|%s|%s\n' "$_name" "$_lvl" "$_leaf" "$_exp" "$_det" "$_ports" "$CHOST" >>"$CASES"
}
CA="ca_file=$LV/trust.pem"
MX="match=mx.example.test"
UNTRUSTED_ISSUER="untrusted issuer (unable to get local issuer certificate)"
SELF_SIGNED="untrusted issuer (self-signed certificate)"

# encrypt: no verification; no CA configured, so "Untrusted"
for l in good selfsigned expired notyet untrusted wrongname ecdsa; do
	case_ "enc_$l" encrypt "$l" ok Untrusted
done
case_ enc_rsa1024 encrypt rsa1024 observe -

# fingerprint: certificate or public-key sha256, colons optional, repeatable
case_ fp_cert_colons fingerprint good ok Verified "fingerprint=$good_fp"
case_ fp_cert_plain fingerprint good ok Verified "fingerprint=$good_fp_plain"
case_ fp_spki_plain fingerprint good ok Verified "fingerprint=$good_spki"
case_ fp_spki_colons fingerprint good ok Verified "fingerprint=$good_spki_colons"
case_ fp_second fingerprint good ok Verified "fingerprint=$wrong_fp" "fingerprint=$good_fp"
case_ fp_wrong fingerprint good verified "fingerprint mismatch" "fingerprint=$wrong_fp"
case_ fp_wrongleaf fingerprint wrongname verified "fingerprint mismatch" "fingerprint=$good_fp"
# a pinned certificate needs no chain and no validity (Postfix: only the
# digest counts)
case_ fp_selfsigned fingerprint selfsigned ok Verified "fingerprint=$selfsigned_fp"
case_ fp_expired fingerprint expired ok Verified "fingerprint=$expired_fp"

# verify: chain to ca_file/ca_path, names per match
case_ v_good_name verify good ok Verified "$CA" "$MX"
case_ v_good_case verify good ok Verified "$CA" "match=MX.Example.TEST"
case_ v_good_suffix verify good ok Verified "$CA" "match=.example.test"
case_ v_good_list verify good ok Verified "$CA" "match=other.example.net:mx.example.test"
case_ v_good_nexthop verify good ok Verified "$CA" "match=nexthop" "nexthop=mx.example.test"
case_ v_good_wrongmatch verify good verified "name mismatch (names seen: mx.example.test)" "$CA" "match=other.example.net"
case_ v_good_parent verify good verified "name mismatch (names seen: mx.example.test)" "$CA" "match=.mx.example.test"
case_ v_good_noca verify good trusted "$UNTRUSTED_ISSUER" "$MX"
case_ v_good_capath verify good ok Verified "ca_path=$TP_TMP/capath" "$MX"
case_ v_wrongname verify wrongname verified "name mismatch (names seen: other.example.net)" "$CA" "$MX"
case_ v_wildcard verify wildcard ok Verified "$CA" "$MX"
case_ v_wildcard_deep verify wildcard verified "name mismatch (names seen: *.example.test)" "$CA" "match=a.mx.example.test"
case_ v_wildcard_bare verify wildcard verified "name mismatch (names seen: *.example.test)" "$CA" "match=example.test"
case_ v_expired verify expired trusted "certificate has expired" "$CA" "$MX"
case_ v_notyet verify notyet trusted "certificate is not yet valid" "$CA" "$MX"
case_ v_selfsigned verify selfsigned trusted "$SELF_SIGNED" "$CA" "$MX"
case_ v_untrusted verify untrusted trusted "$UNTRUSTED_ISSUER" "$CA" "$MX"
case_ v_intermediate verify intermediate ok Verified "$CA" "$MX"
case_ v_ecdsa verify ecdsa ok Verified "$CA" "$MX"
case_ v_rsa1024 verify rsa1024 refused "421 4.7.5 Server certificate not trusted: " "$CA" "$MX"
# match defaults to hostname: the connect host
CHOST=localhost
case_ v_hostname verify localhost ok Verified "$CA"
case_ v_hostname_mismatch verify good verified "name mismatch (names seen: mx.example.test)" "$CA"
CHOST=127.0.0.1
# verify_depth as Postfix's smtp_tls_scert_verifydepth: "a depth of 1 is
# sufficient if the issuing CA is listed in a local CA file", and lower it
# "if you trust certificates directly signed by an issuing CA but not any
# CAs it delegates to" (postconf(5)).
case_ v_depth1_direct verify good ok Verified "$CA" "$MX" "verify_depth=1"
case_ v_depth1_inter verify intermediate refused "421 4.7.5 Server certificate not trusted: " "$CA" "$MX" "verify_depth=1"
case_ v_depth2_inter verify intermediate ok Verified "$CA" "$MX" "verify_depth=2"

# secure: match defaults to nexthop:dot-nexthop
case_ s_good secure good ok Verified "$CA" "nexthop=example.test"
case_ s_good_exact secure good ok Verified "$CA" "nexthop=mx.example.test"
case_ s_good_badnexthop secure good verified "name mismatch (names seen: mx.example.test)" "$CA" "nexthop=example.net"
case_ s_good_nexthoponly secure good verified "name mismatch (names seen: mx.example.test)" "$CA" "nexthop=example.test" "match=nexthop"
case_ s_wrongname secure wrongname verified "name mismatch (names seen: other.example.net)" "$CA" "nexthop=example.test"
case_ s_wildcard secure wildcard observe - "$CA" "nexthop=example.test"
case_ s_wildcard_exact secure wildcard ok Verified "$CA" "nexthop=mx.example.test"
case_ s_intermediate secure intermediate ok Verified "$CA" "nexthop=example.test"
case_ s_expired secure expired trusted "certificate has expired" "$CA" "nexthop=example.test"
case_ s_selfsigned secure selfsigned trusted "$SELF_SIGNED" "$CA" "nexthop=example.test"
case_ s_untrusted secure untrusted trusted "$UNTRUSTED_ISSUER" "$CA" "nexthop=example.test"

# dane: static TLSA records; none at all -> as encrypt (the spec: may)
case_ d_none_good dane good ok Untrusted
case_ d_none_selfsigned dane selfsigned ok Untrusted
case_ d_311 dane good ok Verified "tlsa=3 1 1 $good_spki"
case_ d_311_upper dane good ok Verified "tlsa=3 1 1 $(echo "$good_spki" | tr a-f A-F)"
case_ d_301 dane good ok Verified "tlsa=3 0 1 $good_cert256"
case_ d_312 dane good ok Verified "tlsa=3 1 2 $good_spki512"
# (a full RSA-2048 key is 588 hex digits: longer than a config line may be,
# see the -t checks; an ECDSA P-256 key fits)
case_ d_310 dane ecdsa ok Verified "tlsa=3 1 0 $ecdsa_spki_full"
case_ d_311_second dane good ok Verified "tlsa=3 1 1 $other_spki" "tlsa=3 1 1 $good_spki"
case_ d_311_mismatch dane wrongname verified "TLSA mismatch: " "tlsa=3 1 1 $good_spki"
# RFC 7672 3.1.1: DANE-EE ignores names, issuer and validity dates
case_ d_311_selfsigned dane selfsigned ok Verified "tlsa=3 1 1 $other_spki"
case_ d_311_expired dane expired ok Verified "tlsa=3 1 1 $other_spki"
case_ d_311_wrongname dane wrongname ok Verified "tlsa=3 1 1 $other_spki"
# DANE-TA: the chain must reach the TA and the name must match (nexthop)
case_ d_201_inter dane intermediate ok Verified "tlsa=2 0 1 $inter_cert256" "nexthop=mx.example.test"
case_ d_201_root_direct dane good observe - "tlsa=2 0 1 $root_cert256" "nexthop=mx.example.test"
case_ d_201_root_inter dane intermediate observe - "tlsa=2 0 1 $root_cert256" "nexthop=mx.example.test"
case_ d_210_root_inter dane intermediate ok Verified "tlsa=2 1 0 $root_spki_full" "nexthop=mx.example.test"
case_ d_211_root_inter dane intermediate observe - "tlsa=2 1 1 $root_spki256" "nexthop=mx.example.test"
case_ d_201_inter_badname dane intermediate verified "TLSA mismatch: " "tlsa=2 0 1 $inter_cert256" "nexthop=other.example.net"
case_ d_201_untrusted dane untrusted verified "TLSA mismatch: " "tlsa=2 0 1 $inter_cert256" "nexthop=mx.example.test"

# dane-only: a usable record must match
case_ do_311 dane-only good ok Verified "tlsa=3 1 1 $good_spki"
case_ do_311_selfsigned dane-only selfsigned ok Verified "tlsa=3 1 1 $other_spki"
case_ do_311_mismatch dane-only wrongname verified "TLSA mismatch: " "tlsa=3 1 1 $good_spki"
case_ do_301_mismatch dane-only ecdsa verified "TLSA mismatch: " "tlsa=3 0 1 $good_cert256"
case_ do_201_inter dane-only intermediate ok Verified "tlsa=2 0 1 $inter_cert256" "nexthop=mx.example.test"

# failover: a verification failure tries the next connect address
case_ fo_verify verify wrongname,good ok Verified "$CA" "$MX"
case_ fo_dane dane-only selfsigned,good ok Verified "tlsa=3 1 1 $good_spki"
case_ fo_allbad verify selfsigned,expired refused "421 4.7.5 Server certificate not trusted: " "$CA" "$MX"

# ca_path: a hashed directory holding the root
mkdir -p "$TP_TMP/capath"
cp "$LV/root.pem" "$TP_TMP/capath/root.pem"
openssl rehash "$TP_TMP/capath" 2>/dev/null ||
    ln -s root.pem "$TP_TMP/capath/$(openssl x509 -in "$LV/root.pem" -noout -subject_hash).0"

phase config
# ---------------------------------------------------------------- -t

"$TLSPROXY" -c "$CFG" -t >"$TP_TMP/t.out" 2>&1 && rc=0 || rc=$?
if [ "$rc" = 0 ]; then pass "-t accepts the test configuration"
else bail "-t accepts the test configuration" "exit $rc: $(head -n 5 "$TP_TMP/t.out" | tr '\n' ' ')"; fi

# tcheck NAME ERE KEY=VALUE...: a one-route client config (after the KEYs,
# line 6 onward) that -t must refuse with FILE:LINE: matching ERE
tcheck() {
	_n=$1 _re=$2
	shift 2
	{
		printf '[global]\n\n[c]\nmode = client\naccept = 127.0.0.1:0\n'
		for _kv in "$@"; do printf '%s\n' "$_kv" | sed 's/=/ = /'; done
	} >"$TP_TMP/t-$_n.ini"
	"$TLSPROXY" -c "$TP_TMP/t-$_n.ini" -t >"$TP_TMP/t-$_n.out" 2>&1 && _rc=0 || _rc=$?
	if [ "$_rc" = 1 ] && grep -Eq -e "$_re" "$TP_TMP/t-$_n.out"; then
		pass "-t: $_n: $(grep -E -m 1 -e "$_re" "$TP_TMP/t-$_n.out")"
	else
		fail "-t: $_n" "exit $_rc, expected /$_re/: $(head -n 3 "$TP_TMP/t-$_n.out" | tr '\n' ' ')"
	fi
}
tcheck verify-ip-literal "t-verify-ip-literal\.ini:7: .*IP-literal connect needs match or nexthop" \
    "connect=127.0.0.1:$(port good)" "security=verify" "$CA"
tcheck secure-ip-literal "t-secure-ip-literal\.ini:7: .*IP-literal connect needs match or nexthop" \
    "connect=127.0.0.1:$(port good)" "security=secure" "$CA"
tcheck dane-only-no-tlsa "t-dane-only-no-tlsa\.ini:7: .*tlsa" \
    "connect=127.0.0.1:$(port good)" "security=dane-only"
tcheck fingerprint-none "t-fingerprint-none\.ini:7: .*fingerprint" \
    "connect=127.0.0.1:$(port good)" "security=fingerprint"
tcheck fingerprint-short "t-fingerprint-short\.ini:8: .*fingerprint" \
    "connect=127.0.0.1:$(port good)" "security=fingerprint" "fingerprint=12:34:56"
tcheck tlsa-garbage "t-tlsa-garbage\.ini:8: .*tlsa" \
    "connect=127.0.0.1:$(port good)" "security=dane" "tlsa=3 1 1 not-hex"
# Matching type 0 with an RSA-2048 key: "3 1 0" and 588 hex digits.
# Postfix takes TLSA data of any length; inih lines are limited.
printf '[c]\nmode = client\naccept = 127.0.0.1:0\nconnect = 127.0.0.1:%s\nsecurity = dane\ntlsa = 3 1 0 %s\n' \
    "$(port good)" "$good_spki_full" >"$TP_TMP/t-310.ini"
"$TLSPROXY" -c "$TP_TMP/t-310.ini" -t >"$TP_TMP/t-310.out" 2>&1 && rc=0 || rc=$?
if [ "$rc" = 0 ]; then pass "-t: tlsa 3 1 0 with a full RSA-2048 key (612-character line)"
else fail "-t: tlsa 3 1 0 with a full RSA-2048 key (612-character line)" "exit $rc: $(head -n 2 "$TP_TMP/t-310.out" | tr '\n' ' ')"; fi

# a name in connect is fine without match: hostname is the name
"$TLSPROXY" -c /dev/stdin -t >"$TP_TMP/t-name.out" 2>&1 <<EOF && rc=0 || rc=$?
[c]
mode = client
accept = 127.0.0.1:0
connect = localhost:$(port localhost)
security = verify
$(echo "$CA" | sed 's/=/ = /')
EOF
# (a config on stdin has no directory; if -t refuses /dev/stdin, say so)
if [ "$rc" = 0 ]; then pass "-t: verify with a host name in connect needs no match"
else note "-t on /dev/stdin: exit $rc: $(head -n 2 "$TP_TMP/t-name.out" | tr '\n' ' ')"; fi

# A chain file that is not leaf first is refused as a server certificate.
printf '[s]\nmode = server\naccept = 127.0.0.1:0\nconnect = 127.0.0.1:%s\ncert_file = %s\nkey_file = %s\n' \
    "$sink" "$LV/wrongorder.pem" "$LV/wrongorder.key" >"$TP_TMP/t-order.ini"
"$TLSPROXY" -c "$TP_TMP/t-order.ini" -t >"$TP_TMP/t-order.out" 2>&1 && rc=0 || rc=$?
if [ "$rc" = 1 ] && grep -q 't-order\.ini:5: .*leaf first' "$TP_TMP/t-order.out"; then
	pass "-t: wrong-order chain: $(head -n 1 "$TP_TMP/t-order.out")"
else
	fail "-t: wrong-order chain refused, naming leaf first" "exit $rc: $(head -n 3 "$TP_TMP/t-order.out" | tr '\n' ' ')"
fi
# RSA-1024 at the default protocols (security level of this OpenSSL)
printf '[s]\nmode = server\naccept = 127.0.0.1:0\nconnect = 127.0.0.1:%s\ncert_file = %s\nkey_file = %s\n' \
    "$sink" "$LV/rsa1024.pem" "$LV/rsa1024.key" >"$TP_TMP/t-1024.ini"
"$TLSPROXY" -c "$TP_TMP/t-1024.ini" -t >"$TP_TMP/t-1024.out" 2>&1 && rc=0 || rc=$?
note "-t, RSA-1024 server certificate at default protocols: exit $rc $(head -n 1 "$TP_TMP/t-1024.out")"
if [ "$rc" != 0 ]; then
	expect_match "-t: a refused RSA-1024 certificate is named at its line" \
	    "$TP_TMP/t-1024.out" 't-1024\.ini:5: cert_file .*rsa1024\.pem'
fi

phase "-t checks"
# ---------------------------------------------------------------- run

start_proxy "$CFG"
phase "start"

# Every case at once (each its own session), at most 12 at a time.
n=0
while IFS='|' read -r name lvl leaf exp det cports chost; do
	p=$(route_port "$name")
	[ -n "$p" ] || { fail "$name" "no port for the route"; continue; }
	spawn_dialog "$name" "$p" --timeout 15 r s:EHLO\ client.test r \
	    "s:MAIL FROM:<b@example.com>" r "s:RCPT TO:<a@example.com>" r s:DATA r \
	    "x:X-Case: $name\r\nSubject: $name\r\n\r\nbody\r\n.\r\n" r s:QUIT r eof:5
	n=$((n + 1))
	if [ $((n % 12)) = 0 ]; then
		for pid in $TP_PIDS; do
			[ "$pid" = "$(echo "$TP_PIDS" | awk '{print $1}')" ] && continue	# the sink
			wait_pid "$pid" 40
		done
	fi
done <"$CASES"
sink_pid=$(echo "$TP_PIDS" | awk '{print $1}')
for pid in $TP_PIDS; do
	[ "$pid" = "$sink_pid" ] || wait_pid "$pid" 40
done
phase "sessions"
sleep 0.3	# smtp-sink writes its files as it answers; let the last land

# data_reply FILE: the reply to the message body (first S: after the raw send)
data_reply() { awk '/^C: <raw X-Case/ { on = 1; next } on && /^S: / { print substr($0, 4); exit }' "$1"; }
# delivered NAME: the sink holds the message of case NAME
delivered() { grep -rlx "X-Case: $1" "$SINK_DIR" 2>/dev/null | wc -l | tr -d ' '; }
# log_line_ends ROUTE TEXT: a log line of ROUTE (" ROUTE/SID: ") ending in TEXT
log_line_ends() {
	awk -v r=" $1/" -v t="$2" 'index($0, r) && length($0) >= length(t) &&
	    substr($0, length($0) - length(t) + 1) == t { f = 1 } END { exit !f }' "$PROXY_LOG"
}
# log_line_has ROUTE TEXT: a log line of ROUTE containing TEXT
log_line_has() { awk -v r=" $1/" -v t="$2" 'index($0, r) && index($0, t) { f = 1 } END { exit !f }' "$PROXY_LOG"; }

table=$TP_TMP/table
: >"$table"
while IFS='|' read -r name lvl leaf exp det cports chost; do
	f=$TP_TMP/$name.dlg
	greet=$(reply_to "$f" "")
	dr=$(data_reply "$f")
	nd=$(delivered "$name")
	last=${cports##* }
	if [ "$nd" -ge 1 ]; then
		trust=$(grep -F " $name/" "$PROXY_LOG" | sed -n 's/.*: \([A-Za-z]*\) TLS connection established to .*/\1/p' | tail -n 1)
		outcome="delivered ($trust)"
	else
		outcome="$greet"
		[ -n "$outcome" ] || outcome="no greeting: $(oneline "$f")"
	fi
	printf '%s|%s|%s\n' "$lvl" "$leaf" "$outcome" >>"$table"
	case $exp in
	ok)
		case $greet in
		220\ *) pass "$name: greeting '$greet'" ;;
		*) fail "$name: 220 greeting" "got '$greet' [$(oneline "$f")]" ;;
		esac
		case $dr in
		250*) pass "$name: 250 after DATA" ;;
		*) fail "$name: 250 after DATA" "got '$dr'" ;;
		esac
		check "$name: delivered once" [ "$nd" = 1 ]
		want="$det TLS connection established to $chost[127.0.0.1]:$last: "
		if log_line_has "$name" "$want"; then pass "$name: logged '$det TLS connection established'"
		else fail "$name: logged '$want'" "$(grep -F " $name/" "$PROXY_LOG" | grep -F 'TLS connection' | head -n 2 | tr '\n' ' ')"; fi
		;;
	trusted | verified)
		want="421 4.7.5 Server certificate not $exp: $det"
		case $det in
		*": ") # a reason prefix (e.g. "TLSA mismatch: ")
			case $greet in
			"$want"?*) pass "$name: greeting '$greet'" ;;
			*) fail "$name: greeting '$want...'" "got '$greet' [$(oneline "$f")]" ;;
			esac
			reason=${greet#"421 4.7.5 Server certificate not $exp: "}
			;;
		*)
			if [ "$greet" = "$want" ]; then pass "$name: greeting '$greet'"
			else fail "$name: greeting '$want'" "got '$greet' [$(oneline "$f")]"; fi
			reason=$det
			;;
		esac
		check "$name: not delivered" [ "$nd" = 0 ]
		if grep -q '^EOF' "$f"; then pass "$name: closed after the 421"
		else fail "$name: closed after the 421" "$(oneline "$f")"; fi
		want="server certificate verification failed for $chost[127.0.0.1]:$last: $reason"
		if log_line_ends "$name" "$want" &&
		    grep -F " $name/" "$PROXY_LOG" | grep -F "$want" | grep -q 'warning: '; then
			pass "$name: logged warning '...$reason'"
		else
			fail "$name: logged 'warning: $name/SID: $want'" \
			    "$(grep -F " $name/" "$PROXY_LOG" | grep -F 'verification' | head -n 2 | tr '\n' ' ')"
		fi
		;;
	refused)
		case $greet in
		"$det"*) pass "$name: greeting '$greet'" ;;
		*) fail "$name: greeting '$det...'" "got '$greet' [$(oneline "$f")]" ;;
		esac
		check "$name: not delivered" [ "$nd" = 0 ]
		reason=${greet#"421 4.7.5 Server certificate not trusted: "}
		reason=${reason#"421 4.7.5 Server certificate not verified: "}
		if log_line_ends "$name" "verification failed for $chost[127.0.0.1]:$last: $reason"; then
			pass "$name: logged the reason '$reason'"
		else
			fail "$name: logged the reason '$reason'" "$(grep -F " $name/" "$PROXY_LOG" | grep -F 'verification' | head -n 2 | tr '\n' ' ')"
		fi
		;;
	observe) ;;
	esac
done <"$CASES"

# failover details: the first address's failure is logged, then the second
# address is used
if log_line_ends fo_verify "verification failed for 127.0.0.1[127.0.0.1]:$(port wrongname): name mismatch (names seen: other.example.net)"
then pass "fo_verify: the first address's name mismatch logged"
else fail "fo_verify: the first address's name mismatch logged" "$(grep -F ' fo_verify/' "$PROXY_LOG" | head -n 5 | tr '\n' ' ')"; fi
if log_line_ends fo_allbad "verification failed for 127.0.0.1[127.0.0.1]:$(port selfsigned): $SELF_SIGNED"
then pass "fo_allbad: the first address's failure logged"
else fail "fo_allbad: the first address's failure logged" "$(grep -F ' fo_allbad/' "$PROXY_LOG" | head -n 5 | tr '\n' ' ')"; fi
check "fo_allbad: the last reason is the second address's" \
    [ "$(reply_to "$TP_TMP/fo_allbad.dlg" "")" = "421 4.7.5 Server certificate not trusted: certificate has expired" ]

phase "assertions"
# The outcome table
note "outcomes (level leaf -> outcome):"
while IFS='|' read -r lvl leaf outcome; do
	note "$(printf '%-11s %-22s -> %s' "$lvl" "$leaf" "$outcome")"
done <"$table"

stop_proxy
check "proxy exits 0 on SIGTERM" [ "$STOP_RC" = 0 ]

done_testing
