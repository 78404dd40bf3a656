#!/bin/bash
# t_ingest_defer.sh - receiving first (pipeline_defer): while SMTP mail
# keeps arriving the pipeline waits, so a burst is acknowledged at the
# spool's pace; once the stream stops everything is drained; and no entry
# waits longer than pipeline_defer seconds: with a short setting draining
# starts while the stream still runs.  Real archived, Postfix's smtp-source.
. "$(dirname "$0")/lib.sh"
export PATH="$PATH:/usr/sbin:/sbin"   # smtp-source lives in /usr/sbin
archive_init
ctl tenant add acme --journal-address journal@acme.example >/dev/null

# committed: pipeline log lines of entries committed to the catalog so far
committed() { grep -c "status=\(stored\|duplicate\|replayed\)" "$T/archived.log"; }

# stream SECONDS: one smtp-source, 4 sessions, sending without a pause
# for SECONDS; DURING: entries committed 0.3 s before it stops; SENT:
# messages acknowledged (spooled) in all
stream() {
	timeout "$1" smtp-source -s 4 -m 1000000 -l 2000 \
	    -t journal@acme.example -f sender@example.org \
	    127.0.0.1:$SMTP_PORT >/dev/null 2>&1 &
	local pid=$!
	sleep "$(($1 - 1)).7"
	DURING=$(committed)
	wait $pid
	SENT=$(grep -c "status=spooled" "$T/archived.log")
}

# spooled: entries waiting in the spool (archivectl queue)
spooled() { ctl --json queue | python3 -c 'import json,sys
print(json.load(sys.stdin)["count"])'; }
# wait_drained N: until the spool is empty and N entries are committed
# (at most 60 s)
wait_drained() {
	local i
	for i in $(seq 1 600); do
		[ "$(spooled)" = 0 ] && [ "$(committed)" -ge "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

set_conf pipeline_defer 60
archived_start
stream 4
check "the stream was received (250 for $SENT messages)" [ "$SENT" -ge 40 ]
check "pipeline_defer 60: little committed while mail kept arriving ($DURING of $SENT)" \
    [ "$DURING" -lt $((SENT / 2)) ]
check "everything drained once the stream stopped" wait_drained "$SENT"
archived_stop

set_conf pipeline_defer 1
archived_start
stream 5
check "pipeline_defer 1: draining starts while the stream goes on ($DURING of $SENT)" \
    [ "$DURING" -ge $((SENT / 4)) ]
check "everything drained once the stream stopped" wait_drained "$SENT"
archived_stop

set_conf pipeline_defer 0
archived_start
stream 3
check "pipeline_defer 0: drained as it arrives ($DURING of $SENT)" \
    [ "$DURING" -ge $((SENT / 4)) ]
check "everything drained once the stream stopped" wait_drained "$SENT"
archived_stop
