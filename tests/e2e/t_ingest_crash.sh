#!/bin/bash
# t_ingest_crash.sh - thousands of messages over several connections while
# archived is killed with SIGKILL at random moments and restarted: every
# message that received 250 is in the archive exactly once, no spool file
# is left once drained, and verify passes.
. "$(dirname "$0")/lib.sh"
archive_init
ctl tenant add acme --journal-address journal@acme.example >/dev/null
COUNT=${AR_CRASH_COUNT:-2000}
archived_start
echo "$SMTP_PORT" >"$T/port"
python3 "$S/tests/e2e/py/smtp_stream.py" "$T/port" journal@acme.example \
    "$COUNT" 8 1800 "$T/acked" >"$T/stream.out" 2>&1 &
client=$!
for round in 1 2 3 4 5; do
	sleep "$(python3 -c 'import random; print(round(random.uniform(0.5, 2.0), 2))')"
	kill -KILL "$ARCHIVED_PID"; wait "$ARCHIVED_PID" 2>/dev/null
	echo "round $round: killed archived"
	archived_start
	echo "$SMTP_PORT" >"$T/port"
done
wait $client
cat "$T/stream.out"
nack=$(grep -c . "$T/acked")
check "the client got 250 for every message in the end ($nack of $COUNT)" \
    [ "$nack" -eq "$COUNT" ]
check "every acknowledged message is stored" wait_objects acme "$nack"
spool_empty() { [ -z "$(find "$DATA/spool" -type f ! -name lock | head -1)" ]; }
check "no spool file is left once drained" wait_until 300 spool_empty
ctl --json list --tenant acme | python3 -c "import json,sys
shas=[o['sha256'] for o in json.load(sys.stdin)]
open('$T/stored','w').write('\n'.join(sorted(shas))+'\n')"
check "each acknowledged message stored exactly once" \
    python3 -c "import collections,sys
st=collections.Counter(open('$T/stored').read().split())
ack=open('$T/acked').read().split()
bad=[a for a in ack if st[a]!=1]; dup=[s for s,n in st.items() if n>1]
print(len(ack),'acknowledged',len(st),'stored',len(bad),'missing or repeated',len(dup),'duplicated')
sys.exit(1 if bad or dup else 0)"
archived_stop
check "verify passes" ctl verify
