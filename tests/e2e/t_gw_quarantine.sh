#!/bin/bash
# t_gw_quarantine.sh - the gateway's quarantine through the real daemon and
# scanners, smtp-sink as the tenant's server:
#   - a spam message scored in the tenant's quarantine band is held, not
#     delivered, archived (quarantined:yes)
#   - archivectl quarantine release delivers it once, byte-identical to
#     what was sent apart from our trace headers; a second release is
#     refused
#   - a held message is removed after the tenant's 14 days by the jobs
#     thread (the clock moved with AR_TEST_NOW=@FILE), with a log entry
#   - a quarantine id asked for under another tenant: refused, audited
. "$(dirname "$0")/lib.sh"
gw_services
archive_init
# the clock of archived and archivectl: now, moved forward below
echo "$(date +%s)" >"$T/clock"
export AR_TEST_NOW=@$T/clock
sink_start
gw_tenant acme acme.example
gw_tenant other other.example
# rspamd scores the "add header" GTUBE variant 6.0: in this tenant's
# quarantine band [5, 15)
ctl tenant set acme --spam-tag 4 --spam-quarantine 5 --spam-reject 15 >/dev/null
set_conf dispose_interval 1s
archived_start_gw
M=$S/tests/e2e/py/gw_mail.py
RCPT=user@acme.example
FROM=sender@other.test
for n in held expire young; do
	echo "spam-quarantine $T/$n.eml $FROM $RCPT zq${n}marker"
done | python3 "$M" -
# swaks ends the data with CRLF . CRLF: the file is sent without its last
# CRLF, so that what arrives is exactly $T/NAME.eml
for n in held expire young; do head -c -2 "$T/$n.eml" >"$T/$n.wire"; done
send() { gw_send "$T/$1.wire" "$FROM" "$RCPT" --local-interface "$GW_IP_LOCAL_PASS"; }
accepted() { grep -q "^<-  250 2.0.0 Ok: queued as"; }
qlist() { ctl --json quarantine list --tenant "${1:-acme}"; }
# qid MARKER: the quarantine id of the held message with MARKER's subject
qid() {
	qlist | python3 -c 'import json,sys
for q in json.load(sys.stdin):
    if sys.argv[1] in json.dumps(q):
        print(q["id"])' "$1"
}
# qstate ID: its state
qstate() {
	qlist | python3 -c 'import json,sys
for q in json.load(sys.stdin):
    if q["id"] == sys.argv[1]:
        print(q["state"])' "$1"
}
held_n() { [ "$(qlist | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" -ge "$1" ]; }

check "spam in the quarantine band: 250" accepted <<<"$(send held)"
check "... held in the quarantine" wait_until 60 held_n 1
ID=$(qid zqheldmarker)
check "... with an id" test -n "$ID"
check "... archived too (archive_quarantined yes)" wait_objects acme 1
check "... the relay queue is done with it" wait_until 60 grep -q "gateway id=$ID status=done" "$T/archived.log"
check "... not delivered" test "$(sink_count)" -eq 0
qshow() { ctl --json quarantine show --tenant acme "$ID"; }
check "quarantine show: verdict spam, action quarantine" \
    bash -c '"$0" -d "$1" --json quarantine show --tenant acme "$2" |
    grep -q "\"verdict\": *\"spam\""' "$CTL_BIN" "$DATA" "$ID"
ctl quarantine get --tenant acme "$ID" >"$T/held.got"
check "quarantine get: the bytes as received (our Received: first)" \
    python3 - "$T/held.eml" "$T/held.got" <<'PY'
import sys
sent = open(sys.argv[1], "rb").read()
got = open(sys.argv[2], "rb").read()
sys.exit(0 if got.endswith(sent) else 1)
PY

