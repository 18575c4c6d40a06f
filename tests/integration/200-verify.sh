#!/bin/sh
# 200-verify: client-mode verification levels (spec 3, 4.5, 4.6, 6; issue 4).
#
# One tlsproxy process: a server route per test leaf (tests/certs/mkleaves.sh),
# each in front of one smtp-sink, and one client route per (level, leaf,
# variant) case, each connecting to the server route of its leaf.  Every case
# is one SMTP session through its client route (tests/peers/smtp_many.py runs
# them all at once), and its outcome is asserted:
#   delivered:  the greeting is 220, the end of DATA gets 250, the sink holds
#               the message (found by its X-Case header), and the log says
#               "TRUST TLS connection established to HOST[IP]:PORT: ...";
#   refused:    the greeting is exactly "421 4.7.5 Server certificate not
#               trusted|verified: REASON", the connection closes, nothing is
#               delivered, and the log has "warning: ROUTE/SID: server
#               certificate verification failed for HOST[IP]:PORT: REASON".
# Also -t diagnostics (IP-literal verify/secure without match or nexthop, a
# chain in the wrong order, ...) and failover between connect addresses.
# Ends with the outcome table as "# level leaf -> outcome" lines.
. "$(dirname "$0")/lib.sh"
require_tool openssl /usr/sbin/smtp-sink

T0=$(now_ms)
# phase NAME: a note of the time since the start of the script
phase() { note "$1 done at $(ms_to_s $(($(now_ms) - T0))) s"; }

# The leaves: beside the shared test certificates when run.sh made them (so
# that a second build's run reuses them), else in this test's tmpdir.
if [ -n "${TP_CERTS:-}" ] && [ -d "$TP_CERTS" ] && [ -w "$TP_CERTS" ]; then
	LV=$TP_CERTS/leaves
else
	LV=$TP_TMP/leaves
fi
sh "$TP_ROOT/tests/certs/mkleaves.sh" "$LV" >"$TP_TMP/mkleaves.out" 2>&1 ||
    bail "mkleaves" "$(tail -n 3 "$TP_TMP/mkleaves.out" | tr '\n' ' ')"
phase mkleaves

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

