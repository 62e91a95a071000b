"""The per-call engine: one asyncio task per call pumps the provider's events to the call's wire adapter.

The engine owns the call (the provider, turn-taking events, the transcript, handovers and their records, API
actions, interventions, persistence, the one failure path) and knows no wire format. Each transport is a small
adapter in `calls/engine/wires/` (messages in -> engine/provider calls; engine events -> messages out), looked up
by name in `wires.WIRES`; `call_open(name, ctx, send, ...)` builds the pair. `calls.consumers` wires them to
Channels. Database and gateway work happens only at admission, on handovers / hang-up / failure and at the end,
never per audio frame (`database_sync_to_async` for the DB, `asyncio.to_thread` for the gateway).
"""
from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timezone
from typing import Awaitable, Callable

from channels.db import database_sync_to_async

from calls.engine import live, recording, wires
from calls.engine.actions import ApiActionRunner
from calls.engine.context import CallContext
from calls.engine.events import (
    AudioOut,
    Handover,
    Hangup,
    Instruction,
    PlayAudio,
    ProviderFailed,
    ReplyDone,
    RunAction,
    SearchKnowledge,
    SpeechStarted,
    Takeover,
    TextOut,
    Transcript,
    TurnLatency,
)
from calls.engine.monitoring import SUPERVISOR_TRANSFER, LiveCallMonitoring
from calls.providers import ProviderConfigError, get_provider
from calls.providers.base import UnavailableProvider

logger = logging.getLogger("calls.engine")

START_TIMEOUT = 10.0  # seconds for a provider to connect and configure itself


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat()

Send = Callable[[dict], Awaitable[None]]


