"""A live call in Studio: its transcript stored as it goes, the live view's events, listeners and interventions.

`LiveCallMonitoring` is part of every `CallEngine` (calls/engine/engine.py); it is on only for a phone call
(`engine.live`: a call session, not a test). It owns:
- the side task (`_side_loop`): handing transcript turns to the process's batched writer (`persistence.py`),
  storing API-action runs, publishing live-view events, in order, off the audio path;
- listeners (`engine.listeners`, `live.Listener`): each caller / agent frame offered with `put_nowait`;
- the control loop (`_control_loop`): the call's channel-layer group, through which a Studio listener connected to
  another process joins (`call.listen`, a `live.RemoteListener` forwarding audio there) and intervenes. A channel
  layer failure (Redis timeout or restart) is logged once and the loop joins again with a backoff;
- interventions (`intervene`): take-over, transfer, instruction, end, queued on the provider's event queue so the
  call's task handles them in order.
"""
from __future__ import annotations

import asyncio
import logging

from channels.db import database_sync_to_async

from calls.engine import live, persistence
from calls.engine.context import HandoverActionSpec
from calls.engine.events import Hangup, Instruction, Takeover

logger = logging.getLogger("calls.engine")

SUPERVISOR_TRANSFER = "supervisor_transfer"  # the action name recorded for a transfer to a typed number
CONTROL_RETRY = 0.05  # seconds before the control loop joins its group again after a channel layer failure
CONTROL_RETRY_MAX = 2.0


class LiveCallMonitoring:
    def monitor_info(self) -> dict:
        return {**self.ctx.monitor, "transport": self.transport}

    def _later(self, kind: str, data=None) -> None:
        if self._jobs is not None:
            self._jobs.put_nowait((kind, data))

    async def _side_loop(self) -> None:
        while True:
            job = await self._jobs.get()
            if job is None:
                return
            kind, data = job
            try:
                if kind == "flush":
                    self._queue_turns()
                elif kind == "action":
                    from calls.services import handovers as handover

                    await database_sync_to_async(handover.action_run_record)(
                        call_session_id=self.ctx.call_session_id, run=data)
                elif kind == "publish":
                    await live.publish(self.ctx.workspace_id, data)
                elif kind == "cut":
                    seq, text = data
                    persistence.writer().cut(self.ctx.call_session_id, seq, text)
            except Exception:  # noqa: BLE001 - side work must never end the call
                logger.exception("call side task: %s failed", kind, extra=self.log_extra())

    async def _control_loop(self) -> None:
        """Interventions sent by a Studio listener in another process (channel layer group of this call)."""
        from channels.layers import get_channel_layer

        layer = get_channel_layer()
        if layer is None:
            return
        group = live.call_group(self.ctx.call_session_id)
        channel = None
        failures = 0
        try:
            while True:
                try:
                    if channel is None:
                        channel = await layer.new_channel()
                        await layer.group_add(group, channel)
                    msg = await layer.receive(channel)
                    failures = 0
                    await self._control_message(layer, msg)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - a layer hiccup (Redis timeout, restart): join again
                    failures += 1
                    if failures == 1:
                        logger.warning("call control loop: channel layer failed; joining again",
                                       extra=self.log_extra(error=type(exc).__name__))
                    # Listeners elsewhere join again with their own control messages; the call goes on meanwhile.
                    await asyncio.sleep(min(CONTROL_RETRY_MAX, CONTROL_RETRY * 2 ** min(failures, 6)))
        except asyncio.CancelledError:
            self._remote_listeners_stop()
            if channel is not None:
                try:
                    await asyncio.shield(layer.group_discard(group, channel))
                except Exception:  # noqa: BLE001 - the group entry expires by itself
                    pass
            raise

    async def _control_message(self, layer, msg: dict) -> None:
        """One message of the call's control group: a remote listener joins or leaves, or an intervention."""
        if msg.get("type") in ("call.listen", "call.unlisten"):
            self._remote_listener(layer, msg)
            return
        if msg.get("type") != "call.intervene":
            return
        problem = self.intervene(kind=str(msg.get("kind")), detail=str(msg.get("detail") or ""),
                                 by=str(msg.get("by") or ""))
        if msg.get("reply_to"):
            await layer.send(msg["reply_to"], {"type": "intervention.result", "problem": problem,
                                               "kind": msg.get("kind"), "ref": msg.get("ref")})

    def _remote_listener(self, layer, msg: dict) -> None:
        """A Studio listener connected to another process joins (`call.listen`) or leaves (`call.unlisten`)."""
        channel = str(msg.get("channel") or "")
        current = next((lst for lst in self.listeners
                        if isinstance(lst, live.RemoteListener) and lst.channel == channel), None)
        if msg["type"] == "call.unlisten" or self.closed or self.transport != "media_streams":
            if current is not None:
                self.listeners.discard(current)
                current.task.cancel()
            return
        if current is None and channel:
            listener = live.RemoteListener(layer, channel)
            listener.task = asyncio.create_task(listener.pump(), name=f"listen-remote-{self.ctx.call_sid}")
            listener.task.add_done_callback(lambda _t, lst=listener: self.listeners.discard(lst))
            self.listeners.add(listener)
            logger.info("remote listener joined a call", extra=self.log_extra(listeners=len(self.listeners)))

    def _remote_listeners_stop(self) -> None:
        for listener in [lst for lst in self.listeners if isinstance(lst, live.RemoteListener)]:
            self.listeners.discard(listener)
            listener.task.cancel()

    def _queue_turns(self) -> None:
        """The new turns to the process's transcript writer (stored with other calls' in its next batch)."""
        pending = self.turns[self._stored:]
        if not pending:
            return
        self._stored += len(pending)
        persistence.writer().append(self.ctx.call_session_id, pending)

    async def _flush_turns(self) -> None:
        """Every turn so far stored now (the call's end, a handover that reads the transcript)."""
        self._queue_turns()
        await persistence.writer().flush_call(self.ctx.call_session_id)

    def notify(self, message: dict) -> None:
        """An event for the call's listeners (at once) and the workspace's live view (through the side task)."""
        if not self.live:
            return
        message = {**message, "call_id": self.ctx.call_session_id}
        for listener in self.listeners:
            listener.event(message)
        self._later("publish", message)

    def _fanout(self, track: int, payload: str) -> None:
        for listener in self.listeners:
            listener.audio(track, payload)

    def intervene(self, *, kind: str, detail: str = "", by: str = "") -> str:
        """A supervisor's intervention, handled in order by the call's own task. Returns "" or why not."""
        if self.closed or self.provider.closed:
            return "The call has already ended."
        if kind in ("takeover", "transfer", "end"):
            if self.handovers or self._taken_over:
                return "The call is already being handed over."
        events = self.provider.events
        if kind == "takeover":
            action = self.ctx.action(detail)
            if action is None:
                return f"This call's agent version has no handover action named {detail!r}."
            events.put_nowait(Takeover(action, by))
        elif kind == "transfer":
            events.put_nowait(Takeover(HandoverActionSpec(SUPERVISOR_TRANSFER, detail, "Transfer by a supervisor"), by))
        elif kind == "instruction":
            events.put_nowait(Instruction(detail, by))
        elif kind == "end":
            events.put_nowait(Hangup(f"supervisor:{by}"))
        else:
            return "Unknown intervention."
        if kind in ("takeover", "transfer", "end"):
            self._taken_over = True
        return ""

