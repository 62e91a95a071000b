"""Issue 25: a warm handover action's own hold message (versioned with it, in the publish diff), and the brief
spoken in the agent's own voice: rendered by the version's text-to-speech stage (offline espeak for a scripted
Media Streams version), served at a signed short-lived URL and played with `<Play>` on the person's leg; `<Say>`
in the version's voice when the stage cannot speak it."""
import asyncio
import wave
from io import BytesIO

import pytest

from agents import selectors, services
from agents.models import HandoverAction
from calls.models import CallAudio, CallHandover
from calls.services import transfers
from tests.calls.engine.conftest import asgi_server, eventually, make_call_setup  # noqa: F401 (fixture)
from tests.calls.speech.speech_audio import needs_espeak

pytestmark = pytest.mark.django_db(transaction=True)

ACCEPTS = "+31201234567"
HOLD = "One moment, I'm getting Sam from sales."


def _events(call, kind):
    return [e for e in call.events if e["event"] == kind]


def test_the_hold_message_is_the_actions_own_and_shows_in_the_diff(twilio_sandbox):
    setup = make_call_setup(sandbox=twilio_sandbox)
    agent = setup.version.agent
    published = services.agent_publish(agent=agent)
    HandoverAction.objects.filter(version=setup.version, name="transfer_to_sales").update(
        kind=HandoverAction.Kind.WARM, destination=ACCEPTS, hold_message=HOLD)

    diff = selectors.version_diff(draft=setup.version, base=published)
    [change] = [a for a in diff.actions if a.name == "transfer_to_sales"]
    assert change.change == "changed" and change.new["hold_message"] == HOLD and change.old["hold_message"] == ""

    from calls.engine.context import HandoverActionSpec, context_for_call_session
    from calls.models import CallSession

    session = setup.new_session(sandbox=twilio_sandbox)
    handover = transfers.warm_handover_record(call_session_id=session.pk, transport="media_streams",
                                              action=HandoverActionSpec("transfer_to_sales", ACCEPTS, kind="warm"))
    ctx = context_for_call_session(CallSession.objects.select_related("agent_version__agent", "connector",
                                                                      "environment").get(pk=session.pk))
    transfers.warm_transfer_start(ctx=ctx, handover_id=handover.pk)
    twiml = twilio_sandbox.state["calls"][setup.connection.account_sid][session.call_sid]["twiml_history"][0]
    assert f"<Say>{HOLD.replace(chr(39), '&apos;')}</Say>" in twiml or HOLD in twiml.replace("&apos;", "'")
    assert transfers.HOLD_MESSAGE not in twiml


@needs_espeak
def test_the_person_hears_the_brief_in_the_agents_own_voice(asgi_server, twilio_sandbox, settings):  # noqa: F811
    """A scripted Media Streams agent (offline espeak voice) hands over warm; the person's leg gets `<Play>` of the
    brief rendered by that voice, fetches it from the app, presses 1 and joins."""
    from websockets.asyncio.client import connect

    from tests.calls.engine.conftest import TwilioMediaClient, run

    settings.PUBLIC_BASE_URL = f"http://127.0.0.1:{asgi_server.port}"
    setup = make_call_setup(sandbox=twilio_sandbox)
    twilio_sandbox.transfer_talk_seconds = 0
    HandoverAction.objects.filter(version=setup.version, name="transfer_to_sales").update(
        kind=HandoverAction.Kind.WARM, destination=ACCEPTS)
    session = setup.new_session(sandbox=twilio_sandbox)
    token = setup.token()

    async def scenario():
        async with connect(asgi_server.ws_base + "/v1/stream/media") as ws:
            twilio = TwilioMediaClient(ws)
            await twilio.start(token=token, call_sid=session.call_sid, account_sid=setup.connection.account_sid)
            await twilio.read_until(lambda m: m.get("event") == "mark", timeout=30)
            await twilio.dtmf("1")
            try:
                await twilio.read_until(lambda m: False, timeout=5)
            except (asyncio.TimeoutError, Exception):  # noqa: BLE001 - the server closes the stream
                pass

    run(scenario())
    [person] = [c for c in twilio_sandbox.simulated.values() if c.to == ACCEPTS and hasattr(c, "conference_sid")]
    assert person.done.wait(30), person.events
    [played] = _events(person, "play")
    assert played["url"].startswith(f"{settings.PUBLIC_BASE_URL}/v1/audio/brief/"), person.events
    assert played["status"] == 200 and played["content_type"] == "audio/wav" and played["bytes"] > 8000
    assert not [e for e in _events(person, "say") if "Press 1" in e["text"]]  # no <Say>: the agent's own voice
    kinds = [e["event"] for e in person.events]
    assert kinds.index("play") < kinds.index("pressed")
    assert _events(person, "pressed")[0]["digits"] == "1"
    audio = CallAudio.objects.get(call_session=session)
    assert "Press 1 to take the call" in audio.text and audio.voice.startswith("espeak")
    with wave.open(BytesIO(bytes(audio.audio))) as w:
        assert w.getnframes() / w.getframerate() > 1.0  # seconds of speech
    assert eventually(lambda: CallHandover.objects.filter(call_session=session,
                                                          outcome=CallHandover.Outcome.ANSWERED).exists(), timeout=10)


def test_when_the_voice_cannot_speak_the_brief_it_is_said_in_the_versions_voice(twilio_sandbox, client):
    """A cascaded version whose text-to-speech vendor has no key: `<Say>` with the version's voice (Polly)."""
    setup = make_call_setup(sandbox=twilio_sandbox, provider="cascaded")
    version = setup.version
    version.tts_vendor, version.voice = "elevenlabs", "Polly.Joanna"
    version.save(update_fields=["tts_vendor", "voice"])
    session = setup.new_session(sandbox=twilio_sandbox)

    twiml = transfers.brief_twiml_spoken(session_id=session.pk, handover_id=1, attempt=0,
                                         brief="You have a call from +15125550199.")

    assert "<Play" not in twiml and 'voice="Polly.Joanna"' in twiml
    assert "You have a call from +15125550199. Press 1 to take the call" in twiml
    assert not CallAudio.objects.exists()


@needs_espeak
def test_the_brief_audio_url_is_signed_and_expires(twilio_sandbox, client):
    from unittest import mock

    from django.core import signing

    setup = make_call_setup(sandbox=twilio_sandbox)
    session = setup.new_session(sandbox=twilio_sandbox)
    twiml = transfers.brief_twiml_spoken(session_id=session.pk, handover_id=1, attempt=0, brief="A call from Jane.")
    url = twiml.split("<Play>")[1].split("</Play>")[0]
    path = url[url.index("/v1/audio/brief/"):]
    response = client.get(path)
    assert response.status_code == 200 and response["Content-Type"] == "audio/wav"
    assert client.get(path + "x").status_code == 404
    audio = CallAudio.objects.get()
    with mock.patch.object(signing, "time") as fake_time:
        import time

        fake_time.time.return_value = time.time() - transfers.AUDIO_URL_SECONDS - 60
        old = transfers.audio_url(audio)
    assert client.get(old[old.index("/v1/audio/brief/"):]).status_code == 404
