"""Events a provider emits to the call engine (its only output channel)."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class AudioOut:
    """Base64 μ-law 8 kHz audio for the caller; `item_id` names the reply it belongs to (for truncation)."""

    payload: str
    item_id: str = ""


@dataclass(frozen=True, slots=True)
class TextOut:
    """A text token of the agent's reply (ConversationRelay speaks it; the test chat shows it)."""

    token: str
    last: bool = False


@dataclass(frozen=True, slots=True)
class PlayAudio:
    """Audio at a URL for the caller (ConversationRelay `play`; Media Streams cannot fetch URLs and skip it)."""

    source: str


@dataclass(frozen=True, slots=True)
class ReplyDone:
    """The current reply is complete (lets the engine place a final mark / end a text turn)."""

    item_id: str = ""


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """The caller started speaking (the provider's voice activity detection): barge-in if the agent is talking."""


@dataclass(frozen=True, slots=True)
class Handover:
    """The agent chose a handover action by name. `call_id` is the provider's tool-call id, if any."""

    action_name: str
    call_id: str = ""


@dataclass(frozen=True, slots=True)
class RunAction:
    """The agent called one of the version's API actions. `arguments`: the model's JSON text or a dict."""

    action_name: str
    call_id: str = ""
    arguments: object = None


@dataclass(frozen=True, slots=True)
class SearchKnowledge:
    """The model called search_knowledge: the engine looks it up (off the loop) and answers the tool call."""

    call_id: str
    query: str


@dataclass(frozen=True, slots=True)
class Hangup:
    reason: str = "agent"


@dataclass(frozen=True, slots=True)
class Transcript:
    """A finished conversation turn. `heard` is False when the caller interrupted it (text is what they heard)."""

    role: str  # "agent" | "caller"
    text: str
    heard: bool = True


@dataclass(frozen=True, slots=True)
class TurnLatency:
    """How long the agent took to answer a caller turn, in ms from the caller's end of turn (voice activity):
    to the recognised text, the model's first token, the first speech bytes, and the first audio sent."""

    total_ms: int
    recognition_ms: int | None = None
    first_token_ms: int | None = None
    first_byte_ms: int | None = None


@dataclass(frozen=True, slots=True)
class ProviderFailed:
    """The provider cannot go on (timeout, dropped connection, refused credentials). `reason` holds no secrets."""

    reason: str
    detail: dict = field(default_factory=dict)


# Supervisor interventions (Studio's listen & intervene): put on the provider's event queue by the runtime,
# so they are handled in order by the call's own task, like the agent's own decisions.


@dataclass(frozen=True, slots=True)
class Takeover:
    """A supervisor hands the call over: a handover action of the version, or a number they typed."""

    action: object  # HandoverActionSpec
    by: str = ""


@dataclass(frozen=True, slots=True)
class Instruction:
    """A supervisor's instruction to the agent, followed from its next turn."""

    text: str
    by: str = ""
