"""The sandbox answers with Twilio's JSON shapes: its responses checked against Twilio's official OpenAPI spec.

Prism in proxy mode sits between the gateway and the sandbox and reports, in the `sl-violations` header, where a
response breaks the spec. Real Twilio itself breaks its spec in three known ways, which the sandbox copies on
purpose and which are therefore allowed here: relative `uri`/`*_page_uri` values, empty strings for unset URLs and
SIDs, and latitude/longitude as numeric strings. Anything else (a missing or mistyped field, a wrong status code) fails.
"""
from __future__ import annotations

import json
import subprocess
import tempfile
import time

import pytest

from telephony import twilio_gateway as gw

from . import conftest

pytestmark = pytest.mark.contract


class PrismProxy(conftest.PrismServer):
    def __init__(self, spec, upstream: str):  # noqa: D107 - same as PrismServer, in proxy mode
        self.spec = spec
        self.port = conftest._free_port()
        self.log = tempfile.NamedTemporaryFile(prefix="prism-proxy-", suffix=".log", delete=False)
        self.process = subprocess.Popen(
            [str(conftest._prism_bin()), "proxy", "--host", "127.0.0.1", "--port", str(self.port), str(spec), upstream],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=str(conftest._repo_root()),
            start_new_session=True,
        )


def _value_at(body, path):
    for key in path:
        body = body[int(key)] if isinstance(body, list) else body.get(key)
    return body


def _twilio_own_deviation(violation: dict, body) -> bool:
    path = violation.get("location", [])[2:]  # ["response", "body", ...]
    try:
        value = _value_at(body, path)
    except (KeyError, IndexError, ValueError, AttributeError, TypeError):
        return False
    message = violation.get("message", "")
    if isinstance(value, str) and value == "":
        return True  # unset URL / SID: Twilio sends ""
    if isinstance(value, str) and value.startswith("/2010-04-01/") and 'format "uri"' in message:
        return True  # Twilio's own uri / first_page_uri / next_page_uri are relative
    if path and path[-1] in ("latitude", "longitude") and isinstance(value, str):
        float(value)
        return True  # Twilio sends coordinates as strings
    return False


@pytest.fixture
def recorded(monkeypatch):
    """Every (method, url, status, headers, body) the gateway's HTTP client saw."""
    seen: list[tuple[str, str, int, dict, str]] = []
    original = gw._GatewayHttpClient.request

    def request(self, method, url, *args, **kwargs):
        response = original(self, method, url, *args, **kwargs)
        seen.append((method, gw.rewrite_url(url), response.status_code, dict(response.headers or {}), response.text))
        return response

    monkeypatch.setattr(gw._GatewayHttpClient, "request", request)
    return seen


@pytest.fixture
def proxied_sandbox(twilio_sandbox, settings):
    if not conftest._prism_bin().exists():
        conftest._unavailable("prism is missing: run `npm ci`")
    spec = conftest._spec_dir() / "twilio_api_v2010.json"
    if not spec.exists():
        conftest._unavailable(f"Twilio OpenAPI spec not found: {spec}")
    proxy = PrismProxy(spec, twilio_sandbox.base_url)
    try:
        proxy.wait_ready(time.monotonic() + conftest.START_TIMEOUT)
        settings.TWILIO_API_BASE_URL = proxy.base_url
        gw.reset_http_client()
        yield twilio_sandbox
    finally:
        gw.reset_http_client()
        proxy.stop()


