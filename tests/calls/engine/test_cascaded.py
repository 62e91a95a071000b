"""Real speech over a Media Streams websocket: the scripted agent on the offline stack, the cascaded provider
(offline stages + the local OpenAI chat fake), barge-in, and the per-turn latency stored with the agent's turns."""
import asyncio
import base64
import json
import re

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from calls.engine import audio, live
from calls.engine.context import CallContext, HandoverActionSpec
from calls.engine.engine import call_open
from calls.models import CallHandover, CallTurn
from calls.providers.cascaded import CascadedProvider, split_sentences
from calls.providers.chat import ChatModel
from calls.providers.speech.base import Final, SpeechToText, TextToSpeech
from calls.providers.speech.vad import VoiceActivity
from tests.calls.speech.speech_audio import espeak_ulaw, frames, needs_espeak

from .conftest import CEILING, TwilioMediaClient, make_call_setup, run, until


async def speak(twilio, ulaw: bytes, start: int = 0) -> int:
    """Send audio as Twilio does: 20 ms media frames (faster than real time)."""
    for i, frame in enumerate(frames(ulaw)):
        await twilio.media(frame, chunk=start + i)
    return start + len(frames(ulaw))


def greeting_played(session) -> bool:
    """The call's greeting has been sent in full, Twilio (the test, echoing marks) has played all of it, and the
    agent's voice pipeline no longer counts it as playing (it assumes Twilio plays in real time)."""
    engine = live.get(session.pk)
    if engine is None or not any(turn[0] == "agent" for turn in engine.turns) or engine.wire.marks:
        return False
    pipeline = getattr(engine.provider, "pipeline", None) or getattr(engine.provider, "voice", None)
    return pipeline is None or not pipeline.agent_talking()


async def until_closed(ws, timeout=CEILING) -> list[dict]:
    got = []

    async def loop():
        try:
            while True:
                msg = json.loads(await ws.recv())
                got.append(msg)
                if msg.get("event") == "mark":
                    await ws.send(json.dumps({"event": "mark", "streamSid": msg["streamSid"], "mark": msg["mark"]}))
        except ConnectionClosed:
            return
    await asyncio.wait_for(loop(), timeout)
    return got


@needs_espeak
@pytest.mark.django_db(transaction=True)
def test_the_scripted_agent_hears_sales_asks_before_acting_and_the_key_hands_over(asgi_server, twilio_sandbox):
    """A spoken "sales" is a guess of a weak recogniser: the agent asks (confirms, or offers the keys) rather than
    acting on it; the key it offers hands over."""
    setup = make_call_setup(sandbox=twilio_sandbox)
    session = setup.new_session(sandbox=twilio_sandbox)
    token = setup.token()
    said = espeak_ulaw("I want to talk to sales")

    def question():
        return CallTurn.objects.filter(call_session=session, role="agent", text__contains="press 1").first()

    async def scenario():
        async with connect(asgi_server.ws_base + "/v1/stream/media") as ws:
            twilio = TwilioMediaClient(ws)
            await twilio.start(token=token, call_sid=session.call_sid)
            greeting = await twilio.read_until(lambda m: m.get("event") == "media")
            await twilio.read_until(lambda m: m.get("event") == "mark")
            await twilio.until(lambda: greeting_played(session))
            n = await speak(twilio, audio.silence(300) + said + audio.silence(1000))
            # The agent's question (its transcript is written once its audio is sent).
            await twilio.until(lambda: asyncio.to_thread(lambda: question() is not None))
            asked = await asyncio.to_thread(question)
            handed_over = await asyncio.to_thread(CallHandover.objects.filter(call_session=session).exists)
            await twilio.dtmf("1")
            rest = await until_closed(ws)
            return greeting, n, rest, asked, handed_over

    greeting, n, rest, asked, handed_over_before_key = run(scenario())
    # The greeting is words (espeak-ng), not the tone prompt.
    assert base64.b64decode(greeting["media"]["payload"]) != audio.prompt("greeting")[:800]
    assert not handed_over_before_key
    assert "Say yes or press 1." in asked.text or "Say sales or press 1." in asked.text
    assert any(m.get("event") == "media" for m in rest)  # "Let me transfer you." spoken before the redirect
    sent = twilio_sandbox.call_twiml(setup.connection.account_sid, session.call_sid)
    assert "<Number>+31201234567</Number>" in sent
    handover = CallHandover.objects.get(call_session=session)
    assert handover.action_name == "transfer_to_sales"
    turns = list(CallTurn.objects.filter(call_session=session).order_by("seq"))
    assert [t.role for t in turns].count("caller") >= 1
    answered = [t for t in turns if t.role == "agent" and t.latency_ms is not None]
    assert answered, [(t.role, t.text, t.latency_ms) for t in turns]
    turn = answered[0]
    assert turn.text == asked.text
    assert turn.recognition_ms <= turn.first_token_ms <= turn.first_byte_ms <= turn.latency_ms


