"""Studio websockets for live calls: the live view, and listen & intervene on one call.

Both are browser sockets behind `AllowedHostsOriginValidator(AuthMiddlewareStack(...))`: a logged-in member of
the call's workspace (the session's current workspace) or the socket is refused at the handshake.

- `/v1/studio/calls/live` (`LiveCallsConsumer`): joins the workspace's channel layer group; the runtime publishes
  call start / turn / handover / end events there (`calls.engine.live.publish`).
- `/v1/studio/calls/<id>/listen` (`ListenConsumer`): registers a `live.Listener` on the call's engine (this
  process); the call's task puts both sides' μ-law frames in the listener's bounded queue (dropped for a slow
  listener, never waited for) and this consumer's own task sends them as binary messages
  (`[track byte][160 bytes μ-law]`, track 0 = caller, 1 = agent) with the transcript events as JSON. Messages from
  the browser are interventions: `{"type": "takeover", "action": NAME}`, `{"type": "transfer", "number": E164}`,
  `{"type": "instruction", "text": …}`, `{"type": "end"}`; each is recorded (who, when) and handed to the call.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging

from channels.db import database_sync_to_async
from django.core.exceptions import ValidationError

from calls.consumers.base import ClosingOnceConsumer
from calls.engine import live

logger = logging.getLogger("calls")

CLOSE_NOT_FOUND = 4404


def member_workspace_id(*, user, session_workspace_id) -> int | None:
    """Sync. The user's current workspace (as the HTTP middleware picks it), or None when logged out."""
    from workspaces.selectors import membership_get

    if user is None or not user.is_authenticated:
        return None
    membership = membership_get(user=user, workspace_id=session_workspace_id)
    return membership.workspace_id if membership is not None else None


def call_for_member(*, user, session_workspace_id, call_id):
    """Sync. (workspace id, call session) when the call belongs to the member's current workspace; else None."""
    from calls.models import CallSession

    workspace_id = member_workspace_id(user=user, session_workspace_id=session_workspace_id)
    if workspace_id is None:
        return None
    call = (CallSession.objects.filter(pk=call_id, workspace_id=workspace_id)
            .only("id", "workspace_id", "call_sid", "ended_at", "rejected_reason", "agent_version_id",
                  "stream_token_used_at").first())
    if call is not None:
        call.action_specs = ([{"name": n, "destination": d} for n, d in
                              call.agent_version.actions.values_list("name", "destination")]
                             if call.agent_version_id else [])
        call.transport = call.agent_version.transport if call.agent_version_id else ""
    return call


def _session_workspace(scope):
    session = scope.get("session")
    return session.get("workspace_id") if session else None


