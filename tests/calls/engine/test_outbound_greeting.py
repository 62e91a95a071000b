"""An outbound call's greeting waits for the callee (issue 23) with every provider: OpenAI Realtime (against the
local fake) sends no greeting `response.create` until the callee's first words end (or a silence long enough,
counted in the caller's audio frames), and its server voice activity does not answer "Hello?" on its own; the
cascaded provider (fake stages, fake clock) greets at the callee's first end of turn, or after the wait."""
import asyncio
import base64

import numpy as np

from calls.engine import audio
from calls.engine.context import CallContext
from calls.providers import openai_realtime
from calls.providers.cascaded import CascadedProvider
from calls.providers.chat.base import ChatModel
from calls.providers.speech import vad
from tests import conditions
from tests.fakes.openai_realtime import ULAW_CHUNK, FakeRealtimeServer

from .test_cascaded_turns import Clock, LoudIsSpeech, RecordingSTT, ToneTTS

QUIET = base64.b64encode(bytes([0xFF]) * 160).decode()
LOUD = base64.b64encode(ULAW_CHUNK[:160]).decode()


async def until(condition) -> bool:
    """True once `condition()` holds (tests.conditions: a generous ceiling, never a time the test depends on)."""
    try:
        await conditions.until(condition)
    except AssertionError:
        return False
    return True


def realtime_ctx(fake, **extra):
    return CallContext(transport="media_streams", provider="openai_realtime", greeting="Hi Jane, this is Ada.",
                       secrets={"OPENAI_API_KEY": fake.api_key}, variables={"OPENAI_BASE_URL": fake.base_url},
                       **extra)


def responses(fake):
    return [e for e in fake.events if e["type"] == "response.create"]


def appended(fake):
    return sum(e["type"] == "input_audio_buffer.append" for e in fake.events)


def test_realtime_greets_an_inbound_caller_at_once():
    fake = FakeRealtimeServer().start()
    try:
        async def scenario():
            provider = openai_realtime.OpenAIRealtimeProvider(realtime_ctx(fake))
            await provider.start()
            await until(lambda: responses(fake))
            await provider.close()
        asyncio.run(scenario())
        assert "Hi Jane, this is Ada." in responses(fake)[0]["response"]["instructions"]
        update = next(e for e in fake.events if e["type"] == "session.update")["session"]
        assert "create_response" not in update["audio"]["input"]["turn_detection"]
    finally:
        fake.stop()


def test_realtime_outbound_greeting_waits_for_the_callees_first_words():
    fake = FakeRealtimeServer().start()
    try:
        async def scenario():
            provider = openai_realtime.OpenAIRealtimeProvider(realtime_ctx(fake, greet_after_callee=True))
            await provider.start()
            for _ in range(50):  # one second of the callee saying nothing
                await provider.on_audio(QUIET)
            assert await until(lambda: appended(fake) == 50)
            before = list(responses(fake))
            for _ in range(10):  # "Hello?"
                await provider.on_audio(LOUD)
            assert await until(lambda: appended(fake) == 60)
            during = list(responses(fake))
            await provider.on_audio(QUIET)  # their words end: the fake's server VAD says speech_stopped
            await until(lambda: responses(fake))
            await provider.close()
            return before, during
        before, during = asyncio.run(scenario())
        assert before == [] and during == []
        updates = [e["session"] for e in fake.events if e["type"] == "session.update"]
        # The server's voice activity did not answer "Hello?" itself; it does from the greeting on.
        assert updates[0]["audio"]["input"]["turn_detection"]["create_response"] is False
        assert "create_response" not in updates[-1]["audio"]["input"]["turn_detection"]
        assert len(responses(fake)) == 1
        assert "Hi Jane, this is Ada." in responses(fake)[0]["response"]["instructions"]
    finally:
        fake.stop()


def test_realtime_outbound_greeting_goes_out_when_the_callee_stays_silent():
    fake = FakeRealtimeServer().start()
    try:
        async def scenario():
            provider = openai_realtime.OpenAIRealtimeProvider(realtime_ctx(fake, greet_after_callee=True))
            await provider.start()
            frames = int(openai_realtime.GREETING_WAIT_SECONDS * 1000 / openai_realtime.FRAME_MS)
            for _ in range(frames - 1):
                await provider.on_audio(QUIET)
            assert await until(lambda: appended(fake) == frames - 1)
            assert responses(fake) == []
            await provider.on_audio(QUIET)  # the wait is over, counted in the call's own audio
            await until(lambda: responses(fake))
            await provider.close()
        asyncio.run(scenario())
        assert len(responses(fake)) == 1
    finally:
        fake.stop()


