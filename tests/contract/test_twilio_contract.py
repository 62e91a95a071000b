"""Every REST call the gateway can make, sent through Prism on Twilio's official OpenAPI spec.

A request the spec rejects (Prism answers 422 and lists the violations) fails
its case. Prism then answers with the spec's examples, so each case also proves
the gateway parses Twilio's documented response shapes.

A new public function in `dialer.twilio_gateway` needs a case in CASES (or an
entry with a reason in NOT_REST_CALLS): `test_every_gateway_function_has_a_contract_case`
fails otherwise.
"""
from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

import pytest

from telephony import twilio_gateway as gw

pytestmark = pytest.mark.contract

ACCOUNT = "AC" + "0123456789abcdef" * 2
CREDS = gw.Credentials(account_sid=ACCOUNT, auth_token="f" * 32)
APP = "AP" + "a1" * 16
NUMBER = "PN" + "b2" * 16
CALLER_ID = "PN" + "c3" * 16
KEY = "SK" + "d4" * 16
CALL = "CA" + "e5" * 16
CALL2 = "CA" + "f6" * 16  # a supervisor's leg (coaching)
RECORDING = "RE" + "f6" * 16
BASE = "https://callwell.example.com"


@dataclass(frozen=True)
class Case:
    function: str
    call: Callable[[], object]
    spec: str = "api"  # which Prism: "api" (2010-04-01) or "monitor" (v1)
    known_deviation: str = ""  # non-empty: the spec rejects what real Twilio needs (strict xfail)
    label: str = ""

    @property
    def id(self) -> str:
        return f"{self.function}[{self.label}]" if self.label else self.function


def _handover_twiml() -> str:
    """The TwiML the runtime's handover sends (built by the same function)."""
    from calls.services.handovers import dial_twiml

    return dial_twiml(destination="+31201234567", action_url=f"{BASE}/v1/agents/abc/dial-result?handover=1")


CONFERENCE = "CF" + "a7" * 16


def _hold_twiml() -> str:
    """The caller's side of a warm transfer (calls.services.transfers)."""
    from calls.services.transfers import hold_twiml

    return hold_twiml(handover_id=1, base="/v1/agents/abc")


def _brief_twiml() -> str:
    from calls.services.transfers import brief_twiml

    return brief_twiml(handover_id=1, attempt=0, base="/v1/agents/abc", brief="You have a call from +15125550199.")


def _brief_play_twiml() -> str:
    """The brief in the agent's own voice: `<Play>` of the app's signed audio URL."""
    from calls.services.transfers import brief_twiml

    return brief_twiml(handover_id=1, attempt=0, base="/v1/calls/outbound/7", brief="",
                       audio_url=f"{BASE}/v1/audio/brief/signed-token")


def _outbound_hold_twiml() -> str:
    """A placed call's warm hold: its callbacks under the call session's own URLs, the action's hold message."""
    from calls.services.transfers import hold_twiml

    return hold_twiml(handover_id=1, base="/v1/calls/outbound/7", say="One moment, I'm getting Sam from sales.")


def _voicemail_drop_twiml() -> str:
    """The callee's leg of a dialer call, redirected to the workspace's voicemail message (dialer.dispositions)."""
    from dialer.dispositions import drop_twiml

    return drop_twiml(audio_url=f"{BASE}/voicemail-drop/abc:def?f=message.mp3")


