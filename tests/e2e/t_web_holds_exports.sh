#!/bin/bash
# t_web_holds_exports.sh - legal holds and export jobs through the real
# daemon with curl: legal creates a hold by custodian (its count, the
# message view listing it), role and CSRF checks, release as a logged act
# with user and client, a bad hold query (400 with its position), tenant
# isolation of hold names and export ids (404 + audit entry), an export
# job of a query that finishes, downloads, unzips (python3 zipfile) with
# one CSV row a message of the query and a manifest that sha256sum -c
# accepts, and deletion of the export.
. "$(dirname "$0")/lib.sh"
W=$S/tests/e2e/web
PW='Corr3ct-horse-battery'
archive_init
ctl tenant add acme --journal-address journal@acme.example >/dev/null
ctl tenant add bravo --journal-address journal@bravo.example >/dev/null
adduser() { echo "$PW" | ctl user add "$@" >/dev/null; }
adduser --tenant acme --role legal lena
adduser --tenant acme --role officer olga
adduser --tenant bravo --role legal,officer bob
mkdir -p "$T/acme" "$T/bravo"
cp "$W/xss.eml" "$W/budget.eml" "$T/acme/"
cp "$W/bravo.eml" "$T/bravo/"
ctl import --tenant acme "$T/acme" >/dev/null 2>&1
ctl import --tenant bravo "$T/bravo" >/dev/null 2>&1
"$B/tests/tools/index_tenant" "$DATA" acme >/dev/null
"$B/tests/tools/index_tenant" "$DATA" bravo >/dev/null
archived_start_web

# api, js, login, code_is, err_is: lib.sh
# log checks are collected and run at the end on one dump of each log
# (archivectl under the sanitizers is slow to start on a loaded machine)
LOGCHECKS=()
check_log() {   # check_log DESCRIPTION TENANT TEXT...: one line, every TEXT
	local d=$1
	shift
	local IFS=$'\x1f'
	LOGCHECKS+=("$d"$'\x1f'"$*")
}
run_log_checks() {
	local c t l x d parts
	for t in acme bravo; do ctl log --tenant "$t" >"$T/log.$t" 2>/dev/null; done
	for c in "${LOGCHECKS[@]}"; do
		IFS=$'\x1f' read -r -a parts <<<"$c"
		d=${parts[0]}
		t=${parts[1]}
		l=$(cat "$T/log.$t")
		for x in "${parts[@]:2}"; do l=$(printf '%s\n' "$l" | grep -F -- "$x"); done
		check "$d" [ -n "$l" ]
	done
}

# --- holds ---------------------------------------------------------------
login acme lena
api POST /api/v1/holds '{"name":"matter-1","description":"Budget inquiry","custodians":["carol@acme.example"]}'
[ "$CODE" = 201 ] && [ "$(js 'd["messages"]')" = 1 ] &&
    [ "$(js 'd["state"]')" = active ]; check "legal creates a hold by custodian: 201, covers 1 message" [ $? = 0 ]
check_log "hold creation is logged with user and client" acme '"action":"hold-create"' '"user":"lena"' '"client":"127.0.0.1"'
api POST /api/v1/holds '{"name":"matter-1","custodians":["carol@acme.example"]}'
check "same name again: 409" code_is 409
api POST /api/v1/holds '{"name":"q-hold","query":"subject:(budget"}'
[ "$CODE" = 400 ] && err_is query_syntax && [ "$(js 'd["error"]["column"]')" -ge 1 ]
check "a bad hold query: 400 query_syntax with its position" [ $? = 0 ]
api POST /api/v1/holds '{"name":"nothing"}'
[ "$CODE" = 400 ] && err_is no_scope; check "a hold without a scope: 400 no_scope" [ $? = 0 ]
api POST /api/v1/holds '{"name":"d","from":"2026-13-01"}'
[ "$CODE" = 400 ] && err_is bad_date; check "a bad date: 400 bad_date" [ $? = 0 ]
api POST /api/v1/holds '{"name":"wide","custodians":["@acme.example"],"from":"2026-01-01"}'
check "a domain custodian with a date range: 201" code_is 201
api GET /api/v1/holds
[ "$CODE" = 200 ] && [ "$(js 'len(d["holds"])')" = 2 ] &&
    [ "$(js '[h["messages"] for h in d["holds"] if h["name"]=="matter-1"][0]')" = 1 ]
