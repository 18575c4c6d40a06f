#!/bin/sh
# 15-examples: every shipped configuration (etc/ and examples/) passes -t,
# and the generated key reference matches the binary's key table.
. "$(dirname "$0")/lib.sh"

for f in "$TP_ROOT"/etc/tlsproxy.ini "$TP_ROOT"/examples/*.ini; do
	name=${f#"$TP_ROOT"/}
	out=$("$TLSPROXY" -t -c "$f" 2>&1) && rc=0 || rc=$?
	if [ "$rc" = 0 ]; then pass "-t accepts $name"
	else fail "-t accepts $name" "exit $rc: $out"; fi
done

"$TLSPROXY" -K >"$TP_TMP/keys.md"
if cmp -s "$TP_TMP/keys.md" "$TP_ROOT/doc/tlsproxy.ini.5.md"; then
	pass "doc/tlsproxy.ini.5.md is up to date (tlsproxy -K)"
else
	fail "doc/tlsproxy.ini.5.md is up to date" \
	    "regenerate it: build/tlsproxy -K > doc/tlsproxy.ini.5.md"
fi

"$TLSPROXY" -M >"$TP_TMP/man.5"
if cmp -s "$TP_TMP/man.5" "$TP_ROOT/man/tlsproxy.ini.5"; then
	pass "man/tlsproxy.ini.5 is up to date (tlsproxy -M)"
else
	fail "man/tlsproxy.ini.5 is up to date" "run: make docs"
fi
for m in "$TP_ROOT"/man/*.[0-9]; do
	if man -l "$m" >/dev/null 2>"$TP_TMP/man.err" && ! [ -s "$TP_TMP/man.err" ]; then
		pass "man -l renders $(basename "$m") without warnings"
	else
		fail "man -l renders $(basename "$m")" "$(cat "$TP_TMP/man.err")"
	fi
done

# make install into a DESTDIR: the installed binary and config work.
dest=$TP_TMP/dest
if make -s -C "$TP_ROOT" install BUILD="$TP_BUILD" DESTDIR="$dest" \
    PREFIX=/usr/local >"$TP_TMP/install.out" 2>&1; then
	pass "make install DESTDIR=... PREFIX=/usr/local"
else
	fail "make install" "$(tail -n 5 "$TP_TMP/install.out")"
fi
for f in sbin/tlsproxy etc/tlsproxy/tlsproxy.ini share/man/man8/tlsproxy.8 \
    share/man/man5/tlsproxy.ini.5 share/man/man1/tlsproxy-tls.1 \
    lib/systemd/system/tlsproxy.service; do
	check "installed $f" [ -f "$dest/usr/local/$f" ]
done
out=$("$dest/usr/local/sbin/tlsproxy" -V 2>&1) && rc=0 || rc=$?
check "installed tlsproxy -V (exit $rc)" [ "$rc" = 0 ]
out=$("$dest/usr/local/sbin/tlsproxy" -t -c "$dest/usr/local/etc/tlsproxy/tlsproxy.ini" 2>&1) && rc=0 || rc=$?
if [ "$rc" = 0 ]; then pass "installed tlsproxy -t on the installed config"
else fail "installed tlsproxy -t on the installed config" "$out"; fi
if grep -q "ExecStart=/usr/local/sbin/tlsproxy" "$dest/usr/local/lib/systemd/system/tlsproxy.service"; then
	pass "systemd unit points at the installed binary"
else fail "systemd unit points at the installed binary" "$(grep Exec "$dest/usr/local/lib/systemd/system/tlsproxy.service")"; fi

done_testing
