"""Deepgram: streaming speech-to-text (live websocket) and Aura text-to-speech, through the official deepgram-sdk.

STT: `listen.v1.connect` opens wss://api.deepgram.com/v1/listen with μ-law 8 kHz mono (the call's own audio, not
decoded and resampled) and interim results;
audio goes up as binary frames; `Results` messages come back (interim ones → Partial, `is_final` segments are
collected); at the end of the caller's turn we send `{"type": "Finalize"}` and the result flagged
`from_finalize` closes the turn (→ Final with the collected segments). If Deepgram had nothing buffered and
sends no such result, `finalize_timeout` closes the turn with what we have. `KeepAlive` is sent while no audio
flows, so Deepgram does not close an idle stream after 10 s.

TTS: `speak.v1.audio.generate` (POST /v1/speak, linear16 16 kHz, container none) streams the audio of one
sentence as it is synthesised. We use the REST stream rather than the speak websocket because each call to
`synthesize` is one sentence: the REST stream needs no Flush/Clear bookkeeping, a cancelled sentence simply
closes its response, and the guarded HTTP client keeps the connection alive between sentences.

The SDK accepts a `DeepgramClientEnvironment` (HTTP and websocket base URLs), so a base URL from the settings
(checked by the outbound guard) points both at another server, e.g. a local fake.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging

from deepgram import AsyncDeepgramClient
from deepgram.core.api_error import ApiError
from deepgram.environment import DeepgramClientEnvironment

from calls.providers.speech.base import Final, Partial, SpeechError, SpeechFailure, SpeechToText, TextToSpeech
from calls.providers.speech.vendor import (
    aligned,
    checked_base_url,
    connection_error,
    http_client,
    require_key,
    status_error,
    ws_url,
)

logger = logging.getLogger("calls.providers.speech.deepgram")

DEFAULT_URL = "https://api.deepgram.com"
BASE_URL_SETTING = "DEEPGRAM_BASE_URL"
SECRET = "DEEPGRAM_API_KEY"


async def _client(settings, timeout: float):
    """(SDK client, its guarded httpx client) for the settings' key and base URL."""
    key = require_key(settings, SECRET)
    base = await checked_base_url(settings, DEFAULT_URL, "Deepgram")
    environment = DeepgramClientEnvironment(base=base, production=ws_url(base), agent=ws_url(base), agent_rest=base)
    http = http_client(timeout)
    return AsyncDeepgramClient(api_key=key, environment=environment, httpx_client=http), http


