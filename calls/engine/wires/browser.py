"""Call this version in the browser: Media Streams whose other end is a Studio admin's browser.

The browser speaks Twilio's side of the stream (`calls/static/calls/voice_call.js`), so this is the Media Streams
wire (same marks, same `clear` on barge-in) with what a phone call would do with the outside world replaced by
messages to the browser, on the same socket:

    {"event": "studio", "kind": "turn", "role": "caller"|"agent"|"event", "text": …, "heard": bool}
    {"event": "studio", "kind": "latency", "ms": int, "after": "start"|"caller"}  # to the agent's first frame
    {"event": "studio", "kind": "handover", "action": …, "destination": …, "description": …}  # shown, not dialled
    {"event": "studio", "kind": "hangup"}
    {"event": "studio", "kind": "error", "message": …, "fallback": …}

Nothing is dialled, redirected, recorded or stored: the context is a test context (`test_mode`, no call session,
no Twilio credentials), so the engine's live monitoring and storage are off.
"""
from __future__ import annotations

import dataclasses
import time
from collections import deque
from urllib.parse import urlsplit

from channels.db import database_sync_to_async

from calls.engine.wires.base import CLOSE_POLICY, CLOSE_PROTOCOL, Opening, Refused
from calls.engine.wires.media_streams import MediaStreamsWire
from calls.engine.wires.text_chat import studio_refused, studio_socket_context

MAX_MESSAGE = 16_384  # characters; a media frame is about 300, the largest legitimate message (start) under 1,000
RELAY_ONLY = ("This version answers phone calls over ConversationRelay, where Twilio does the speech: test it with "
              "the text chat above, or switch the version to Media Streams.")


def same_origin(scope) -> bool:
    """The handshake's Origin is this site: the Host the browser connected to, or PUBLIC_BASE_URL's host."""
    from telephony.public_urls import absolute_url

    headers = dict(scope.get("headers") or [])
    origin = headers.get(b"origin", b"").decode("latin-1").strip()
    host = headers.get(b"host", b"").decode("latin-1").strip().lower()
    if not origin or origin == "null":
        return False
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    netloc = parts.netloc.lower()
    public = urlsplit(absolute_url("/")).netloc.lower()
    return netloc == host or (bool(public) and netloc == public)


class BrowserWire(MediaStreamsWire):
    """`/v1/studio/voice-call/<version_id>/<environment_id>`. Admitted at the handshake (a logged-in admin of the
    session's current workspace, the version and environment of that workspace, a same-origin browser; no Twilio
    signature, no call session: a test context on the Media Streams transport). Anything the page would never send
    (not JSON, binary, over `MAX_MESSAGE` characters, a message before `start`) closes the socket, once."""

    dials = False
    strict = True
    max_message = MAX_MESSAGE

    @classmethod
    async def handshake(cls, socket):
        from calls.engine.context import context_for_test_chat

        if not same_origin(socket.scope):
            raise studio_refused(socket, "browser call: not same-origin", CLOSE_POLICY)
        found = await database_sync_to_async(studio_socket_context)(socket)
        if found is None:
            raise studio_refused(socket, "browser call: not an admin's version and environment")
        version, environment = found
        if version.transport != "media_streams":
            raise Refused("browser call: the version uses ConversationRelay", None,
                          notice={"event": "studio", "kind": "error", "message": RELAY_ONLY, "fallback": ""})
        ctx = await database_sync_to_async(context_for_test_chat)(version=version, environment=environment)
        return dataclasses.replace(ctx, transport="media_streams")

    @classmethod
    def opening(cls, msg: dict) -> Opening | None:
        """Media Streams' `start`, from a page: a short streamSid and μ-law at 8 kHz (no session parameter: the
        socket was admitted at its handshake)."""
        opening = super().opening(msg)
        if opening is None:
            return None
        if len(opening.options["stream_sid"]) > 64:
            raise Refused("start without streamSid", CLOSE_PROTOCOL)
        fmt = msg["start"].get("mediaFormat") if isinstance(msg["start"].get("mediaFormat"), dict) else {}
        if fmt and (fmt.get("encoding") != "audio/x-mulaw" or str(fmt.get("sampleRate")) != "8000"):
            raise Refused("media format is not audio/x-mulaw at 8000 Hz", CLOSE_PROTOCOL)
        return Opening(options=opening.options)

    def ready(self) -> dict:
        ctx = self.ctx
        return {"event": "studio", "kind": "ready", "agent": ctx.agent_name, "provider": ctx.provider,
                "provider_class": type(self.engine.provider).__name__,
                "actions": [{"name": a.name, "destination": a.destination} for a in ctx.actions]}

    def __init__(self, engine, send, *, stream_sid: str):
        super().__init__(engine, send, stream_sid=stream_sid)
        self._outbox: deque[dict] = deque()
        # Per-turn latency: from the start (greeting) or the caller's last turn to the agent's next audio frame.
        self._waiting_since: tuple[str, float] | None = ("start", time.monotonic())
        self.latencies: list[tuple[str, int]] = []
        self._last_item: str | None = None
        self.after_event = self._flush  # turns queued while the engine handled an event go out after it

    def studio(self, kind: str, **data) -> None:
        """Queue a Studio message for the browser (sent in order after the event being handled)."""
        self._outbox.append({"event": "studio", "kind": kind, **data})

    async def _flush(self) -> None:
        while self._outbox:
            await self.send(self._outbox.popleft())

    # -- what the browser is shown ---------------------------------------------------

    def turn_recorded(self, role: str, text: str, heard: bool) -> None:
        self.studio("turn", role=role, text=text, heard=heard)
        if role == "caller":
            self._waiting_since = ("caller", time.monotonic())

    async def receive(self, msg: dict) -> None:
        await super().receive(msg)
        await self._flush()

    async def audio_out(self, event) -> None:
        if self._waiting_since is not None:
            after, since = self._waiting_since
            self._waiting_since = None
            # A reply already under way when the caller's turn was recorded (a provider whose transcript of the
            # caller comes late) has no latency to show: measuring to its next frame would be wrong.
            if not event.item_id or event.item_id != self._last_item:
                ms = round((time.monotonic() - since) * 1000)
                self.latencies.append((after, ms))
                await self._flush()
                await self.send({"event": "studio", "kind": "latency", "ms": ms, "after": after})
        self._last_item = event.item_id
        await super().audio_out(event)

    # -- the outside world, shown instead ------------------------------------------------

    async def handover_shown(self, action, event) -> None:
        await self._flush()
        await self.send({"event": "studio", "kind": "handover", "action": action.name,
                         "destination": action.destination, "description": action.description,
                         "by": getattr(event, "by", "")})
        await self.playout()  # the agent's "let me transfer you" plays out, as on a call

    async def hangup(self, event) -> None:
        await self._flush()
        await self.send({"event": "studio", "kind": "hangup"})
        await self.playout()

    async def apologise(self, event) -> None:
        message = (event.detail or {}).get("message") or f"The agent provider failed ({event.reason})."
        fallback = self.ctx.fallback_action()
        await self._flush()
        await self.send({"event": "studio", "kind": "error", "message": message,
                         "fallback": fallback.name if fallback else "hangup"})
        # The apology prompt plays, as on a call; with no Twilio credentials in the context nothing is redirected.
        await super().apologise(event)
