#!/bin/bash
# t_web_api.sh - the JSON API through the real daemon with curl: sign-in,
# cookies and headers, search, message view, downloads, audit, CSRF, roles,
# tenant isolation (another tenant's ids, cursors and attachment numbers
# are 404 and audited), inert XSS payloads, brute-force slow-down and
# lockout, TOTP, idle and absolute session expiry, HTTPS, and no
# plaintext (queries, passwords) in the data directory or the logs.
. "$(dirname "$0")/lib.sh"
W=$S/tests/e2e/web
PW='Corr3ct-horse-battery'
archive_init
ctl tenant add acme --journal-address journal@acme.example >/dev/null
ctl tenant add bravo --journal-address journal@bravo.example >/dev/null
adduser() { echo "$PW" | ctl user add "$@" >/dev/null; }
adduser --tenant acme --role officer,auditor alice
adduser --tenant acme --role admin adm
adduser --tenant acme --role auditor aud
adduser --tenant acme --role officer locky
adduser --tenant bravo --role officer,auditor bob
adduser --operator op
check "archivectl user list shows roles" \
    sh -c "'$CTL_BIN' -d '$DATA' user list --tenant acme | grep -q '^alice .*officer,auditor'"
check "a user name is refused when invalid" \
    sh -c "echo '$PW' | '$CTL_BIN' -d '$DATA' user add --tenant acme --role officer 'Bad Name' 2>/dev/null; [ \$? -ne 0 ]"
check "a short password is refused" \
    sh -c "echo short | '$CTL_BIN' -d '$DATA' user add --tenant acme --role officer shorty 2>/dev/null; [ \$? -ne 0 ]"

mkdir -p "$T/acme" "$T/bravo"
cp "$W/xss.eml" "$W/budget.eml" "$T/acme/"
cp "$W/bravo.eml" "$T/bravo/"
sed 's/Bravo merger plan/Bravo second plan/; s/merger-1@/merger-2@/; s/The budget for the merger/The second plan/' \
    "$W/bravo.eml" >"$T/bravo/bravo2.eml"
ctl import --tenant acme "$T/acme" >/dev/null 2>&1
ctl import --tenant bravo "$T/bravo" >/dev/null 2>&1

set_conf web_login_slow_after 2
set_conf web_login_lock_after 4
set_conf web_lockout 600s
set_conf web_max_body 4K
archived_start_web
# a journal report over SMTP: its envelope recipients are shown
sed 's/$/\r/' "$S/../shared/fixtures/journal/exo365_ace_o365_journaled.eml" >"$T/j.eml"
swaks --server 127.0.0.1:$SMTP_PORT --from j@example.org \
    --to journal@acme.example --data "$T/j.eml" >/dev/null 2>&1
wait_objects acme 3
"$B/tests/tools/index_tenant" "$DATA" acme >/dev/null
"$B/tests/tools/index_tenant" "$DATA" bravo >/dev/null

# --- helpers -----------------------------------------------------------
# api, js, login, code_is, err_is: lib.sh
audit_has() {   # audit_has TENANT ACTION USER: an entry in the tenant's log
	ctl log --tenant "$1" 2>/dev/null | grep "\"action\":\"$2\"" |
	    grep -q "\"user\":\"$3\""
}

# --- headers, sign-in --------------------------------------------------
curl -s -D "$T/hdr" -o "$T/index.html" "$WEB/"
check "console page served" grep -q '<script src="/app.js"' "$T/index.html"
check "CSP: default-src 'self', no inline script" \
    grep -qi "^content-security-policy: default-src 'self'; script-src 'self';" "$T/hdr"
check "CSP: frame-ancestors 'none'" grep -qi "frame-ancestors 'none'" "$T/hdr"
check "X-Content-Type-Options nosniff" grep -qi '^x-content-type-options: nosniff' "$T/hdr"
check "Referrer-Policy" grep -qi '^referrer-policy: no-referrer' "$T/hdr"
check "no inline script in the console" \
    sh -c "! grep -qiE '<script>|<script [^s]|[[:space:]]on[a-z]+=' '$S'/web/static/*.html"

