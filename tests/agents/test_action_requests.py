"""API actions at run time: schema, templates, auth connectors (OAuth2 token reuse and refresh), limits,
plain-words errors, the outbound guard, and secrets kept out of answers and logs."""
import asyncio
import logging
import socket

import pytest
from django.test import override_settings

from agents.action_requests import (
    ActionOutcome,
    ApiActionSpec,
    AuthSpec,
    action_perform,
    action_requirements,
    action_tool_schema,
    template_problems,
)
from tests.fakes.action_api import FakeActionApi

REFUSED = override_settings(OUTBOUND_ALLOW_PRIVATE_TARGETS=False, OUTBOUND_ALLOW_HTTP=True)
ORDER_PARAMS = ({"name": "order_id", "type": "string", "required": True, "description": "The order number"},)


@pytest.fixture
def api():
    fake = FakeActionApi().start()
    yield fake
    fake.stop()


def perform(action, arguments=None, *, variables=None, secrets=None, auth=None, cache=None) -> ActionOutcome:
    return asyncio.run(action_perform(action=action, arguments=arguments or {}, secrets=secrets or {},
                                      variables=variables or {}, auth_connectors=auth or {},
                                      token_cache=cache if cache is not None else {}))


def order_action(**kw) -> ApiActionSpec:
    base = dict(name="order_status", url="{API_BASE}/orders/{order_id}", parameters=ORDER_PARAMS)
    return ApiActionSpec(**{**base, **kw})


def test_tool_schema_comes_from_the_parameters():
    action = ApiActionSpec(name="book", url="https://x.test/", parameters=(
        {"name": "day", "type": "enum", "enum": ["monday", "tuesday"], "required": True},
        {"name": "people", "type": "integer"}, {"name": "vip", "type": "boolean", "description": "VIP?"}))
    assert action_tool_schema(action) == {
        "type": "object", "additionalProperties": False, "required": ["day"],
        "properties": {"day": {"type": "string", "enum": ["monday", "tuesday"]}, "people": {"type": "integer"},
                       "vip": {"type": "boolean", "description": "VIP?"}}}


def test_a_get_with_variables_and_parameters_returns_the_pointed_field(api):
    outcome = perform(order_action(result_pointer="/order/status"), {"order_id": "A 42/7"},
                      variables={"API_BASE": api.url})
    assert outcome.ok and outcome.status_code == 200 and outcome.result_text == "shipped"
    # The parameter is percent-encoded in the path; the variable is used as written.
    assert api.requests[-1][1] == "/orders/A%2042%2F7"


def test_the_whole_json_goes_back_when_there_is_no_pointer_and_is_truncated(api):
    outcome = perform(order_action(result_max_chars=20), {"order_id": "42"}, variables={"API_BASE": api.url})
    assert outcome.ok and len(outcome.result_text) == 20 and outcome.result_text.endswith("…")
    assert outcome.result_text.startswith('{"order":{"id":"42"')


def test_a_post_sends_the_json_body_with_typed_parameters(api):
    action = ApiActionSpec(name="book", method="POST", url=f"{api.url}/bookings",
                           body={"day": "{day}", "people": "{people}", "note": "for {day}", "fixed": 1},
                           parameters=({"name": "day", "type": "string", "required": True},
                                       {"name": "people", "type": "integer"}),
                           result_pointer="/received")
    outcome = perform(action, {"day": "tuesday", "people": 3})
    assert outcome.ok and outcome.status_code == 201
    assert outcome.result_text == '{"day":"tuesday","people":3,"note":"for tuesday","fixed":1}'


def test_headers_and_query_are_templated(api):
    action = ApiActionSpec(name="echo", url=f"{api.url}/echo", headers={"X-Company": "{COMPANY}"},
                           query={"q": "{term}", "empty": "{missing}"},
                           parameters=({"name": "term", "type": "string"}, {"name": "missing", "type": "string"}))
    outcome = perform(action, {"term": "a&b"}, variables={"COMPANY": "Acme"})
    assert outcome.ok
    method, path, headers, _ = api.requests[-1]
    assert headers["X-Company"] == "Acme" and path == "/echo?q=a%26b"


@pytest.mark.parametrize("arguments, message", [
    ({}, "The parameter order_id is required."),
    ({"order_id": "1", "colour": "red"}, "Unknown parameter colour"),
    ("not json", "not valid JSON"),
])
def test_bad_arguments_are_refused_in_plain_words_without_a_request(api, arguments, message):
    outcome = perform(order_action(), arguments, variables={"API_BASE": api.url})
    assert not outcome.ok and message in outcome.error and api.requests == []
    assert outcome.model_text().startswith("The action failed:")


