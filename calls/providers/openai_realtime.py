"""OpenAI Realtime over a websocket: μ-law passthrough, server-side voice activity detection, tool calls.

Settings (environment secrets or variables): `OPENAI_API_KEY` (required), `OPENAI_REALTIME_MODEL`
(default gpt-realtime), `OPENAI_BASE_URL` (default https://api.openai.com/v1; http(s) becomes ws(s)),
`OPENAI_REALTIME_PROTOCOL` (`ga`, the default: `audio/pcmu`; or `beta`: `g711_ulaw` with the
`OpenAI-Beta: realtime=v1` header), `OPENAI_TIMEOUT` (seconds, default 15).

Twilio's base64 μ-law payloads go upstream untouched (`input_audio_buffer.append`) and the model's
audio deltas come back untouched: no transcoding in our process.
"""
from __future__ import annotations

import asyncio
import json
import logging
from urllib.parse import quote

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from calls.engine.events import (
    AudioOut,
    ProviderFailed,
    ReplyDone,
    SpeechStarted,
    TextOut,
    Transcript,
)
from calls.providers.base import Provider, ProviderConfigError, tasks_cancel
from workspaces import outbound

logger = logging.getLogger("calls.providers.openai_realtime")

# The websocket library logs handshake headers (our bearer key) at DEBUG: its logger for our upstream
# connections never goes below INFO, whatever LOG_LEVEL says.
ws_logger = logging.getLogger("calls.providers.openai_realtime.websocket")
ws_logger.setLevel(logging.INFO)

SEND_QUEUE_FRAMES = 500  # 10 s of 20 ms frames: beyond that the upstream is stalled
# An outbound call's greeting waits for the callee's first words ("Hello?"), or this long of them saying nothing
# (counted in the caller's 20 ms audio frames, the call's own clock; a text transport counts on the event loop).
GREETING_WAIT_SECONDS = 3.0
FRAME_MS = 20


