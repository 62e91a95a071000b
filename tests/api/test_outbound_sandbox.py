"""An agent call placed through the API, end to end on the sandbox: Twilio dials, a simulated person or an
answering machine answers, the app's real webhooks and websockets (uvicorn on loopback) do the rest."""
import json
import time

import pytest
from django.test import Client

from calls.models import CallAnalysis, CallRecording, CallSession, CallTurn
from tests.api.helpers import outbound_setup
from tests.calls.engine.conftest import asgi_server  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db(transaction=True)


def _wait(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def _post(client, o, body, key=None):
    return client.post("/api/v1/calls", data=json.dumps(body), content_type="application/json",
                       HTTP_AUTHORIZATION=f"Bearer {key or o.key}", HTTP_IDEMPOTENCY_KEY="lead-L-1")


def _events(call, kind):
    return [e for e in call.events if e["event"] == kind]


def test_an_api_call_sent_twice_dials_once_and_the_person_hears_their_name(asgi_server, twilio_sandbox, settings):  # noqa: F811
    settings.PUBLIC_BASE_URL = f"http://127.0.0.1:{asgi_server.port}"
    o = outbound_setup(sandbox=twilio_sandbox)
    client = Client()

    first = _post(client, o, o.body())
    second = _post(client, o, o.body())

    assert first.status_code == 201, first.content
    assert second.status_code == 200 and second.json()["id"] == first.json()["id"]
    assert len(twilio_sandbox.requests_to(r"/Calls\.json$", "POST")) == 1
    sent = twilio_sandbox.requests_to(r"/Calls\.json$", "POST")[0][2]
    assert sent["MachineDetection"] == "DetectMessageEnd" and sent["AsyncAmd"] == "true"
    assert sent["AsyncAmdStatusCallback"].endswith(f"/v1/calls/outbound/{first.json()['id']}/amd")
    session = CallSession.objects.get(pk=first.json()["id"])
    call = twilio_sandbox.simulated[session.call_sid]
    assert call.done.wait(60), call.events

    greeting = [e for e in _events(call, "heard") if e["what"] == "greeting"]
    assert greeting and greeting[0]["text"] == "Hi Jane, this is Ava from Acme.", call.events
    assert _events(call, "callee_says")[0]["agent_said_before"] == ""  # the callee spoke first
    session = _wait(lambda: CallSession.objects.filter(pk=session.pk, ended_at__isnull=False,
                                                       outcome="conversation").first())
    assert session.answered_by == "human" and session.direction == "outbound-api"
    assert CallTurn.objects.filter(call_session=session, role="agent", text__contains="Hi Jane").exists()
    assert CallTurn.objects.filter(call_session=session, role="caller", text__icontains="opening hours").exists()

    _wait(lambda: CallAnalysis.objects.filter(call_session=session, status="done").exists())
    recording = _wait(lambda: CallRecording.objects.filter(call_session=session, status="completed").first())
    assert recording.channels == 2
    detail = client.get(f"/api/v1/calls/{session.pk}", HTTP_AUTHORIZATION=f"Bearer {o.key}").json()
    assert detail["answered_by"] == "human" and detail["outcome"] == "conversation"
    assert any("Hi Jane" in t["text"] for t in detail["transcript"])
    assert detail["analysis"]["status"] == "done" and detail["analysis"]["summary"]


def test_a_machine_gets_the_voicemail_after_the_beep(asgi_server, twilio_sandbox, settings):  # noqa: F811
    settings.PUBLIC_BASE_URL = f"http://127.0.0.1:{asgi_server.port}"
    o = outbound_setup(sandbox=twilio_sandbox)

    response = _post(Client(), o, o.body(to="+15125550166"))

    assert response.status_code == 201, response.content
    session = CallSession.objects.get(pk=response.json()["id"])
    call = twilio_sandbox.simulated[session.call_sid]
    assert call.done.wait(60), call.events
    kinds = [e["event"] for e in call.events]
    assert kinds.index("beep") < kinds.index("amd") < kinds.index("say"), call.events
    assert _events(call, "say")[0]["text"] == "Hi Jane, this is Ava from Acme. Please call us back."
    session = _wait(lambda: CallSession.objects.filter(pk=session.pk, ended_at__isnull=False).first())
    session.refresh_from_db()
    assert session.answered_by == "machine_end_beep" and session.outcome == "voicemail_left"


@pytest.mark.parametrize("to, status", [("+15125550177", "busy"), ("+15125550188", "no-answer"),
                                        ("+15125550199", "failed")])
def test_busy_no_answer_and_failed_numbers_end_with_that_outcome(asgi_server, twilio_sandbox, settings, to, status):  # noqa: F811
    settings.PUBLIC_BASE_URL = f"http://127.0.0.1:{asgi_server.port}"
    o = outbound_setup(sandbox=twilio_sandbox)

    response = _post(Client(), o, o.body(to=to))

    assert response.status_code == 201, response.content
    session = _wait(lambda: CallSession.objects.filter(pk=response.json()["id"], ended_at__isnull=False).first())
    assert session.status == status and session.outcome == status.replace("-", "_")
    assert session.stream_token_used_at is None


def test_on_media_streams_the_greeting_waits_for_the_callee_to_speak(asgi_server, twilio_sandbox, settings):  # noqa: F811
    settings.PUBLIC_BASE_URL = f"http://127.0.0.1:{asgi_server.port}"
    o = outbound_setup(sandbox=twilio_sandbox, transport="media_streams")

    response = _post(Client(), o, o.body())

    assert response.status_code == 201, response.content
    session = CallSession.objects.get(pk=response.json()["id"])
    call = twilio_sandbox.simulated[session.call_sid]
    assert call.done.wait(90), call.events
    hello = _events(call, "callee_says")[0]
    assert hello["agent_audio_before"] == 0  # nothing from the agent before the callee's "Hello?"
    greeting = [e for e in _events(call, "heard") if e["what"] == "greeting"][0]
    assert greeting["seconds"] >= 0.5, call.events
    session = _wait(lambda: CallSession.objects.filter(pk=session.pk, ended_at__isnull=False).first())
    assert CallTurn.objects.filter(call_session=session, role="agent", text__contains="Hi Jane").exists()
