import pytest

from agents.models import AgentVersion
from connectors.models import PhoneConnector
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
    assert page.evaluate("window.__copied") == expected
    assert not page.console_errors