# ---------------------------------------------------------------------------
# The cascaded provider with in-process stages (no vendor): sentence by sentence, barge-in, history


class ScriptedSTT(SpeechToText):
    """Answers each end of turn with the next of `texts` at once."""

    name = "fake-stt"
    sample_rate = 16000

    def __init__(self, texts):
        super().__init__(None)
        self.texts = list(texts)
        self.received = 0

    async def send(self, pcm16):
        self.received += len(pcm16)

    async def end_of_turn(self):
        self.events.put_nowait(Final(self.texts.pop(0) if self.texts else ""))


class ToneTTS(TextToSpeech):
    """100 ms of tone per word, at once (a zero-latency vendor)."""

    name = "fake-tts"
    sample_rate = 16000

    def __init__(self):
        super().__init__(None)
        self.spoken = []

    async def synthesize(self, text):
        self.spoken.append(text)
        for _ in text.split():
            yield (b"\x00\x10" * 1600)


class ListChat(ChatModel):
    def __init__(self, replies):
        super().__init__()
        self.replies = list(replies)
        self.requests = []

    async def stream(self, messages, tools=None):
        self.requests.append([dict(m) for m in messages])
        for item in self.replies.pop(0):
            await asyncio.sleep(0)
            yield item


def cascaded_ctx():
    return CallContext(transport="media_streams", provider="cascaded", greeting="", instructions="Be brief.",
                       actions=(HandoverActionSpec("transfer_to_sales", "+31201234567"),))


def test_sentences_are_cut_as_tokens_stream():
    assert split_sentences("Hello there. How are") == (["Hello there."], "How are")
    assert split_sentences("Done!") == ([], "Done!")  # the end of the stream may still be a decimal or "etc."
    assert split_sentences("One. Two? Three") == (["One.", "Two?"], "Three")


@needs_espeak
def test_cascaded_speaks_each_sentence_and_barge_in_keeps_what_was_heard():
    stt = ScriptedSTT(["what are your hours", "stop"])
    tts = ToneTTS()
    chat = ListChat([["We are open ", "nine to five. ", "On Saturdays ", "we open at ten. ", "Anything else?"],
                     ["Okay."]])
    provider = CascadedProvider(cascaded_ctx(), stt=stt, tts=tts, chat=chat, voice_activity=VoiceActivity())
    sent = []

    async def send(msg):
        sent.append(msg)

    async def scenario():
        call = call_open("media_streams", provider.ctx, send, stream_sid="MZ1", provider=provider)
        call.start()
        await until(lambda: provider.pipeline is not None and provider.pipeline._tasks)
        speech = espeak_ulaw("What are your opening hours")
        for frame in frames(audio.silence(200) + speech + audio.silence(800)):
            await call.handle({"event": "media", "streamSid": "MZ1",
                               "media": {"payload": base64.b64encode(frame).decode()}})
        await until(lambda: len(tts.spoken) == 3, what="three sentences spoken")
        marks = [m for m in sent if m.get("event") == "mark"]
        # Twilio played 800 ms (the first sentence, 6 words of 100 ms, and 2 words of the second), then the caller
        # talks over it.
        first_sentence_end = next(i for i, m in enumerate(marks) if int(m["mark"]["name"][1:]) >= 8)
        await call.handle({"event": "mark", "streamSid": "MZ1",
                                                "mark": marks[first_sentence_end]["mark"]})
        for frame in frames(speech + audio.silence(800)):
            await call.handle({"event": "media", "streamSid": "MZ1",
                               "media": {"payload": base64.b64encode(frame).decode()}})
        await until(lambda: len(chat.requests) == 2, what="the model asked again")
        await until(lambda: "Okay." in tts.spoken, what="the reply to stop spoken")
        await call.close()
        return call

    call = asyncio.run(scenario())
    # Sentence by sentence, as the tokens streamed.
    assert tts.spoken[:3] == ["We are open nine to five.", "On Saturdays we open at ten.", "Anything else?"]
    assert any(m.get("event") == "clear" for m in sent)
    assert call.wire.interruptions and call.wire.interruptions[0][1] == 800
    # The model's next request has only what the caller heard of the interrupted reply.
    history = chat.requests[1]
    assistant = [m["content"] for m in history if m["role"] == "assistant"]
    assert assistant == ["We are open nine to five. On Saturdays"]
    assert history[-1] == {"role": "user", "content": "stop"}
    # The latency of the first answer went to the engine (stored with the agent's turn on a live call).
    latency = [t[4] for t in call.turns if len(t) > 4 and t[4]]
    assert latency and latency[0]["latency_ms"] >= latency[0]["first_byte_ms"] >= latency[0]["first_token_ms"]


