#!/bin/bash
# t_store_keysvc_down.sh - with the key service stopped, import fails with
# a clear "key service unavailable", exits with the temporary-failure
# status and leaves no partial object; after a restart it succeeds.
. "$(dirname "$0")/lib.sh"
corpus
archive_init
ctl tenant add acme --journal-address journal@acme.example >/dev/null
keysvc_stop

ls "$CORPUS"/*.eml | head -50 >"$T/files"
ctl import --tenant acme $(cat "$T/files") >"$T/out" 2>"$T/err"
rc=$?
check "import exits 75 (temporary failure) while keysvc is down (got $rc)" [ $rc -eq 75 ]
check "the reason says key service unavailable" grep -q "key service unavailable" "$T/err"
check "stderr is short (one reason, not a flood): $(wc -l <"$T/err") lines" \
    [ "$(wc -l <"$T/err")" -le 3 ]
nfiles=$(find "$DATA/objects" -type f | wc -l)
check "no object file was written ($nfiles)" [ "$nfiles" -eq 0 ]

# the other commands fail the same clear way
ctl verify >/dev/null 2>"$T/verr"
check "verify says key service unavailable" grep -q "key service unavailable" "$T/verr"

keysvc_start "$KEYS"
out=$(ctl import --tenant acme $(cat "$T/files"))
check "after restart the import succeeds: $out" grep -q "50 stored, 0 already present, 0 failed" <<<"$out"
check "verify passes" ctl verify
