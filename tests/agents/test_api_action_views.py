"""The Actions tab's API request actions: add, refuse bad input next to the field, edit, remove, Try; members
read only; no secret on any page."""
import pytest
from django.test import override_settings

from agents.models import ApiAction, AuthConnector, EnvironmentSecret, EnvironmentVariable
from tests.agents.factories import EnvironmentFactory, draft_of, published_agent
from tests.fakes.action_api import FakeActionApi

pytestmark = pytest.mark.django_db


def _post(**fields) -> dict:
    data = {"kind": "api", "api-name": "order_status", "api-description": "Look up an order",
            "api-wait_message": "", "api-method": "GET", "api-url": "{API_BASE}/orders/{order_id}",
            "api-parameters": '[{"name": "order_id", "type": "string", "required": true}]',
            "api-headers": "{}", "api-query": "{}", "api-body": "", "api-auth_connector": "",
            "api-timeout_seconds": "5", "api-max_response_bytes": "65536", "api-result_pointer": "/order/status",
            "api-result_max_chars": "2000"}
    data.update({f"api-{k}": v for k, v in fields.items()})
    return data


@pytest.fixture
def api():
    fake = FakeActionApi().start()
    yield fake
    fake.stop()


def test_admin_adds_edits_and_removes_an_api_action(admin_client, workspace):
    agent = published_agent(workspace)
    url = f"/studio/agents/{agent.pk}/actions/"
    response = admin_client.post(url, _post())
    assert response.status_code == 302, response.content.decode()[:3000]
    action = ApiAction.objects.get(version=draft_of(agent))
    assert action.parameters == [{"name": "order_id", "type": "string", "required": True, "description": ""}]
    page = admin_client.get(url).content.decode()
    assert "order_status" in page and 'data-testid="try-order_status"' in page
    response = admin_client.post(f"/studio/agents/{agent.pk}/api-actions/{action.pk}/",
                                 _post(timeout_seconds="9", method="POST", body='{"id": "{order_id}"}'))
    assert response.status_code == 302
    action.refresh_from_db()
    assert action.timeout_seconds == 9 and action.body == {"id": "{order_id}"}
    publish = admin_client.get(f"/studio/agents/{agent.pk}/publish/").content.decode()
    assert "order_status" in publish and "POST {API_BASE}/orders/{order_id}" in publish
    admin_client.post(f"/studio/agents/{agent.pk}/api-actions/{action.pk}/delete/")
    assert not ApiAction.objects.exists()


@pytest.mark.parametrize("fields, field, message", [
    ({"url": "https://x.example/{order}"}, "url", "not one of the action&#x27;s parameters"),
    ({"url": "https://x.example/{"}, "url", "Unbalanced brace"),
    ({"url": "ftp://x.example/"}, "url", "must start with https://"),
    ({"url": "https://169.254.169.254/latest"}, "url", "refused"),
    ({"parameters": '[{"name": "Order", "type": "text"}]'}, "parameters", "lowercase"),
    ({"parameters": '{"name": "x"}'}, "parameters", "must be a list"),
    ({"parameters": "[not json"}, "parameters", "valid JSON"),
    ({"headers": '{"X": "{nope}"}'}, "headers", "not one of the action"),
    ({"headers": '{"Authorization": "Bearer abc"}'}, "headers", "credentials go in an auth connector"),
    ({"timeout_seconds": "30"}, "timeout_seconds", "less than or equal to 15"),
    ({"result_pointer": "order"}, "result_pointer", "JSON pointer"),
    ({"body": '{"a": 1}'}, "body", "GET request has no body"),
    ({"name": "Order Status"}, "name", "lowercase"),
])
def test_bad_input_is_refused_next_to_the_field_and_kept(admin_client, workspace, fields, field, message):
    agent = published_agent(workspace)
    with override_settings(OUTBOUND_ALLOW_PRIVATE_TARGETS=False, OUTBOUND_ALLOW_HTTP=False):
        response = admin_client.post(f"/studio/agents/{agent.pk}/actions/", _post(**fields))
    assert response.status_code == 200
    page = response.content.decode()
    assert f'data-testid="error-api-{field}"' in page or f'data-testid="error-{field}"' in page
    assert message in page
    assert "Look up an order" in page  # the other values are kept
    assert not ApiAction.objects.exists()


