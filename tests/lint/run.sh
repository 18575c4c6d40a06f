#!/bin/sh
# tests/lint/run.sh - make lint: the layer rules (layers.py) on the tree,
# then on a copy with an upward #include and an upward call planted, which
# must fail; then clang-format and cppcheck.  Exit 1 on any failure.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
rc=0

python3 "$root/tests/lint/layers.py" "$root" || rc=1

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/src" "$tmp/include"
cp -r "$root/src/." "$tmp/src/"
cp -r "$root/include/." "$tmp/include/"
# an endpoint that knows its session: both must be caught
sed -i 's|#include "tlsproxy/common.h"|#include "tlsproxy/common.h"\n#include "tlsproxy/session.h"|' \
    "$tmp/src/side.c"
printf 'void tp_lint_probe(struct side *s);\nvoid\ntp_lint_probe(struct side *s)\n{\n\ttp_conn_close(s->owner, NULL);\n}\n' \
    >> "$tmp/src/side.c"
out=$(python3 "$root/tests/lint/layers.py" "$tmp")
if [ $? -ne 1 ] ||
    ! printf '%s\n' "$out" | grep -q 'side.c:[0-9]*: #include "tlsproxy/session.h" points up' ||
    ! printf '%s\n' "$out" | grep -q 'side.c:[0-9]*: calls tp_conn_close() of conn, which points up'; then
	echo "lint: layers.py missed a planted upward include or call:"
	printf '%s\n' "$out"
	rc=1
else
	echo "lint: layers.py catches a planted upward include and call"
fi

cd "$root" || exit 1
if command -v clang-format >/dev/null 2>&1; then
	clang-format --dry-run -Werror src/*.c include/tlsproxy/*.h || rc=1
else
	echo "lint: clang-format not installed (make deps installs it)"
fi
if command -v cppcheck >/dev/null 2>&1; then
	cppcheck --quiet --error-exitcode=1 -Iinclude src || rc=1
else
	echo "lint: cppcheck not installed (make deps installs it)"
fi
[ $rc -eq 0 ] && echo "lint: clean"
exit $rc
