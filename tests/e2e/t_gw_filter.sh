#!/bin/bash
# t_gw_filter.sh - the filtering gateway's verdicts through the real daemon
# with the real scanners (clamd with the test signatures, rspamd with the
# project's configuration and the test DNS), smtp-sink as the tenant's own
# server:
#   - EICAR in a plain attachment, a ZIP, a nested ZIP and base64 in a
#     forwarded message/rfc822: 554 5.7.1, the virus name logged, never
#     delivered, never archived, nothing of it on disk in plaintext
#   - GTUBE: 550 5.7.1
#   - a DNSBL-listed client (127.0.0.2): spam, with the action its score
#     gives under the default thresholds (tag 6, quarantine 10, reject 15)
#   - SPF fail (a client outside the sender domain's SPF): the symbol kept
#   - DKIM-signed then altered: DMARC p=reject domain 550, p=none domain
#     accepted with R_DKIM_REJECT kept
#   - DMARC p=reject failure: 550 5.7.1
#   - a good DKIM-signed message: delivered with its signature intact,
#     archived with verdict clean
#   - the verdicts in the archive's metadata and searchable (verdict:,
#     quarantined:) through archivectl search
# Client addresses: Linux routes all of 127/8 to lo; gateway-services.sh's
# SPF records list 127.0.0.3 (GW_IP_LOCAL_PASS), not 127.0.0.1, and its
# DNSBL lists 127.0.0.2 (GW_IP_LISTED).
. "$(dirname "$0")/lib.sh"
gw_services
archive_init
sink_start
gw_tenant acme acme.example
archived_start_gw
M=$S/tests/e2e/py/gw_mail.py
RCPT=user@acme.example
PASS=$GW_IP_LOCAL_PASS
FAILIP=$GW_IP_LOCAL_FAIL

# Every message at once (python starts slowly on a loaded machine): NAME
# KIND FROM; the marker of NAME is zq<NAME>marker, its file $T/NAME.eml.
while read -r name kind from; do
	echo "$kind $T/$name.eml $from $RCPT zq${name}marker"
done >"$T/specs" <<'LIST'
eicar eicar sender@other.test
eicarzip eicar-zip sender@other.test
eicarnestedzip eicar-nested-zip sender@other.test
eicarrfc822 eicar-rfc822 sender@other.test
gtube gtube sender@other.test
listed clean sender@other.test
spffail clean sender@other.test
dmarcrej clean sender@reject.test
altrej clean sender@reject.test
altnone clean sender@none.test
good clean sender@reject.test
clean clean sender@other.test
LIST
python3 "$M" - <"$T/specs"
# DKIM: good signed by reject.test; altrej and altnone signed, then a word
# of the body changed in transit
"$S/scripts/dkim-sign" "$GW_DIR/env" reject.test <"$T/good.eml" >"$T/x" &&
    mv "$T/x" "$T/good.eml"
"$S/scripts/dkim-sign" "$GW_DIR/env" reject.test <"$T/altrej.eml" |
    sed 's/as promised/as agreed/' >"$T/x" && mv "$T/x" "$T/altrej.eml"
"$S/scripts/dkim-sign" "$GW_DIR/env" none.test <"$T/altnone.eml" |
    sed 's/as promised/as agreed/' >"$T/x" && mv "$T/x" "$T/altnone.eml"

# send NAME FROM CLIENT-IP: its transcript in $T/NAME.out
send() {
	gw_send "$T/$1.eml" "$2" "$RCPT" --local-interface "$3" >"$T/$1.out"
}
accepted() { grep -q "^<-  250 2.0.0 Ok: queued as" "$T/$1.out"; }
refused() { grep -q "^<\*\* $2 $3" "$T/$1.out"; }
delivered() { [ -n "$(sink_grep "zq${1}marker")" ]; }
not_delivered() { ! delivered "$1"; }

# --- viruses ----------------------------------------------------------------
for n in eicar eicarzip eicarnestedzip eicarrfc822; do
	send "$n" sender@other.test "$PASS"
	check "$n: refused 554 5.7.1" refused "$n" 554 5.7.1
