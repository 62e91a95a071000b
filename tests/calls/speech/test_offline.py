"""The offline stack on real audio: espeak-ng speaks, the phone line carries μ-law 8 kHz, pocketsphinx listens."""
import asyncio

from calls.engine import audio
from calls.providers.speech.base import Final, SpeechSettings
from calls.providers.speech.offline import EspeakTextToSpeech, PocketsphinxSpeechToText

from .speech_audio import espeak_ulaw, needs_espeak

pytestmark = needs_espeak


def recognise(ulaw: bytes, hints=()) -> Final:
    async def go():
        stt = PocketsphinxSpeechToText(SpeechSettings(hints=tuple(hints)))
        await stt.start()
        await stt.send(audio.ulaw_to_pcm(ulaw, stt.sample_rate))  # 8 kHz -> 16 kHz with soxr
        await stt.end_of_turn()
        return await stt.events.get()
    return asyncio.run(go())


def test_the_keyword_search_hears_sales_over_the_phone_line():
    final = recognise(espeak_ulaw("I want to talk to sales"), hints=["sales", "support", "hours", "open"])
    assert "sales" in final.keywords
    assert "support" not in final.keywords


def test_without_hints_the_language_model_gives_the_words():
    final = recognise(espeak_ulaw("What are your opening hours"))
    assert "opening hours" in final.text
    assert final.keywords == ()


def test_small_talk_spots_no_keyword():
    final = recognise(espeak_ulaw("Hello there, how are you"), hints=["sales", "support", "hours"])
    assert final.keywords == ()
    assert "how are you" in final.text


def test_unknown_words_are_left_out_of_the_keyword_search():
    final = recognise(espeak_ulaw("I want to talk to sales"), hints=["sales", "zzqx"])
    assert final.keywords == ("sales",)


def test_espeak_speaks_pcm_at_its_rate_and_stops_when_cancelled():
    async def go():
        tts = EspeakTextToSpeech(SpeechSettings())
        whole = b"".join([c async for c in tts.synthesize("We are open nine to five.")])
        gen = tts.synthesize("This is a much longer sentence that we stop after its first bytes arrive.")
        first = await gen.__anext__()
        await gen.aclose()
        return whole, first, tts.sample_rate
    whole, first, rate = asyncio.run(go())
    assert rate == 22050 and len(whole) % 2 == 0
    assert 0.8 * rate * 2 < len(whole) < 4 * rate * 2  # about two seconds of speech
    assert first