def test_realtime_outbound_over_text_greets_on_the_callees_first_words():
    fake = FakeRealtimeServer().start()
    try:
        async def scenario():
            ctx = CallContext(transport="conversation_relay", provider="openai_realtime", greeting="Hi Jane.",
                              secrets={"OPENAI_API_KEY": fake.api_key}, variables={"OPENAI_BASE_URL": fake.base_url},
                              greet_after_callee=True)
            provider = openai_realtime.OpenAIRealtimeProvider(ctx)
            await provider.start()
            await until(lambda: any(e["type"] == "session.update" for e in fake.events))
            assert responses(fake) == []
            await provider.on_text("Hello?")
            await until(lambda: responses(fake))
            await provider.close()
        asyncio.run(scenario())
        assert len(responses(fake)) == 1
        assert "Hi Jane." in responses(fake)[0]["response"]["instructions"]
    finally:
        fake.stop()


# ---------------------------------------------------------------------------
# Cascaded


class Chat(ChatModel):
    def __init__(self):
        super().__init__()
        self.requests = []

    async def stream(self, messages, tools=None):
        self.requests.append([dict(m) for m in messages])
        yield "How can I help?"


class SayingTTS(ToneTTS):
    def __init__(self):
        super().__init__()
        self.said = []

    async def synthesize(self, text):
        self.said.append(text)
        async for chunk in super().synthesize(text):
            yield chunk


async def cascaded_start(provider, clock):
    await provider.start()
    provider.pipeline.clock = clock


async def feed(provider, clock, ms, loud):
    frame = (np.full(vad.FRAME_SAMPLES, 3000 if loud else 0, dtype="<i2")).tobytes()
    payload = base64.b64encode(audio.pcm16_to_ulaw(frame)).decode()
    for _ in range(ms // 20):
        clock.now += 0.02
        await provider.on_audio(payload)
        await asyncio.sleep(0)


def make_cascaded(greet_after_callee=True):
    ctx = CallContext(transport="media_streams", provider="cascaded", greeting="Hi Jane, this is Ada.",
                      speech={"turn_patience": "silence"}, greet_after_callee=greet_after_callee)
    voice = vad.VoiceActivity(end_ms=600)
    voice.webrtc = LoudIsSpeech()
    tts, chat = SayingTTS(), Chat()
    provider = CascadedProvider(ctx, stt=RecordingSTT(["Hello?", "What is this about?"]), tts=tts, chat=chat,
                                voice_activity=voice)
    return provider, Clock(), tts, chat


def test_cascaded_outbound_greeting_waits_for_the_callees_first_end_of_turn():
    async def scenario():
        provider, clock, tts, chat = make_cascaded()
        await cascaded_start(provider, clock)
        await feed(provider, clock, 1000, loud=False)
        silent = list(tts.said)
        await feed(provider, clock, 400, loud=True)  # "Hello?"
        talking = list(tts.said)
        await feed(provider, clock, 800, loud=False)  # their turn ends: the greeting answers it
        await until(lambda: tts.said)
        await until(lambda: any(m["role"] == "user" for m in provider.messages))
        greeted = list(tts.said)
        await feed(provider, clock, 3000, loud=False)  # no second greeting after the wait
        await provider.close()
        return silent, talking, greeted, tts.said, chat.requests, provider.messages

    silent, talking, greeted, said, requests, messages = asyncio.run(scenario())
    assert silent == [] and talking == []
    assert greeted == ["Hi Jane, this is Ada."]
    assert said == ["Hi Jane, this is Ada."]
    assert requests == []  # "Hello?" was answered by the greeting, not by the model
    assert [(m["role"], m["content"]) for m in messages if m["role"] != "system"] == [
        ("user", "Hello?"), ("assistant", "Hi Jane, this is Ada.")]


def test_cascaded_outbound_greeting_goes_out_after_the_wait_when_the_callee_says_nothing():
    async def scenario():
        provider, clock, tts, chat = make_cascaded()
        await cascaded_start(provider, clock)
        wait_ms = int(provider.greeting_wait * 1000)
        await feed(provider, clock, wait_ms - 40, loud=False)
        before = list(tts.said)
        await feed(provider, clock, 100, loud=False)
        await until(lambda: tts.said)
        await provider.close()
        return before, tts.said

    before, said = asyncio.run(scenario())
    assert before == []
    assert said == ["Hi Jane, this is Ada."]


def test_cascaded_inbound_greets_at_once():
    async def scenario():
        provider, clock, tts, chat = make_cascaded(greet_after_callee=False)
        await cascaded_start(provider, clock)
        await until(lambda: tts.said)
        await provider.close()
        return tts.said

    assert asyncio.run(scenario()) == ["Hi Jane, this is Ada."]
