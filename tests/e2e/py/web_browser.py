#!/usr/bin/python3
"""web_browser.py URL TENANT USER PASSWORD SHOTS_DIR DOWNLOAD_DIR EML_DIR
                  AUDITOR OPERATOR

Drives the console in headless Chromium (Debian chromium + chromedriver,
Selenium from python3-selenium): a failed sign-in, signs in, searches,
opens a message, downloads its .eml, checks that HTML/JS payloads stay
inert and that bidi controls in names show as marks, reads the audit log
(its filter, its layout at 1366 px) and finds its own actions, makes a
hold and an export and deletes it (confirmed), then signs in as AUDITOR
and OPERATOR (same password; OPERATOR has no tenant) and follows links to
pages their roles do not include.  Screenshots go to SHOTS_DIR.  Prints
"ok: ..." / "FAIL: ..." lines; the exit status is the number of failures.
"""
import os
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import (NoAlertPresentException,
                                        StaleElementReferenceException,
                                        TimeoutException)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

url, tenant, user, password, shots, downloads, emls, auditor, operator = \
    sys.argv[1:10]
failed = 0


def check(what, cond):
    global failed
    print(("ok: " if cond else "FAIL: ") + what, flush=True)
    if not cond:
        failed += 1


opts = webdriver.ChromeOptions()
opts.binary_location = "/usr/bin/chromium"
# no background connections: a closed network refuses them, and each start
# would try (scripts/deps.sh --check starts Chromium the same way)
for a in ("--headless=new", "--no-sandbox", "--disable-gpu",
          "--disable-dev-shm-usage", "--window-size=1366,900",
          "--no-first-run", "--disable-extensions", "--disable-quic",
          "--disable-background-networking", "--disable-component-update",
          "--disable-sync"):
    opts.add_argument(a)
opts.add_experimental_option("prefs", {
    "download.default_directory": downloads,
    "download.prompt_for_download": False,
})
drv = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
# generous bounds: each wait ends as soon as its condition holds, the bound
# only matters when it never does (a loaded machine is slow, not wrong)
drv.set_page_load_timeout(120)
# the page re-renders while it is read: a stale element means "look again"
wait = WebDriverWait(drv, 120, ignored_exceptions=[StaleElementReferenceException])
drv.execute_cdp_cmd("Page.setDownloadBehavior",
                    {"behavior": "allow", "downloadPath": downloads})


def shot(name):
    drv.save_screenshot(os.path.join(shots, name + ".png"))


def visible(id_):
    return wait.until(EC.visibility_of_element_located((By.ID, id_)))


def no_alert():
    try:
        drv.switch_to.alert
        return False
    except NoAlertPresentException:
        return True


def wait_file(suffix):
    """The first file in the download directory ending in suffix (a
    finished download: Chromium renames it once complete), or None."""
    end = time.monotonic() + 120
    while time.monotonic() < end:
        done = [f for f in os.listdir(downloads) if f.endswith(suffix)]
        if done:
            return os.path.join(downloads, done[0])
        time.sleep(0.1)
    return None


def frame_loaded(d):
    """The message's HTML iframe has loaded its document (and so tried
    whatever payload it carries)."""
    d.switch_to.frame(d.find_element(By.ID, "msg-html"))
    try:
        return d.execute_script("return document.readyState") == "complete" \
            and d.execute_script("return location.href") != "about:blank"
    finally:
        d.switch_to.default_content()


def search(q):
    box = visible("q")
    box.clear()
    box.send_keys(q)
    drv.find_element(By.ID, "search-submit").click()


def sign_in(t, u, pw):
    for f, v in (("login-tenant", t), ("login-user", u), ("login-password", pw)):
        e = visible(f)
        e.clear()
        e.send_keys(v)
    drv.find_element(By.ID, "login-submit").click()


HIDDEN = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200b\u200e\u200f\u061c"


