#!/bin/bash
# t_ingest_backlog.sh - a spool backlog larger than any list the pipeline
# ever kept (9,000 entries; the drain used to stop for good above 8,192):
# spooled with the drain off (pipeline_workers = 0), then drained to zero
# by a restarted archived, every entry committed once.  Back-pressure:
# beyond spool_max_entries, and beyond spool_max_age, MAIL FROM gets
# 451 4.3.2 (logged), and mail is accepted again once the drain caught
# up; archivectl queue warns past spool_warn_age; past index_max_lag (the
# search index behind), the same until the index caught up.  Real archived,
# Postfix's smtp-source, swaks.
. "$(dirname "$0")/lib.sh"
export PATH="$PATH:/usr/sbin:/sbin"   # smtp-source lives in /usr/sbin
N=9000
archive_init
ctl tenant add acme --journal-address journal@acme.example >/dev/null

committed() { grep -c "status=\(stored\|duplicate\|replayed\)" "$T/archived.log"; }
spooled() { ctl --json queue --limit 0 | python3 -c 'import json,sys
print(json.load(sys.stdin)["count"])'; }
# swaks_reply: the reply to MAIL FROM of one message, e.g. "250" or "451 4.3.2"
swaks_mail() {
	swaks --server 127.0.0.1:$SMTP_PORT --to journal@acme.example \
	    --from sender@example.org --body "backlog probe $RANDOM" \
	    --quit-after MAIL 2>&1 | sed -n 's/^<\** *\(\(250\|4[0-9][0-9]\)\( [0-9.]*\)\?\).*/\1/p' | tail -1
}
swaks_send() {
	swaks --server 127.0.0.1:$SMTP_PORT --to journal@acme.example \
	    --from sender@example.org --body "backlog probe $RANDOM" 2>&1 |
	    grep -q "<-  250 2.0.0 Ok: queued"
}
queue_is() { [ "$(spooled)" = "$1" ]; }

# 1. the drain off: N entries spooled, the limit reached exactly there
set_conf pipeline_workers 0
set_conf spool_max_entries $N
set_conf spool_warn_age 1s
archived_start
smtp-source -s 8 -m $N -l 1024 -t journal@acme.example \
    -f sender@example.org 127.0.0.1:$SMTP_PORT >/dev/null 2>&1
check "smtp-source: $N messages acknowledged" \
    [ "$(grep -c "status=spooled" "$T/archived.log")" -eq $N ]
check "archivectl queue counts $N waiting" queue_is $N
check "spool_max_entries reached: MAIL FROM gets 451 4.3.2" \
    [ "$(swaks_mail)" = "451 4.3.2" ]
check "the back-pressure is logged" \
    grep -q "status=backpressure limit=entries waiting=$N" "$T/archived.log"
old_enough() { ctl --json queue --limit 0 | python3 -c 'import json,sys
sys.exit(0 if json.load(sys.stdin)["oldest_age_seconds"] >= 2 else 1)'; }
wait_until 30 old_enough
check "archivectl queue warns: the drain is not keeping up" \
    sh -c "'$CTL_BIN' -d '$DATA' queue | grep -q '^WARNING: the oldest message has waited'"
check "archivectl queue --json carries the warning" \
    sh -c "'$CTL_BIN' -d '$DATA' --json queue | python3 -c 'import json,sys
sys.exit(0 if \"not keeping up\" in json.load(sys.stdin)[\"warning\"] else 1)'"
check "archivectl queue lists the oldest 100 by default" \
    [ "$(ctl --json queue | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["entries"]))')" = 100 ]
archived_stop

# 2. the drain on: everything committed once, the spool empty, mail
# accepted again
set_conf pipeline_workers 8
set_conf index_warn_age 1s
archived_start
check "the backlog drains to zero" wait_until 600 queue_is 0
check "every entry committed once ($N)" [ "$(committed)" -eq $N ]
check "a backlog line was logged while it drained" \
    grep -q "pipeline status=backlog waiting=" "$T/archived.log"
# the index follows in turns of at most 4,096 log entries ($N > that),
# each logged, and says it lags while its oldest change is over 1 s old
check "the indexer logs its turns (more=yes while a backlog remains)" \
    wait_until 600 grep -q "job=index indexed=[0-9]* .* more=yes" "$T/archived.log"
check "the index lag is logged (index_warn_age 1s)" \
    wait_until 600 grep -q "job=index status=lagging unindexed=[1-9]" "$T/archived.log"
check "no spool file left but the lock" \
    [ -z "$(find "$DATA/spool" -type f ! -name lock)" ]
check "mail is accepted again" swaks_send
check "... and drained" wait_until 120 queue_is 0
archived_stop

# 3. spool_max_age: an entry waiting longer gets the next MAIL FROM a 451
set_conf pipeline_workers 0
set_conf spool_max_entries 0
set_conf spool_max_age 2s
archived_start
check "under the age limit: accepted" swaks_send
wait_until 30 old_enough
check "spool_max_age passed: MAIL FROM gets 451 4.3.2" \
    [ "$(swaks_mail)" = "451 4.3.2" ]
check "the back-pressure is logged (age)" \
    grep -q "status=backpressure limit=age" "$T/archived.log"
archived_stop
set_conf pipeline_workers 8
archived_start
check "drained after the restart" wait_until 120 queue_is 0
check "accepted again" swaks_send
archived_stop

# 4. index_max_lag: while the search index cannot follow (its shard for
# 2031 cannot be opened: a directory stands where the file goes), the
# oldest change it has not indexed ages past the limit and MAIL FROM gets
# 451 4.3.2, logged; once it can, it catches up and mail is accepted again
set_conf spool_max_age 0
set_conf index_max_lag 2s
tdir=$(find "$DATA/index" -mindepth 1 -maxdepth 1 -type d | head -1)
check "the tenant's index directory is there" [ -n "$tdir" ]
mkdir "$tdir/2031.db"
archived_start
check "accepted while the index keeps up" swaks_send
swaks --server 127.0.0.1:$SMTP_PORT --to journal@acme.example \
    --from sender@example.org --header "Date: Wed, 01 Jan 2031 10:00:00 +0000" \
    --body "dated 2031" 2>&1 | grep -q "<-  250 2.0.0 Ok: queued"
check "a message dated 2031 accepted" [ $? -eq 0 ]
index_refuses() { [ "$(swaks_mail)" = "451 4.3.2" ]; }
check "its index cannot follow: past index_max_lag, MAIL FROM gets 451 4.3.2" \
    wait_until 120 index_refuses
check "the back-pressure is logged (index_lag)" \
    grep -q "status=backpressure limit=index_lag index_lag_s=[0-9]* limit_s=2" "$T/archived.log"
rmdir "$tdir/2031.db"
check "the index catches up, and mail is accepted again" wait_until 120 swaks_send
check "... and the 2031 message is in its own shard" [ -f "$tdir/2031.db" ]
archived_stop
