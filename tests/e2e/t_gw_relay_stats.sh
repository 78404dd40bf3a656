#!/bin/bash
# t_gw_relay_stats.sh - the relay queue's operator view through the real
# daemon (issue 18, "Operator view"): mail through the gateway to a real
# downstream (Postfix's smtp-sink, the project's smtp_testd refusing one
# recipient with 550), the downstream stopped for a deferral; the counts
# per tenant per day (queued, delivered, deferred, bounced, DSNs) in
# archivectl relay stats --json, archivectl --json stats and the API; the
# queue per domain in the API (counts, oldest, next attempt, last error,
# held); hold, release and retry from the API (admin, CSRF token, audited;
# an officer reads only; another tenant's domain is 404 and audited); and
# the counts survive a restart of archived.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_relay.sh"
PW='Corr3ct-horse-battery'

archive_init
ctl tenant add acme --journal-address journal@acme.example >/dev/null
ctl tenant add bravo --journal-address journal@bravo.example >/dev/null
P_SINK=$(free_port)          # smtp-sink: a.example (and the DSNs to it)
P_D=$(free_port)             # smtp_testd refusing carol: d.example
sink_start "$T/sink" "$P_SINK"
testd_start d "$P_D" -D d.example -x carol@d.example=550
ctl tenant set acme --domain a.example --relay-to "127.0.0.1:$P_SINK" \
    --tls none >/dev/null
ctl tenant set acme --domain d.example --relay-to "127.0.0.1:$P_D" \
    --tls none >/dev/null
ctl tenant set bravo --domain bravo.example --relay-to "127.0.0.1:$P_SINK" \
    --tls none >/dev/null
adduser() { echo "$PW" | ctl user add "$@" >/dev/null; }
adduser --tenant acme --role admin ada
adduser --tenant acme --role officer otto
adduser --tenant bravo --role admin bob

conf_put gateway_listen 127.0.0.1:0
conf_put gateway_hostname gw.archived.test
conf_put relay_retry_min 1s
conf_put relay_retry_max 2s
conf_put relay_connect_timeout 5s
start() {
	archived_start_web
	if ! wait_until 120 started_or_gone "$ARCHIVED_PID" gw_ready || ! gw_ready; then
		echo "the gateway did not start:" >&2
		cat "$T/archived.log" >&2
		exit 1
	fi
}
start
echo "gateway on port $GW_PORT, console on $WEB"

send() { python3 "$PY/gw_smtp.py" send "$GW_PORT" "$@" >>"$T/send.log" 2>&1; }
mkmsg() {
	printf 'From: alice@a.example\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@a.example>\r\n\r\nhello\r\n' \
	    "$2" "$3" "$3" >"$1"
}

# rstat FIELD [TENANT]: a total of archivectl relay stats --json
rstat() {
	ctl --json relay stats --tenant "${2:-acme}" >"$T/rs.json" 2>>"$T/ctl.err" &&
	    python3 -c "import json; print(json.load(open('$T/rs.json'))['totals']['$1'])"
}
stat_is() { [ "$(rstat "$1")" = "$2" ]; }
stat_ge() { local v; v=$(rstat "$1") && [ "${v:-0}" -ge "$2" ]; }
queue_msgs() { relay_queue_json && python3 -c "import json; print(json.load(open('$T/rq.json'))['messages'])"; }
queue_empty() { [ "$(queue_msgs)" = 0 ]; }

# --- 1. delivered, and one recipient refused (550) ---------------------------
mkmsg "$T/m1.eml" "bob@a.example" "one"
check "a message to two recipients of a.example is accepted" \
    send alice@a.example bob@a.example,dan@a.example "$T/m1.eml"
mkmsg "$T/m2.eml" "bob@d.example" "two"
check "a message to bob and carol of d.example is accepted" \
    send alice@a.example bob@d.example,carol@d.example "$T/m2.eml"
check "bob@d.example gets it" wait_until 120 has_files "$T/d" "*.eml" 1
check "smtp-sink gets the first message and the DSN for carol" \
    wait_until 120 has_files "$T/sink" "m.*" 2
