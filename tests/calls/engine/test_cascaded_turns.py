"""Turn-taking and barge-in of the cascaded pipeline with fake stages, a fake clock and a fake turn model: the
turn model ends a turn at a pause, the silence rule is the fallback, the greeting survives "hello?" at pickup,
backchannels do not stop a reply, a barge-in needs enough speech, a key press clears queued audio at once."""
import asyncio
import base64

import numpy as np
import pytest

from calls.engine import audio
from calls.engine.context import CallContext
from calls.engine.engine import call_open
from calls.engine.events import AudioOut, SpeechStarted
from calls.providers.cascaded import CascadedProvider, VoicePipeline, vad_from_settings
from calls.providers.chat.base import ChatModel
from calls.providers.speech import turn, vad
from calls.providers.speech.base import Final, SpeechToText, TextToSpeech
from tests.calls.speech.speech_audio import espeak_ulaw, needs_espeak
from tests.conditions import until

FRAME = vad.FRAME_SAMPLES * 2


class Clock:
    """Advanced by the test: 20 ms per caller frame, as Twilio sends them."""

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class LoudIsSpeech:
    """webrtcvad stand-in: a frame with any non-zero sample is speech."""

    def is_speech(self, frame, rate):
        return any(frame)


class FakeTurnModel:
    def __init__(self, p=0.9):
        self.p = p
        self.asked: list[int] = []
        self.gate: asyncio.Event | None = None

    async def probability(self, pcm8k):
        self.asked.append(len(pcm8k))
        if self.gate is not None:
            await self.gate.wait()
        return self.p


class RecordingSTT(SpeechToText):
    name = "fake-stt"
    sample_rate = 8000

    def __init__(self, texts=()):
        super().__init__(None)
        self.texts = list(texts)
        self.received = 0
        self.turns = 0

    async def send(self, pcm16):
        self.received += len(pcm16)

    async def end_of_turn(self):
        self.turns += 1
        self.events.put_nowait(Final(self.texts.pop(0) if self.texts else "something"))


class ToneTTS(TextToSpeech):
    """100 ms of audio per word, at once."""

    name = "fake-tts"
    sample_rate = 8000

    def __init__(self):
        super().__init__(None)

    async def synthesize(self, text):
        for _ in text.split():
            yield b"\x00\x10" * 800


class Events:
    def __init__(self):
        self.events = []

    def emit(self, event):
        self.events.append(event)

    def started(self):
        return sum(isinstance(e, SpeechStarted) for e in self.events)


def make_pipeline(*, model=None, threshold=0.5, turns=None):
    clock = Clock()
    voice = vad.VoiceActivity(end_ms=600 if model is None else 1600, pause_ms=200 if model else 0,
                              turn_model=model, turn_threshold=threshold)
    voice.webrtc = LoudIsSpeech()
    got = [] if turns is None else turns
    provider = Events()

    async def on_turn(text, keywords):
        got.append(text)

    pipeline = VoicePipeline(provider, stt=RecordingSTT(), tts=ToneTTS(), voice_activity=voice, on_turn=on_turn,
                             clock=clock)
    return pipeline, clock, provider, got


