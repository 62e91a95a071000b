"""Twilio ConversationRelay: Twilio does the speech; we exchange text.

In: `prompt` (the caller's words, possibly in parts), `interrupt` (what was spoken of the reply), `dtmf`, `error`.
Out: `text` tokens, `play`, and `end` with handoff data, which Twilio posts to the `<Connect action>` URL
(`calls.services.handovers.relay_handover_twiml` answers it: a handover's `<Dial>`, the apology, a hang-up).
"""
from __future__ import annotations

import json
import logging

from calls.engine.wires.base import CLOSE_POLICY, CLOSE_PROTOCOL, Opening, Refused, Wire

logger = logging.getLogger("calls.engine")

KEYS = "0123456789*#ABCD"


def relay_greeting_interruptible(ctx) -> bool | None:
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


def relay_public_url(scope) -> str:
    """The wss:// URL Twilio signed: PUBLIC_BASE_URL's host and the request path (and query, if any)."""
    from telephony.public_urls import absolute_url

    query = scope.get("query_string", b"").decode("latin-1")
    return absolute_url(scope["path"] + (f"?{query}" if query else ""), websocket=True)


class RelayWire(Wire):
    transport = "conversation_relay"
    handover_transport = "conversation_relay"  # CallHandover.Transport.CONVERSATION_RELAY

    @classmethod
    async def handshake(cls, socket):
        """The handshake must be signed (checked at `setup`, once the workspace's auth token is known)."""
        headers = dict(socket.scope.get("headers") or [])
        signature = headers.get(b"x-twilio-signature", b"").decode("latin-1")
        if not signature:
            raise Refused("handshake without X-Twilio-Signature", CLOSE_POLICY)
        socket.admission = {"signature": signature, "url": relay_public_url(socket.scope)}
        return None

    @classmethod
    def opening(cls, msg: dict) -> Opening:
        if msg.get("type") != "setup":
            raise Refused("message before setup", CLOSE_PROTOCOL, kind=str(msg.get("type"))[:32])
        params = msg.get("customParameters") if isinstance(msg.get("customParameters"), dict) else {}
        return Opening(token=params.get("session"), call_sid=msg.get("callSid"), account_sid=msg.get("accountSid"))

    @classmethod
    def verify(cls, socket, ctx) -> None:
        from twilio.request_validator import RequestValidator

        if not RequestValidator(ctx.auth_token).validate(socket.admission["url"], {}, socket.admission["signature"]):
            raise Refused("X-Twilio-Signature does not match")

    def __init__(self, engine, send):
        super().__init__(engine, send)
        self._prompt_parts: list[str] = []
        self.interruptions: list[str] = []
        # The provider greets first; its tokens up to the first `last` (or the caller's first input) are the greeting.
        self._greeting = bool(self.ctx.greeting)
        self._greeting_interruptible = relay_greeting_interruptible(self.ctx)

    async def receive(self, msg: dict) -> None:
        kind = msg.get("type")
        if kind in ("prompt", "dtmf"):
            self._greeting = False
        if kind == "prompt":
            part = msg.get("voicePrompt")
            if not isinstance(part, str):
                logger.warning("relay prompt without text ignored", extra=self.log_extra())
                return
            if not self._prompt_parts:
                self.engine.turn_started("caller")
            self._prompt_parts.append(part)
            if msg.get("last", True):
                text, self._prompt_parts = "".join(self._prompt_parts), []
                await self.engine.provider.on_text(text)
        elif kind == "interrupt":
            heard = msg.get("utteranceUntilInterrupt")
            heard = heard if isinstance(heard, str) else ""
            self.interruptions.append(heard)
            logger.info("relay interrupt", extra=self.log_extra(heard_chars=len(heard),
                                                                heard_ms=msg.get("durationUntilInterruptMs")))
            await self.engine.barge_in_text(heard)
        elif kind == "dtmf":
            digit = msg.get("digit")
            if isinstance(digit, str) and len(digit) == 1 and digit in KEYS:
                await self.engine.caller_key(digit)
        elif kind == "error":
            logger.warning("ConversationRelay reported an error",
                           extra=self.log_extra(description=str(msg.get("description"))[:200]))
        elif kind == "setup":
            logger.warning("relay sent a second setup; ignored", extra=self.log_extra())
        else:
            logger.warning("relay message of unknown kind ignored", extra=self.log_extra(kind=str(kind)[:32]))

    async def text_out(self, event) -> None:
        # Replies follow the version's `interruptible` TwiML attribute (a token's own flag would override it).
        message = {"type": "text", "token": event.token, "last": event.last}
        if self._greeting:
            if self._greeting_interruptible is not None:
                message["interruptible"] = self._greeting_interruptible
            if event.last:
                self._greeting = False
        await self.send(message)
        if self.engine.listeners and event.token:
            # ConversationRelay carries no audio: listeners follow the agent's words as they are spoken.
            for listener in self.engine.listeners:
                listener.event({"kind": "token", "call_id": self.ctx.call_session_id, "token": event.token})

    async def play(self, event) -> None:
        # Interruptible/preemptible as the version's TwiML attributes say (a message's own flags would override them).
        await self.send({"type": "play", "source": event.source, "loop": 1})

    async def _end(self, data: dict) -> None:
        await self.send({"type": "end", "handoffData": json.dumps(data)})

    async def hand_over(self, action, record, twiml):
        await self._end({"reason": "handover", "action": action.name, "handover_id": record.pk})
        return None  # Twilio posts the session's end to the <Connect action> URL, which dials

    async def hangup(self, event) -> None:
        await self._end({"reason": "hangup"})

    async def apologise(self, event) -> None:
        from calls.services import handovers as ho

        try:
            await self.send({"type": "text", "token": ho.AGENT_FAILED_MESSAGE, "last": True, "interruptible": False})
            await self._end({"reason": "error", "error": event.reason})
        except Exception:  # noqa: BLE001
            pass
