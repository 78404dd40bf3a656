#!/bin/bash
# t_web_quarantine.sh - the gateway's quarantine through the console API,
# with the real daemon, its real gateway (attachment policy: a program
# attachment quarantined by the tenant's policy; no scanner needed), a
# real downstream server (Postfix smtp-sink) and curl: list and filters,
# preview sandboxed like the message view, release (delivered downstream
# through the relay queue), release-and-allow, delete, roles (officer,
# recipient: its own mail only; auditor: none), another tenant's ids (404
# and an audit entry), every access in the tenant's log, the verdict
# counts and their chart, and the daily digest (driven by AR_TEST_NOW):
# its signed release links work once, expire, and fail for another
# recipient.
. "$(dirname "$0")/lib.sh"
PW='Corr3ct-horse-battery'
archive_init

# --- a downstream server that keeps what it receives -------------------------
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SINK_PORT=$(free_port)
mkdir -p "$T/sink"
smtp-sink -u root -h sink.test -d "$T/sink/%Y%m%d%H%M%S." \
    127.0.0.1:$SINK_PORT 64 >>"$T/sink.log" 2>&1 &
PIDS+=($!)
sink_up() { python3 -c "import socket; socket.create_connection(('127.0.0.1',$SINK_PORT),1)" 2>/dev/null; }
wait_until 60 sink_up || { echo "smtp-sink did not start"; cat "$T/sink.log"; exit 1; }
# sink_has TEXT: a message downstream holds TEXT
sink_has() { grep -rlqF -- "$1" "$T/sink" 2>/dev/null; }
sink_count() { grep -rlF -- "$1" "$T/sink" 2>/dev/null | wc -l; }

ctl tenant add acme --journal-address journal@acme.example >/dev/null
ctl tenant add bravo --journal-address journal@bravo.example >/dev/null
ctl tenant set acme --domain acme.example --relay-to 127.0.0.1:$SINK_PORT \
    --blocked-action quarantine >/dev/null
ctl tenant set bravo --domain bravo.example --relay-to 127.0.0.1:$SINK_PORT \
    --blocked-action quarantine >/dev/null
adduser() { echo "$PW" | ctl user add "$@" >/dev/null; }
adduser --tenant acme --role officer alice
adduser --tenant acme --role recipient --address Rita@Acme.example rita
adduser --tenant acme --role auditor aud
adduser --tenant bravo --role officer bob
check "archivectl user list shows a recipient's addresses" \
    sh -c "'$CTL_BIN' -d '$DATA' user list --tenant acme | grep -q '^rita .*recipient.*addresses=rita@acme.example'"
check "a malformed address is refused" \
    sh -c "echo '$PW' | '$CTL_BIN' -d '$DATA' user add --tenant acme --role recipient --address 'not an address' x 2>/dev/null; [ \$? -ne 0 ]"

# the clock: today 12:00 UTC (so the 18:00 digest is still to come)
NOON=$(( $(date -u +%s) / 86400 * 86400 + 12 * 3600 ))
OFF=$(( NOON - $(date -u +%s) ))
printf "%+d\n" "$OFF" >"$T/clock"   # "+N" / "-N": real time moved by N s
export AR_TEST_NOW=@$T/clock
set_conf gateway_listen 127.0.0.1:0
set_conf gateway_digest_time 18:00
set_conf checkpoint_interval 1s
archived_start_web
gw_ready() {
	GW_PORT=$(sed -n 's/.*gateway listen=.* port=\([0-9]*\) .*status=ready.*/\1/p' \
	    "$T/archived.log" | tail -1)
	[ -n "$GW_PORT" ]
}
wait_until 60 gw_ready || { echo "no gateway"; cat "$T/archived.log"; exit 1; }
# wait_for COMMAND...: until it holds (generous bound), or archived is gone
wait_for() {
	wait_until 120 started_or_gone "$ARCHIVED_PID" "$@"
	kill -0 "$ARCHIVED_PID" 2>/dev/null && "$@"
}

