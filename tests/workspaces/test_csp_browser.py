"""Every main page under the Content-Security-Policy in Debian's chromium: no `securitypolicyviolation`
event and no CSP error on the console (inline script/style, eval, an undeclared host)."""
import pytest

from tests.fixtures_browser import login
from tests.workspaces.csp_pages import main_pages, studio_rows

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`);
});
"""


def test_no_csp_violation_on_any_main_page(browser_page, live_server, workspace, admin_user, twilio_sandbox):
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save()
    pages = main_pages(workspace, *studio_rows(workspace))
    browser_page.add_init_script(RECORD_VIOLATIONS)
    login(browser_page, live_server, "alice")
    problems = []
    for url in pages:
        browser_page.goto(live_server.url + url)
        browser_page.wait_for_load_state("load")
        browser_page.wait_for_timeout(150)  # deferred scripts and the first htmx swaps
        violations = browser_page.evaluate("window.__cspViolations")
        problems += [f"{url}: {v}" for v in violations]
    # The dialer panel opened (its script runs on every page).
    browser_page.goto(live_server.url + "/")
    browser_page.get_by_test_id("dialer-toggle").click()
    browser_page.wait_for_timeout(300)
    problems += [f"/ (dialer open): {v}" for v in browser_page.evaluate("window.__cspViolations")]
    csp_console = [m for m in browser_page.console_errors if "Content Security Policy" in m or "Refused to" in m]
    assert problems == [] and csp_console == [], (problems, csp_console)


def test_a_violation_would_be_seen(browser_page, live_server, workspace, admin_user):
    """The probe above works: an inline style injected into a page is reported."""
    browser_page.add_init_script(RECORD_VIOLATIONS)
    login(browser_page, live_server, "alice")
    browser_page.evaluate("document.body.insertAdjacentHTML('beforeend', '<div style=\"color:red\">x</div>')")
    browser_page.wait_for_timeout(100)
    assert browser_page.evaluate("window.__cspViolations.length") >= 1
