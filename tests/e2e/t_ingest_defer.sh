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

# stream SECONDS: smtp-source batches, 4 sessions, until SECONDS passed;
# meanwhile samples how many entries were committed (DURING, the last
# sample) and how many messages were sent (SENT)
stream() {
	local end=$((SECONDS + $1))
	SENT=0
	while [ $SECONDS -lt $end ]; do
		smtp-source -s 4 -m 100 -l 2000 -t journal@acme.example \
		    -f sender@example.org 127.0.0.1:$SMTP_PORT >/dev/null 2>&1 ||
		    return 1
		SENT=$((SENT + 100))
		DURING=$(committed)
	done
}

# spooled: entries waiting in the spool (archivectl queue)
spooled() { ctl --json queue | python3 -c 'import json,sys
print(json.load(sys.stdin)["count"])'; }
wait_drained() {
	local i
	for i in $(seq 1 300); do
		[ "$(spooled)" = 0 ] && [ "$(committed)" -ge "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

set_conf pipeline_defer 60
archived_start
stream 4
check "the stream was received (250 for $SENT messages)" [ "$SENT" -ge 400 ]
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
