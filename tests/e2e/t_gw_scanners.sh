#!/bin/bash
# t_gw_scanners.sh - the gateway when a scanner is down or hangs, through
# the real daemon and the real scanners: clamd stopped, rspamd stopped,
# each stopped with SIGSTOP (slow past gateway_scan_timeout): 451 4.7.1,
# nothing queued, the daemon keeps serving (the journal listener and the
# gateway's own sessions); once the scanner is back, the message sent again
# passes, is delivered once and archived.  A tenant that accepts unscanned
# mail gets it tagged instead.
. "$(dirname "$0")/lib.sh"
gw_services
archive_init
sink_start
gw_tenant acme acme.example
ctl tenant add journal --journal-address j@journal.example >/dev/null
set_conf gateway_scan_timeout 10s
archived_start_gw
M=$S/tests/e2e/py/gw_mail.py
RCPT=user@acme.example
FROM=sender@other.test

for n in clamdown rspamddown clamstop rspamdstop unscanned; do
	echo "clean $T/$n.eml $FROM $RCPT zq${n}marker"
done | python3 "$M" -
printf 'Subject: journal copy\r\n\r\nstill served\r\n' >"$T/journal.eml"

send() { gw_send "$T/$1.eml" "$FROM" "$RCPT" --local-interface "$GW_IP_LOCAL_PASS"; }
tempfailed() { grep -q "^<\*\* 451 4.7.1"; }
accepted() { grep -q "^<-  250 2.0.0 Ok: queued as"; }
delivered_once() { [ "$(sink_grep "zq${1}marker" | wc -l)" -eq 1 ]; }
queue_empty() {
	ctl --json relay queue | grep -q '"messages": *0[,}]'
}
journal_served() {
	swaks --server "127.0.0.1:$SMTP_PORT" --from a@example.org \
	    --to j@journal.example --data "$T/journal.eml" 2>&1 | accepted
}
gateway_greets() {
	swaks --server "127.0.0.1:$GW_PORT" --quit-after EHLO 2>&1 |
	    grep -q "^<-  250"
}
# pids NAME: the daemon and its workers (rspamd forks them)
pids() {
	local p
	p=$(cat "$GW_DIR/pids/$1.pid")
	echo "$p" $(pgrep -P "$p")
}

# --- a scanner stopped -------------------------------------------------------
gw_service_stop clamd
check "clamd stopped: 451 4.7.1" tempfailed <<<"$(send clamdown)"
check "... logged as unscanned by the antivirus" \
    grep -q 'status=unscanned antivirus="clamd' "$T/archived.log"
check "... the journal listener still serves" journal_served
check "clamd back" gw_service_start clamd
check "clamd back: the message sent again is accepted" accepted <<<"$(send clamdown)"

gw_service_stop rspamd
check "rspamd stopped: 451 4.7.1" tempfailed <<<"$(send rspamddown)"
check "... logged as unscanned by the spam filter" \
    grep -q 'status=unscanned antivirus="ok" spam="rspamd' "$T/archived.log"
check "rspamd back" gw_service_start rspamd
check "rspamd back: the message sent again is accepted" accepted <<<"$(send rspamddown)"

# --- a scanner hanging (SIGSTOP): the timeout answers -------------------------
kill -STOP $(pids clamd)
out=$(send clamstop)
check "clamd hanging: 451 4.7.1 after the timeout" tempfailed <<<"$out"
check "... the gateway still greets new sessions" gateway_greets
check "... the journal listener still serves" journal_served
kill -CONT $(pids clamd)
check "clamd resumed: the message sent again is accepted" accepted <<<"$(send clamstop)"

kill -STOP $(pids rspamd)
out=$(send rspamdstop)
check "rspamd hanging: 451 4.7.1 after the timeout" tempfailed <<<"$out"
check "... the gateway still greets new sessions" gateway_greets
kill -CONT $(pids rspamd)
check "rspamd resumed: the message sent again is accepted" accepted <<<"$(send rspamdstop)"
check "both timeouts are logged" \
    test "$(grep -c 'gateway id=.* status=unscanned' "$T/archived.log")" -ge 4

# --- nothing lost, nothing twice ----------------------------------------------
check "the four messages are delivered" wait_until 120 sink_has 4
for n in clamdown rspamddown clamstop rspamdstop; do
	check "$n: delivered exactly once" delivered_once "$n"
done
check "the relay queue is empty (no 451ed message was kept)" wait_until 60 queue_empty
check "the four and the journal copies are archived" wait_objects acme 4
check "the journal copies too" wait_objects journal 1

# --- a tenant that accepts unscanned mail ----------------------------------------
ctl tenant set acme --unscanned accept >/dev/null
gw_service_stop clamd
check "unscanned accepted by the tenant's policy: 250" accepted <<<"$(send unscanned)"
check "... delivered tagged X-Archived-Unscanned" wait_until 120 sink_has 5
check "... with the tag" grep -q "^X-Archived-Unscanned: yes" "$(sink_grep zqunscannedmarker)"
check "... archived with verdict unscanned" wait_objects acme 5
unscanned_meta() { ctl --json list --tenant acme | grep -q '"verdict": *"unscanned"'; }
check "... whose metadata says so" unscanned_meta
archived_stop
check "verify passes" ctl verify