@needs_espeak
@pytest.mark.django_db(transaction=True)
def test_cascaded_over_media_streams_with_the_chat_fake_hands_over(asgi_server, twilio_sandbox, fake_chat):
    setup = make_call_setup(sandbox=twilio_sandbox, provider="cascaded",
                            secrets_={"OPENAI_API_KEY": fake_chat.api_key},
                            variables={"OPENAI_BASE_URL": fake_chat.base_url})
    session = setup.new_session(sandbox=twilio_sandbox)
    token = setup.token()

    async def scenario():
        async with connect(asgi_server.ws_base + "/v1/stream/media") as ws:
            twilio = TwilioMediaClient(ws)
            await twilio.start(token=token, call_sid=session.call_sid)
            await twilio.read_until(lambda m: m.get("event") == "mark")
            await twilio.until(lambda: greeting_played(session))
            await speak(twilio, audio.silence(300) + espeak_ulaw("I want to talk to sales") + audio.silence(1000))
            return await until_closed(ws)

    run(scenario())
    body = fake_chat.requests[0][1]
    assert "sales" in body["messages"][-1]["content"]
    assert {t["function"]["name"] for t in body["tools"]} >= {"transfer_to_sales"}
    assert "<Number>+31201234567</Number>" in twilio_sandbox.call_twiml(setup.connection.account_sid,
                                                                        session.call_sid)
    agent = CallTurn.objects.filter(call_session=session, role="agent", latency_ms__isnull=False).first()
    assert agent is not None and re.search("sales", agent.text, re.I)


def test_a_missing_vendor_key_is_a_named_config_error():
    from calls.providers.base import ProviderConfigError

    ctx = CallContext(transport="media_streams", provider="cascaded",
                      speech={"stt_vendor": "deepgram", "tts_vendor": "", "chat_vendor": "openai"},
                      secrets={"OPENAI_API_KEY": "sk-test"})
    with pytest.raises(ProviderConfigError, match="DEEPGRAM_API_KEY"):
        asyncio.run(CascadedProvider(ctx).start())
    ctx = CallContext(transport="media_streams", provider="cascaded", speech={"chat_vendor": "anthropic"})
    with pytest.raises(ProviderConfigError, match="ANTHROPIC_API_KEY"):
        asyncio.run(CascadedProvider(ctx).start())


def test_the_cascaded_provider_refuses_text_transports():
    from calls.providers import get_provider
    from calls.providers.base import ProviderConfigError

    with pytest.raises(ProviderConfigError, match="cannot run over conversation_relay"):
        get_provider(CallContext(transport="conversation_relay", provider="cascaded"))


def test_silero_is_used_when_the_environment_turns_it_on():
    from calls.providers.base import ProviderConfigError
    from calls.providers.cascaded import vad_from_settings

    assert vad_from_settings(CallContext(transport="media_streams", provider="cascaded")).silero is None
    on = CallContext(transport="media_streams", provider="cascaded",
                     variables={"VAD_SILERO": "1", "VAD_END_MS": "800", "TURN_MODEL": "0"})
    voice_activity = vad_from_settings(on)
    assert voice_activity.silero is not None and voice_activity.end_frames == 40
    missing = CallContext(transport="media_streams", provider="cascaded",
                          variables={"VAD_SILERO": "1", "SILERO_VAD_PATH": "/nonexistent/silero.onnx"})
    with pytest.raises(ProviderConfigError, match="Silero model is missing"):
        vad_from_settings(missing)


def test_the_cascaded_bench_runs():
    from bench.media_streams_cascaded import _caller_audio, _level

    result = asyncio.run(_level(2, 1.0, mode="webrtcvad", caller=_caller_audio()))
    assert result["frames"] > 80 and result["dropped"] == 0


class MulawSTT(ScriptedSTT):
    """A vendor that takes Twilio's μ-law 8 kHz (Deepgram's `encoding=mulaw`)."""

    sample_rate = 8000
    encoding = "mulaw"

    def __init__(self, texts):
        super().__init__(texts)
        self.audio = bytearray()

    async def send(self, data):
        self.audio += data


def test_a_stage_that_takes_mulaw_gets_the_callers_own_bytes_not_resampled_pcm():
    from calls.providers.cascaded import VoicePipeline
    from calls.providers.speech.vad import START

    stt = MulawSTT([])
    provider = CascadedProvider(cascaded_ctx(), stt=stt, tts=ToneTTS(), chat=ListChat([]),
                                voice_activity=VoiceActivity())

    class Loud(VoiceActivity):  # every frame voiced from the first: the pipeline listens at once
        def feed(self, frame):
            self.recent.append(frame)
            if not self.speaking:
                self.speaking = True
                return START
            return None

    async def scenario():
        pipeline = VoicePipeline(provider, stt=stt, tts=ToneTTS(), voice_activity=Loud(), on_turn=None)
        caller = audio.tone(440, 400)  # 20 frames of μ-law 8 kHz
        for frame in frames(caller):
            await pipeline.feed(base64.b64encode(frame).decode())
        return caller

    caller = asyncio.run(scenario())
    assert bytes(stt.audio) == caller  # byte for byte: no decode → resample → re-encode loss, half the bytes of PCM
