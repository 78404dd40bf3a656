#!/bin/bash
# t_gw_bands.sh - rspamd's score against the tenant's default thresholds
# (tag 6, quarantine 10, reject 15), with the real rspamd: the tests' rule
# (tests/e2e/rspamd/rspamd.local.lua, gw_rspamd_test_conf) adds the score a
# message asks for in "X-Archived-Test-Score", rspamd's own rules the rest
# (a few tenths for a plain message from an SPF-listed client):
#   - 3: clean, delivered untagged
#   - 8 (the tag band): 250, delivered with X-Spam-Flag: YES, X-Spam-Score
#     and X-Spam-Status (docs/gateway.md), the subject unchanged; archived
#     with verdict spam, action tag, the score's reason and the symbol;
#     found by verdict:spam
#   - 12: quarantined, not delivered
#   - 16: 550 5.7.1, never delivered nor archived
. "$(dirname "$0")/lib.sh"
gw_rspamd_test_conf
gw_services
archive_init
sink_start
gw_tenant acme acme.example
archived_start_gw
M=$S/tests/e2e/py/gw_mail.py
RCPT=user@acme.example
FROM=sender@other.test
for n in 3 8 12 16; do
	echo "score-$n $T/s$n.eml $FROM $RCPT zqs${n}marker"
done | python3 "$M" -
send() {
	gw_send "$T/$1.eml" "$FROM" "$RCPT" --local-interface "$GW_IP_LOCAL_PASS" >"$T/$1.out"
}
answered() { grep -qE "^<(- |\*\*) $2 $3" "$T/$1.out"; }
for n in 3 8 12 16; do send "s$n"; done
check "score 3: 250" answered s3 250 2.0.0
check "score 8: 250" answered s8 250 2.0.0
check "score 12: 250 (quarantined)" answered s12 250 2.0.0
check "score 16: 550 5.7.1" answered s16 550 5.7.1
check "the tag band is logged: verdict spam, action tag" \
    grep -q "gateway id=.* verdict=spam action=tag reply=250 score=7\.[0-9]* " "$T/archived.log"

# --- archived, with the verdicts ---------------------------------------------------
check "the three accepted are archived" wait_objects acme 3
ctl --json list --tenant acme | python3 -c 'import json, re, sys
for o in json.load(sys.stdin):
    m = o["meta"]
    n = re.search(r"zq(\w+)marker", m.get("subject") or "")
    g = m.get("gateway") or {}
    print(n.group(1) if n else "?", g.get("verdict"), g.get("action"),
          g.get("score"), g.get("scanned"),
          (g.get("symbols") or {}).get("ARCHIVED_TEST_SCORE"),
          " ".join(g.get("reasons") or []))' | sort >"$T/meta"
cat "$T/meta"
band() {   # band NAME VERDICT ACTION LOW HIGH: its line, its score in [LOW, HIGH)
	awk -v n="$1" -v v="$2" -v a="$3" -v lo="$4" -v hi="$5" '
	    $1 == n && $2 == v && $3 == a && $4 >= lo && $4 < hi &&
	    $5 == "True" { ok = 1 } END { exit !ok }' "$T/meta"
}
check "score 3: verdict clean, deliver, score below 6" band s3 clean deliver 0 6
check "score 8: verdict spam, tag, score in [6, 10)" band s8 spam tag 6 10
check "score 12: verdict spam, quarantine, score in [10, 15)" band s12 spam quarantine 10 15
check "score 8: the test symbol with its score kept" \
    grep -q "^s8 .* 8\.0 spam:score=7\.[0-9]*>=6\.00" "$T/meta"
check "score 16: not archived" bash -c '! grep -q "^s16 " "$1"' _ "$T/meta"

# --- delivered ------------------------------------------------------------------------
check "the two to deliver are delivered" wait_until 120 sink_has 2
f8=$(sink_grep zqs8marker)
check "score 8: delivered with X-Spam-Flag: YES" grep -q "^X-Spam-Flag: YES" "$f8"
check "... X-Spam-Score: its score" grep -qE "^X-Spam-Score: 7\.[0-9]{2}$" "$f8"
check "... X-Spam-Status: Yes, score=" grep -qE "^X-Spam-Status: Yes, score=7\.[0-9]{2}$" "$f8"
check "... the fields before the message, after our Received:" python3 - "$f8" <<'PY'
import sys
lines = open(sys.argv[1], "rb").read().split(b"\n")
ours = next(i for i, l in enumerate(lines) if b"(archived gateway)" in l)
flag = lines.index(b"X-Spam-Flag: YES")
frm = next(i for i, l in enumerate(lines) if l.startswith(b"From: "))
sys.exit(0 if ours < flag < frm else 1)
PY
check "... the subject as sent" grep -q "^Subject: Newsletter zqs8marker$" "$f8"
check "score 3: delivered untagged" \
    bash -c '! grep -q "^X-Spam" "$1"' _ "$(sink_grep zqs3marker)"
check "score 12: not delivered (quarantined)" test -z "$(sink_grep zqs12marker)"
check "... in the quarantine" \
    test "$(ctl --json quarantine list --tenant acme | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 1
check "score 16: never delivered" test -z "$(sink_grep zqs16marker)"

# --- search -------------------------------------------------------------------------
search_total() {
	ctl --json search --tenant acme "$1" | sed -n 's/.*"total": *\([0-9]*\).*/\1/p'
}
indexed() { [ "$(search_total 'verdict:spam OR verdict:clean')" = 3 ]; }
check "the index catches up" wait_until 300 indexed
check "verdict:spam finds the tagged one" test "$(search_total 'verdict:spam zqs8marker')" = 1
check "verdict:spam quarantined:no: only it" test "$(search_total 'verdict:spam quarantined:no')" = 1
archived_stop
check "verify passes" ctl verify