check "the DSN reached the sender" sh -c "grep -l 'report-type=delivery-status' '$T'/sink/m.* | grep -q ."
check "the relay queue empties" wait_until 120 queue_empty
# counted in memory, in the catalog within a few seconds
check "relay stats: 2 + 2 recipients and the DSN queued" wait_until 120 stat_is queued 5
check "relay stats: 4 delivered (bob, dan, bob, the DSN)" stat_is delivered 4
check "relay stats: 1 bounced (carol)" stat_is bounced 1
check "relay stats: 1 DSN" stat_is dsn 1
check "relay stats: no deferral yet" stat_is deferred 0
TODAY=$(date -u +%F)
check "relay stats: today's counts per day" python3 -c "import json,sys
d=json.load(open('$T/rs.json'))
x=[r for r in d['days'] if r['date']=='$TODAY']
print(d['days'])
sys.exit(0 if x and x[0]['delivered']==4 and x[0]['bounced']==1 and d['since']=='$TODAY' else 1)"

# --- 2. the downstream down: deferred, with the reason ----------------------
stop_pid "$SINK_PID"
mkmsg "$T/m3.eml" "eve@a.example" "three"
check "a message for eve@a.example is accepted while its server is down" \
    send alice@a.example eve@a.example "$T/m3.eml"
check "relay stats: the failed attempt is counted as deferred" \
    wait_until 120 stat_ge deferred 1
a_deferred() { [ "$(rq a.example deferred)" = 1 ]; }
check "relay queue: a.example has one deferred recipient" wait_until 120 a_deferred
check "relay queue --json: its last error and next attempt" python3 -c "import json,sys
d=[x for x in json.load(open('$T/rq.json'))['domains'] if x['domain']=='a.example'][0]
print(d)
sys.exit(0 if d['last_error'] and d.get('next_attempt') and d['oldest'] else 1)"
rstat queued >/dev/null
check "relay stats --json: the queue now (1 message, 1 waiting, deferred)" \
    python3 -c "import json,sys
q=json.load(open('$T/rs.json'))['queue']; print(q)
sys.exit(0 if q['messages']==1 and q['waiting']==1 and q['deferred']==1 and q['oldest'] else 1)"
ctl relay stats --tenant acme --days 7 >"$T/rs.txt"
check "relay stats (text): totals and a line per day" \
    sh -c "grep -q 'acme: since $TODAY: 6 queued, 4 delivered, [0-9]* deferred attempts, 1 bounced, 1 DSNs sent' '$T/rs.txt' && grep -q '^  $TODAY ' '$T/rs.txt'"
cat "$T/rs.txt"
ctl relay stats --days 0 >/dev/null 2>&1
check "relay stats --days 0 is refused (usage)" [ $? -eq 2 ]
ctl relay stats --tenant nosuch >/dev/null 2>&1
check "relay stats of an unknown tenant fails" [ $? -ne 0 ]
ctl relay queue --days 3 >/dev/null 2>&1
check "--days is refused by relay queue" [ $? -eq 2 ]
ctl relay stats >"$T/rs-all.txt"
check "relay stats without --tenant: every tenant" \
    sh -c "grep -q '^acme: ' '$T/rs-all.txt' && grep -q '^bravo: since -: 0 queued' '$T/rs-all.txt'"

# --- 3. the API ----------------------------------------------------------------
login acme ada
api GET /api/v1/relay/queue
check "API queue: 200 for an admin" code_is 200
cp "$T/body" "$T/api-queue.json"
check "API queue: a.example (deferred 1, last error, next attempt, not held) and d.example" \
    python3 -c "import json,sys
d=json.load(open('$T/api-queue.json')); print(d)
a=[x for x in d['domains'] if x['domain']=='a.example'][0]
names=sorted(x['domain'] for x in d['domains'])
sys.exit(0 if d['gateway'] and d['messages']==1 and a['deferred']==1 and a['pending']==0
         and a['last_error'] and a['next_attempt'] and a['oldest'] and a['held'] is False
         and a['configured'] and names==['a.example','d.example'] else 1)"
