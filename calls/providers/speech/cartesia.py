"""Cartesia: text-to-speech over Cartesia's TTS websocket (raw pcm_s16le), through the official `cartesia` SDK.

One websocket per call (`tts.websocket_connect()`, opened at the first sentence and kept), one context per
sentence: a generation request `{"context_id", "model_id", "transcript", "voice": {"mode": "id", "id"},
"output_format": {"container": "raw", "encoding": "pcm_s16le", "sample_rate": 16000}, "continue": false}`,
then `chunk` messages (base64 audio) until `done`, or an `error` message with a `status_code`. A sentence
cancelled mid-stream sends `{"context_id", "cancel": true}`; chunks of an abandoned context that still arrive
are skipped. We read the socket ourselves (`connection.recv()`) rather than through the SDK's background
dispatcher, so a closed socket is noticed at once instead of leaving the sentence waiting.

The SDK takes `base_url` and `websocket_base_url` (a base URL from the settings, checked by the outbound guard).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

from cartesia import AsyncCartesia
from websockets.exceptions import InvalidStatus

from calls.providers.speech.base import SpeechError, TextToSpeech
from calls.providers.speech.vendor import (
    checked_base_url,
    connection_error,
    http_client,
    require_key,
    status_error,
    ws_url,
)

# The websocket library logs handshake headers (our key) at DEBUG: its logger for this upstream stays at INFO.
ws_logger = logging.getLogger("calls.providers.speech.cartesia.websocket")
ws_logger.setLevel(logging.INFO)

DEFAULT_URL = "https://api.cartesia.ai"
BASE_URL_SETTING = "CARTESIA_BASE_URL"
SECRET = "CARTESIA_API_KEY"


def error_status(event) -> int:
    """An `error` message's status: older API versions send `status_code`, newer ones an `error_code` such as
    "model_not_found" (a request the caller must fix) or a server-side one (rate limit, internal)."""
    status = getattr(event, "status_code", None)
    if status:
        return int(status)
    code = (getattr(event, "error_code", None) or "").lower()
    if "not_found" in code:
        return 404
    if not code or any(word in code for word in ("internal", "rate", "timeout", "overload", "unavailable")):
        return 500
    return 400


class CartesiaTextToSpeech(TextToSpeech):
    name = "cartesia"
    sample_rate = 16000
    required_secret = SECRET
    base_url_setting = BASE_URL_SETTING  # the environment variable the registry reads into settings.base_url
    default_model = "sonic-3"
    default_voice = "6ccbfb76-1fc6-48f7-b71d-91ac6298247b"  # the SDK's own default voice
    timeout = 15.0  # seconds without a message before the sentence counts as failed
    PHONE_ENCODING = "pcm_mulaw"

    def __init__(self, settings):
        super().__init__(settings)
        self._client: AsyncCartesia | None = None
        self._connection = None

    async def prepare(self) -> None:
        """Optional: open the websocket before the first sentence (Cartesia's advice for the first reply's latency)."""
        await self._connect()

    async def _connect(self):
        if self._connection is not None:
            return self._connection
        if self._client is None:
            key = require_key(self.settings, SECRET)
            base = await checked_base_url(self.settings, DEFAULT_URL, "Cartesia")
            self._client = AsyncCartesia(api_key=key, base_url=base, websocket_base_url=ws_url(base),
                                         http_client=http_client(self.timeout), max_retries=0)
        try:
            manager = self._client.tts.websocket_connect(
                websocket_connection_options={"logger": ws_logger, "open_timeout": self.timeout})
            self._connection = await asyncio.wait_for(manager.enter(), self.timeout)
        except InvalidStatus as exc:
            raise status_error("Cartesia", exc.response.status_code, "speech synthesis") from None
        except Exception as exc:  # noqa: BLE001 - refused, reset, handshake timeout
            raise connection_error("Cartesia", exc) from None
        return self._connection

    async def synthesize(self, text: str):
        connection = await self._connect()
        context_id = f"ctx-{uuid.uuid4().hex}"
        language = (self.settings.language or "en").split("-")[0]
        finished = False
        try:
            await connection.send({
                "context_id": context_id,
                "model_id": self.settings.model or self.default_model,
                "transcript": text,
                "voice": {"mode": "id", "id": self.settings.voice or self.default_voice},
                "output_format": {"container": "raw", "sample_rate": self.sample_rate,
                                  "encoding": self.PHONE_ENCODING if self.encoding == "mulaw" else "pcm_s16le"},
                "language": language,
                "continue": False,
            })
            while True:
                event = await asyncio.wait_for(connection.recv(), self.timeout)
                if getattr(event, "context_id", None) != context_id:
                    continue  # a cancelled sentence's late chunks
                if event.type == "chunk":
                    audio = event.audio
                    if audio:
                        yield audio  # pcm_s16le: whole samples in every chunk (pcm_mulaw: a byte each)
                elif event.type == "done":
                    finished = True
                    return
                elif event.type == "error":
                    finished = True
                    raise status_error("Cartesia", error_status(event), "speech synthesis")
        except SpeechError:
            raise
        except Exception as exc:  # noqa: BLE001 - closed socket, timeout, bad message
            finished = True
            await self._drop()
            raise connection_error("Cartesia", exc) from None
        finally:
            if not finished and self._connection is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._connection.send({"context_id": context_id, "cancel": True}), 1)

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), 2)  # a dead peer: no 10 s close handshake

    async def close(self) -> None:
        await self._drop()
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.close()
            self._client = None
