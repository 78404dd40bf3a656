#!/bin/bash
# t_store_large.sh - a 150 MB message is imported and read back with
# bounded memory: peak RSS far below the message size, bytes unchanged.
. "$(dirname "$0")/lib.sh"
archive_init
ctl tenant add big --journal-address j@big.example >/dev/null
python3 - "$T/big.eml" <<'PY'
import base64, os, sys
with open(sys.argv[1], "wb") as f:
    f.write(b"From: a@big.example\r\nTo: b@big.example\r\nSubject: large\r\n"
            b"Message-ID: <large@big.example>\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: application/octet-stream\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n")
    chunk = os.urandom(57 * 1024)
    for _ in range(2700):           # 2700 * 57 KiB raw -> ~150 MB base64
        f.write(base64.encodebytes(chunk).replace(b"\n", b"\r\n"))
PY
size=$(stat -c %s "$T/big.eml")
out=$(ctl --json import --tenant big "$T/big.eml")
check "a $size-byte message is stored" grep -q '"stored": 1' <<<"$out"
rss=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["peak_rss_kb"])' "$out")
check "import peak RSS ${rss} KB stays far below the message size" \
    [ "$rss" -lt 131072 ]
id=$(ctl --json list --tenant big | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
/usr/bin/env time -f "%M" -o "$T/get.rss" "$CTL_BIN" -d "$DATA" get --tenant big "$id" >"$T/back.eml"
check "get returns the same bytes" cmp -s "$T/big.eml" "$T/back.eml"
grss=$(tail -1 "$T/get.rss")
check "get peak RSS ${grss} KB stays far below the message size" [ "$grss" -lt 131072 ]
check "verify passes" ctl verify
