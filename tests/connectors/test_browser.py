import pytest

from agents.models import AgentVersion
from connectors.models import PhoneConnector
from tests.agents.factories import PhoneConnectorFactory
from tests.factories import MembershipFactory, UserFactory, WorkspaceFactory
from tests.fixtures_browser import login
from workspaces.models import Membership

CLIPBOARD_STUB = """
Object.defineProperty(navigator, 'clipboard', {
  configurable: true,
  value: { writeText: async (text) => { window.__copied = text; } },
});
"""


@pytest.mark.browser
def test_build_publish_connect_and_copy_webhook_url(browser_page, live_server):
    page = browser_page
    workspace = WorkspaceFactory(name="Acme")
    user = UserFactory(username="studio-admin")
    MembershipFactory(workspace=workspace, user=user, role=Membership.Role.ADMIN)
    page.add_init_script(CLIPBOARD_STUB)
    login(page, live_server, "studio-admin")

    page.click("[data-testid=nav-agents]")
    page.fill("#id_name", "Front desk")
    page.click("[data-testid=create-agent]")
    page.fill("#id_greeting", "Welcome to Acme, how can I help?")
    page.click("[data-testid=save-draft]")
    page.wait_for_selector("text=Draft saved.")

    page.click("[data-testid=tab-actions]")
    page.fill("#id_name", "transfer_to_sales")
    page.fill("#id_destination", "+31201234567")
    page.fill("#id_description", "When the caller wants to buy")
    page.click("[data-testid=add-action]")
    page.wait_for_selector("[data-testid=action-table] >> text=transfer_to_sales")

    page.click("[data-testid=tab-publish]")
    assert "Welcome to Acme" in page.inner_text("[data-testid=diff-fields]")
    assert "transfer_to_sales" in page.inner_text("[data-testid=diff-actions]")
    page.click("[data-testid=confirm-publish]")
    page.wait_for_selector("[data-testid=version-table] >> text=v1")
    assert AgentVersion.objects.filter(state="published", number=1, greeting__startswith="Welcome").exists()

    page.click("[data-testid=nav-connectors]")
    page.click("[data-testid=add-connector]")
    page.select_option("#id_type", "twilio")
    page.select_option("#id_agent", label="Front desk")
    page.select_option("#id_environment", label="Production")
    page.check("input[name=version_mode][value=published]")
    page.click("[data-testid=save-connector]")
    page.wait_for_selector("[data-testid=webhook-url]")
    connector = PhoneConnector.objects.get()
    expected = f"https://calls.example.test/v1/agents/{connector.identifier}/twilio-config"
    assert page.input_value("[data-testid=webhook-url]") == expected
    assert page.inner_text("[data-testid=connector-state]") == "Enabled"

    page.click("[data-testid=copy-webhook]")
    page.wait_for_selector("[data-testid=copy-status] >> text=Copied")
    assert page.inner_text("[data-testid=copy-webhook]") == "Copied"  # the button says so too
    assert page.evaluate("window.__copied") == expected
    assert not page.console_errors


@pytest.mark.browser
def test_a_webhook_url_twilio_cannot_reach_is_flagged_with_a_link_to_the_readme(browser_page, live_server, settings):
    from telephony.public_urls import public_base_problem

    assert public_base_problem("https://calls.example.com") == ""
    assert "private address" in public_base_problem("https://192.168.1.20:8000")
    assert "not https" in public_base_problem("http://calls.example.com")
    settings.PUBLIC_BASE_URL = "http://localhost:8000"
    workspace = WorkspaceFactory()
    user = UserFactory(username="ann")
    MembershipFactory(workspace=workspace, user=user, role=Membership.Role.ADMIN)
    connector = PhoneConnectorFactory(workspace=workspace)
    login(browser_page, live_server, "ann")
    browser_page.goto(f"{live_server.url}/studio/connectors/{connector.pk}/")
    warning = browser_page.get_by_test_id("public-url-warning")
    assert "localhost is a local name: Twilio cannot reach it" in warning.inner_text()
    with browser_page.expect_navigation():
        warning.get_by_test_id("public-url-help").click()
    page = browser_page.get_by_test_id("public-url-help-page").inner_text()
    assert "cloudflared tunnel" in page and "PUBLIC_BASE_URL" in page and "http://localhost:8000" in page
