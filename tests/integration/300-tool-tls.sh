#!/bin/sh
# 300-tool-tls: `tlsproxy tls` key management (spec 7, issue 5).
#
# new-server-key writes a key (mode 0600) and a 100-year self-signed
# certificate that OpenSSL loads, and prints the deploy and CSR commands
# and a TLSA record equal to sha256 of the key's SubjectPublicKeyInfo;
# output-server-csr makes a CSR `openssl req -verify` accepts;
# deploy-server-cert refuses a key that does not match, a chain that is
# not leaf first and a key file others can read, and otherwise rewrites
# only the route's key values (diff) so that `-t` passes and, after the
# SIGHUP it tells how to send, a new handshake sees the new certificate;
# new-server-cert keeps the key (same TLSA); enable-server/-client and
# all-default-* follow postfix-tls(1); usage errors exit 2.
. "$(dirname "$0")/lib.sh"
require_tool openssl sha256sum diff stat
need_certs

dir=$TP_TMP/etc
mkdir -p "$dir"
port=$(free_port)
CFG=$dir/tlsproxy.ini
OUT=$TP_TMP/tool.out
ERR=$TP_TMP/tool.err
cat >"$CFG" <<EOF
; tlsproxy configuration for the tls tool test
[global]
shutdown_grace = 5s
pid_file = tlsproxy.pid   ; relative: in this directory

# The server route the tool manages.  Nothing listens on the backend:
# a handshake is all the test needs.
[in]
mode = server
accept = 127.0.0.1:$port
connect = 127.0.0.1:$(free_port)   ; the backend
hostname = mx.example.test
; cert_file = commented-out.pem

[out]
mode = client
accept = 127.0.0.1:0
connect = 127.0.0.1:$port
EOF
chmod 640 "$CFG"

# tool NAME WANT ARGS...: `tlsproxy -c $CFG tls ARGS` exits WANT; its
# stdout is in $OUT, its stderr in $ERR.
tool() {
	_name=$1
	_want=$2
	shift 2
	_rc=0
	"$TLSPROXY" -c "$CFG" tls "$@" >"$OUT" 2>"$ERR" || _rc=$?
	if [ "$_rc" = "$_want" ]; then pass "$_name: exit $_want"
	else fail "$_name: exit $_want" "exit $_rc: $(oneline "$ERR") $(oneline "$OUT")"; fi
	check_sanitizers "$ERR"
}

# refused NAME WANT ERE ARGS...: exit WANT, the message matches ERE, and
# neither the configuration nor the directory changed.
refused() {
	_name=$1
	_want=$2
	_ere=$3
	shift 3
	cp "$CFG" "$TP_TMP/before.ini"
	ls -A "$dir" >"$TP_TMP/before.ls"
	tool "$_name" "$_want" "$@"
	expect_match "$_name: message" "$ERR" "$_ere"
	if cmp -s "$CFG" "$TP_TMP/before.ini"; then pass "$_name: config unchanged"
	else fail "$_name: config unchanged" "$(diff "$TP_TMP/before.ini" "$CFG" | tr '\n' '|')"; fi
	ls -A "$dir" >"$TP_TMP/after.ls"
	if cmp -s "$TP_TMP/before.ls" "$TP_TMP/after.ls"; then pass "$_name: no file created"
	else fail "$_name: no file created" "$(diff "$TP_TMP/before.ls" "$TP_TMP/after.ls" | tr '\n' ' ')"; fi
}

# created PREFIX: the file PREFIX-YYYYMMDD-HHMMSS.pem named in $OUT/$ERR
created() {
	grep -ho "$1-[0-9]\{8\}-[0-9]\{6\}\.pem" "$OUT" "$ERR" | head -n 1
}

# spki FILE: sha256 of the DER SubjectPublicKeyInfo of the key in FILE
spki() {
	openssl pkey -in "$1" -pubout -outform DER 2>/dev/null | sha256sum | cut -d' ' -f1
}

# served [S_CLIENT ARGS]: subject and subjectAltName the route serves
served() {
	openssl s_client -connect "127.0.0.1:$port" "$@" </dev/null 2>/dev/null |
	    openssl x509 -noout -subject -ext subjectAltName 2>/dev/null |
	    tr '\n' ' ' | tr -s ' '
}

# diff_is NAME A B EXPECTED: the changed lines ("<"/">") between A and B
diff_is() {
	_got=$(diff "$2" "$3" | grep '^[<>]' | tr '\n' '|' || true)
	if [ "$_got" = "$4" ]; then pass "$1"
	else fail "$1" "diff: '$_got', expected '$4'"; fi
}