check "hold list: both, with counts" [ $? = 0 ]
C0=$CSRF; CSRF=
api POST /api/v1/holds '{"name":"nocsrf","custodians":["x@acme.example"]}'
check "create without the CSRF token: 403" code_is 403
CSRF=$C0

login acme olga
api GET /api/v1/search?q=budget
BUDGET=$(js 'd["rows"][0]["id"]')
api GET "/api/v1/messages/$BUDGET"
[ "$CODE" = 200 ] && [ "$(js '",".join(sorted(d["holds"]))')" = "matter-1,wide" ]
check "message JSON lists the holds covering it" [ $? = 0 ]
api GET /api/v1/holds/matter-1
[ "$CODE" = 200 ] && [ "$(js 'd["custodians"][0]')" = carol@acme.example ]
check "officer reads a hold" [ $? = 0 ]
api POST /api/v1/holds '{"name":"olga-hold","custodians":["x@acme.example"]}'
check "officer cannot create a hold: 403" code_is 403
api POST /api/v1/holds/matter-1/release '{"reason":"no"}'
check "officer cannot release a hold: 403" code_is 403

login bravo bob
api GET /api/v1/holds/matter-1
check "tenant B's user: A's hold is 404" code_is 404
check_log "B's log: denied, A's hold name (bob)" bravo '"action":"denied"' '"what":"hold"' '"user":"bob"'
api POST /api/v1/holds/matter-1/release '{"reason":"mine now"}'
check "tenant B cannot release A's hold: 404" code_is 404

login acme lena
api POST /api/v1/holds/matter-1/release '{}'
[ "$CODE" = 400 ] && err_is bad_reason; check "release without a reason: 400" [ $? = 0 ]
api POST /api/v1/holds/matter-1/release '{"reason":"inquiry closed"}'
[ "$CODE" = 200 ] && [ "$(js 'd["state"]')" = released ] &&
    [ "$(js 'd["released_by"]')" = lena ]; check "legal releases: 200, released by lena" [ $? = 0 ]
check_log "release is logged with reason, user and client" acme '"action":"hold-release"' '"reason":"inquiry closed"' '"user":"lena"' '"client":"127.0.0.1"'
api POST /api/v1/holds/matter-1/release '{"reason":"again"}'
check "release twice: 409" code_is 409

# --- exports -------------------------------------------------------------
api POST /api/v1/exports '{"scope":"all"}'
check "legal (not officer) cannot export: 403" code_is 403
login acme olga
Q='budget OR xsssubject'
api GET "/api/v1/search?q=$(python3 -c "import urllib.parse;print(urllib.parse.quote('$Q'))")"
TOTAL=$(js 'd["total"]')
api POST /api/v1/exports '{"scope":"query","query":"from:(carol"}'
[ "$CODE" = 400 ] && err_is query_syntax && [ "$(js 'd["error"]["byte"]')" -ge 0 ]
check "export of a bad query: 400 with its position" [ $? = 0 ]
api POST /api/v1/exports '{"scope":"hold","hold":"no-such-hold"}'
check "export of an unknown hold: 404" code_is 404
C0=$CSRF; CSRF=
api POST /api/v1/exports "{\"scope\":\"query\",\"query\":\"$Q\"}"
check "export without the CSRF token: 403" code_is 403
CSRF=$C0
api POST /api/v1/exports "{\"scope\":\"query\",\"query\":\"$Q\"}"
[ "$CODE" = 202 ] && EXP=$(js 'd["id"]'); check "export job started: 202" [ -n "${EXP:-}" ]
check_log "export start is audited" acme '"action":"export_start"' '"user":"olga"' "$EXP"
# export_ended ID: the job is done or failed; sets st (at most 600 s)
export_ended() {
	api GET "/api/v1/exports/$1"
	st=$(js 'd["state"]')
	[ "$st" = done ] || [ "$st" = failed ]
}
wait_until 600 export_ended "$EXP"
[ "$st" = done ] && [ "$(js 'd["progress"]["done"]')" = "$TOTAL" ] &&
    [ "$(js 'd["messages"]')" = "$TOTAL" ]; check "export job done, progress $TOTAL/$TOTAL" [ $? = 0 ]
