"""`/v1/studio/voice-call/<version_id>/<environment_id>`: "Call this version" from Studio, in the browser.

The browser plays Twilio's side of a bidirectional Media Stream (`calls/static/calls/voice_call.js`): `connected`,
`start`, 20 ms μ-law 8 kHz `media` frames from the microphone, `mark` echoes once the agent's audio before them has
played (or was cleared), `dtmf` for the keypad and `stop`. The server answers exactly as to Twilio (`media`,
`mark`, `clear`) from a `BrowserCall` engine, i.e. `MediaStreamCall` with the provider a phone call of that
version would get (`get_provider(ctx)`), plus `{"event": "studio", …}` messages: transcript turns, per-turn
latency, handovers and hang-ups (shown, never dialled).

Admission (at the handshake, refused with 403 otherwise): a logged-in admin of the session's current workspace,
the version and environment of that workspace, and a same-origin browser (the Origin's host is the request's Host
or PUBLIC_BASE_URL's; `AllowedHostsOriginValidator` in the routing checks ALLOWED_HOSTS as well). No Twilio
signature, no call SID, no call session: the context is a test context (`context_for_test_chat`) on the Media
Streams transport. Anything the page would never send (not JSON, binary, over `MAX_MESSAGE` characters, a
message before `start`) closes the socket, once (`ClosingOnceConsumer`).
"""
from __future__ import annotations

import dataclasses
import logging
from urllib.parse import urlsplit

from channels.db import database_sync_to_async

from calls.consumers.stream import CLOSE_NOT_FOUND, CLOSE_POLICY, CLOSE_PROTOCOL, _CallConsumer
from calls.engine.browser import BrowserCall
from calls.providers import ProviderConfigError
from telephony.public_urls import absolute_url

logger = logging.getLogger("calls.engine")

MAX_MESSAGE = 16_384  # characters; a media frame is about 300, the largest legitimate message (start) under 1,000
CLOSE_TOO_BIG = 1009
RELAY_ONLY = ("This version answers phone calls over ConversationRelay, where Twilio does the speech: test it with "
              "the text chat above, or switch the version to Media Streams.")


def same_origin(scope) -> bool:
    """The handshake's Origin is this site: the Host the browser connected to, or PUBLIC_BASE_URL's host."""
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


def browser_call_context(*, user, session_workspace_id, version_id, environment_id):
    """Sync. (context, version transport) when the user is an admin of the session's workspace and both the
    version and the environment belong to it; else None."""
    from agents.models import AgentVersion, Environment
    from calls.engine.context import context_for_test_chat
    from workspaces.models import Membership
    from workspaces.selectors import membership_get

    if user is None or not user.is_authenticated:
        return None
    membership = membership_get(user=user, workspace_id=session_workspace_id)
    if membership is None or membership.role != Membership.Role.ADMIN:
        return None
    version = (AgentVersion.objects.select_related("agent").prefetch_related("actions")
               .filter(pk=version_id, agent__workspace_id=membership.workspace_id).first())
    environment = (Environment.objects.prefetch_related("secrets", "variables")
                   .filter(pk=environment_id, workspace_id=membership.workspace_id).first())
    if version is None or environment is None:
        return None
    ctx = context_for_test_chat(version=version, environment=environment)
    return dataclasses.replace(ctx, transport="media_streams"), version.transport


class BrowserCallConsumer(_CallConsumer):
    transport = "media_streams"

    async def connect(self):
        self.call = None
        self.admitting = False
        self.ctx = None
        kwargs = self.scope["url_route"]["kwargs"]
        refused = {"version_id": kwargs["version_id"], "environment_id": kwargs["environment_id"]}
        if not same_origin(self.scope):
            logger.warning("browser call refused: not same-origin", extra=refused)
            await self.close(code=CLOSE_POLICY)
            return
        session = self.scope.get("session")
        found = await database_sync_to_async(browser_call_context)(
            user=self.scope.get("user"), session_workspace_id=session.get("workspace_id") if session else None,
            version_id=kwargs["version_id"], environment_id=kwargs["environment_id"])
        if found is None:
            logger.warning("browser call refused", extra=refused)
            await self.close(code=CLOSE_NOT_FOUND)
            return
        self.ctx, version_transport = found
        await self.accept()
        if version_transport != "media_streams":
            await self.send_json({"event": "studio", "kind": "error", "message": RELAY_ONLY, "fallback": ""})
            await self.close()

    async def _hostile(self, reason: str, code: int = CLOSE_PROTOCOL) -> None:
        await self._refuse(reason, code, version_id=self.scope["url_route"]["kwargs"]["version_id"])
        if self.call is not None:
            await self.call.close("hostile_client")

    async def receive(self, text_data=None, bytes_data=None):
        if self.closed:
            return
        if text_data is None:
            await self._hostile("binary frame")
            return
        if len(text_data) > MAX_MESSAGE:
            await self._hostile("message too big", CLOSE_TOO_BIG)
            return
        msg = self._parse(text_data)
        if msg is None:
            await self._hostile("malformed message")
            return
        if self.call is not None:
            await self.call.handle(msg)
            return
        if self.admitting or self.ctx is None:
            return
        event = msg.get("event")
        if event == "connected":
            return
        if event != "start" or not isinstance(msg.get("start"), dict):
            await self._hostile("message before start")
            return
        start = msg["start"]
        stream_sid = msg.get("streamSid") or start.get("streamSid")
        if not isinstance(stream_sid, str) or not stream_sid or len(stream_sid) > 64:
            await self._hostile("start without streamSid")
            return
        fmt = start.get("mediaFormat") if isinstance(start.get("mediaFormat"), dict) else {}
        if fmt and (fmt.get("encoding") != "audio/x-mulaw" or str(fmt.get("sampleRate")) != "8000"):
            await self._hostile("media format is not audio/x-mulaw at 8000 Hz")
            return
        self.admitting = True
        try:
            self.call = BrowserCall(self.ctx, self.send_json, stream_sid=stream_sid)
        except ProviderConfigError as exc:
            await self.send_json({"event": "studio", "kind": "error", "message": str(exc), "fallback": ""})
            await self.close()
            return
        finally:
            self.admitting = False
        ctx = self.ctx
        await self.send_json({"event": "studio", "kind": "ready", "agent": ctx.agent_name, "provider": ctx.provider,
                              "provider_class": type(self.call.provider).__name__,
                              "actions": [{"name": a.name, "destination": a.destination} for a in ctx.actions]})
        logger.info("browser call started", extra=self.call.log_extra(stream_sid=stream_sid))
        self.call.start(on_finish=self._finished)
