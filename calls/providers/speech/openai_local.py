"""An OpenAI-compatible speech server the company already runs: speech-to-text and text-to-speech on its own
machine (faster-whisper behind speaches / faster-whisper-server, whisper.cpp's server, LocalAI, Kokoro-FastAPI...).

The point is the base URL: `LOCAL_SPEECH_BASE_URL` (an environment variable or secret, e.g.
`http://10.0.0.5:8000/v1`) is required, and goes through the outbound guard when the call connects: a server on a
private address or plain http needs the operator's `OUTBOUND_ALLOW_PRIVATE_TARGETS` / `OUTBOUND_ALLOW_HTTP`. `LOCAL_SPEECH_API_KEY` is optional (most local servers
take none). The stages are OpenAI's (`openai_speech`, the official SDK) with local defaults:

- STT: each turn is posted whole as a WAV to `/audio/transcriptions` and answered in one piece (`{"text": ...}`;
  no streaming, which local servers do differently or not at all). Model: the version's (e.g.
  `Systran/faster-whisper-small`), else `whisper-1` (the name most local servers map to their default model).
- TTS: `/audio/speech` with `response_format="pcm"`: raw PCM16 at 24 kHz (OpenAI's pcm format, which speaches
  and Kokoro-FastAPI also send). Model: the version's, else `tts-1`; voice: the version's, else `alloy`.
"""
from __future__ import annotations

import openai

from calls.providers.speech.base import SpeechConfigError
from calls.providers.speech.openai_speech import OpenAISpeechToText, OpenAITextToSpeech
from calls.providers.speech.vendor import checked_base_url, http_client

BASE_URL_SETTING = "LOCAL_SPEECH_BASE_URL"
NO_KEY = "no-key"  # the SDK wants a key; local servers ignore it


async def local_client(settings, timeout: float) -> openai.AsyncOpenAI:
    if not (settings.base_url or "").strip():
        raise SpeechConfigError(f"The local speech server needs its address: set {BASE_URL_SETTING} "
                                "(e.g. http://10.0.0.5:8000/v1) in the environment.")
    base = await checked_base_url(settings, "", "local speech server")
    return openai.AsyncOpenAI(api_key=settings.api_key or NO_KEY, base_url=base, max_retries=0,
                              http_client=http_client(timeout))


class LocalSpeechToText(OpenAISpeechToText):
    name = "openai_local"
    required_secret = ""
    base_url_setting = BASE_URL_SETTING
    default_model = "whisper-1"
    timeout = 30.0

    async def make_client(self) -> openai.AsyncOpenAI:
        return await local_client(self.settings, self.timeout)

    def streams(self, model: str) -> bool:
        return False


class LocalTextToSpeech(OpenAITextToSpeech):
    name = "openai_local"
    required_secret = ""
    base_url_setting = BASE_URL_SETTING
    default_model = "tts-1"
    default_voice = "alloy"
    timeout = 30.0

    async def make_client(self) -> openai.AsyncOpenAI:
        return await local_client(self.settings, self.timeout)
