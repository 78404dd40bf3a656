#!/bin/bash
# t_keysvc.sh - archive-keysvc's command line: init (plain and sealed),
# signing.pub, refusals, SIGTERM removes the socket.
set -u
BIN="$AR_BUILD_DIR/keysvc/archive-keysvc"
T=$(mktemp -d "${TMPDIR:-/tmp}/ar-e2e-keysvc-XXXXXX")
trap 'rm -rf "$T"' EXIT
fail=0
check() { if eval "$1"; then echo "ok: $2"; else echo "FAIL: $2"; fail=1; fi; }

"$BIN" -h >/dev/null; check '[ $? -eq 0 ]' "-h exits 0"
"$BIN" 2>/dev/null; check '[ $? -eq 2 ]' "no -d is a usage error"
"$BIN" -d "$T/x" --bogus 2>/dev/null; check '[ $? -eq 2 ]' "unknown option"

pk=$("$BIN" init -d "$T/plain" 2>"$T/init.log")
check '[ $? -eq 0 ]' "init plain"
check '[ "$pk" = "$(cat "$T/plain/signing.pub")" ]' "init prints signing.pub"
check '[ "$(stat -c %a "$T/plain/kek")" = 600 ]' "kek mode 0600"
check '[ "$(stat -c %a "$T/plain")" = 700 ]' "data dir mode 0700"
"$BIN" init -d "$T/plain" 2>/dev/null; check '[ $? -ne 0 ]' "init twice refused"

pk2=$(echo "s3cret pass" | "$BIN" init -d "$T/sealed" --passphrase-fd 0 \
    --pwhash-cost interactive 2>/dev/null)
check '[ $? -eq 0 ] && [ ${#pk2} -eq 64 ]' "init sealed"
"$BIN" -d "$T/sealed" 2>"$T/nopass.log"
check '[ $? -ne 0 ] && grep -q "sealed with a passphrase" "$T/nopass.log"' \
    "sealed without passphrase refused with a clear message"
echo "nope" | "$BIN" -d "$T/sealed" --passphrase-fd 0 2>"$T/wrong.log"
check '[ $? -ne 0 ] && grep -q "wrong passphrase" "$T/wrong.log"' \
    "wrong passphrase refused"

echo "s3cret pass" | "$BIN" -d "$T/sealed" -s "$T/alt.sock" \
    --passphrase-fd 0 2>"$T/run.log" &
pid=$!
end=$((SECONDS + 120))   # until it is ready (at most 120 s)
while [ $SECONDS -lt $end ] && ! grep -q status=ready "$T/run.log"; do
	kill -0 $pid 2>/dev/null || break
	sleep 0.05
done
check 'grep -q status=ready "$T/run.log"' "sealed start with passphrase"
check '[ -S "$T/alt.sock" ] && [ "$(stat -c %a "$T/alt.sock")" = 600 ]' \
    "-s socket, mode 0600"
echo "s3cret pass" | "$BIN" -d "$T/sealed" -s "$T/alt2.sock" \
    --passphrase-fd 0 2>"$T/second.log"
check '[ $? -ne 0 ] && grep -q "another archive-keysvc" "$T/second.log"' \
    "second daemon on the same directory refused"
kill -TERM $pid; wait $pid; rc=$?
check '[ $rc -eq 0 ] && [ ! -e "$T/alt.sock" ]' "SIGTERM: exit 0, socket removed"
check '! grep -qiE "sanitizer|runtime error" "$T"/*.log' "no sanitizer reports"
exit $fail