CASES = [
    Case("account_fetch", lambda: gw.account_fetch(creds=CREDS)),
    Case("subaccount_create", lambda: gw.subaccount_create(parent=CREDS, friendly_name="Callwell workspace 42")),
    Case("subaccount_find", lambda: gw.subaccount_find(parent=CREDS, friendly_name="Callwell workspace 42")),
    Case("api_key_create", lambda: gw.api_key_create(creds=CREDS, friendly_name="Callwell browser dialer")),
    Case("api_keys_list", lambda: gw.api_keys_list(creds=CREDS)),
    Case("api_key_exists", lambda: gw.api_key_exists(creds=CREDS, key_sid=KEY)),
    Case("api_key_delete", lambda: gw.api_key_delete(creds=CREDS, key_sid=KEY)),
    Case("application_create", lambda: gw.application_create(
        creds=CREDS, friendly_name="Callwell dialer", voice_url=f"{BASE}/dialer/voice/",
        status_callback=f"{BASE}/dialer/status/")),
    Case("application_create", lambda: gw.application_create(
        creds=CREDS, friendly_name="Callwell dialer", voice_url=f"{BASE}/dialer/voice/"), label="no-callback"),
    Case("application_find", lambda: gw.application_find(creds=CREDS, friendly_name="Callwell dialer")),
    Case("application_fetch", lambda: gw.application_fetch(creds=CREDS, app_sid=APP)),
    Case("application_update", lambda: gw.application_update(
        creds=CREDS, app_sid=APP, voice_url=f"{BASE}/dialer/voice/", status_callback=f"{BASE}/dialer/status/")),
    Case("available_numbers_search", lambda: gw.available_numbers_search(
        creds=CREDS, country="US", area_code="512", contains="42", limit=20)),
    Case("available_numbers_search", lambda: gw.available_numbers_search(
        creds=CREDS, country="CA", area_code="416"), label="no-contains"),
    Case("incoming_number_purchase", lambda: gw.incoming_number_purchase(
        creds=CREDS, phone_number="+15125550134", voice_application_sid=APP, friendly_name="Sales line")),
    Case("incoming_number_purchase", lambda: gw.incoming_number_purchase(
        creds=CREDS, phone_number="+15005550006"), label="number-only"),
    Case("incoming_numbers_list", lambda: gw.incoming_numbers_list(creds=CREDS)),
    Case("incoming_numbers_list", lambda: gw.incoming_numbers_list(creds=CREDS, phone_number="+15125550134"),
         label="by-number"),
    Case("incoming_number_fetch", lambda: gw.incoming_number_fetch(creds=CREDS, number_sid=NUMBER)),
    Case("incoming_number_update", lambda: gw.incoming_number_update(
        creds=CREDS, number_sid=NUMBER, voice_url=f"{BASE}/connectors/abc/voice", voice_method="GET")),
    Case("incoming_number_update", lambda: gw.incoming_number_update(
        creds=CREDS, number_sid=NUMBER, voice_application_sid=APP), label="to-app"),
    Case("incoming_number_update", lambda: gw.incoming_number_update(
        creds=CREDS, number_sid=NUMBER, voice_url=f"{BASE}/connectors/abc/voice", voice_method="GET",
        voice_application_sid=""), label="clear-app",
        known_deviation="Twilio clears a number's VoiceApplicationSid when it is sent empty (the only way to hand "
                         "the number back to its VoiceUrl), but the spec's pattern ^AP[0-9a-fA-F]{32}$ rejects ''."),
    Case("incoming_number_update", lambda: gw.incoming_number_update(
        creds=CREDS, number_sid=NUMBER, voice_url=""), label="clear-url",
        known_deviation="Twilio clears VoiceUrl when it is sent empty, but the spec's format: uri rejects ''."),
    Case("incoming_number_release", lambda: gw.incoming_number_release(creds=CREDS, number_sid=NUMBER)),
    Case("caller_id_validation_request", lambda: gw.caller_id_validation_request(
        creds=CREDS, phone_number="+15125550111", friendly_name="Alice (cell)",
        status_callback=f"{BASE}/dialer/caller-ids/status/")),
    Case("outgoing_caller_ids_list", lambda: gw.outgoing_caller_ids_list(creds=CREDS, phone_number="+15125550111")),
    Case("outgoing_caller_id_delete", lambda: gw.outgoing_caller_id_delete(creds=CREDS, caller_id_sid=CALLER_ID)),
    Case("call_update", lambda: gw.call_update(
        creds=CREDS, call_sid=CALL, twiml="<Response><Say>Transferring you now.</Say></Response>")),
    Case("call_update", lambda: gw.call_update(creds=CREDS, call_sid=CALL, twiml=_handover_twiml()), label="handover"),
    Case("call_update", lambda: gw.call_update(creds=CREDS, call_sid=CALL, status="completed"), label="hang-up"),
    Case("call_create", lambda: gw.call_create(
        creds=CREDS, to="+15125550123", from_="+15125550100", url=f"{BASE}/v1/calls/outbound/1/answer",
        status_callback=f"{BASE}/v1/calls/outbound/1/status", amd_status_callback=f"{BASE}/v1/calls/outbound/1/amd")),
    Case("call_create", lambda: gw.call_create(
        creds=CREDS, to="+15125550123", from_="+15125550100", url=f"{BASE}/v1/calls/outbound/1/answer",
        status_callback=f"{BASE}/v1/calls/outbound/1/status"), label="no-amd"),
    Case("call_update", lambda: gw.call_update(creds=CREDS, call_sid=CALL, twiml=_hold_twiml()), label="warm-hold"),
    Case("call_update", lambda: gw.call_update(creds=CREDS, call_sid=CALL, twiml=_voicemail_drop_twiml()),
         label="voicemail-drop"),
    Case("call_update", lambda: gw.call_update(creds=CREDS, call_sid=CALL, twiml=_brief_twiml()), label="warm-brief"),
    Case("call_update", lambda: gw.call_update(creds=CREDS, call_sid=CALL, twiml=_brief_play_twiml()),
         label="warm-brief-play"),
    Case("call_update", lambda: gw.call_update(creds=CREDS, call_sid=CALL, twiml=_outbound_hold_twiml()),
         label="placed-call-warm-hold"),
    Case("conference_participant_create", lambda: gw.conference_participant_create(
        creds=CREDS, conference="callwell-transfer-1", from_="+15125550100", to="+31201234567",
        label="transfer-0", status_callback=f"{BASE}/v1/agents/abc/transfer-status?handover=1&attempt=0",
        amd_status_callback=f"{BASE}/v1/agents/abc/transfer-amd?handover=1&attempt=0",
        start_conference_on_enter=False)),
    Case("conference_participant_create", lambda: gw.conference_participant_create(
        creds=CREDS, conference=CONFERENCE, from_="+15125550100", to="+31201234567",
        status_callback=f"{BASE}/v1/agents/abc/transfer-status?handover=1&attempt=0",
        wait_url=f"{BASE}/static/hold.xml"), label="by-sid-no-amd"),
    Case("conference_participant_update", lambda: gw.conference_participant_update(
        creds=CREDS, conference_sid=CONFERENCE, call_sid=CALL, hold=True, hold_url=f"{BASE}/static/hold.xml"),
        label="hold"),
    Case("conference_participant_update", lambda: gw.conference_participant_update(
        creds=CREDS, conference_sid=CONFERENCE, call_sid=CALL, announce_url=f"{BASE}/v1/agents/abc/announce"),
        label="announce"),
    Case("conference_participant_update", lambda: gw.conference_participant_update(
        creds=CREDS, conference_sid=CONFERENCE, call_sid=CALL, muted=True, hold=False), label="mute-unhold"),
    Case("conference_participant_update", lambda: gw.conference_participant_update(
        creds=CREDS, conference_sid=CONFERENCE, call_sid=CALL2, muted=False, coaching=True, call_sid_to_coach=CALL),
        label="whisper"),
    Case("conference_participant_update", lambda: gw.conference_participant_update(
        creds=CREDS, conference_sid=CONFERENCE, call_sid=CALL2, muted=False, coaching=False), label="barge"),
    Case("conference_participant_delete", lambda: gw.conference_participant_delete(
        creds=CREDS, conference_sid=CONFERENCE, call_sid=CALL)),
    Case("call_recording_start", lambda: gw.call_recording_start(
        creds=CREDS, call_sid=CALL, status_callback=f"{BASE}/dialer/recordings/status/")),
    Case("recording_delete", lambda: gw.recording_delete(creds=CREDS, recording_sid=RECORDING)),
    Case("alerts_list", lambda: gw.alerts_list(creds=CREDS, since=datetime.now(timezone.utc) - timedelta(days=1)),
         spec="monitor"),
    Case("alerts_list", lambda: gw.alerts_list(creds=CREDS, limit=50), spec="monitor", label="no-since"),
]

