#!/usr/bin/env python3
"""Drives the web console in Debian's headless Chromium with selenium (ConsoleBrowserTests).

Arguments come from the environment, set by console-browser.sh:
  CONSOLE_URL       https://localhost:PORT
  ADMIN_TOKEN       an access token of an organization admin
  VIEWER_TOKEN      an access token of an identity without PAM permission in the project
  PROJECT           the project with the recorded session
  SESSION_ID        the session recorded by psql in the same test
  STATEMENTS        statement texts (one per line) that the replay page must show
  SCREENSHOTS       folder for one PNG per page
  CHROMEDRIVER      path of chromedriver (Debian's chromium-driver)
  LIVE_COMMAND      a shell command running a PAM session with pauses (select 'live-before', 'live-middle',
                    'live-after'), watched live

Exits non-zero with a message naming the failed check.
"""
import os
import subprocess
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

URL = os.environ["CONSOLE_URL"]
PROJECT = os.environ["PROJECT"]
SESSION = os.environ["SESSION_ID"]
SHOTS = os.environ["SCREENSHOTS"]
os.makedirs(SHOTS, exist_ok=True)
checks = 0


def check(condition, message):
    global checks
    checks += 1
    if not condition:
        print("FAILED: " + message, file=sys.stderr)
        sys.exit(1)


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000",
                "--disable-gpu", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    # The daemon's certificate is from its own development CA, which this fresh browser profile does not know.
    options.accept_insecure_certs = True
    # Console messages (a Content-Security-Policy violation is one) are read after each page.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")), options=options)


def shot(driver, name):
    path = os.path.join(SHOTS, name + ".png")
    check(driver.save_screenshot(path), "screenshot " + name)


def no_csp_violations(driver, page):
    for entry in driver.get_log("browser"):
        text = entry.get("message", "")
        check("Content Security Policy" not in text and "Refused to" not in text,
              "%s: the browser reported %s" % (page, text))


def sign_in(driver, token):
    driver.get(URL + "/console")
    # Not signed in: the console sends the browser to its sign-in page.
    WebDriverWait(driver, 20).until(EC.presence_of_element_located((By.ID, "token")))
    check(driver.current_url.endswith("/console/login"), "unauthenticated visit lands on the sign-in page")
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.ID, "sign-in").click()
    WebDriverWait(driver, 20).until(EC.presence_of_element_located((By.ID, "principal")))
    cookie = driver.get_cookie("gatehouse_console")
    check(cookie is not None, "the sign-in sets the console cookie")
    check(cookie.get("httpOnly") is True, "the console cookie is HttpOnly")
    check(cookie.get("secure") is True, "the console cookie is Secure")
    check(cookie.get("sameSite") == "Strict", "the console cookie is SameSite=Strict")
    check(driver.execute_script("return document.cookie").find("gatehouse_console") < 0,
          "scripts cannot read the console cookie")
    check(cookie.get("value") != token, "the cookie holds a console session, not the token typed in")
    return cookie


