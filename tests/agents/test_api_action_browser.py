"""The Actions tab in a real browser: add an API request action, then Try it (htmx swaps in the answer)."""
import pytest

from agents.models import ApiAction, EnvironmentVariable
from tests.agents.factories import AgentFactory, EnvironmentFactory
from tests.factories import MembershipFactory, UserFactory, WorkspaceFactory
from tests.fakes.action_api import FakeActionApi
from tests.fixtures_browser import login
from workspaces.models import Membership


@pytest.mark.browser
def test_admin_adds_an_api_action_and_tries_it(browser_page, live_server):
    api = FakeActionApi().start()
    try:
        page = browser_page
        workspace = WorkspaceFactory(name="Acme")
        user = UserFactory(username="actions-admin")
        MembershipFactory(workspace=workspace, user=user, role=Membership.Role.ADMIN)
        agent = AgentFactory(workspace=workspace, name="Front desk")
        env = EnvironmentFactory(workspace=workspace)
        EnvironmentVariable.objects.create(environment=env, name="API_BASE", value=api.url)
        login(page, live_server, "actions-admin")
        page.goto(f"{live_server.url}/studio/agents/{agent.pk}/actions/")
        page.fill("#id_api-name", "order_status")
        page.fill("#id_api-url", "{API_BASE}/orders/{order}")
        page.fill("#id_api-parameters", '[{"name": "order_id", "type": "string", "required": true}]')
        page.click("[data-testid=add-api-action]")
        error = page.locator("[data-testid=error-url]")
        error.wait_for()
        assert "{order} is not one of the action's parameters." in error.inner_text()
        page.fill("#id_api-url", "{API_BASE}/orders/{order_id}")
        page.fill("#id_api-result_pointer", "/order/status")
        page.click("[data-testid=add-api-action]")
        page.wait_for_selector("text=Action order_status added to the draft.")
        assert ApiAction.objects.get().url == "{API_BASE}/orders/{order_id}"
        page.wait_for_function("() => window.htmx !== undefined")  # htmx is loaded with defer
        page.fill("[data-testid=try-arguments-order_status]", '{"order_id": "42"}')
        page.click("[data-testid=try-order_status]")
        outcome = page.locator("[data-testid=try-outcome]")
        outcome.wait_for()
        assert "status 200" in outcome.inner_text() and "shipped" in outcome.inner_text()
        assert page.url.endswith(f"/studio/agents/{agent.pk}/actions/")  # swapped in, no navigation
    finally:
        api.stop()