login acme alice WRONG-password
check "wrong password: 401 bad_credentials" code_is 401
check "... with the generic message" err_is bad_credentials
msg_wrong=$(js 'd["error"]["message"]')
login nosuchtenant alice
[ "$CODE" = 401 ] && [ "$(js 'd["error"]["message"]')" = "$msg_wrong" ]; check "unknown tenant: the same 401 and message" [ $? = 0 ]
login bravo alice
[ "$CODE" = 401 ] && [ "$(js 'd["error"]["message"]')" = "$msg_wrong" ]; check "tenant A's user at tenant B: the same 401 (B's existence not told)" [ $? = 0 ]
login acme alice
check "sign-in: 200" code_is 200
check "cookie HttpOnly; SameSite=Strict" \
    grep -qi '^set-cookie: archived_session=[0-9a-f]\{64\}; Path=/; HttpOnly; SameSite=Strict' "$T/hdr"
check "roles in the session" [ "$(js '",".join(d["roles"])')" = "officer,auditor" ]
ALICE_CSRF=$CSRF
api GET /api/v1/session
[ "$CODE" = 200 ] && [ "$(js 'd["user"]')" = alice ]; check "GET session: me" [ $? = 0 ]
check "audit: sign-in success" audit_has acme signin alice
check "audit: sign-in failure" audit_has acme signin_failed alice
check "the attempt at bravo is in bravo's log (as an unknown user)" \
    sh -c "'$CTL_BIN' -d '$DATA' log --tenant bravo | grep signin_failed | grep -q unknown_user"

api POST /api/v1/session '{"tenant":'
[ "$CODE" = 400 ] && err_is bad_json; check "bad JSON: 400 bad_json" [ $? = 0 ]
api POST /api/v1/session "{\"user\":\"$(head -c 5000 /dev/zero | tr '\0' a)\"}"
check "body over web_max_body: 413" code_is 413
curl -s -o "$T/body" -w '%{http_code}' -X POST -H 'Content-Type: text/plain' \
    --data 'x' "$WEB/api/v1/session" >"$T/code"
check "sign-in needs application/json: 415" [ "$(cat "$T/code")" = 415 ]

# --- search and messages -----------------------------------------------
api GET "/api/v1/search?q=budget"
[ "$CODE" = 200 ] && [ "$(js 'd["total"]')" = 1 ]; check "search: 200, total 1 (tenant scoped)" [ $? = 0 ]
[ "$(js 'd["rows"][0]["subject"]')" = "Quarterly budget review" ] &&
    [ "$(js '"attachment" in d["rows"][0]["flags"]')" = True ] &&
    [ "$(js 'any(p["match"] for p in d["rows"][0]["snippet"])')" = True ]; check "search row: subject, from, date, flags, snippet" [ $? = 0 ]
BUDGET=$(js 'd["rows"][0]["id"]')
api GET "/api/v1/search?q=from:(carol"
[ "$CODE" = 400 ] && err_is query_syntax && [ "$(js 'd["error"]["column"]')" -ge 1 ]; check "query syntax error: 400 with its position" [ $? = 0 ]
api GET "/api/v1/search?q=budget&limit=5000"
check "bad limit: 400" code_is 400
api GET "/api/v1/search?q=xsssubject"
XSS=$(js 'd["rows"][0]["id"]')
check "XSS subject comes back as data, verbatim" \
    [ "$(js '"<script>" in d["rows"][0]["subject"]')" = True ]
check "JSON answers are application/json + nosniff" \
    grep -qi '^content-type: application/json' "$T/hdr"

api GET "/api/v1/messages/$BUDGET"
[ "$CODE" = 200 ] && [ "$(js 'd["attachments"][0]["name"]')" = figures.txt ] &&
    [ "$(js 'any(h["name"]=="Message-ID" for h in d["headers"])')" = True ] &&
    [ "$(js '"contract renewal" in d["text"]')" = True ] &&
    [ "$(js 'd["cc"][0]')" = erin@acme.example ]; check "message view: 200 with headers, text, attachments" [ $? = 0 ]
api GET "/api/v1/messages/$BUDGET/attachments/1"
[ "$CODE" = 200 ] && grep -q "revenue 100" "$T/body" &&
    grep -qi '^content-type: application/octet-stream' "$T/hdr" &&
    grep -qi '^content-disposition: attachment; filename="figures.txt"' "$T/hdr"; check "attachment download: content and safe headers" [ $? = 0 ]
api GET "/api/v1/messages/$BUDGET/original"
check "original .eml: byte for byte" cmp -s "$T/body" "$W/budget.eml"
audit_has acme view alice && audit_has acme download_original alice &&
    audit_has acme download_attachment alice; check "audit: view, downloads" [ $? = 0 ]

