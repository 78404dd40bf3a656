#!/bin/bash
# t_store_corpus.sh - the sample corpus through the real binaries: import,
# get returns every message byte for byte, nothing readable at rest,
# verify passes, a second import stores nothing new.
. "$(dirname "$0")/lib.sh"
corpus
archive_init

check "tenant add" ctl tenant add acme --journal-address journal@acme.example
out=$(ctl import --tenant acme "$CORPUS"/*.eml 2>"$T/import.err")
rc=$?
n=$(ls "$CORPUS"/*.eml | wc -l)
check "import exits 0" [ $rc -eq 0 ]
check "import stores all $n messages: $out" \
    grep -q "imported $n messages into acme: $n stored, 0 already present, 0 failed" <<<"$out"

check "get returns every message byte for byte, each stored once" \
    python3 "$S/tests/e2e/py/check_get.py" "$CTL_BIN" "$DATA" acme "$CORPUS"

python3 "$S/tests/e2e/py/corpus_strings.py" "$CORPUS" 400 >"$T/strings.txt"
nstr=$(wc -l <"$T/strings.txt")
check "corpus gives many distinctive strings ($nstr)" [ "$nstr" -gt 1000 ]
# the check can find what it looks for: the corpus itself matches
check "grep finds the strings in the plaintext corpus" \
    grep -rqF -f "$T/strings.txt" "$CORPUS"
hits=$(grep -rlaF -f "$T/strings.txt" "$DATA" "$KEYS" 2>/dev/null)
check "no subject, address or phrase readable under data or keys dir" \
    [ -z "$hits" ]
[ -n "$hits" ] && echo "$hits" | head

out=$(ctl verify)
check "verify passes on a clean archive ($out)" [ $? -eq 0 ]

out=$(ctl import --tenant acme "$CORPUS"/*.eml)
check "second import stores nothing new" \
    grep -q "$n already present, 0 failed" <<<"$out"
nobj=$(ctl --json stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["tenants"][0]["objects"])')
check "still $n objects after the second import" [ "$nobj" -eq "$n" ]
check "verify still passes" ctl verify
