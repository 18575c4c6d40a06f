#!/bin/sh
# mkleaves.sh DIR - a private PKI for the verification-level tests (200-verify).
#
#   root.pem root.key          private root CA ("tlsproxy verify root")
#   inter.pem inter.key        intermediate CA, signed by root
#   rogue.pem rogue.key        another root CA, NOT trusted by the tests
#   rogueint.pem rogueint.key  intermediate signed by rogue
#   trust.pem                  = root.pem (the ca_file of the tests)
#
# Leaves: NAME.pem is the chain the server sends (leaf first unless said
# otherwise), NAME.key its key (mode 0600).  RSA-2048 unless said otherwise;
# wrongname, wildcard, expired, notyet, selfsigned, untrusted and localhost
# share one key (a different one from good's).
#   good          SAN DNS:mx.example.test, signed by root
#   wrongname     SAN DNS:other.example.net, signed by root
#   wildcard      SAN DNS:*.example.test, signed by root
#   expired       SAN DNS:mx.example.test, root, valid 2020-01-01..2021-01-01
#   notyet        SAN DNS:mx.example.test, root, valid from 2040-01-01
#   selfsigned    SAN DNS:mx.example.test, self-signed
#   untrusted     SAN DNS:mx.example.test, signed by rogueint; chain = leaf, rogueint
#   intermediate  SAN DNS:mx.example.test, signed by inter; chain = leaf, inter
#   fullchain     the intermediate leaf with the chain leaf, inter, root
#   wrongorder    the intermediate leaf with the chain inter, leaf
#   rsa1024       SAN DNS:mx.example.test, RSA-1024, signed by root
#   ecdsa         SAN DNS:mx.example.test, ECDSA P-256, signed by root
#   localhost     SAN DNS:localhost, signed by root (match = hostname tests)
#
# Idempotent: a complete DIR is left as it is.
set -eu
dir=${1:?usage: mkleaves.sh DIR}
mkdir -p "$dir"
cd "$dir"

leaves="good wrongname wildcard expired notyet selfsigned untrusted intermediate fullchain wrongorder rsa1024 ecdsa localhost"
complete=1
for f in root inter rogue rogueint $leaves; do
	[ -s "$f.pem" ] && [ -s "$f.key" ] || complete=0