class DeepgramSpeechToText(SpeechToText):
    name = "deepgram"
    sample_rate = 8000
    encoding = "mulaw"  # Twilio's own μ-law 8 kHz goes up as is (Deepgram's `encoding=mulaw`)
    required_secret = SECRET
    base_url_setting = BASE_URL_SETTING  # the environment variable the registry reads into settings.base_url
    default_model = "nova-3"
    finalize_timeout = 1.0  # Deepgram answers a Finalize in well under that when it had audio buffered
    keepalive_seconds = 5.0

    def __init__(self, settings):
        super().__init__(settings)
        self._client: AsyncDeepgramClient | None = None
        self._http = None
        self._connection = None
        self._socket = None
        self._reader: asyncio.Task | None = None
        self._keepalive: asyncio.Task | None = None
        self._timer: asyncio.Task | None = None
        self._segments: list[str] = []
        self._awaiting_final = False
        self._closing = False
        self._failed = False
        self._audio_since_keepalive = False

    async def start(self) -> None:
        self._client, self._http = await _client(self.settings, timeout=15)
        model = self.settings.model or self.default_model
        options = {
            "model": model,
            "encoding": self.encoding,
            "sample_rate": self.sample_rate,
            "channels": 1,
            "interim_results": "true",
            "punctuate": "true",
            "smart_format": "true",
            "endpointing": "false",  # our voice activity decides the end of the turn
            "language": self.settings.language or "en-US",
        }
        if self.settings.hints:  # nova-3 takes keyterms, older models keywords
            options["keyterm" if model.startswith("nova-3") else "keywords"] = list(self.settings.hints)
        self._connection = self._client.listen.v1.connect(**options)
        try:
            self._socket = await self._connection.__aenter__()
        except Exception as exc:  # noqa: BLE001 - ApiError (refused handshake), OSError, websockets' handshake errors
            self._connection = None
            await self._http.aclose()
            if isinstance(exc, ApiError):
                raise status_error("Deepgram", exc.status_code, "speech recognition") from None
            raise connection_error("Deepgram", exc) from None
        self._reader = asyncio.create_task(self._read(), name="deepgram-stt-read")
        self._keepalive = asyncio.create_task(self._keep_alive(), name="deepgram-stt-keepalive")

    async def send(self, pcm16: bytes) -> None:
        if self._socket is None or self._failed or self._closing:
            return
        self._audio_since_keepalive = True
        try:
            await self._socket.send_media(pcm16)
        except Exception as exc:  # noqa: BLE001 - the socket went away: one failure event, then nothing
            self._fail(connection_error("Deepgram", exc))

    async def end_of_turn(self) -> None:
        if self._socket is None or self._failed or self._closing:
            return
        self._awaiting_final = True
        try:
            await self._socket.send_finalize()
        except Exception as exc:  # noqa: BLE001
            self._fail(connection_error("Deepgram", exc))
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.create_task(self._finalize_fallback(), name="deepgram-stt-finalize")

    async def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        for task in (self._timer, self._keepalive):
            if task is not None:
                task.cancel()
        if self._socket is not None:
            with contextlib.suppress(Exception):
                await self._socket.send_close_stream()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._connection.__aexit__(None, None, None), 2)  # a dead peer: no 10 s wait
        if self._http is not None:
            with contextlib.suppress(Exception):
                await self._http.aclose()
        await super().close()

    # ---------------------------------------------------------------------------

    def _fail(self, error: SpeechError) -> None:
        if self._failed or self._closing:
            return
        self._failed = True
        logger.warning("deepgram stt failed", extra={"permanent": error.permanent, "error": str(error)})
        self.events.put_nowait(SpeechFailure(str(error), permanent=error.permanent))

    def _emit_final(self) -> None:
        text = " ".join(s for s in self._segments if s).strip()
        self._segments = []
        self._awaiting_final = False
        if self._timer is not None and self._timer is not asyncio.current_task():
            self._timer.cancel()
        self._timer = None
        self.events.put_nowait(Final(text))

    async def _finalize_fallback(self) -> None:
        await asyncio.sleep(self.finalize_timeout)
        if self._awaiting_final:
            self._emit_final()

    async def _keep_alive(self) -> None:
        while True:
            await asyncio.sleep(self.keepalive_seconds)
            if not self._audio_since_keepalive and self._socket is not None:
                with contextlib.suppress(Exception):
                    await self._socket.send_keep_alive()
            self._audio_since_keepalive = False

    async def _read(self) -> None:
        try:
            async for message in self._socket:
                self._on_message(message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - abnormal close
            if not self._closing:
                self._fail(connection_error("Deepgram", exc))
            return
        if not self._closing:
            self._fail(SpeechError("Deepgram closed the recognition stream.", permanent=False))

    def _on_message(self, message) -> None:
        kind = getattr(message, "type", None)
        if kind == "Results":
            alternatives = message.channel.alternatives if message.channel else []
            transcript = (alternatives[0].transcript or "").strip() if alternatives else ""
            if message.is_final:
                if transcript:
                    self._segments.append(transcript)
                if message.from_finalize and self._awaiting_final:
                    self._emit_final()
                elif transcript:
                    self.events.put_nowait(Partial(" ".join(self._segments)))
            elif transcript:
                self.events.put_nowait(Partial(" ".join([*self._segments, transcript])))
        elif kind == "Error":
            description = getattr(message, "description", "") or getattr(message, "message", "") or "error"
            self._fail(SpeechError(f"Deepgram reported an error: {description}", permanent=False))


class DeepgramTextToSpeech(TextToSpeech):
    name = "deepgram"
    sample_rate = 16000
    required_secret = SECRET
    base_url_setting = BASE_URL_SETTING  # the environment variable the registry reads into settings.base_url
    default_voice = "aura-2-thalia-en"  # Aura's "model" is the voice
    timeout = 15.0
    PHONE_ENCODING = "mulaw"

    def __init__(self, settings):
        super().__init__(settings)
        self._client: AsyncDeepgramClient | None = None
        self._http = None

    async def synthesize(self, text: str):
        if self._client is None:
            self._client, self._http = await _client(self.settings, timeout=self.timeout)
        voice = self.settings.voice or self.settings.model or self.default_voice
        stream = self._client.speak.v1.audio.generate(
            text=text, model=voice, encoding=self.PHONE_ENCODING if self.encoding == "mulaw" else "linear16",
            sample_rate=self.sample_rate, container="none",
        )
        try:
            async with contextlib.aclosing(stream if self.encoding == "mulaw" else aligned(stream)) as chunks:
                async for chunk in chunks:
                    yield chunk
        except ApiError as exc:
            raise status_error("Deepgram", exc.status_code, "speech synthesis") from None
        except Exception as exc:  # httpx transport errors, timeouts, a dropped stream
            raise connection_error("Deepgram", exc) from None

    async def close(self) -> None:
        if self._http is not None:
            with contextlib.suppress(Exception):
                await self._http.aclose()
        self._client = self._http = None