def watch_a_running_session(driver):
    """Opens the replay of a session while psql is still in it: new statements arrive over server-sent events
    without a reload, and the page turns into the complete replay when the session ends."""
    live = subprocess.Popen(["bash", "-c", os.environ["LIVE_COMMAND"]], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 20
        rows = []
        while time.time() < deadline and not rows:
            driver.get(URL + "/console/projects/%s/sessions?end=open" % PROJECT)
            rows = driver.find_elements(By.CSS_SELECTOR, "#sessions tr[data-session]")
            if not rows:
                time.sleep(0.5)
        check(len(rows) == 1, "the running session is listed under end reason 'open'")
        check("running" in rows[0].text, "the session list marks it running")
        rows[0].find_element(By.LINK_TEXT, "replay").click()
        WebDriverWait(driver, 20).until(EC.presence_of_element_located((By.ID, "timeline")))
        check("in progress" in driver.find_element(By.ID, "integrity").text, "the replay says the session runs")
        check(driver.find_element(By.ID, "live").text == "running", "the replay marks it running")
        # A marker on this page: it is gone if the page reloads.
        driver.execute_script("window.ghMarker = 'same page';")
        WebDriverWait(driver, 20).until(lambda d: "live-middle" in d.find_element(By.ID, "timeline").text)
        check(driver.execute_script("return window.ghMarker || ''") == "same page",
              "'live-middle' arrived over server-sent events, without a reload")
        shot(driver, "12-live")
        # The session ends: the page reloads into the complete replay.
        WebDriverWait(driver, 30).until(lambda d: d.execute_script("return window.ghMarker || ''") == "")
        WebDriverWait(driver, 20).until(EC.presence_of_element_located((By.ID, "timeline")))
        check("live-after" in driver.find_element(By.ID, "timeline").text, "the ended session shows every statement")
        check("complete" in driver.find_element(By.ID, "integrity").text, "the ended session's recording is complete")
        check(len(driver.find_elements(By.ID, "live")) == 0, "the ended session is no longer marked running")
        no_csp_violations(driver, "live replay")
        driver.get(URL + "/console/audit?type=pam.recording.follow")
        audit = WebDriverWait(driver, 20).until(EC.presence_of_element_located((By.ID, "audit")))
        check(len(audit.find_elements(By.CSS_SELECTOR, "a[href^='/console/sessions/']")) == 1,
              "watching the session live was audited once, as pam.recording.follow")
    finally:
        live.wait(timeout=60)


def main():
    driver = browser()
    try:
        # A wrong token is refused on the sign-in page.
        driver.get(URL + "/console/login")
        driver.find_element(By.ID, "token").send_keys("ghat_not-a-real-token")
        driver.find_element(By.ID, "sign-in").click()
        error = WebDriverWait(driver, 20).until(EC.presence_of_element_located((By.ID, "login-error")))
        check("refused" in error.text, "a wrong token is refused: " + error.text)
        shot(driver, "01-sign-in-refused")

        sign_in(driver, os.environ["ADMIN_TOKEN"])
        check(driver.find_element(By.ID, "readiness").text.strip() == "Ready", "overview shows readiness")
        check(PROJECT in driver.find_element(By.ID, "projects").text, "overview lists the project")
        shot(driver, "02-overview")
        no_csp_violations(driver, "overview")

        driver.find_element(By.LINK_TEXT, PROJECT).click()
        WebDriverWait(driver, 20).until(EC.presence_of_element_located((By.ID, "expiries")))
        check(driver.find_element(By.ID, "active-grants").text.strip() == "1", "one grant is active now")
        shot(driver, "03-project")
        no_csp_violations(driver, "project")

        driver.find_element(By.LINK_TEXT, "PAM sessions").click()
        table = WebDriverWait(driver, 20).until(EC.presence_of_element_located((By.ID, "sessions")))
        rows = table.find_elements(By.CSS_SELECTOR, "tr[data-session]")
        check(any(r.get_attribute("data-session") == SESSION for r in rows), "the session list has the session")
        shot(driver, "04-sessions")
        # The filters narrow the list: an identity nobody has gives no rows.
        driver.find_element(By.NAME, "identity").send_keys("nobody-at-all")
        driver.find_element(By.CSS_SELECTOR, "#session-filters button").click()
        WebDriverWait(driver, 20).until(EC.presence_of_element_located((By.ID, "no-sessions")))
        check("identity=nobody-at-all" in driver.current_url, "the filter is in the address")
        driver.back()

        table = WebDriverWait(driver, 20).until(EC.presence_of_element_located((By.ID, "sessions")))
        row = [r for r in table.find_elements(By.CSS_SELECTOR, "tr[data-session]")
               if r.get_attribute("data-session") == SESSION][0]
        row.find_element(By.LINK_TEXT, "replay").click()
        timeline = WebDriverWait(driver, 20).until(EC.presence_of_element_located((By.ID, "timeline")))
        text = timeline.text
        for statement in os.environ["STATEMENTS"].strip().split("\n"):
            check(statement in text, "the replay shows the statement %r" % statement)
        check("SELECT 1" in text, "the replay shows command tags")
        check("rows" in text, "the replay shows row counts")
        check("42P01" in text, "the replay shows the failed statement's SQLSTATE")
        integrity = driver.find_element(By.ID, "integrity").text
        check("complete" in integrity, "the replay states the recording's integrity: " + integrity)
        failed = timeline.find_elements(By.CSS_SELECTOR, "tr.failed")
        check(len(failed) == 1, "the failed statement is marked (%d marked)" % len(failed))
        shot(driver, "05-replay")
        no_csp_violations(driver, "replay")

        driver.find_element(By.LINK_TEXT, "Certificates").click()
        WebDriverWait(driver, 20).until(EC.presence_of_element_located((By.ID, "certificates")))
        names = [a.text for a in driver.find_elements(By.CSS_SELECTOR, "#certificates td:first-child a")]
        check(names[:2] == ["soon.example", "later.example"], "certificates soonest expiry first: %r" % names)
        check(len(driver.find_elements(By.PARTIAL_LINK_TEXT, "CRL")) >= 1, "CAs link to their CRL")
        shot(driver, "06-certificates")

        driver.find_element(By.LINK_TEXT, "KMIP").click()
        WebDriverWait(driver, 20).until(EC.presence_of_element_located((By.ID, "kmip-objects")))
        check("console-key" in driver.find_element(By.ID, "kmip-objects").text, "KMIP objects are listed")
        shot(driver, "07-kmip")

        # The audit log has the replay just opened, by the admin, linked to the session.
        driver.get(URL + "/console/audit?type=pam.recording.read")
        audit = WebDriverWait(driver, 20).until(EC.presence_of_element_located((By.ID, "audit")))
        links = audit.find_elements(By.CSS_SELECTOR, "a[href='/console/sessions/%s']" % SESSION)
        check(len(links) >= 1, "the audit event of the replay links to the session")
        shot(driver, "08-audit")
        driver.find_element(By.ID, "verify-link").click()
        verification = WebDriverWait(driver, 60).until(EC.presence_of_element_located((By.ID, "verification")))
        check(verification.text.startswith("Intact"), "the chain verifies: " + verification.text)
        shot(driver, "09-audit-verify")

        watch_a_running_session(driver)

        session = driver.get_cookie("gatehouse_console")
        driver.find_element(By.CSS_SELECTOR, "form[action='/console/logout'] button").click()
        WebDriverWait(driver, 20).until(EC.presence_of_element_located((By.ID, "token")))
        check(driver.get_cookie("gatehouse_console") is None, "signing out removes the cookie")
        # A copy of the cookie kept from before signing out no longer opens the console: the session has ended.
        driver.add_cookie({k: session[k] for k in ("name", "value", "path", "secure", "httpOnly", "sameSite")})
        driver.get(URL + "/console/audit")
        message = WebDriverWait(driver, 20).until(EC.presence_of_element_located((By.ID, "login-error")))
        check("session has ended" in message.text, "a replayed cookie is refused: " + message.text)
        check(driver.get_cookie("gatehouse_console") is None, "the refused cookie is cleared")

        # A viewer without PAM permission sees no sessions and cannot open the recording.
        sign_in(driver, os.environ["VIEWER_TOKEN"])
        driver.get(URL + "/console/projects/%s/sessions" % PROJECT)
        error = WebDriverWait(driver, 20).until(EC.presence_of_element_located((By.ID, "error")))
        check(len(driver.find_elements(By.CSS_SELECTOR, "tr[data-session]")) == 0, "the viewer sees no sessions")
        check("denied" in error.text, "the viewer is told why: " + error.text)
        shot(driver, "10-viewer-sessions")
        driver.get(URL + "/console/sessions/" + SESSION)
        WebDriverWait(driver, 20).until(EC.presence_of_element_located((By.ID, "error")))
        check(len(driver.find_elements(By.ID, "timeline")) == 0, "the viewer cannot open the replay")
        shot(driver, "11-viewer-replay")
    finally:
        driver.quit()
    print("console browser checks passed: %d" % checks)


if __name__ == "__main__":
    main()
