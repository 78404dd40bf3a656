#!/bin/bash
# t_gw_relay_crash.sh - a stream of messages through the gateway to a
# downstream server while archived is killed with SIGKILL at random
# moments and restarted (issue 18): every message that got 250 reaches the
# downstream (none lost); duplicates - a crash between the remote 250 and
# our record, or between our durable accept and the client seeing the 250
# - are counted and reported, and stay rare; the relay queue empties;
# every accepted message is archived once.
# Suite size: 1,000 messages, 10 kills (AR_GW_CRASH_COUNT,
# AR_GW_CRASH_KILLS); tests/soak/gw_relay_crash.sh runs 5,000 and 50.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_relay.sh"

COUNT=${AR_GW_CRASH_COUNT:-1000}
KILLS=${AR_GW_CRASH_KILLS:-10}
SESSIONS=${AR_GW_CRASH_SESSIONS:-8}
archive_init
ctl tenant add acme --journal-address journal@acme.example >/dev/null
gw_services clamd
P_DOWN=$(free_port)
testd_start down "$P_DOWN" -D acme.example
ctl tenant set acme --domain acme.example --relay-to "127.0.0.1:$P_DOWN" \
    --tls none >/dev/null
conf_put clamd_socket "$CLAMD_SOCKET"
conf_put relay_retry_min 1s
conf_put relay_retry_max 2s
gateway_start
echo "$GW_PORT" >"$T/port"

python3 "$S/tests/e2e/py/smtp_stream.py" "$T/port" user@acme.example \
    "$COUNT" "$SESSIONS" 1800 "$T/acked" >"$T/stream.out" 2>&1 &
client=$!
kills=0
# each kill comes after a random count of acceptances since the last
# restart (archived's own reply=250 lines), between 1/4 and 1/2 of the
# stream's share per kill: spread over the stream, whatever the
# machine's speed.  The client runs in slices of 50 ms and is stopped
# while the count is read and while archived is killed and restarted,
# so a fast machine cannot run past the count (nor the stream end
# before the last kill) between the look and the kill.
ACC_BASE=0
accepted() { echo $((ACC_BASE + $(grep -c " reply=250 " "$T/archived.log"))); }
# step_until N: the client runs slice by slice until N acceptances; it
# is left stopped (0), or it ended or 600 s went by (1)
step_until() {
	local end=$((SECONDS + 600))
	while [ $SECONDS -lt $end ] && ! ended $client; do
		kill -STOP $client 2>/dev/null
		[ "$(accepted)" -ge "$1" ] && return 0
		kill -CONT $client 2>/dev/null
		sleep 0.05
	done
	return 1
}
SHARE=$((COUNT / KILLS))
while [ $kills -lt "$KILLS" ] && ! ended $client; do
	step_until $((ACC_BASE + SHARE / 4 + RANDOM % (SHARE / 4 + 1))) || break
	kill -KILL "$ARCHIVED_PID"; wait "$ARCHIVED_PID" 2>/dev/null
	kills=$((kills + 1))
	ACC_BASE=$(accepted)
	echo "kill $kills: archived killed ($ACC_BASE accepted, $(files_in "$T/down" "*.eml") delivered so far)"
	: >"$T/port"
	gateway_start
	echo "$GW_PORT" >"$T/port"
	kill -CONT $client 2>/dev/null
done
kill -CONT $client 2>/dev/null
wait $client
cat "$T/stream.out"
nack=$(grep -c . "$T/acked")
check "the client got 250 for every message in the end ($nack of $COUNT)" \
    [ "$nack" -eq "$COUNT" ]
check "archived was killed $KILLS times during the stream ($kills)" \
    [ "$kills" -eq "$KILLS" ]
queue_empty() { relay_queue_json && [ "$(python3 -c "import json; print(json.load(open('$T/rq.json'))['messages'])")" = 0 ]; }
check "the relay queue empties" wait_until 600 queue_empty
# every delivered message, by the SHA-256 of what the client sent (our
# Received: header, 3 lines, taken off)
python3 - "$T/down" "$T/acked" "$T/report" <<'PYEOF'
import collections, glob, hashlib, sys
got = collections.Counter()
for p in glob.glob(sys.argv[1] + "/*.eml"):
    raw = open(p, "rb").read()
    if raw.startswith(b"Received: "):
        raw = raw.split(b"\r\n", 3)[3]
    got[hashlib.sha256(raw).hexdigest()] += 1
acked = open(sys.argv[2]).read().split()
lost = [a for a in acked if got[a] == 0]
dups = sum(n - 1 for n in got.values() if n > 1)
unacked = [h for h in got if h not in set(acked)]
open(sys.argv[3], "w").write("%d %d %d %d\n" % (len(acked), len(lost), dups, len(unacked)))
print("acknowledged=%d delivered=%d distinct=%d lost=%d duplicates=%d "
      "delivered_unacknowledged=%d" % (len(acked), sum(got.values()), len(got),
      len(lost), dups, len(unacked)))
PYEOF
read -r acked lost dups unacked <"$T/report"
check "no acknowledged message is lost ($lost lost)" [ "$lost" -eq 0 ]
# a kill can cost a duplicate per message in flight: one per relay queue
# worker (4) being delivered, and one per client session (the 250 lost)
check "duplicates are rare: $dups over $KILLS kills (at most $((KILLS * (4 + SESSIONS))))" \
    [ "$dups" -le $((KILLS * (4 + SESSIONS))) ]
check "every accepted message is archived once" wait_objects acme "$COUNT"
check "... and no more" [ "$(objects_of acme)" -eq "$COUNT" ]
echo "gw_relay_crash: messages=$COUNT kills=$kills acknowledged=$acked lost=$lost duplicates=$dups"
archived_stop