# config_ok NAME: tlsproxy -t accepts $CFG
config_ok() {
	_rc=0
	"$TLSPROXY" -c "$CFG" -t >"$TP_TMP/t.out" 2>&1 || _rc=$?
	if [ "$_rc" = 0 ]; then pass "$1"
	else fail "$1" "exit $_rc: $(oneline "$TP_TMP/t.out")"; fi
}

# ---------------------------------------------------------------- defaults

tool "all-default-server on a fresh route" 0 all-default-server
tool "all-default-client on a fresh route" 0 all-default-client -r out
config_ok "-t accepts the starting config"
start_proxy "$CFG"
before=$(served)
case $before in
*mx.example.test*) fail "before deploy: not yet mx.example.test" "$before" ;;
*) pass "before deploy: the self-signed certificate made at start" ;;
esac

# ---------------------------------------------------------------- new-server-key

# -r omitted: [in] is the only server route; the hostname is its own.
tool "new-server-key" 0 new-server-key
key=$(created key)
cert=$(created cert)
check "new-server-key names key-STAMP.pem and cert-STAMP.pem" \
    [ -n "$key" ] && [ -n "$cert" ]
check "the key is in the config directory" [ -f "$dir/$key" ]
check "the certificate is in the config directory" [ -f "$dir/$cert" ]
check "the key is mode 0600 (got $(stat -c %a "$dir/$key" 2>/dev/null))" \
    [ "$(stat -c %a "$dir/$key" 2>/dev/null)" = 600 ]
check "openssl pkey loads the key" openssl pkey -in "$dir/$key" -noout
check "openssl x509 loads the certificate" openssl x509 -in "$dir/$cert" -noout
x509=$(openssl x509 -in "$dir/$cert" -noout -subject -ext subjectAltName 2>&1 | tr '\n' ' ')
case $x509 in
*"CN = mx.example.test"*"DNS:mx.example.test"*) pass "CN and SAN are the route's hostname" ;;
*) fail "CN and SAN are the route's hostname" "$x509" ;;
esac
if openssl x509 -in "$dir/$cert" -noout -checkend $((99 * 365 * 86400)) >/dev/null
then pass "the certificate is valid for (nearly) 100 years"
else fail "the certificate is valid for (nearly) 100 years" "$(openssl x509 -in "$dir/$cert" -noout -enddate)"; fi
check "the certificate matches the key" [ "$(openssl x509 -in "$dir/$cert" -noout -pubkey |
    openssl pkey -pubin -outform DER | sha256sum | cut -d' ' -f1)" = "$(spki "$dir/$key")" ]
tlsa=$(spki "$dir/$key")
expect_line "TLSA 3 1 1 = sha256 of the SPKI" "$OUT" \
    "  _25._tcp.mx.example.test. IN TLSA 3 1 1 $tlsa"
expect_line "the exact deploy command" "$OUT" \
    "  tlsproxy -c $CFG tls deploy-server-cert -r in $cert $key"
expect_match "the CSR command" "$OUT" \
    "^  tlsproxy -c $CFG tls output-server-csr -k $key -r in mx.example.test"
expect_match "says to publish TLSA before deploying a new key" "$OUT" \
    "BEFORE deploying the new key"
expect_match "says new-server-cert keeps the 3 1 1 record valid" "$OUT" \
    'new-server-cert.*keeps the key|"3 1 1" record stays valid'

# Two hostnames: CN the first, a DNS SAN each; ECDSA names and curve.
tool "new-server-key -a ecdsa -b secp384r1 two names" 0 \
    new-server-key -a ecdsa -b secp384r1 -r in a.example.test b.example.test
eckey384=$(created eckey)
eccert384=$(created eccert)
check "ECDSA files are eckey-STAMP.pem/eccert-STAMP.pem" \
    [ -f "$dir/$eckey384" ] && [ -f "$dir/$eccert384" ]
check "the ECDSA key is mode 0600" [ "$(stat -c %a "$dir/$eckey384")" = 600 ]
if openssl pkey -in "$dir/$eckey384" -noout -text 2>/dev/null | grep -q 'secp384r1'
then pass "the ECDSA key is on secp384r1"
else fail "the ECDSA key is on secp384r1" "$(openssl pkey -in "$dir/$eckey384" -noout -text 2>&1 | grep -i -m1 'oid\|curve')"; fi
x509=$(openssl x509 -in "$dir/$eccert384" -noout -subject -ext subjectAltName 2>&1 | tr '\n' ' ')
case $x509 in
*"CN = a.example.test"*"DNS:a.example.test, DNS:b.example.test"*) pass "CN first name, SAN both" ;;
*) fail "CN first name, SAN both" "$x509" ;;
esac
expect_line "a TLSA record for each name" "$OUT" \
    "  _25._tcp.b.example.test. IN TLSA 3 1 1 $(spki "$dir/$eckey384")"

