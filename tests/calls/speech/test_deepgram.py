"""Deepgram stages through the official deepgram-sdk, pointed at a local fake of its documented protocol."""
from __future__ import annotations

import asyncio

import pytest

from calls.engine import audio
from calls.providers.speech.base import Final, Partial, SpeechConfigError, SpeechError, SpeechFailure, SpeechSettings
from calls.providers.speech.deepgram import DeepgramSpeechToText, DeepgramTextToSpeech
from tests.calls.speech.conftest import cancel_after_first_chunk, events_until_final, run, synthesize_all
from tests.conditions import until
from tests.fakes.deepgram import FakeDeepgram
from tests.fakes.vendor_server import dominant_frequency, tone_pcm16


@pytest.fixture
def fake():
    with FakeDeepgram() as server:
        yield server


def settings_for(fake, **kw):
    return SpeechSettings(api_key=kw.pop("api_key", fake.api_key), base_url=fake.base_url, **kw)


def test_streaming_recognition_gives_partials_then_the_final_text_after_finalize(fake):
    async def scenario():
        stt = DeepgramSpeechToText(settings_for(fake, hints=("sales",)))
        await stt.start()
        speech = audio.pcm16_to_ulaw(tone_pcm16(8000, 1000))  # the call's own μ-law 8 kHz, as is
        for i in range(0, len(speech), 160):  # 20 ms frames
            await stt.send(speech[i:i + 160])
        await stt.end_of_turn()
        seen = await events_until_final(stt)
        await stt.close()
        return seen

    seen = run(scenario())
    partials = [e.text for e in seen if isinstance(e, Partial)]
    assert partials[:2] == ["I", "I want"] and len(partials) >= 4
    assert seen[-1] == Final("I want to talk to sales.")
    assert {"type": "Finalize"} in fake.messages and {"type": "CloseStream"} in fake.messages
    query = fake.queries[0]
    assert "encoding=mulaw" in query and "sample_rate=8000" in query and "interim_results=true" in query
    assert "keyterm=sales" in query and "model=nova-3" in query
    assert fake.audio_bytes == 8000  # 1 s of μ-law: a byte a sample, not resampled to 16 kHz PCM


def test_an_empty_turn_ends_with_an_empty_final_instead_of_waiting_forever(fake):
    async def scenario():
        stt = DeepgramSpeechToText(settings_for(fake))
        stt.finalize_timeout = 0.2
        await stt.start()
        await stt.end_of_turn()  # no audio: Deepgram has nothing to finalize and answers nothing
        seen = await events_until_final(stt)
        await stt.close()
        return seen

    assert run(scenario()) == [Final("")]


def test_a_refused_key_is_a_permanent_error_at_start(fake):
    async def scenario():
        await DeepgramSpeechToText(settings_for(fake, api_key="wrong")).start()

    with pytest.raises(SpeechError) as info:
        run(scenario())
    assert info.value.permanent and "API key" in str(info.value) and "wrong" not in str(info.value)


def test_a_server_error_at_start_is_transient(fake):
    fake.status = 500
    with pytest.raises(SpeechError) as info:
        run(DeepgramSpeechToText(settings_for(fake)).start())
    assert not info.value.permanent


def test_a_dropped_stream_is_one_transient_failure_event(fake):
    fake.drop_after_chunks = 3

    async def scenario():
        stt = DeepgramSpeechToText(settings_for(fake))
        await stt.start()
        for _ in range(10):
            await stt.send(bytes(640))
            await asyncio.sleep(0.01)
        seen = await events_until_final(stt)
        await stt.close()
        return seen

    seen = run(scenario())
    assert isinstance(seen[-1], SpeechFailure) and not seen[-1].permanent


def test_a_missing_key_names_the_secret():
    with pytest.raises(SpeechConfigError, match="DEEPGRAM_API_KEY"):
        run(DeepgramSpeechToText(SpeechSettings()).start())
    with pytest.raises(SpeechConfigError, match="DEEPGRAM_API_KEY"):
        run(synthesize_all(DeepgramTextToSpeech(SpeechSettings()), "Hello."))


def test_a_refused_base_url_is_a_config_error_before_any_connection(settings, fake):
    settings.OUTBOUND_ALLOW_PRIVATE_TARGETS = False
    with pytest.raises(SpeechConfigError, match="base URL is refused"):
        run(DeepgramSpeechToText(settings_for(fake)).start())
    assert fake.requests == []