# Public names of the gateway that are not covered by a Prism case, and why.
NOT_REST_CALLS = {
    "rewrite_url": "transport helper, sends nothing",
    "reset_http_client": "transport helper, sends nothing",
    "recording_media": "the audio URL (.../Recordings/{Sid}.mp3) is not in Twilio's OpenAPI spec (only the .json "
                       "metadata is); the sandbox tests cover it (tests/dialer/test_gateway.py)",
}


def _public_functions() -> set[str]:
    return {name for name, obj in inspect.getmembers(gw, inspect.isfunction)
            if obj.__module__ == gw.__name__ and not name.startswith("_")}


def test_every_gateway_function_has_a_contract_case():
    covered = {case.function for case in CASES if not case.known_deviation}
    missing = _public_functions() - covered - set(NOT_REST_CALLS)
    assert not missing, f"gateway functions without a (spec-conforming) contract case in {__name__}.CASES: {sorted(missing)}"
    stale = (covered | set(NOT_REST_CALLS)) - _public_functions()
    assert not stale, f"contract cases for functions the gateway no longer has: {sorted(stale)}"


@pytest.fixture
def recorded(monkeypatch):
    """Every (method, url, status, headers, body) the gateway's HTTP client saw."""
    seen: list[tuple[str, str, int, dict, str]] = []
    original = gw._GatewayHttpClient.request

    def request(self, method, url, params=None, data=None, *args, **kwargs):
        # Prism reads only `Key[]=a&Key[]=b` as an array in a form body (stoplightio/prism#2473); Twilio, its
        # library and OpenAPI's default (style: form, explode: true) send `Key=a&Key=b`. Rename list-valued
        # fields so Prism still validates each item.
        if isinstance(data, dict):
            data = {(f"{k}[]" if isinstance(v, (list, tuple)) else k): v for k, v in data.items()}
        response = original(self, method, url, params, data, *args, **kwargs)
        seen.append((method, gw.rewrite_url(url), response.status_code, dict(response.headers or {}), response.text))
        return response

    monkeypatch.setattr(gw._GatewayHttpClient, "request", request)
    return seen