tool "new-server-key -a ecdsa -b prime256v1 (alias)" 0 \
    new-server-key -a ecdsa -b prime256v1
eckey=$(created eckey)
eccert=$(created eccert)
if openssl pkey -in "$dir/$eckey" -noout -text 2>/dev/null | grep -q 'prime256v1'
then pass "prime256v1 = secp256r1"
else fail "prime256v1 = secp256r1" "$(openssl pkey -in "$dir/$eckey" -noout -text 2>&1 | grep -i -m1 'oid')"; fi

# ---------------------------------------------------------------- usage errors

refused "bad RSA bits" 2 'bad RSA key size "1024"' new-server-key -b 1024
refused "bad curve" 2 'bad ECDSA curve "secp224r1"' \
    new-server-key -a ecdsa -b secp224r1
refused "bad algorithm" 2 'bad algorithm "dsa"' new-server-key -a dsa
refused "unknown route" 2 'no route \[nope\]' new-server-key -r nope
refused "bad hostname" 2 'bad hostname' new-server-key 'bad name'
refused "unknown subcommand" 2 'unknown subcommand' new-server-keys
refused "unknown option" 2 'unknown option -x' deploy-server-cert -x a b
refused "deploy with one file" 2 'expected a certificate file and a key file' \
    deploy-server-cert -r in "$cert"
refused "enable-server on a client route" 2 'out is a client route' \
    enable-server -r out
refused "bad port" 2 'bad port' output-server-tlsa -p 70000

# ---------------------------------------------------------------- output-server-csr

tool "output-server-csr" 0 output-server-csr -k "$key" -r in mx.example.test alt.example.test
cp "$OUT" "$TP_TMP/csr.pem"
if openssl req -verify -in "$TP_TMP/csr.pem" -noout >"$TP_TMP/req.out" 2>&1
then pass "openssl req -verify accepts the CSR"
else fail "openssl req -verify accepts the CSR" "$(oneline "$TP_TMP/req.out")"; fi
req=$(openssl req -in "$TP_TMP/csr.pem" -noout -subject -text 2>&1 | tr '\n' ' ')
case $req in
*"CN = mx.example.test"*"DNS:mx.example.test, DNS:alt.example.test"*) pass "CSR: CN and SANs" ;;
*) fail "CSR: CN and SANs" "$req" ;;
esac
check "CSR: the key's public key" [ "$(openssl req -in "$TP_TMP/csr.pem" -noout -pubkey |
    openssl pkey -pubin -outform DER | sha256sum | cut -d' ' -f1)" = "$tlsa" ]

ls -A "$dir" >"$TP_TMP/ls.before"
tool "output-server-csr -k ecdsa (a new key)" 0 output-server-csr -k ecdsa csr.example.test
csrkey=$(created eckey)
check "-k ecdsa writes a new key, mode 0600" [ -n "$csrkey" ] &&
    [ "$(stat -c %a "$dir/$csrkey")" = 600 ]
if openssl req -verify -in "$OUT" -noout >"$TP_TMP/req.out" 2>&1
then pass "-k ecdsa: the CSR verifies"
else fail "-k ecdsa: the CSR verifies" "$(oneline "$TP_TMP/req.out")"; fi
expect_match "-k ecdsa: the deploy hint on stderr" "$ERR" "deploy-server-cert -r in CERTFILE $csrkey"
check "-k ecdsa: the CSR is signed by the new key" [ "$(openssl req -in "$OUT" -noout -pubkey |
    openssl pkey -pubin -outform DER | sha256sum | cut -d' ' -f1)" = "$(spki "$dir/$csrkey")" ]

# ---------------------------------------------------------------- deploy refusals

cp "$CERTS/rsa.key" "$dir/other.key"
chmod 600 "$dir/other.key"
refused "a key that does not match" 1 "the key in .*other.key does not match the certificate" \
    deploy-server-cert -r in "$cert" other.key
cat "$CERTS/ca.pem" "$CERTS/rsa.pem" >"$dir/ca-first.pem"
refused "a chain not leaf first" 1 "leaf first" \
    deploy-server-cert -r in ca-first.pem other.key
