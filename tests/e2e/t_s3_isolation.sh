#!/bin/bash
# t_s3_isolation.sh - tenants in one bucket stay apart: each tenant's
# objects, log segments and checkpoints are under its own prefix, and a
# rebuild of one tenant (archivectl rebuild --from-store --tenant-id)
# sends no request outside that prefix (every request is logged by a
# proxy in front of RGW); the other tenant can be rebuilt after it.
. "$(dirname "$0")/lib.sh"
corpus
rgw_env
bucket_new iso
archive_init_s3 "$BUCKET"
check "tenant acme" ctl tenant add acme --journal-address journal@acme.example
check "tenant beta" ctl tenant add beta --journal-address journal@beta.example
ls "$CORPUS"/*.eml | head -60 >"$T/list"
check "import into acme" ctl import --tenant acme $(head -30 "$T/list")
check "import into beta" ctl import --tenant beta $(tail -30 "$T/list")
A=$(ctl --json tenant show acme | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
Bt=$(ctl --json tenant show beta | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
s3 -H "x-amz-content-sha256: $S3_EMPTY" "$S3_ENDPOINT/$BUCKET?list-type=2" |
    grep -o '<Key>[^<]*</Key>' | sed 's/<[^>]*>//g' >"$T/bucket.keys"
check "every key is under a tenant's prefix ($(wc -l <"$T/bucket.keys") keys)" \
    [ -z "$(grep -vE "^archive/($A|$Bt)/(o|log|ckpt)/[0-9a-f]+$" "$T/bucket.keys")" ]
check "beta's mail is under beta's prefix" \
    [ "$(grep -c "^archive/$Bt/o/" "$T/bucket.keys")" = 30 ]
keysvc_stop
rm -rf "$T/data"
DATA=$T/data-b
keysvc_start "$KEYS"
s3proxy_start
"$CTL_BIN" -d "$DATA" init --keysvc-socket "$KEYS/keysvc.sock" --backend s3 \
    --s3-endpoint "http://127.0.0.1:$PROXY_PORT" --s3-bucket "$BUCKET" >/dev/null
: >"$PROXY_LOG"
out=$(ctl rebuild --from-store --tenant-id "$A" 2>&1)
check "rebuild of acme alone ($(grep rebuilt <<<"$out"))" grep -q "30 objects" <<<"$out"
n=$(wc -l <"$PROXY_LOG")
# the bucket-wide checks (versioning, object-lock) read no object
outside=$(grep -vE "(/$BUCKET/archive/$A/|prefix=archive%2F$A%2F|\?versioning=|\?object-lock=)" "$PROXY_LOG")
check "its $n requests all stay under acme's prefix" [ -z "$outside" ]
[ -n "$outside" ] && echo "$outside" | head -5
check "none names beta" [ -z "$(grep -F "$Bt" "$PROXY_LOG")" ]
out=$(ctl search --tenant acme spice 2>&1)
rc=$?
check "acme searchable after its rebuild" [ $rc -eq 0 ]
out=$(ctl list --tenant beta 2>&1)
check "beta is not in this catalog" grep -q "no tenant named 'beta'" <<<"$out"
out=$(ctl rebuild --from-store --tenant-id "$Bt" 2>&1)
check "beta rebuilt next ($(grep rebuilt <<<"$out"))" grep -q "30 objects" <<<"$out"
check "verify passes for both" ctl verify
rgw_own_down
