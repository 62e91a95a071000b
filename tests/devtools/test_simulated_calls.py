"""The sandbox places a phone call as Twilio would: the app's real webhooks and websockets answer it."""
import pytest

from calls.models import CallHandover, CallSession, CallTurn
from tests.calls.engine.conftest import asgi_server, make_call_setup  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db(transaction=True)


def _route_number(sandbox, setup, number="+15125550100") -> str:
    sandbox.add_incoming_number(setup.connection.account_sid, number, voice_url=setup.connector.webhook_url,
                                voice_method="POST")
    return number


def _events(call, kind):
    return [e for e in call.events if e["event"] == kind]


def test_a_conversation_relay_call_is_answered_greets_and_hands_over(asgi_server, twilio_sandbox, settings):  # noqa: F811 (fixture)
    settings.PUBLIC_BASE_URL = f"http://127.0.0.1:{asgi_server.port}"
    setup = make_call_setup(sandbox=twilio_sandbox, transport="conversation_relay")
    number = _route_number(twilio_sandbox, setup)

    call = twilio_sandbox.simulate_call(setup.connection.account_sid, number, say="I want to talk to sales",
                                        wait=True)

    assert call.done.is_set(), call.events
    assert _events(call, "webhook")[0]["status"] == 200
    greeting = [e for e in _events(call, "heard") if e["what"] == "greeting"]
    assert greeting and greeting[0]["text"] == "Hello, this is Ava."
    assert '"transfer_to_sales"' in _events(call, "relay_end")[0]["handoff"]
    dial = _events(call, "dial")[0]
    assert dial["to"] == ["+31201234567"] and dial["outcome"] == "completed"
    session = CallSession.objects.get(call_sid=call.call_sid)
    assert session.connector_id == setup.connector.pk
    assert CallHandover.objects.get(call_session=session).destination == "+31201234567"
    assert CallTurn.objects.filter(call_session=session, role="caller", text__icontains="sales").exists()
    assert call.status == "completed"


def test_a_media_streams_call_hears_the_agent_speak(asgi_server, twilio_sandbox, settings):  # noqa: F811 (fixture)
    settings.PUBLIC_BASE_URL = f"http://127.0.0.1:{asgi_server.port}"
    setup = make_call_setup(sandbox=twilio_sandbox, transport="media_streams")
    number = _route_number(twilio_sandbox, setup)

    call = twilio_sandbox.simulate_call(setup.connection.account_sid, number, wait=True)

    assert call.done.is_set(), call.events
    assert _events(call, "stream")[0]["url"] == f"ws://127.0.0.1:{asgi_server.port}/v1/stream/media"
    greeting = [e for e in _events(call, "heard") if e["what"] == "greeting"]
    assert greeting[0]["seconds"] >= 0.5  # the agent's greeting arrived as μ-law audio
    assert _events(call, "caller_says")[0]["seconds"] > 0.5  # espeak-ng's sentence (or the tone without it)
    assert call.status == "completed"
    assert CallSession.objects.get(call_sid=call.call_sid).connector_id == setup.connector.pk


def test_a_number_whose_webhook_fails_uses_the_fallback_url(twilio_sandbox, live_server):
    sid, _ = twilio_sandbox.add_account()
    twilio_sandbox.add_incoming_number(sid, "+15125550111", voice_url="http://127.0.0.1:9/nothing-here",
                                       voice_fallback_url=f"{live_server.url}/healthz", voice_fallback_method="GET")
    call = twilio_sandbox.simulate_call(sid, "+15125550111", wait=True)
    hits = _events(call, "webhook")
    assert "error" in hits[0] and hits[1]["status"] == 200
    assert _events(call, "fallback")


def test_a_number_the_account_does_not_own_is_reported(twilio_sandbox):
    sid, _ = twilio_sandbox.add_account()
    call = twilio_sandbox.simulate_call(sid, "+15125550999", wait=True)
    assert call.status == "failed"
    assert "not a number of account" in _events(call, "error")[0]["error"]


def test_the_control_api_places_a_call_and_reports_progress(twilio_sandbox):
    import json
    import time
    import urllib.request
    from urllib.parse import urlencode

    sid, _ = twilio_sandbox.add_account()
    body = urlencode({"AccountSid": sid, "To": "+15125550999"}).encode()
    with urllib.request.urlopen(f"{twilio_sandbox.base_url}/_sandbox/simulate_call", data=body) as response:
        placed = json.load(response)
    assert response.status == 201 and placed["sid"].startswith("CA")
    deadline = time.monotonic() + 5
    while True:
        with urllib.request.urlopen(twilio_sandbox.base_url + placed["progress"]) as response:
            progress = json.load(response)
        if progress["finished"] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert progress["finished"] and progress["status"] == "failed"