done
check "every virus is logged with its name (4 times)" \
    test "$(grep -c 'verdict=virus action=reject reply=554.*virus_name="Archived.Test.EICAR' "$T/archived.log")" -eq 4
check "... each scanned from the copy kept in memory (gateway_scan_memory)" \
    test "$(grep -c 'verdict=virus action=reject reply=554.* scanned_from=memory ' "$T/archived.log")" -eq 4

# --- spam, DNSBL, SPF, DKIM, DMARC ------------------------------------------
send gtube sender@other.test "$PASS"
check "GTUBE: refused 550 5.7.1" refused gtube 550 5.7.1
send listed sender@other.test "$GW_IP_LISTED"
check "DNSBL-listed client: accepted" accepted listed
send spffail sender@other.test "$FAILIP"
check "SPF fail: accepted (no DMARC policy, low score)" accepted spffail
send dmarcrej sender@reject.test "$FAILIP"
check "DMARC p=reject failure: refused 550 5.7.1" refused dmarcrej 550 5.7.1
check "... with the DMARC reason" grep -q "DMARC policy" "$T/dmarcrej.out"
send altrej sender@reject.test "$FAILIP"
check "DKIM-signed, altered, p=reject domain: refused 550 5.7.1" refused altrej 550 5.7.1
send altnone sender@none.test "$FAILIP"
check "DKIM-signed, altered, p=none domain: accepted" accepted altnone
send good sender@reject.test "$FAILIP"
check "good DKIM-signed message (p=reject domain, SPF fail): accepted" accepted good
send clean sender@other.test "$PASS"
check "clean message: accepted" accepted clean

# --- archived, with the verdicts in the metadata -----------------------------
check "the five accepted messages are archived" wait_objects acme 5
check "and only they" test "$(objects_of acme)" -eq 5
# one line per archived message: NAME source verdict action score-band
# scanned symbols... (python once)
ctl --json list --tenant acme | python3 -c 'import json, re, sys
for o in json.load(sys.stdin):
    m = o["meta"]
    n = re.search(r"zq(\w+)marker", m.get("subject") or "")
    g = m.get("gateway") or {}
    s = g.get("score")
    band = ("none" if s is None else "reject" if s >= 15 else
            "quarantine" if s >= 10 else "tag" if s >= 6 else "deliver")
    print(n.group(1) if n else "?", m.get("source"), g.get("verdict"),
          g.get("action"), band, g.get("scanned"),
          " ".join(sorted(g.get("symbols") or {})),
          " ".join(g.get("reasons") or []))' >"$T/meta"
cat "$T/meta"
# meta NAME WORDS...: NAME's line has every one of WORDS (as whole words)
meta() {
	local line w
	line=" $(grep "^$1 " "$T/meta") "
	shift
	for w in "$@"; do [[ $line == *" $w "* ]] || return 1; done
}
check "clean: source gateway, verdict clean, deliver, scanned" \
    meta clean gateway clean deliver True
check "listed: verdict spam, the DNSBL symbol and the score reason kept" \
    meta listed gateway spam RBL_ARCHIVED_TEST_LISTED
check "listed: its action is the one its score's band gives" \
    bash -c 'set -- $(grep "^listed " "$1"); [ "$4" = "$5" ]' _ "$T/meta"
check "listed: the reason names the score" grep -q "^listed .* spam:score=" "$T/meta"
check "spffail: R_SPF_FAIL kept, delivered" meta spffail clean deliver R_SPF_FAIL
check "altnone: R_DKIM_REJECT kept" meta altnone R_DKIM_REJECT
check "good: DKIM and DMARC pass, verdict clean" \
    meta good clean deliver R_DKIM_ALLOW DMARC_POLICY_ALLOW
LISTED_ACTION=$(awk '$1 == "listed" { print $4 }' "$T/meta")