def _request_violations(headers: dict) -> list[dict]:
    """Errors Prism found in our request but answered anyway (sl-violations header; not the spec's own answers)."""
    found = []
    for name, value in headers.items():
        if name.lower() == "sl-violations":
            try:
                found += [v for v in json.loads(value) if v.get("severity") == "Error"
                          and (v.get("location") or ["response"])[0] != "response"]
            except ValueError:
                found.append({"location": ["header"], "message": value})
    return found


def _violations(status: int, headers: dict, body: str) -> str:
    lines = []
    for name, value in headers.items():
        if name.lower() == "sl-violations":
            try:
                for v in json.loads(value):
                    if (v.get("location") or [""])[0] == "response":
                        continue  # the spec's own example, not our request
                    lines.append(f"  - {'.'.join(map(str, v.get('location', [])))}: {v.get('message')}")
            except ValueError:
                lines.append(f"  sl-violations: {value}")
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        for v in payload.get("validation") or []:
            lines.append(f"  - {'.'.join(map(str, v.get('location', [])))}: {v.get('message')}")
        if not lines and payload.get("detail"):
            lines.append(f"  {payload.get('title', '')}: {payload['detail']}")
    if not lines:
        lines.append(f"  body: {body[:500]}")
    return "\n".join(lines)


def _run_through_prism(case: Case, prism_servers, recorded, settings) -> tuple[str, Exception | None]:
    """Send the case through Prism; returns (report of what the spec rejected, gateway error or None)."""
    settings.TWILIO_API_BASE_URL = prism_servers[case.spec].base_url
    gw.reset_http_client()
    try:
        error = None
        try:
            case.call()
        except gw.errors.TwilioError as exc:  # the gateway turned a refusal into our error: show what Prism said
            error = exc
        assert recorded, f"{case.id} sent no request through the gateway's HTTP client"
        rejected = [r for r in recorded if not 200 <= r[2] < 300 or _request_violations(r[3])]
        report = "\n".join(f"{m} {u} -> {s}\n{_violations(s, h, b)}" for m, u, s, h, b in rejected)
        return report, error
    finally:
        gw.reset_http_client()


@pytest.mark.parametrize("case", [
    pytest.param(c, id=c.id, marks=[pytest.mark.xfail(strict=True, reason=c.known_deviation)] if c.known_deviation
                 else []) for c in CASES])
def test_gateway_call_conforms_to_twilio_spec(case, prism_servers, recorded, settings):
    report, error = _run_through_prism(case, prism_servers, recorded, settings)
    assert not report, f"Twilio's spec rejects what {case.id} sends:\n{report}"
    assert error is None, f"{case.id} could not handle the spec's example answer: {error!r}"


def test_the_stage_catches_a_request_the_spec_rejects(prism_servers, recorded, settings):
    """The harness itself: a bad enum value and a non-URL must come back as a readable report."""
    bad = Case("incoming_number_update", lambda: gw.incoming_number_update(
        creds=CREDS, number_sid=NUMBER, voice_url="not a url", voice_method="PATCH"))
    report, error = _run_through_prism(bad, prism_servers, recorded, settings)
    assert "-> 422" in report
    assert "body.VoiceMethod: Request body property VoiceMethod must be equal to one of the allowed values" in report
    assert "body.VoiceUrl" in report
    assert isinstance(error, gw.errors.TwilioPermanentError)


def test_missing_prism_fails_in_ci_and_skips_locally(monkeypatch):
    from _pytest.outcomes import Failed, Skipped

    from tests.contract import conftest

    monkeypatch.setenv("CI", "true")
    with pytest.raises(Failed, match="Contract stage cannot run: prism is missing"):
        conftest._unavailable("prism is missing")
    monkeypatch.delenv("CI")
    with pytest.raises(Skipped, match="set CI=1"):
        conftest._unavailable("prism is missing")
