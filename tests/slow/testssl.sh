#!/bin/sh
# testssl.sh [BUILDDIR...] - Debian's testssl.sh against the server routes
# (issue 4: "testssl.sh --starttls smtp against a default server route
# reports no vulnerable item, nothing below TLS 1.2 and no weak cipher").
#
# For each BUILDDIR (default: the directory of $TLSPROXY, else build) one
# tlsproxy with two server routes at their defaults (RSA and ECDSA chains
# from tests/certs/mkcerts.sh): st (tls = starttls) and im (tls = implicit).
# testssl runs once against each (--starttls smtp for st), bounded by
# `timeout 600`, with the checks -p -s -f -P -S -U and --add-ca for the test
# CA; tests/peers/testssl_check.py judges its --jsonfile report:
#   no HIGH/CRITICAL item (items about how the test certificate was issued
#   are shown, not judged), SSLv2/SSLv3/TLS 1.0/TLS 1.1 not offered,
#   TLS 1.2 and 1.3 offered, no NULL/aNULL/EXPORT/LOW/3DES cipher, RC4 and
#   SWEET32 not vulnerable, no client-initiated renegotiation, the chain of
#   trust verifies.
# Slow: about 2-3 minutes per testssl run.  Output: the usual "ok - ..." /
# "not ok - ..." lines and RESULT per build, then "N passed, N failed";
# exit status 1 if anything failed.  Loopback only.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)

if [ -z "${TP_SLOW_INNER:-}" ]; then
	if [ $# -eq 0 ]; then
		if [ -n "${TLSPROXY:-}" ]; then set -- "$(dirname "$TLSPROXY")"
		else set -- "$root/build"; fi
	fi
	total_pass=0
	total_fail=0
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/tlsproxy-slow.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	trap 'exit 130' INT TERM
	for b in "$@"; do
		if ! bdir=$(cd "$b" 2>/dev/null && pwd) || [ ! -x "$bdir/tlsproxy" ]; then
			echo "== $b: no tlsproxy binary"
			total_fail=$((total_fail + 1))
			continue
		fi
		echo "== $b"
		t0=$(date +%s)
		TP_SLOW_INNER=1 TLSPROXY=$bdir/tlsproxy TP_BUILD=$bdir \
		    sh "$0" >"$tmp/out" 2>&1
		rc=$?
		cat "$tmp/out"
		res=$(grep '^RESULT passed=' "$tmp/out" | tail -n 1)
		el=$(($(date +%s) - t0))
		if [ -z "$res" ]; then
			echo "testssl $b: died without a RESULT line (exit status $rc, ${el}s)"
			total_fail=$((total_fail + 1))
			continue
		fi
		if echo "$res" | grep -q 'skipped='; then
			echo "testssl $b: skipped (${el}s)"
			continue
		fi
		p=$(echo "$res" | sed 's/.*passed=\([0-9]*\).*/\1/')
		f=$(echo "$res" | sed 's/.*failed=\([0-9]*\).*/\1/')
		[ "$rc" != 0 ] && [ "$f" = 0 ] && f=1
		echo "testssl $b: $p passed, $f failed (${el}s)"
		total_pass=$((total_pass + p))
		total_fail=$((total_fail + f))
	done
	echo "$total_pass passed, $total_fail failed"
	[ "$total_fail" = 0 ]
	exit
fi

# ---------------------------------------------------------------- one build
: "${TP_TIMEOUT:=1400}"	# two testssl runs of at most 600 s, and the rest
. "$root/tests/integration/lib.sh"
TESTSSL=$(command -v testssl || command -v testssl.sh || true)
[ -n "$TESTSSL" ] || skip_all "testssl.sh not installed (Debian package testssl.sh)"
require_tool openssl /usr/sbin/smtp-sink
need_certs

sink=$(free_port)
start_sink "$sink"
CFG=$TP_TMP/testssl.ini
{
	printf '[global]\nshutdown_grace = 2s\n'
	for r in st:starttls im:implicit; do
		printf '\n[%s]\nmode = server\ntls = %s\naccept = 127.0.0.1:0\n' "${r%%:*}" "${r#*:}"
		printf 'connect = 127.0.0.1:%s\nhostname = localhost\n' "$sink"
		printf 'cert_file = %s\nkey_file = %s\n' "$CERTS/rsa.pem" "$CERTS/rsa.key"
		printf 'eccert_file = %s\neckey_file = %s\n' "$CERTS/ec.pem" "$CERTS/ec.key"
	done
} >"$CFG"
start_proxy "$CFG"
note "$("$TESTSSL" --version 2>/dev/null | grep -m 1 -E 'testssl +[0-9]' | sed 's/\x1b\[[0-9;]*m//g; s/^ *//')"

for r in st im; do
	port=$(route_port "$r")
	set -- -p -s -f -P -S -U
	[ "$r" = st ] && set -- --starttls smtp "$@"
	t0=$(date +%s)
	(cd "$TP_TMP" && timeout -k 10 600 "$TESTSSL" "$@" --add-ca "$CERTS/ca.pem" \
	    --nodns min --quiet --color 0 --warnings off \
	    --jsonfile "$TP_TMP/$r.json" "127.0.0.1:$port" >"$TP_TMP/$r.out" 2>&1) && rc=0 || rc=$?
	note "$r: testssl $* 127.0.0.1:$port: exit status $rc, $(($(date +%s) - t0)) s"
	if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		fail "$r: testssl finished within 600 s" "killed after 600 s: $(tail -n 3 "$TP_TMP/$r.out" | tr '\n' ' ')"
	fi
	"$PY" "$TP_PEERS/testssl_check.py" "$TP_TMP/$r.json" >"$TP_TMP/$r.check" 2>&1 || true
	while IFS= read -r line; do
		case $line in
		"PASS "*) pass "$r: ${line#PASS }" ;;
		"FAIL "*) _w=${line#FAIL }; fail "$r: ${_w%%: *}" "${_w#*: }" ;;
		"NOTE "*) note "$r: ${line#NOTE }" ;;
		*) note "$r: $line" ;;
		esac
	done <"$TP_TMP/$r.check"
	if ! grep -q '^PASS ' "$TP_TMP/$r.check"; then
		fail "$r: testssl produced a report" "$(tail -n 5 "$TP_TMP/$r.out" | tr '\n' ' ')"
	fi
	check "$r: the proxy is still running after testssl" alive "$PROXY_PID"
done
# the routes still serve mail after the scans
dialog after "$(route_port im)" --tls r "s:EHLO c.test" r s:QUIT r
expect_reply_match "im: a normal session after the scans" "$DLG" "" '^220 '

done_testing
