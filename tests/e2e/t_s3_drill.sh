#!/bin/bash
# t_s3_drill.sh - disaster recovery drill on a real Ceph RGW: node A
# archives 2,000 messages on the s3 backend (with a legal hold, a
# retention rule applied to stored mail, searches), then its data
# directory is destroyed entirely, and keysvc's too.  Node B starts from
# a new data directory, the same bucket and keysvc's backup (archive-keysvc
# backup with 3-of-5 shares, taken while node A ran; restored from 3),
# rebuilds with archivectl rebuild --from-store, and shows the same list,
# the same search counts, verify passing, holds and retention intact.  The rebuild's rate is printed
# (docs/operator-guide.md "Recovery" takes its RTO from it).
. "$(dirname "$0")/lib.sh"
corpus
rgw_env
bucket_new drill
N=${DRILL_MESSAGES:-2000}

# --- node A --------------------------------------------------------------
archive_init_s3 "$BUCKET"
check "tenant add" ctl tenant add acme --journal-address journal@acme.example
check "a second tenant" ctl tenant add beta --journal-address journal@beta.example
ls "$CORPUS"/*.eml | head -"$N" >"$T/list"
out=$(ctl import --tenant acme $(cat "$T/list") 2>&1)
check "node A imports $N messages ($(grep imported <<<"$out"))" \
    grep -q "$N stored" <<<"$out"
out=$(ctl import --tenant beta $(tail -50 "$T/list") 2>&1)
check "and 50 into tenant beta" grep -q "50 stored" <<<"$out"
check "a legal hold" ctl hold create --tenant acme enron-matter \
    --custodian @enron.com --description "drill"
check "a retention rule" ctl retention rule add --tenant acme @kernel.org 3650
out=$(ctl retention apply --tenant acme 2>&1)
rc=$?
check "applied to stored mail ($out)" [ $rc -eq 0 ]
check "a checkpoint" ctl checkpoint
QUERIES=(spice "from:enron.com" "subject:patch" "kernel OR jfs" "has:attachment")
snapshot() {  # snapshot DIR: what must survive
	mkdir -p "$1"
	ctl --json list --tenant acme | python3 -c 'import json,sys
for o in sorted(json.load(sys.stdin), key=lambda o: o["id"]):
    print(o["id"], o["retain_until"], o["size"], o["sha256"], o["arrivals"],
          json.dumps(o["meta"], sort_keys=True))' >"$1/list"
	for q in "${QUERIES[@]}"; do
		echo "$q: $(ctl search --tenant acme --limit 1 "$q" | tail -1 |
		    grep -o 'of [0-9]* messages')"
	done >"$1/search"
	ctl hold list --tenant acme >"$1/holds"
	ctl retention show --tenant acme >"$1/retention"
	ctl --json list --tenant beta | python3 -c 'import json,sys
print(len(json.load(sys.stdin)))' >"$1/beta"
}
snapshot "$T/before"
# keysvc's backup while it serves: 3-of-5 shares
PK=$(cat "$KEYS/signing.pub")
out=$("$KEYSVC_BIN" backup -d "$KEYS" -o "$T/keys.akb" --shares 3/5 \
    --share-dir "$T/shares" 2>"$T/backup.log")
check "keysvc backup with 3-of-5 shares ($(head -1 <<<"$out"))" \
    grep -q "any 3 of its 5 shares" <<<"$out"
keysvc_stop
# --- the disaster ----------------------------------------------------------
rm -rf "$T/data" "$T/keys"
check "node A's data directory and keysvc's are gone" \
    test ! -e "$T/data" -a ! -e "$T/keys"

# --- node B: a new data directory, the same bucket --------------------------
DATA=$T/data-b
KEYS=$T/keys-b
# no tenant was shredded: no shred list to give
out=$("$KEYSVC_BIN" restore -d "$KEYS" -i "$T/keys.akb" --no-shred-list \
    --share "$T/shares/"*-1-of-5.txt --share "$T/shares/"*-3-of-5.txt \
    --share "$T/shares/"*-5-of-5.txt --expect-pubkey "$PK" 2>"$T/restore.log")
check "node B: keysvc restored from shares 1, 3, 5 ($(cat "$T/restore.log" | tail -1))" \
    grep -q "restored: *$KEYS" <<<"$out"
keysvc_start "$KEYS"
"$CTL_BIN" -d "$DATA" init --keysvc-socket "$KEYS/keysvc.sock" --backend s3 \
    --s3-endpoint "$S3_ENDPOINT" --s3-bucket "$BUCKET" >/dev/null
check "node B: bucket check passes" ctl bucket check
t0=$(date +%s.%N)
out=$(ctl rebuild --from-store 2>&1)
rc=$?
t1=$(date +%s.%N)
echo "$out"
check "rebuild --from-store succeeds" [ $rc -eq 0 ]
check "it found both tenants" [ "$(grep -c '^rebuilt tenant' <<<"$out")" = 2 ]
secs=$(python3 -c "print(round($t1 - $t0, 1))")
echo "drill: rebuild of $N + 50 messages (catalog and index) took $secs s"
snapshot "$T/after"
ctl --json list --tenant acme >"$T/after.json"
check "the same list (ids, dates, retain-until, sizes, digests, metadata)" \
    cmp -s "$T/before/list" "$T/after/list"
check "the same search counts ($(tr '\n' ';' <"$T/after/search"))" \
    cmp -s "$T/before/search" "$T/after/search"
check "the same holds" cmp -s "$T/before/holds" "$T/after/holds"
check "the same retention rules" cmp -s "$T/before/retention" "$T/after/retention"
check "tenant beta too ($(cat "$T/after/beta") messages)" \
    cmp -s "$T/before/beta" "$T/after/beta"
out=$(ctl verify 2>&1)
rc=$?
check "node B: verify passes, bucket and Object Lock included ($(tail -1 <<<"$out"))" \
    [ $rc -eq 0 ]
grep -E '^(error|warning)' <<<"$out" | head -5
ext=$(python3 -c "import json
l=[o for o in json.load(open('$T/after.json'))
   if (o['meta'].get('from') or '').lower().endswith('@kernel.org')]
print(len(l), min(o['retain_until'] for o in l) if l else '-')")
check "mail the rule extended is still retained 10 years ($ext)" \
    python3 -c "import sys; n, d = '$ext'.split(); sys.exit(0 if int(n) > 0 and d > '2035' else 1)"
# node B goes on: it takes new mail and ships its log
# 5 messages it has and one new (the corpus's next message: its last file
# is SOURCES.txt, which import now skips as no message)
out=$(ctl import --tenant acme $(tail -5 "$T/list") "$(ls "$CORPUS"/*.eml | sed -n "$((N + 1))p")" 2>&1)
check "node B archives on ($(grep imported <<<"$out"))" grep -q "1 stored" <<<"$out"
rgw_own_down
