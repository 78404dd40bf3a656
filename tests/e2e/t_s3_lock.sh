#!/bin/bash
# t_s3_lock.sh - S3 Object Lock really holds, on a real Ceph RGW, checked
# with curl --aws-sigv4 against the server (not only through archived):
# every object is put in COMPLIANCE mode until its retain-until; a DELETE
# of its version is refused before that date; COMPLIANCE retention cannot
# be shortened; a legal hold keeps an object past its date until it is
# released; disposition then deletes it; a name is never written twice;
# nothing in the bucket is plaintext.
. "$(dirname "$0")/lib.sh"
corpus
rgw_env
bucket_new lock
archive_init_s3 "$BUCKET"

check "bucket check passes" ctl bucket check
check "tenant add" ctl tenant add acme --journal-address journal@acme.example \
    --retention-days 1
# retention 1 day, received a day ago less 20 s: retain-until in 20 s
ls "$CORPUS"/*.eml | head -40 >"$T/list"
now=$(date +%s)
out=$(AR_TEST_NOW=$((now - 86400 + 20)) ctl import --tenant acme $(head -20 "$T/list") 2>&1)
check "import 20 messages whose retain-until is 20 s away ($out)" \
    grep -q "20 stored" <<<"$out"
out=$(ctl import --tenant acme $(tail -20 "$T/list") 2>&1)
check "import 20 more (retained a day)" grep -q "20 stored" <<<"$out"
ctl --json list --tenant acme >"$T/list.json"
TID=$(ctl --json tenant show acme | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
read -r SHORT LONG <<<"$(python3 -c "import json
l=json.load(open('$T/list.json'))
l.sort(key=lambda o: o['retain_until'])
print(l[0]['id'], l[-1]['id'])")"
OBJ=$S3_ENDPOINT/$BUCKET/archive/$TID/o

s3 -I -H "x-amz-content-sha256: $S3_EMPTY" "$OBJ/$LONG" >"$T/head"
check "the object is under COMPLIANCE retention at the server" \
    grep -qi '^x-amz-object-lock-mode: COMPLIANCE' "$T/head"
until=$(sed -n 's/^x-amz-object-lock-retain-until-date: *\([0-9-]*\)T.*/\1/Ip' "$T/head")
want=$(python3 -c "import json
print([o for o in json.load(open('$T/list.json')) if o['id']=='$LONG'][0]['retain_until'][:10])")
check "its retain-until is the catalog's ($until = $want)" [ "$until" = "$want" ]
VER=$(s3 -H "x-amz-content-sha256: $S3_EMPTY" \
    "$S3_ENDPOINT/$BUCKET?prefix=archive%2F$TID%2Fo%2F$LONG&versions=" |
    sed -n 's/.*<VersionId>\([^<]*\)<.*/\1/p')
code=$(s3 -X DELETE -H "x-amz-content-sha256: $S3_EMPTY" -o "$T/del.out" \
    -w '%{http_code}' "$OBJ/$LONG?versionId=$VER")
check "a DELETE of the version before its retain-until fails at the server ($code)" \
    [ "$code" = 403 ]
check "... as refused by object lock" grep -q "object lock" "$T/del.out"
code=$(s3 -H "x-amz-content-sha256: $S3_EMPTY" -o /dev/null -w '%{http_code}' \
    "$OBJ/$LONG")
check "the object is still there ($code)" [ "$code" = 200 ]
early=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%S.000Z)
code=$(s3_put_xml "$OBJ/$LONG?retention=&versionId=$VER" \
    "<Retention><Mode>COMPLIANCE</Mode><RetainUntilDate>$early</RetainUntilDate></Retention>")
check "COMPLIANCE retention cannot be shortened ($code)" [ "$code" = 403 ]
code=$(s3_put_xml "$OBJ/$LONG?retention=&versionId=$VER" \
    "<Retention><Mode>GOVERNANCE</Mode><RetainUntilDate>$early</RetainUntilDate></Retention>")
check "... nor turned into GOVERNANCE ($code)" [ "$code" = 403 ]

# write-once through archived's own client: a second put of a name
out=$("$B/tests/tools/s3_put_twice" "$S3_ENDPOINT" "$BUCKET" 2>&1)
check "a second put of a name is refused ($out)" \
    grep -q "second put refused: AR_EEXIST" <<<"$out"
key=$(sed -n 's/^key //p' <<<"$out")
n=$(s3 -H "x-amz-content-sha256: $S3_EMPTY" \
    "$S3_ENDPOINT/$BUCKET?prefix=${key//\//%2F}&versions=" | grep -o '<Version>' | wc -l)
check "... and the name still has one version at the server ($n)" [ "$n" = 1 ]

