"""The agent's audio frames go to Twilio as JSON rendered once per frame (no json.dumps of a nested dict), and the
text is exactly the message's JSON; a payload that is not base64 falls back to json.dumps."""
import asyncio
import json

from calls.engine.context import CallContext
from calls.engine.engine import call_open
from calls.engine.events import AudioOut
from calls.engine.wires.media_streams import Rendered


def _sent_for(payload: str, stream_sid: str = 'MZ"quoted\\sid'):
    sent = []

    async def send(message):
        sent.append(message)

    async def scenario():
        call = call_open("media_streams", CallContext(transport="media_streams", provider="scripted"), send,
                         stream_sid=stream_sid)
        await call.wire.audio_out(AudioOut(payload, ""))

    asyncio.run(scenario())
    return sent[0]


def test_a_base64_frame_is_sent_prerendered_and_its_text_is_the_messages_json():
    message = _sent_for("f39/fw+A/w==")
    assert isinstance(message, Rendered)
    assert json.loads(message.text) == dict(message) == {
        "event": "media", "streamSid": 'MZ"quoted\\sid', "media": {"payload": "f39/fw+A/w=="}}


def test_a_payload_that_is_not_base64_is_encoded_by_json_dumps():
    message = _sent_for('a"b')
    assert not isinstance(message, Rendered) and message["media"]["payload"] == 'a"b'