cp "$dir/$key" "$dir/open.key"
chmod 644 "$dir/open.key"
refused "a key file others can read" 1 "open.key: mode 0644 is readable by others" \
    deploy-server-cert -r in "$cert" open.key
chmod 620 "$dir/open.key"
refused "a key file the group can write" 1 "open.key: mode 0620 is writable by the group" \
    deploy-server-cert -r in "$cert" open.key
refused "a missing certificate file" 1 "nosuch.pem: No such file" \
    deploy-server-cert -r in nosuch.pem "$key"
tp_abs=$(cd "$(dirname "$TLSPROXY")" && pwd)/$(basename "$TLSPROXY")
(cd "$TP_TMP" && "$tp_abs" -c "$CFG" tls deploy-server-cert -r in "etc/$cert" "etc/$key" \
    >"$OUT" 2>"$ERR") && rc=0 || rc=$?
check "a name relative to the cwd, not the config dir: exit 1" [ "$rc" = 1 ]
expect_match "... and says names are relative to the configuration directory" "$ERR" \
    "relative to the configuration directory"
# A chain in the right order with a matching key is fine (leaf, then CA).
cat "$CERTS/rsa.pem" "$CERTS/ca.pem" >"$dir/leaf-first.pem"

# ---------------------------------------------------------------- deploy

cp "$CFG" "$TP_TMP/orig.ini"
tool "deploy-server-cert" 0 deploy-server-cert -r in "$cert" "$key"
diff_is "the INI differs only by the new keys, after the route's last key line" \
    "$TP_TMP/orig.ini" "$CFG" "> cert_file = $cert|> key_file = $key|"
if sed -n '/^\[in\]/,/^\[out\]/p' "$CFG" | grep -A1 '^hostname = ' | grep -q "^cert_file = $cert"
then pass "cert_file follows the route's last key line"
else fail "cert_file follows the route's last key line" "$(oneline "$CFG")"; fi
check "the config keeps its mode 0640" [ "$(stat -c %a "$CFG")" = 640 ]
check "no temporary file left" [ -z "$(ls -A "$dir" | grep '^\.')" ]
config_ok "-t accepts the config after deploy"
expect_line "says how to reload: kill -HUP" "$OUT" "  kill -HUP \$(cat $dir/tlsproxy.pid)"
expect_match "says how to reload: systemctl" "$OUT" "systemctl reload tlsproxy"

# Reload the way the tool says; a new handshake gets the new certificate.
wait_file "$dir/tlsproxy.pid" 5 || bail "pid file" "no $dir/tlsproxy.pid"
hup=$(sed -n 's/^  \(kill -HUP .*\)$/\1/p' "$OUT")
sh -c "$hup"
wait_for_log 'reloaded configuration' 5 || fail "reload" "not logged"
got=$(served)
case $got in
*"CN = mx.example.test"*"DNS:mx.example.test"*) pass "after SIGHUP the route serves the deployed certificate" ;;
*) fail "after SIGHUP the route serves the deployed certificate" "got '$got'" ;;
esac

# new-server-cert: same key, so the same TLSA; deploying it changes the
# cert_file value in place and nothing else.
tool "new-server-cert" 0 new-server-cert renewed.example.test
cert2=$(created cert)
check "new-server-cert writes only a certificate" [ -f "$dir/$cert2" ] &&
    [ "$(grep -c 'key-[0-9]\{8\}' "$OUT" | tr -d ' ')" -ge 1 ]
expect_line "new-server-cert: TLSA unchanged" "$OUT" \
    "  _25._tcp.renewed.example.test. IN TLSA 3 1 1 $tlsa"
expect_line "new-server-cert: deploy with the current key" "$OUT" \
    "  tlsproxy -c $CFG tls deploy-server-cert -r in $cert2 $key"
check "new-server-cert: the certificate is for the current key" [ "$(openssl x509 -in "$dir/$cert2" -noout -pubkey |
    openssl pkey -pubin -outform DER | sha256sum | cut -d' ' -f1)" = "$tlsa" ]
cp "$CFG" "$TP_TMP/before2.ini"
tool "deploy the renewed certificate" 0 deploy-server-cert -r in "$cert2" "$key"
diff_is "only the cert_file value changed, in place" "$TP_TMP/before2.ini" "$CFG" \
    "< cert_file = $cert|> cert_file = $cert2|"