done
[ -s trust.pem ] || complete=0
if [ $complete = 1 ]; then
	chmod 600 ./*.key
	exit 0
fi

umask 077
rsakey() { openssl genpkey -algorithm RSA -pkeyopt "rsa_keygen_bits:${2:-2048}" -out "$1" 2>/dev/null; }
eckey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# Keys in parallel (RSA generation is the slow part).  CAs are ECDSA:
# quick to make, and the tests are about the leaves.  Only good and
# intermediate have RSA keys of their own (the fingerprint and TLSA tests
# pin them); the other RSA-2048 leaves share the key "other".
for k in root inter rogue rogueint ecdsa; do eckey "$k.key" & done
for k in good other intermediate; do rsakey "$k.key" & done
rsakey rsa1024.key 1024 &
wait
for k in root inter rogue rogueint ecdsa good other intermediate rsa1024; do
	[ -s "$k.key" ] || { echo "mkleaves: no key $k" >&2; exit 1; }
done
for k in wrongname wildcard expired notyet selfsigned untrusted localhost; do
	cp other.key "$k.key"
done
rm -f other.key

leafext() { # SAN
	printf '%s\n' \
	    "basicConstraints = critical, CA:FALSE" \
	    "keyUsage = critical, digitalSignature, keyEncipherment" \
	    "extendedKeyUsage = serverAuth, clientAuth" \
	    "subjectAltName = $1" \
	    "subjectKeyIdentifier = hash" \
	    "authorityKeyIdentifier = keyid"
}
caext() {
	printf '%s\n' \
	    "basicConstraints = critical, CA:TRUE" \
	    "keyUsage = critical, keyCertSign, cRLSign" \
	    "subjectKeyIdentifier = hash" \
	    "authorityKeyIdentifier = keyid"
}

# selfca NAME CN: a self-signed root
selfca() {
	openssl req -x509 -new -key "$1.key" -subj "/CN=$2" -days 3650 -sha256 \
	    -addext "basicConstraints = critical, CA:TRUE" \
	    -addext "keyUsage = critical, keyCertSign, cRLSign" \
	    -out "$1.crt" 2>/dev/null
}

# sign NAME CN ISSUER EXTFUNC ARG: NAME.crt = NAME.key's CSR signed by ISSUER
sign() {
	"$4" "$5" >"$1.ext"
	openssl req -new -key "$1.key" -subj "/CN=$2" 2>/dev/null |
	    openssl x509 -req -CA "$3.crt" -CAkey "$3.key" -set_serial "0x$(openssl rand -hex 8)" \
		-days 3650 -sha256 -extfile "$1.ext" -out "$1.crt" 2>/dev/null
	rm -f "$1.ext"
}

# signdated NAME CN ISSUER START END: the same with explicit validity
# (openssl ca: x509 -req in OpenSSL 3.0 has no -not_before/-not_after)
signdated() {
	rm -rf "ca-$1" && mkdir "ca-$1"
	: >"ca-$1/index.txt"
	openssl rand -hex 8 >"ca-$1/serial"
	leafext "DNS:mx.example.test" >"ca-$1/ext"
	cat >"ca-$1/ca.cnf" <<CNF
[ca]
default_ca = d
[d]
database = ca-$1/index.txt
serial = ca-$1/serial
new_certs_dir = ca-$1
certificate = $3.crt
private_key = $3.key
default_md = sha256
policy = p
unique_subject = no
email_in_dn = no
[p]
commonName = supplied
CNF
	openssl req -new -key "$1.key" -subj "/CN=$2" -out "ca-$1/csr" 2>/dev/null
	openssl ca -batch -notext -config "ca-$1/ca.cnf" -extfile "ca-$1/ext" \
	    -startdate "$4" -enddate "$5" -in "ca-$1/csr" \
	    -out "$1.crt" 2>"ca-$1/err" || { cat "ca-$1/err" >&2; exit 1; }
	rm -rf "ca-$1"
}

selfca root "tlsproxy verify root"
sign inter "tlsproxy verify intermediate" root caext ""
selfca rogue "rogue root"
sign rogueint "tlsproxy verify intermediate" rogue caext ""

mx="DNS:mx.example.test"
sign good mx.example.test root leafext "$mx"
sign wrongname other.example.net root leafext "DNS:other.example.net"
sign wildcard "*.example.test" root leafext "DNS:*.example.test"
signdated expired mx.example.test root 200101000000Z 210101000000Z
signdated notyet mx.example.test root 400101000000Z 410101000000Z
leafext "$mx" >selfsigned.ext
openssl req -x509 -new -key selfsigned.key -subj "/CN=mx.example.test" -days 3650 \
    -sha256 -extensions v3 -config /dev/stdin -out selfsigned.crt 2>/dev/null <<CNF
[req]
distinguished_name = dn
[dn]
[v3]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = $mx
subjectKeyIdentifier = hash
CNF
rm -f selfsigned.ext
sign untrusted mx.example.test rogueint leafext "$mx"
sign intermediate mx.example.test inter leafext "$mx"
sign rsa1024 mx.example.test root leafext "$mx"
sign ecdsa mx.example.test root leafext "$mx"
sign localhost localhost root leafext "DNS:localhost"

# chain files
for n in root inter rogue rogueint good wrongname wildcard expired notyet \
    selfsigned rsa1024 ecdsa localhost; do
	cp "$n.crt" "$n.pem"
done
cat untrusted.crt rogueint.crt >untrusted.pem
cat intermediate.crt inter.crt >intermediate.pem
cat intermediate.crt inter.crt root.crt >fullchain.pem
cp intermediate.key fullchain.key
cat inter.crt intermediate.crt >wrongorder.pem
cp intermediate.key wrongorder.key
cp root.pem trust.pem
rm -f ./*.crt
chmod 600 ./*.key
chmod 644 ./*.pem