class LiveCallsConsumer(ClosingOnceConsumer):
    """`/v1/studio/calls/live`: the workspace's call events, as JSON."""

    group = None

    async def connect(self):
        workspace_id = await database_sync_to_async(member_workspace_id)(
            user=self.scope.get("user"), session_workspace_id=_session_workspace(self.scope))
        if workspace_id is None or self.channel_layer is None:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        self.group = live.workspace_group(workspace_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        if self.group is not None and self.channel_layer is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def call_event(self, message):
        await self.send(text_data=json.dumps(message["event"], separators=(",", ":")))


class ListenConsumer(ClosingOnceConsumer):
    """`/v1/studio/calls/<call_id>/listen`: hear a live call, follow its transcript, intervene."""

    engine = None
    listener = None
    sender = None
    call = None
    remote_group = None

    async def connect(self):
        call_id = self.scope["url_route"]["kwargs"]["call_id"]
        self.user = self.scope.get("user")
        self.call = await database_sync_to_async(call_for_member)(
            user=self.user, session_workspace_id=_session_workspace(self.scope), call_id=call_id)
        if self.call is None:
            logger.warning("listen refused", extra={"call_id": call_id})
            await self.close(code=CLOSE_NOT_FOUND)
            return
        await self.accept()
        if self.call.ended_at is None:
            from calls.services.recordings import call_listen_record

            client = self.scope.get("client") or (None,)
            await database_sync_to_async(call_listen_record)(call_session=self.call, actor=self.user, ip=client[0])
        engine = live.get(self.call.pk)
        if engine is None or engine.closed:
            running = (self.call.ended_at is None and not self.call.rejected_reason
                       and self.call.stream_token_used_at is not None)
            if running and self.channel_layer is not None:
                await self._follow_remote()
                return
            await self.send_json({"kind": "not_live", "call_id": self.call.pk,
                                  "message": "This call has ended."})
            await self.close()
            return
        self.engine = engine
        self.listener = live.Listener()
        engine.listeners.add(self.listener)
        await self.send_json({
            "kind": "hello", "call": engine.monitor_info(),
            "transcript": [{"role": r, "text": t, "heard": h} for r, t, h, *_ in engine.turns],
            "actions": [{"name": a.name, "destination": a.destination} for a in engine.ctx.actions],
            "audio": engine.transport == "media_streams",
        })
        self.sender = asyncio.create_task(self._send_loop(), name=f"listen-{self.call.pk}")
        logger.info("listener joined a call", extra={"call_id": self.call.pk, "listeners": len(engine.listeners)})

    async def _follow_remote(self) -> None:
        """The call runs in another runtime process: follow its events through the workspace group (transcript,
        handovers, the end; no audio across processes) and send interventions to the call's control group."""
        self.remote_group = live.workspace_group(self.call.workspace_id)
        self.pending: dict[str, tuple[str, str]] = {}
        await self.channel_layer.group_add(self.remote_group, self.channel_name)
        audio = self.call.transport == "media_streams"
        await self.send_json({"kind": "hello", "remote": True, "audio": audio, "transcript": [],
                              "call": {"id": self.call.pk, "call_sid": self.call.call_sid},
                              "actions": self.call.action_specs})
        if audio:
            # Ask the call's process to forward both sides' frames to this consumer's channel.
            await self.channel_layer.group_send(live.call_group(self.call.pk),
                                                {"type": "call.listen", "channel": self.channel_name})

    async def listen_audio(self, message):
        """Remote mode: a frame of the call, forwarded by the call's process."""
        try:
            raw = base64.b64decode(message["payload"])
            track = int(message["track"])
        except (KeyError, TypeError, ValueError, binascii.Error):
            return
        await self.send(bytes_data=bytes((track,)) + raw)

    async def call_event(self, message):
        """Remote mode: the workspace's live events, this call's only."""
        event = message["event"]
        if event.get("call_id") != self.call.pk:
            return
        await self.send_json(event)
        if event.get("kind") == "end":
            await self.close()

    async def intervention_result(self, message):
        """Remote mode: the call's engine answered an intervention."""
        kind, detail = self.pending.pop(str(message.get("ref")), (str(message.get("kind")), ""))
        problem = message.get("problem") or ""
        await self._recorded(kind, detail, problem)

    async def _recorded(self, kind: str, detail: str, problem: str, field: str = "") -> None:
        from calls.services.recordings import intervention_record

        await database_sync_to_async(intervention_record)(call_session_id=self.call.pk, user=self.user, kind=kind,
                                                          detail=detail, result=problem or "accepted")
        logger.info("supervisor intervention", extra={"call_id": self.call.pk, "kind": kind, "accepted": not problem})
        from django.utils import timezone

        from calls.models import CallIntervention

        # What the call page's interventions list shows for the row just recorded (it appends it live).
        label = dict(CallIntervention.Kind.choices).get(kind, kind)
        await self.send_json({"kind": "intervention", "ok": not problem, "type": kind, "field": field,
                              "error": problem, "recorded": True, "by": self.user.get_username(), "label": label,
                              "detail": detail, "result": problem or "accepted",
                              "at": timezone.localtime().strftime("%H:%M:%S")})

    async def send_json(self, message: dict) -> None:
        await self.send(text_data=json.dumps(message, separators=(",", ":")))

    async def _send_loop(self) -> None:
        queue = self.listener.queue
        try:
            while True:
                item = await queue.get()
                if item[0] == "audio":
                    try:
                        raw = base64.b64decode(item[2])
                    except (binascii.Error, ValueError):
                        continue
                    await self.send(bytes_data=bytes((item[1],)) + raw)
                else:
                    await self.send_json(item[1])
                    if item[1].get("kind") == "end":
                        await self.close()
                        return
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the browser went away; the call is not affected
            return

    async def disconnect(self, code):
        if self.remote_group is not None:
            await self.channel_layer.group_discard(self.remote_group, self.channel_name)
            await self.channel_layer.group_send(live.call_group(self.call.pk),
                                                {"type": "call.unlisten", "channel": self.channel_name})
        if self.engine is not None and self.listener is not None:
            self.engine.listeners.discard(self.listener)
            logger.info("listener left a call", extra={"call_id": self.call.pk, "dropped": self.listener.dropped})
        if self.sender is not None:
            self.sender.cancel()

    async def receive(self, text_data=None, bytes_data=None):
        if (self.engine is None and self.remote_group is None) or text_data is None:
            return
        try:
            msg = json.loads(text_data)
        except (ValueError, RecursionError):  # RecursionError: JSON nested deeper than the parser goes
            return
        if not isinstance(msg, dict):
            return
        kind = msg.get("type")
        detail, field = "", ""
        try:
            if kind == "takeover":
                detail, field = str(msg.get("action") or ""), "action"
                if detail not in {a["name"] for a in self.call.action_specs}:
                    raise ValidationError("Choose one of this agent version's handover actions.")
            elif kind == "transfer":
                field = "number"
                from calls.services.recordings import transfer_number_clean

                detail = transfer_number_clean(str(msg.get("number") or ""))
            elif kind == "instruction":
                detail, field = str(msg.get("text") or "").strip()[:2000], "text"
                if not detail:
                    raise ValidationError("Write the instruction for the agent.")
            elif kind == "end":
                detail = ""
            else:
                return
        except ValidationError as exc:
            await self.send_json({"kind": "intervention", "ok": False, "type": kind, "field": field,
                                  "error": " ".join(exc.messages)})
            return
        by = self.user.get_username()
        if self.engine is None:
            import secrets

            ref = secrets.token_hex(8)
            self.pending[ref] = (kind, detail)
            await self.channel_layer.group_send(live.call_group(self.call.pk), {
                "type": "call.intervene", "kind": kind, "detail": detail, "by": by,
                "reply_to": self.channel_name, "ref": ref})
            return
        problem = self.engine.intervene(kind=kind, detail=detail, by=by)
        await self._recorded(kind, detail, problem)
