"""The Actions tab's API request actions: add, refuse bad input next to the field, edit, remove, Try; members
read only; no secret on any page."""
import pytest
from django.test import override_settings

from agents.models import ApiAction, AuthConnector, EnvironmentSecret, EnvironmentVariable
from tests.agents.factories import EnvironmentFactory, draft_of, published_agent
from tests.fakes.action_api import FakeActionApi

pytestmark = pytest.mark.django_db


ORDER_ID = [{"name": "order_id", "type": "string", "required": "on"}]


def _rows(prefix: str, rows: list[dict], extra: int = 1) -> dict:
    """A row formset as the page posts it (the management form, the rows, `extra` empty rows)."""
    data = {f"api-{prefix}-TOTAL_FORMS": str(len(rows) + extra), f"api-{prefix}-INITIAL_FORMS": "0",
            f"api-{prefix}-MIN_NUM_FORMS": "0", f"api-{prefix}-MAX_NUM_FORMS": "30"}
    for i, row in enumerate(rows):
        data.update({f"api-{prefix}-{i}-{key}": value for key, value in row.items()})
    return data


def _post(parameters=ORDER_ID, headers=(), query=(), **fields) -> dict:
    data = {"kind": "api", "api-name": "order_status", "api-description": "Look up an order",
            "api-wait_message": "", "api-method": "GET", "api-url": "{API_BASE}/orders/{order_id}",
            "api-body": "", "api-auth_connector": "",
            "api-timeout_seconds": "5", "api-max_response_bytes": "65536", "api-result_pointer": "/order/status",
            "api-result_max_chars": "2000",
            **_rows("param", list(parameters)), **_rows("header", list(headers)), **_rows("query", list(query))}
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
    assert action.headers == {} and action.query == {}
    page = admin_client.get(url).content.decode()
    assert "order_status" in page and 'data-testid="try-order_status"' in page
    edit = f"/studio/agents/{agent.pk}/api-actions/{action.pk}/"
    page = admin_client.get(edit).content.decode()  # the stored parameter comes back as a row
    assert 'name="api-param-0-name"' in page and 'value="order_id"' in page and 'data-row-editor="api-param"' in page
    response = admin_client.post(edit, _post(
        timeout_seconds="9", method="POST", body='{"id": "{order_id}"}',
        parameters=[*ORDER_ID, {"name": "speed", "type": "enum", "enum": "standard, express, standard",
                                "description": "  How fast  "},
                    {"name": "dropped", "type": "string", "DELETE": "on"}],
        headers=[{"key": "Accept", "value": "application/json"}], query=[{"key": "speed", "value": "{speed}"}]))
    assert response.status_code == 302, response.content.decode()[:3000]
    action.refresh_from_db()
    assert action.timeout_seconds == 9 and action.body == {"id": "{order_id}"}
    assert action.parameters == [
        {"name": "order_id", "type": "string", "required": True, "description": ""},
        {"name": "speed", "type": "enum", "required": False, "description": "How fast", "enum": ["standard", "express"]}]
    assert action.headers == {"Accept": "application/json"} and action.query == {"speed": "{speed}"}
    page = admin_client.get(edit).content.decode()
    assert 'value="standard, express"' in page and 'value="application/json"' in page

    # A post without the rows' management forms (a script) keeps the stored rows.
    data = {k: v for k, v in _post(method="POST", body='{"id": "{order_id}"}').items()
            if not k.startswith(("api-param-", "api-header-", "api-query-"))}
    assert admin_client.post(edit, data).status_code == 302
    action.refresh_from_db()
    assert [p["name"] for p in action.parameters] == ["order_id", "speed"] and action.query == {"speed": "{speed}"}
    publish = admin_client.get(f"/studio/agents/{agent.pk}/publish/").content.decode()
    assert "order_status" in publish and "POST {API_BASE}/orders/{order_id}" in publish
    admin_client.post(f"/studio/agents/{agent.pk}/api-actions/{action.pk}/delete/")
    assert not ApiAction.objects.exists()


