"""The "OpenAI-compatible (local)" speech stages against a local fake of a self-hosted server (no key, a base URL)."""
from __future__ import annotations

import pytest

from calls.engine.context import CallContext
from calls.providers.speech import registry
from calls.providers.speech.base import Final, SpeechConfigError, SpeechFailure, SpeechSettings
from calls.providers.speech.openai_local import LocalSpeechToText, LocalTextToSpeech
from tests.calls.speech.conftest import events_until_final, run, synthesize_all
from tests.fakes.local_speech import FakeLocalSpeechServer
from tests.fakes.vendor_server import dominant_frequency, tone_pcm16


@pytest.fixture
def server():
    with FakeLocalSpeechServer() as fake:
        yield fake


def ctx_for(server, **variables):
    return CallContext(transport="media_streams", provider="cascaded",
                       variables={"LOCAL_SPEECH_BASE_URL": server.base_url, **variables})


async def one_turn(stt, pcm):
    await stt.start()
    await stt.send(pcm)
    await stt.end_of_turn()
    seen = await events_until_final(stt)
    await stt.close()
    return seen


def test_the_registry_builds_both_stages_from_the_base_url_without_a_key(server):
    ctx = ctx_for(server)
    stt = registry.speech_to_text(ctx, "openai_local", model="Systran/faster-whisper-small")
    tts = registry.text_to_speech(ctx, "openai_local", voice="af_heart")
    assert isinstance(stt, LocalSpeechToText) and isinstance(tts, LocalTextToSpeech)
    seen = run(one_turn(stt, tone_pcm16(16000, 600)))
    assert seen == [Final("My number is 415 555 0100.")]
    model, upload, fields = server.uploads[0]
    assert model == "Systran/faster-whisper-small" and "stream" not in fields and upload[:4] == b"RIFF"

    async def speak():
        chunks = await synthesize_all(tts, "Hello there.")
        await tts.close()
        return chunks

    pcm = b"".join(run(speak()))
    assert pcm and dominant_frequency(pcm, tts.sample_rate) == pytest.approx(440, abs=20)
    assert server.authorizations[0] == "Bearer no-key"  # no secret needed, none invented


def test_a_key_is_sent_when_the_environment_has_one(server):
    ctx = CallContext(transport="media_streams", provider="cascaded", secrets={"LOCAL_SPEECH_API_KEY": "local-k"},
                      variables={"LOCAL_SPEECH_BASE_URL": server.base_url})
    run(one_turn(registry.speech_to_text(ctx, "openai_local"), tone_pcm16(16000, 300)))
    assert server.authorizations == ["Bearer local-k"] and server.uploads[0][0] == "whisper-1"


def test_without_a_base_url_the_error_names_the_variable():
    stt = registry.speech_to_text(CallContext(transport="media_streams", provider="cascaded"), "openai_local")
    with pytest.raises(SpeechConfigError, match="LOCAL_SPEECH_BASE_URL"):
        run(stt.start())


def test_the_base_url_goes_through_the_outbound_guard(settings):
    settings.OUTBOUND_ALLOW_PRIVATE_TARGETS = False  # production's default: a private server must be allowed
    stt = LocalSpeechToText(SpeechSettings(base_url="http://169.254.169.254/v1"))
    with pytest.raises(SpeechConfigError, match="refused"):
        run(stt.start())


def test_a_server_error_is_a_transient_failure(server):
    server.status = 503
    seen = run(one_turn(registry.speech_to_text(ctx_for(server), "openai_local"), tone_pcm16(16000, 300)))
    assert isinstance(seen[-1], SpeechFailure) and not seen[-1].permanent


def test_the_version_form_offers_the_local_choice_for_both_stages():
    from agents.catalogue import SpeechVendor, SttVendor

    assert "openai_local" in SttVendor.values and "openai_local" in SpeechVendor.values