def test_a_name_taken_by_a_handover_action_is_refused(admin_client, workspace):
    agent = published_agent(workspace)
    admin_client.post(f"/studio/agents/{agent.pk}/actions/", {
        "type": "phone", "name": "order_status", "destination": "+31201234567"})
    response = admin_client.post(f"/studio/agents/{agent.pk}/actions/", _post())
    assert "already has an action with this name" in response.content.decode()


def test_members_cannot_add_or_try(member_client, workspace):
    agent = published_agent(workspace)
    assert member_client.post(f"/studio/agents/{agent.pk}/actions/", _post()).status_code == 403
    assert not ApiAction.objects.exists()


def test_try_runs_the_action_in_the_chosen_environment_and_shows_a_redacted_answer(admin_client, workspace, api):
    agent = published_agent(workspace)
    env = EnvironmentFactory(workspace=workspace)
    EnvironmentVariable.objects.create(environment=env, name="API_BASE", value=api.url)
    EnvironmentSecret.objects.create(environment=env, name="OPENAI_API_KEY", value="sk-never-shown-123")
    AuthConnector.objects.create(environment=env, name="shop", kind="bearer", secret="bearer-never-shown-456")
    admin_client.post(f"/studio/agents/{agent.pk}/actions/",
                      _post(url="{API_BASE}/leak", auth_connector="shop", result_pointer="", parameters="[]"))
    action = ApiAction.objects.get()
    response = admin_client.post(f"/studio/agents/{agent.pk}/api-actions/{action.pk}/try/",
                                 {"environment": env.pk, "arguments": "{}"}, HTTP_HX_REQUEST="true")
    page = response.content.decode()
    assert response.status_code == 200 and 'data-ok="true"' in page and "status 200" in page
    assert "<html" not in page  # the partial htmx swaps in
    assert "bearer-never-shown-456" not in page and "[redacted]" in page
    for path in (f"/studio/agents/{agent.pk}/actions/", f"/studio/environments/{env.kind}/"):
        assert "bearer-never-shown-456" not in admin_client.get(path).content.decode()


def test_try_shows_plain_errors(admin_client, workspace, api):
    agent = published_agent(workspace)
    env = EnvironmentFactory(workspace=workspace)
    EnvironmentVariable.objects.create(environment=env, name="API_BASE", value=api.url)
    admin_client.post(f"/studio/agents/{agent.pk}/actions/", _post())
    action = ApiAction.objects.get()
    page = admin_client.post(f"/studio/agents/{agent.pk}/api-actions/{action.pk}/try/",
                             {"environment": env.pk, "arguments": "{}"}).content.decode()
    assert 'data-ok="false"' in page and "The parameter order_id is required." in page
    page = admin_client.post(f"/studio/agents/{agent.pk}/api-actions/{action.pk}/try/",
                             {"environment": env.pk, "arguments": '{"order_id": "9"}'}).content.decode()
    assert 'data-ok="true"' in page and "shipped" in page
    assert "<html" in page and "Back to the actions" in page  # without htmx: a page of its own


def test_other_workspaces_cannot_see_or_try(other_client, workspace):
    agent = published_agent(workspace)
    action = ApiAction.objects.create(version=draft_of(agent), name="x", url="https://x.example/")
    assert other_client.get(f"/studio/agents/{agent.pk}/api-actions/{action.pk}/").status_code == 404
    assert other_client.post(f"/studio/agents/{agent.pk}/api-actions/{action.pk}/try/", {}).status_code == 404
