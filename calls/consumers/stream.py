"""The call websocket: one consumer for every transport, parametrised by its wire (`calls/engine/wires/`).

`config/routing.py` routes each path to `CallConsumer.as_asgi(wire=<name>)`. The wire says how a socket is admitted
(at the handshake for a Studio page; by the opening message's signed single-use session parameter for a phone
call, plus the wire's own check, e.g. ConversationRelay's signature) and translates the call's messages; the
consumer only admits, parses and hands frames to the engine. Admission is the only place that touches the
database (in a thread); after that each call's messages go to its engine (`calls.engine.engine`), which runs its
provider in its own task. Nothing secret is logged: not the session token, not the signature, not the
environment's secrets.
"""
from __future__ import annotations

import dataclasses
import json
import logging

from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer

from calls.consumers.base import ClosingOnceConsumer
from calls.engine.context import context_for_call_session
from calls.engine.engine import call_open
from calls.engine.wires import wire_class
from calls.engine.wires.base import CLOSE_PROTOCOL, CLOSE_TOO_BIG, Refused

logger = logging.getLogger("calls.engine")


def admit_call(*, token, call_sid, account_sid, transport: str):
    """Sync. Consume the single-use session parameter and load the call's context. Raises Refused."""
    from calls.services.admission import InvalidStreamToken, stream_token_consume

    if not isinstance(token, str) or not token:
        raise Refused("missing session parameter")
    try:
        session = stream_token_consume(token=token, max_age=60)
    except InvalidStreamToken as exc:
        raise Refused(f"session parameter refused: {exc}") from exc
    if not call_sid or session.call_sid != call_sid:
        raise Refused("session parameter belongs to another call")
    try:
        ctx = context_for_call_session(session)
    except LookupError as exc:
        raise Refused(str(exc)) from exc
    if account_sid and ctx.account_sid and account_sid != ctx.account_sid:
        raise Refused("accountSid is not the workspace's account")
    return dataclasses.replace(ctx, transport=transport)


class CallConsumer(ClosingOnceConsumer):
    """Channels' websocket consumer with a lean receive loop.

    Channels' own loop starts a new task per message and, in `dispatch`, hops to the database thread
    (`close_old_connections`) for every message: at 50 audio frames per second per call that serialises all
    calls through one thread. Here connect/disconnect still go through `dispatch`; text frames of an admitted
    call go straight to its engine (which never touches the database per frame). No channel layer: the runtime
    does not use groups. Once closed, the socket stays closed (`ClosingOnceConsumer`): a refused client that keeps
    sending is not read any more.
    """

    call = None
    malformed = 0  # malformed frames after admission (the first is logged)

    def __init__(self, *, wire: str, **kwargs):
        super().__init__(**kwargs)
        self.wire_name = wire
        self.wire = wire_class(wire)
        self.transport = self.wire.transport
        self.ctx = None
        self.admitting = False
        self.admission: dict = {}  # what the wire's handshake keeps for its opening check

    async def __call__(self, scope, receive, send):
        self.scope = scope
        self.channel_layer = None
        receive, send = self._guard(receive, send)
        self.base_send = send
        try:
            while True:
                message = await receive()
                if message["type"] == "websocket.receive" and self.call is not None:
                    await self.receive(text_data=message.get("text"), bytes_data=message.get("bytes"))
                else:
                    await self.dispatch(message)
        except StopConsumer:
            pass

    async def send_json(self, message: dict) -> None:
        try:
            text = getattr(message, "text", None) or json.dumps(message, separators=(",", ":"))  # wires.media_streams.Rendered
            await self.base_send({"type": "websocket.send", "text": text})
        except Exception as exc:  # noqa: BLE001 - the client is gone (e.g. mid-flood): the call ends on disconnect
            if not self.closed:
                self.closed = True
                logger.info("%s socket gone; the call's messages are dropped", self.transport,
                            extra={"transport": self.transport, "error": type(exc).__name__})

    # -- admission -------------------------------------------------------------------

    async def connect(self):
        self.call = None
        try:
            self.ctx = await self.wire.handshake(self)
        except Refused as exc:
            if exc.notice is not None:
                await self.accept()
                await self.send_json(exc.notice)
            await self._refuse(exc)
            return
        await self.accept()
        if self.wire.ready_at_handshake:
            await self._open(self.ctx, {})

    async def _refuse(self, exc: Refused) -> None:
        logger.warning("%s stream refused: %s", self.transport, exc.reason, extra={"transport": self.transport,
                                                                                    **exc.extra})
        await self.close(code=exc.code)
        if self.call is not None:
            await self.call.close("refused")

    async def _admit(self, msg) -> None:
        """Before the call: the wire's opening message admits it (or the socket is refused)."""
        if msg is None:
            raise Refused("malformed message before the opening message", CLOSE_PROTOCOL)
        opening = self.wire.opening(msg)
        if opening is None:
            return
        ctx = self.ctx
        self.admitting = True
        try:
            if ctx is None:  # a phone call: the session parameter
                ctx = await database_sync_to_async(admit_call)(
                    token=opening.token, call_sid=opening.call_sid, account_sid=opening.account_sid,
                    transport=self.transport)
                self.wire.verify(self, ctx)
        except Refused as exc:
            exc.extra.setdefault("call_sid", str(opening.call_sid)[:64])
            raise
        finally:
            self.admitting = False
        await self._open(ctx, opening.options)

    async def _open(self, ctx, options: dict) -> None:
        self.call = call_open(self.wire_name, ctx, self.send_json, **options)
        ready = self.call.wire.ready()
        if ready is not None:
            await self.send_json(ready)
        logger.info("%s call admitted", self.transport, extra=self.call.log_extra(**options))
        self.call.start(on_finish=self.close)

    # -- messages --------------------------------------------------------------------

    def _parse(self, text_data):
        if text_data is None:
            return None
        try:
            msg = json.loads(text_data)
        except (ValueError, RecursionError):  # RecursionError: JSON nested deeper than the parser goes
            return None
        return msg if isinstance(msg, dict) else None

    async def receive(self, text_data=None, bytes_data=None):
        wire = self.wire
        if wire.max_message and text_data is not None and len(text_data) > wire.max_message:
            await self._refuse(Refused("message too big", CLOSE_TOO_BIG))
            return
        msg = self._parse(text_data)
        if self.call is not None:
            if msg is not None:
                await self.call.handle(msg)
            elif wire.strict:
                await self._refuse(Refused("binary frame" if text_data is None else "malformed message",
                                           CLOSE_PROTOCOL))
            else:
                self._malformed()
            return
        if self.admitting or self.closed or wire.ready_at_handshake:
            return
        try:
            await self._admit(msg)
        except Refused as exc:
            await self._refuse(exc)

    def _malformed(self) -> None:
        """After admission a malformed frame is ignored: the first is logged, the rest counted (logged at the end)."""
        self.malformed += 1
        if self.malformed == 1:
            logger.warning("malformed %s message ignored (any more are counted)", self.transport,
                           extra=self.call.log_extra())

    async def disconnect(self, code):
        if self.call is not None:
            if self.malformed > 1:
                logger.warning("%s malformed %s messages ignored in all", self.malformed, self.transport,
                               extra=self.call.log_extra(malformed=self.malformed))
            await self.call.close("socket_closed")
