#!/usr/bin/python3
"""web_browser_quarantine.py URL TENANT USER PASSWORD SHOTS_DIR

The console's Quarantine and Gateway pages in headless Chromium (as
web_browser.py): signs in as an officer, lists the quarantine (a subject
carrying markup stays text), opens a message (its HTML part in a sandboxed
iframe), asks for a release, cancels, asks again and confirms; then the
gateway page with its chart.  Prints "ok: ..." / "FAIL: ..." lines; the
exit status is the number of failures.
"""
import os
import sys

from selenium import webdriver
from selenium.common.exceptions import (NoAlertPresentException,
                                        StaleElementReferenceException)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

url, tenant, user, password, shots = sys.argv[1:6]
failed = 0


def check(what, cond):
    global failed
    print(("ok: " if cond else "FAIL: ") + what, flush=True)
    if not cond:
        failed += 1


opts = webdriver.ChromeOptions()
opts.binary_location = "/usr/bin/chromium"
for a in ("--headless=new", "--no-sandbox", "--disable-gpu",
          "--disable-dev-shm-usage", "--window-size=1366,900",
          "--no-first-run", "--disable-extensions", "--disable-quic",
          "--disable-background-networking", "--disable-component-update",
          "--disable-sync"):
    opts.add_argument(a)
drv = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
drv.set_page_load_timeout(120)
wait = WebDriverWait(drv, 120,
                     ignored_exceptions=[StaleElementReferenceException])


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


try:
    drv.get(url + "/")
    visible("login-user")
    drv.find_element(By.ID, "login-tenant").send_keys(tenant)
    drv.find_element(By.ID, "login-user").send_keys(user)
    drv.find_element(By.ID, "login-password").send_keys(password)
    drv.find_element(By.ID, "login-submit").click()
    visible("nav-quarantine").click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#q-body tr.row"))
    rows = drv.find_elements(By.CSS_SELECTOR, "#q-body tr.row")
    check("quarantine page: the held message listed", len(rows) == 1)
    subj = rows[0].find_element(By.CSS_SELECTOR, "a.subject").text
    check("quarantine page: a subject with markup shown as text",
          "<b>Quarantined</b>" in subj)
    check("quarantine page: no element injected",
          not drv.find_elements(By.CSS_SELECTOR, "#q-body b"))
    check("quarantine page: sender and verdict shown",
          "evil@spam.example" in rows[0].text and "policy" in rows[0].text)
    wait.until(lambda d: "1 message" in d.find_element(By.ID,
                                                        "q-summary").text)
    shot("q1-quarantine")
    rows[0].find_element(By.CSS_SELECTOR, "a.subject").click()
    visible("qm-release")
    wait.until(lambda d: "tool.bin" in d.find_element(
        By.ID, "qm-attachments").text)
    check("preview: attachment named", True)
    check("preview: text part shown",
          "quarterly figures" in drv.find_element(By.ID, "qm-text").text)
    frame = drv.find_element(By.ID, "qm-html")
    check("preview: HTML in an iframe sandboxed without scripts",
          frame.get_attribute("sandbox") == "")
    check("preview: no alert from the message's script", no_alert())
    shot("q2-preview")
    drv.find_element(By.ID, "qm-release").click()
    visible("qm-confirm")
    check("release asks for a confirmation first",
          "Release this message to" in drv.find_element(
              By.ID, "qm-confirm-text").text)
    shot("q3-confirm")
    drv.find_element(By.ID, "qm-confirm-no").click()
    wait.until(lambda d: not d.find_element(By.ID, "qm-confirm")
               .is_displayed())
    check("cancel: nothing released",
          "held" in drv.find_element(By.ID, "qm-fields").text)
    drv.find_element(By.ID, "qm-release").click()
    visible("qm-reason").send_keys("browser test")
    drv.find_element(By.ID, "qm-confirm-yes").click()
    wait.until(lambda d: "release" in d.find_element(By.ID, "qm-fields")
               .text.split("State")[1].split("\n")[1])
    check("confirmed: the release is asked",
          not drv.find_element(By.ID, "qm-release").is_displayed())
    shot("q4-released")
    visible("nav-gateway").click()
    img = visible("gw-chart")
    wait.until(lambda d: d.execute_script(
        "const i = document.getElementById('gw-chart');"
        "return i.complete && i.naturalWidth > 0"))
    check("gateway page: the chart is drawn", True)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#gw-body tr"))
    check("gateway page: today's counts in the table",
          "1" in drv.find_element(By.ID, "gw-body").text)
    check("gateway page: summary",
          "quarantined" in drv.find_element(By.ID, "gw-summary").text)
    shot("q5-gateway")
except Exception as e:  # a timeout or a missing element: one failure
    check("browser run: %s" % (str(e).splitlines() or [repr(e)])[0], False)
    shot("q-error")
finally:
    drv.quit()
sys.exit(failed)