class OpenAIRealtimeProvider(Provider):
    name = "openai_realtime"
    modalities = ("audio", "text")

    def __init__(self, ctx):
        super().__init__(ctx)
        base = ctx.setting("OPENAI_BASE_URL", "https://api.openai.com/v1").rstrip("/")
        if base.startswith("http"):
            base = "ws" + base[4:]
        self.model = ctx.setting("OPENAI_REALTIME_MODEL", "gpt-realtime")
        self.url = f"{base}/realtime?model={quote(self.model)}"
        self.protocol = ctx.setting("OPENAI_REALTIME_PROTOCOL", "ga").lower()
        self.timeout = float(ctx.setting("OPENAI_TIMEOUT", "15") or 15)
        self.ws = None
        self._outbox: asyncio.Queue = asyncio.Queue(maxsize=SEND_QUEUE_FRAMES)
        self._tasks: list[asyncio.Task] = []
        self._seen_calls: set[str] = set()
        self._text_reply = ""
        # An outbound call: the greeting is held (and the server's voice activity does not answer on its own)
        # until the callee has spoken or stayed silent GREETING_WAIT_SECONDS.
        self._greeting_held = bool(ctx.greeting and ctx.greet_after_callee)
        self._heard_ms = 0
        self._greeting_timer: asyncio.TimerHandle | None = None

    # -- lifecycle ----------------------------------------------------------------

    async def start(self) -> None:
        api_key = self.ctx.setting("OPENAI_API_KEY")
        if not api_key:
            raise ProviderConfigError("The environment has no OPENAI_API_KEY secret.")
        headers = {"Authorization": f"Bearer {api_key}"}
        if self.protocol == "beta":
            headers["OpenAI-Beta"] = "realtime=v1"
        try:
            # The base URL comes from the environment: checked by the outbound guard, and the socket goes to the
            # address that was checked (no second resolution).
            target = await asyncio.to_thread(outbound.websocket_target, self.url)
        except outbound.OutboundRefused as exc:
            raise ProviderConfigError(f"The OpenAI Realtime base URL is refused: {exc}") from None
        try:
            self.ws = await connect(self.url, additional_headers=headers, open_timeout=self.timeout,
                                    max_size=2 ** 22, ping_interval=20, ping_timeout=self.timeout,
                                    logger=ws_logger, **target)
            first = json.loads(await asyncio.wait_for(self.ws.recv(), self.timeout))
        except InvalidStatus as exc:
            status = exc.response.status_code
            logger.warning("realtime provider refused the connection", extra={"status": status, "model": self.model})
            raise ProviderConfigError(f"OpenAI Realtime refused the connection (HTTP {status}).") from exc
        if first.get("type") != "session.created":
            raise ProviderConfigError(f"OpenAI Realtime opened with {first.get('type')!r}, not session.created.")
        await self.ws.send(json.dumps(self._session_update()))
        self._tasks = [asyncio.create_task(self._reader(), name="realtime-reader"),
                       asyncio.create_task(self._writer(), name="realtime-writer")]
        if self._greeting_held:
            if self.ctx.modality == "text":
                self._greeting_timer = asyncio.get_running_loop().call_later(GREETING_WAIT_SECONDS, self._greet)
        elif self.ctx.greeting:
            self._send_greeting()

    def _send_greeting(self) -> None:
        self._send({"type": "response.create",
                    "response": {"instructions": f"Greet the caller with exactly: {self.ctx.greeting}"}})

    def _greet(self) -> None:
        """The held greeting, now (the callee spoke, or said nothing long enough); from now on the server's voice
        activity answers the caller's turns itself."""
        if not self._greeting_held or self.closed:
            return
        self._greeting_held = False
        if self._greeting_timer is not None:
            self._greeting_timer.cancel()
            self._greeting_timer = None
        self._send_greeting()
        if self.ctx.modality == "audio":
            self._send(self._session_update())

    async def close(self) -> None:
        if self._greeting_timer is not None:
            self._greeting_timer.cancel()
        await tasks_cancel(self._tasks)
        self._tasks = []
        if self.ws is not None:
            try:
                await asyncio.wait_for(self.ws.close(), 2)
            except (asyncio.TimeoutError, WebSocketException, OSError):
                pass
        await super().close()

    def _turn_detection(self) -> dict:
        detection = {"type": "server_vad"}
        if self._greeting_held:
            # The callee's "Hello?" is not answered by the model on its own: we send the greeting after it.
            detection["create_response"] = False
        return detection

    def _session_update(self) -> dict:
        audio = self.ctx.modality == "audio"
        if self.protocol == "beta":
            session = {
                "modalities": ["audio", "text"] if audio else ["text"],
                "instructions": self.system_prompt(),
                "input_audio_format": "g711_ulaw",
                "output_audio_format": "g711_ulaw",
                "turn_detection": self._turn_detection(),
                "input_audio_transcription": {"model": "whisper-1"},
                "tools": self.tools(),
                "tool_choice": "auto",
            }
            if self.ctx.voice:
                session["voice"] = self.ctx.voice
            return {"type": "session.update", "session": session}
        session = {
            "type": "realtime",
            "model": self.model,
            "instructions": self.system_prompt(),
            "output_modalities": ["audio"] if audio else ["text"],
            "tools": self.tools(),
            "tool_choice": "auto",
        }
        if audio:
            output = {"format": {"type": "audio/pcmu"}}
            if self.ctx.voice:
                output["voice"] = self.ctx.voice
            session["audio"] = {
                "input": {"format": {"type": "audio/pcmu"}, "turn_detection": self._turn_detection(),
                          "transcription": {"model": "gpt-4o-mini-transcribe"}},
                "output": output,
            }
        return {"type": "session.update", "session": session}

    # -- input ----------------------------------------------------------------------

    def _send(self, message: dict) -> None:
        try:
            self._outbox.put_nowait(json.dumps(message))
        except asyncio.QueueFull:
            logger.warning("realtime provider stalled: send queue full", extra={"model": self.model})
            self.emit(ProviderFailed("stalled"))

    async def on_audio(self, payload_b64: str) -> None:
        self._send({"type": "input_audio_buffer.append", "audio": payload_b64})
        if self._greeting_held:
            self._heard_ms += FRAME_MS
            if self._heard_ms >= GREETING_WAIT_SECONDS * 1000:
                self._greet()  # the callee has said nothing: greet them anyway

    async def on_text(self, text: str) -> None:
        text = (text or "").strip()
        if not text:
            return
        self.emit(Transcript("caller", text))
        self._send({"type": "conversation.item.create",
                    "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}})
        if self._greeting_held:
            self._greet()  # the callee's first words are answered by the greeting
            return
        self._send({"type": "response.create"})

    async def on_dtmf(self, digit: str) -> None:
        await self.on_text(f"(The caller pressed the key {digit}.)")

    async def on_interrupt(self, *, heard_text=None, heard_ms=None, item_id="") -> None:
        if item_id and heard_ms is not None:
            # The model's memory of its reply is cut to what the caller actually heard.
            self._send({"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0,
                        "audio_end_ms": max(0, int(heard_ms))})
        elif self.ctx.modality == "text":
            self._send({"type": "response.cancel"})

    async def on_tool_result(self, call_id: str, result: str) -> None:
        self._send({"type": "conversation.item.create",
                    "item": {"type": "function_call_output", "call_id": call_id, "output": result}})
        self._send({"type": "response.create"})

    async def on_instruction(self, text: str) -> None:
        await super().on_instruction(text)
        # New session instructions (the system prompt now ends with the supervisor's): used from the next response.
        self._send(self._session_update())

    # -- tasks ------------------------------------------------------------------------

    async def _writer(self) -> None:
        try:
            while True:
                await self.ws.send(await self._outbox.get())
        except asyncio.CancelledError:
            raise
        except ConnectionClosed:
            pass  # the reader reports it

    async def _reader(self) -> None:
        try:
            async for raw in self.ws:
                try:
                    self._handle(json.loads(raw))
                except (ValueError, TypeError, AttributeError, KeyError):
                    logger.warning("realtime provider sent a malformed event", extra={"model": self.model})
        except asyncio.CancelledError:
            raise
        except ConnectionClosed:
            pass
        if not self.closed:
            logger.warning("realtime provider connection dropped", extra={"model": self.model})
            self.emit(ProviderFailed("connection_closed"))

    def _handle(self, event: dict) -> None:
        kind = event.get("type", "")
        if kind in ("response.output_audio.delta", "response.audio.delta"):
            self.emit(AudioOut(event["delta"], event.get("item_id", "")))
        elif kind in ("response.output_text.delta", "response.text.delta"):
            self._text_reply += event.get("delta", "")
            self.emit(TextOut(event.get("delta", ""), last=False))
        elif kind == "input_audio_buffer.speech_started":
            self._heard_ms = 0  # a held greeting's wait starts again with the callee's words
            self.emit(SpeechStarted())
        elif kind == "input_audio_buffer.speech_stopped":
            if self._greeting_held:
                self._greet()  # the end of the callee's first words
        elif kind in ("response.output_audio_transcript.done", "response.audio_transcript.done"):
            self.emit(Transcript("agent", event.get("transcript", "")))
        elif kind == "conversation.item.input_audio_transcription.completed":
            self.emit(Transcript("caller", event.get("transcript", "")))
            if self._greeting_held:
                self._greet()
        elif kind == "response.output_item.done":
            item = event.get("item") or {}
            if item.get("type") == "function_call":
                self._tool_call(item.get("name", ""), item.get("call_id", ""), item.get("arguments"))
        elif kind == "response.function_call_arguments.done":
            if event.get("name"):
                self._tool_call(event["name"], event.get("call_id", ""), event.get("arguments"))
        elif kind == "response.done":
            if self.ctx.modality == "text":
                if self._text_reply:
                    self.emit(Transcript("agent", self._text_reply))
                self._text_reply = ""
                self.emit(TextOut("", last=True))
            self.emit(ReplyDone((event.get("response") or {}).get("id", "")))
        elif kind == "error":
            err = event.get("error") or {}
            logger.info("realtime provider error event", extra={"code": err.get("code"), "error_type": err.get("type")})

    def _tool_call(self, name: str, call_id: str, arguments=None) -> None:
        if call_id and call_id in self._seen_calls:
            return
        self._seen_calls.add(call_id)
        self.emit(self.tool_call_event(name, call_id, arguments))
