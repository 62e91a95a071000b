"""Call this version in the browser: a Media Streams call whose other end is a Studio admin's browser.

`BrowserCall` is `MediaStreamCall` (same provider from `get_provider(ctx)`, same marks, same `clear` on barge-in)
with what a phone call would do with the outside world replaced by messages to the browser, on the same socket:

    {"event": "studio", "kind": "turn", "role": "caller"|"agent"|"event", "text": …, "heard": bool}
    {"event": "studio", "kind": "latency", "ms": int, "after": "start"|"caller"}  # to the agent's first frame
    {"event": "studio", "kind": "handover", "action": …, "destination": …, "description": …}  # shown, not dialled
    {"event": "studio", "kind": "hangup"}
    {"event": "studio", "kind": "error", "message": …, "fallback": …}

Nothing is dialled, redirected, recorded or stored: the context is a test context (`test_mode`, no call session,
no Twilio credentials), so the engine's live monitoring and storage are off, and the handover / hang-up hooks here
never reach `calls.services.handovers`.
"""
from __future__ import annotations

import time
from collections import deque

from calls.engine.engine import MediaStreamCall
from calls.engine.events import AudioOut, Handover, Hangup, ProviderFailed


class BrowserCall(MediaStreamCall):
    transport = "media_streams"

    def __init__(self, ctx, send, *, stream_sid: str, provider=None):
        super().__init__(ctx, send, stream_sid=stream_sid, provider=provider)
        self._outbox: deque[dict] = deque()
        # Per-turn latency: from the start (greeting) or the caller's last turn to the agent's next audio frame.
        self._waiting_since: tuple[str, float] | None = ("start", time.monotonic())
        self.latencies: list[tuple[str, int]] = []
        self._last_item: str | None = None

    def studio(self, kind: str, **data) -> None:
        """Queue a Studio message for the browser (sent in order after the event being handled)."""
        self._outbox.append({"event": "studio", "kind": kind, **data})

    async def _flush(self) -> None:
        while self._outbox:
            await self.send(self._outbox.popleft())

    # -- what the browser is shown ---------------------------------------------------

    def record_turn(self, role: str, text: str, heard: bool = True) -> None:
        super().record_turn(role, text, heard)
        self.studio("turn", role=role, text=text, heard=heard)
        if role == "caller":
            self._waiting_since = ("caller", time.monotonic())

    async def handle(self, msg: dict) -> None:
        await super().handle(msg)
        await self._flush()

    async def dispatch(self, event) -> None:
        await super().dispatch(event)
        await self._flush()

    async def on_audio_out(self, event: AudioOut) -> None:
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
        await super().on_audio_out(event)

    # -- the outside world, shown instead ------------------------------------------------

    async def on_handover(self, action, event: Handover) -> None:
        await self._flush()
        await self.send({"event": "studio", "kind": "handover", "action": action.name,
                         "destination": action.destination, "description": action.description,
                         "by": getattr(event, "by", "")})
        await self._wait_playout()  # the agent's "let me transfer you" plays out, as on a call
        await self.finish("handover_shown")

    async def on_hangup(self, event: Hangup) -> None:
        await self._flush()
        await self.send({"event": "studio", "kind": "hangup"})
        await self._wait_playout()
        await self.finish("hangup_shown")

    async def apologise(self, event: ProviderFailed) -> None:
        message = (event.detail or {}).get("message") or f"The agent provider failed ({event.reason})."
        fallback = self.ctx.fallback_action()
        await self._flush()
        await self.send({"event": "studio", "kind": "error", "message": message,
                         "fallback": fallback.name if fallback else "hangup"})
        # The apology prompt plays, as on a call; with no Twilio credentials in the context nothing is redirected.
        await super().apologise(event)

    async def finish(self, reason: str) -> None:
        await self.close(reason)
        await self._flush()
        if self._on_finish is not None:
            await self._on_finish()