good_fp=$(cert_fp "$LV/good.pem")			# AB:CD:... upper case
good_fp_plain=$(echo "$good_fp" | tr -d ':' | tr 'A-F' 'a-f')	# abcd...
good_spki=$(spki "$LV/good.pem" sha256)			# abcd...
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
    [ ${#root_cert256} = 64 ] && [ ${#ecdsa_spki_full} = 182 ] ||
    bail "digests" "could not compute digests: '$good_fp' '$good_spki'"

# ca_path: a hashed directory holding the root
mkdir -p "$TP_TMP/capath"
cp "$LV/root.pem" "$TP_TMP/capath/root.pem"
openssl rehash "$TP_TMP/capath" 2>/dev/null ||
    ln -s root.pem "$TP_TMP/capath/$(openssl x509 -in "$LV/root.pem" -noout -subject_hash).0"
phase digests

# ---------------------------------------------------------------- routes

sink=$(free_port)
start_sink "$sink"

leaves="good wrongname wildcard expired notyet selfsigned untrusted intermediate fullchain rsa1024 ecdsa localhost"
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
# port_of LEAF: PORT = the port of LEAF's server route
port_of() { eval "PORT=\$P_$1"; }

CFG=$TP_TMP/verify.ini
CASES=$TP_TMP/cases	# NAME|LEVEL|LEAF|EXPECT|DETAIL|LAST-PORT|HOST
CHOST=127.0.0.1		# the host part of the connect addresses of case_
{
	printf '[global]\nshutdown_grace = 3s\n'
	for l in $leaves; do
		port_of "$l"
		printf '\n[srv_%s]\nmode = server\naccept = 127.0.0.1:%s\n' "$l" "$PORT"
		printf 'connect = 127.0.0.1:%s\ncert_file = %s\nkey_file = %s\n' \
		    "$sink" "$LV/$l.pem" "$LV/$l.key"
		# This OpenSSL (Debian: security level 2) refuses to load an
		# RSA-1024 certificate; protocols below TLS 1.2 put the route at
		# level 0 (the -t check below records the refusal).
		if [ "$l" = rsa1024 ]; then printf 'protocols = >=TLSv1\n'; fi
	done
} >"$CFG"
: >"$CASES"

# case_ NAME LEVEL LEAF EXPECT DETAIL [KEY=VALUE...]: a client route NAME at
# security LEVEL connecting to LEAF's server route.  EXPECT/DETAIL:
#   ok TRUST          delivered; logged "TRUST TLS connection established"
#   trusted REASON    421 4.7.5 Server certificate not trusted: REASON
#   verified REASON   421 4.7.5 Server certificate not verified: REASON
#                     (a REASON ending in ": " is a prefix of the reason)
#   refused PREFIX    not delivered: a greeting starting with PREFIX, and the
#                     reason in it is logged
#   observe -         no assertion: the outcome goes into the table
# LEAF may be "a,b": connect = both, in that order.
case_() {
	_name=$1 _lvl=$2 _leaf=$3 _exp=$4 _det=$5
	shift 5
	_conn=
	_ifs=$IFS
	IFS=,
	for _l in $_leaf; do
		port_of "$_l"
		_conn="$_conn${_conn:+, }$CHOST:$PORT"
	done
	IFS=$_ifs
	{
		printf '\n[%s]\nmode = client\ntls = implicit\n' "$_name"
		printf 'accept = 127.0.0.1:0\nconnect = %s\nsecurity = %s\n' "$_conn" "$_lvl"
		for _kv in "$@"; do printf '%s = %s\n' "${_kv%%=*}" "${_kv#*=}"; done
	} >>"$CFG"
	printf '%s|%s|%s|%s|%s|%s|%s\n' "$_name" "$_lvl" "$_leaf" "$_exp" "$_det" \
	    "$PORT" "$CHOST" >>"$CASES"
}
CA="ca_file=$LV/trust.pem"
MX="match=mx.example.test"
UNTRUSTED_ISSUER="untrusted issuer (unable to get local issuer certificate)"
SELF_SIGNED="untrusted issuer (self-signed certificate)"
NOT_TRUSTED="421 4.7.5 Server certificate not trusted: "
NO_TLSA="TLSA mismatch: no matching DANE TLSA records"

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
case_ fp_ecdsa fingerprint ecdsa verified "fingerprint mismatch" "fingerprint=$good_spki"
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
case_ v_good_sub verify good verified "name mismatch (names seen: mx.example.test)" "$CA" "match=.mx.example.test"
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
case_ v_fullchain verify fullchain ok Verified "$CA" "$MX"
case_ v_ecdsa verify ecdsa ok Verified "$CA" "$MX"
case_ v_rsa1024 verify rsa1024 refused "$NOT_TRUSTED" "$CA" "$MX"
# match defaults to hostname: the host of connect
CHOST=localhost
case_ v_hostname verify localhost ok Verified "$CA"
case_ v_hostname_mismatch verify good verified "name mismatch (names seen: mx.example.test)" "$CA"
CHOST=127.0.0.1
# verify_depth as Postfix's smtp_tls_scert_verifydepth (postconf(5)): "a
# depth of 1 is sufficient if the issuing CA is listed in a local CA file",
# and a lower number is for when "you trust certificates directly signed by
# an issuing CA but not any CAs it delegates to".  So depth 1 takes a leaf
# signed by the root, not one signed by an intermediate.
case_ v_depth1_direct verify good ok Verified "$CA" "$MX" "verify_depth=1"
case_ v_depth1_inter verify intermediate refused "$NOT_TRUSTED" "$CA" "$MX" "verify_depth=1"
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
# (a full RSA-2048 key is 588 hex digits, longer than a config line may be:
# see the -t checks; an ECDSA P-256 key fits)
case_ d_310 dane ecdsa ok Verified "tlsa=3 1 0 $ecdsa_spki_full"
case_ d_311_second dane good ok Verified "tlsa=3 1 1 $other_spki" "tlsa=3 1 1 $good_spki"
case_ d_311_mismatch dane wrongname trusted "$NO_TLSA" "tlsa=3 1 1 $good_spki"
# RFC 7672 3.1.1: DANE-EE ignores names, issuer and validity dates
case_ d_311_selfsigned dane selfsigned ok Verified "tlsa=3 1 1 $other_spki"
case_ d_311_expired dane expired ok Verified "tlsa=3 1 1 $other_spki"
case_ d_311_wrongname dane wrongname ok Verified "tlsa=3 1 1 $other_spki"
# DANE-TA: the chain must reach the TA and the name must match (nexthop).
# A digest record matches only a certificate the server sends (RFC 7671
# 5.2.2): the root of good's and intermediate's chains is not sent.
case_ d_201_inter dane intermediate ok Verified "tlsa=2 0 1 $inter_cert256" "nexthop=mx.example.test"
case_ d_201_root_full dane fullchain ok Verified "tlsa=2 0 1 $root_cert256" "nexthop=mx.example.test"
case_ d_201_root_notsent dane intermediate trusted "$NO_TLSA" "tlsa=2 0 1 $root_cert256" "nexthop=mx.example.test"
case_ d_211_root_notsent dane good trusted "$NO_TLSA" "tlsa=2 1 1 $root_spki256" "nexthop=mx.example.test"
# ... but a full SPKI record is a trust anchor of its own
case_ d_210_root dane intermediate ok Verified "tlsa=2 1 0 $root_spki_full" "nexthop=mx.example.test"
case_ d_201_badname dane intermediate trusted "TLSA mismatch: hostname mismatch" "tlsa=2 0 1 $inter_cert256" "nexthop=other.example.net"
case_ d_201_untrusted dane untrusted trusted "$NO_TLSA" "tlsa=2 0 1 $inter_cert256" "nexthop=mx.example.test"

# dane-only: a usable record must match
case_ do_311 dane-only good ok Verified "tlsa=3 1 1 $good_spki"
case_ do_311_selfsigned dane-only selfsigned ok Verified "tlsa=3 1 1 $other_spki"
case_ do_311_mismatch dane-only wrongname trusted "$NO_TLSA" "tlsa=3 1 1 $good_spki"
case_ do_301_mismatch dane-only ecdsa trusted "$NO_TLSA" "tlsa=3 0 1 $good_cert256"
case_ do_201_inter dane-only intermediate ok Verified "tlsa=2 0 1 $inter_cert256" "nexthop=mx.example.test"

# failover: a failed verification tries the next connect address
case_ fo_verify verify wrongname,good ok Verified "$CA" "$MX"
case_ fo_dane dane-only selfsigned,good ok Verified "tlsa=3 1 1 $good_spki"
case_ fo_allbad verify selfsigned,expired trusted "certificate has expired" "$CA" "$MX"
phase config

# ---------------------------------------------------------------- -t

"$TLSPROXY" -c "$CFG" -t >"$TP_TMP/t.out" 2>&1 && rc=0 || rc=$?
if [ "$rc" = 0 ]; then pass "-t accepts the test configuration"
else bail "-t accepts the test configuration" "exit $rc: $(head -n 5 "$TP_TMP/t.out" | tr '\n' ' ')"; fi

# tcheck NAME ERE KEY=VALUE...: a one-route client config (the KEYs from
# line 6 on) that -t must refuse with a line matching ERE
tcheck() {
	_n=$1 _re=$2
	shift 2
	{
		printf '[global]\n\n[c]\nmode = client\naccept = 127.0.0.1:0\n'
		for _kv in "$@"; do printf '%s = %s\n' "${_kv%%=*}" "${_kv#*=}"; done
	} >"$TP_TMP/t-$_n.ini"
	"$TLSPROXY" -c "$TP_TMP/t-$_n.ini" -t >"$TP_TMP/t-$_n.out" 2>&1 && _rc=0 || _rc=$?
	if [ "$_rc" = 1 ] && grep -Eq -e "$_re" "$TP_TMP/t-$_n.out"; then
		pass "-t: $_n: $(grep -E -m 1 -e "$_re" "$TP_TMP/t-$_n.out" | sed 's|.*/||')"
	else
		fail "-t: $_n" "exit $_rc, expected /$_re/: $(head -n 3 "$TP_TMP/t-$_n.out" | tr '\n' ' ')"
	fi
}
port_of good
tcheck verify-ip-literal "t-verify-ip-literal\.ini:7: .*IP-literal connect needs match or nexthop" \
    "connect=127.0.0.1:$PORT" "security=verify" "$CA"
tcheck secure-ip-literal "t-secure-ip-literal\.ini:7: .*IP-literal connect needs match or nexthop" \
    "connect=127.0.0.1:$PORT" "security=secure" "$CA"
tcheck dane-only-no-tlsa "t-dane-only-no-tlsa\.ini:7: .*tlsa" \
    "connect=127.0.0.1:$PORT" "security=dane-only"
tcheck fingerprint-none "t-fingerprint-none\.ini:7: .*fingerprint" \
    "connect=127.0.0.1:$PORT" "security=fingerprint"
tcheck fingerprint-short "t-fingerprint-short\.ini:8: .*fingerprint" \
    "connect=127.0.0.1:$PORT" "security=fingerprint" "fingerprint=12:34:56"
tcheck tlsa-garbage "t-tlsa-garbage\.ini:8: .*tlsa" \
    "connect=127.0.0.1:$PORT" "security=dane" "tlsa=3 1 1 not-hex"

# tok ID DESCRIPTION KEY=VALUE...: a one-route config that -t must accept
tok() {
	_n=$1 _d=$2
	shift 2
	{
		printf '[c]\nmode = client\naccept = 127.0.0.1:0\n'
		for _kv in "$@"; do printf '%s = %s\n' "${_kv%%=*}" "${_kv#*=}"; done
	} >"$TP_TMP/t-$_n.ini"
	"$TLSPROXY" -c "$TP_TMP/t-$_n.ini" -t >"$TP_TMP/t-$_n.out" 2>&1 && _rc=0 || _rc=$?
	if [ "$_rc" = 0 ]; then pass "-t accepts $_d"
	else fail "-t accepts $_d" "exit $_rc: $(head -n 2 "$TP_TMP/t-$_n.out" | tr '\n' ' ')"; fi
}
# a host name in connect is the name to match: no match or nexthop needed
tok verify-name "verify with a host name in connect" "connect=localhost:$PORT" "security=verify" "$CA"
tok verify-nexthop "verify with an IP-literal connect and nexthop" "connect=127.0.0.1:$PORT" \
    "security=verify" "$CA" "nexthop=example.test"
# Matching type 0 with an RSA-2048 key: "3 1 0" and 588 hex digits, as
# real TLSA records are (Postfix takes TLSA data of any length).
tok tlsa-310-rsa "tlsa 3 1 0 with a full RSA-2048 key (a 612-character line)" \
    "connect=127.0.0.1:$PORT" "security=dane" "tlsa=3 1 0 $good_spki_full"

# A chain file that is not leaf first is refused as a server certificate.
printf '[s]\nmode = server\naccept = 127.0.0.1:0\nconnect = 127.0.0.1:%s\ncert_file = %s\nkey_file = %s\n' \
    "$sink" "$LV/wrongorder.pem" "$LV/wrongorder.key" >"$TP_TMP/t-order.ini"
"$TLSPROXY" -c "$TP_TMP/t-order.ini" -t >"$TP_TMP/t-order.out" 2>&1 && rc=0 || rc=$?
if [ "$rc" = 1 ] && grep -q 't-order\.ini:5: cert_file .*leaf first' "$TP_TMP/t-order.out"; then
	pass "-t: wrong-order chain: $(head -n 1 "$TP_TMP/t-order.out" | sed 's|^.*/||')"
else
	fail "-t: wrong-order chain refused at its cert_file line, naming leaf first" \
	    "exit $rc: $(head -n 3 "$TP_TMP/t-order.out" | tr '\n' ' ')"
fi
# RSA-1024 at the default protocols (the security level of this OpenSSL)
printf '[s]\nmode = server\naccept = 127.0.0.1:0\nconnect = 127.0.0.1:%s\ncert_file = %s\nkey_file = %s\n' \
    "$sink" "$LV/rsa1024.pem" "$LV/rsa1024.key" >"$TP_TMP/t-1024.ini"
"$TLSPROXY" -c "$TP_TMP/t-1024.ini" -t >"$TP_TMP/t-1024.out" 2>&1 && rc=0 || rc=$?
note "-t, RSA-1024 server certificate at the default protocols: exit $rc: $(head -n 1 "$TP_TMP/t-1024.out" | sed 's|^.*/||')"
if [ "$rc" != 0 ]; then
	expect_match "-t: a refused RSA-1024 certificate is named at its line" \
	    "$TP_TMP/t-1024.out" 't-1024\.ini:5: cert_file .*rsa1024\.pem'
fi
phase "-t checks"

# ---------------------------------------------------------------- run

start_proxy "$CFG"
phase start

# The port of every client route, from the log, then every case at once.
sed -n 's/.*: \([A-Za-z0-9_]*\): listening on .*:\([0-9][0-9]*\)$/\1 \2/p' \
    "$PROXY_LOG" >"$TP_TMP/ports"
while read -r r p; do eval "L_$r=\$p"; done <"$TP_TMP/ports"
: >"$TP_TMP/list"
while IFS='|' read -r name lvl leaf exp det last chost; do
	eval "p=\${L_$name:-}"
	if [ -n "$p" ]; then echo "$name $p" >>"$TP_TMP/list"
	else fail "$name" "the route logged no listening port"; fi
done <"$CASES"
timeout -k 5 45 "$PY" "$TP_PEERS/smtp_many.py" --jobs 16 --timeout 15 \
    "$TP_TMP/list" "$TP_TMP" >"$TP_TMP/summary" 2>"$TP_TMP/many.err" ||
    fail "smtp_many.py" "exit status $?: $(tail -n 3 "$TP_TMP/many.err" | tr '\n' ' ')"
phase sessions

# What each case got: G_ (greeting), R_ (reply to the message), C_ (EOF or
# OPEN), D_ (messages in the sink), E_ ("TRUST HOST[IP]:PORT" per
# established line) and W_ ("HOST[IP]:PORT: REASON" per warning), the last
# two one per line.  One pass over each file; eval only names variables.
while IFS='|' read -r name g rr c; do
	eval "G_$name=\$g; R_$name=\$rr; C_$name=\$c"
done <"$TP_TMP/summary"
sleep 0.2	# smtp-sink writes each message as it answers; let the last land
grep -rh '^X-Case: ' "$SINK_DIR" 2>/dev/null | tr -d '\r' | sort | uniq -c |
    while read -r n x name; do echo "$name $n"; done >"$TP_TMP/sunk"
while read -r name n; do eval "D_$name=\$n"; done <"$TP_TMP/sunk"
awk '{
	if (!match($0, /: (warning: )?[A-Za-z0-9_]+\/[0-9a-f]+: /)) next
	pre = substr($0, RSTART + 2, RLENGTH - 4)
	warn = sub(/^warning: /, "", pre)
	route = pre; sub(/\/.*/, "", route)
	rest = substr($0, RSTART + RLENGTH)
	est = " TLS connection established to "
	vf = "server certificate verification failed for "
	if ((i = index(rest, est)) > 0) {
		host = substr(rest, i + length(est)); sub(/: .*/, "", host)
		print "E|" route "|" substr(rest, 1, i - 1) " " host
	} else if (warn && index(rest, vf) == 1) {
		print "W|" route "|" substr(rest, length(vf) + 1)
	}
}' "$PROXY_LOG" >"$TP_TMP/logsum"
nl='
'
while IFS='|' read -r k name t; do
	eval "${k}_$name=\"\${${k}_$name:-}\$t\$nl\""
done <"$TP_TMP/logsum"

# has_line LIST LINE: LIST (lines) has LINE; has_prefix LIST PREFIX
has_line() { case "$nl$1" in *"$nl$2$nl"*) return 0 ;; esac; return 1; }
has_prefix() { case "$nl$1" in *"$nl$2"*) return 0 ;; esac; return 1; }

