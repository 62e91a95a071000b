"""The issue's 'done when' in a real browser: the demo admin logs in and sees Settings → Dialer."""
import pytest

from tests.fixtures_browser import login
from workspaces.services import demo_workspace_ensure

pytestmark = pytest.mark.browser


def test_demo_admin_logs_in_and_sees_connect_banner(browser_page, live_server):
    demo_workspace_ensure(username="admin", password="callwell-demo")
    login(browser_page, live_server, "admin", "callwell-demo")

    assert browser_page.get_by_test_id("workspace-name").inner_text() == "Demo workspace"
    browser_page.get_by_role("link", name="Settings → Dialer").click()
    browser_page.wait_for_url("**/settings/dialer/")

    assert browser_page.get_by_role("heading", name="Settings → Dialer").is_visible()
    banner = browser_page.locator("#phone-system-status").get_by_test_id("phone-banner")  # the sidebar's
    assert banner.is_visible()
    assert "Connect your phone system" in banner.inner_text()
    assert browser_page.console_errors == []


def test_wrong_password_stays_on_login_page(browser_page, live_server):
    demo_workspace_ensure(username="admin", password="callwell-demo")
    with pytest.raises(AssertionError, match="login as 'admin' failed"):
        login(browser_page, live_server, "admin", "not-the-password")
    assert browser_page.get_by_role("heading", name="Log in").is_visible()
