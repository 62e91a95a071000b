"""Settings → Dialer clicked through in chromium, with the validation task in a REAL Celery worker."""
import re

import pytest

from telephony.models import TwilioConnection
from telephony.selectors import caller_ids_for_dialer
from tests.factories import MembershipFactory, UserFactory, WorkspaceFactory
from tests.fixtures_browser import login
from workspaces.models import Membership

pytestmark = [pytest.mark.browser, pytest.mark.worker]

TIMEOUT = 30_000


def sidebar(page):
    return page.locator("aside.sidebar #phone-system-status")


def _admin():
    workspace = WorkspaceFactory(name="Acme Browser")
    user = UserFactory(username="ada")
    MembershipFactory(workspace=workspace, user=user, role=Membership.Role.ADMIN)
    return workspace, user


def _enter_credentials(page, sid, token):
    page.get_by_role("link", name="Settings → Dialer").first.click()
    page.wait_for_url("**/settings/dialer/")
    page.get_by_label("Account SID").fill(sid)
    page.get_by_label("Auth Token").fill(token)
    with page.expect_navigation():
        page.get_by_role("button", name="Save and connect").click()


def test_admin_connects_byok_and_provisions_a_number(browser_page, live_server, twilio_sandbox, celery_worker):
    page = browser_page
    workspace, user = _admin()
    sid, token = twilio_sandbox.add_account(friendly_name="Ada's Twilio")
    # Twilio takes a moment to answer, so "validating" is on screen before "connected".
    twilio_sandbox.inject_fault("GET", r"/Accounts/AC[0-9a-f]+\.json$", kind="slow", delay=1.5)
    celery_worker(extra_env={"TWILIO_API_BASE_URL": twilio_sandbox.base_url})
    login(page, live_server, "ada")
    assert "Connect your phone system" in sidebar(page).get_by_test_id("phone-banner").inner_text()

    _enter_credentials(page, sid, token)

    status = page.get_by_test_id("connection-status")
    assert status.inner_text() == "Validating"
    assert page.get_by_test_id("validating").is_visible()
    # No reload: htmx polls the status card until the worker has finished.
    page.wait_for_selector('[data-testid="connection-card"][data-state="connected"]', timeout=TIMEOUT)
    assert page.get_by_test_id("connection-status").inner_text() == "Connected"
    banner = sidebar(page).get_by_test_id("phone-banner")
    banner.wait_for(timeout=TIMEOUT)
    assert "Pick a phone number" in banner.inner_text()
    assert "••••" + token[-4:] in page.content()
    assert token not in page.content()

    page.get_by_test_id("next-step").get_by_role("link", name="Search numbers").click()
    page.wait_for_url("**/settings/dialer/numbers/search/")
    page.get_by_label("Area code").fill("512")
    with page.expect_navigation():
        page.get_by_role("button", name="Search").click()
    rows = page.get_by_test_id("result-row")
    assert rows.count() > 0
    first = rows.first
    chosen = re.search(r"\+1512\d{7}", first.inner_text()).group(0)
    assert "TX" in first.inner_text()
    with page.expect_navigation():
        first.get_by_role("button", name="Provision").click()
    confirm = page.get_by_test_id("provision-confirm")
    assert chosen in confirm.inner_text() and "Billed to" in confirm.inner_text() and sid in confirm.inner_text()
    with page.expect_navigation():
        page.get_by_test_id("confirm-provision").click()

    page.wait_for_url("**/settings/dialer/numbers/")
    assert chosen in page.get_by_test_id("numbers-table").inner_text()
    assert sidebar(page).get_by_test_id("phone-banner").count() == 0  # banner gone
    assert "Phone system connected" in sidebar(page).get_by_test_id("phone-status").inner_text()
    assert [c.phone_number for c in caller_ids_for_dialer(workspace=workspace)] == [chosen]
    owned = [n["phone_number"] for n in twilio_sandbox.state["incoming_numbers"][sid].values()]
    assert owned == [chosen]
    # Once the workspace is ready the browser dialer's Voice SDK tries to reach Twilio, which a test cannot.
    ours = [e for e in page.console_errors
            if not any(k in e for k in ("TwilioVoice", "twilio.com", "ERR_NAME_NOT_RESOLVED"))]
    assert ours == []


def test_bad_credentials_end_in_phone_system_error(browser_page, live_server, twilio_sandbox, celery_worker):
    page = browser_page
    workspace, user = _admin()
    sid, _token = twilio_sandbox.add_account()
    celery_worker(extra_env={"TWILIO_API_BASE_URL": twilio_sandbox.base_url})
    login(page, live_server, "ada")

    _enter_credentials(page, sid, "0123456789abcdef0123456789abcdef")

    page.wait_for_selector('[data-testid="connection-card"][data-state="error"]', timeout=TIMEOUT)
    error = page.get_by_test_id("connection-error").inner_text()
    assert "Phone system error" in error
    assert "Authenticate (Twilio error 20003)" in error
    # the sidebar says it too, in red, on this page as on every other (the product's "Phone system error" banner)
    sidebar_banner = sidebar(page).get_by_test_id("phone-banner")
    sidebar_banner.wait_for(state="visible", timeout=TIMEOUT)
    assert "Phone system error" in sidebar_banner.inner_text()
    assert "banner-error" in sidebar_banner.get_attribute("class")
    page.goto(live_server.url + "/calls/")
    banner = sidebar(page).get_by_test_id("phone-banner")
    assert "Phone system error" in banner.inner_text()
    assert "Authenticate" in banner.inner_text()
    assert banner.get_by_role("link", name="Re-enter credentials").is_visible()
    assert TwilioConnection.objects.get(workspace=workspace).status == TwilioConnection.Status.ERROR
