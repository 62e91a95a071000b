"""ElevenLabs (HTTP stream) and Cartesia (websocket) speech through their official SDKs, pointed at local fakes."""
from __future__ import annotations

import pytest

from calls.providers.speech.base import SpeechConfigError, SpeechError, SpeechSettings
from calls.providers.speech.cartesia import CartesiaTextToSpeech
from calls.providers.speech.elevenlabs import ElevenLabsTextToSpeech
from tests.calls.speech.conftest import cancel_after_first_chunk, run, synthesize_all
from tests.fakes.cartesia import FakeCartesia
from tests.fakes.elevenlabs import FakeElevenLabs
from tests.fakes.vendor_server import dominant_frequency

VENDORS = {
    "elevenlabs": (ElevenLabsTextToSpeech, FakeElevenLabs, "ELEVENLABS_API_KEY"),
    "cartesia": (CartesiaTextToSpeech, FakeCartesia, "CARTESIA_API_KEY"),
}


@pytest.fixture(params=sorted(VENDORS))
def vendor(request):
    stage, fake_class, secret = VENDORS[request.param]
    with fake_class() as fake:
        yield stage, fake, secret


def settings_for(fake, **kw):
    return SpeechSettings(api_key=kw.pop("api_key", fake.api_key), base_url=fake.base_url, **kw)


async def speak(tts, *texts):
    try:
        return [b"".join(await synthesize_all(tts, text)) for text in texts]
    finally:
        await tts.close()


def test_sentences_stream_whole_pcm_samples_at_the_stage_rate(vendor):
    stage, fake, _ = vendor
    tts = stage(settings_for(fake))
    first, second = run(speak(tts, "Hello there, caller.", "How can I help?"))
    assert len(first) == tts.sample_rate * 2 * 600 // 1000 and len(second) == tts.sample_rate * 2 * 800 // 1000
    assert abs(dominant_frequency(first, tts.sample_rate) - 440) < 5


def test_elevenlabs_asks_for_pcm_at_the_chosen_rate():
    with FakeElevenLabs() as fake:
        tts = ElevenLabsTextToSpeech(settings_for(fake, voice="21m00Tcm4TlvDq8ikWAM"), sample_rate=24000)
        chunks = run(synthesize_all(tts, "Hello there."))
        path, query, headers, body = fake.requests[0]
    audio = b"".join(chunks)
    assert all(len(c) % 2 == 0 for c in chunks)  # the fake sends odd-sized chunks
    assert path == "/v1/text-to-speech/21m00Tcm4TlvDq8ikWAM/stream" and query["output_format"] == "pcm_24000"
    assert body["model_id"] == "eleven_flash_v2_5" and body["text"] == "Hello there." and body["language_code"] == "en"
    assert len(audio) == 24000 * 2 * 400 // 1000 and abs(dominant_frequency(audio, 24000) - 440) < 5


def test_cartesia_keeps_one_websocket_and_asks_for_raw_pcm_s16le():
    with FakeCartesia() as fake:
        run(speak(CartesiaTextToSpeech(settings_for(fake)), "One.", "Two.", "Three."))
    assert fake.connections == 1 and len(fake.generations) == 3
    request = fake.generations[0]
    assert request["output_format"] == {"container": "raw", "encoding": "pcm_s16le", "sample_rate": 16000}
    assert request["voice"] == {"mode": "id", "id": CartesiaTextToSpeech.default_voice}
    assert request["model_id"] == "sonic-3" and request["continue"] is False and request["language"] == "en"


def test_a_missing_key_names_the_secret(vendor):
    stage, fake, secret = vendor
    with pytest.raises(SpeechConfigError, match=secret):
        run(synthesize_all(stage(SpeechSettings(base_url=fake.base_url)), "Hi."))
    assert fake.requests == []


def test_a_refused_key_is_permanent_and_never_shown(vendor):
    stage, fake, _ = vendor
    with pytest.raises(SpeechError) as info:
        run(speak(stage(settings_for(fake, api_key="sk-wrong-secret")), "Hi."))
    assert info.value.permanent and "API key" in str(info.value) and "sk-wrong-secret" not in str(info.value)


