"""OpenAI transcription and speech stages through the official openai SDK, pointed at a local fake."""
from __future__ import annotations

import io
import wave

import pytest

from calls.providers.speech.base import Final, Partial, SpeechConfigError, SpeechError, SpeechFailure, SpeechSettings
from calls.providers.speech.openai_speech import OpenAISpeechToText, OpenAITextToSpeech
from tests.calls.speech.conftest import cancel_after_first_chunk, events_until_final, run, synthesize_all
from tests.conditions import until
from tests.fakes.openai_audio import FakeOpenAIAudio
from tests.fakes.vendor_server import dominant_frequency, tone_pcm16


@pytest.fixture
def fake():
    with FakeOpenAIAudio() as server:
        yield server


def settings_for(fake, **kw):
    return SpeechSettings(api_key=kw.pop("api_key", fake.api_key), base_url=fake.base_url, **kw)


async def one_turn(stt, pcm):
    await stt.start()
    for i in range(0, len(pcm), 640):
        await stt.send(pcm[i:i + 640])
    await stt.end_of_turn()
    seen = await events_until_final(stt)
    await stt.close()
    return seen


def test_a_turn_is_transcribed_as_streamed_partials_then_the_final(fake):
    speech = tone_pcm16(16000, 700)
    seen = run(one_turn(OpenAISpeechToText(settings_for(fake, hints=("sales",))), speech))
    assert [e.text for e in seen if isinstance(e, Partial)][:2] == ["I", "I want"]
    assert seen[-1] == Final("I want to talk to sales.")
    model, upload, fields = fake.uploads[0]
    assert model == "gpt-4o-mini-transcribe" and fields["stream"] == "true" and fields["language"] == "en"
    assert "sales" in fields["prompt"]
    with wave.open(io.BytesIO(upload)) as wav:  # the turn's audio, whole, at the stage's rate
        assert wav.getframerate() == 16000 and wav.readframes(wav.getnframes()) == speech


def test_whisper_answers_the_final_in_one_piece(fake):
    seen = run(one_turn(OpenAISpeechToText(settings_for(fake, model="whisper-1")), tone_pcm16(16000, 500)))
    assert seen == [Final("I want to talk to sales.")]
    assert "stream" not in fake.uploads[0][2]


def test_turns_without_audio_are_empty_finals_without_a_request(fake):
    seen = run(one_turn(OpenAISpeechToText(settings_for(fake)), b""))
    assert seen == [Final("")] and fake.requests == []


@pytest.mark.parametrize("status,permanent", [(401, True), (500, False)])
def test_transcription_errors_are_failure_events(fake, status, permanent):
    fake.status = status
    seen = run(one_turn(OpenAISpeechToText(settings_for(fake)), tone_pcm16(16000, 500)))
    assert isinstance(seen[-1], SpeechFailure) and seen[-1].permanent is permanent
    assert fake.api_key not in seen[-1].message


def test_missing_key_names_the_secret():
    with pytest.raises(SpeechConfigError, match="OPENAI_API_KEY"):
        run(OpenAISpeechToText(SpeechSettings()).start())
    with pytest.raises(SpeechConfigError, match="OPENAI_API_KEY"):
        run(synthesize_all(OpenAITextToSpeech(SpeechSettings()), "Hi."))


def test_speech_streams_pcm_at_24_khz(fake):
    async def scenario():
        tts = OpenAITextToSpeech(settings_for(fake, voice="coral"))
        chunks = await synthesize_all(tts, "Hello there.")
        await tts.close()
        return chunks

    chunks = run(scenario())
    audio = b"".join(chunks)
    assert len(chunks) > 1 and all(len(c) % 2 == 0 for c in chunks)
    assert len(audio) == 24000 * 2 * 400 // 1000
    assert abs(dominant_frequency(audio, OpenAITextToSpeech.sample_rate) - 440) < 5
    body = fake.requests[0][3]
    assert body["response_format"] == "pcm" and body["voice"] == "coral" and body["model"] == "gpt-4o-mini-tts"


def test_an_unknown_voice_is_permanent_and_a_server_error_transient(fake):
    with pytest.raises(SpeechError) as info:
        run(synthesize_all(OpenAITextToSpeech(settings_for(fake, voice="nobody")), "Hi."))
    assert info.value.permanent
    fake.status = 503
    with pytest.raises(SpeechError) as info:
        run(synthesize_all(OpenAITextToSpeech(settings_for(fake)), "Hi."))
    assert not info.value.permanent


def test_a_disconnect_mid_sentence_is_transient(fake):
    fake.drop_after_chunks = 2
    with pytest.raises(SpeechError) as info:
        run(synthesize_all(OpenAITextToSpeech(settings_for(fake)), "one two three four"))
    assert not info.value.permanent


def test_cancelling_speech_mid_stream_closes_the_response(fake):
    fake.chunk_delay = 0.05

    async def scenario():
        tts = OpenAITextToSpeech(settings_for(fake))
        got = await cancel_after_first_chunk(tts)
        await until(lambda: fake.closed, what="the response closed")
        await tts.close()
        return got

    got = run(scenario())
    assert 0 < len(b"".join(got)) < 24000 * 2 * 1600 // 1000 and fake.closed == 1


def test_no_key_reaches_the_logs_even_at_debug_level(fake, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    run(one_turn(OpenAISpeechToText(settings_for(fake)), tone_pcm16(16000, 300)))
    run(synthesize_all(OpenAITextToSpeech(settings_for(fake)), "Hi."))
    assert caplog.records and fake.api_key not in caplog.text