def test_synthesis_streams_pcm_at_the_stage_rate(fake):
    async def scenario():
        tts = DeepgramTextToSpeech(settings_for(fake))
        chunks = await synthesize_all(tts, "Hello there, caller.")
        await tts.close()
        return chunks

    chunks = run(scenario())
    audio = b"".join(chunks)
    assert all(len(c) % 2 == 0 for c in chunks) and len(chunks) > 1
    assert len(audio) == 16000 * 2 * 600 // 1000  # three words of 200 ms at 16 kHz
    assert abs(dominant_frequency(audio, DeepgramTextToSpeech.sample_rate) - 440) < 5
    path, query, headers, body = fake.requests[0]
    assert path == "/v1/speak" and body == {"text": "Hello there, caller."}
    assert query["model"] == "aura-2-thalia-en" and query["encoding"] == "linear16" and query["container"] == "none"


def test_on_a_phone_call_synthesis_asks_for_mulaw_8khz_and_passes_its_bytes(fake):
    from calls.engine import audio as g711

    async def scenario():
        tts = DeepgramTextToSpeech(settings_for(fake))
        assert tts.phone_audio() is True
        chunks = await synthesize_all(tts, "Hello there, caller.")
        await tts.close()
        return chunks

    ulaw = b"".join(run(scenario()))
    assert len(ulaw) == 8000 * 600 // 1000  # a byte per sample
    assert abs(dominant_frequency(g711.ulaw_to_pcm16le(ulaw), 8000) - 440) < 5
    _, query, _, _ = fake.requests[0]
    assert query["encoding"] == "mulaw" and query["sample_rate"] == "8000" and query["container"] == "none"


@pytest.mark.parametrize("status,permanent", [(401, True), (400, True), (500, False)])
def test_synthesis_errors_map_to_permanent_or_transient(fake, status, permanent):
    fake.status = status
    with pytest.raises(SpeechError) as info:
        run(synthesize_all(DeepgramTextToSpeech(settings_for(fake)), "Hello."))
    assert info.value.permanent is permanent


def test_a_stream_cut_mid_sentence_is_transient(fake):
    fake.drop_after_chunks = 2
    with pytest.raises(SpeechError) as info:
        run(synthesize_all(DeepgramTextToSpeech(settings_for(fake)), "Hello there, caller."))
    assert not info.value.permanent


def test_cancelling_synthesis_mid_stream_closes_the_response(fake):
    fake.chunk_delay = 0.05

    async def scenario():
        tts = DeepgramTextToSpeech(settings_for(fake))
        got = await cancel_after_first_chunk(tts)
        await until(lambda: fake.closed, what="the response closed")
        await tts.close()
        return got

    got = run(scenario())
    assert 0 < len(b"".join(got)) < 16000 * 2 * 1600 // 1000
    assert fake.closed == 1


def test_no_key_reaches_the_logs_even_at_debug_level(fake, caplog):
    import logging

    caplog.set_level(logging.DEBUG)

    async def scenario():
        stt = DeepgramSpeechToText(settings_for(fake))
        await stt.start()
        await stt.send(bytes(640))
        await stt.close()
        tts = DeepgramTextToSpeech(settings_for(fake))
        await synthesize_all(tts, "Hi.")
        await tts.close()

    run(scenario())
    assert caplog.records and fake.api_key not in caplog.text


def test_keepalive_is_sent_while_no_audio_flows(fake):
    async def scenario():
        stt = DeepgramSpeechToText(settings_for(fake))
        stt.keepalive_seconds = 0.05
        await stt.start()
        await until(lambda: {"type": "KeepAlive"} in fake.messages, what="a keepalive sent while no audio flows")
        await stt.close()

    run(scenario())
    assert {"type": "KeepAlive"} in fake.messages


def test_concurrent_calls_each_get_their_own_stream_and_final(fake):
    async def one_call(i):
        stt = DeepgramSpeechToText(settings_for(fake))
        await stt.start()
        for _ in range(20):
            await stt.send(bytes(640))
        await stt.end_of_turn()
        seen = await events_until_final(stt)
        await stt.close()
        return seen[-1]

    async def scenario():
        return await asyncio.gather(*(one_call(i) for i in range(20)))

    assert run(scenario(), timeout=30) == [Final("I want to talk to sales.")] * 20
    assert fake.audio_bytes == 20 * 20 * 640 and len(fake.queries) == 20