# --- mail through the gateway ----------------------------------------------------
# send FROM TO SUBJECT [clean]: a message with a program attachment (PE:
# quarantined by the policy), or without one
send() {
	python3 - "$T/m.eml" "$1" "$2" "$3" "${4:-}" <<'EOF'
import sys
from email.message import EmailMessage
path, frm, to, subj, clean = sys.argv[1:6]
m = EmailMessage()
m["From"] = frm
m["To"] = to
m["Subject"] = subj
m["Message-ID"] = "<%s@test>" % subj.replace(" ", ".")
m.set_content("Hello,\nthe figures for %s are attached.\n" % subj)
m.add_alternative("<p>figures <b>%s</b><script>alert('x')</script>"
                  "<img src='http://remote.example/t.png'></p>" % subj,
                  subtype="html")
if not clean:
    m.add_attachment(b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 120,
                     maintype="application", subtype="octet-stream",
                     filename="tool.bin")
open(path, "wb").write(bytes(m).replace(b"\n", b"\r\n"))
EOF
	swaks --server 127.0.0.1:$GW_PORT --from "$1" --to "$2" \
	    --data "$T/m.eml" >"$T/swaks.out" 2>&1
}
q_count() { ctl --json quarantine list --tenant "$1" 2>/dev/null |
    python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
has_q() { [ "$(q_count "$1")" -ge "$2" ]; }
send spam@evil.example rita@acme.example "Rita invoice one"
check "gateway: a program attachment is accepted (250) for quarantine" \
    grep -q '250 2.0.0 Ok: queued' "$T/swaks.out"
send other@evil.example carl@acme.example "Carl invoice two"
send other@evil.example carl@acme.example "Carl invoice three"
send other@evil.example carl@acme.example "Carl invoice four"
send promo@evil.example rita@acme.example "Rita promo five"
send news@bravo-partner.example bob@bravo.example "Bravo invoice six"
send friend@good.example rita@acme.example "Rita clean seven" clean
check "six quarantined (acme 5, bravo 1)" \
    wait_for eval 'has_q acme 5 && has_q bravo 1'
check "the clean message is delivered downstream" \
    wait_for sink_has "Rita clean seven"
check "a quarantined message is not delivered" \
    sh -c "! grep -rqF 'Carl invoice two' '$T/sink'"
ids() {   # ids TENANT SUBJECT
	ctl --json quarantine list --tenant "$1" 2>/dev/null | python3 -c "
import json,sys
for q in json.load(sys.stdin):
    if q.get('subject') == '$2': print(q['id'])"
}
ID1=$(ids acme "Rita invoice one")
ID2=$(ids acme "Carl invoice two")
ID3=$(ids acme "Carl invoice three")
ID4=$(ids acme "Carl invoice four")
ID5=$(ids acme "Rita promo five")
ID6=$(ids bravo "Bravo invoice six")

audit_has() {   # audit_has TENANT ACTION [TEXT]
	ctl log --tenant "$1" 2>/dev/null | grep "\"action\":\"$2\"" |
	    grep -qF -- "${3:-}"
}

# --- list and filters -----------------------------------------------------------
login acme alice
api GET /api/v1/quarantine
check "officer: list 200" code_is 200
check "officer: every held message of the tenant (5)" [ "$(js 'd["total"]')" = 5 ]
check "list rows carry sender, recipients, subject, verdict" \
    [ "$(js '[r for r in d["rows"] if r["id"]=="'$ID2'"][0]["mail_from"]+"|"+",".join([r for r in d["rows"] if r["id"]=="'$ID2'"][0]["rcpt_to"])+"|"+[r for r in d["rows"] if r["id"]=="'$ID2'"][0]["verdict"]')" = "other@evil.example|carl@acme.example|policy" ]
api GET "/api/v1/quarantine?recipient=rita%40acme.example"
check "filter by recipient" [ "$(js 'd["total"]')" = 2 ]
api GET "/api/v1/quarantine?sender=promo"
check "filter by sender" [ "$(js 'd["rows"][0]["subject"]')" = "Rita promo five" ]
api GET "/api/v1/quarantine?verdict=spam"
check "filter by verdict (none is spam)" [ "$(js 'd["total"]')" = 0 ]
api GET "/api/v1/quarantine?verdict=policy&state=held"
check "filter by verdict and state" [ "$(js 'd["total"]')" = 5 ]
TOMORROW=$(date -u -d @$((NOON + 86400)) +%F)
TODAY=$(date -u -d @$NOON +%F)
api GET "/api/v1/quarantine?from=$TOMORROW"
check "filter by date: none from tomorrow" [ "$(js 'd["total"]')" = 0 ]
api GET "/api/v1/quarantine?from=$TODAY&to=$TODAY"
check "filter by date: all of today" [ "$(js 'd["total"]')" = 5 ]
api GET "/api/v1/quarantine?from=yesterday"
check "a bad date: 400 bad_time" sh -c "[ $CODE = 400 ] && [ \"\$(python3 -c 'import json; print(json.load(open(\"$T/body\"))[\"error\"][\"code\"])')\" = bad_time ]"
check "the list is in the audit log with its filters" \
    audit_has acme quarantine_list '"recipient":"rita@acme.example"'

# --- preview ---------------------------------------------------------------------
api GET /api/v1/quarantine/$ID2
check "preview: 200" code_is 200
check "preview: the text part" [ "$(js '"figures for Carl invoice two" in d["text"]')" = True ]
check "preview: attachment named, not served" [ "$(js '[a["name"] for a in d["attachments"]]')" = "['tool.bin']" ]
check "preview: the verdict's reasons" [ "$(js 'any("pe" in x for x in d["reasons"])')" = True ]
HTML=$(js 'd["html_url"]')
curl -s -D "$T/hdr" -o "$T/html" -b "$T/jar.alice" "$WEB$HTML"
check "preview HTML: sandboxed by its policy" grep -qi '^content-security-policy: default-src .none.*sandbox' "$T/hdr"
check "preview HTML: no remote content allowed" sh -c "! grep -qi '^content-security-policy:.*img-src[^;]*http' '$T/hdr'"
check "preview is in the audit log" audit_has acme quarantine_view "$ID2"
check "preview HTML is in the audit log" audit_has acme quarantine_view_html "$ID2"

# --- roles --------------------------------------------------------------------------
login acme rita
api GET /api/v1/quarantine
check "recipient: its own mail only (2)" [ "$(js 'd["total"]')" = 2 ]
check "recipient: sees only its own address among the recipients" \
    [ "$(js 'sorted(set(a for r in d["rows"] for a in r["rcpt_to"]))')" = "['rita@acme.example']" ]
check "recipient: no delete offered" [ "$(js 'd["can_delete"]')" = False ]
api GET /api/v1/quarantine/$ID2
check "recipient: another recipient's message is 404" code_is 404
check "... and audited as denied" audit_has acme denied "$ID2"
api POST /api/v1/quarantine/$ID5/delete '{}'
check "recipient: delete is 403" code_is 403
RITA_CSRF=$CSRF
login acme aud
api GET /api/v1/quarantine
check "auditor: the quarantine is 403" code_is 403

# --- tenant isolation --------------------------------------------------------------
login bravo bob
api GET /api/v1/quarantine
check "bravo's officer sees bravo's quarantine only (1)" [ "$(js 'd["total"]')" = 1 ]
api GET /api/v1/quarantine/$ID2
check "another tenant's id: 404" code_is 404
check "... with an audit entry in the caller's log" audit_has bravo denied "$ID2"
api POST /api/v1/quarantine/$ID2/release '{}'
check "another tenant's id: release is 404" code_is 404
api GET /api/v1/quarantine/$ID2/body.html
check "another tenant's id: HTML is 404" code_is 404
check "acme's message unchanged by bravo's attempts" \
    sh -c "'$CTL_BIN' -d '$DATA' --json quarantine show --tenant acme $ID2 | grep -q '\"state\": *\"held\"'"

# --- release, release-and-allow, delete ------------------------------------------
login acme alice
CSRF_SAVE=$CSRF
CSRF=
api POST /api/v1/quarantine/$ID2/release '{}'
check "release without the CSRF token: 403" code_is 403
CSRF=$CSRF_SAVE
api POST /api/v1/quarantine/$ID2/release '{"reason":"customer asked"}'
check "officer: release 200" code_is 200
check "released: delivered downstream through the relay" \
    wait_for sink_has "Carl invoice two"
released() { ctl --json quarantine show --tenant acme "$1" 2>/dev/null | grep -q '"state": *"released"'; }
check "... and marked released" wait_for released "$ID2"
check "... exactly once" [ "$(sink_count 'Subject: Carl invoice two')" = 1 ]
api POST /api/v1/quarantine/$ID2/release '{}'
check "a second release: 409" code_is 409
check "the release is in the audit log with its reason" \
    audit_has acme quarantine_release '"reason":"customer asked"'
api POST /api/v1/quarantine/$ID3/delete '{}'
check "officer: delete 200" code_is 200
api GET /api/v1/quarantine/$ID3
check "deleted: the record stays, the message is gone" \
    [ "$(js 'd["state"]+"|"+str(d["text"])')" = "deleted|None" ]
api POST /api/v1/quarantine/$ID3/release '{}'
check "a deleted message cannot be released" code_is 409
check "the delete is in the audit log" audit_has acme quarantine_delete "$ID3"
login acme rita
api POST /api/v1/quarantine/$ID5/release '{"allow_sender":true}'
check "recipient: release-and-allow of its own message" code_is 200
check "... the sender allowed for the recipient only" \
    sh -c "'$CTL_BIN' -d '$DATA' gateway allow list --tenant acme --for rita@acme.example | grep -q 'promo@evil.example'"
check "... not tenant-wide" \
    sh -c "! '$CTL_BIN' -d '$DATA' gateway allow list --tenant acme | grep -qE '^promo@evil.example *\$'"
check "... delivered" wait_for sink_has "Rita promo five"

# --- verdict counts ----------------------------------------------------------------
login acme alice
counted() { api GET /api/v1/gateway/stats?days=7; [ "$(js 'd["totals"]["quarantined"]')" -ge 5 ]; }
check "gateway counts: the quarantined ones" wait_for counted
check "gateway counts: the delivered one, by verdict too" \
    [ "$(js 'str(d["totals"]["delivered"])+"|"+str(d["totals"]["policy"])+"|"+str(d["totals"]["clean"])')" = "1|5|1" ]
check "gateway counts: one row a day" [ "$(js 'len(d["days"])')" = 7 ]
curl -s -D "$T/hdr" -o "$T/chart.svg" -b "$T/jar.alice" "$WEB/api/v1/gateway/chart.svg?days=7"
check "chart: an SVG drawn by the server" grep -qi '^content-type: image/svg+xml' "$T/hdr"
check "chart: bars by verdict" grep -q 'class="bar-policy"' "$T/chart.svg"
check "chart: no script in it" sh -c "! grep -qi '<script' '$T/chart.svg'"
login acme rita
api GET /api/v1/gateway/stats
check "recipient: gateway counts are 403" code_is 403

# --- the daily digest ---------------------------------------------------------------
check "no digest before its time" sh -c "! grep -rqF 'Quarantine digest' '$T/sink'"
printf "%+d\n" $((OFF + 7 * 3600)) >"$T/clock"   # 19:00: the 18:00 digest is due
digest_for() { grep -rlF "To: <$1>" "$T/sink" 2>/dev/null | xargs -r grep -lF 'Subject: Quarantine digest'; }
has_digest() { [ -n "$(digest_for "$1")" ]; }
check "digest: sent to rita through the relay" wait_for has_digest rita@acme.example
check "digest: sent to carl" wait_for has_digest carl@acme.example
check "digest: sent to bravo's recipient" wait_for has_digest bob@bravo.example
RD=$(digest_for rita@acme.example | head -1)
CD=$(digest_for carl@acme.example | head -1)
check "rita's digest lists her held message" grep -qF "Rita invoice one" "$RD"
check "rita's digest lists nothing of carl's" sh -c "! grep -qF 'Carl invoice' '$RD'"
# link FILE SUBJECT: the JSON body of the release link listed after SUBJECT
link() {
	python3 - "$1" "$2" <<'EOF'
import json, sys, urllib.parse
text = open(sys.argv[1], encoding="utf-8", errors="replace").read()
part = text[text.index(sys.argv[2]):]
url = part[part.index("Release:"):].split()[1]
frag = urllib.parse.parse_qs(url.split("#", 1)[1])
print(json.dumps({k: v[0] for k, v in frag.items()}))
EOF
}
L1=$(link "$RD" "Rita invoice one")
L4=$(link "$CD" "Carl invoice four")
check "digest links carry no password and point at the console" \
    grep -q 'Release:  http://.*/release.html#t=' "$RD"
JAR=$T/jar.none
rm -f "$JAR"
CSRF=
api POST /api/v1/digest-link/info "$L1"
check "digest link: shows the message (no session)" \
    [ "$CODE:$(js 'd["subject"]')" = "200:Rita invoice one" ]
OTHER=$(python3 -c "import json,sys; d=json.loads(sys.argv[1]); d['r']='carl@acme.example'; print(json.dumps(d))" "$L1")
api POST /api/v1/digest-link/release "$OTHER"
check "digest link for another recipient: 403" code_is 403
WRONGID=$(python3 -c "import json,sys; a=json.loads(sys.argv[1]); b=json.loads(sys.argv[2]); a['q']=b['q']; print(json.dumps(a))" "$L1" "$L4")
api POST /api/v1/digest-link/release "$WRONGID"
check "rita's link turned to carl's message: 403" code_is 403
LATER=$(python3 -c "import json,sys; d=json.loads(sys.argv[1]); d['e']=str(int(d['e'])+86400); print(json.dumps(d))" "$L1")
api POST /api/v1/digest-link/release "$LATER"
check "a link with its expiry moved: 403" code_is 403
check "... nothing released by those" \
    sh -c "'$CTL_BIN' -d '$DATA' --json quarantine show --tenant acme $ID1 | grep -q '\"state\": *\"held\"'"
api POST /api/v1/digest-link/release "$L1"
check "digest link: releases (200)" code_is 200
check "... delivered downstream" wait_for sink_has "Subject: Rita invoice one"
api POST /api/v1/digest-link/release "$L1"
check "digest link: works once (410 link_used)" \
    [ "$CODE:$(js 'd["error"]["code"]')" = "410:link_used" ]
check "... delivered exactly once" [ "$(sink_count 'Subject: Rita invoice one')" = 1 ]
check "the digest release is audited, by the link's recipient" \
    audit_has acme digest_release '"recipient":"rita@acme.example","result":"released"'
check "the refused links are audited" \
    audit_has acme digest_release '"result":"bad_signature"'
printf "%+d\n" $((OFF + 7 * 3600 + 4 * 86400)) >"$T/clock"   # past the 3-day links
api POST /api/v1/digest-link/release "$L4"
check "digest link: expires (410 link_expired)" \
    [ "$CODE:$(js 'd["error"]["code"]')" = "410:link_expired" ]
check "... the message stays held" \
    sh -c "'$CTL_BIN' -d '$DATA' --json quarantine show --tenant acme $ID4 | grep -q '\"state\": *\"held\"'"
check "the expired link is audited" audit_has acme digest_release '"result":"expired"'
api POST /api/v1/digest-link/release '{"t":"x"}'
check "a mangled link: 400" code_is 400

# --- nothing in plaintext ---------------------------------------------------------
check "no subject of quarantined mail in the data directory" \
    sh -c "! grep -rqaF 'Carl invoice four' '$DATA'"
check "no recipient address in the data directory" \
    sh -c "! grep -rqaF 'rita@acme.example' '$DATA'"
archived_stop
check "verify passes" ctl verify
