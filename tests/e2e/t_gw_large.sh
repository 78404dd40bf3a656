#!/bin/bash
# t_gw_large.sh - 100 MB messages through the gateway's listener, with the
# real clamd (StreamMaxLength 100M) and rspamd (max_message 100Mb), the
# tenant's size limit at 100,000,000 bytes:
#   - 99,990,000 bytes (just under): scanned by both (rspamd logs its
#     size, the verdict says scanned), 250, delivered and archived whole;
#     archived's peak RSS (VmHWM) stays within a bound of its RSS before
#   - the same size with clamd's test signature in a last part: 554 (the
#     whole 100 MB went through clamd)
#   - 100,010,000 bytes (just over): 552 5.3.4 at the end of DATA, nothing
#     queued, stored, delivered or archived
#   - SIZE= above the tenant's limit: 552 5.3.4 at RCPT TO; above
#     smtp_max_message_size: at MAIL FROM
#   - 110,000,000 bytes, no tenant limit: larger than both scanners take
#     (clamd refuses past StreamMaxLength, rspamd past its max_message;
#     archived's rspamd_max_size is set above it so that rspamd itself
#     refuses): never passed as clean: 451 4.7.1 with status=unscanned by
#     default, accepted tagged X-Archived-Unscanned and archived with
#     verdict unscanned when the tenant accepts unscanned mail.
. "$(dirname "$0")/lib.sh"
gw_rspamd_test_conf 100Mb
gw_services
archive_init
sink_start
gw_tenant acme acme.example
# generous bounds: a 100 MB scan on a loaded 2-core machine with the
# sanitizer build takes a while; these only matter if something hangs
set_conf gateway_scan_timeout 600s
set_conf smtp_timeout_data_end 30m
set_conf rspamd_max_size 150M
archived_start_gw
M=$S/tests/e2e/py/gw_mail.py
RCPT=user@acme.example
FROM=sender@other.test
LIMIT=100000000
UNDER=99990000
OVER=100010000
BEYOND=110000000
for spec in "sized-$UNDER under" "sized-virus-$UNDER virus" \
    "sized-$OVER over" "sized-$BEYOND beyond"; do
	set -- $spec
	echo "$1 $T/$2.eml $FROM $RCPT zq${2}marker"
done | GW_VIRUS_MARKER=$GW_VIRUS_MARKER python3 "$M" -
check "the messages are made (sizes exact)" \
    test "$(stat -c %s "$T/under.eml" "$T/over.eml" "$T/beyond.eml" | tr '\n' ' ')" = "$UNDER $OVER $BEYOND "
check "tenant limit $LIMIT bytes" ctl tenant set acme --max-size $LIMIT

# send NAME: through the gateway from an SPF-listed address; the client's
# lines (rcpt/data CODE ...) in $T/NAME.out
send() {
	GW_SRC=$GW_IP_LOCAL_PASS GW_TIMEOUT=3600 python3 \
	    "$S/tests/e2e/py/gw_smtp.py" send "$GW_PORT" "$FROM" "$RCPT" \
	    "$T/$1.eml" >"$T/$1.out" 2>&1
	cat "$T/$1.out"
}
answered() { grep -q "^data $2 ${3:-}" "$T/$1.out"; }
queue_empty() { ctl --json relay queue | grep -q '"messages": *0[,}]'; }
kb() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$ARCHIVED_PID/status"; }
# the gateway's verdict line of a message of SIZE bytes
verdict_line() { grep "gateway id=.* size=$1 " "$T/archived.log" | tail -1; }

# --- just under the limit: scanned, delivered, archived, memory bounded --------
rss0=$(kb VmRSS)
hwm0=$(kb VmHWM)
t0=$SECONDS
send under
check "$UNDER bytes: 250" answered under 250
echo "sent and scanned in $((SECONDS - t0)) s: $(verdict_line $UNDER)"
check "... verdict clean, delivered" \
    bash -c 'grep -q "verdict=clean action=deliver reply=250" <<<"$1"' _ "$(verdict_line $UNDER)"
check "... scanned from the sealed spool (over gateway_scan_memory_message)" \
    bash -c 'grep -q " scanned_from=spool " <<<"$1"' _ "$(verdict_line $UNDER)"
check "... no scanner skipped it" \
    bash -c '! grep -q "status=unscanned" "$1"' _ "$T/archived.log"
check "... rspamd scanned all $UNDER bytes" \
    grep -q "rspamd_message_parse: loaded message.* size: $UNDER;" "$GW_DIR/rspamd/log/rspamd.log"
check "... delivered whole" wait_until 600 sink_has 1
f=$(sink_grep zqundermarker)
# the sink's dump: smtp-sink's lines and our Received:, then the message
# (LF line ends in the dump, one empty line added at its end)
ends_with_sent() {
	python3 - "$1" "$2" <<'PY'
import sys
sent = open(sys.argv[1], "rb").read().replace(b"\r\n", b"\n")
dump = open(sys.argv[2], "rb").read()
sys.exit(0 if dump[:-1].endswith(b"\n" + sent) else 1)
PY
}
check "... the delivered copy ends with the message as sent" \
    ends_with_sent "$T/under.eml" "$f"
check "... archived" wait_objects acme 1
meta_of() {   # meta_of MARKER: "verdict action scanned" of its object
	ctl --json list --tenant acme | python3 -c 'import json, sys
for o in json.load(sys.stdin):
    m = o["meta"]
    if sys.argv[1] in (m.get("subject") or ""):
        g = m.get("gateway") or {}
        print(g.get("verdict"), g.get("action"), g.get("scanned"),
              "ARCHIVED_TEST_SCORE" in (g.get("symbols") or {}),
              len(g.get("symbols") or {}) > 0)' "$1"
}
check "... with verdict clean, scanned, rspamd's symbols kept" \
    test "$(meta_of zqundermarker)" = "clean deliver True False True"
