"""Offline recognition never runs on the event loop: it runs in the recognition pool's processes, and the loop
serves other work while a turn is being decoded. The closed yes/no grammar of confirmations."""
import asyncio
import os

from calls.engine import audio
from calls.providers.speech import offline
from calls.providers.speech.base import SpeechSettings
from calls.providers.speech.offline import PocketsphinxSpeechToText

from .speech_audio import espeak_ulaw, needs_espeak

pytestmark = needs_espeak


def _turn(text: str, *, hints=("sales", "support"), expect="open", voice="en-us+klatt"):
    """Decode one spoken turn while a heartbeat task counts the loop's turns; the result, the heartbeat's count
    while the decode was pending, and the final event."""
    async def go():
        stt = PocketsphinxSpeechToText(SpeechSettings(hints=tuple(hints)))
        await stt.start()
        stt.expect = expect
        await stt.send(audio.ulaw_to_pcm(espeak_ulaw(text, voice=voice), stt.sample_rate))
        ticks, done = [0], asyncio.Event()

        async def heartbeat():
            while not done.is_set():
                ticks[0] += 1
                await asyncio.sleep(0)

        beat = asyncio.create_task(heartbeat())
        await stt.end_of_turn()
        done.set()
        await beat
        final = await stt.events.get()
        await stt.close()
        return stt.last_result, ticks[0], final
    return asyncio.run(go())


def test_a_turn_is_decoded_in_another_process_while_the_loop_serves_other_work():
    result, ticks, final = _turn("What are your opening hours")
    assert result["pid"] != os.getpid()  # decoded in a pool process, not on the loop's thread
    assert ticks > 1  # the loop ran the heartbeat while the decode was pending
    assert "opening hours" in final.text


def test_the_pool_is_bounded_and_reused_by_every_call():
    pids = {_turn("What are your opening hours")[0]["pid"] for _ in range(3)}
    assert len(pids) <= offline.pool_size()
    assert offline.recognition_pool() is offline.recognition_pool()


def test_a_confirmation_hears_yes_and_no_with_the_closed_grammar():
    yes, _, final = _turn("yes", expect="answer")
    assert yes["answer"] == "yes" and final.text == "yes"
    no, _, _ = _turn("no", expect="answer", voice="en-gb")
    assert no["answer"] == "no"


def test_a_sentence_is_never_taken_for_yes():
    for sentence in ("I want to talk to sales", "hello can you hear me", "what are your opening hours"):
        result, _, _ = _turn(sentence, expect="answer")
        assert result["answer"] != "yes", (sentence, result)


def test_open_spotting_has_no_short_words():
    decoder = offline._decoder()
    phrases = dict(offline.spotting_phrases(decoder, ["yes", "no", "one", "sales", "support", "talk to sales"]))
    assert set(phrases) == {"sales", "support", "talk to sales"}
    assert phrases["talk to sales"] < phrases["sales"]  # a longer phrase, a lower threshold
