"""The post-call fields of a version in a real browser: "Add a field" adds a row, errors next to the field."""
import pytest

from tests.agents.factories import AgentFactory, draft_of
from tests.factories import MembershipFactory, UserFactory, WorkspaceFactory
from tests.fixtures_browser import login
from workspaces.models import Membership


@pytest.mark.browser
def test_analysis_fields_rows_are_added_and_explained_in_the_browser(browser_page, live_server):
    page = browser_page
    workspace = WorkspaceFactory(name="Acme")
    user = UserFactory(username="analysis-admin")
    MembershipFactory(workspace=workspace, user=user, role=Membership.Role.ADMIN)
    agent = AgentFactory(workspace=workspace, name="Front desk")
    login(page, live_server, "analysis-admin")
    page.goto(f"{live_server.url}/studio/agents/{agent.pk}/")

    page.check("#id_analysis_summary")
    page.fill("#id_analysis_field-0-name", "order_number")
    page.click("[data-testid=analysis-add]")
    page.fill("#id_analysis_field-1-name", "sentiment")
    page.select_option("#id_analysis_field-1-type", "enum")
    page.click("[data-testid=save-draft]")
    error = page.locator("[data-testid='error-analysis_field-1-values']")
    error.wait_for()
    assert "List the values" in error.inner_text()

    page.fill("#id_analysis_field-1-values", "happy, angry")
    page.click("[data-testid=save-draft]")
    page.wait_for_selector("text=Draft saved.")
    draft = draft_of(agent)
    assert draft.analysis_summary is True
    assert [(f["name"], f["type"], f.get("values")) for f in draft.analysis_fields] == [
        ("order_number", "text", None), ("sentiment", "enum", ["happy", "angry"])]

    # Remove strikes the row through (the shared row editor) and drops the field on save.
    page.check("#id_analysis_field-0-DELETE")
    assert "row-removed" in (page.locator("#id_analysis_field-0-name").locator("xpath=ancestor::tr").get_attribute("class") or "")
    page.click("[data-testid=save-draft]")
    page.wait_for_selector("text=Draft saved.")
    assert [f["name"] for f in draft_of(agent).analysis_fields] == ["sentiment"]