api GET "/api/v1/relay/stats?days=7"
check "API stats: 200" code_is 200
check "API stats: the same totals as archivectl" python3 -c "import json,sys
d=json.load(open('$T/body')); t=d['totals']; print(t)
sys.exit(0 if t['queued']==6 and t['delivered']==4 and t['bounced']==1 and t['dsn']==1
         and t['deferred']>=1 and len(d['days'])==7 and d['days'][-1]['date']=='$TODAY'
         and d['days'][-1]['counts']['delivered']==4 else 1)"
api GET "/api/v1/relay/stats?days=0"
check "API stats: days=0 is a 400" code_is 400
curl -s -D "$T/chart.hdr" -o "$T/chart.svg" -b "$JAR" "$WEB/api/v1/relay/chart.svg?days=7"
check "API chart: an SVG with the delivered and bounced bars" \
    sh -c "grep -qi '^content-type: image/svg+xml' '$T/chart.hdr' && grep -q 'class=\"bar-delivered\"' '$T/chart.svg' && grep -q 'class=\"bar-bounced\"' '$T/chart.svg'"
check "API chart: no script in it" sh -c "! grep -qi '<script' '$T/chart.svg'"
SAVED=$CSRF
CSRF=
api POST /api/v1/relay/domains/a.example/hold '{}'
check "hold without the CSRF token: 403" code_is 403
CSRF=$SAVED
api POST /api/v1/relay/domains/a.example/hold '{}'
check "hold a.example: 200" code_is 200
api GET /api/v1/relay/queue
check "API queue: a.example is held" python3 -c "import json,sys
d=json.load(open('$T/body'))
sys.exit(0 if [x for x in d['domains'] if x['domain']=='a.example'][0]['held'] else 1)"
check "archivectl tenant show: a.example held" sh -c "'$CTL_BIN' -d '$DATA' tenant show acme | grep -i 'a.example' | grep -qi held"
api POST /api/v1/relay/domains/bravo.example/hold '{}'
check "hold another tenant's domain: 404" code_is 404
api POST /api/v1/relay/domains/nowhere.example/hold '{}'
check "hold a domain of no tenant: 404" code_is 404
api POST /api/v1/relay/domains/a.example/sideways '{}'
check "an unknown domain action: 404" code_is 404
api POST "/api/v1/relay/domains/not%20a%20domain/hold" '{}'
check "a malformed domain name: 400" code_is 400
check "bravo's domain is not held" sh -c "'$CTL_BIN' -d '$DATA' --json tenant show bravo | python3 -c 'import json,sys; t=json.load(sys.stdin); sys.exit(1 if any(d.get(\"held\") for d in t[\"domains\"]) else 0)'"
login acme otto
api GET /api/v1/relay/queue
check "an officer reads the queue" code_is 200
api POST /api/v1/relay/retry '{}'
check "an officer cannot retry: 403" code_is 403
api POST /api/v1/relay/domains/a.example/release '{}'
check "an officer cannot release: 403" code_is 403
login bravo bob
api GET /api/v1/relay/queue
check "bravo's admin sees only bravo's domains" python3 -c "import json,sys
d=json.load(open('$T/body')); print(d)
sys.exit(0 if [x['domain'] for x in d['domains']]==['bravo.example'] and d['messages']==0 else 1)"
api GET "/api/v1/relay/stats?days=7"
check "bravo's counts are its own (none)" python3 -c "import json,sys
t=json.load(open('$T/body'))['totals']; sys.exit(0 if t['queued']==0 and t['delivered']==0 else 1)"
api POST /api/v1/relay/domains/a.example/release '{}'
check "bravo releasing acme's domain: 404" code_is 404
audit_has() {   # audit_has TENANT ACTION [TEXT]
	ctl log --tenant "$1" 2>/dev/null | grep "\"action\":\"$2\"" | grep -qF -- "${3:-}"
}
check "acme's log: the hold by ada" audit_has acme relay_hold '"domain":"a.example"'
check "acme's log: ada's refused hold of bravo.example" audit_has acme denied 'bravo.example'
check "acme's log: the queue and counts were read" \
    sh -c "'$CTL_BIN' -d '$DATA' log --tenant acme | grep -q '\"action\":\"relay_queue\"' && '$CTL_BIN' -d '$DATA' log --tenant acme | grep -q '\"action\":\"relay_stats\"'"
