"""Latency work of the cascaded pipeline with fake stages and a fake clock: the recogniser starts on the turn so far
at a short pause and that decode is the turn's text when only silence follows (dropped when the caller goes on);
the early turn-model question ends a turn only when confident and still silent; each answered turn's stages."""
import asyncio

from calls.providers.cascaded import SPECULATE_MS, VoicePipeline
from calls.providers.speech import vad
from calls.providers.speech.base import Final
from tests.calls.engine.test_cascaded_turns import (
    Clock,
    Events,
    FakeTurnModel,
    LoudIsSpeech,
    RecordingSTT,
    ToneTTS,
    feed,
    settle,
    speak_reply,
)


class SpeculatingSTT(RecordingSTT):
    """A recogniser that can decode early: records what it was asked and which decode gave the text."""

    def __init__(self):
        super().__init__()
        self.speculated: list[int] = []  # bytes received when asked
        self.discarded = 0
        self._early: int | None = None
        self.used: list[str] = []

    def speculate(self):
        self.speculated.append(self.received)
        self._early = self.received

    def discard_speculation(self):
        self.discarded += 1
        self._early = None

    async def end_of_turn(self):
        self.turns += 1
        self.used.append("early" if self._early is not None else "at end")
        self._early = None
        self.events.put_nowait(Final("something"))


def make(stt, *, model=None, early_ms=0, early_threshold=1.0, pause_ms=0, end_ms=600):
    clock = Clock()
    voice = vad.VoiceActivity(end_ms=end_ms, pause_ms=pause_ms, turn_model=model, early_ms=early_ms,
                              early_threshold=early_threshold)
    voice.webrtc = LoudIsSpeech()
    turns = []

    async def on_turn(text, keywords):
        turns.append(text)

    pipeline = VoicePipeline(Events(), stt=stt, tts=ToneTTS(), voice_activity=voice, on_turn=on_turn, clock=clock)
    return pipeline, clock, turns


def test_the_turn_is_decoded_from_the_short_pause_when_only_silence_follows():
    async def scenario():
        pipeline, clock, turns = make(SpeculatingSTT())
        await pipeline.start()
        await feed(pipeline, clock, 1000, True)
        await feed(pipeline, clock, 700, False)  # the silence rule ends the turn at 600 ms
        await settle()
        await pipeline.close()
        return pipeline, turns

    pipeline, turns = asyncio.run(scenario())
    stt = pipeline.stt
    assert len(stt.speculated) == 1 and stt.speculated[0] >= 1000 * 16  # all the words so far (8 kHz PCM16)
    assert stt.used == ["early"] and stt.discarded == 0 and turns == ["something"]


def test_speech_after_the_short_pause_drops_the_early_decode():
    async def scenario():
        pipeline, clock, turns = make(SpeculatingSTT())
        await pipeline.start()
        await feed(pipeline, clock, 600, True)
        await feed(pipeline, clock, SPECULATE_MS + 100, False)  # a pause: an early decode starts
        await feed(pipeline, clock, 600, True)  # "... and my order number is"
        await feed(pipeline, clock, 700, False)
        await settle()
        await pipeline.close()
        return pipeline, turns

    pipeline, turns = asyncio.run(scenario())
    stt = pipeline.stt
    assert len(stt.speculated) == 2 and stt.discarded == 1
    assert stt.used == ["early"] and stt.speculated[1] > stt.speculated[0]  # the second decode has all the words
    assert turns == ["something"]


def test_a_recogniser_without_early_decoding_gets_the_turn_at_its_end():
    async def scenario():
        pipeline, clock, turns = make(RecordingSTT())
        await pipeline.start()
        await feed(pipeline, clock, 1000, True)
        await feed(pipeline, clock, 700, False)
        await settle()
        await pipeline.close()
        return pipeline, turns

    pipeline, turns = asyncio.run(scenario())
    assert pipeline.stt.turns == 1 and turns == ["something"]


def test_a_confident_early_answer_ends_the_turn_before_the_patience_pause():
    async def scenario():
        model = FakeTurnModel(0.95)
        pipeline, clock, _ = make(SpeculatingSTT(), model=model, early_ms=240, early_threshold=0.9, pause_ms=600,
                                  end_ms=1200)
        await pipeline.start()
        await feed(pipeline, clock, 1000, True)
        await feed(pipeline, clock, 300, False)
        await settle()
        await pipeline.close()
        return pipeline, model

    pipeline, model = asyncio.run(scenario())
    assert len(model.asked) == 1 and pipeline.decisions == [("model-early", 0.95)]
    assert pipeline.stt.turns == 1


def test_an_unsure_early_answer_leaves_the_turn_to_the_patience_question():
    async def scenario():
        model = FakeTurnModel(0.7)  # above the patience's threshold, below the early one
        pipeline, clock, _ = make(SpeculatingSTT(), model=model, early_ms=240, early_threshold=0.9, pause_ms=600,
                                  end_ms=1200)
        await pipeline.start()
        await feed(pipeline, clock, 1000, True)
        await feed(pipeline, clock, 400, False)
        await settle()
        early = pipeline.stt.turns
        await feed(pipeline, clock, 300, False)  # 600 ms: the patience's question
        await settle()
        await pipeline.close()
        return pipeline, model, early

    pipeline, model, early = asyncio.run(scenario())
    assert early == 0
    assert len(model.asked) == 2 and pipeline.decisions == [("model", 0.7)] and pipeline.stt.turns == 1


def test_a_late_early_answer_does_not_end_a_turn_the_caller_went_on_with():
    async def scenario():
        model = FakeTurnModel(0.99)
        model.gate = asyncio.Event()
        pipeline, clock, _ = make(SpeculatingSTT(), model=model, early_ms=240, early_threshold=0.9, pause_ms=600,
                                  end_ms=1200)
        await pipeline.start()
        await feed(pipeline, clock, 600, True)
        await feed(pipeline, clock, 300, False)  # asked early; the answer is slow
        await feed(pipeline, clock, 400, True)  # the caller goes on
        model.gate.set()
        await settle()
        await pipeline.close()
        return pipeline

    pipeline = asyncio.run(scenario())
    assert pipeline.stt.turns == 0 and pipeline.decisions == []


def test_each_answered_turn_has_its_stages():
    async def scenario():
        pipeline, clock, _ = make(SpeculatingSTT())
        pipeline.on_turn = lambda text, keywords: _answer(pipeline)
        await pipeline.start()
        await feed(pipeline, clock, 1000, True)
        await feed(pipeline, clock, 700, False)
        await settle()
        await pipeline.close()
        return pipeline

    async def _answer(pipeline):
        speak_reply(pipeline, 3)

    pipeline = asyncio.run(scenario())
    [row] = pipeline.latencies
    assert row["end_of_turn"] == 600  # the silence rule's wait, from the last voiced frame
    assert row["end_of_turn"] <= row["recognised"] <= row["first_speech"] <= row["answered"]


def test_only_quick_patience_asks_the_turn_model_early():
    from calls.engine.context import CallContext
    from calls.providers.cascaded import vad_from_settings

    def voice(patience):
        return vad_from_settings(CallContext(transport="media_streams", provider="cascaded",
                                             speech={"turn_patience": patience}))

    quick, normal = voice("quick"), voice("normal")
    assert quick.early_ms == 250 and quick.early_threshold == 0.9
    assert normal.early_ms == 0 and voice("patient").early_ms == 0 and voice("silence").early_ms == 0
