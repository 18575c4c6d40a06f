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

done_testing