def has_hidden(text):
    return any(c in text for c in HIDDEN)


try:
    drv.get(url + "/")
    visible("login-user")
    shot("01-sign-in")
    check("a favicon is linked",
          drv.execute_script("const l = document.querySelector('link[rel=icon]');"
                             " return l ? l.getAttribute('href') : null") == "/favicon.svg")
    check("... and served as an image",
          drv.execute_async_script(
              "const done = arguments[0]; fetch('/favicon.svg').then("
              "r => done(r.status + ' ' + r.headers.get('content-type')))"
              ".catch(e => done(String(e)))") == "200 image/svg+xml")
    sign_in(tenant, user, "not-the-password")
    wait.until(lambda d: d.find_element(By.ID, "login-error").text != "")
    check("a failed sign-in says so",
          "wrong" in drv.find_element(By.ID, "login-error").text)
    check("... and empties the password field",
          drv.find_element(By.ID, "login-password").get_attribute("value") == "")
    sign_in(tenant, user, password)
    visible("q")
    check("signed in: the search page is shown", True)
    check("who is signed in is shown",
          user in drv.find_element(By.ID, "who").text)

    search("budget")
    wait.until(lambda d: "Quarterly" in d.find_element(By.ID, "results-body").text)
    rows = drv.find_elements(By.CSS_SELECTOR, "#results-body tr")
    check("search: one result with its subject",
          len(rows) == 1 and "Quarterly budget review" in rows[0].text)
    check("search: total shown",
          "1 message match" in drv.find_element(By.ID, "search-summary").text)
    check("search: snippet highlighted",
          len(drv.find_elements(By.CSS_SELECTOR, "#results-body mark")) >= 1)
    shot("02-results")

    search("from:(")
    visible("query-error")
    caret = drv.find_element(By.ID, "query-error-caret").text
    check("query error shown at its position", "^" in caret)
    shot("03-query-error")

    search("xsssubject")
    wait.until(lambda d: "xsssubject" in d.find_element(By.ID, "results-body").text)
    cell = drv.find_element(By.CSS_SELECTOR, "#results-body tr").text
    check("XSS subject shown as text in the list", "<script>alert('subject')</script>" in cell)
    check("XSS: no element injected in the list",
          len(drv.find_elements(By.CSS_SELECTOR, "#results img, #results script")) == 0)
    check("XSS: no alert in the list", no_alert())
    shot("04-xss-list")
    drv.find_element(By.CSS_SELECTOR, "#results-body a.subject").click()
    wait.until(lambda d: "xsssubject" in d.find_element(By.ID, "msg-subject").text)
    wait.until(frame_loaded)    # the iframe loaded (and tried its payloads)
    check("XSS: subject shown as text in the view",
          "<img src=x onerror=alert(1)>" in drv.find_element(By.ID, "msg-subject").text)
    check("XSS: sender (headers) and attachment name shown as text",
          "<img src=x onerror=alert('from')>" in
          drv.find_element(By.ID, "msg-headers").get_attribute("textContent")
          and "onerror=alert('att')" in drv.find_element(By.ID, "msg-attachments").text)
    check("XSS: no element injected in the view",
          len(drv.find_elements(By.CSS_SELECTOR, "main article img, main article script")) == 0)
    frame = drv.find_element(By.ID, "msg-html")
    check("HTML body in an iframe sandboxed without scripts",
          frame.get_attribute("sandbox") == "")
    check("XSS: no alert, page title intact", no_alert() and "pwned" not in drv.title)
    shot("05-xss-message")

    # names and subjects with bidi controls and invisible characters
    drv.get(url + "/#/search?q=spoofcheck")
    wait.until(lambda d: "spoofcheck" in d.find_element(By.ID, "results-body").text)
    row = drv.find_element(By.CSS_SELECTOR, "#results-body tr")
    check("list: the subject's U+202E shown as a mark, not applied",
          "Invoice \u27e8U+202E\u27e9fdp.exe spoofcheck" in row.text
          and not has_hidden(row.get_attribute("textContent")))
    row.find_element(By.CSS_SELECTOR, "a.subject").click()
    wait.until(lambda d: "spoofcheck" in d.find_element(By.ID, "msg-subject").text)
    atts = drv.find_element(By.ID, "msg-attachments")
    check("message: attachment names with their marks (invoice\u27e8U+202E\u27e9fdp.exe)",
          "invoice\u27e8U+202E\u27e9fdp.exe \u2014 application/octet-stream" in atts.text
          and "re\u27e8U+200B\u27e9port\u27e8U+2066\u27e9.pdf \u2014 application/pdf" in atts.text)
    check("message: no bidi control or invisible character left on the page",
          not has_hidden(drv.find_element(By.TAG_NAME, "main").get_attribute("textContent")))
    check("message: the marks are styled elements (span.cf)",
          len(drv.find_elements(By.CSS_SELECTOR, "#msg-attachments span.cf")) == 3
          and len(drv.find_elements(By.CSS_SELECTOR, "#msg-subject span.cf")) == 1)
    # nothing after the name is turned around: the text that follows the
    # link is laid out to its right
    first = drv.find_element(By.CSS_SELECTOR, "#msg-attachments li")
    lx = drv.execute_script(
        "const li = arguments[0], a = li.querySelector('a');"
        "const r = document.createRange(); r.setStart(li.lastChild, 0);"
        "r.setEnd(li.lastChild, li.lastChild.length);"
        "return [a.getBoundingClientRect().right, r.getBoundingClientRect().left];", first)
    check("message: the text after a name stays after it (%s)" % lx, lx[1] >= lx[0] - 1)
    shot("05b-bidi-names")

    # a query carrying markup: it is in the audit log, as text
    drv.get(url + "/#/search")
    # a query word too long for any column: the audit log must still fit
    search("unbrokenquerywordthatgoesonandon" * 6 + " budget")
    wait.until(lambda d: "match" in d.find_element(By.ID, "search-summary").text
               or d.find_element(By.ID, "query-error").is_displayed())
    search("<img src=x onerror=alert('query')> budget")
    wait.until(lambda d: "match" in d.find_element(By.ID, "search-summary").text
               or d.find_element(By.ID, "query-error").is_displayed())
    drv.get(url + "/#/audit")
    visible("audit-body")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#audit-body tr")) > 0)
    check("XSS: the markup query is in the audit log as text",
          "onerror=alert('query')" in drv.find_element(By.ID, "audit-body").text)
    check("XSS: audit log rows hold no injected element",
          len(drv.find_elements(By.CSS_SELECTOR, "#audit-body img, #audit-body script")) == 0)

    drv.get(url + "/#/search?q=budget")
    wait.until(lambda d: "Quarterly" in d.find_element(By.ID, "results-body").text)

    def open_row(d):
        d.find_element(By.CSS_SELECTOR, "#results-body tr td.c-from").click()
        return True
    wait.until(open_row)
    wait.until(lambda d: "Quarterly budget review" in d.find_element(By.ID, "msg-subject").text)
    check("message view: envelope and attachment",
          "carol@acme.example" in drv.find_element(By.ID, "msg-envelope").text
          and "figures.txt" in drv.find_element(By.ID, "msg-attachments").text)
    check("message view: text body",
          "contract renewal" in drv.find_element(By.ID, "msg-text").text)
    shot("06-message")
    drv.find_element(By.ID, "msg-download").click()
    got = wait_file(".eml")
    with open(os.path.join(emls, "budget.eml"), "rb") as f:
        want = f.read()
    check("the .eml is downloaded, byte for byte",
          got is not None and open(got, "rb").read() == want)

    drv.get(url + "/#/audit")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#audit-body tr")) > 5)
    text = drv.find_element(By.ID, "audit-body").text
    for action in ("signin", "search", "view", "download_original"):
        check("audit log shows my " + action,
              any(action in r.text and user in r.text
                  for r in drv.find_elements(By.CSS_SELECTOR, "#audit-body tr")))
    check("audit log shows the query I searched", "xsssubject" in text)
    opts = [o.get_attribute("value") or o.text for o in
            drv.find_elements(By.CSS_SELECTOR, "#audit-action option")]
    want = ["hold-create", "hold-release", "export_start", "export", "export_download",
            "export_delete", "signin_throttled", "account_locked", "ingest", "view_html",
            "csrf_rejected", "forbidden", "denied", "unauthenticated", "dispose",
            "signin_failed"]
    check("audit filter lists every action officers need (missing: %s)"
          % [w for w in want if w not in opts], all(w in opts for w in want))
    sw = drv.execute_script("return [document.documentElement.scrollWidth,"
                            " document.documentElement.clientWidth, window.innerWidth]")
    check("audit log at 1366 px: no sideways scroll (%s)" % sw, sw[0] <= sw[1])
    lines = drv.execute_script(
        "return Array.from(document.querySelectorAll('#audit-body td.c-time')).map(td => {"
        " const r = document.createRange(); r.selectNodeContents(td);"
        " const rects = Array.from(r.getClientRects()).filter(x => x.width > 0);"
        " return [rects.length, td.scrollWidth <= td.clientWidth]; })")
    check("audit log: every time on one line, inside its cell (%d rows)" % len(lines),
          lines and all(n == 1 and fits for n, fits in lines))
    detail = " ".join(c.text for c in drv.find_elements(By.CSS_SELECTOR, "#audit-body td.c-detail"))
    check("audit log: details as name: value text, not JSON",
          "query: " in detail and '{"' not in detail and '":"' not in detail)
    check("audit log: method and status under the action",
          any("GET 200" in c.text for c in drv.find_elements(By.CSS_SELECTOR, "#audit-body td.c-action")))
    shot("07-audit")
    sel = drv.find_element(By.ID, "audit-action")
    for o in sel.find_elements(By.TAG_NAME, "option"):
        if o.text == "view":
            o.click()
    drv.find_element(By.ID, "audit-submit").click()

    def actions(d):
        a = [c.text.split("\n")[0] for c in
             d.find_elements(By.CSS_SELECTOR, "#audit-body td.c-action")]
        return a if a and all(x == "view" for x in a) else False
    try:
        got = wait.until(actions)
    except Exception:
        got = []
    check("audit filter by action (%d view entries)" % len(got), len(got) >= 1)
    # legal holds: create one by custodian, see its count, then the
    # message view naming it (the user holds legal besides officer)
    drv.get(url + "/#/holds")
    visible("hold-name").send_keys("matter-1")
    drv.find_element(By.ID, "hold-description").send_keys("Budget <b>inquiry</b>")
    drv.find_element(By.ID, "hold-custodians").send_keys("carol@acme.example")
    drv.find_element(By.ID, "hold-submit").click()
    wait.until(lambda d: "matter-1" in d.find_element(By.ID, "holds-body").text)
    row = drv.find_element(By.CSS_SELECTOR, "#holds-body tr").text
    check("holds page: the new hold, active, covering 1 message",
          "active" in row and "carol@acme.example" in row and "\t1\t" in
          "\t".join(c.text for c in drv.find_elements(
              By.CSS_SELECTOR, "#holds-body tr:first-child td")))
    check("holds page: description shown as text",
          "Budget <b>inquiry</b>" in row)
    shot("08-holds")
    drv.find_element(By.ID, "hold-query").send_keys("subject:(budget")
    drv.find_element(By.ID, "hold-name").send_keys("2")
    drv.find_element(By.ID, "hold-submit").click()
    wait.until(lambda d: d.find_element(By.ID, "hold-error").text != "")
    check("holds page: a bad query is shown with its position",
          "column" in drv.find_element(By.ID, "hold-error").text)
    drv.find_element(By.ID, "hold-query").clear()
    drv.get(url + "/#/search?q=budget")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results-body tr")) == 1)
    drv.find_element(By.CSS_SELECTOR, "#results-body a.subject").click()
    wait.until(lambda d: "matter-1" in d.find_element(By.ID, "msg-holds").text)
    check("message view lists the covering hold", True)
    shot("09-message-hold")
    # export the search results as a background job, then download it
    drv.get(url + "/#/search?q=budget")
    visible("export-results").click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#exports-body a.button"))
    check("exports page: the job is done with a download link",
          "done" in drv.find_element(By.ID, "exports-body").text)
    shot("10-exports")
    drv.find_element(By.CSS_SELECTOR, "#exports-body a.button").click()
    got = wait_file(".zip")
    ok = False
    if got:
        import zipfile
        with zipfile.ZipFile(got) as zf:
            ok = "manifest.sha256" in zf.namelist() and any(
                n.endswith(".eml") for n in zf.namelist())
    check("the export ZIP downloads and holds the .eml and manifest", ok)

    def delete_button(d):
        b = [x for x in d.find_elements(By.CSS_SELECTOR, "#exports-body button")
             if x.text == "Delete"]
        return b[0] if b else False
    wait.until(delete_button).click()
    wait.until(EC.alert_is_present())
    al = drv.switch_to.alert
    check("deleting an export asks first (%s)" % al.text.splitlines()[0],
          "Delete this export" in al.text)
    al.dismiss()
    time.sleep(0.5)
    check("... and 'Cancel' keeps it",
          len(drv.find_elements(By.CSS_SELECTOR, "#exports-body tr")) == 1)
    wait.until(delete_button).click()
    wait.until(EC.alert_is_present())
    drv.switch_to.alert.accept()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#exports-body tr")) == 0)
    check("... 'OK' deletes it", True)

    drv.find_element(By.ID, "signout").click()
    visible("login-user")
    check("signed out", True)
    shot("11-signed-out")

    # links to pages a role does not include land on the role's own page
    sign_in(tenant, auditor, password)
    visible("audit-body")
    for link in ("/#/search?q=budget", "/#/message/00000000000000000000000000000000"):
        drv.get(url + link)
        wait.until(lambda d: d.execute_script("return location.hash").startswith("#/audit"))
        visible("audit-body")
        check("auditor following %s: the audit log, no search form, no error" % link,
              not drv.find_element(By.ID, "view-search").is_displayed()
              and not drv.find_element(By.ID, "query-error").is_displayed()
              and not drv.find_element(By.ID, "view-message").is_displayed())
    check("... with a note saying why",
          "does not include" in drv.find_element(By.ID, "flash").get_attribute("textContent"))
    shot("12-auditor-link")
    drv.find_element(By.ID, "signout").click()
    visible("login-user")
    sign_in("", operator, password)
    visible("tenants-body")
    drv.get(url + "/#/search?q=budget")
    wait.until(lambda d: d.execute_script("return location.hash").startswith("#/tenants"))
    visible("tenants-body")
    check("operator following a search link: the tenants page, no search form",
          not drv.find_element(By.ID, "view-search").is_displayed()
          and not drv.find_element(By.ID, "query-error").is_displayed())
    wait.until(lambda d: "acme" in d.find_element(By.ID, "tenants-body").text)
    check("tenants page: the state by name",
          "active" in drv.find_element(By.ID, "tenants-body").text)
    shot("13-operator-link")
except Exception as e:  # a timeout or a missing element is a failure
    check("browser run: %s: %s" % (type(e).__name__, str(e).splitlines()[0] if str(e) else ""), False)
    try:
        shot("99-failure")
    except Exception:
        pass
finally:
    drv.quit()
sys.exit(min(failed, 100))