# --- delivered ---------------------------------------------------------------
ndeliver=4
[ "$LISTED_ACTION" = quarantine ] || ndeliver=5
check "the $ndeliver accepted and not quarantined are delivered" \
    wait_until 120 sink_has $ndeliver
for n in spffail altnone good clean; do
	check "$n: delivered" delivered "$n"
done
if [ "$LISTED_ACTION" = quarantine ]; then
	check "the DNSBL-listed one is quarantined, not delivered" not_delivered listed
	check "... and listed in the quarantine" \
	    test "$(ctl --json quarantine list --tenant acme | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 1
else
	check "the DNSBL-listed one is delivered tagged X-Spam-Flag: YES" \
	    grep -q "^X-Spam-Flag: YES" "$(sink_grep zqlistedmarker)"
fi
check "the clean one is delivered untagged" \
    bash -c '! grep -q "^X-Spam" "$1"' _ "$(sink_grep zqcleanmarker)"
check "the good one arrives with its DKIM signature" \
    grep -q "^DKIM-Signature: .*d=reject.test" "$(sink_grep zqgoodmarker)"
check "our trace header is added" \
    grep -q "(archived gateway) with ESMTP id" "$(sink_grep zqcleanmarker)"
for n in eicar eicarzip eicarnestedzip eicarrfc822 gtube dmarcrej altrej; do
	check "$n: never delivered" not_delivered "$n"
done

# --- search -----------------------------------------------------------------
search_total() {
	ctl --json search --tenant acme "$1" | sed -n 's/.*"total": *\([0-9]*\).*/\1/p'
}
indexed() { [ "$(search_total 'verdict:spam OR verdict:clean')" = 5 ]; }
check "the index catches up" wait_until 300 indexed
check "search verdict:spam finds the DNSBL-listed one" \
    test "$(search_total 'verdict:spam zqlistedmarker')" = 1
check "search verdict:spam: only it" test "$(search_total 'verdict:spam')" = 1
check "search verdict:clean finds the other four" \
    test "$(search_total 'verdict:clean')" = 4
check "search verdict:virus finds nothing (refused, never archived)" \
    test "$(search_total 'verdict:virus')" = 0
nq=0
[ "$LISTED_ACTION" = quarantine ] && nq=1
check "search quarantined:yes finds $nq" \
    test "$(search_total 'quarantined:yes')" = $nq
check "search quarantined:no finds $((5 - nq))" \
    test "$(search_total 'quarantined:no')" = $((5 - nq))
bogus() {
	local out
	! out=$(ctl search --tenant acme "verdict:bogus" 2>&1) &&
	    grep -q "column 9 (byte 8): expected clean, spam" <<<"$out"
}
check "search verdict:bogus: a clear error with its position" bogus

# --- nothing in plaintext on disk --------------------------------------------
# the markers of every message (accepted or refused), the EICAR string and
# its base64 form: none of it in the data directory (the relay queue, the
# ingest spool, the store, the quarantine, the index)
eicar=$(python3 -c 'print(bytes.fromhex("58354f2150254041505b345c505a58353428505e2937434329377d2445494341522d5354414e444152442d414e544956495255532d544553542d46494c452124482b482a").decode())')
eicar64=$(printf '%s' "$eicar" | base64 -w0 | cut -c1-40)
archived_stop
for w in zqcleanmarker zqlistedmarker zqgoodmarker zqeicarmarker \
    zqeicarzipmarker zqeicarnestedzipmarker zqeicarrfc822marker \
    zqgtubemarker "$eicar" "$eicar64" "Quarterly figures" \
    "user@acme.example" "sender@other.test"; do
	check "not on disk in plaintext: ${w:0:20}" \
	    bash -c '! grep -rqaF -- "$1" "$2"' _ "$w" "$DATA"
done
out=$(ctl verify 2>&1)
check "verify passes" test $? -eq 0
check "verify: no warning but the unsigned log entries" \
    bash -c '! grep "^warning" <<<"$1" | grep -v "after the last signed checkpoint"' _ "$out"
