"""What every vendor stage promises: its secret's name, a named error without a key, the outbound guard on a
base URL from the settings, and vendor errors as our permanent/transient errors."""
from __future__ import annotations

import asyncio
import types

import pytest

from calls.providers.speech.base import SpeechConfigError, SpeechSettings, SpeechToText
from calls.providers.speech.cartesia import CartesiaTextToSpeech, error_status
from calls.providers.speech.deepgram import DeepgramSpeechToText, DeepgramTextToSpeech
from calls.providers.speech.elevenlabs import ElevenLabsTextToSpeech
from calls.providers.speech.openai_speech import OpenAISpeechToText, OpenAITextToSpeech
from calls.providers.speech.vendor import aligned, status_error
from tests.calls.speech.conftest import run, synthesize_all

STAGES = {
    DeepgramSpeechToText: "DEEPGRAM_API_KEY",
    DeepgramTextToSpeech: "DEEPGRAM_API_KEY",
    ElevenLabsTextToSpeech: "ELEVENLABS_API_KEY",
    CartesiaTextToSpeech: "CARTESIA_API_KEY",
    OpenAISpeechToText: "OPENAI_API_KEY",
    OpenAITextToSpeech: "OPENAI_API_KEY",
}


async def _open(stage):
    if isinstance(stage, SpeechToText):
        await stage.start()
    else:
        await synthesize_all(stage, "Hello.")


@pytest.mark.parametrize("cls", list(STAGES), ids=lambda c: c.__name__)
def test_each_stage_names_its_secret_when_the_key_is_missing(cls):
    assert cls.required_secret == STAGES[cls]
    with pytest.raises(SpeechConfigError) as info:
        run(_open(cls(SpeechSettings())))
    assert str(info.value) == f"The environment has no {STAGES[cls]} secret." and info.value.permanent


@pytest.mark.parametrize("cls", list(STAGES), ids=lambda c: c.__name__)
def test_each_stage_refuses_a_private_base_url_before_connecting(cls, settings):
    settings.OUTBOUND_ALLOW_PRIVATE_TARGETS = False
    stage = cls(SpeechSettings(api_key="k-secret-value", base_url="http://10.1.2.3:9/v1"))
    with pytest.raises(SpeechConfigError) as info:
        run(_open(stage))
    assert "base URL is refused" in str(info.value) and "private address" in str(info.value)
    assert "k-secret-value" not in str(info.value)


def test_statuses_map_to_permanent_or_transient():
    assert [status_error("V", s).permanent for s in (400, 401, 403, 404, 422)] == [True] * 5
    assert [status_error("V", s).permanent for s in (408, 429, 500, 502, 503, None)] == [False] * 6
    assert "API key" in str(status_error("V", 401)) and "unknown voice" in str(status_error("V", 404))


def test_cartesia_error_messages_of_either_api_version_map_to_a_status():
    event = types.SimpleNamespace
    assert error_status(event(status_code=400)) == 400
    assert error_status(event(status_code=None, error_code="model_not_found")) == 404
    assert error_status(event(status_code=None, error_code="invalid_transcript")) == 400
    assert error_status(event(status_code=None, error_code="rate_limited")) == 500
    assert error_status(event()) == 500


def test_aligned_rechunks_a_byte_stream_into_whole_samples_without_losing_any():
    async def source():
        for chunk in (b"\x01", b"\x02\x03", b"\x04\x05\x06", b"", b"\x07\x08"):
            yield chunk

    async def collect():
        return [c async for c in aligned(source())]

    chunks = asyncio.run(collect())
    assert all(len(c) % 2 == 0 for c in chunks) and b"".join(chunks) == bytes(range(1, 9))
