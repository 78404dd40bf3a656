#!/bin/bash
# t_s3_quarantine.sh - the gateway's quarantine copies (store/quarantine.c)
# on the s3 backend, on a real Ceph RGW.  A quarantine copy has no
# retain-until (the archive keeps its own copy under retention): it is put
# without Object Lock retention (S3 refuses a retain-until in the past),
# read back, deleted by an officer or by the expiry pass, every version
# gone at the server; archive objects beside it stay locked; verify counts
# no copy as an orphan, and a rebuild from the bucket of a log that holds
# quarantine entries verifies.
. "$(dirname "$0")/lib.sh"
corpus
rgw_env
bucket_new quar
archive_init_s3 "$BUCKET"
Q=$B/tests/tools/quarantine_put
check "tenant add" ctl tenant add acme --journal-address journal@acme.example
TID=$(ctl --json tenant show acme | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
OBJ=$S3_ENDPOINT/$BUCKET/archive/$TID/o
ls "$CORPUS"/*.eml | head -5 >"$T/list"
M1=$(sed -n 1p "$T/list")
M2=$(sed -n 2p "$T/list")
out=$(ctl import --tenant acme $(tail -3 "$T/list") 2>&1)
check "import 3 archive messages" grep -q "3 stored" <<<"$out"
# lacks PATTERN [FILE]: no line of FILE (or standard input) matches
lacks() { ! grep -qi "$1" "${2:--}"; }
versions() {  # versions ID: how many versions of the object the server has
	s3 -H "x-amz-content-sha256: $S3_EMPTY" \
	    "$S3_ENDPOINT/$BUCKET?prefix=archive%2F$TID%2Fo%2F$1&versions=" |
	    grep -o '<Version>' | wc -l
}

ID1=$("$Q" "$DATA" acme "$M1" 3600 2>"$T/q1.err")
check "a quarantine copy is kept on the s3 backend ($(cat "$T/q1.err"))" \
    [ -n "$ID1" ]
s3 -I -H "x-amz-content-sha256: $S3_EMPTY" "$OBJ/$ID1" >"$T/head"
check "it is in the bucket, under the tenant's prefix" grep -q '^HTTP/1.1 200' "$T/head"
check "... without Object Lock retention" \
    lacks '^x-amz-object-lock-retain-until-date' "$T/head"
ctl quarantine get --tenant acme "$ID1" >"$T/got1"
check "it reads back byte for byte" cmp -s "$M1" "$T/got1"
listed() { [ -n "$1" ] && ctl --json quarantine list --tenant acme | grep -q "$1"; }
check "quarantine list shows it" listed "$ID1"
out=$(ctl verify 2>&1)
rc=$?
check "verify passes with a quarantine copy in the bucket ($(tail -1 <<<"$out"))" [ $rc -eq 0 ]
check "... and reports it as no orphan" lacks orphan <<<"$out"
out=$(ctl quarantine delete --tenant acme "$ID1" --reason "test" 2>&1)
rc=$?
check "an officer deletes it before it expires ($out)" [ $rc -eq 0 ]
check "no version of it is left at the server" [ "$(versions "$ID1")" = 0 ]
ID2=$("$Q" "$DATA" acme "$M2" -1 2>"$T/q2.err")
check "a second one, already expired ($(cat "$T/q2.err"))" [ -n "$ID2" ]
check "... in the bucket" [ "$(versions "$ID2")" = 1 ]
n=$("$Q" --expire "$DATA" 2>"$T/exp.err")
check "the expiry pass removes it ($n; $(cat "$T/exp.err"))" [ "$n" = 1 ]
check "no version of it is left at the server" [ "$(versions "$ID2")" = 0 ]
ctl --json list --tenant acme >"$T/list.json"
ARC=$(python3 -c "import json; print(json.load(open('$T/list.json'))[0]['id'])")
s3 -I -H "x-amz-content-sha256: $S3_EMPTY" "$OBJ/$ARC" >"$T/head"
check "an archive object beside them is still under COMPLIANCE retention" \
    grep -qi '^x-amz-object-lock-mode: COMPLIANCE' "$T/head"
n=$(ctl --json list --tenant acme | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
check "the 3 archive messages are all there ($n)" [ "$n" = 3 ]
check "a checkpoint" ctl checkpoint
out=$(ctl verify 2>&1)
rc=$?
check "verify passes ($(tail -1 <<<"$out"))" [ $rc -eq 0 ]

# the log, quarantine entries included, rebuilt from the bucket
DATA=$T/data-b
"$CTL_BIN" -d "$DATA" init --keysvc-socket "$KEYS/keysvc.sock" --backend s3 \
    --s3-endpoint "$S3_ENDPOINT" --s3-bucket "$BUCKET" >/dev/null
out=$(ctl rebuild --from-store 2>&1)
rc=$?
check "rebuild --from-store of a log with quarantine entries ($(tail -1 <<<"$out"))" [ $rc -eq 0 ]
out=$(ctl verify 2>&1)
rc=$?
check "the rebuilt archive verifies ($(tail -1 <<<"$out"))" [ $rc -eq 0 ]
n=$(ctl --json list --tenant acme | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
check "the 3 archive messages are there ($n)" [ "$n" = 3 ]
rgw_own_down
