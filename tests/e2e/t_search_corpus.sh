#!/bin/bash
# t_search_corpus.sh - the search index through the real archivectl over
# the sample corpus: counts agree with an independent Python reference,
# nothing of the corpus (or of the queries) is readable in any file under
# the data directory, tenants never see each other's words, reindex gives
# the same results as incremental indexing, reconcile repairs a lost shard
# and a vanished object, bad queries exit 2 and change nothing.
. "$(dirname "$0")/lib.sh"
corpus
archive_init
ctl tenant add acme --journal-address journal@acme.example >/dev/null
ctl tenant add inc --journal-address journal@inc.example >/dev/null
ctl tenant add beta --journal-address journal@beta.example >/dev/null

# --- acme: the whole corpus, index built without stemming -------------------
out=$(ctl import --tenant acme --no-index "$CORPUS"/*.eml)
check "import --no-index stores the corpus: $out" grep -q "0 failed" <<<"$out"
lag=$(ctl --json stats | python3 -c "import json,sys
t=[t for t in json.load(sys.stdin)['tenants'] if t['tenant']=='acme'][0]['index']
print(t['unindexed_objects'], t['lag_seconds'] >= 0, t['oldest_pending'] is not None)")
n=$(ls "$CORPUS"/*.eml | wc -l)
check "stats --json shows $n unindexed objects before indexing ($lag)" \
    [ "$lag" = "$n True True" ]
check "stats (text) has the UNINDEXED column" \
    sh -c "'$CTL_BIN' -d '$DATA' stats | grep -q UNINDEXED"
out=$(ctl reindex --tenant acme --language none)
check "reindex --language none indexes all $n: $out" \
    grep -q "reindexed acme: $n messages (0 unreadable" <<<"$out"
lag=$(ctl --json stats | python3 -c "import json,sys
t=[t for t in json.load(sys.stdin)['tenants'] if t['tenant']=='acme'][0]['index']
print(t['unindexed_objects'], t['pending_changes'])")
check "no lag after indexing ($lag)" [ "$lag" = "0 0" ]

check "counts agree with the Python email-module reference" \
    python3 "$S/tests/e2e/py/search_ref.py" "$CTL_BIN" "$DATA" acme "$CORPUS"

# --- bad input: exit 2, a clear message, nothing logged -----------------------
seq0=$(ctl --json log --tenant acme | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
ctl search --tenant acme 'NEAR(a b, 5' >"$T/o" 2>"$T/e"; rc=$?
check "syntax error exits 2 ($rc)" [ $rc -eq 2 ]
check "syntax error names the position: $(cat "$T/e")" \
    grep -q "column 12 (byte 11): expected ')' after NEAR terms" "$T/e"
ctl search --tenant acme --limit 0 energy 2>"$T/e"; rc=$?
check "--limit 0 exits 2 ($rc)" [ $rc -eq 2 ]
ctl search --tenant acme --order size energy 2>"$T/e"; rc=$?
check "--order size exits 2 ($rc)" [ $rc -eq 2 ]
ctl search --tenant nobody energy 2>"$T/e"; rc=$?
check "unknown tenant exits 1 ($rc)" [ $rc -eq 1 ]
seq1=$(ctl --json log --tenant acme | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
check "refused searches log nothing ($seq0 -> $seq1)" [ "$seq0" -eq "$seq1" ]

# --- paging, and every search is an access entry ---------------------------
p1=$(ctl --json search --tenant acme --limit 100 kernel)
cur=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["next_cursor"])' "$p1")
p2=$(ctl --json search --tenant acme --limit 100 --cursor "$cur" kernel)
check "second page follows the first without overlap" python3 -c '
import json,sys
a=json.loads(sys.argv[1]); b=json.loads(sys.argv[2])
ia=[r["id"] for r in a["results"]]; ib=[r["id"] for r in b["results"]]
assert len(ia)==100 and len(ib)==100 and not set(ia)&set(ib), (len(ia),len(ib))
assert a["total"]==b["total"]==788' "$p1" "$p2"
ctl search --tenant beta --cursor "$cur" kernel 2>"$T/e" >/dev/null; rc=$?
check "another tenant's cursor is refused with exit 2 ($rc)" [ $rc -eq 2 ]
check "the searches are access entries with their query (decrypted by log)" \
    sh -c "'$CTL_BIN' -d '$DATA' --json log --tenant acme | python3 -c '
import json,sys
q=[e[\"detail\"][\"query\"] for e in json.load(sys.stdin) if e[\"kind\"]==\"access\" and e[\"detail\"] and e[\"detail\"].get(\"action\")==\"search\"]
assert q[-2:]==[\"kernel\",\"kernel\"] and \"energy\" in q, q'"

# --- inc: incremental indexing (imports in three parts) vs reindex --------
ls "$CORPUS"/*.eml | head -600 >"$T/inc"
for part in 1 201 401; do
	out=$(ctl import --tenant inc $(sed -n "${part},$((part + 199))p" "$T/inc"))
	check "import of part $part is indexed: $(tail -1 <<<"$out")" \
	    grep -q "^indexed 200 messages" <<<"$out"
done
QUERIES=("energy" "kernel OR pipeline" '"please let me know"' "contra*"
    "from:@enron.com" "subject:patch" "after:2001-01-01 before:2002-01-01"
    "meeting -enron" "has:attachment" "")
snapshot() {
	local q
	for q in "${QUERIES[@]}"; do
		ctl --json search --tenant inc --limit 1000 "$q" | python3 -c '
import json,sys; j=json.load(sys.stdin)
print(sys.argv[1], j["total"], " ".join(r["id"]+r["date"]+r["subject"] for r in j["results"]))' "$q"
	done
}
snapshot >"$T/incremental"
check "incremental results are not empty" \
    [ "$(awk '$2 > 0' "$T/incremental" | wc -l)" -ge 8 ]
out=$(ctl reindex --tenant inc)
check "reindex inc: $out" grep -q "reindexed inc: 600 messages" <<<"$out"
snapshot >"$T/reindexed"
check "reindex gives the same results as incremental indexing" \
    cmp -s "$T/incremental" "$T/reindexed"

# --- reconcile: a lost shard, an object gone from the catalog --------------
INC_HEX=$(ctl --json tenant show inc | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
shard=$(ls -S "$DATA/index/$INC_HEX"/*.db | head -1)
rm -f "$shard" "$shard-wal" "$shard-shm"
out=$(ctl --json reconcile --tenant inc)
check "reconcile finds the messages of the lost shard: $out" python3 -c '
import json,sys; r=json.loads(sys.argv[1])[0]; assert r["missing"] > 0 and r["extra"] == 0' "$out"
snapshot >"$T/reconciled"
check "after reconcile the results are those of before" \
    cmp -s "$T/incremental" "$T/reconciled"
gone=$(ctl --json search --tenant inc --limit 1 kernel | python3 -c 'import json,sys; print(json.load(sys.stdin)["results"][0]["id"])')
keysvc_stop   # nothing else may hold the catalog while it is edited
"$TAMPER" "$DATA/catalog" objects delete "$INC_HEX$gone"
keysvc_start "$KEYS"
out=$(ctl --json reconcile --tenant inc)
check "reconcile removes the row of an object the catalog lost: $out" python3 -c '
import json,sys; r=json.loads(sys.argv[1])[0]; assert r["extra"] == 1 and r["missing"] == 0' "$out"
check "the object is no longer found" sh -c "! '$CTL_BIN' -d '$DATA' --json \
    search --tenant inc --limit 1000 kernel | grep -q $gone"

# --- tenant isolation ---------------------------------------------------------
cat >"$T/beta.eml" <<'EOF'
From: Zed Quorra <zed@betacorp.example>
To: ops@betacorp.example
Subject: xylofantastic quarterly figures
Date: Tue, 05 Mar 2024 10:00:00 +0000
Message-ID: <b1@betacorp.example>

The xylofantastic numbers, and energy and kernel.
EOF
ctl import --tenant beta "$T/beta.eml" >/dev/null
total() { ctl --json search --tenant "$1" --limit 1 "$2" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])'; }
check "beta finds its own word" [ "$(total beta xylofantastic)" -eq 1 ]
check "acme never finds beta's word" [ "$(total acme xylofantastic)" -eq 0 ]
check "acme never finds beta's address" [ "$(total acme from:zed@betacorp.example)" -eq 0 ]
check "beta sees only its own message for a word both have" \
    [ "$(total beta energy)" -eq 1 ]
check "inc never finds beta's word" [ "$(total inc 'xylofant*')" -eq 0 ]

# --- nothing readable at rest -------------------------------------------------
python3 "$S/tests/e2e/py/corpus_strings.py" "$CORPUS" 400 >"$T/strings.txt"
printf '%s\n' xylofantastic "Zed Quorra" zed@betacorp.example \
    "please let me know" >>"$T/strings.txt"
check "there are index files, WAL included" \
    [ "$(find "$DATA/index" -name '*.db*' | wc -l)" -gt 10 ]
check "grep finds the strings in the plaintext corpus" \
    grep -rqF -f "$T/strings.txt" "$CORPUS"
hits=$(grep -rlaiF -f "$T/strings.txt" "$DATA" 2>/dev/null)
check "no word, address, subject or query readable in any file under the data dir" \
    [ -z "$hits" ]
[ -n "$hits" ] && echo "$hits" | head
check "verify still passes for acme and beta" \
    sh -c "'$CTL_BIN' -d '$DATA' verify --tenant acme >/dev/null && '$CTL_BIN' -d '$DATA' verify --tenant beta >/dev/null"