def test_sandbox_answers_conform_to_twilio_spec(proxied_sandbox, recorded):
    sandbox = proxied_sandbox
    sid, token = sandbox.add_account(friendly_name="Shapes")
    creds = gw.Credentials(account_sid=sid, auth_token=token)
    gw.account_fetch(creds=creds)
    sub = gw.subaccount_create(parent=creds, friendly_name="Shapes sub")
    assert gw.subaccount_find(parent=creds, friendly_name="Shapes sub").sid == sub.sid
    key = gw.api_key_create(creds=creds, friendly_name="dialer")
    gw.api_keys_list(creds=creds)
    assert gw.api_key_exists(creds=creds, key_sid=key.sid)
    app = gw.application_create(creds=creds, friendly_name="dialer", voice_url="https://calls.example.com/v",
                                status_callback="https://calls.example.com/s")
    gw.application_find(creds=creds, friendly_name="dialer")
    gw.application_update(creds=creds, app_sid=app.sid, voice_url="https://calls.example.com/v2")
    assert gw.application_fetch(creds=creds, app_sid=app.sid).voice_url.endswith("/v2")
    assert gw.available_numbers_search(creds=creds, country="US", area_code="512", limit=2)
    number = gw.incoming_number_purchase(creds=creds, phone_number="+15005550006", voice_application_sid=app.sid)
    gw.incoming_numbers_list(creds=creds)
    gw.incoming_number_fetch(creds=creds, number_sid=number.sid)
    gw.incoming_number_update(creds=creds, number_sid=number.sid, voice_url="https://calls.example.com/in",
                              voice_method="POST", voice_application_sid="")
    gw.caller_id_validation_request(creds=creds, phone_number="+15125550111")
    gw.outgoing_caller_ids_list(creds=creds)
    call_sid = "CA" + "a1" * 16
    sandbox.add_call(sid, call_sid)
    recording = gw.call_recording_start(creds=creds, call_sid=call_sid, status_callback="https://calls.example.com/r")
    gw.call_update(creds=creds, call_sid=call_sid, twiml="<Response><Hangup/></Response>")
    sandbox.dial_outbound = False  # the sandbox records the outbound call; nobody answers (no request leaves)
    gw.call_create(creds=creds, to="+15125550123", from_="+15125550100", url="https://calls.example.com/a",
                   status_callback="https://calls.example.com/s", amd_status_callback="https://calls.example.com/amd")
    participant = gw.conference_participant_create(
        creds=creds, conference="callwell-transfer-1", from_="+15125550100", to="+15125550188",
        status_callback="https://calls.example.com/ts", amd_status_callback="https://calls.example.com/amd",
        start_conference_on_enter=False)
    assert participant.conference_sid.startswith("CF") and participant.call_sid.startswith("CA")
    sandbox.simulated[participant.call_sid].done.wait(10)  # no answer (…88): it left no participant
    other = "CA" + "b2" * 16
    sandbox.add_call(sid, other)
    from devtools.twilio_sandbox import conference

    with sandbox.lock:
        conf = sandbox.state["conferences"][sid][participant.conference_sid]
    conference._join(sandbox, conf, other, {"start_conference_on_enter": "false"})
    gw.conference_participant_update(creds=creds, conference_sid=participant.conference_sid, call_sid=other,
                                     hold=True, hold_url="https://calls.example.com/hold")
    gw.conference_participant_update(creds=creds, conference_sid=participant.conference_sid, call_sid=other,
                                     announce_url="https://calls.example.com/announce")
    gw.conference_participant_delete(creds=creds, conference_sid=participant.conference_sid, call_sid=other)
    gw.recording_delete(creds=creds, recording_sid=recording.sid)
    gw.incoming_number_release(creds=creds, number_sid=number.sid)
    gw.api_key_delete(creds=creds, key_sid=key.sid)

    problems = []
    for method, url, status, headers, body in recorded:
        raw = next((v for k, v in headers.items() if k.lower() == "sl-violations"), "")
        try:
            violations = json.loads(raw) if raw else []
        except ValueError:
            problems.append(f"{method} {url}: unreadable violations header {raw[:200]}")
            continue
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            payload = None
        for v in violations:
            if (v.get("severity") != "Error" or (v.get("location") or [""])[0] != "response"  # requests: the
                    or _twilio_own_deviation(v, payload)):  # contract cases' job (known request deviations there)
                continue
            problems.append(f"{method} {url} -> {status}: {'.'.join(map(str, v.get('location', [])))}: "
                            f"{v.get('message')}")
    assert len(recorded) >= 21
    assert not problems, "the sandbox answers differently from Twilio's spec:\n" + "\n".join(problems)
