"""A speech stage that gives the call's own μ-law 8 kHz: the cascaded pipeline sends its bytes as they come, in
whole 20 ms frames, nothing resampled or re-encoded (a stage without it keeps PCM, converted as before)."""
import asyncio
import base64

from calls.engine import audio
from calls.engine.events import AudioOut
from calls.providers.cascaded import VoicePipeline
from calls.providers.speech import vad
from calls.providers.speech.base import TextToSpeech
from tests.calls.engine.test_cascaded_turns import Clock, Events, RecordingSTT, ToneTTS

SENTENCE = bytes((i * 37) % 256 for i in range(500))  # not a whole number of frames


class PhoneTTS(TextToSpeech):
    name = "fake-phone-tts"
    PHONE_ENCODING = "mulaw"

    def __init__(self):
        super().__init__(None)

    async def synthesize(self, text):
        assert self.encoding == "mulaw" and self.sample_rate == 8000
        yield SENTENCE[:123]
        yield SENTENCE[123:]


def spoken(tts) -> tuple[bytes, Events]:
    provider = Events()

    async def on_turn(text, keywords):
        pass

    pipeline = VoicePipeline(provider, stt=RecordingSTT(), tts=tts, voice_activity=vad.VoiceActivity(),
                             on_turn=on_turn, clock=Clock())

    async def scenario():
        reply = pipeline.new_reply()
        await pipeline.speak(reply, ["Hello there."])

    asyncio.run(scenario())
    payloads = [base64.b64decode(e.payload) for e in provider.events if isinstance(e, AudioOut)]
    assert all(len(p) % audio.FRAME_BYTES == 0 for p in payloads)
    return b"".join(payloads), provider


def test_the_vendors_mulaw_goes_out_byte_for_byte_in_whole_frames():
    sent, _ = spoken(PhoneTTS())
    padding = -len(SENTENCE) % audio.FRAME_BYTES
    assert sent == SENTENCE + bytes([audio.SILENCE_BYTE]) * padding


def test_a_stage_without_phone_audio_keeps_pcm_and_is_encoded_here():
    tts = ToneTTS()
    assert tts.phone_audio() is False and tts.encoding == "linear16"
    sent, _ = spoken(ToneTTS())
    assert sent == audio.pcm16_to_ulaw(b"\x00\x10" * 1600)  # two words of 100 ms at 8 kHz, encoded here
