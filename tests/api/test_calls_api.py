"""The public API: keys, errors as problem JSON, scoping to the key's workspace, idempotency, refusals, the
schema (validated) and every documented endpoint called."""
import json

import pytest
from django.test import Client

from api.models import ApiKey
from api.services import api_key_create, api_key_revoke
from calls.models import CallSession
from telephony.services import do_not_call_add, outbound_call_policy_set
from tests.api.helpers import outbound_setup
from tests.factories import WorkspaceFactory
from workspaces.models import AuditEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def o(twilio_sandbox, settings):
    twilio_sandbox.dial_outbound = False  # Twilio accepts the call; nobody answers in these tests
    return outbound_setup(sandbox=twilio_sandbox)


def _post(o, body, *, key=None, idempotency=None):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key or o.key}"}
    if idempotency:
        headers["HTTP_IDEMPOTENCY_KEY"] = idempotency
    return Client().post("/api/v1/calls", data=json.dumps(body), content_type="application/json", **headers)


def _get(o, path, key=None):
    return Client().get(path, HTTP_AUTHORIZATION=f"Bearer {key or o.key}")


def _dials(sandbox):
    return sandbox.requests_to(r"/Calls\.json$", "POST")


def test_a_call_is_placed_with_amd_and_returned(o, twilio_sandbox):
    response = _post(o, o.body())

    assert response.status_code == 201, response.content
    call = response.json()
    assert call["direction"] == "outbound-api" and call["status"] == "queued"
    assert call["to"] == "+15125550123" and call["from"] == "+15125550100"
    assert call["variables"] == {"first_name": "Jane"} and call["metadata"] == {"lead": "L-1"}
    sent = _dials(twilio_sandbox)[0][2]
    assert sent["MachineDetection"] == "DetectMessageEnd" and sent["AsyncAmd"] == "true"
    assert sent["Url"].endswith(f"/v1/calls/outbound/{call['id']}/answer")
    assert CallSession.objects.get(pk=call["id"]).call_sid == call["call_sid"] != ""
    assert AuditEntry.objects.filter(action=AuditEntry.Action.AGENT_CALL_PLACED).count() == 1


def test_the_same_idempotency_key_never_dials_twice(o, twilio_sandbox):
    first = _post(o, o.body(), idempotency="abc")
    again = _post(o, o.body(), idempotency="abc")
    other_body = _post(o, o.body(to="+15125550124"), idempotency="abc")

    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"] and again["Idempotent-Replayed"] == "true"
    assert other_body.status_code == 422 and other_body.json()["code"] == "idempotency_conflict"
    assert len(_dials(twilio_sandbox)) == 1


def test_a_refused_request_frees_its_idempotency_key(o, twilio_sandbox):
    do_not_call_add(workspace=o.workspace, phone_number="+15125550123")
    assert _post(o, o.body(), idempotency="k1").status_code == 422
    from telephony.models import DoNotCallNumber

    DoNotCallNumber.objects.all().delete()
    assert _post(o, o.body(), idempotency="k1").status_code == 201


def test_a_do_not_call_number_is_refused_with_422_and_no_twilio_request(o, twilio_sandbox):
    do_not_call_add(workspace=o.workspace, phone_number="(512) 555-0123")

    response = _post(o, o.body())

    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "do_not_call" and body["status"] == 422 and "do-not-call" in body["detail"]
    assert body["errors"] == {"to": [body["detail"]]}
    assert _dials(twilio_sandbox) == [] and not CallSession.objects.exists()


def test_a_caller_id_the_workspace_does_not_own_is_refused(o, twilio_sandbox):
    response = _post(o, o.body(**{"from": "+15125550999"}))
    assert response.status_code == 422 and response.json()["code"] == "invalid_caller_id"
    assert _dials(twilio_sandbox) == []


def test_the_concurrency_limit_refuses_the_call_over_it(o, twilio_sandbox):
    outbound_call_policy_set(workspace=o.workspace, max_concurrent_agent_calls=1)
    assert _post(o, o.body()).status_code == 201

    response = _post(o, o.body(to="+15125550124"))

    assert response.status_code == 429 and response.json()["code"] == "concurrency_limit"
    assert response["Retry-After"] == "5"
    assert len(_dials(twilio_sandbox)) == 1