[ "$st" = done ] || cat "$T/body"
MAN=$(js 'd.get("manifest_sha256","")')
api GET /api/v1/exports
[ "$(js 'len(d["exports"])')" = 1 ]; check "export list: the job" [ $? = 0 ]
ZIP=$(ls "$DATA"/exports/*/"$EXP".zip 2>/dev/null)
check "the ZIP is under DATA/exports, mode 0600" [ "$(stat -c %a "$ZIP" 2>/dev/null)" = 600 ]
curl -s -b "$T/jar.olga" -o "$T/export.zip" -D "$T/hdr" -w '%{http_code}' \
    "$WEB/api/v1/exports/$EXP/download" >"$T/code"
check "download: 200 application/zip" sh -c "[ \"\$(cat '$T/code')\" = 200 ] && grep -qi '^content-type: application/zip' '$T/hdr'"
check_log "download is audited" acme '"action":"export_download"' '"user":"olga"' "$EXP"
mkdir -p "$T/unz"
python3 -c "import zipfile,sys; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" \
    "$T/export.zip" "$T/unz"
check "the ZIP unzips (python3 zipfile)" [ -f "$T/unz/manifest.sha256" ]
ROWS=$(python3 -c "import csv,sys; print(len(list(csv.reader(open(sys.argv[1], newline='', encoding='utf-8'))))-1)" "$T/unz/messages.csv")
check "messages.csv: $TOTAL rows (the query's total)" [ "$ROWS" = "$TOTAL" ] && [ "$TOTAL" -ge 2 ]
check "sha256sum -c manifest.sha256 passes" \
    sh -c "cd '$T/unz' && sha256sum --quiet -c manifest.sha256"
check "the manifest hash is the job's" [ "$(sha256sum "$T/unz/manifest.sha256" | cut -c1-64)" = "$MAN" ]
check_log "the finished export is the jobs module's log entry (by olga, $TOTAL messages)" acme '"action":"export"' '"by":"olga"' "\"messages\":$TOTAL" '"format":"zip"'

login bravo bob
api GET "/api/v1/exports/$EXP"
check "tenant B: A's export id is 404" code_is 404
check_log "B's log: denied, A's export id" bravo '"action":"denied"' '"what":"export"' "$EXP"
api GET "/api/v1/exports/$EXP/download"
check "tenant B: A's export download is 404" code_is 404
api DELETE "/api/v1/exports/$EXP"
check "tenant B: cannot delete A's export (404)" code_is 404
api GET /api/v1/exports
[ "$(js 'len(d["exports"])')" = 0 ]; check "tenant B sees no export of A" [ $? = 0 ]

login acme olga
api DELETE "/api/v1/exports/$EXP"
check "delete: 200" code_is 200
check "... the file is gone" [ ! -e "$ZIP" ]
check_log "delete is audited" acme '"action":"export_delete"' "$EXP"
api GET "/api/v1/exports/$EXP"
check "a deleted export is 404" code_is 404

# an export of a hold: the messages the hold covers
api GET /api/v1/holds/wide
WIDE=$(js 'd["messages"]')
api POST /api/v1/exports '{"scope":"hold","hold":"wide","mbox":true}'
EXP2=$(js 'd.get("id","")')
wait_until 600 export_ended "$EXP2"
[ "$st" = done ] && [ "$(js 'd["messages"]')" = "$WIDE" ] && [ "$WIDE" -ge 1 ]
check "export of a hold: done, the hold's $WIDE messages" [ $? = 0 ]
check_log "the hold export is logged with its label" acme '"action":"export"' '"label":"hold:wide"'
ZIP2=$(ls "$DATA"/exports/*/"$EXP2".zip 2>/dev/null)
check "... its ZIP exists" [ -f "$ZIP2" ]

# job records live in memory: a restart forgets them and deletes the files
archived_stop
archived_start_web
check "restart: the export files left are deleted" [ ! -e "$ZIP2" ]
login acme olga
api GET "/api/v1/exports/$EXP2"
check "restart: the old export id is 404" code_is 404

archived_stop
run_log_checks
check "one hold-create entry for matter-1 (no second web entry)" \
    [ "$(grep '"hold-create"' "$T/log.acme" | grep -c '"name":"matter-1"')" = 1 ]
check "verify passes" ctl verify
check "nothing left under DATA/exports but directories" \
    [ -z "$(find "$DATA/exports" -type f)" ]