async def feed(pipeline, clock, ms, loud):
    frame = (np.full(vad.FRAME_SAMPLES, 3000 if loud else 0, dtype="<i2")).tobytes()
    payload = base64.b64encode(audio.pcm16_to_ulaw(frame)).decode()
    for _ in range(ms // 20):
        clock.now += 0.02
        await pipeline.feed(payload)
        await asyncio.sleep(0)


async def settle():
    for _ in range(20):
        await asyncio.sleep(0)


def speak_reply(pipeline, words):
    reply = pipeline.new_reply()
    reply.task = asyncio.create_task(pipeline.speak(reply, [" ".join(["word"] * words)]))
    return reply


def test_the_turn_model_ends_a_finished_turn_at_the_first_pause():
    async def scenario():
        model = FakeTurnModel(0.9)
        pipeline, clock, _, turns = make_pipeline(model=model)
        await pipeline.start()
        await feed(pipeline, clock, 1000, True)
        await feed(pipeline, clock, 200, False)  # the pause: the model is asked
        await settle()
        await pipeline.close()
        return pipeline, model, turns

    pipeline, model, turns = asyncio.run(scenario())
    assert model.asked and model.asked[0] >= 1000 * 8  # the turn's samples so far (8 kHz)
    assert pipeline.decisions == [("model", 0.9)]
    assert pipeline.stt.turns == 1 and turns == ["something"]


def test_an_unfinished_turn_waits_for_the_silence_rule():
    async def scenario():
        model = FakeTurnModel(0.1)  # "my number is four one five, ..."
        pipeline, clock, _, turns = make_pipeline(model=model)
        await pipeline.start()
        await feed(pipeline, clock, 1000, True)
        await feed(pipeline, clock, 1000, False)
        await settle()
        before = pipeline.stt.turns
        await feed(pipeline, clock, 700, False)  # 1.7 s of silence in all: past the fallback
        await settle()
        await pipeline.close()
        return pipeline, before

    pipeline, before = asyncio.run(scenario())
    assert before == 0
    assert pipeline.decisions == [("silence", None)] and pipeline.stt.turns == 1


def test_a_late_model_answer_does_not_end_a_turn_the_caller_went_on_with():
    async def scenario():
        model = FakeTurnModel(0.9)
        model.gate = asyncio.Event()
        pipeline, clock, _, _ = make_pipeline(model=model)
        await pipeline.start()
        await feed(pipeline, clock, 600, True)
        await feed(pipeline, clock, 200, False)  # pause 1: asked, the answer is slow
        await feed(pipeline, clock, 400, True)  # the caller goes on
        model.gate.set()
        await settle()
        ended_early = pipeline.stt.turns
        await feed(pipeline, clock, 200, False)  # pause 2: finished
        await settle()
        await pipeline.close()
        return pipeline, ended_early

    pipeline, ended_early = asyncio.run(scenario())
    assert ended_early == 0
    assert len(pipeline.decisions) == 1 and pipeline.vad.pauses == 2 and pipeline.stt.turns == 1


def test_hello_at_pickup_does_not_kill_the_greeting():
    async def scenario():
        pipeline, clock, provider, turns = make_pipeline()
        await pipeline.start()
        greeting = speak_reply(pipeline, 30)  # 3 s of greeting
        await settle()
        await feed(pipeline, clock, 200, False)
        await feed(pipeline, clock, 900, True)  # "hello, can you hear me?"
        await feed(pipeline, clock, 700, False)
        await settle()
        await pipeline.close()
        return pipeline, provider, greeting, turns

    pipeline, provider, greeting, turns = asyncio.run(scenario())
    assert provider.started() == 0  # no clear: the greeting plays on
    assert not greeting.task.cancelled() and greeting.sent_ms == 3000
    assert pipeline.dropped == ["opening"] and turns == [] and pipeline.stt.received == 0


def test_speech_that_outlasts_the_greeting_is_heard_from_its_start():
    async def scenario():
        pipeline, clock, provider, turns = make_pipeline()
        await pipeline.start()
        speak_reply(pipeline, 5)  # 500 ms of greeting
        await settle()
        await feed(pipeline, clock, 300, True)  # talks over its end...
        await feed(pipeline, clock, 700, True)  # ...and on after it
        await feed(pipeline, clock, 700, False)
        await settle()
        await pipeline.close()
        return pipeline, turns

    pipeline, turns = asyncio.run(scenario())
    assert turns == ["something"]
    assert pipeline.stt.received >= 900 * 16  # (8 kHz PCM16: 16 bytes per ms) the words from their start


def test_a_backchannel_does_not_stop_the_reply_but_real_speech_does():
    async def scenario():
        pipeline, clock, provider, turns = make_pipeline()
        await pipeline.start()
        await feed(pipeline, clock, 400, True)
        await feed(pipeline, clock, 700, False)
        await settle()  # the caller's first turn
        reply = speak_reply(pipeline, 50)  # a 5 s answer
        await settle()
        await feed(pipeline, clock, 300, True)  # "uh-huh"
        await feed(pipeline, clock, 700, False)
        await settle()
        after_backchannel = (provider.started(), reply.task.cancelled(), len(turns))
        await feed(pipeline, clock, 800, True)  # "no wait, I meant Saturday"
        await settle()
        barged = provider.started()
        await feed(pipeline, clock, 700, False)
        await settle()
        await pipeline.close()
        return pipeline, after_backchannel, barged, turns

    pipeline, after_backchannel, barged, turns = asyncio.run(scenario())
    assert after_backchannel == (1, False, 1)  # one SpeechStarted: the first turn's, none for "uh-huh"
    assert pipeline.dropped == ["backchannel"]
    assert barged == 2  # 600 ms of speech: a barge-in (the engine clears the queued audio)
    assert len(turns) == 2


def test_a_key_pressed_during_the_greeting_clears_it_at_once():
    async def scenario():
        pipeline, clock, provider, _ = make_pipeline()
        await pipeline.start()
        greeting = speak_reply(pipeline, 30)
        await settle()
        pipeline.key_pressed()
        await settle()
        await pipeline.close()
        return provider, greeting

    provider, greeting = asyncio.run(scenario())
    assert provider.started() == 1


def test_a_key_pressed_during_the_greeting_answers_without_playing_the_rest():
    """Over the engine: the `clear` goes to Twilio before the answer's audio, not after the greeting."""
    ctx = CallContext(transport="media_streams", provider="cascaded", greeting="Welcome " * 30,
                      speech={"turn_patience": "silence"})

    class Chat(ChatModel):
        async def stream(self, messages, tools=None):
            yield "You pressed one."

    voice = vad.VoiceActivity()
    provider = CascadedProvider(ctx, stt=RecordingSTT(), tts=ToneTTS(), chat=Chat(), voice_activity=voice)
    sent = []

    async def send(msg):
        sent.append(msg)

    async def scenario():
        call = call_open("media_streams", ctx, send, stream_sid="MZ1", provider=provider)
        call.start()
        await until(lambda: any(m.get("event") == "media" for m in sent), what="the greeting sent", interval=0)
        await call.handle({"event": "dtmf", "streamSid": "MZ1", "dtmf": {"digit": "1"}})
        await until(lambda: len([m for m in sent if m.get("event") == "media"]) > 31, what="the reply sent",
                    interval=0)
        await call.close()

    asyncio.run(scenario())
    kinds = [m["event"] for m in sent]
    assert "clear" in kinds
    clear = kinds.index("clear")
    assert "media" in kinds[clear:]  # the answer comes after the clear


def test_turn_patience_sets_the_model_threshold_and_the_fallback():
    quick = vad_from_settings(CallContext(transport="media_streams", provider="cascaded",
                                          speech={"turn_patience": "quick"}))
    patient = vad_from_settings(CallContext(transport="media_streams", provider="cascaded",
                                            speech={"turn_patience": "patient"}))
    silence = vad_from_settings(CallContext(transport="media_streams", provider="cascaded",
                                            speech={"turn_patience": "silence"}))
    assert quick.turn_model is patient.turn_model is not None  # one model per process
    assert quick.turn_threshold < patient.turn_threshold and quick.end_frames < patient.end_frames
    assert silence.turn_model is None and silence.end_frames == 30  # VAD_END_MS's 600 ms


def test_a_missing_turn_model_is_a_named_config_error():
    from calls.providers.base import ProviderConfigError

    ctx = CallContext(transport="media_streams", provider="cascaded", variables={"SMART_TURN_PATH": "/nope.onnx"})
    with pytest.raises(ProviderConfigError, match="turn model is missing"):
        vad_from_settings(ctx)


def test_emitted_audio_is_counted_as_playing_until_it_would_have_played():
    async def scenario():
        pipeline, clock, provider, _ = make_pipeline()
        reply = speak_reply(pipeline, 10)
        await reply.task
        talking = pipeline.agent_talking()
        clock.now += 1.01
        return talking, pipeline.agent_talking(), [e for e in provider.events if isinstance(e, AudioOut)]

    talking, later, out = asyncio.run(scenario())
    assert talking and not later and out


def test_a_busy_turn_model_leaves_the_pause_to_the_silence_rule(monkeypatch):
    monkeypatch.setattr(turn.TurnModel, "_in_flight", turn.TurnModel.MAX_IN_FLIGHT)
    model = turn.TurnModel.__new__(turn.TurnModel)  # no session needed: it is never run

    async def scenario():
        pipeline, clock, _, turns = make_pipeline(model=model)
        await pipeline.start()
        await feed(pipeline, clock, 800, True)
        await feed(pipeline, clock, 400, False)
        await settle()
        early = pipeline.stt.turns
        await feed(pipeline, clock, 1300, False)
        await settle()
        await pipeline.close()
        return pipeline, early

    pipeline, early = asyncio.run(scenario())
    assert early == 0 and pipeline.decisions == [("silence", None)]


def test_the_features_match_whisper_and_the_mel_filters_a_known_value():
    """The Slaney mel filter bank of Whisper's extractor (n_fft 400, 80 mels, 16 kHz); the known value is that of
    pipecat 1.14's numpy copy of `transformers.WhisperFeatureExtractor` (whose features ours equalled exactly on
    random audio of several lengths when this was written)."""
    filters = turn.mel_filterbank()
    assert filters.shape == (201, 80)
    assert filters[2, 1] == pytest.approx(0.022871772096078023, rel=1e-9)
    assert turn._hz_to_mel(1000.0)[0] == pytest.approx(15.0) and turn._mel_to_hz(15.0)[0] == pytest.approx(1000.0)
    # A short turn: the zero lead's frames computed once give the same features as computing them all.
    x = np.zeros(turn.RATE * turn.SECONDS, dtype=np.float32)
    x[-4000:] = np.random.default_rng(3).normal(0, 0.1, 4000)
    assert np.array_equal(turn.log_mel(x, len(x) - 4000), turn.log_mel(x))
    features = turn.model_input(np.zeros(800, dtype=np.int16))
    assert features.shape == (1, 80, 800) and features.dtype == np.float32


def test_the_bundled_turn_model_runs_in_a_worker_process():
    model = turn.TurnModel(turn.BUNDLED_SMART_TURN)
    assert model.MODE == "process"
    p = asyncio.run(model.probability(np.zeros(8000, dtype=np.int16)))
    assert 0.0 <= p <= 1.0 and model._session is None  # loaded and run in the worker, not here


def test_the_turn_model_can_run_in_a_worker_thread(monkeypatch):
    import threading

    monkeypatch.setattr(turn.TurnModel, "MODE", "thread")
    model = turn.TurnModel(turn.BUNDLED_SMART_TURN)
    seen = []
    original = model.predict

    def predict(pcm):
        seen.append(threading.current_thread().name)
        return original(pcm)

    model.predict = predict
    p = asyncio.run(model.probability(np.zeros(8000, dtype=np.int16)))
    assert 0.0 <= p <= 1.0 and seen[0].startswith("turn-model")


@needs_espeak
def test_the_turn_model_tells_a_finished_sentence_from_a_spelling_in_progress():
    model = turn.TurnModel(turn.BUNDLED_SMART_TURN)
    finished = audio.ulaw_to_pcm16(espeak_ulaw("I want to talk to sales.") + audio.silence(200))
    spelling = audio.ulaw_to_pcm16(espeak_ulaw("my name is john, j o") + audio.silence(200))
    assert model.predict(finished) > 0.5 > model.predict(spelling)
