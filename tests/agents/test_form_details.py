"""Form details a new admin tripped over: numbers typed with spaces, the error at the top, a body that says null,
placeholders that look like values, the browser offering the login password for a secret."""
import pytest

from agents.models import ApiAction, HandoverAction
from tests.agents.factories import EnvironmentFactory, draft_of, published_agent

pytestmark = pytest.mark.django_db


def test_a_destination_typed_with_spaces_is_stored_as_e164(admin_client, workspace):
    agent = published_agent(workspace)
    admin_client.post(f"/studio/agents/{agent.pk}/actions/", {
        "type": "phone", "name": "transfer_to_sales", "destination": "+31 20 123 4568"})
    assert HandoverAction.objects.get().destination == "+31201234568"


def test_a_destination_without_country_code_is_read_in_the_workspaces_country(admin_client, workspace):
    workspace.default_country = "US"
    workspace.save()
    agent = published_agent(workspace)
    admin_client.post(f"/studio/agents/{agent.pk}/actions/", {
        "type": "phone", "name": "transfer_to_sales", "destination": "(512) 555-0100"})
    assert HandoverAction.objects.get().destination == "+15125550100"


def test_a_refused_form_says_so_at_the_top_with_a_link_to_the_field(admin_client, workspace):
    agent = published_agent(workspace)
    page = admin_client.post(f"/studio/agents/{agent.pk}/actions/", {
        "type": "phone", "name": "transfer_to_sales", "destination": "12"}).content.decode()
    summary = page.index('data-testid="form-error-summary"')
    assert summary < page.index('name="destination"')
    assert 'href="#id_destination"' in page[summary:]


def test_an_api_action_without_a_body_shows_an_empty_box_not_null(admin_client, workspace):
    agent = published_agent(workspace)
    ApiAction.objects.create(version=draft_of(agent), name="order_status", method="GET",
                             url="https://api.example.com/orders")
    action = ApiAction.objects.get()
    page = admin_client.get(f"/studio/agents/{agent.pk}/api-actions/{action.pk}/").content.decode()
    body = page[page.index('name="api-body"'):]
    assert body[body.index(">") + 1:body.index("</textarea>")].strip() == ""
    assert 'placeholder="e.g. Accept"' in page or "e.g. {API_BASE}" in page


def test_secret_inputs_ask_the_browser_for_a_new_password(admin_client, workspace):
    EnvironmentFactory(workspace=workspace, kind="production")
    page = admin_client.get("/studio/environments/production/").content.decode()
    secrets = [chunk for chunk in page.split("<input")[1:] if 'type="password"' in chunk.split(">")[0]]
    assert secrets and all('autocomplete="new-password"' in c.split(">")[0] for c in secrets)


def test_the_publish_diff_names_both_columns_and_reads_analysis_fields_as_words(admin_client, workspace):
    from agents import services

    agent = published_agent(workspace)
    services.agent_draft_update(draft=draft_of(agent), analysis_fields=[
        {"name": "intent", "type": "enum", "values": ["sales", "support"], "description": "Why they called"}])
    page = admin_client.get(f"/studio/agents/{agent.pk}/publish/").content.decode()
    assert "<th>Published (v1)</th>" in page and "<th>Draft</th>" in page
    assert "{'name'" not in page and "&#x27;name&#x27;" not in page and "intent" in page
