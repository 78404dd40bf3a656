#!/bin/bash
# t_web_browser.sh - the console in headless Chromium (Selenium/WebDriver,
# Debian packages): a failed sign-in (password cleared), sign in, search,
# query error, a message with HTML/JS payloads rendered inert, attachment
# names and a subject with bidi controls shown as marks, a message view and
# its .eml download, the favicon, the audit log with the user's own actions
# (every action in its filter; at 1366 px no sideways scroll, times on one
# line, details as text), holds, an export and its confirmed deletion, and
# an auditor and an operator following links to pages their roles do not
# include.  Screenshots are kept in $AR_BUILD_DIR/e2e-artifacts/t_web_browser/.
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
cp "$W/xss.eml" "$W/budget.eml" "$W/spoof.eml" "$T/acme/"
ctl import --tenant acme "$T/acme" >/dev/null 2>&1
"$B/tests/tools/index_tenant" "$DATA" acme >/dev/null
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
archived_stop
check "verify passes" ctl verify