id=$(ctl --json list --tenant acme | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
check "... the archived copy is the message as sent" \
    cmp -s <(ctl get --tenant acme "$id") "$T/under.eml"
check "the relay queue empties" wait_until 300 queue_empty
search_total() {
	ctl --json search --tenant acme "$1" | sed -n 's/.*"total": *\([0-9]*\).*/\1/p'
}
indexed() { [ "$(search_total zqundermarker)" = 1 ]; }
check "... and it is indexed" wait_until 600 indexed
# Peak RSS (VmHWM) against the RSS before the message, after all that
# archived did with it: received into the relay queue, scanned by clamd,
# rspamd and the attachment walk, delivered, archived, indexed.  Measured
# here (sanitizer build, 2 cores shared): +9 MB, and +18 MB after all
# five messages of this test.  The bound, 64 MB, leaves room for allocator
# and thread-stack noise and stays below what one copy of the message in
# memory would cost alone (95 MB): everything streams it in 64 KiB chunks
# from the sealed spool.
BOUND=64
hwm1=$(kb VmHWM)
rise=$(((hwm1 - rss0) / 1024))
echo "archived RSS before: $((rss0 / 1024)) MB (peak so far $((hwm0 / 1024)) MB); peak after: $((hwm1 / 1024)) MB: +$rise MB for a $UNDER-byte message"
check "peak RSS rise $rise MB < $BOUND MB for a 100 MB message" test "$rise" -lt $BOUND

# --- a virus at the end of 100 MB: the whole message goes through clamd ------------
send virus
check "$UNDER bytes with the test signature at the end: 554 5.7.1" answered virus 554 5.7.1
check "... logged with its name" \
    bash -c 'grep -q "verdict=virus action=reject reply=554 .*virus_name=\"Archived.Test.Marker" <<<"$1"' _ "$(verdict_line $UNDER)"

# --- just over the limit: 552 5.3.4, nothing stored ---------------------------
du0=$(du -sk "$DATA" | cut -f1)
send over
check "$OVER bytes: 552 5.3.4 at the end of DATA" answered over 552 5.3.4
check "... the relay queue holds nothing" queue_empty
check "... nothing archived" test "$(objects_of acme)" -eq 1
check "... nothing delivered" test "$(sink_count)" -eq 1
du1=$(du -sk "$DATA" | cut -f1)
echo "data directory: $du0 KB before, $du1 KB after"
check "... nothing of it kept on disk (data directory grew $((du1 - du0)) KB)" \
    test $((du1 - du0)) -lt 10240
# declared SIZE=: refused before a byte of DATA
sizecmd() {   # sizecmd SIZE: "MAIL-CODE RCPT-CODE"
	python3 - "$GW_PORT" "$1" <<'PY'
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=60)
s.ehlo("client.test")
m = s.docmd("MAIL", "FROM:<sender@other.test> SIZE=" + sys.argv[2])
r = s.docmd("RCPT", "TO:<user@acme.example>")[0] if m[0] == 250 else "-"
print(m[0], r)
s.quit()
PY
}
check "SIZE=$OVER (over the tenant's limit): 552 at RCPT TO" \
    test "$(sizecmd $OVER)" = "250 552"
check "SIZE=$UNDER: 250 at RCPT TO" test "$(sizecmd $UNDER)" = "250 250"
check "SIZE=300000000 (over smtp_max_message_size 200M): 552 at MAIL FROM" \
    test "$(sizecmd 300000000)" = "552 -"

# --- larger than the scanners take: never clean ---------------------------------
check "no tenant limit (the SMTP limit, 200M)" ctl tenant set acme --max-size 0
send beyond
check "$BEYOND bytes, over clamd's and rspamd's limits: 451 4.7.1" \
    answered beyond 451 4.7.1
check "... logged unscanned by both" \
    grep -q 'status=unscanned antivirus="clamd too_large" spam="rspamd ' "$T/archived.log"
check "... clamd said why" grep -q "INSTREAM: Size limit reached" "$GW_DIR/clamd/clamd.log"
check "... rspamd said why" grep -q "Request entity too large: $BEYOND" "$GW_DIR/rspamd/log/rspamd.log"
check "... nothing queued" queue_empty
check "... nothing archived" test "$(objects_of acme)" -eq 1

ctl tenant set acme --unscanned accept >/dev/null
send beyond
check "the tenant accepts unscanned mail: 250" answered beyond 250
check "... delivered" wait_until 600 sink_has 2
check "... tagged X-Archived-Unscanned" \
    grep -q "^X-Archived-Unscanned: yes" "$(sink_grep zqbeyondmarker)"
check "... archived" wait_objects acme 2
check "... with verdict unscanned, not scanned (never clean)" \
    test "$(meta_of zqbeyondmarker)" = "unscanned tag False False False"
check "the relay queue empties" wait_until 300 queue_empty
hwm2=$(kb VmHWM)
rise=$(((hwm2 - rss0) / 1024))
echo "archived peak RSS after all five messages: $((hwm2 / 1024)) MB: +$rise MB"
check "peak RSS rise after all five $rise MB < $BOUND MB" test "$rise" -lt $BOUND
check "archived is still running" kill -0 "$ARCHIVED_PID"
archived_stop
check "verify passes" ctl verify
