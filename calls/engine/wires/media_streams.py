"""Twilio bidirectional Media Streams: μ-law in and out, marks to know what was played, `clear` for barge-in.

In: `media` (to the provider, and to listeners), `mark` (what has played), `dtmf`, `stop`. Out: `media`, `mark`
(every ~100 ms of agent audio), `clear`. A handover, the hang-up and the apology's fallback leave the stream by
redirecting the live call through Twilio's REST API (`calls.services.handovers`, `calls.services.transfers`).
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import deque

from channels.db import database_sync_to_async

from calls.engine import audio, live
from calls.engine.wires.base import CLOSE_PROTOCOL, Opening, Refused, Wire

logger = logging.getLogger("calls.engine")

PLAYOUT_WAIT = 3.0  # seconds we let queued agent audio finish before redirecting the call
MARK_EVERY_MS = 100  # a mark after each ~100 ms of agent audio: barge-in knows what was heard to that precision
UNKNOWN_SID_LOG_LIMIT = 3
KEYS = "0123456789*#ABCD"
_BASE64 = re.compile(r"[A-Za-z0-9+/=]*")


class Rendered(dict):
    """A message with its JSON text already rendered (`text`): the consumer sends that instead of encoding the
    dict again. The agent's audio frames go out this way (up to 50 a second per call)."""

    __slots__ = ("text",)

    def __init__(self, message: dict, text: str):
        super().__init__(message)
        self.text = text


class MediaStreamsWire(Wire):
    transport = "media_streams"
    handover_transport = "media_streams"  # CallHandover.Transport.MEDIA_STREAMS

    @classmethod
    def opening(cls, msg: dict) -> Opening | None:
        """`connected` (ignored), then `start`: its streamSid and the session parameter that admits the call."""
        event = msg.get("event")
        if event == "connected":
            return None
        if event != "start" or not isinstance(msg.get("start"), dict):
            raise Refused("message before start", CLOSE_PROTOCOL, kind=str(event)[:32])
        start = msg["start"]
        params = start.get("customParameters") if isinstance(start.get("customParameters"), dict) else {}
        stream_sid = msg.get("streamSid") or start.get("streamSid")
        if not isinstance(stream_sid, str) or not stream_sid:
            raise Refused("start without streamSid", CLOSE_PROTOCOL)
        return Opening(token=params.get("session"), call_sid=start.get("callSid"), account_sid=start.get("accountSid"),
                       options={"stream_sid": stream_sid})

    def __init__(self, engine, send, *, stream_sid: str):
        super().__init__(engine, send)
        self.stream_sid = stream_sid
        self._audio_in = engine.provider.on_audio  # the hot path: one bound method, looked up once
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

    # -- Twilio -> the engine ----------------------------------------------------------

    async def receive(self, msg: dict) -> None:
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
            await self._audio_in(payload)
            if self.engine.listeners:
                self.engine._fanout(live.TRACK_CALLER, payload)
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
            if isinstance(digit, str) and len(digit) == 1 and digit in KEYS:
                await self.engine.caller_key(digit)
        elif event == "stop":
            await self.engine.finish("stop")
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

    # -- the engine -> Twilio -----------------------------------------------------------

    async def audio_out(self, event) -> None:
        message = {"event": "media", "streamSid": self.stream_sid, "media": {"payload": event.payload}}
        if _BASE64.fullmatch(event.payload):  # rendered once here, not by json.dumps per frame
            message = Rendered(message, self._media_head + event.payload + '"}}')
        await self.send(message)
        if self.engine.listeners:
            self.engine._fanout(live.TRACK_AGENT, event.payload)
        if event.item_id:
            ms = audio.duration_ms(event.payload)
            self.sent_ms[event.item_id] = self.sent_ms.get(event.item_id, 0) + ms
            self._unmarked_ms += ms
            if self._unmarked_ms >= MARK_EVERY_MS:
                await self._mark(event.item_id)

    async def reply_done(self, event) -> None:
        if self._unmarked_ms and event.item_id:
            await self._mark(event.item_id)

    async def _mark(self, item_id: str) -> None:
        self._mark_seq += 1
        name = f"m{self._mark_seq}"
        self._unmarked_ms = 0
        self.marks.append((name, item_id, self.sent_ms.get(item_id, 0)))
        self._drained.clear()
        await self.send({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}})

    async def speech_started(self) -> None:
        """Barge-in: empty Twilio's buffer and tell the engine how much of the reply was heard."""
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
        await self.engine.barge_in_audio(item_id=item_id, heard_ms=heard, sent_ms=sent)

    async def playout(self) -> None:
        try:
            await asyncio.wait_for(self._drained.wait(), PLAYOUT_WAIT)
        except asyncio.TimeoutError:
            pass

    # -- leaving the stream: the live call is redirected ------------------------------------

    async def hand_over(self, action, record, twiml):
        from calls.services import handovers as ho
        from calls.services import transfers

        kind = getattr(action, "kind", "cold")
        if kind == "agent":  # the next agent's <Connect>
            return await asyncio.to_thread(transfers.caller_redirect, ctx=self.ctx, twiml=twiml)
        if kind == "warm":
            return await asyncio.to_thread(transfers.warm_transfer_start, ctx=self.ctx, handover_id=record.pk)
        if kind == "reps":  # the dialer's reps ring (calls.services.rep_transfers)
            from calls.services import rep_transfers

            return await asyncio.to_thread(rep_transfers.reps_transfer_start, ctx=self.ctx, handover_id=record.pk)
        return await asyncio.to_thread(ho.redirect_to_dial, ctx=self.ctx, action=action, handover_id=record.pk)
        # Twilio then leaves the <Connect>: it sends `stop` and closes the socket.

    async def hangup(self, event) -> None:
        from calls.services import handovers as ho

        await self.playout()
        try:
            ended = await asyncio.to_thread(ho.call_hangup, ctx=self.ctx)
        except Exception as exc:  # noqa: BLE001
            logger.warning("agent hang-up failed", extra=self.log_extra(error=type(exc).__name__))
            ended = False
        logger.info("agent hung up", extra=self.log_extra(already_ended=not ended))

    async def apologise(self, event) -> None:
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
            await self.playout()
            await asyncio.to_thread(ho.redirect_after_failure, ctx=self.ctx, twiml=twiml)
        else:
            await self.playout()  # no way to redirect: at least the apology prompt plays out