api GET "/api/v1/messages/$XSS"
check "XSS message view: 200" code_is 200
check "XSS attachment name kept as data" \
    [ "$(js '"<img" in d["attachments"][0]["name"]')" = True ]
api GET "/api/v1/messages/$XSS/body.html"
check "HTML body: sandboxed, no remote content, no script" \
    grep -qi "^content-security-policy: default-src 'none'; img-src data:;.*sandbox" "$T/hdr"
check "HTML body: framable by the console only" grep -qi "frame-ancestors 'self'" "$T/hdr"
check "HTML body: a meta refresh (read receipt) is defused" \
    sh -c "grep -q 'data-equiv=\"refresh\"' '$T/body' && ! grep -qi http-equiv '$T/body'"
api GET "/api/v1/messages/$XSS/attachments/1"
grep -qi '^content-type: application/octet-stream' "$T/hdr" &&
    grep -qi '^content-disposition: attachment; filename="_>' "$T/hdr"; check "an HTML attachment is served as octet-stream, attachment" [ $? = 0 ]

JID=$(ctl --json list --tenant acme | python3 -c "import json,sys
for o in json.load(sys.stdin):
    if o['meta'].get('envelope'): print(o['id']); break")
api GET "/api/v1/messages/$JID"
check "journal message: envelope recipients shown" \
    [ "$(js 'len(d["envelope"]["recipients"]) > 0')" = True ]

# --- isolation ---------------------------------------------------------
login bravo bob
BOB_JAR=$JAR
api GET "/api/v1/search?q=budget&limit=1"
BRAVO=$(js 'd["rows"][0]["id"]')
[ "$(js 'd["total"]')" = 1 ] &&
    [ "$(js 'd["rows"][0]["subject"]')" = "Bravo merger plan" ]; check "bob sees only bravo's budget message" [ $? = 0 ]
api GET "/api/v1/search?q=bravo&limit=1"
BRAVO_CURSOR=$(js 'd["next_cursor"] or ""')
P1=$(js 'd["rows"][0]["id"]')
check "bob has a second page" [ -n "$BRAVO_CURSOR" ]
api GET "/api/v1/search?q=bravo&limit=1&cursor=$BRAVO_CURSOR"
[ "$CODE" = 200 ] && [ "$(js 'd["rows"][0]["id"]')" != "$P1" ] &&
    [ "$(js 'd["next_cursor"]')" = None ]; check "bob's second page: the other message, the last page" [ $? = 0 ]
JAR=$T/jar.alice
CSRF=$ALICE_CSRF
n_denied_before=$(ctl log --tenant acme | grep -c '"action":"denied"')
for p in "messages/$BRAVO" "messages/$BRAVO/original" \
    "messages/$BRAVO/attachments/1" "messages/$BRAVO/body.html" \
    "messages/$BUDGET/attachments/7" "messages/nothex" \
    "messages/00000000000000000000000000000000"; do
	api GET "/api/v1/$p"
	[ "$CODE" = 404 ] && err_is not_found; check "alice: $p -> 404 not_found" [ $? = 0 ]
done
# bravo's cursor (made for bob's query) used by alice with the same query
api GET "/api/v1/search?q=bravo&limit=1&cursor=$BRAVO_CURSOR"
[ "$CODE" = 404 ] && err_is not_found; check "alice: bravo's cursor -> 404" [ $? = 0 ]
cur=$(python3 -c "
import base64,os
print(base64.urlsafe_b64encode(os.urandom(40)).decode().rstrip('='))")
api GET "/api/v1/search?q=budget&cursor=$cur"
check "alice: a forged cursor -> 404" code_is 404
n_denied=$(ctl log --tenant acme | grep -c '"action":"denied"')
check "every refused access is in acme's audit log ($n_denied_before -> $n_denied)" \
    [ "$n_denied" -ge $((n_denied_before + 9)) ]
check "nothing of it reaches bravo's log" \
    sh -c "! '$CTL_BIN' -d '$DATA' log --tenant bravo | grep -e denied -e view | grep -q alice"
api GET /api/v1/tenants
check "alice cannot list tenants: 403" code_is 403

# --- CSRF and roles ------------------------------------------------------
login acme adm
ADM_CSRF=$CSRF
api GET /api/v1/users
[ "$CODE" = 200 ] &&
    [ "$(js 'sorted(u["name"] for u in d["users"])')" = "['adm', 'alice', 'aud', 'locky']" ]; check "admin lists acme's users only" [ $? = 0 ]
CSRF=
api POST /api/v1/users '{"name":"newbie","roles":["officer"],"password":"Another-passw0rd"}'
[ "$CODE" = 403 ] && err_is csrf; check "POST without CSRF token: 403 csrf" [ $? = 0 ]
CSRF=0000000000000000000000000000000000000000000000000000000000000000
api POST /api/v1/users '{"name":"newbie","roles":["officer"],"password":"Another-passw0rd"}'
[ "$CODE" = 403 ] && err_is csrf; check "POST with a wrong CSRF token: 403" [ $? = 0 ]
CSRF=$ALICE_CSRF
api POST /api/v1/users '{"name":"newbie","roles":["officer"],"password":"Another-passw0rd"}'
check "POST with another session's token: 403" code_is 403
CSRF=$ADM_CSRF
api POST /api/v1/users '{"name":"newbie","roles":["officer"],"password":"Another-passw0rd"}'
check "POST with the token: 201" code_is 201
api POST /api/v1/users '{"name":"newbie","roles":["officer"],"password":"Another-passw0rd"}'
[ "$CODE" = 409 ] && err_is exists; check "the same user again: 409 exists" [ $? = 0 ]
api POST /api/v1/users '{"name":"x2","roles":["operator"],"password":"Another-passw0rd"}'
[ "$CODE" = 400 ] && err_is bad_roles; check "an admin cannot make an operator: 400" [ $? = 0 ]
check "audit: user_add by adm" audit_has acme user_add adm
api PATCH /api/v1/users/bob '{"disabled":true}'
[ "$CODE" = 404 ] && err_is not_found; check "acme's admin cannot touch bravo's user: 404" [ $? = 0 ]
nb=$(cat "$T/body")
api PATCH /api/v1/users/nosuchuser '{"disabled":true}'
check "... the same answer as for no user at all" [ "$(cat "$T/body")" = "$nb" ]
api PATCH /api/v1/users/newbie '{"roles":["officer"],"disabled":"maybe"}'
[ "$CODE" = 400 ] && err_is bad_request; check "a bad field: 400" [ $? = 0 ]
api GET /api/v1/users
check "... and nothing else changed" [ "$(js '[u["disabled"] for u in d["users"] if u["name"]=="newbie"][0]')" = False ]
api GET /api/v1/tenants/bravo/users
check "a tenant admin has no operator endpoints: 403" code_is 403
api GET "/api/v1/search?q=budget"
check "admin (no officer role) cannot search: 403" code_is 403
login acme aud
api GET "/api/v1/messages/$BUDGET"
[ "$CODE" = 403 ] && err_is forbidden; check "auditor cannot read mail: 403" [ $? = 0 ]
api GET "/api/v1/audit?user=alice&action=view"
[ "$CODE" = 200 ] &&
    [ "$(js 'all(e["user"]=="alice" and e["action"]=="view" for e in d["entries"]) and len(d["entries"])>=2')" = True ]; check "auditor reads the audit log, filtered" [ $? = 0 ]
api GET "/api/v1/audit?action=search"
check "a search's query is in the audit log (decrypted for the auditor)" \
    [ "$(js 'any(e["detail"].get("query")=="xsssubject" for e in d["entries"])')" = True ]
api GET "/api/v1/audit?limit=3"
p1=$(js '[e["seq"] for e in d["entries"]]')
nbf=$(js 'd["next_before"]')
api GET "/api/v1/audit?limit=3&before=$nbf"
p2=$(js '[e["seq"] for e in d["entries"]]')
python3 -c "
a=$p1; b=$p2
assert len(a)==3 and len(b)==3 and a==sorted(a,reverse=True) and b[0]==a[-1]-1 and b==sorted(b,reverse=True)"
check "audit pages: newest first, 'before' continues ($p1 $p2)" [ $? = 0 ]
api GET "/api/v1/audit?format=csv&action=search"
grep -q '^seq,time,kind,action,user,client,object,detail' "$T/body" &&
    grep -qi '^content-type: text/csv' "$T/hdr"; check "audit CSV" [ $? = 0 ]
api GET "/api/v1/audit?from=2001-99-99"
[ "$CODE" = 400 ] && err_is bad_time; check "bad audit time: 400" [ $? = 0 ]
api GET /api/v1/users
check "auditor cannot manage users: 403" code_is 403
check "a refused role is audited" audit_has acme forbidden aud
login "" op
[ "$CODE" = 200 ] && [ "$(js 'd["operator"]')" = True ]; check "operator signs in without a tenant" [ $? = 0 ]
api GET "/api/v1/search?q=budget"
check "operator reads no mail: 403" code_is 403
api GET /api/v1/tenants
check "operator lists tenants" [ "$(js 'sorted(t["name"] for t in d["tenants"])')" = "['acme', 'bravo']" ]
api POST /api/v1/tenants '{"name":"charlie","journal":["journal@charlie.example"]}'
check "operator adds a tenant: 201" code_is 201
api POST /api/v1/tenants/charlie/rotate-key '{}'
[ "$CODE" = 200 ] && [ "$(js 'd["key_version"]')" = 2 ]; check "operator rotates its key" [ $? = 0 ]
api POST /api/v1/tenants/charlie/users '{"name":"chadmin","roles":"admin","password":"Charlie-passw0rd"}'
check "operator creates the tenant's first admin" code_is 201
check "charlie's log records the operator" audit_has charlie key_rotate operator:op
login charlie chadmin Charlie-passw0rd
check "charlie's admin signs in" code_is 200

# --- TOTP ------------------------------------------------------------------
login acme adm
api PATCH /api/v1/users/alice '{"totp":"enable"}'
URI=$(js 'd["totp_uri"]')
check "admin requires TOTP for alice: otpauth URI once" \
    sh -c "echo '$URI' | grep -q '^otpauth://totp/archived:alice%40acme?secret='"
totp() { python3 - "$URI" "${1:-0}" <<'PY'
import base64, hmac, hashlib, struct, sys, time, urllib.parse
q = urllib.parse.parse_qs(urllib.parse.urlparse(sys.argv[1]).query)
s = q['secret'][0]; key = base64.b32decode(s + '=' * (-len(s) % 8))
step = int(time.time()) // 30 + int(sys.argv[2])
h = hmac.new(key, struct.pack('>Q', step), hashlib.sha1).digest()
o = h[-1] & 15
print('%06d' % ((struct.unpack('>I', h[o:o+4])[0] & 0x7fffffff) % 1000000))
PY
}
login acme alice
[ "$CODE" = 401 ] && err_is totp_required; check "alice without a code: 401 totp_required" [ $? = 0 ]
JAR=$T/jar.alice2; rm -f "$JAR"; CSRF=
code=$(totp)
api POST /api/v1/session "{\"tenant\":\"acme\",\"user\":\"alice\",\"password\":\"$PW\",\"totp\":\"$code\"}"
check "alice with her TOTP code: 200" code_is 200
api POST /api/v1/session "{\"tenant\":\"acme\",\"user\":\"alice\",\"password\":\"$PW\",\"totp\":\"$code\"}"
check "the same code again (replay): 401" code_is 401
JAR=$T/jar.alice
api GET /api/v1/session
check "enabling TOTP ended alice's older session: 401" code_is 401

# --- brute force: the daemon's clock injected and frozen (AR_TEST_NOW), so
# the waits are exact whatever the machine's load --------------------------
T0=$(($(date +%s) + 1000))
restart_at() {   # restart_at EPOCH: archived again, its clock stopped there
	archived_stop
	cp "$T/archived.log" "$T/archived.before-$1.log"
	AR_TEST_NOW=$1 archived_start_web
}
restart_at $T0
login acme locky bad-1
c1=$CODE
login acme locky bad-2
c2=$CODE
login acme locky bad-3
[ "$c1$c2$CODE" = 401401429 ] &&
    err_is too_many_attempts; check "two failures: 401 401, then slowed: 429" [ $? = 0 ]
check "... with Retry-After in the answer" [ "$(js 'd["error"]["retry_after"]')" = 2 ]
restart_at $((T0 + 3))
login acme locky bad-3
check "after the 2 s wait the attempt is checked: 401" code_is 401
login acme locky bad-4
check "the next one must wait longer (4 s): 429" code_is 429
restart_at $((T0 + 8))
login acme locky bad-4
check "fourth failure: 401" code_is 401
login acme locky
[ "$CODE" = 403 ] && err_is account_locked; check "then locked, even with the right password: 403 account_locked" [ $? = 0 ]
check "audit: the lock" audit_has acme account_locked locky
check "audit: the throttled attempt" audit_has acme signin_throttled locky

# --- nothing in clear ---------------------------------------------------------
check "no password in the daemon logs" sh -c "! grep -q -e '$PW' -e bad-3 '$T'/archived*.log"
check "no query word, subject or password in the data directory" \
    sh -c "! grep -rqa -e xsssubject -e 'Quarterly budget' -e '$PW' -e contract '$DATA'"
api DELETE /api/v1/session
login acme aud
api DELETE /api/v1/session
check "sign-out: 200" code_is 200
api GET /api/v1/session
check "after sign-out: 401" code_is 401
archived_stop

# --- session expiry, lockout end (injected clock), HTTPS -----------------
# The daemon's clock is read from a file (AR_TEST_NOW=@FILE) and moved by
# the test: the expiry checks are exact whatever the machine's load.
set_conf web_session_idle 6s
set_conf web_session_max 20s
mkdir -p "$DATA/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -days 2 -subj "/CN=localhost" -keyout "$DATA/tls/key.pem" \
    -out "$DATA/tls/cert.pem" 2>/dev/null
set_conf web_tls yes
CLOCK=$T/clock
set_clock() { echo "$1" >"$CLOCK.new" && mv "$CLOCK.new" "$CLOCK"; }
# the lockout (600 s from T0 + 8) is over in the daemon's clock
C0=$(($(date +%s) + 2000))
set_clock $C0
cp "$T/archived.log" "$T/archived.before-https.log"
AR_TEST_NOW=@$CLOCK archived_start
tls_ready() {
	WEB_PORT=$(sed -n 's/.*web listen=.* port=\([0-9]*\) tls=yes status=ready.*/\1/p' "$T/archived.log" | tail -1)
	[ -n "$WEB_PORT" ]
}
wait_until 120 tls_ready
WEB=https://127.0.0.1:$WEB_PORT
api() {
	local args=(-k -s -o "$T/body" -D "$T/hdr" -w '%{http_code}' -X "$1"
	    -b "$JAR" -c "$JAR")
	[ $# -ge 3 ] && args+=(-H 'Content-Type: application/json'
	    --data-binary "$3")
	[ -n "$CSRF" ] && args+=(-H "X-CSRF-Token: $CSRF")
	CODE=$(curl "${args[@]}" "$WEB$2")
}
login acme locky
check "HTTPS: sign-in once the lockout is over (clock +2000 s)" code_is 200
check "HTTPS: HSTS" grep -qi '^strict-transport-security: max-age=' "$T/hdr"
check "HTTPS: cookie Secure" grep -qi '^set-cookie: archived_session=.*; Secure' "$T/hdr"
check "plain HTTP is not served on the TLS port" \
    sh -c "! curl -s -m 3 http://127.0.0.1:$WEB_PORT/ | grep -q html"
set_clock $((C0 + 7))
api GET /api/v1/session
[ "$CODE" = 401 ] && err_is unauthenticated; check "idle session (6 s) expired: 401" [ $? = 0 ]
L=$((C0 + 7))    # the sign-in's time
login acme locky
codes=
for dt in 5 10 15 19; do
	set_clock $((L + dt))
	api GET /api/v1/session
	codes="$codes $CODE"
done
check "a used session stays (idle 6 s; used 5, 10, 15, 19 s after sign-in:$codes)" \
    [ "$codes" = " 200 200 200 200" ]
set_clock $((L + 21))
api GET /api/v1/session
check "absolute expiry (20 s): 401 even when used (21 s after sign-in)" code_is 401
archived_stop
sed -i 's/^web_tls = .*/web_tls = no/; s/^web_listen = .*/web_listen = 0.0.0.0:0/' "$DATA/archived.conf"
"$B/archived/archived" -d "$DATA" >"$T/refuse.out" 2>&1 &
rp=$!
PIDS+=("$rp")
# until it has refused and ended (or, wrongly, is ready)
refused_or_ready() { ! kill -0 $rp 2>/dev/null || grep -q "status=ready" "$T/refuse.out"; }
wait_until 120 refused_or_ready
check "plain HTTP on a non-loopback address is refused" \
    grep -q "web_tls = no is allowed only on a loopback address" "$T/refuse.out"
kill -TERM $rp; wait $rp 2>/dev/null
check "verify passes (audit entries chain)" ctl verify
