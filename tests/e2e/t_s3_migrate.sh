#!/bin/bash
# t_s3_migrate.sh - archivectl migrate --to s3 on a real Ceph RGW: an fs
# archive (400 messages, a legal hold, a retention rule applied to stored
# mail, a quarantine copy; a second tenant whose 5 messages' retention is
# over, not yet disposed of) is copied into a bucket; the object store
# goes away in the middle (a proxy in front of RGW stopped): migrate
# stops with a clear message and a non-zero exit, progress on stderr;
# run again, it resumes (objects verified before are skipped) and
# completes; --switch sets store_backend = s3.  Then, on the s3 backend:
# the same list, every message readable, one version of each object at
# the server, COMPLIANCE retain-until = the catalog's (the extended ones
# too), the held objects under legal hold, the quarantine copy there
# without retention, verify passes (bucket, log, Object Lock); and the
# bucket alone rebuilds the archive (rebuild --from-store: the same list).
. "$(dirname "$0")/lib.sh"
corpus
rgw_env
bucket_new mig
archive_init
check "tenant add" ctl tenant add acme --journal-address journal@acme.example
ls "$CORPUS"/*.eml | head -400 >"$T/list"
out=$(ctl import --tenant acme $(cat "$T/list") 2>&1)
check "the fs archive takes 400 messages" grep -q "400 stored" <<<"$out"
check "a legal hold" ctl hold create --tenant acme matter --custodian @enron.com
check "a retention rule" ctl retention rule add --tenant acme @kernel.org 3650
check "applied to stored mail" ctl retention apply --tenant acme
QID=$("$B/tests/tools/quarantine_put" "$DATA" acme "$(tail -1 "$T/list")" 86400 2>"$T/q.err")
check "a quarantine copy ($(cat "$T/q.err"))" [ -n "$QID" ]
check "tenant beta, retention 1 day" ctl tenant add beta \
    --journal-address journal@beta.example --retention-days 1
out=$(AR_TEST_NOW=$(($(date +%s) - 3 * 86400)) ctl import --tenant beta \
    $(sed -n 401,405p <(ls "$CORPUS"/*.eml)) 2>&1)
check "5 messages received 3 days ago: retention over" grep -q "5 stored" <<<"$out"
check "a checkpoint" ctl checkpoint
# unlocked HEADERS: a 200 without Object Lock retention
unlocked() { grep -q '^HTTP/1.1 200' "$1" && ! grep -qi '^x-amz-object-lock-retain-until' "$1"; }
snap() {  # snap FILE: the list as the catalog has it
	ctl --json list --tenant acme | python3 -c 'import json,sys
for o in sorted(json.load(sys.stdin), key=lambda o: o["id"]):
    print(o["id"], o["retain_until"], o["size"], o["sha256"],
          json.dumps(o["meta"], sort_keys=True))' >"$1"
}
snap "$T/before"
ctl --json list --tenant beta >"$T/beta.before"
TID=$(ctl --json tenant show acme | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')

# --- interrupted, then resumed ----------------------------------------------
s3proxy_start
set_conf s3_endpoint "http://127.0.0.1:$PROXY_PORT"
set_conf s3_bucket "$BUCKET"
set_conf s3_connect_timeout 1s
set_conf s3_timeout 5s
set_conf s3_retries 1
ctl migrate --to s3 >"$T/mig1.out" 2>"$T/mig1.err" &
MIG=$!
# the object store goes away once 300 requests went through (about a
# third of the objects: each is a put, listings, a read back)
proxied() { [ "$(wc -l <"$PROXY_LOG" 2>/dev/null || echo 0)" -ge "$1" ]; }
wait_until 300 started_or_gone "$MIG" proxied 300
s3proxy_stop
wait "$MIG"
rc=$?
check "migrate stops when the object store goes away (exit $rc)" [ $rc -ne 0 ]
check "... saying what and that a new run resumes: $(tail -1 "$T/mig1.err")" \
    grep -q "run migrate again to resume" "$T/mig1.err"
done1=$(cat "$DATA/migrate/$TID.done" 2>/dev/null | wc -l)
check "... after verifying some objects ($done1)" test "$done1" -gt 0 -a "$done1" -lt 401
check "the archive still says store_backend = fs" grep -q '^store_backend = fs' "$DATA/archived.conf"
s3proxy_start "$PROXY_PORT"
ctl migrate --to s3 --switch >"$T/mig2.out" 2>"$T/mig2.err"
rc=$?
check "run again, it completes ($rc: $(cat "$T/mig2.out"))" [ $rc -eq 0 ]
check "... with progress on stderr: $(grep -o 'migrate: acme [0-9/]* objects[^,]*' "$T/mig2.err" | tail -1)" \
    grep -q "migrate: acme 401/401 objects (100%)" "$T/mig2.err"
skipped=$(grep -o 'acme 401/401 objects (100%), [0-9]* copied' "$T/mig2.err" | tail -1 | grep -o '[0-9]* copied' | cut -d' ' -f1)
check "... copying only what the first run had not verified ($skipped copied, $done1 verified before)" \
    test -n "$skipped" -a "${skipped:-0}" -le $((401 - done1))
check "--switch: store_backend = s3" grep -q '^store_backend = s3' "$DATA/archived.conf"
s3proxy_stop
set_conf s3_endpoint "$S3_ENDPOINT"

# --- the archive on the s3 backend ------------------------------------------------
snap "$T/after"
check "the same list (ids, retain-until, sizes, digests, metadata)" cmp -s "$T/before" "$T/after"
mkdir -p "$T/got"
ctl get --tenant acme --out "$T/got" $(cut -d' ' -f1 "$T/after" | head -20) >/dev/null
check "messages read back from the bucket ($(ls "$T/got" | wc -l) of 20)" \
    [ "$(ls "$T/got" | wc -l)" = 20 ]
s3 -H "x-amz-content-sha256: $S3_EMPTY" \
    "$S3_ENDPOINT/$BUCKET?prefix=archive%2F$TID%2Fo%2F&versions=" >"$T/versions.xml"
python3 - "$T/versions.xml" >"$T/vcount" <<'PY'
import re, sys, collections
x = open(sys.argv[1]).read()
keys = re.findall(r"<Version>.*?<Key>([^<]*)</Key>", x, re.S)
c = collections.Counter(keys)
print(len(c), max(c.values()) if c else 0)
PY
check "every object once in the bucket, one version each ($(cat "$T/vcount"): objects, most versions)" \
    [ "$(cat "$T/vcount")" = "401 1" ]
# the server's lock of a few objects against the catalog
python3 - "$T/after" >"$T/pick" <<'PY'
import json, sys
rows = [l.split(" ", 4) for l in open(sys.argv[1])]
ext = [r for r in rows if (json.loads(r[4]).get("from") or "").lower().endswith("@kernel.org")]
held = [r for r in rows if (json.loads(r[4]).get("from") or "").lower().endswith("@enron.com")]
for r in (ext[:1] + held[:1] + rows[:1]):
    print(r[0], r[1][:10])
PY
check "a message the rule extended and a held one are among them" [ "$(wc -l <"$T/pick")" = 3 ]
while read -r id date; do
	s3 -I -H "x-amz-content-sha256: $S3_EMPTY" "$S3_ENDPOINT/$BUCKET/archive/$TID/o/$id" >"$T/head.$id"
	got=$(sed -n 's/^x-amz-object-lock-retain-until-date: *\([0-9-]*\)T.*/\1/Ip' "$T/head.$id")
	check "object $id: COMPLIANCE until $got at the server (the catalog: $date)" \
	    grep -qi '^x-amz-object-lock-mode: COMPLIANCE' "$T/head.$id" && [ "$got" = "$date" ]