class CallEngine(LiveCallMonitoring, ApiActionRunner):
    """One call: the provider's events to the wire adapter and the adapter's messages to the provider.

    The wire (`calls/engine/wires/`) translates messages; live monitoring (transcript storage, live view,
    listeners, interventions) is `monitoring.LiveCallMonitoring`, API actions `actions.ApiActionRunner`, the
    recording `recording.py`; failures take one path (`on_failure` -> the wire's `apologise` -> `finish`)."""

    def __init__(self, ctx: CallContext, *, provider=None):
        self.ctx = ctx
        if provider is None:
            try:
                provider = get_provider(ctx)
            except ProviderConfigError as exc:
                provider = UnavailableProvider(ctx, str(exc))
        self.provider = provider
        self.wire = None  # attached by call_open
        self.transport = "base"
        # (role, text, heard, started at as a unix time); stored as the call goes (a side task), not at the end.
        self.turns: list[tuple[str, str, bool, float]] = []
        self.handovers: list[str] = []
        self.task: asyncio.Task | None = None
        self.closed = False
        self.failed_reason = ""
        self._on_finish: Callable[[], Awaitable[None]] | None = None
        self._after_event: Callable[[], Awaitable[None]] | None = None
        # Calls in Studio: a phone call (not a test chat) is live-monitored, listened to and stored as it goes.
        self.live = bool(ctx.call_session_id) and not ctx.test_mode
        self.listeners: set = set()  # live.Listener objects; the audio path only tests this set for truth
        self._turn_start: dict[str, float] = {}
        self._latency: dict | None = None  # the next agent turn's latency (TurnLatency), stored with it
        self._stored = 0
        self._jobs: asyncio.Queue | None = None
        self._side: asyncio.Task | None = None
        self._recording: asyncio.Task | None = None
        self._control: asyncio.Task | None = None
        self._failure_noted = False
        self._taken_over = False  # a supervisor's take-over / transfer / end is queued: refuse a second one
        # API actions: each run is a task of its own (the receive loop and the provider go on meanwhile).
        self._actions_init()

    def attach(self, wire) -> None:
        """The call's wire adapter: its `receive` is the engine's `handle` (no extra hop per message)."""
        self.wire = wire
        self.transport = wire.transport
        self.handle = wire.receive
        self._after_event = wire.after_event

    def log_extra(self, **more) -> dict:
        return {"call_sid": self.ctx.call_sid, "transport": self.transport, "provider": self.ctx.provider, **more}

    # -- lifecycle ----------------------------------------------------------------

    def start(self, on_finish: Callable[[], Awaitable[None]] | None = None) -> asyncio.Task:
        self._on_finish = on_finish
        if self.live:
            # Side work (storing turns, live-view events) runs in its own task, in order, off the audio path.
            self._jobs = asyncio.Queue()
            self._side = asyncio.create_task(self._side_loop(), name=f"call-side-{self.ctx.call_sid}")
            live.REGISTRY[self.ctx.call_session_id] = self
            self._control = asyncio.create_task(self._control_loop(), name=f"call-ctl-{self.ctx.call_sid}")
            self._later("publish", {"kind": "start", "call": self.monitor_info()})
            if self.ctx.recording_enabled and self.ctx.creds is not None and self.ctx.call_sid:
                self._recording = asyncio.create_task(recording.recording_start(self),
                                                      name=f"call-rec-{self.ctx.call_sid}")
        self.task = asyncio.create_task(self._run(), name=f"call-{self.ctx.call_sid or 'test'}")
        if self.ctx.api_actions:
            self._action_client()
        return self.task

    # -- the transcript (stored as the call goes by the side task: calls/engine/monitoring.py) ----------

    def turn_started(self, role: str) -> None:
        if role not in self._turn_start:
            self._turn_start[role] = time.time()

    def cut_reply(self, heard: str) -> None:
        """Barge-in on a reply whose transcript turn is recorded already: that one turn becomes what the caller
        heard (marked not heard in full), instead of a second copy. A reply not recorded yet gets its heard part."""
        for i in range(len(self.turns) - 1, -1, -1):
            role, text, was_heard, *rest = self.turns[i]
            if role == "caller":
                break
            if role == "agent" and was_heard:
                self.turns[i] = (role, heard, False, *rest)
                if i < self._stored:  # already stored: the side task updates the row (turns are stored in order)
                    self._later("cut", (i + 1, heard))
                if self.live:
                    self.notify({"kind": "turn", "role": role, "text": heard, "heard": False, "cut": True,
                                 "started_at": _iso(rest[0]) if rest else None})
                return
        self.record_turn("agent", heard, False)

    def record_turn(self, role: str, text: str, heard: bool = True) -> None:
        """A transcript turn: kept, shown to listeners and the live view, and stored by the side task."""
        started = self._turn_start.pop(role, None) or time.time()
        latency = None
        if role == "agent" and self._latency is not None:
            latency, self._latency = self._latency, None
        self.turns.append((role, text, heard, started, latency))
        self.wire.turn_recorded(role, text, heard)
        if self.live:
            self.notify({"kind": "turn", "role": role, "text": text, "heard": heard, "started_at": _iso(started)})
            self._later("flush")

    async def _run(self) -> None:
        try:
            try:
                await asyncio.wait_for(self.provider.start(), START_TIMEOUT)
            except ProviderConfigError as exc:
                logger.warning("agent provider could not start", extra=self.log_extra(reason=str(exc)))
                await self.on_failure(ProviderFailed("config", {"message": str(exc)}))
                return
            except asyncio.TimeoutError:
                logger.warning("agent provider timed out while starting", extra=self.log_extra())
                await self.on_failure(ProviderFailed("timeout"))
                return
            except (OSError, Exception) as exc:  # noqa: BLE001 - any upstream failure gets the apology path
                logger.warning("agent provider failed to start", extra=self.log_extra(error=type(exc).__name__))
                await self.on_failure(ProviderFailed("connection", {"error": type(exc).__name__}))
                return
            while not self.closed:
                event = await self.provider.events.get()
                if event is None:
                    break
                await self.dispatch(event)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("call runtime crashed", extra=self.log_extra())
            if not self.closed:
                await self.on_failure(ProviderFailed("internal"))

    async def dispatch(self, event) -> None:
        wire = self.wire
        if isinstance(event, AudioOut):
            if "agent" not in self._turn_start:
                self._turn_start["agent"] = time.time()
            await wire.audio_out(event)
        elif isinstance(event, TextOut):
            if "agent" not in self._turn_start and event.token:
                self._turn_start["agent"] = time.time()
            await wire.text_out(event)
        elif isinstance(event, ReplyDone):
            await wire.reply_done(event)
        elif isinstance(event, PlayAudio):
            self.record_turn("agent", f"(played {event.source})")
            await wire.play(event)
        elif isinstance(event, SpeechStarted):
            self.turn_started("caller")
            await wire.speech_started()
        elif isinstance(event, Transcript):
            if event.text:
                await wire.transcript(event)
                self.record_turn(event.role, event.text, event.heard)
        elif isinstance(event, Handover):
            action = self.ctx.action(event.action_name)
            if action is None:
                logger.warning("agent chose an unknown handover action", extra=self.log_extra(action=event.action_name))
                await self.provider.on_tool_result(event.call_id, f"There is no handover action named {event.action_name!r}.")
                return
            self.handovers.append(action.name)
            self.record_turn("event", f"Handover: {action.name} → {action.destination}")
            self.notify({"kind": "handover", "action": action.name, "destination": action.destination, "by": ""})
            await self.hand_over(action, event)
        elif isinstance(event, RunAction):
            await self.on_run_action(event)
        elif isinstance(event, SearchKnowledge):
            await self.on_search_knowledge(event)
        elif isinstance(event, Takeover):
            action = event.action
            self.handovers.append(action.name)
            what = "transferred the call to" if action.name == SUPERVISOR_TRANSFER else f"took over: {action.name} →"
            self.record_turn("event", f"{event.by or 'A supervisor'} {what} {action.destination}")
            self.notify({"kind": "handover", "action": action.name, "destination": action.destination,
                         "by": event.by})
            logger.info("supervisor took over the call", extra=self.log_extra(action=action.name))
            await self.hand_over(action, event)
        elif isinstance(event, Instruction):
            self.record_turn("event", f"{event.by or 'A supervisor'} instructed the agent: {event.text}")
            await self.provider.on_instruction(event.text)
        elif isinstance(event, Hangup):
            who = (event.reason.removeprefix("supervisor:") or "A supervisor") if event.reason.startswith("supervisor") \
                else "The agent"
            self.record_turn("event", f"{who} ended the call")
            await wire.hangup(event)
            await self.finish("agent_hangup" if wire.dials else "hangup_shown")
        elif isinstance(event, TurnLatency):
            self._latency = {"latency_ms": event.total_ms, "recognition_ms": event.recognition_ms,
                             "first_token_ms": event.first_token_ms, "first_byte_ms": event.first_byte_ms}
        elif isinstance(event, ProviderFailed):
            logger.warning("agent provider failed", extra=self.log_extra(reason=event.reason))
            await self.on_failure(event)
        if self._after_event is not None:
            await self._after_event()

    # -- what the wire reports (messages in) ------------------------------------------

    async def caller_key(self, digit: str) -> None:
        """A key the caller pressed (already checked to be one of 0-9 * # A-D by the wire)."""
        self.record_turn("caller", f"(pressed {digit})")
        await self.provider.on_dtmf(digit)

    async def barge_in_audio(self, *, item_id: str, heard_ms: int, sent_ms: int) -> None:
        """The caller spoke over the agent's audio; the wire has emptied the far end's buffer."""
        self.record_turn("agent", f"(interrupted: the caller heard {heard_ms} of {sent_ms} ms)", False)
        logger.info("barge-in: cleared queued agent audio", extra=self.log_extra(heard_ms=heard_ms, sent_ms=sent_ms))
        await self.provider.on_interrupt(heard_ms=heard_ms, item_id=item_id)

    async def barge_in_text(self, heard: str) -> None:
        """The far end (ConversationRelay) stopped speaking the agent's reply: `heard` is what was said of it."""
        self.cut_reply(heard)
        await self.provider.on_interrupt(heard_text=heard)

    # -- handovers (the records here; the wire dials, ends its session, or shows them) -------------------

    async def hand_over(self, action, event) -> None:
        from calls.models import CallHandover
        from calls.services import handovers as ho

        wire = self.wire
        if not wire.dials:  # Studio: shown, never dialled
            await wire.handover_shown(action, event)
            await self.finish("handover_shown")
            return
        await wire.playout()
        kind = getattr(action, "kind", "cold")
        transport = wire.handover_transport
        twiml = None
        if kind == "agent":  # another agent takes the call with the conversation so far
            from calls.services import transfers

            await self._flush_turns()
            record, twiml = await database_sync_to_async(transfers.agent_handoff)(
                call_session_id=self.ctx.call_session_id, action=action, transport=transport)
            if twiml is None:
                await self._agent_unavailable(action, event)
                return
        elif kind == "warm":  # the caller holds; the person is briefed (calls.services.transfers)
            from calls.services import transfers

            record = await database_sync_to_async(transfers.warm_handover_record)(
                call_session_id=self.ctx.call_session_id, action=action, transport=transport)
        elif kind == "reps":  # the dialer's reps ring in the browser (calls.services.rep_transfers)
            from calls.services import rep_transfers

            await self._flush_turns()  # the ringing card shows the transcript so far
            record = await database_sync_to_async(rep_transfers.reps_handover_record)(
                call_session_id=self.ctx.call_session_id, action=action, transport=transport)
        else:
            record = await database_sync_to_async(ho.handover_record)(
                call_session_id=self.ctx.call_session_id, action=action, transport=transport)
        outcome = await wire.hand_over(action, record, twiml)
        if outcome is not None and kind != "agent" and outcome != CallHandover.Outcome.PENDING:
            await database_sync_to_async(ho.handover_outcome_set)(handover_id=record.pk, outcome=outcome)
        if outcome == CallHandover.Outcome.NOT_REDIRECTED:
            await self.on_failure(ProviderFailed("handover_redirect_failed"))
            return
        await self.finish("handover")

    async def close(self, reason: str = "closed") -> None:
        """Free everything: the call task, the provider, and store the transcript. Safe to call twice."""
        if self.closed:
            return
        self.closed = True
        await self._actions_stop()
        current = asyncio.current_task()
        if self.task is not None and self.task is not current and not self.task.done():
            self.task.cancel()
            try:
                await self.task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
        try:
            await asyncio.wait_for(self.provider.close(), 5)
        except (asyncio.TimeoutError, Exception):  # noqa: BLE001
            logger.warning("agent provider did not close cleanly", extra=self.log_extra())
        if self.failed_reason and not self._failure_noted:
            self._failure_noted = True
            self.record_turn("event", f"The agent failed ({self.failed_reason}); the caller heard an apology")
        turns = len(self.turns)
        await self.persist()
        logger.info("call runtime closed", extra=self.log_extra(reason=reason, turns=turns))

    async def persist(self) -> None:
        if self.live:
            from calls.services import handovers as handover

            live.REGISTRY.pop(self.ctx.call_session_id, None)
            if self._control is not None:
                self._control.cancel()
            if self._side is not None:
                self._jobs.put_nowait(None)
                try:
                    await asyncio.wait_for(asyncio.shield(self._side), 5)
                except (asyncio.TimeoutError, Exception):  # noqa: BLE001
                    self._side.cancel()
            try:
                await self._flush_turns()
                await database_sync_to_async(handover.call_session_ended)(call_session_id=self.ctx.call_session_id,
                                                                          runtime_error=self.failed_reason)
            except Exception:  # noqa: BLE001 - a lost transcript must not break the close path
                logger.exception("could not store the call transcript", extra=self.log_extra())
            end = {"kind": "end", "call_id": self.ctx.call_session_id, "error": self.failed_reason}
            for listener in self.listeners:
                listener.event(end)
            await live.publish(self.ctx.workspace_id, end)

    async def _agent_unavailable(self, action, event) -> None:
        """An another-agent handover whose agent cannot take calls: the call stays with this agent."""
        self.record_turn("event", f"Handover {action.name}: that agent cannot take calls; the call stays here")
        if getattr(event, "call_id", ""):
            await self.provider.on_tool_result(event.call_id, "That agent cannot take calls right now; help the "
                                                              "caller yourself.")

    async def finish(self, reason: str) -> None:
        """The engine decided the call is over on its side (handover, hang-up, failure)."""
        await self.close(reason)
        if self._after_event is not None:  # what the wire still holds for the far end goes before the socket closes
            await self._after_event()
        if self._on_finish is not None:
            await self._on_finish()

    async def on_action_done(self, run: dict) -> None:
        await self.wire.action_done(run)

    async def on_failure(self, event: ProviderFailed) -> None:
        """The one failure path (a provider that cannot start, fails mid-call, a crash, a failed redirect): once
        per call, the wire's `apologise` (never dead air), then the call ends (the test chat stays open)."""
        if self.failed_reason:
            return
        self.failed_reason = event.reason
        await self.wire.apologise(event)
        if self.wire.ends_on_failure:
            await self.finish(f"provider_failed:{event.reason}")


def call_open(wire: str, ctx: CallContext, send: Send, *, provider=None, **options) -> CallEngine:
    """A call's engine with its wire adapter (`wires.WIRES[wire]`, built with `options`, e.g. `stream_sid`)."""
    engine = CallEngine(ctx, provider=provider)
    engine.attach(wires.wire_class(wire)(engine, send, **options))
    return engine
