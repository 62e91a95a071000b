"""Websocket consumers: Twilio Media Streams, Twilio ConversationRelay, and the Studio test chat.

Admission is the only place that touches the database (once, in a thread); after that each call's
messages go to its engine (`calls.engine.engine`), which runs its provider in its own task.
Nothing secret is logged: not the session token, not the signature, not the environment's secrets.
"""
from __future__ import annotations

import dataclasses
import json
import logging

from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from twilio.request_validator import RequestValidator

from calls.consumers.base import ClosingOnceConsumer
from calls.engine.context import context_for_call_session, context_for_test_chat
from calls.engine.engine import MediaStreamCall, RelayCall, TextChatCall
from calls.providers import ProviderConfigError
from telephony.public_urls import absolute_url

logger = logging.getLogger("calls.engine")

CLOSE_POLICY = 4403  # not admitted (bad, replayed or missing session parameter; bad signature)
CLOSE_PROTOCOL = 4400  # out-of-order or malformed message before admission
CLOSE_NOT_FOUND = 4404


class NotAdmitted(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def admit_call(*, token, call_sid, account_sid, transport: str):
    """Sync. Consume the single-use session parameter and load the call's context. Raises NotAdmitted."""
    from calls.services.admission import InvalidStreamToken, stream_token_consume

    if not isinstance(token, str) or not token:
        raise NotAdmitted("missing session parameter")
    try:
        session = stream_token_consume(token=token, max_age=60)
    except InvalidStreamToken as exc:
        raise NotAdmitted(f"session parameter refused: {exc}") from exc
    if not call_sid or session.call_sid != call_sid:
        raise NotAdmitted("session parameter belongs to another call")
    try:
        ctx = context_for_call_session(session)
    except LookupError as exc:
        raise NotAdmitted(str(exc)) from exc
    if account_sid and ctx.account_sid and account_sid != ctx.account_sid:
        raise NotAdmitted("accountSid is not the workspace's account")
    return dataclasses.replace(ctx, transport=transport)


def relay_public_url(scope) -> str:
    """The wss:// URL Twilio signed: PUBLIC_BASE_URL's host and the request path (and query, if any)."""
    query = scope.get("query_string", b"").decode("latin-1")
    return absolute_url(scope["path"] + (f"?{query}" if query else ""), websocket=True)


class _CallConsumer(ClosingOnceConsumer):
    """Channels' websocket consumer with a lean receive loop.

    Channels' own loop starts a new task per message and, in `dispatch`, hops to the database thread
    (`close_old_connections`) for every message: at 50 audio frames per second per call that serialises all
    calls through one thread. Here connect/disconnect still go through `dispatch`; text frames of an admitted
    call go straight to its engine (which never touches the database per frame). No channel layer: the runtime
    does not use groups. Once closed, the socket stays closed (`ClosingOnceConsumer`): a refused client that keeps
    sending is not read any more.
    """

    transport = ""
    call = None
    malformed = 0  # malformed frames after admission (the first is logged)

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

    async def connect(self):
        self.call = None
        self.admitting = False
        await self.accept()

    async def send_json(self, message: dict) -> None:
        try:
            text = getattr(message, "text", None) or json.dumps(message, separators=(",", ":"))  # engine.Rendered
            await self.base_send({"type": "websocket.send", "text": text})
        except Exception as exc:  # noqa: BLE001 - the client is gone (e.g. mid-flood): the call ends on disconnect
            if not self.closed:
                self.closed = True
                logger.info("%s socket gone; the call's messages are dropped", self.transport,
                            extra={"transport": self.transport, "error": type(exc).__name__})

    def _malformed(self) -> None:
        """After admission a malformed frame is ignored: the first is logged, the rest counted (logged at the end)."""
        self.malformed += 1
        if self.malformed == 1:
            logger.warning("malformed %s message ignored (any more are counted)", self.transport,
                           extra=self.call.log_extra())

    async def _finished(self) -> None:
        await self.close()

    async def disconnect(self, code):
        if self.call is not None:
            if self.malformed > 1:
                logger.warning("%s malformed %s messages ignored in all", self.malformed, self.transport,
                               extra=self.call.log_extra(malformed=self.malformed))
            await self.call.close("socket_closed")

    async def _refuse(self, reason: str, code: int = CLOSE_POLICY, **extra) -> None:
        logger.warning("%s stream refused: %s", self.transport, reason, extra={"transport": self.transport, **extra})
        await self.close(code=code)

    def _parse(self, text_data):
        if text_data is None:
            return None
        try:
            msg = json.loads(text_data)
        except (ValueError, RecursionError):  # RecursionError: JSON nested deeper than the parser goes
            return None
        return msg if isinstance(msg, dict) else None


class MediaStreamConsumer(_CallConsumer):
    """`/v1/stream/media`: Twilio's bidirectional Media Streams protocol."""

    transport = "media_streams"

    async def receive(self, text_data=None, bytes_data=None):
        msg = self._parse(text_data)
        if self.call is not None:
            if msg is None:
                self._malformed()
                return
            await self.call.handle(msg)
            return
        if self.admitting:
            return
        if msg is None:
            await self._refuse("malformed message before start", CLOSE_PROTOCOL)
            return
        event = msg.get("event")
        if event == "connected":
            return
        if event != "start" or not isinstance(msg.get("start"), dict):
            await self._refuse("message before start", CLOSE_PROTOCOL, kind=str(event)[:32])
            return
        start = msg["start"]
        params = start.get("customParameters") if isinstance(start.get("customParameters"), dict) else {}
        stream_sid = msg.get("streamSid") or start.get("streamSid")
        call_sid = start.get("callSid")
        if not isinstance(stream_sid, str) or not stream_sid:
            await self._refuse("start without streamSid", CLOSE_PROTOCOL)
            return
        self.admitting = True
        try:
            ctx = await database_sync_to_async(admit_call)(token=params.get("session"), call_sid=call_sid,
                                                           account_sid=start.get("accountSid"), transport=self.transport)
            self.call = MediaStreamCall(ctx, self.send_json, stream_sid=stream_sid)
        except NotAdmitted as exc:
            await self._refuse(exc.reason, call_sid=str(call_sid)[:64])
            return
        except ProviderConfigError as exc:
            await self._refuse(str(exc), call_sid=str(call_sid)[:64])
            return
        finally:
            self.admitting = False
        logger.info("media stream admitted", extra=self.call.log_extra(stream_sid=stream_sid))
        self.call.start(on_finish=self._finished)


class RelayConsumer(_CallConsumer):
    """`/v1/stream/relay`: Twilio ConversationRelay (text in, text out). The handshake must be signed."""

    transport = "conversation_relay"

    async def connect(self):
        self.call = None
        self.admitting = False
        headers = dict(self.scope.get("headers") or [])
        self.signature = headers.get(b"x-twilio-signature", b"").decode("latin-1")
        if not self.signature:
            logger.warning("relay handshake without X-Twilio-Signature refused", extra={"transport": self.transport})
            await self.close(code=CLOSE_POLICY)
            return
        self.url = relay_public_url(self.scope)
        await self.accept()

    async def receive(self, text_data=None, bytes_data=None):
        msg = self._parse(text_data)
        if self.call is not None:
            if msg is None:
                self._malformed()
                return
            await self.call.handle(msg)
            return
        if self.admitting:
            return
        if msg is None or msg.get("type") != "setup":
            await self._refuse("message before setup", CLOSE_PROTOCOL,
                               kind=str(msg.get("type"))[:32] if msg else "malformed")
            return
        params = msg.get("customParameters") if isinstance(msg.get("customParameters"), dict) else {}
        call_sid = msg.get("callSid")
        self.admitting = True
        try:
            ctx = await database_sync_to_async(admit_call)(token=params.get("session"), call_sid=call_sid,
                                                           account_sid=msg.get("accountSid"), transport=self.transport)
            if not RequestValidator(ctx.auth_token).validate(self.url, {}, self.signature):
                raise NotAdmitted("X-Twilio-Signature does not match")
            self.call = RelayCall(ctx, self.send_json)
        except NotAdmitted as exc:
            await self._refuse(exc.reason, call_sid=str(call_sid)[:64])
            return
        except ProviderConfigError as exc:
            await self._refuse(str(exc), call_sid=str(call_sid)[:64])
            return
        finally:
            self.admitting = False
        logger.info("relay session admitted", extra=self.call.log_extra())
        self.call.start(on_finish=self._finished)


# ---------------------------------------------------------------------------
# Test in Studio


def test_chat_context(*, user, session_workspace_id, version_id, environment_id):
    """Sync. The version and environment, both of the user's current workspace, user an admin; else None."""
    from agents.models import AgentVersion, Environment
    from workspaces.models import Membership
    from workspaces.selectors import membership_get

    if user is None or not user.is_authenticated:
        return None
    membership = membership_get(user=user, workspace_id=session_workspace_id)
    if membership is None or membership.role != Membership.Role.ADMIN:
        return None
    version = (AgentVersion.objects.select_related("agent").prefetch_related("actions")
               .filter(pk=version_id, agent__workspace_id=membership.workspace_id).first())
    environment = Environment.objects.filter(pk=environment_id, workspace_id=membership.workspace_id).first()
    if version is None or environment is None:
        return None
    return context_for_test_chat(version=version, environment=environment)


class TestChatConsumer(_CallConsumer):
    """`/v1/studio/test-chat/<version_id>/<environment_id>`: talk to a version by text, handovers shown."""

    transport = "text"

    async def connect(self):
        self.call = None
        self.admitting = False
        kwargs = self.scope["url_route"]["kwargs"]
        session = self.scope.get("session")
        ctx = await database_sync_to_async(test_chat_context)(
            user=self.scope.get("user"), session_workspace_id=session.get("workspace_id") if session else None,
            version_id=kwargs["version_id"], environment_id=kwargs["environment_id"])
        if ctx is None:
            logger.warning("test chat refused", extra={"version_id": kwargs["version_id"],
                                                       "environment_id": kwargs["environment_id"]})
            await self.close(code=CLOSE_NOT_FOUND)
            return
        await self.accept()
        try:
            self.call = TextChatCall(ctx, self.send_json)
        except ProviderConfigError as exc:
            await self.send_json({"type": "error", "message": str(exc)})
            await self.close()
            return
        await self.send_json({"type": "ready", "agent": ctx.agent_name, "provider": ctx.provider,
                              "actions": [{"name": a.name, "destination": a.destination} for a in ctx.actions]})
        self.call.start(on_finish=self._finished)

    async def receive(self, text_data=None, bytes_data=None):
        msg = self._parse(text_data)
        if self.call is None or msg is None:
            return
        await self.call.handle(msg)
