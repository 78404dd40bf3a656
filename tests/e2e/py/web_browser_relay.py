#!/usr/bin/python3
"""web_browser_relay.py URL TENANT USER PASSWORD SHOTS_DIR DOMAIN

The console's Delivery page in headless Chromium (as web_browser.py):
signs in as an admin of TENANT, opens the page, finds DOMAIN in the queue
table, the chart drawn and today's counts in the table (at least one
recipient delivered); holds DOMAIN (a confirmation first, cancelled once),
releases it, and asks for a retry.  Prints "ok: ..." / "FAIL: ..." lines;
the exit status is the number of failures.
"""
import os
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

url, tenant, user, password, shots, domain = sys.argv[1:7]
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


def domain_row(d):
    for tr in d.find_elements(By.CSS_SELECTOR, "#rl-queue-body tr.row"):
        if tr.get_attribute("data-domain") == domain:
            return tr
    return None


def state_is(text):
    return lambda d: domain_row(d) is not None and \
        domain_row(d).find_element(By.CSS_SELECTOR, "td.state").text == text


try:
    drv.get(url + "/")
    visible("login-user")
    drv.find_element(By.ID, "login-tenant").send_keys(tenant)
    drv.find_element(By.ID, "login-user").send_keys(user)
    drv.find_element(By.ID, "login-password").send_keys(password)
    drv.find_element(By.ID, "login-submit").click()
    visible("nav-relay").click()
    wait.until(domain_row)
    row = domain_row(drv)
    check("delivery page: the tenant's domain listed", row is not None)
    check("delivery page: not held", state_is("delivering")(drv))
    wait.until(lambda d: "in the delivery queue" in d.find_element(
        By.ID, "rl-queue-summary").text)
    check("delivery page: the queue summary", True)
    wait.until(lambda d: d.execute_script(
        "const i = document.getElementById('rl-chart');"
        "return i.complete && i.naturalWidth > 0"))
    check("delivery page: the chart is drawn", True)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#rl-body tr"))
    today = time.strftime("%Y-%m-%d", time.gmtime())
    first = drv.find_element(By.CSS_SELECTOR, "#rl-body tr")
    cells = [td.text for td in first.find_elements(By.TAG_NAME, "td")]
    check("delivery page: today's counts (%s)" % cells,
          cells[0] == today and int(cells[2]) >= 1)
    check("delivery page: totals in the summary",
          "delivered" in drv.find_element(By.ID, "rl-summary").text)
    shot("r1-delivery")
    row.find_element(By.TAG_NAME, "button").click()
    visible("rl-confirm")
    check("hold asks for a confirmation first",
          ("Hold the delivery to " + domain) in drv.find_element(
              By.ID, "rl-confirm-text").text)
    shot("r2-confirm")
    drv.find_element(By.ID, "rl-confirm-no").click()
    wait.until(lambda d: not d.find_element(By.ID, "rl-confirm")
               .is_displayed())
    check("cancel: still delivering", state_is("delivering")(drv))
    domain_row(drv).find_element(By.TAG_NAME, "button").click()
    visible("rl-confirm-yes").click()
    wait.until(state_is("held"))
    check("confirmed: the domain is held", True)
    shot("r3-held")
    domain_row(drv).find_element(By.TAG_NAME, "button").click()
    visible("rl-confirm-yes").click()
    wait.until(state_is("delivering"))
    check("released: delivering again", True)
    visible("rl-retry").click()
    visible("rl-confirm-yes").click()
    wait.until(lambda d: "Retry asked" in d.find_element(By.ID, "flash").text)
    check("retry asked", True)
    shot("r4-retry")
except Exception as e:  # a timeout or a missing element: one failure
    check("browser run: %s" % (str(e).splitlines() or [repr(e)])[0], False)
    shot("r-error")
finally:
    drv.quit()
sys.exit(failed)
