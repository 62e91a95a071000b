"""OpenAI: speech-to-text of each caller turn and streamed text-to-speech, through the official `openai` SDK.

STT: OpenAI's transcription endpoint takes a whole file, so the stage buffers the turn's PCM (at most
`max_turn_seconds`) and at `end_of_turn` posts it as a WAV to `audio.transcriptions.create`. The gpt-4o
transcription models stream (`stream=True`: `transcript.text.delta` events → Partial, `transcript.text.done`
→ Final); whisper-1 does not, and answers the Final in one piece. Turns are transcribed in order.

TTS: `audio.speech.with_streaming_response.create(response_format="pcm")` streams raw PCM16 at 24 kHz as it
is synthesised; a cancelled sentence closes its response.

`base_url` (checked by the outbound guard) points the SDK at any compatible server; the SDK's HTTP client is
the outbound guard's. The SDK's own retries are off: the cascaded provider decides what to retry.
"""
from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import wave

import openai

from calls.providers.speech.base import Final, Partial, SpeechError, SpeechFailure, SpeechToText, TextToSpeech
from calls.providers.speech.vendor import (
    aligned,
    checked_base_url,
    connection_error,
    http_client,
    require_key,
    status_error,
)

logger = logging.getLogger("calls.providers.speech.openai")

DEFAULT_URL = "https://api.openai.com/v1"
BASE_URL_SETTING = "OPENAI_SPEECH_BASE_URL"
SECRET = "OPENAI_API_KEY"


async def _client(settings, timeout: float) -> openai.AsyncOpenAI:
    key = require_key(settings, SECRET)
    base = await checked_base_url(settings, DEFAULT_URL, "OpenAI")
    return openai.AsyncOpenAI(api_key=key, base_url=base, max_retries=0, http_client=http_client(timeout))


def _error(exc: Exception, what: str) -> SpeechError:
    if isinstance(exc, openai.APIStatusError):
        return status_error("OpenAI", exc.status_code, what)
    return connection_error("OpenAI", exc)


def wav_bytes(pcm16: bytes, rate: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm16)
    return buffer.getvalue()


class OpenAISpeechToText(SpeechToText):
    name = "openai"
    sample_rate = 16000
    required_secret = SECRET
    base_url_setting = BASE_URL_SETTING  # the environment variable the registry reads into settings.base_url
    default_model = "gpt-4o-mini-transcribe"
    max_turn_seconds = 60
    timeout = 20.0

    def __init__(self, settings):
        super().__init__(settings)
        self._client: openai.AsyncOpenAI | None = None
        self._buffer = bytearray()
        self._tasks: list[asyncio.Task] = []
        self._closed = False

    async def make_client(self) -> openai.AsyncOpenAI:
        return await _client(self.settings, self.timeout)

    async def start(self) -> None:
        self._client = await self.make_client()

    async def send(self, pcm16: bytes) -> None:
        room = self.max_turn_seconds * self.sample_rate * 2 - len(self._buffer)
        if room > 0:
            self._buffer += pcm16[:room]

    async def end_of_turn(self) -> None:
        audio, self._buffer = bytes(self._buffer), bytearray()
        previous = self._tasks[-1] if self._tasks else None
        task = asyncio.create_task(self._transcribe(audio, previous), name="openai-stt-turn")
        self._tasks = [t for t in self._tasks if not t.done()] + [task]

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.close()
        await super().close()

    async def _transcribe(self, audio: bytes, previous: asyncio.Task | None) -> None:
        if previous is not None:
            with contextlib.suppress(BaseException):
                await previous
        if len(audio) < self.sample_rate // 10 * 2:  # under 100 ms: nothing to recognise
            self.events.put_nowait(Final(""))
            return
        model = self.settings.model or self.default_model
        options = {"file": ("turn.wav", wav_bytes(audio, self.sample_rate), "audio/wav"), "model": model}
        language = (self.settings.language or "").split("-")[0]
        if language:
            options["language"] = language
        if self.settings.hints:
            options["prompt"] = "Words you may hear: " + ", ".join(self.settings.hints)
        try:
            if not self.streams(model):
                result = await self._client.audio.transcriptions.create(**options)
                self.events.put_nowait(Final((result.text or "").strip()))
                return
            stream = await self._client.audio.transcriptions.create(**options, stream=True)
            text, done = "", False
            async with stream:
                async for event in stream:
                    if event.type == "transcript.text.delta":
                        text += event.delta
                        self.events.put_nowait(Partial(text.strip()))
                    elif event.type == "transcript.text.done":
                        text, done = event.text, True
            if not done and not text:
                raise SpeechError("OpenAI transcription ended without a result.")
            self.events.put_nowait(Final(text.strip()))
        except asyncio.CancelledError:
            raise
        except SpeechError as exc:
            self._fail(exc)
        except Exception as exc:  # noqa: BLE001 - the SDK's status and connection errors
            self._fail(_error(exc, "speech recognition"))

    def streams(self, model: str) -> bool:
        """The gpt-4o transcription models stream their text; whisper-1 answers in one piece."""
        return not model.startswith("whisper")

    def _fail(self, error: SpeechError) -> None:
        logger.warning("openai stt failed", extra={"permanent": error.permanent, "error": str(error)})
        self.events.put_nowait(SpeechFailure(str(error), permanent=error.permanent))


class OpenAITextToSpeech(TextToSpeech):
    name = "openai"
    sample_rate = 24000  # response_format "pcm" is 24 kHz 16-bit mono
    required_secret = SECRET
    base_url_setting = BASE_URL_SETTING  # the environment variable the registry reads into settings.base_url
    default_model = "gpt-4o-mini-tts"
    default_voice = "alloy"
    timeout = 20.0

    def __init__(self, settings):
        super().__init__(settings)
        self._client: openai.AsyncOpenAI | None = None

    async def make_client(self) -> openai.AsyncOpenAI:
        return await _client(self.settings, self.timeout)

    async def synthesize(self, text: str):
        if self._client is None:
            self._client = await self.make_client()
        try:
            async with self._client.audio.speech.with_streaming_response.create(
                model=self.settings.model or self.default_model,
                voice=self.settings.voice or self.default_voice,
                input=text,
                response_format="pcm",
            ) as response:
                async with contextlib.aclosing(aligned(response.iter_bytes())) as chunks:
                    async for chunk in chunks:
                        yield chunk
        except Exception as exc:  # noqa: BLE001 - the SDK's status and connection errors
            raise _error(exc, "speech synthesis") from None

    async def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.close()
            self._client = None