@pytest.mark.parametrize("fields, field, message", [
    ({"url": "https://x.example/{order}"}, "url", "not one of the action&#x27;s parameters"),
    ({"url": "https://x.example/{"}, "url", "Unbalanced brace"),
    ({"url": "ftp://x.example/"}, "url", "must start with https://"),
    ({"url": "https://169.254.169.254/latest"}, "url", "refused"),
    ({"parameters": [{"name": "Order", "type": "string"}]}, "param-0-name", "Lowercase letters"),
    ({"parameters": [{"name": "", "description": "The order"}]}, "param-0-name", "Give the parameter a name"),
    ({"parameters": [*ORDER_ID, {"name": "order_id", "type": "integer"}]}, "param-1-name",
     "order_id is listed twice"),
    ({"parameters": [{"name": "speed", "type": "enum", "enum": " , "}]}, "param-0-enum", "List the values"),
    ({"parameters": [{"name": "speed", "type": "string", "enum": "a, b"}]}, "param-0-enum",
     "Only an enum parameter takes values"),
    ({"parameters": [{"name": "speed", "type": "colour"}]}, "param-0-type", "Select a valid choice"),
    ({"headers": [{"key": "X", "value": "{nope}"}]}, "header-0-value", "not one of the action"),
    ({"headers": [{"key": "X", "value": "{"}]}, "header-0-value", "Unbalanced brace"),
    ({"headers": [{"key": "Authorization", "value": "Bearer abc"}]}, "header-0-key",
     "credentials go in an auth connector"),
    ({"headers": [{"key": "Bad Name", "value": "1"}]}, "header-0-key", "A header name is"),
    ({"headers": [{"key": "Accept", "value": "a"}, {"key": "accept", "value": "b"}]}, "header-1-key",
     "accept is listed twice"),
    ({"query": [{"key": "", "value": "{order_id}"}]}, "query-0-key", "Enter the parameter&#x27;s name"),
    ({"query": [{"key": "q", "value": "{nope}"}]}, "query-0-value", "not one of the action"),
    ({"timeout_seconds": "30"}, "timeout_seconds", "less than or equal to 15"),
    ({"result_pointer": "order"}, "result_pointer", "JSON pointer"),
    ({"body": '{"a": 1}'}, "body", "GET request has no body"),
    ({"method": "POST", "body": '{"a": "{nope}"}'}, "body", "not one of the action"),
    ({"method": "POST", "body": "{not json"}, "body", "valid JSON"),
    ({"name": "Order Status"}, "name", "lowercase"),
])
def test_bad_input_is_refused_next_to_the_field_and_kept(admin_client, workspace, fields, field, message):
    agent = published_agent(workspace)
    with override_settings(OUTBOUND_ALLOW_PRIVATE_TARGETS=False, OUTBOUND_ALLOW_HTTP=False):
        response = admin_client.post(f"/studio/agents/{agent.pk}/actions/", _post(**fields))
    assert response.status_code == 200
    page = response.content.decode()
    # The message sits in the field's own error list (a row's field: error-api-<prefix>-<i>-<name>).
    testid = f'data-testid="error-api-{field}"' if "-" in field else f'data-testid="error-{field}"'
    assert testid in page, page[:3000]
    errors = page[page.index(testid):]
    assert message in errors[:errors.index("</ul>")]
    assert "Look up an order" in page  # the other values are kept
    assert not ApiAction.objects.exists()


def test_a_row_with_an_error_keeps_the_other_rows_and_their_names(admin_client, workspace):
    agent = published_agent(workspace)
    response = admin_client.post(f"/studio/agents/{agent.pk}/actions/", _post(
        parameters=[*ORDER_ID, {"name": "speed", "type": "enum"}], query=[{"key": "id", "value": "{order_id}"}]))
    page = response.content.decode()
    assert response.status_code == 200 and 'data-testid="error-api-param-1-enum"' in page
    assert "Correct the parameters below." in page
    assert 'value="order_id"' in page and 'value="{order_id}"' in page
    assert "not one of the action" not in page  # order_id still counts while the other row is wrong
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
                      _post(url="{API_BASE}/leak", auth_connector="shop", result_pointer="", parameters=[]))
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