: >"$TP_TMP/table"
while IFS='|' read -r name lvl leaf exp det last chost; do
	eval "g=\${G_$name:-}; rr=\${R_$name:-}; c=\${C_$name:-}; nd=\${D_$name:-0}"
	eval "est=\${E_$name:-}; warns=\${W_$name:-}"
	peer="${chost}[127.0.0.1]:$last"
	if [ "$nd" -ge 1 ]; then
		trust=${est%"$nl"}
		trust=${trust##*"$nl"}
		outcome="delivered (${trust%% *})"
	else
		outcome=${g:-"no greeting ($c)"}
	fi
	printf '%s|%s|%s|%s\n' "$lvl" "$leaf" "$name" "$outcome" >>"$TP_TMP/table"
	case $exp in
	ok)
		case $g in
		220\ *) pass "$name: greeting '$g'" ;;
		*) fail "$name: 220 greeting" "got '$g' [$(oneline "$TP_TMP/$name.dlg")]" ;;
		esac
		case $rr in
		250*) pass "$name: 250 after DATA" ;;
		*) fail "$name: 250 after DATA" "got '$rr'" ;;
		esac
		if [ "$nd" = 1 ]; then pass "$name: delivered once"
		else fail "$name: delivered once" "$nd messages in the sink"; fi
		if has_line "$est" "$det $peer"; then
			pass "$name: logged '$det TLS connection established to $peer'"
		else
			fail "$name: logged '$det TLS connection established to $peer'" \
			    "got: $(printf '%s' "$est" | tr '\n' ';')"
		fi
		;;
	trusted | verified | refused)
		if [ "$exp" = refused ]; then
			case $g in
			"$det"?*) pass "$name: greeting '$g'" ;;
			*) fail "$name: greeting '$det...'" "got '$g' [$(oneline "$TP_TMP/$name.dlg")]" ;;
			esac
			case $g in
			"421 4.7.5 Server certificate not "*": "?*)
				reason=${g#"421 4.7.5 Server certificate not "*": "} ;;
			*)	# no 421 at all: the reason checks would only repeat it
				if [ "$nd" = 0 ]; then pass "$name: not delivered"
				else fail "$name: not delivered" "$nd messages in the sink"; fi
				continue ;;
			esac
		else
			want="421 4.7.5 Server certificate not $exp: $det"
			if [ "$g" = "$want" ]; then pass "$name: greeting '$g'"
			else fail "$name: greeting '$want'" "got '$g' [$(oneline "$TP_TMP/$name.dlg")]"; fi
			reason=$det
		fi
		if [ "$nd" = 0 ]; then pass "$name: not delivered"
		else fail "$name: not delivered" "$nd messages in the sink"; fi
		if [ "$c" = EOF ]; then pass "$name: closed after the 421"
		else fail "$name: closed after the 421" "still open [$(oneline "$TP_TMP/$name.dlg")]"; fi
		if has_line "$warns" "$peer: $reason"; then
			pass "$name: logged warning '...$peer: $reason'"
		else
			fail "$name: logged 'warning: $name/SID: server certificate verification failed for $peer: $reason'" \
			    "got: $(printf '%s' "$warns" | tr '\n' ';')"
		fi
		# Postfix's trust words: a chain that verifies is "Trusted" even
		# when the name does not match; anything else "Untrusted".
		case $reason in
		"name mismatch"*) trust=Trusted ;;
		*) trust=Untrusted ;;
		esac
		if has_line "$est" "$trust $peer"; then
			pass "$name: logged '$trust TLS connection established to $peer'"
		else
			fail "$name: logged '$trust TLS connection established to $peer'" \
			    "got: $(printf '%s' "$est" | tr '\n' ';')"
		fi
		;;
	esac
