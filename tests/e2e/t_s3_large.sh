#!/bin/bash
# t_s3_large.sh - a 200 MB message on the s3 backend, on a real Ceph RGW:
# sent as a multipart upload (s3_part_size parts, COMPLIANCE on the
# upload), read back with ranged GETs, memory bounded both ways (peak RSS
# far below the message size), bytes unchanged, verify passes.
. "$(dirname "$0")/lib.sh"
rgw_env
bucket_new large
archive_init_s3 "$BUCKET"
ctl tenant add big --journal-address j@big.example >/dev/null
python3 - "$T/big.eml" <<'PY'
import base64, os, sys
with open(sys.argv[1], "wb") as f:
    f.write(b"From: a@big.example\r\nTo: b@big.example\r\nSubject: large\r\n"
            b"Message-ID: <large@big.example>\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: application/octet-stream\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n")
    chunk = os.urandom(57 * 1024)
    for _ in range(2550):           # 2550 * 57 KiB raw -> ~200 MB base64
        f.write(base64.encodebytes(chunk).replace(b"\n", b"\r\n"))
PY
size=$(stat -c %s "$T/big.eml")
out=$(ctl --json import --tenant big --no-index "$T/big.eml")
check "a $size-byte message is stored in the bucket" grep -q '"stored": 1' <<<"$out"
rss=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["peak_rss_kb"])' "$out")
check "import peak RSS ${rss} KB stays far below the message size" \
    [ "$rss" -lt 160000 ]
id=$(ctl --json list --tenant big | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
TID=$(ctl --json tenant show big | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
s3 -I -H "x-amz-content-sha256: $S3_EMPTY" "$S3_ENDPOINT/$BUCKET/archive/$TID/o/$id" >"$T/head"
check "the server holds it under COMPLIANCE" grep -qi '^x-amz-object-lock-mode: COMPLIANCE' "$T/head"
check "... as a multipart upload (its ETag has a part count)" \
    grep -qiE '^etag: "[0-9a-f]+-[0-9]+"' "$T/head"
/usr/bin/env time -f "%M" -o "$T/get.rss" "$CTL_BIN" -d "$DATA" get --tenant big "$id" >"$T/back.eml"
check "get returns the same bytes" cmp -s "$T/big.eml" "$T/back.eml"
grss=$(tail -1 "$T/get.rss")
check "get peak RSS ${grss} KB stays far below the message size" [ "$grss" -lt 160000 ]
check "verify passes" ctl verify
rgw_own_down
