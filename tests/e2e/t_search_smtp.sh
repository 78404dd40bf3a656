#!/bin/bash
# t_search_smtp.sh - messages arriving over SMTP through the real archived
# become searchable: its indexer follows the catalog commits, journal
# report recipients (Bcc, expanded lists, forwards) are searchable under
# to:/bcc:, a second arrival's envelope is merged into the index, and what
# was stored while archived was down is indexed when it starts.
. "$(dirname "$0")/lib.sh"
archive_init
ctl tenant add acme --journal-address journal@acme.example >/dev/null
set_conf pipeline_nice 5
archived_start

# nice_of NAME: the nice values of archived's threads named NAME
nice_of() {
	local f
	for f in /proc/$ARCHIVED_PID/task/*/comm; do
		[ "$(cat "$f")" = "$1" ] && awk '{print $19}' "${f%comm}stat"
	done | sort -u | tr '\n' ' '
}
check "pipeline_nice 5: the pipeline threads run at nice 5 ($(nice_of ar-pipeline))" \
    [ "$(nice_of ar-pipeline)" = "5 " ]
check "index_nice 10 (default): the indexer runs at nice 10 ($(nice_of ar-indexer))" \
    [ "$(nice_of ar-indexer)" = "10 " ]
check "SMTP loops stay at nice 0 ($(nice_of ar-smtp))" [ "$(nice_of ar-smtp)" = "0 " ]

total() { ctl --json search --tenant acme --limit 1 "$1" 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])'; }
# wait_total QUERY N: until QUERY finds N messages (at most 300 s)
total_is() { [ "$(total "$1")" = "$2" ]; }
wait_total() { wait_until 300 total_is "$1" "$2"; }
send() {
	swaks --server 127.0.0.1:$SMTP_PORT --from journal-ndr@contoso.example \
	    --to journal@acme.example "$@" 2>&1 | grep -q "<-  250 2.0.0"
}

sed 's/$/\r/' "$S/tests/golden/journal/exchange_all_forms.eml" >"$T/report.eml"
check "journal report accepted" send --data "$T/report.eml"
check "plain message accepted" send --header "Subject: quasarvolt status" \
    --body "The quasarvolt readings are in."
check "the plain message becomes searchable" wait_total quasarvolt 1
check "the report's original becomes searchable" \
    wait_total "subject:numbers from:alice@contoso.com" 1
check "Bcc recipient from the report: bcc:frank@contoso.com" \
    [ "$(total bcc:frank@contoso.com)" = 1 ]
check "expanded Bcc recipient: bcc:ivan@contoso.com" \
    [ "$(total bcc:ivan@contoso.com)" = 1 ]
check "envelope recipients count under to: (to:ivan@contoso.com)" \
    [ "$(total to:ivan@contoso.com)" = 1 ]
check "the expanded list: to:board@contoso.com" \
    [ "$(total to:board@contoso.com)" = 1 ]
check "the forwarder: to:grace@contoso.com" \
    [ "$(total to:grace@contoso.com)" = 1 ]
check "a To header recipient is not under bcc: (bcc:bob@fabrikam.example)" \
    [ "$(total bcc:bob@fabrikam.example)" = 0 ]
check "nobody else: to:mallory@contoso.com" \
    [ "$(total to:mallory@contoso.com)" = 0 ]

# the same original journaled again for another recipient: one object,
# its envelope merged, and the index follows the arrival
sed 's/frank@contoso.com/zoe@contoso.com/' "$T/report.eml" >"$T/report2.eml"
check "second report of the same original accepted" send --data "$T/report2.eml"
check "the merged recipient becomes searchable (bcc:zoe@contoso.com)" \
    wait_total bcc:zoe@contoso.com 1
check "the first recipient still finds it" [ "$(total bcc:frank@contoso.com)" = 1 ]
check "still one message for the original" \
    [ "$(total "subject:numbers")" = 1 ]
lag=$(ctl --json stats | python3 -c "import json,sys
print(json.load(sys.stdin)['tenants'][0]['index']['unindexed_objects'])")
check "stats: nothing left unindexed ($lag)" [ "$lag" = 0 ]
archived_stop

# stored while archived was down and not indexed: found at its start
cat >"$T/late.eml" <<'EOF'
From: Late Larry <larry@acme.example>
To: ops@acme.example
Subject: zirconflux while down
Date: Wed, 06 Mar 2024 10:00:00 +0000

zirconflux
EOF
ctl import --tenant acme --no-index "$T/late.eml" >/dev/null
check "not searchable before archived runs" [ "$(total zirconflux)" = 0 ]
archived_start
check "archived's start-up reconcile indexes it" wait_total zirconflux 1
archived_stop
check "archived logged the reconcile" grep -q "job=reconcile missing=1 extra=0" "$T/archived.log"
check "verify passes" ctl verify
