"""The interface every wire adapter implements (calls/engine/wires/__init__.py says what a wire is)."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Awaitable, Callable

logger = logging.getLogger("calls.engine")

Send = Callable[[dict], Awaitable[None]]

CLOSE_POLICY = 4403  # not admitted (bad, replayed or missing session parameter; bad signature)
CLOSE_PROTOCOL = 4400  # out-of-order or malformed message before admission
CLOSE_NOT_FOUND = 4404
CLOSE_TOO_BIG = 1009


class Refused(Exception):
    """The socket is not admitted: logged once ("<transport> stream refused: <reason>") and closed with `code`.
    A `notice` is sent first (the socket is accepted for it), e.g. to tell a Studio page why."""

    def __init__(self, reason: str, code: int = CLOSE_POLICY, *, notice: dict | None = None, **extra):
        super().__init__(reason)
        self.reason, self.code, self.notice, self.extra = reason, code, notice, extra


@dataclass
class Opening:
    """What the far end's opening message (`start`, `setup`) says: the session parameter that admits a phone
    call (absent for a socket admitted at its handshake) and the wire's own options (e.g. the streamSid)."""

    token: object = None
    call_sid: object = None
    account_sid: object = None
    options: dict = field(default_factory=dict)


class Wire:
    """Defaults: a transport that cannot play audio URLs, has no far-end buffer and shows nothing extra."""

    transport = "base"  # the name in logs, the live view and CallSession's transport
    handover_transport = ""  # CallHandover.Transport recorded for a dialled handover
    dials = True  # False: Studio, where handovers and hang-ups are shown, never dialled
    ends_on_failure = True  # False: the test chat stays open after showing the error
    after_event = None  # optional coroutine function the engine awaits after each event it handled

    # -- admission (class-level: before the call's engine exists; calls/consumers/stream.py runs them) ------
    max_message = 0  # > 0: a longer frame closes the socket (CLOSE_TOO_BIG)
    strict = False  # True: a frame the far end never sends (binary, not a JSON object) closes the socket
    ready_at_handshake = False  # True: the call starts when the socket is accepted (no opening message)

    @classmethod
    async def handshake(cls, socket):
        """At the websocket handshake: the call's context when the socket itself is admitted (a Studio page),
        None when the opening message will admit it (a phone call's session parameter). Raises Refused."""
        return None

    @classmethod
    def opening(cls, msg: dict) -> Opening | None:
        """The first messages before admission: None to ignore one (e.g. `connected`), the Opening, or Refused."""
        raise Refused("this transport has no opening message", CLOSE_PROTOCOL)

    @classmethod
    def verify(cls, socket, ctx) -> None:
        """A last check once the call's context is loaded (in a thread); raises Refused."""

    def ready(self) -> dict | None:
        """A message for the far end once the call is admitted, before the engine starts (Studio: `ready`)."""
        return None

    def __init__(self, engine, send: Send):
        self.engine = engine
        self.ctx = engine.ctx
        self.send = send

    def log_extra(self, **more) -> dict:
        return self.engine.log_extra(**more)

    # -- the far end -> the engine ------------------------------------------------------

    async def receive(self, msg: dict) -> None:
        """One parsed message from the far end (the engine's `handle`)."""
        raise NotImplementedError

    # -- the engine -> the far end ------------------------------------------------------

    async def audio_out(self, event) -> None:
        pass

    async def text_out(self, event) -> None:
        pass

    async def reply_done(self, event) -> None:
        pass

    async def play(self, event) -> None:
        logger.info("audio URL not played: this transport cannot fetch URLs", extra=self.log_extra())

    async def speech_started(self) -> None:
        """The provider heard the caller start speaking over the agent (barge-in)."""

    async def transcript(self, event) -> None:
        """A transcript turn from the provider (before the engine records it)."""

    def turn_recorded(self, role: str, text: str, heard: bool) -> None:
        """Any transcript turn the engine recorded (sync: queue what to send)."""

    async def action_done(self, run: dict) -> None:
        pass

    async def playout(self) -> None:
        """Wait (bounded) for the agent's queued audio to finish at the far end."""

    async def hand_over(self, action, record, twiml):
        """Hand the call over (`dials`): returns the outcome to store (a CallHandover.Outcome) or None."""
        raise NotImplementedError

    async def handover_shown(self, action, event) -> None:
        """Studio (`dials` False): show the handover instead."""

    async def hangup(self, event) -> None:
        raise NotImplementedError

    async def apologise(self, event) -> None:
        """The failure path's transport part: never dead air (the engine ends the call after it)."""
        raise NotImplementedError
