"""The Actions tab in a real browser: add an API request action, then Try it (htmx swaps in the answer)."""
import pytest

from agents.models import ApiAction, EnvironmentVariable
from tests.agents.factories import AgentFactory, EnvironmentFactory, draft_of
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
        assert page.locator("textarea[name=api-parameters]").count() == 0  # rows, no JSON to type
        page.fill("#id_api-param-0-name", "order_id")
        page.check("#id_api-param-0-required")
        page.click("[data-testid=add-api-action]")
        error = page.locator("[data-testid=error-url]")
        error.wait_for()
        assert "{order} is not one of the action's parameters." in error.inner_text()
        page.fill("#id_api-url", "{API_BASE}/orders/{order_id}")
        page.fill("#id_api-result_pointer", "/order/status")
        page.click("[data-testid=add-api-action]")
        page.wait_for_selector("text=Action order_status added to the draft.")
        action = ApiAction.objects.get()
        assert action.url == "{API_BASE}/orders/{order_id}"
        assert action.parameters == [{"name": "order_id", "type": "string", "required": True, "description": ""}]
        page.wait_for_function("() => window.htmx !== undefined")  # htmx is loaded with defer
        page.fill("[data-testid=try-arguments-order_status]", '{"order_id": "42"}')
        page.click("[data-testid=try-order_status]")
        outcome = page.locator("[data-testid=try-outcome]")
        outcome.wait_for()
        assert "status 200" in outcome.inner_text() and "shipped" in outcome.inner_text()
        assert page.url.endswith(f"/studio/agents/{agent.pk}/actions/")  # swapped in, no navigation
    finally:
        api.stop()


@pytest.mark.browser
def test_parameter_and_header_rows_are_added_removed_and_saved(browser_page, live_server):
    page = browser_page
    workspace = WorkspaceFactory(name="Acme")
    user = UserFactory(username="rows-actions-admin")
    MembershipFactory(workspace=workspace, user=user, role=Membership.Role.ADMIN)
    agent = AgentFactory(workspace=workspace, name="Front desk")
    action = ApiAction.objects.create(
        version=draft_of(agent), name="order_status", url="https://shop.example/orders/{order_id}",
        parameters=[{"name": "order_id", "type": "string", "required": True, "description": ""}])
    login(page, live_server, "rows-actions-admin")
    page.goto(f"{live_server.url}/studio/agents/{agent.pk}/api-actions/{action.pk}/")
    assert page.input_value("#id_api-param-0-name") == "order_id"
    page.click("[data-testid=add-api-parameters]")  # the stored row and the empty one: this is the third
    page.fill("#id_api-param-2-name", "speed")
    page.select_option("#id_api-param-2-type", "enum")
    page.fill("#id_api-param-2-description", "How fast it ships")
    page.fill("#id_api-header-0-key", "Accept")
    page.fill("#id_api-header-0-value", "application/json")
    page.fill("#id_api-query-0-key", "speed")
    page.fill("#id_api-query-0-value", "{speed}")
    page.click("text=Save action")
    error = page.locator("[data-testid='error-api-param-2-enum']")
    error.wait_for()
    assert "List the values" in error.inner_text()
    assert page.input_value("#id_api-query-0-value") == "{speed}"  # nothing typed is lost

    page.fill("#id_api-param-2-enum", "standard, express")
    page.check("#id_api-param-0-DELETE")
    page.fill("#id_api-url", "https://shop.example/orders")
    page.click("text=Save action")
    page.wait_for_selector("text=Action saved.")
    action.refresh_from_db()
    assert action.parameters == [{"name": "speed", "type": "enum", "required": False,
                                  "description": "How fast it ships", "enum": ["standard", "express"]}]
    assert action.headers == {"Accept": "application/json"} and action.query == {"speed": "{speed}"}