def test_twilio_refusing_the_call_is_a_problem_and_the_session_failed(o, twilio_sandbox):
    response = _post(o, o.body(to="+15005550001"))
    assert response.status_code == 422 and response.json()["code"] == "twilio_error"
    session = CallSession.objects.get()
    assert session.status == "failed" and session.outcome == "failed" and session.ended_at is not None


def test_a_wrong_or_revoked_key_gets_401(o):
    assert _post(o, o.body(), key="cw_live_nope").status_code == 401
    response = Client().get("/api/v1/calls")
    assert response.status_code == 401 and response.json()["title"] == "Unauthorized"
    assert response["WWW-Authenticate"].startswith("Bearer")
    key = ApiKey.objects.get()
    api_key_revoke(workspace=o.workspace, key_id=key.pk)
    assert _get(o, "/api/v1/calls").status_code == 401


def test_another_workspaces_call_is_404_and_absent_from_the_list(o):
    mine = _post(o, o.body()).json()
    _, their_key = api_key_create(workspace=WorkspaceFactory(), name="Theirs")

    assert _get(o, f"/api/v1/calls/{mine['id']}", key=their_key).status_code == 404
    assert _get(o, f"/api/v1/calls/{mine['id']}", key=their_key)["Content-Type"] == "application/problem+json"
    assert _get(o, "/api/v1/calls", key=their_key).json()["count"] == 0
    assert _post(o, o.body(), key=their_key).json()["code"] == "invalid_agent"


def test_the_list_filters_by_status_direction_and_number(o):
    a = _post(o, o.body()).json()
    _post(o, o.body(to="+15125550124"))

    assert _get(o, "/api/v1/calls").json()["count"] == 2
    assert [c["id"] for c in _get(o, "/api/v1/calls?to=%2B15125550123").json()["results"]] == [a["id"]]
    assert _get(o, "/api/v1/calls?direction=inbound").json()["count"] == 0
    assert _get(o, "/api/v1/calls?status=queued&limit=1").json()["results"][0]["status"] == "queued"


def test_invalid_input_is_a_problem_listing_the_fields(o):
    response = _post(o, {"agent": "x", "to": ""})
    body = response.json()
    assert response.status_code == 422 and set(body["errors"]) >= {"agent", "environment", "to"}


def test_keys_are_shown_once_stored_hashed_and_audited(workspace):
    key, raw = api_key_create(workspace=workspace, name="CRM")
    assert raw.startswith("cw_live_") and raw not in key.hashed_key and key.prefix == raw[:12]
    assert AuditEntry.objects.filter(action=AuditEntry.Action.API_KEY_CREATED, workspace=workspace).exists()
    api_key_revoke(workspace=workspace, key_id=key.pk)
    assert AuditEntry.objects.filter(action=AuditEntry.Action.API_KEY_REVOKED, workspace=workspace).exists()


def test_last_used_is_noted(o):
    _get(o, "/api/v1/calls")
    assert ApiKey.objects.get().last_used_at is not None


def test_the_rate_limit_is_per_key(o, settings):
    from rest_framework.settings import api_settings

    from api.throttling import ApiKeyRateThrottle

    ApiKeyRateThrottle.THROTTLE_RATES = {**api_settings.DEFAULT_THROTTLE_RATES, "api_key": "2/min"}
    try:
        assert [_get(o, "/api/v1/calls").status_code for _ in range(3)] == [200, 200, 429]
        _, other = api_key_create(workspace=o.workspace, name="Other")
        assert _get(o, "/api/v1/calls", key=other).status_code == 200
    finally:
        ApiKeyRateThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES


def test_the_schema_validates_and_every_documented_endpoint_answers(o):
    from openapi_spec_validator import validate

    response = Client().get("/api/v1/schema/?format=json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    validate(schema)
    placed = _post(o, o.body()).json()
    called = set()
    for path, methods in schema["paths"].items():
        for method in methods:
            url = path.replace("{call_id}", str(placed["id"]))
            if method == "post":
                result = _post(o, o.body(to="+15125550125"))
                assert result.status_code == 201, result.content
            else:
                result = _get(o, url)
                assert result.status_code == 200, (path, result.content)
            called.add((method, path))
    assert called == {("get", "/api/v1/calls"), ("post", "/api/v1/calls"), ("get", "/api/v1/calls/{call_id}")}


def test_the_docs_page_lists_the_operations():
    response = Client().get("/api/v1/docs/")
    assert response.status_code == 200
    assert b"POST /api/v1/calls" in response.content and b"Idempotency-Key" in response.content