def test_type_checks_follow_the_schema():
    action = ApiActionSpec(name="x", url="https://x.test/", parameters=(
        {"name": "n", "type": "integer"}, {"name": "kind", "type": "enum", "enum": ["a", "b"]}))
    assert "whole number" in perform(action, {"n": "three"}).error
    assert "one of: a, b" in perform(action, {"kind": "c"}).error


@pytest.mark.parametrize("path, message", [
    ("/status/404", "The API answered with status 404."),
    ("/status/500", "The API answered with status 500."),
    ("/text", "did not answer with valid JSON"),
    ("/big", "larger than 64 KB"),
])
def test_api_errors_come_back_in_plain_words(api, path, message):
    outcome = perform(ApiActionSpec(name="x", url=api.url + path))
    assert not outcome.ok and message in outcome.error


def test_a_missing_pointer_says_so(api):
    outcome = perform(order_action(result_pointer="/order/nothing"), {"order_id": "1"},
                      variables={"API_BASE": api.url})
    assert outcome.error == "The answer has nothing at /order/nothing."


def test_a_slow_api_times_out(api):
    api.slow_seconds = 60  # answers only when released: after the action gave up
    outcome = perform(ApiActionSpec(name="x", url=api.url + "/slow", timeout_seconds=0.5))
    assert not outcome.ok and outcome.error == "The API did not answer within 0.5 seconds."
    assert api.slow_answered == 0  # it gave up while the API still held the request
    api.slow_release.set()


def test_a_missing_variable_or_auth_connector_is_named(api):
    assert "no variable API_BASE" in perform(order_action(), {"order_id": "1"}).error
    outcome = perform(order_action(auth_connector="crm"), {"order_id": "1"}, variables={"API_BASE": api.url})
    assert outcome.error == "The environment has no auth connector named crm."


@pytest.mark.parametrize("kind, config, header, expected", [
    ("api_key_header", {"header_name": "X-Api-Key"}, "x-api-key", "key-abcdef-123"),
    ("bearer", {}, "authorization", "Bearer key-abcdef-123"),
    ("basic", {"username": "bot"}, "authorization", "Basic Ym90OmtleS1hYmNkZWYtMTIz"),
])
def test_auth_connectors_add_their_header(api, kind, config, header, expected):
    auth = {"crm": AuthSpec(name="crm", kind=kind, config=config, secret="key-abcdef-123")}
    outcome = perform(ApiActionSpec(name="x", url=api.url + "/echo", auth_connector="crm"), auth=auth)
    assert outcome.ok
    assert {k.lower(): v for k, v in api.requests[-1][2].items()}[header] == expected
    # The answer echoes the header: the secret never reaches the model.
    assert "key-abcdef-123" not in outcome.result_text and "[redacted]" in outcome.result_text


def oauth(api) -> dict:
    return {"crm": AuthSpec(name="crm", kind="oauth2_client_credentials", secret=api.client_secret,
                            config={"token_url": api.url + "/token", "client_id": api.client_id})}


def test_oauth2_token_is_fetched_once_and_kept_for_the_call(api):
    cache: dict = {}
    action = ApiActionSpec(name="x", url=api.url + "/secure/a", auth_connector="crm")
    for _ in range(3):
        outcome = perform(action, auth=oauth(api), cache=cache)
        assert outcome.ok, outcome.error
    assert api.token_requests == 1
    token_call = next(r for r in api.requests if r[1] == "/token")
    assert b"grant_type=client_credentials" in token_call[3]


def test_an_expired_token_is_fetched_again(api):
    api.expires_in = 10  # within the expiry margin: never reused
    cache: dict = {}
    action = ApiActionSpec(name="x", url=api.url + "/secure/a", auth_connector="crm")
    perform(action, auth=oauth(api), cache=cache)
    perform(action, auth=oauth(api), cache=cache)
    assert api.token_requests == 2


def test_a_401_fetches_a_new_token_once(api):
    cache: dict = {}
    action = ApiActionSpec(name="x", url=api.url + "/secure/a", auth_connector="crm")
    assert perform(action, auth=oauth(api), cache=cache).ok
    api.revoke_tokens()
    outcome = perform(action, auth=oauth(api), cache=cache)
    assert outcome.ok and api.token_requests == 2
    # A 401 that persists is reported, after exactly one more token.
    always = ApiActionSpec(name="x", url=api.url + "/status/401", auth_connector="crm")
    outcome = perform(always, auth=oauth(api), cache=cache)
    assert outcome.error == "The API answered with status 401." and api.token_requests == 3


def test_a_refused_client_secret_is_a_plain_error_without_the_secret(api):
    auth = oauth(api)
    auth["crm"] = AuthSpec(name="crm", kind="oauth2_client_credentials", secret="wrong-secret-value",
                           config=auth["crm"].config)
    outcome = perform(ApiActionSpec(name="x", url=api.url + "/secure/a", auth_connector="crm"), auth=auth)
    assert outcome.error == "Could not authenticate: the token endpoint of crm answered with status 401."


