"""A machine answers (sandbox number …66) a call of a version whose voicemail is its uploaded recording: after the
beep Twilio is sent `<Play>` of a signed, short-lived URL of the app; the sandbox fetches and plays it, and the
call's outcome is "voicemail left"."""
import json

import pytest
from django.test import Client

from agents import voicemail
from calls.models import CallSession
from tests.agents.test_voicemail_recording import MP3
from tests.api.helpers import outbound_setup
from tests.api.test_outbound_sandbox import _events, _wait
from tests.calls.engine.conftest import asgi_server  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("transport", ["conversation_relay", "media_streams"])
def test_a_machine_gets_the_recording_played_after_the_beep(asgi_server, twilio_sandbox, settings, transport):  # noqa: F811
    settings.PUBLIC_BASE_URL = f"http://127.0.0.1:{asgi_server.port}"
    o = outbound_setup(sandbox=twilio_sandbox, transport=transport)
    version = o.setup.version
    version.voicemail_source = "recording"
    version.save(update_fields=["voicemail_source"])
    recording = voicemail.voicemail_recording_set(draft=version, filename="callback.mp3", data=MP3 + bytes(4000))

    response = Client().post("/api/v1/calls", data=json.dumps(o.body(to="+15125550166")),
                             content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {o.key}")

    assert response.status_code == 201, response.content
    session = CallSession.objects.get(pk=response.json()["id"])
    call = twilio_sandbox.simulated[session.call_sid]
    assert call.done.wait(90), call.events
    kinds = [e["event"] for e in call.events]
    assert kinds.index("beep") < kinds.index("amd") < kinds.index("play"), call.events
    [played] = _events(call, "play")
    assert played["url"].startswith(f"{settings.PUBLIC_BASE_URL}/v1/audio/voicemail/")
    assert (played["status"], played["content_type"], played["bytes"]) == (200, "audio/mpeg", recording.size)
    assert not _events(call, "say")  # the message is not spoken when the recording is played
    session = _wait(lambda: CallSession.objects.filter(pk=session.pk, ended_at__isnull=False).first())
    session.refresh_from_db()
    assert session.answered_by == "machine_end_beep" and session.outcome == "voicemail_left"


def test_without_a_recording_the_message_is_spoken_instead(db, settings):
    from calls.services.outbound import voicemail_twiml
    from tests.calls.engine.conftest import make_call_setup

    version = make_call_setup().version
    version.machine_action, version.voicemail_source = "voicemail", "recording"
    version.voicemail_message = "Hi {first_name}, please call us back."
    assert "<Say" in voicemail_twiml(version=version, variables={"first_name": "Jane"})
    assert "Hi Jane, please call us back." in voicemail_twiml(version=version, variables={"first_name": "Jane"})
