"""Per-call engines: one asyncio task per call pumps the provider's events to the transport.

The engines are independent of the websocket server: they get parsed messages through `handle()` and
send JSON through the `send` coroutine they were given. `calls.consumers` wires them to Channels.
Database and gateway work happens only at admission, on handovers / hang-up / failure and at the end,
never per audio frame (`database_sync_to_async` for the DB, `asyncio.to_thread` for the gateway).
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections import deque
from datetime import datetime, timezone
from typing import Awaitable, Callable

from channels.db import database_sync_to_async

from calls.engine import audio, live, recording
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
PLAYOUT_WAIT = 3.0  # seconds we let queued agent audio finish before redirecting the call
MARK_EVERY_MS = 100  # a mark after each ~100 ms of agent audio: barge-in knows what was heard to that precision
UNKNOWN_SID_LOG_LIMIT = 3


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat()

Send = Callable[[dict], Awaitable[None]]


class CallEngine(LiveCallMonitoring, ApiActionRunner):
    """One call: the provider's events to the transport and the transport's messages to the provider.

    The transport subclasses below (Media Streams, ConversationRelay, the test chat; the browser call in
    browser.py) translate wire messages; live monitoring (transcript storage, live view, listeners, interventions)
    is `monitoring.LiveCallMonitoring`, API actions `actions.ApiActionRunner`, the recording `recording.py`;
    failures take one path (`on_failure` -> the transport's `apologise`)."""

    transport = "base"

    def __init__(self, ctx: CallContext, send: Send, *, provider=None):
        self.ctx = ctx
        self.send = send
        if provider is None:
            try:
                provider = get_provider(ctx)
            except ProviderConfigError as exc:
                provider = UnavailableProvider(ctx, str(exc))
        self.provider = provider
        # (role, text, heard, started at as a unix time); stored as the call goes (a side task), not at the end.
        self.turns: list[tuple[str, str, bool, float]] = []
        self.handovers: list[str] = []
        self.task: asyncio.Task | None = None
        self.closed = False
        self.failed_reason = ""
        self._on_finish: Callable[[], Awaitable[None]] | None = None
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
        if isinstance(event, AudioOut):
            if "agent" not in self._turn_start:
                self._turn_start["agent"] = time.time()
            await self.on_audio_out(event)
        elif isinstance(event, TextOut):
            if "agent" not in self._turn_start and event.token:
                self._turn_start["agent"] = time.time()
            await self.on_text_out(event)
        elif isinstance(event, ReplyDone):
            await self.on_reply_done(event)
        elif isinstance(event, PlayAudio):
            self.record_turn("agent", f"(played {event.source})")
            await self.on_play(event)
        elif isinstance(event, SpeechStarted):
            self.turn_started("caller")
            await self.on_speech_started()
        elif isinstance(event, Transcript):
            if event.text:
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
            await self.on_handover(action, event)
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
            await self.on_handover(action, event)
        elif isinstance(event, Instruction):
            self.record_turn("event", f"{event.by or 'A supervisor'} instructed the agent: {event.text}")
            await self.provider.on_instruction(event.text)
        elif isinstance(event, Hangup):
            who = (event.reason.removeprefix("supervisor:") or "A supervisor") if event.reason.startswith("supervisor") \
                else "The agent"
            self.record_turn("event", f"{who} ended the call")
            await self.on_hangup(event)
        elif isinstance(event, TurnLatency):
            self._latency = {"latency_ms": event.total_ms, "recognition_ms": event.recognition_ms,
                             "first_token_ms": event.first_token_ms, "first_byte_ms": event.first_byte_ms}
        elif isinstance(event, ProviderFailed):
            logger.warning("agent provider failed", extra=self.log_extra(reason=event.reason))
            await self.on_failure(event)

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
        if self._on_finish is not None:
            await self._on_finish()

    # -- hooks ----------------------------------------------------------------------

    async def on_audio_out(self, event: AudioOut) -> None:
        pass

    async def on_text_out(self, event: TextOut) -> None:
        pass

    async def on_reply_done(self, event: ReplyDone) -> None:
        pass

    async def on_play(self, event: PlayAudio) -> None:
        logger.info("audio URL not played: this transport cannot fetch URLs", extra=self.log_extra())

    async def on_speech_started(self) -> None:
        pass

    async def on_handover(self, action, event: Handover) -> None:
        raise NotImplementedError

    async def on_hangup(self, event: Hangup) -> None:
        raise NotImplementedError

    async def on_failure(self, event: ProviderFailed) -> None:
        """The one failure path (a provider that cannot start, fails mid-call, a crash): once per call, the
        transport's `apologise` (never dead air), which ends the call."""
        if self.failed_reason:
            return
        self.failed_reason = event.reason
        await self.apologise(event)

    async def apologise(self, event: ProviderFailed) -> None:
        raise NotImplementedError


# ---------------------------------------------------------------------------
# Media Streams


_BASE64 = re.compile(r"[A-Za-z0-9+/=]*")


class Rendered(dict):
    """A message with its JSON text already rendered (`text`): the consumer sends that instead of encoding the
    dict again. The agent's audio frames go out this way (up to 50 a second per call)."""

    __slots__ = ("text",)

    def __init__(self, message: dict, text: str):
        super().__init__(message)
        self.text = text


class MediaStreamCall(CallEngine):
    """Bidirectional Media Streams: μ-law in and out, marks to know what was played, `clear` for barge-in."""

    transport = "media_streams"

    def __init__(self, ctx: CallContext, send: Send, *, stream_sid: str, provider=None):
        super().__init__(ctx, send, provider=provider)
        self.stream_sid = stream_sid
        self.marks: deque[tuple[str, str, int]] = deque()  # (name, item_id, ms of that item played once echoed)
        self.played_ms: dict[str, int] = {}
        self.sent_ms: dict[str, int] = {}
        self._unmarked_ms = 0
        self._mark_seq = 0
        self._ignored_marks: set[str] = set()
        self._drained = asyncio.Event()
        self._drained.set()
        self.unknown_sid_frames = 0
        self.frames_in = 0
        self.interruptions: list[tuple[str, int, int]] = []  # (item_id, heard ms, sent ms)
        self._media_head = '{"event":"media","streamSid":%s,"media":{"payload":"' % json.dumps(stream_sid)

    # -- Twilio → us ---------------------------------------------------------------

    async def handle(self, msg: dict) -> None:
        event = msg.get("event")
        if event == "media":
            if msg.get("streamSid") != self.stream_sid:
                self._unknown_sid(msg)
                return
            media = msg.get("media")
            payload = media.get("payload") if isinstance(media, dict) else None
            if not isinstance(payload, str) or media.get("track", "inbound") not in ("inbound", "inbound_track"):
                return
            self.frames_in += 1
            await self.provider.on_audio(payload)
            if self.listeners:
                self._fanout(live.TRACK_CALLER, payload)
        elif event == "mark":
            if msg.get("streamSid") != self.stream_sid:
                self._unknown_sid(msg)
                return
            name = (msg.get("mark") or {}).get("name") if isinstance(msg.get("mark"), dict) else None
            if isinstance(name, str):
                self._mark_played(name)
        elif event == "dtmf":
            if msg.get("streamSid") != self.stream_sid:
                self._unknown_sid(msg)
                return
            digit = (msg.get("dtmf") or {}).get("digit") if isinstance(msg.get("dtmf"), dict) else None
            if isinstance(digit, str) and len(digit) == 1 and digit in "0123456789*#ABCD":
                self.record_turn("caller", f"(pressed {digit})")
                await self.provider.on_dtmf(digit)
        elif event == "stop":
            await self.finish("stop")
        elif event in ("connected", "start"):
            logger.warning("media stream sent a second %s; ignored", event, extra=self.log_extra())
        else:
            logger.warning("media stream message of unknown kind ignored", extra=self.log_extra(kind=str(event)[:32]))

    def _unknown_sid(self, msg: dict) -> None:
        self.unknown_sid_frames += 1
        if self.unknown_sid_frames <= UNKNOWN_SID_LOG_LIMIT:
            logger.warning("media stream message for an unknown streamSid ignored",
                           extra=self.log_extra(stream_sid=str(msg.get("streamSid"))[:64], kind=str(msg.get("event"))[:16]))

    def _mark_played(self, name: str) -> None:
        if name in self._ignored_marks:
            self._ignored_marks.discard(name)  # echoed after a clear: never played
            return
        # Marks come back in the order we sent them: everything up to this one has played.
        while self.marks:
            mark, item_id, item_ms = self.marks.popleft()
            if item_id:
                self.played_ms[item_id] = item_ms
            if mark == name:
                break
        if not self.marks:
            self._drained.set()

    # -- provider → Twilio -----------------------------------------------------------

    async def on_audio_out(self, event: AudioOut) -> None:
        message = {"event": "media", "streamSid": self.stream_sid, "media": {"payload": event.payload}}
        if _BASE64.fullmatch(event.payload):  # rendered once here, not by json.dumps per frame
            message = Rendered(message, self._media_head + event.payload + '"}}')
        await self.send(message)
        if self.listeners:
            self._fanout(live.TRACK_AGENT, event.payload)
        if event.item_id:
            ms = audio.duration_ms(event.payload)
            self.sent_ms[event.item_id] = self.sent_ms.get(event.item_id, 0) + ms
            self._unmarked_ms += ms
            if self._unmarked_ms >= MARK_EVERY_MS:
                await self._mark(event.item_id)

    async def on_reply_done(self, event: ReplyDone) -> None:
        if self._unmarked_ms and event.item_id:
            await self._mark(event.item_id)

    async def _mark(self, item_id: str) -> None:
        self._mark_seq += 1
        name = f"m{self._mark_seq}"
        self._unmarked_ms = 0
        self.marks.append((name, item_id, self.sent_ms.get(item_id, 0)))
        self._drained.clear()
        await self.send({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}})

    async def on_speech_started(self) -> None:
        """Barge-in: empty Twilio's buffer and tell the provider how much of its reply was heard."""
        if not self.marks:
            return
        item_id = self.marks[0][1]
        heard = self.played_ms.get(item_id, 0)
        for name, _, _ in self.marks:
            self._ignored_marks.add(name)
        self.marks.clear()
        self._drained.set()
        self._unmarked_ms = 0
        await self.send({"event": "clear", "streamSid": self.stream_sid})
        sent = self.sent_ms.get(item_id, 0)
        self.interruptions.append((item_id, heard, sent))
        self.record_turn("agent", f"(interrupted: the caller heard {heard} of {sent} ms)", False)
        logger.info("barge-in: cleared queued agent audio", extra=self.log_extra(heard_ms=heard, sent_ms=sent))
        await self.provider.on_interrupt(heard_ms=heard, item_id=item_id)

    async def _wait_playout(self) -> None:
        try:
            await asyncio.wait_for(self._drained.wait(), PLAYOUT_WAIT)
        except asyncio.TimeoutError:
            pass

    # -- handover, hang-up, failure --------------------------------------------------

    async def on_handover(self, action, event: Handover) -> None:
        from calls.models import CallHandover
        from calls.services import handovers as ho

        await self._wait_playout()
        if getattr(action, "kind", "cold") == "agent":  # another agent takes the call with the conversation so far
            from calls.services import transfers

            await self._flush_turns()
            record, twiml = await database_sync_to_async(transfers.agent_handoff)(
                call_session_id=self.ctx.call_session_id, action=action,
                transport=CallHandover.Transport.MEDIA_STREAMS)
            if twiml is None:
                await self._agent_unavailable(action, event)
                return
            outcome = await asyncio.to_thread(transfers.caller_redirect, ctx=self.ctx, twiml=twiml)
            if outcome == CallHandover.Outcome.NOT_REDIRECTED:
                await self.on_failure(ProviderFailed("handover_redirect_failed"))
                return
            await self.finish("handover")
            return
        if getattr(action, "kind", "cold") == "warm":  # the caller holds; the person is briefed (calls.services.transfers)
            from calls.services import transfers

            record = await database_sync_to_async(transfers.warm_handover_record)(
                call_session_id=self.ctx.call_session_id, action=action,
                transport=CallHandover.Transport.MEDIA_STREAMS)
            outcome = await asyncio.to_thread(transfers.warm_transfer_start, ctx=self.ctx, handover_id=record.pk)
        elif getattr(action, "kind", "cold") == "reps":  # the dialer's reps ring (calls.services.rep_transfers)
            from calls.services import rep_transfers

            await self._flush_turns()
            record = await database_sync_to_async(rep_transfers.reps_handover_record)(
                call_session_id=self.ctx.call_session_id, action=action,
                transport=CallHandover.Transport.MEDIA_STREAMS)
            outcome = await asyncio.to_thread(rep_transfers.reps_transfer_start, ctx=self.ctx, handover_id=record.pk)
        else:
            record = await database_sync_to_async(ho.handover_record)(
                call_session_id=self.ctx.call_session_id, action=action,
                transport=CallHandover.Transport.MEDIA_STREAMS)
            outcome = await asyncio.to_thread(ho.redirect_to_dial, ctx=self.ctx, action=action, handover_id=record.pk)
        if outcome != CallHandover.Outcome.PENDING:
            await database_sync_to_async(ho.handover_outcome_set)(handover_id=record.pk, outcome=outcome)
        if outcome == CallHandover.Outcome.NOT_REDIRECTED:
            await self.on_failure(ProviderFailed("handover_redirect_failed"))
            return
        # Twilio now leaves the <Connect>: it sends `stop` and closes the socket.
        await self.finish("handover")

    async def on_hangup(self, event: Hangup) -> None:
        from calls.services import handovers as ho

        await self._wait_playout()
        try:
            ended = await asyncio.to_thread(ho.call_hangup, ctx=self.ctx)
        except Exception as exc:  # noqa: BLE001
            logger.warning("agent hang-up failed", extra=self.log_extra(error=type(exc).__name__))
            ended = False
        logger.info("agent hung up", extra=self.log_extra(already_ended=not ended))
        await self.finish("agent_hangup")

    async def apologise(self, event: ProviderFailed) -> None:
        """Never dead air: the apology prompt plays at once, then the call goes to TwiML <Say> + fallback."""
        from calls.services import handovers as ho

        try:
            for payload in audio.chunks_b64(audio.prompt("apology"), chunk_ms=200):
                await self.send({"event": "media", "streamSid": self.stream_sid, "media": {"payload": payload}})
            self.marks.append(("apology", "", 0))
            self._drained.clear()
            await self.send({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": "apology"}})
        except Exception:  # noqa: BLE001 - the socket may be gone; the redirect still happens
            pass
        if self.ctx.creds is not None and self.ctx.call_sid:
            twiml = await database_sync_to_async(ho.fallback_twiml_for_context)(ctx=self.ctx)
            await self._wait_playout()
            await asyncio.to_thread(ho.redirect_after_failure, ctx=self.ctx, twiml=twiml)
        else:
            await self._wait_playout()  # no way to redirect: at least the apology prompt plays out
        await self.finish(f"provider_failed:{event.reason}")


# ---------------------------------------------------------------------------
# ConversationRelay


def relay_greeting_interruptible(ctx: CallContext) -> bool | None:
    """The `interruptible` flag for the greeting's text tokens, or None to let the TwiML attribute decide.

    Twilio's welcomeGreetingInterruptible governs only its own welcomeGreeting, which we do not use (the
    provider greets). A text token's flag is a boolean (true = any, false = none) that overrides the
    `interruptible` attribute, so the greeting gets the version's setting exactly: no flag when it equals the
    replies' setting, else true/false (the form allows speech/dtmf for the greeting only when replies use it too).
    """
    greeting = ctx.relay_welcome_greeting_interruptible or "any"  # Twilio's default for the welcome greeting
    replies = ctx.relay_interruptible or "any"
    if greeting == replies:
        return None
    return {"any": True, "none": False}.get(greeting)


class RelayCall(CallEngine):
    """ConversationRelay: Twilio does speech; we exchange text. Handovers end the session with handoff data."""

    transport = "conversation_relay"

    def __init__(self, ctx: CallContext, send: Send, *, provider=None):
        super().__init__(ctx, send, provider=provider)
        self._prompt_parts: list[str] = []
        self.interruptions: list[str] = []
        # The provider greets first; its tokens up to the first `last` (or the caller's first input) are the greeting.
        self._greeting = bool(ctx.greeting)
        self._greeting_interruptible = relay_greeting_interruptible(ctx)

    async def handle(self, msg: dict) -> None:
        kind = msg.get("type")
        if kind in ("prompt", "dtmf"):
            self._greeting = False
        if kind == "prompt":
            part = msg.get("voicePrompt")
            if not isinstance(part, str):
                logger.warning("relay prompt without text ignored", extra=self.log_extra())
                return
            if not self._prompt_parts:
                self.turn_started("caller")
            self._prompt_parts.append(part)
            if msg.get("last", True):
                text, self._prompt_parts = "".join(self._prompt_parts), []
                await self.provider.on_text(text)
        elif kind == "interrupt":
            heard = msg.get("utteranceUntilInterrupt")
            heard = heard if isinstance(heard, str) else ""
            self.interruptions.append(heard)
            self.cut_reply(heard)
            logger.info("relay interrupt", extra=self.log_extra(heard_chars=len(heard),
                                                                heard_ms=msg.get("durationUntilInterruptMs")))
            await self.provider.on_interrupt(heard_text=heard)
        elif kind == "dtmf":
            digit = msg.get("digit")
            if isinstance(digit, str) and len(digit) == 1 and digit in "0123456789*#ABCD":
                self.record_turn("caller", f"(pressed {digit})")
                await self.provider.on_dtmf(digit)
        elif kind == "error":
            logger.warning("ConversationRelay reported an error",
                           extra=self.log_extra(description=str(msg.get("description"))[:200]))
        elif kind == "setup":
            logger.warning("relay sent a second setup; ignored", extra=self.log_extra())
        else:
            logger.warning("relay message of unknown kind ignored", extra=self.log_extra(kind=str(kind)[:32]))

    async def on_text_out(self, event: TextOut) -> None:
        # Replies follow the version's `interruptible` TwiML attribute (a token's own flag would override it).
        message = {"type": "text", "token": event.token, "last": event.last}
        if self._greeting:
            if self._greeting_interruptible is not None:
                message["interruptible"] = self._greeting_interruptible
            if event.last:
                self._greeting = False
        await self.send(message)
        if self.listeners and event.token:
            # ConversationRelay carries no audio: listeners follow the agent's words as they are spoken.
            for listener in self.listeners:
                listener.event({"kind": "token", "call_id": self.ctx.call_session_id, "token": event.token})

    async def on_play(self, event: PlayAudio) -> None:
        # Interruptible/preemptible as the version's TwiML attributes say (a message's own flags would override them).
        await self.send({"type": "play", "source": event.source, "loop": 1})

    async def _end(self, data: dict) -> None:
        await self.send({"type": "end", "handoffData": json.dumps(data)})

    async def on_handover(self, action, event: Handover) -> None:
        from calls.models import CallHandover
        from calls.services import handovers as ho

        if getattr(action, "kind", "cold") == "agent":
            from calls.services import transfers

            await self._flush_turns()
            record, twiml = await database_sync_to_async(transfers.agent_handoff)(
                call_session_id=self.ctx.call_session_id, action=action,
                transport=CallHandover.Transport.CONVERSATION_RELAY)
            if twiml is None:
                await self._agent_unavailable(action, event)
                return
        elif getattr(action, "kind", "cold") == "warm":
            from calls.services import transfers

            record = await database_sync_to_async(transfers.warm_handover_record)(
                call_session_id=self.ctx.call_session_id, action=action,
                transport=CallHandover.Transport.CONVERSATION_RELAY)
        elif getattr(action, "kind", "cold") == "reps":
            from calls.services import rep_transfers

            await self._flush_turns()
            record = await database_sync_to_async(rep_transfers.reps_handover_record)(
                call_session_id=self.ctx.call_session_id, action=action,
                transport=CallHandover.Transport.CONVERSATION_RELAY)
        else:
            record = await database_sync_to_async(ho.handover_record)(
                call_session_id=self.ctx.call_session_id, action=action,
                transport=CallHandover.Transport.CONVERSATION_RELAY)
        await self._end({"reason": "handover", "action": action.name, "handover_id": record.pk})
        await self.finish("handover")

    async def on_hangup(self, event: Hangup) -> None:
        await self._end({"reason": "hangup"})
        await self.finish("agent_hangup")

    async def apologise(self, event: ProviderFailed) -> None:
        from calls.services import handovers as ho

        try:
            await self.send({"type": "text", "token": ho.AGENT_FAILED_MESSAGE, "last": True, "interruptible": False})
            await self._end({"reason": "error", "error": event.reason})
        except Exception:  # noqa: BLE001
            pass
        await self.finish(f"provider_failed:{event.reason}")


# ---------------------------------------------------------------------------
# Test in Studio (text chat)


class TextChatCall(CallEngine):
    """The Studio test chat: the same providers, handovers shown instead of dialled."""

    transport = "text"

    async def handle(self, msg: dict) -> None:
        kind = msg.get("type")
        if kind == "message" and isinstance(msg.get("text"), str):
            await self.provider.on_text(msg["text"][:2000])
        elif kind == "dtmf" and isinstance(msg.get("digit"), str) and len(msg["digit"]) == 1:
            await self.provider.on_dtmf(msg["digit"])
        elif kind == "interrupt":
            await self.provider.on_interrupt(heard_text=str(msg.get("heard") or ""))

    async def on_text_out(self, event: TextOut) -> None:
        await self.send({"type": "token", "token": event.token, "last": event.last})

    async def on_play(self, event: PlayAudio) -> None:
        await self.send({"type": "play", "source": event.source})

    async def dispatch(self, event) -> None:
        if isinstance(event, Transcript) and event.text:
            await self.send({"type": "turn", "role": event.role, "text": event.text, "heard": event.heard})
        await super().dispatch(event)

    async def on_handover(self, action, event: Handover) -> None:
        await self.send({"type": "handover", "action": action.name, "destination": action.destination,
                         "description": action.description})
        # On a phone call the agent's part ends here; the test chat ends the same way (restart to go again).
        await self.finish("handover_shown")

    async def on_hangup(self, event: Hangup) -> None:
        await self.send({"type": "hangup"})
        await self.finish("hangup_shown")

    async def on_action_done(self, run: dict) -> None:
        status = str(run["status_code"] or ("ok" if run["ok"] else "failed"))
        await self.send({"type": "action", "status": status, **{k: v for k, v in run.items() if k != "started"}})

    async def apologise(self, event: ProviderFailed) -> None:
        message = (event.detail or {}).get("message") or f"The agent provider failed ({event.reason})."
        fallback = self.ctx.fallback_action()
        await self.send({"type": "error", "message": message,
                         "fallback": fallback.name if fallback else "hangup"})