check "bravo's log: bob's refused release of a.example" audit_has bravo denied 'a.example'
check "still held after bravo's attempt" sh -c "'$CTL_BIN' -d '$DATA' tenant show acme | grep -i 'a.example' | grep -qi held"

# --- 4. a restart of archived: the counts stay ----------------------------------
archived_stop
cp "$T/archived.log" "$T/archived-1.log"
# a.example is held: nothing is tried from here until its release
check "archived stopped: the counts are in the catalog" stat_ge deferred 1
DEFERRED=$(rstat deferred)
check "... queued 6, delivered 4, bounced 1, DSN 1, deferred $DEFERRED" python3 -c "import json,sys
t=json.load(open('$T/rs.json'))['totals']; print(t)
sys.exit(0 if (t['queued'],t['delivered'],t['bounced'],t['dsn'])==(6,4,1,1) else 1)"
sink_start "$T/sink" "$P_SINK"
start
check "after the restart the queue still holds eve's message" [ "$(queue_msgs)" = 1 ]
login acme ada
api GET "/api/v1/relay/stats?days=1"
check "API stats after the restart: the same counts" python3 -c "import json,sys
t=json.load(open('$T/body'))['totals']; print(t)
sys.exit(0 if (t['queued'],t['delivered'],t['bounced'],t['dsn'],t['deferred'])==(6,4,1,1,$DEFERRED) else 1)"
api POST /api/v1/relay/retry '{}'
check "retry by the admin: 202" code_is 202
check "acme's log: the retry" audit_has acme relay_retry
api POST /api/v1/relay/domains/a.example/release '{}'
check "release a.example: 200" code_is 200
check "released: eve's message reaches the server" \
    wait_until 120 has_files "$T/sink" "m.*" 3
check "the relay queue empties" wait_until 120 queue_empty
check "relay stats after the restart: 5 delivered, the rest kept" \
    wait_until 120 stat_is delivered 5
check "relay stats after the restart: queued 6, bounced 1, DSN 1, deferred $DEFERRED" \
    python3 -c "import json,sys
t=json.load(open('$T/rs.json'))['totals']; print(t)
sys.exit(0 if (t['queued'],t['bounced'],t['dsn'],t['deferred'])==(6,1,1,$DEFERRED) else 1)"
api GET "/api/v1/relay/stats?days=1"
check "API stats after the restart: 5 delivered today" python3 -c "import json,sys
d=json.load(open('$T/body')); sys.exit(0 if d['totals']['delivered']==5 and d['days'][0]['counts']['queued']==6 else 1)"
check "acme's log: the release" audit_has acme relay_release '"domain":"a.example"'
api GET "/api/v1/gateway/stats?days=1"
check "the verdict counts in the same per-day record are intact: 3 messages judged" \
    python3 -c "import json,sys
t=json.load(open('$T/body'))['totals']; print(t)
sys.exit(0 if sum(t[k] for k in ('clean','spam','virus','policy','unscanned'))==3
         and t['delivered']+t['tagged']==3 else 1)"
ctl --json stats >"$T/stats.json" 2>/dev/null
check "archivectl --json stats: the relay totals per tenant" python3 -c "import json,sys
d={t['tenant']:t for t in json.load(open('$T/stats.json'))['tenants']}
print(d['acme']['relay'])
sys.exit(0 if d['acme']['relay']['delivered']==5 and d['acme']['relay']['bounced']==1
         and d['bravo']['relay']['queued']==0 else 1)"
archived_stop
