"""Studio's test chat: the same providers by text, handovers and hang-ups shown instead of dialled.

In: `message` (the admin's words), `dtmf`, `interrupt`. Out: `token`, `play`, `turn` (the provider's transcript
turns), `action` (an API action's run), `handover`, `hangup`, `error` (the socket stays open after it).
"""
from __future__ import annotations

from channels.db import database_sync_to_async

from calls.engine.wires.base import CLOSE_NOT_FOUND, Refused, Wire


def studio_socket_context(socket, *, version_queryset=None):
    """Sync. (version, environment) when the socket's user is an admin of the session's current workspace and both
    belong to it (the route's version_id and environment_id); else None."""
    from agents.models import AgentVersion, Environment
    from workspaces.models import Membership
    from workspaces.selectors import membership_get

    user = socket.scope.get("user")
    session = socket.scope.get("session")
    kwargs = socket.scope["url_route"]["kwargs"]
    if user is None or not user.is_authenticated:
        return None
    membership = membership_get(user=user, workspace_id=session.get("workspace_id") if session else None)
    if membership is None or membership.role != Membership.Role.ADMIN:
        return None
    version = (AgentVersion.objects.select_related("agent").prefetch_related("actions")
               .filter(pk=kwargs["version_id"], agent__workspace_id=membership.workspace_id).first())
    environment = (Environment.objects.prefetch_related("secrets", "variables")
                   .filter(pk=kwargs["environment_id"], workspace_id=membership.workspace_id).first())
    if version is None or environment is None:
        return None
    return version, environment


def studio_refused(socket, reason: str, code: int = CLOSE_NOT_FOUND) -> Refused:
    kwargs = socket.scope["url_route"]["kwargs"]
    return Refused(reason, code, version_id=kwargs["version_id"], environment_id=kwargs["environment_id"])


class TextChatWire(Wire):
    transport = "text"
    dials = False
    ends_on_failure = False
    ready_at_handshake = True

    @classmethod
    async def handshake(cls, socket):
        """`/v1/studio/test-chat/<version_id>/<environment_id>`: an admin of the version's workspace (session)."""
        from calls.engine.context import context_for_test_chat

        found = await database_sync_to_async(studio_socket_context)(socket)
        if found is None:
            raise studio_refused(socket, "test chat: not an admin's version and environment")
        return await database_sync_to_async(context_for_test_chat)(version=found[0], environment=found[1])

    def ready(self) -> dict:
        ctx = self.ctx
        return {"type": "ready", "agent": ctx.agent_name, "provider": ctx.provider,
                "actions": [{"name": a.name, "destination": a.destination} for a in ctx.actions]}

    async def receive(self, msg: dict) -> None:
        kind = msg.get("type")
        provider = self.engine.provider
        if kind == "message" and isinstance(msg.get("text"), str):
            await provider.on_text(msg["text"][:2000])
        elif kind == "dtmf" and isinstance(msg.get("digit"), str) and len(msg["digit"]) == 1:
            await provider.on_dtmf(msg["digit"])
        elif kind == "interrupt":
            await provider.on_interrupt(heard_text=str(msg.get("heard") or ""))

    async def text_out(self, event) -> None:
        await self.send({"type": "token", "token": event.token, "last": event.last})

    async def play(self, event) -> None:
        await self.send({"type": "play", "source": event.source})

    async def transcript(self, event) -> None:
        await self.send({"type": "turn", "role": event.role, "text": event.text, "heard": event.heard})

    async def handover_shown(self, action, event) -> None:
        # On a phone call the agent's part ends here; the test chat ends the same way (restart to go again).
        await self.send({"type": "handover", "action": action.name, "destination": action.destination,
                         "description": action.description})

    async def hangup(self, event) -> None:
        await self.send({"type": "hangup"})

    async def action_done(self, run: dict) -> None:
        status = str(run["status_code"] or ("ok" if run["ok"] else "failed"))
        await self.send({"type": "action", "status": status, **{k: v for k, v in run.items() if k != "started"}})

    async def apologise(self, event) -> None:
        message = (event.detail or {}).get("message") or f"The agent provider failed ({event.reason})."
        fallback = self.ctx.fallback_action()
        await self.send({"type": "error", "message": message, "fallback": fallback.name if fallback else "hangup"})
