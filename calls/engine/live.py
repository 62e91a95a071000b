"""Live calls of this process: Studio listeners (audio fan-out) and the live view's events.

- `REGISTRY` maps a call session id to its running engine (registered when the engine starts, removed when it
  closes). Listen and intervene look calls up here; a call runs in exactly one process (its Twilio websocket).
- `Listener`: one supervisor's browser. The call's task hands it audio frames with `put_nowait` into a bounded
  queue: a slow listener loses frames (counted), the call never waits. With no listener the call pays one
  truth test per frame.
- `RemoteListener`: a listener whose browser is connected to another process. It joins through the call's control
  group; its own task forwards the queued frames to that process's channel (the same drop-when-behind queue, so
  the call never waits on the channel layer either). Events reach it through the workspace group instead.
- `publish(workspace_id, event)`: an event for the workspace's live view, through the channel layer group
  `calls-ws-<workspace id>` (in-memory in dev/tests: one process only; Redis in production). Called from the
  call's side task, never from the audio path.
"""
from __future__ import annotations

import asyncio
import logging
import weakref

logger = logging.getLogger("calls.engine")

REGISTRY: dict[int, object] = {}

LISTENER_QUEUE = 100  # items (20 ms frames of either side, and events): about 1 s of both sides
TRACK_CALLER = 0
TRACK_AGENT = 1


def workspace_group(workspace_id) -> str:
    return f"calls-ws-{int(workspace_id)}"


def call_group(call_session_id) -> str:
    """Interventions for a call running in another process reach its engine through this group."""
    return f"call-ctl-{int(call_session_id)}"


class Listener:
    def __init__(self, maxsize: int = LISTENER_QUEUE):
        self.queue: asyncio.Queue = asyncio.Queue(maxsize=maxsize)
        self.dropped = 0

    def audio(self, track: int, payload_b64: str) -> None:
        """From the call's task: never blocks; drops the frame when this listener is behind."""
        try:
            self.queue.put_nowait(("audio", track, payload_b64))
        except asyncio.QueueFull:
            self.dropped += 1

    def event(self, message: dict) -> None:
        """Transcript turns, handovers, the end: make room by dropping the oldest item if needed."""
        try:
            self.queue.put_nowait(("event", message))
        except asyncio.QueueFull:
            try:
                self.queue.get_nowait()
                self.dropped += 1
            except asyncio.QueueEmpty:
                pass
            try:
                self.queue.put_nowait(("event", message))
            except asyncio.QueueFull:
                self.dropped += 1


class RemoteListener(Listener):
    """A Studio listener in another process, fed through the channel layer (`listen.audio` messages)."""

    MAX_SEND_FAILURES = 50  # about a second of frames the other side could not take: it is gone

    def __init__(self, layer, channel: str, maxsize: int = LISTENER_QUEUE):
        super().__init__(maxsize)
        self.layer, self.channel = layer, channel
        self.task: asyncio.Task | None = None
        self.gone = False

    def event(self, message: dict) -> None:
        """Remote listeners get the call's events from the workspace group already."""

    async def pump(self) -> None:
        failures = 0
        while failures < self.MAX_SEND_FAILURES:
            _, track, payload = await self.queue.get()
            try:
                await self.layer.send(self.channel, {"type": "listen.audio", "track": track, "payload": payload})
                failures = 0
            except Exception:  # noqa: BLE001 - ChannelFull or a broken layer: drop the frame, never the call
                self.dropped += 1
                failures += 1
        self.gone = True


def get(call_session_id) -> object | None:
    return REGISTRY.get(int(call_session_id)) if call_session_id else None


# At most this many of a process's calls publish at once; the others wait their turn (in their side task, never the
# audio path). The Redis client's pool holds 100 connections and refuses the 101st at once (MaxConnectionsError):
# 300 calls ending turns together lost their live events before this bound.
PUBLISH_CONCURRENCY = 32
_publish_slots: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore]" = weakref.WeakKeyDictionary()


def _slots() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    slots = _publish_slots.get(loop)
    if slots is None:
        slots = _publish_slots[loop] = asyncio.Semaphore(PUBLISH_CONCURRENCY)
    return slots


async def publish(workspace_id, event: dict) -> None:
    """Send an event to the workspace's live view group. Failures are logged, never raised."""
    if not workspace_id:
        return
    try:
        from channels.layers import get_channel_layer

        layer = get_channel_layer()
        if layer is None:
            return
        async with _slots():
            await layer.group_send(workspace_group(workspace_id), {"type": "call.event", "event": event})
    except Exception as exc:  # noqa: BLE001 - monitoring must never break a call
        logger.warning("could not publish a live call event", extra={"kind": event.get("kind"),
                                                                     "error": type(exc).__name__})