# --- release -------------------------------------------------------------------
check "release asked" ctl quarantine release --tenant acme "$ID"
check "released: delivered" wait_until 120 sink_has 1
check "... state released" wait_until 60 bash -c '[ "$("$0" -d "$1" --json quarantine list --tenant acme | python3 -c "import json,sys
print([q[\"state\"] for q in json.load(sys.stdin) if q[\"id\"] == sys.argv[1]][0])" "$2")" = released ]' "$CTL_BIN" "$DATA" "$ID"
# byte-identical apart from trace headers: the sink's dump starts with its
# X-* lines and its own Received:, then our Received: (and X-Spam-* for
# tagged mail); what follows is the message as sent (LF line ends in the
# dump; smtp-sink adds one empty line at the end)
check "the released message is byte-identical apart from trace headers" \
    python3 - "$T/held.eml" "$(sink_grep zqheldmarker)" <<'PY'
import re, sys
sent = open(sys.argv[1], "rb").read().replace(b"\r\n", b"\n")
dump = open(sys.argv[2], "rb").read()
lines = dump.split(b"\n")
i = 0
while i < len(lines) and lines[i].startswith(b"X-") and b": " in lines[i]:
    i += 1                           # smtp-sink's X-Client-Addr ... X-Rcpt-Args
def skip_field(i):
    i += 1
    while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
        i += 1
    return i
while i < len(lines) and (lines[i].startswith(b"Received:") or
                          lines[i].startswith(b"X-Spam-")):
    i = skip_field(i)                # the sink's and our trace fields
rest = b"\n".join(lines[i:])
if rest.endswith(b"\n\n"):
    rest = rest[:-1]
if rest != sent:
    sys.stderr.write("differs:\n%r\n%r\n" % (rest[:300], sent[:300]))
    sys.exit(1)
PY
check "our Received: is in the released copy" \
    grep -q "(archived gateway) with ESMTP id" "$(sink_grep zqheldmarker)"
out=$(ctl quarantine release --tenant acme "$ID" 2>&1)
check "a second release is refused" test $? -ne 0
check "... saying why" grep -q "released" <<<"$out"
check "the relay queue has nothing left" wait_until 60 \
    bash -c '"$0" -d "$1" --json relay queue | grep -q "\"messages\": *0[,}]"' "$CTL_BIN" "$DATA"
check "delivered exactly once" test "$(sink_count)" -eq 1
check "exactly one delivery logged for the release" \
    test "$(grep -c 'status=delivered' "$T/archived.log")" -eq 1
check "the release is in the tenant's log" \
    bash -c '"$0" -d "$1" --json log --tenant acme | grep -q "release"' "$CTL_BIN" "$DATA"

# --- another tenant's id: refused, audited ---------------------------------------
out=$(ctl quarantine show --tenant other "$ID" 2>&1)
check "another tenant's quarantine id: refused" test $? -ne 0
check "... as unknown (nothing of it shown)" grep -q "no such quarantined message" <<<"$out"
check "... nothing shown" bash -c '! grep -q zqheldmarker <<<"$1"' _ "$out"
out=$(ctl quarantine release --tenant other "$ID" 2>&1)
check "another tenant's id: release refused" test $? -ne 0
check "... audited in that tenant's log" \
    bash -c '"$0" -d "$1" --json log --tenant other | grep -q "quarantine-show-refused"' "$CTL_BIN" "$DATA"
check "... the release attempt too" \
    bash -c '"$0" -d "$1" --json log --tenant other | grep -q "quarantine-release-refused"' "$CTL_BIN" "$DATA"
check "the message stays released in its own tenant" test "$(qstate "$ID")" = released

# --- expiry after 14 days by the jobs thread --------------------------------------
# "expire" held at day 0, "young" at day 2; at day 15 one round of the jobs
# thread removes the first (15 days) and keeps the second (13 days)
advance() {
	echo $(( $(cat "$T/clock") + $1 * 86400 )) >"$T/clock.next" &&
	    mv "$T/clock.next" "$T/clock"
}
check "a second spam message: 250" accepted <<<"$(send expire)"
check "... held" wait_until 60 held_n 2
advance 2
check "two days later a third: 250" accepted <<<"$(send young)"
check "... held" wait_until 60 held_n 3
EID=$(qid zqexpiremarker)
YID=$(qid zqyoungmarker)
check "... with ids" test -n "$EID" -a -n "$YID"
advance 13
expired() { grep -q "job=quarantine status=done expired=[1-9]" "$T/archived.log"; }
check "day 15: the jobs thread removes the 15-day-old one, with a log line" \
    wait_until 120 expired
check "... and keeps the 13-day-old one" test "$(qstate "$YID")" = held
out=$(ctl quarantine get --tenant acme "$EID" 2>&1 >/dev/null)
check "... its message is gone" test $? -ne 0
check "... an entry in the tenant's log" \
    bash -c '"$0" -d "$1" --json log --tenant acme | grep -q "expired"' "$CTL_BIN" "$DATA"
check "... the 15-day-old one is no longer listed" test -z "$(qstate "$EID")"
check "... nor the released one, whose 14 days are over too" test -z "$(qstate "$ID")"
check "nothing more was delivered" test "$(sink_count)" -eq 1
archived_stop
check "no plaintext of the held mail on disk" \
    bash -c '! grep -rqaF -e zqheldmarker -e zqexpiremarker "$0"' "$DATA"
check "verify passes" ctl verify