# ECDSA: an EC key goes to eccert_file/eckey_file, next to the RSA pair.
cp "$CFG" "$TP_TMP/before3.ini"
tool "deploy an ECDSA pair" 0 deploy-server-cert -r in "$eccert" "$eckey"
diff_is "eccert_file/eckey_file added" "$TP_TMP/before3.ini" "$CFG" \
    "> eccert_file = $eccert|> eckey_file = $eckey|"
config_ok "-t accepts the config with both pairs"
kill -HUP "$PROXY_PID"
wait_log_count 'reloaded configuration' 2 5 || fail "second reload" "not logged"
got=$(served -sigalgs "rsa_pss_rsae_sha256:RSA+SHA256")
case $got in
*"CN = renewed.example.test"*) pass "RSA client: the renewed RSA certificate" ;;
*) fail "RSA client: the renewed RSA certificate" "got '$got'" ;;
esac
got=$(served -sigalgs "ECDSA+SHA256")
case $got in
*"CN = mx.example.test"*) pass "ECDSA client: the ECDSA certificate" ;;
*) fail "ECDSA client: the ECDSA certificate" "got '$got'" ;;
esac

# A chain (leaf first, then the CA) with its key deploys too.
cp "$dir/other.key" "$dir/leaf.key"
tool "deploy a leaf-first chain" 0 deploy-server-cert -r in leaf-first.pem leaf.key
config_ok "-t accepts the chain"

# ---------------------------------------------------------------- output-server-tlsa

tool "output-server-tlsa (the route's keys)" 0 output-server-tlsa
expect_line "TLSA for the RSA key" "$OUT" \
    "_25._tcp.mx.example.test. IN TLSA 3 1 1 $(spki "$dir/leaf.key")"
expect_line "TLSA for the ECDSA key" "$OUT" \
    "_25._tcp.mx.example.test. IN TLSA 3 1 1 $(spki "$dir/$eckey")"
tool "output-server-tlsa -h -p KEYFILE" 0 output-server-tlsa -h smtp.example.test -p 465 "$key"
expect_line "TLSA with -h and -p" "$OUT" "_465._tcp.smtp.example.test. IN TLSA 3 1 1 $tlsa"
refused "output-server-tlsa of a missing file" 1 "No such file" output-server-tlsa -h x.test nosuch.pem

# ---------------------------------------------------------------- all-default, enable

tool "all-default-server after deploy" 1 all-default-server
expect_match "all-default-server lists what is set" "$OUT" "cert_file = leaf-first.pem"
tool "all-default-client still" 0 all-default-client
cp "$CFG" "$TP_TMP/before4.ini"
tool "enable-client" 0 enable-client
diff_is "enable-client writes security = encrypt (the client default)" \
    "$TP_TMP/before4.ini" "$CFG" "> security = encrypt|"
config_ok "-t accepts the config after enable-client"
tool "all-default-client after enable-client" 1 all-default-client
cp "$CFG" "$TP_TMP/before5.ini"
tool "enable-client again" 0 enable-client
expect_match "enable-client again: no changes made" "$OUT" "no changes made"
check "enable-client again: config unchanged" cmp -s "$CFG" "$TP_TMP/before5.ini"
tool "enable-server on a configured route" 0 enable-server
expect_match "enable-server: no changes, suggestions" "$OUT" "no changes made"
check "enable-server on a configured route: config unchanged" cmp -s "$CFG" "$TP_TMP/before5.ini"

# enable-server on a fresh server route: new key, deployed, security = may.
CFG=$dir/fresh.ini
fport=$(free_port)
cat >"$CFG" <<EOF
[fresh]
mode = server
accept = 127.0.0.1:$fport
connect = 127.0.0.1:$(free_port)
EOF
cp "$CFG" "$TP_TMP/fresh.orig"
tool "enable-server on a fresh route" 0 enable-server -a ecdsa fresh.example.test
fkey=$(created eckey)
fcert=$(created eccert)
diff_is "enable-server deploys the new pair and security = may" "$TP_TMP/fresh.orig" "$CFG" \
    "> eccert_file = $fcert|> eckey_file = $fkey|> security = may|"
config_ok "-t accepts the config after enable-server"
tool "all-default-server after enable-server" 1 all-default-server

# Several server routes and no -r: exit 2 naming them.
cat >>"$CFG" <<EOF

[fresh2]
mode = server
accept = 127.0.0.1:$(free_port)
connect = 127.0.0.1:$(free_port)
EOF
refused "two server routes, no -r" 2 'has 2 server routes \(fresh, fresh2\): choose one with -r' \
    new-server-key
refused "no client route, no -r" 2 'has no client route' all-default-client

done_testing