done <"$CASES"

# failover: each address's failure is logged, the last one reaches the client
port_of wrongname
if has_line "${W_fo_verify:-}" "127.0.0.1[127.0.0.1]:$PORT: name mismatch (names seen: other.example.net)"
then pass "fo_verify: the first address's name mismatch logged"
else fail "fo_verify: the first address's name mismatch logged" "got: $(printf '%s' "${W_fo_verify:-}" | tr '\n' ';')"; fi
port_of selfsigned
if has_line "${W_fo_allbad:-}" "127.0.0.1[127.0.0.1]:$PORT: $SELF_SIGNED"
then pass "fo_allbad: the first address's failure logged"
else fail "fo_allbad: the first address's failure logged" "got: $(printf '%s' "${W_fo_allbad:-}" | tr '\n' ';')"; fi
if has_prefix "${W_fo_dane:-}" "127.0.0.1[127.0.0.1]:$PORT: TLSA mismatch"
then pass "fo_dane: the first address's TLSA mismatch logged"
else fail "fo_dane: the first address's TLSA mismatch logged" "got: $(printf '%s' "${W_fo_dane:-}" | tr '\n' ';')"; fi
phase assertions

# The outcome table
note "outcomes (level leaf -> outcome):"
while IFS='|' read -r lvl leaf name outcome; do
	note "$(printf '%-11s %-18s %-20s -> %s' "$lvl" "$leaf" "($name)" "$outcome")"
done <"$TP_TMP/table"

stop_proxy
check "proxy exits 0 on SIGTERM" [ "$STOP_RC" = 0 ]

done_testing
