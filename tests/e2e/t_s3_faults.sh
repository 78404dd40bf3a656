#!/bin/bash
# t_s3_faults.sh - the s3 backend when things go wrong, on a real Ceph RGW:
# wrong credentials, a bucket without Object Lock or versioning, and a
# clock 20 minutes off are refused when archived starts, with a clear
# message; RGW unreachable in the middle of an import (a proxy in front
# of it stopped: connections refused, as from a stopped server) fails the
# import with a clear message and exit status, and the same import run
# again when it is back completes, every message stored once; RGW slow
# (the proxy delays each request): requests time out and are retried,
# and the import fails in bounded time instead of hanging, or succeeds
# when the delay is under the timeout.
. "$(dirname "$0")/lib.sh"
corpus
rgw_env
bucket_new faults
GOOD=$BUCKET
bucket_new nolock nolock
NOLOCK=$BUCKET
archive_init_s3 "$GOOD"
check "tenant add" ctl tenant add acme --journal-address journal@acme.example
set_conf smtp_listen 127.0.0.1:0
set_conf web_listen 127.0.0.1:0

# archived_refuses WHAT PATTERN [ENV...]: archived exits at once, non-zero,
# its log naming the reason
archived_refuses() {
	local what=$1 pat=$2 rc
	shift 2
	env "$@" timeout 60 "$B/archived/archived" -d "$DATA" >"$T/refuse.log" 2>&1
	rc=$?
	check "archived refuses to start: $what (exit $rc)" \
	    test $rc -ne 0 -a $rc -ne 124
	check "... saying why: $(grep -o "$pat[^\"]*" "$T/refuse.log" | head -1)" \
	    grep -q "$pat" "$T/refuse.log"
}
archived_refuses "wrong credentials" "credentials: refused by the object store" \
    AWS_SECRET_ACCESS_KEY=wrong-secret
archived_refuses "a clock 20 minutes behind" "clock: this host's clock is 1200 s behind" \
    AR_S3_CLOCK_OFFSET=-1200
archived_refuses "a clock 20 minutes ahead" "clock: this host's clock is 1200 s ahead" \
    AR_S3_CLOCK_OFFSET=1200
set_conf s3_bucket "$NOLOCK"
archived_refuses "a bucket without versioning nor Object Lock" "has versioning never enabled"
s3 -X PUT -H "x-amz-content-sha256: $(printf '%s' '<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>' | sha256sum | cut -d' ' -f1)" \
    --data-binary '<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>' \
    -o /dev/null "$S3_ENDPOINT/$NOLOCK?versioning="
archived_refuses "a versioned bucket without Object Lock" "has no Object Lock"
# a default retention would lock what archived keeps without one
# (quarantine copies), so that they could not be deleted
bucket_new defret
RULE='<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>COMPLIANCE</Mode><Days>1</Days></DefaultRetention></Rule></ObjectLockConfiguration>'
code=$(s3 -X PUT -H "x-amz-content-sha256: $(printf '%s' "$RULE" | sha256sum | cut -d' ' -f1)" \
    -H "Content-MD5: $(printf '%s' "$RULE" | openssl md5 -binary | base64)" \
    --data-binary "$RULE" -o "$T/rule.out" -w '%{http_code}' "$S3_ENDPOINT/$BUCKET?object-lock=")
check "a bucket default retention set at the server ($code)" [ "$code" = 200 ]
set_conf s3_bucket "$BUCKET"
archived_refuses "a bucket with a default retention" "has a default retention (COMPLIANCE 1 days)"
set_conf s3_bucket "$GOOD"
out=$(AWS_SECRET_ACCESS_KEY=wrong-secret ctl import --tenant acme "$CORPUS/$(ls "$CORPUS" | head -1)" 2>&1)
check "archivectl refuses too ($out)" grep -q "credentials" <<<"$out"

# --- RGW unreachable mid-import ------------------------------------------------
s3proxy_start
set_conf s3_endpoint "http://127.0.0.1:$PROXY_PORT"
set_conf s3_connect_timeout 1s
set_conf s3_timeout 2s
set_conf s3_retries 2
set_conf import_batch 50
ls "$CORPUS"/*.eml | head -600 >"$T/list"
ctl import --tenant acme $(cat "$T/list") >"$T/import1.out" 2>"$T/import1.err" &
IMP=$!
# RGW goes away once the proxy has passed 400 requests (a third of the
# import, or so): until then, or until the import ended on its own
proxied() { [ "$(wc -l <"$PROXY_LOG" 2>/dev/null || echo 0)" -ge "$1" ]; }
wait_until 300 started_or_gone "$IMP" proxied 400
s3proxy_stop
wait "$IMP"
rc=$?
check "the import stops with a temporary-failure exit status ($rc)" [ $rc -eq 75 ]
check "... and says the object store is unreachable: $(tail -1 "$T/import1.err")" \
    grep -qiE "object store.*(connect|refused|unreachable)" "$T/import1.err"
s3proxy_start "$PROXY_PORT"
out=$(ctl import --tenant acme $(cat "$T/list") 2>&1)
check "run again once it is back, the import completes ($(grep imported <<<"$out"))" \
    grep -q "0 failed" <<<"$out"
check "... the messages stored before the failure recognised" \
    grep -qE "[1-9][0-9]* already present" <<<"$out"
ctl --json list --tenant acme | python3 -c 'import json,sys
l=json.load(sys.stdin)
print(len(l), len(set(o["sha256"] for o in l)))' >"$T/count"
check "every message is stored once ($(cat "$T/count"), 600 expected)" \
    [ "$(cat "$T/count")" = "600 600" ]
out=$(ctl verify 2>&1)
rc=$?
check "verify passes (objects of the interrupted batch are orphans: warnings) ($(tail -1 <<<"$out"))" \
    [ $rc -eq 0 ]

# --- RGW slow --------------------------------------------------------------------
ls "$CORPUS"/*.eml | sed -n 601,640p >"$T/list2"
echo "delay 4000 PUT" >"$PROXY_CTL"
t0=$(date +%s)
timeout 300 "$CTL_BIN" -d "$DATA" import --tenant acme $(cat "$T/list2") \
    >"$T/slow.out" 2>"$T/slow.err"
rc=$?
t1=$(date +%s)
check "a server slower than s3_timeout: the import fails, no hang ($rc after $((t1 - t0)) s)" \
    test $rc -ne 0 -a $rc -ne 124
check "... saying it timed out: $(tail -1 "$T/slow.err")" \
    grep -qiE "timed out|timeout" "$T/slow.err"
check "... after retries (logged)" grep -q "status=retry" "$T/slow.err"
echo "delay 300" >"$PROXY_CTL"
out=$(ctl import --tenant acme $(cat "$T/list2") 2>&1)
check "a slow server within the timeout: the import completes ($(grep imported <<<"$out"))" \
    grep -q "0 failed" <<<"$out"
rm -f "$PROXY_CTL"
check "verify passes" ctl verify
rgw_own_down
