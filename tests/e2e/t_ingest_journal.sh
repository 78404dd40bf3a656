#!/bin/bash
# t_ingest_journal.sh - every journal fixture and golden layout, sent with
# swaks (CRLF) to the real daemon, is stored as its original message, byte
# for byte, with the envelope recipients from the report body; what is not
# a report is stored as received; unknown recipients get 550 5.1.1.
. "$(dirname "$0")/lib.sh"
archive_init
ctl tenant add acme --journal-address journal@acme.example >/dev/null
archived_start

mkdir -p "$T/sent"
for f in "$S"/../shared/fixtures/journal/*.eml "$S"/tests/golden/journal/*.eml; do
	sed 's/$/\r/' "$f" >"$T/sent/$(basename "$f")"
done
n=0
for f in "$T"/sent/*.eml; do
	out=$(swaks --server 127.0.0.1:$SMTP_PORT --from sender@example.org \
	    --to journal@acme.example --data "$f" 2>&1)
	if grep -q "<-  250 2.0.0 Ok: queued as" <<<"$out"; then
		n=$((n + 1))
	else
		bad "$(basename "$f") not accepted: $(grep '<\*\*' <<<"$out")"
	fi
done
total=$(ls "$T"/sent/*.eml | wc -l)
check "all $total reports accepted with 250 ($n)" [ "$n" -eq "$total" ]

out=$(swaks --server 127.0.0.1:$SMTP_PORT --from a@example.org \
    --to nobody@acme.example --data "$T/sent/google_copy.eml" 2>&1)
check "unknown journal address: 550 5.1.1" grep -q "<\*\* 550 5.1.1" <<<"$out"

# the pipeline drains the spool: wait until it is empty (at most 300 s)
spool_empty() { [ -z "$(find "$DATA/spool" -type f ! -name lock 2>/dev/null | head -1)" ]; }
check "the spool is drained" wait_until 300 spool_empty
check "archivectl queue shows nothing waiting" \
    sh -c "'$CTL_BIN' -d '$DATA' queue | grep -q '^0 messages waiting'"
check "every original stored once, byte for byte, with its envelope" \
    python3 "$S/tests/e2e/py/check_journal.py" "$CTL_BIN" "$DATA" acme \
    "$S/tests/golden/journal" "$T/sent"
id=$(ctl --json list --tenant acme | python3 -c "import json,sys
for o in json.load(sys.stdin):
    if o['meta'].get('smtp',{}).get('rcpt_to') == ['journal@acme.example']: print(o['id']); break")
check "show --json includes the SMTP envelope" \
    sh -c "'$CTL_BIN' -d '$DATA' --json show --tenant acme $id | grep -q '\"client_ip\": \"127.0.0.1\"'"
archived_stop
check "verify passes" ctl verify
