#!/bin/bash
# t_web_browser.sh - the console in headless Chromium (Selenium/WebDriver,
# Debian packages): a failed sign-in (password cleared), sign in, search,
# query error, a message with HTML/JS payloads rendered inert, attachment
# names and a subject with bidi controls shown as marks, a message view and
# its .eml download, the favicon, the audit log with the user's own actions
# (every action in its filter; at 1366 px no sideways scroll, times on one
# line, details as text), holds, an export and its confirmed deletion, and
# an auditor and an operator following links to pages their roles do not
# include; the quarantine and gateway pages, and the delivery page (the
# relay queue: hold, release, retry by an admin).  Screenshots are kept in $AR_BUILD_DIR/e2e-artifacts/t_web_browser/.
. "$(dirname "$0")/lib.sh"
W=$S/tests/e2e/web
PW='Corr3ct-horse-battery'
SHOTS=$B/e2e-artifacts/t_web_browser
rm -rf "$SHOTS" && mkdir -p "$SHOTS" "$T/downloads" "$T/acme"
archive_init
ctl tenant add acme --journal-address journal@acme.example >/dev/null
echo "$PW" | ctl user add --tenant acme --role officer,auditor,legal alice >/dev/null
echo "$PW" | ctl user add --tenant acme --role auditor audra >/dev/null
echo "$PW" | ctl user add --operator opal >/dev/null
echo "$PW" | ctl user add --tenant acme --role admin,officer adam >/dev/null
cp "$W/xss.eml" "$W/budget.eml" "$W/spoof.eml" "$T/acme/"
ctl import --tenant acme "$T/acme" >/dev/null 2>&1
"$B/tests/tools/index_tenant" "$DATA" acme >/dev/null
# the gateway too, with a downstream server, for the quarantine pages
SINK_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$T/sink"
smtp-sink -u root -h sink.test -d "$T/sink/%H%M%S." 127.0.0.1:$SINK_PORT 16 \
    >>"$T/sink.log" 2>&1 &
PIDS+=($!)
ctl tenant set acme --domain acme.example --relay-to 127.0.0.1:$SINK_PORT \
    --blocked-action quarantine >/dev/null
set_conf gateway_listen 127.0.0.1:0
archived_start_web
# a fresh profile per run; chromium's own output goes to its log
export HOME=$T/home
mkdir -p "$HOME"
/usr/bin/python3 "$S/tests/e2e/py/web_browser.py" "$WEB" acme alice "$PW" \
    "$SHOTS" "$T/downloads" "$W" audra opal 2>"$T/chromium.log" >"$T/browser.out"
rc=$?
cat "$T/browser.out"
PASSED=$((PASSED + $(grep -c '^ok: ' "$T/browser.out")))
FAILED=$((FAILED + $(grep -c '^FAIL: ' "$T/browser.out")))
check "the browser run ended cleanly" [ "$rc" -eq 0 ]
check "screenshots saved" [ "$(ls "$SHOTS"/*.png | wc -l)" -ge 10 ]
[ "$rc" -ne 0 ] && tail -20 "$T/chromium.log"

# --- the quarantine and gateway pages ---------------------------------------
GW_PORT=$(sed -n 's/.*gateway listen=.* port=\([0-9]*\) .*status=ready.*/\1/p' \
    "$T/archived.log" | tail -1)
python3 - "$T/q.eml" <<'EOF'
import sys
from email.message import EmailMessage
m = EmailMessage()
m["From"] = "evil@spam.example"
m["To"] = "carol@acme.example"
m["Subject"] = "<b>Quarantined</b> report"
m.set_content("the quarterly figures\n")
m.add_alternative("<p>figures<script>alert('q')</script></p>", subtype="html")
m.add_attachment(b"MZ\x90\x00" + b"\x00" * 60, maintype="application",
                 subtype="octet-stream", filename="tool.bin")
open(sys.argv[1], "wb").write(bytes(m).replace(b"\n", b"\r\n"))
EOF
swaks --server 127.0.0.1:$GW_PORT --from evil@spam.example \
    --to carol@acme.example --data "$T/q.eml" >"$T/swaks.out" 2>&1
held() { ctl --json quarantine list --tenant acme 2>/dev/null | grep -q '"id"'; }
check "a message quarantined by the gateway" wait_until 120 held
/usr/bin/python3 "$S/tests/e2e/py/web_browser_quarantine.py" "$WEB" acme \
    alice "$PW" "$SHOTS" 2>>"$T/chromium.log" >"$T/browser-q.out"
rc=$?
cat "$T/browser-q.out"
PASSED=$((PASSED + $(grep -c '^ok: ' "$T/browser-q.out")))
FAILED=$((FAILED + $(grep -c '^FAIL: ' "$T/browser-q.out")))
check "the quarantine browser run ended cleanly" [ "$rc" -eq 0 ]
delivered() { grep -rqF 'Quarantined</b> report' "$T/sink" 2>/dev/null; }
check "the release confirmed in the browser is delivered downstream" \
    wait_until 120 delivered

# --- the delivery page (the relay queue) --------------------------------------
relay_delivered() {
	ctl --json relay stats --tenant acme 2>/dev/null | python3 -c \
	    'import json,sys; sys.exit(0 if json.load(sys.stdin)["totals"]["delivered"] >= 1 else 1)'
}
check "the delivery is counted (relay stats)" wait_until 120 relay_delivered
/usr/bin/python3 "$S/tests/e2e/py/web_browser_relay.py" "$WEB" acme \
    adam "$PW" "$SHOTS" acme.example 2>>"$T/chromium.log" >"$T/browser-r.out"
rc=$?
cat "$T/browser-r.out"
PASSED=$((PASSED + $(grep -c '^ok: ' "$T/browser-r.out")))
FAILED=$((FAILED + $(grep -c '^FAIL: ' "$T/browser-r.out")))
check "the delivery browser run ended cleanly" [ "$rc" -eq 0 ]
relay_audited() {
	ctl log --tenant acme 2>/dev/null | grep '"action":"relay_hold"' | grep -q '"user":"adam"' &&
	    ctl log --tenant acme 2>/dev/null | grep -q '"action":"relay_release"' &&
	    ctl log --tenant acme 2>/dev/null | grep -q '"action":"relay_retry"'
}
check "hold, release and retry from the browser are in the tenant's log" relay_audited
check "acme.example is not held at the end" \
    sh -c "! '$CTL_BIN' -d '$DATA' tenant show acme | grep 'acme.example' | grep -q HELD"
archived_stop
check "verify passes" ctl verify