done <"$T/pick"
HELD=$(sed -n 2p "$T/pick" | cut -d' ' -f1)
check "the held object is under legal hold at the server" \
    grep -qi '^x-amz-object-lock-legal-hold: ON' "$T/head.$HELD"
s3 -I -H "x-amz-content-sha256: $S3_EMPTY" "$S3_ENDPOINT/$BUCKET/archive/$TID/o/$QID" >"$T/head.q"
check "the quarantine copy is in the bucket without retention" unlocked "$T/head.q"
ctl quarantine get --tenant acme "$QID" >"$T/q.got"
check "... and reads back byte for byte" cmp -s "$(tail -1 "$T/list")" "$T/q.got"
BID=$(ctl --json tenant show beta | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
ctl --json list --tenant beta >"$T/beta.after"
check "tenant beta's 5 messages are there too" cmp -s "$T/beta.before" "$T/beta.after"
B1=$(python3 -c "import json; print(json.load(open('$T/beta.after'))[0]['id'])")
s3 -I -H "x-amz-content-sha256: $S3_EMPTY" "$S3_ENDPOINT/$BUCKET/archive/$BID/o/$B1" >"$T/head.b"
check "one whose retention is over is in the bucket, without a lock (S3 refuses a date passed)" \
    unlocked "$T/head.b"
out=$(ctl verify 2>&1)
rc=$?
check "verify passes on the s3 backend: objects, log, bucket, Object Lock ($(tail -1 <<<"$out"))" [ $rc -eq 0 ]
grep -E '^(error|warning)' <<<"$out" | head -5

# --- the bucket is the source of truth -------------------------------------------
DATA=$T/data-b
"$CTL_BIN" -d "$DATA" init --keysvc-socket "$KEYS/keysvc.sock" --backend s3 \
    --s3-endpoint "$S3_ENDPOINT" --s3-bucket "$BUCKET" >/dev/null
out=$(ctl rebuild --from-store 2>&1)
rc=$?
check "rebuild --from-store of the migrated archive ($(grep '^rebuilt' <<<"$out"))" [ $rc -eq 0 ]
snap "$T/rebuilt"
check "the same list" cmp -s "$T/before" "$T/rebuilt"
rgw_own_down