def test_an_unknown_voice_is_permanent(vendor):
    stage, fake, _ = vendor
    with pytest.raises(SpeechError) as info:
        run(speak(stage(settings_for(fake, voice="no-such-voice")), "Hi."))
    assert info.value.permanent and "unknown voice" in str(info.value)


def test_a_server_error_is_transient(vendor):
    stage, fake, _ = vendor
    fake.status = 500
    with pytest.raises(SpeechError) as info:
        run(speak(stage(settings_for(fake)), "Hi."))
    assert not info.value.permanent


def test_a_disconnect_mid_sentence_is_transient_and_the_next_sentence_reconnects(vendor):
    stage, fake, _ = vendor
    fake.drop_after_chunks = 2

    async def scenario():
        tts = stage(settings_for(fake))
        with pytest.raises(SpeechError) as info:
            await synthesize_all(tts, "one two three four")
        fake.drop_after_chunks = None
        audio = b"".join(await synthesize_all(tts, "five six"))
        await tts.close()
        return info.value, audio

    error, audio = run(scenario())
    assert not error.permanent and len(audio) == stage.sample_rate * 2 * 400 // 1000


def test_cancelling_a_sentence_mid_stream_stops_it_cleanly(vendor):
    stage, fake, _ = vendor
    fake.chunk_delay = 0.05

    async def scenario():
        tts = stage(settings_for(fake))
        got = await cancel_after_first_chunk(tts)
        fake.chunk_delay = 0
        after = b"".join(await synthesize_all(tts, "Next."))  # the stage is still usable
        await tts.close()
        return got, after

    got, after = run(scenario())
    assert 0 < len(b"".join(got)) < stage.sample_rate * 2 * 1600 // 1000
    assert len(after) == stage.sample_rate * 2 * 200 // 1000
    if isinstance(fake, FakeCartesia):
        assert len(fake.cancelled) == 1 and fake.connections == 1  # the context is cancelled, the socket kept
    else:
        assert fake.closed >= 1


def test_no_key_reaches_the_logs_even_at_debug_level(vendor, caplog):
    import logging

    stage, fake, _ = vendor
    caplog.set_level(logging.DEBUG)
    run(speak(stage(settings_for(fake)), "Hello."))
    assert caplog.records and fake.api_key not in caplog.text


def test_cartesia_prepare_opens_the_socket_before_the_first_sentence():
    async def scenario(fake):
        tts = CartesiaTextToSpeech(settings_for(fake))
        await tts.prepare()
        opened = tts._connection is not None  # open on our side before any sentence
        audio = b"".join(await synthesize_all(tts, "Hi."))
        await tts.close()
        return opened, audio

    with FakeCartesia() as fake:
        opened, audio = run(scenario(fake))
        assert opened and fake.connections == 1 and len(audio) == 16000 * 2 * 200 // 1000


def test_on_a_phone_call_the_stage_asks_for_the_calls_own_mulaw_8khz(vendor):
    """`phone_audio()`: ElevenLabs' `ulaw_8000`, Cartesia's `pcm_mulaw` at 8 kHz; the bytes are μ-law samples
    (one byte each, odd chunks and all) that decode to the vendor's tone."""
    from calls.engine import audio

    stage, fake, _ = vendor
    tts = stage(settings_for(fake))
    assert tts.phone_audio() is True and (tts.encoding, tts.sample_rate) == ("mulaw", 8000)
    (ulaw,) = run(speak(tts, "Hello there, caller."))
    assert len(ulaw) == 8000 * 600 // 1000  # a byte per sample
    assert abs(dominant_frequency(audio.ulaw_to_pcm16le(ulaw), 8000) - 440) < 5
    if stage is ElevenLabsTextToSpeech:
        assert fake.requests[0][1]["output_format"] == "ulaw_8000"
    else:
        assert fake.generations[0]["output_format"] == {"container": "raw", "encoding": "pcm_mulaw",
                                                        "sample_rate": 8000}