# a legal hold keeps the short-lived object past its date
FROM=$(python3 -c "import json
print([o for o in json.load(open('$T/list.json')) if o['id']=='$SHORT'][0]['meta']['from'])")
check "hold on the short-lived object's sender" \
    ctl hold create --tenant acme keep --custodian "$FROM"
s3 -I -H "x-amz-content-sha256: $S3_EMPTY" "$OBJ/$SHORT" >"$T/head"
check "the server has its legal hold" grep -qi '^x-amz-object-lock-legal-hold: ON' "$T/head"
past() { [ "$(date +%s)" -gt "$1" ]; }
wait_until 120 past $((now + 22))
VER=$(s3 -H "x-amz-content-sha256: $S3_EMPTY" \
    "$S3_ENDPOINT/$BUCKET?prefix=archive%2F$TID%2Fo%2F$SHORT&versions=" |
    sed -n 's/.*<VersionId>\([^<]*\)<.*/\1/p')
code=$(s3 -X DELETE -H "x-amz-content-sha256: $S3_EMPTY" -o "$T/del.out" \
    -w '%{http_code}' "$OBJ/$SHORT?versionId=$VER")
check "past its date, a legal-hold object cannot be deleted at the server ($code)" \
    [ "$code" = 403 ]
out=$(ctl dispose --tenant acme 2>&1)
check "disposition leaves the held one: $(tail -1 <<<"$out")" \
    test "$(s3 -o /dev/null -w '%{http_code}' -H "x-amz-content-sha256: $S3_EMPTY" "$OBJ/$SHORT")" = 200
check "release the hold" ctl hold release --tenant acme keep --reason "matter closed"
s3 -I -H "x-amz-content-sha256: $S3_EMPTY" "$OBJ/$SHORT" >"$T/head"
check "the server's legal hold is off" grep -qi '^x-amz-object-lock-legal-hold: OFF' "$T/head"
out=$(ctl dispose --tenant acme 2>&1)
rc=$?
check "disposition now removes it too ($(tail -1 <<<"$out"))" [ $rc -eq 0 ]
code=$(s3 -o /dev/null -w '%{http_code}' -H "x-amz-content-sha256: $S3_EMPTY" "$OBJ/$SHORT")
check "the object is gone from the bucket ($code)" [ "$code" = 404 ]
n=$(s3 -H "x-amz-content-sha256: $S3_EMPTY" \
    "$S3_ENDPOINT/$BUCKET?prefix=archive%2F$TID%2Fo%2F$SHORT&versions=" | grep -o '<Version>' | wc -l)
left=$(ctl --json stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["tenants"][0]["objects"])')
check "the 20 objects retained a day are all left ($left)" [ "$left" = 20 ]
check "no version of it is left ($n)" [ "$n" = 0 ]
out=$(ctl verify 2>&1)
rc=$?
check "verify passes: catalog, log, bucket, Object Lock ($(tail -1 <<<"$out"))" [ $rc -eq 0 ]

# nothing in the bucket is plaintext: every object, raw, against the corpus
python3 "$S/tests/e2e/py/corpus_strings.py" "$CORPUS" 400 >"$T/strings.txt"
mkdir -p "$T/raw"
s3 -H "x-amz-content-sha256: $S3_EMPTY" "$S3_ENDPOINT/$BUCKET?list-type=2&prefix=archive%2F" |
    grep -o '<Key>[^<]*</Key>' | sed 's/<[^>]*>//g' >"$T/bucket.keys"
i=0
while read -r k; do
	i=$((i + 1))
	s3 -H "x-amz-content-sha256: $S3_EMPTY" -o "$T/raw/$i" "$S3_ENDPOINT/$BUCKET/$k"
done <"$T/bucket.keys"
nk=$(wc -l <"$T/bucket.keys")
check "the bucket holds objects, segments and checkpoints ($nk keys)" \
    eval '[ "$nk" -gt 25 ] && grep -q /log/ "$T/bucket.keys" && grep -q /ckpt/ "$T/bucket.keys"'
hits=$(grep -laF -f "$T/strings.txt" "$T/raw" 2>/dev/null | head)
check "no subject, address or phrase readable in any object of the bucket" [ -z "$hits" ]

# verify checks the bucket against the signed log: a forged version of a
# log segment (the server takes a new version of a locked name) is found
SEG=$S3_ENDPOINT/$BUCKET/archive/$TID/log/0000000000000001
FORGED="not a segment"
code=$(s3 -X PUT --data-binary "$FORGED" -o /dev/null -w '%{http_code}' \
    -H "x-amz-content-sha256: $(printf '%s' "$FORGED" | sha256sum | cut -d' ' -f1)" "$SEG")
check "a forged version of log segment 1 is put past our client ($code)" [ "$code" = 200 ]
out=$(ctl verify 2>&1)
rc=$?
check "verify fails on it (exit $rc)" [ $rc -ne 0 ]
check "... naming the segment: $(grep -m1 'log/0000000000000001' <<<"$out")" \
    grep -q "bucket: log/0000000000000001" <<<"$out"
rgw_own_down