def test_environment_secret_values_are_redacted_from_answers(api):
    outcome = perform(ApiActionSpec(name="x", url=api.url + "/echo", headers={"X-Note": "{NOTE}"}),
                      variables={"NOTE": "hunter2-secret"}, secrets={"ANY": "hunter2-secret"})
    assert "hunter2-secret" not in outcome.result_text


@pytest.mark.parametrize("url", ["http://127.0.0.1/x", "http://[::1]/x", "http://10.0.0.1/x",
                                 "http://169.254.169.254/latest/meta-data/"])
def test_private_targets_are_refused(url):
    with REFUSED:
        outcome = perform(ApiActionSpec(name="x", url=url))
    assert not outcome.ok and outcome.error.startswith("The request was refused:")


def test_a_name_resolving_to_loopback_is_refused(api, monkeypatch):
    real = socket.getaddrinfo
    # anyio passes the name IDNA-encoded (bytes).
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *a, **k: real(
        "127.0.0.1" if host in ("api.example.test", b"api.example.test") else host, *a, **k))
    with REFUSED:
        outcome = perform(ApiActionSpec(name="x", url=api.url.replace("127.0.0.1", "api.example.test") + "/echo"))
    assert "loopback" in outcome.error and api.requests == []


def test_a_redirect_to_loopback_is_refused(api, monkeypatch):
    from workspaces import outbound

    public = FakeActionApi(host="127.0.0.2").start()
    try:
        real = outbound.address_refusal
        monkeypatch.setattr(outbound, "address_refusal", lambda a: None if a == "127.0.0.2" else real(a))
        with REFUSED:
            outcome = perform(ApiActionSpec(name="x", url=f"{public.url}/redirect?to={api.url}/echo"))
    finally:
        public.stop()
    assert outcome.error.startswith("The request was refused") and api.requests == []


def test_the_oauth2_token_url_is_guarded_too(api):
    auth = {"crm": AuthSpec(name="crm", kind="oauth2_client_credentials", secret="s3cret-xyz",
                            config={"token_url": "http://169.254.169.254/token", "client_id": "c"})}
    with REFUSED:
        outcome = perform(ApiActionSpec(name="x", url="https://api.example.com/", auth_connector="crm"), auth=auth)
    assert not outcome.ok and "refused" in outcome.error


def test_a_redirect_to_another_host_drops_the_auth_header(api):
    other = FakeActionApi(host="127.0.0.3").start()
    try:
        auth = {"crm": AuthSpec(name="crm", kind="api_key_header", config={"header_name": "X-Api-Key"},
                                secret="key-abcdef-123")}
        outcome = perform(ApiActionSpec(name="x", url=f"{api.url}/redirect?to={other.url}/echo",
                                        auth_connector="crm"), auth=auth)
        assert outcome.ok
        assert "x-api-key" not in {k.lower() for k in other.requests[-1][2]}
    finally:
        other.stop()


def test_secrets_are_absent_from_logs(api, caplog):
    caplog.set_level(logging.DEBUG)
    cache: dict = {}
    perform(ApiActionSpec(name="x", url=api.url + "/secure/a", auth_connector="crm"), auth=oauth(api), cache=cache)
    perform(ApiActionSpec(name="x", url=api.url + "/leak", auth_connector="crm"), auth=oauth(api), cache=cache)
    token = next(iter(cache.values()))[0]
    assert api.client_secret not in caplog.text and token not in caplog.text


def test_templates_are_checked_for_the_form():
    problems = template_problems(url="https://x.test/{order}/{", headers={"A": "{nope}"}, query=[], body=None,
                                 parameters=[{"name": "Order", "type": "text"}])
    assert set(problems) == {"url", "headers", "query", "parameters"}
    assert template_problems(url="{API_BASE}/o/{order_id}", headers={}, query={"x": "{{literal}}"},
                             body={"id": "{order_id}"}, parameters=list(ORDER_PARAMS)) == {}


def test_requirements_name_variables_and_auth_connectors():
    actions = [order_action(auth_connector="crm"),
               ApiActionSpec(name="y", url="https://x.test/", headers={"X": "{TENANT}"})]
    assert action_requirements(actions) == {"auth_connectors": ["crm"], "variables": ["API_BASE", "TENANT"]}


def test_redirects_are_followed_at_most_three_times(api):
    outcome = perform(ApiActionSpec(name="x", url=api.url + "/loop"))
    assert outcome.error == "The API redirected more than 3 times." and len(api.requests) == 4
    outcome = perform(ApiActionSpec(name="x", url=f"{api.url}/redirect?to=/orders/7", result_pointer="/order/id"))
    assert outcome.ok and outcome.result_text == "7"
