"""ElevenLabs: streamed text-to-speech through the official `elevenlabs` SDK.

`text_to_speech.stream` (POST /v1/text-to-speech/{voice_id}/stream?output_format=pcm_16000, `xi-api-key`)
streams raw PCM16 as it is synthesised, one request per sentence. We use the HTTP stream rather than the
stream-input websocket because the cascaded provider hands us whole sentences: the websocket's text buffering
(chunk_length_schedule, flush) buys nothing then, and a cancelled sentence simply closes its response.
Output is pcm_16000 by default; pass `sample_rate=24000` (or 22050, 44100) for another pcm_* format; on a phone
call (`phone_audio()`) it is `ulaw_8000`, the call's own μ-law.

The SDK takes `base_url` (checked by the outbound guard) and our guarded httpx client.
"""
from __future__ import annotations

import contextlib

from elevenlabs.client import AsyncElevenLabs
from elevenlabs.core.api_error import ApiError

from calls.providers.speech.base import TextToSpeech
from calls.providers.speech.vendor import (
    aligned,
    checked_base_url,
    connection_error,
    http_client,
    require_key,
    status_error,
)

DEFAULT_URL = "https://api.elevenlabs.io"
BASE_URL_SETTING = "ELEVENLABS_BASE_URL"
SECRET = "ELEVENLABS_API_KEY"
PCM_RATES = (8000, 16000, 22050, 24000, 44100)


class ElevenLabsTextToSpeech(TextToSpeech):
    name = "elevenlabs"
    sample_rate = 16000
    required_secret = SECRET
    base_url_setting = BASE_URL_SETTING  # the environment variable the registry reads into settings.base_url
    default_model = "eleven_flash_v2_5"
    default_voice = "JBFqnCBsd6RMkjVDRZzb"  # "George", ElevenLabs' documented example voice
    timeout = 20.0
    PHONE_ENCODING = "ulaw_8000"

    def __init__(self, settings, *, sample_rate: int | None = None):
        super().__init__(settings)
        if sample_rate is not None:
            if sample_rate not in PCM_RATES:
                raise ValueError(f"ElevenLabs has no pcm_{sample_rate} output.")
            self.sample_rate = sample_rate
        self._client: AsyncElevenLabs | None = None
        self._http = None

    async def synthesize(self, text: str):
        if self._client is None:
            key = require_key(self.settings, SECRET)
            base = await checked_base_url(self.settings, DEFAULT_URL, "ElevenLabs")
            self._http = http_client(self.timeout)
            self._client = AsyncElevenLabs(api_key=key, base_url=base, httpx_client=self._http)
        model = self.settings.model or self.default_model
        options = {}
        language = (self.settings.language or "").split("-")[0]
        if language and model.startswith(("eleven_flash_v2_5", "eleven_turbo_v2_5")):  # the models that take one
            options["language_code"] = language
        stream = self._client.text_to_speech.stream(
            self.settings.voice or self.default_voice,
            text=text,
            model_id=model,
            output_format=self.PHONE_ENCODING if self.encoding == "mulaw" else f"pcm_{self.sample_rate}",
            **options,
        )
        try:
            # PCM: whole 16-bit samples per chunk; μ-law: every byte is a sample.
            async with contextlib.aclosing(stream if self.encoding == "mulaw" else aligned(stream)) as chunks:
                async for chunk in chunks:
                    yield chunk
        except ApiError as exc:
            raise status_error("ElevenLabs", exc.status_code, "speech synthesis") from None
        except Exception as exc:  # noqa: BLE001 - httpx transport errors, timeouts, a dropped stream
            raise connection_error("ElevenLabs", exc) from None

    async def close(self) -> None:
        if self._http is not None:
            with contextlib.suppress(Exception):
                await self._http.aclose()
        self._client = self._http = None
