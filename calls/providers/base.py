"""The provider interface.

A provider is fed by the call engine and answers only through `self.events` (an asyncio.Queue of
`calls.engine.events` objects; `None` means it has closed):

    await provider.start()                 # connect, configure from ctx, greet
    await provider.on_audio(payload_b64)   # μ-law 8 kHz from the caller (Media Streams)
    await provider.on_text(text)           # the caller's words (ConversationRelay prompt, test chat)
    await provider.on_dtmf(digit)
    await provider.on_interrupt(heard_text=..., heard_ms=..., item_id=...)  # barge-in: what the caller heard
    await provider.on_tool_result(call_id, result)  # e.g. an unknown handover action
    await provider.on_action_result(call_id, outcome)  # an API action finished (default: on_tool_result)
    await provider.on_instruction(text)    # a supervisor's instruction, followed from the next turn
    await provider.close()

`on_*` methods return quickly (they queue work); a slow upstream only delays its own call.

The conversation (history, instructions, barge-in truncation, what a tool call means) is `self.conversation`
(`calls.providers.conversation`). Providers are found through `PROVIDERS`, a lazy "module:Class" table (the
provider modules import this one; this one imports none of them).
"""
from __future__ import annotations

import asyncio
import logging

from calls.engine.context import CallContext
from calls.providers.conversation import Conversation
from calls.providers.lookup import load_class
from knowledge.runtime import knowledge_turn_lookup, turn_message

logger = logging.getLogger("calls.providers")


async def tasks_cancel(tasks) -> None:
    """Cancel a call's tasks and wait for each to end (whatever it raised: the call is closing)."""
    tasks = list(tasks)
    for task in tasks:
        task.cancel()
    for task in tasks:
        try:
            await task
        except (asyncio.CancelledError, Exception):  # noqa: BLE001
            pass


class ProviderConfigError(Exception):
    """The version or environment lacks what the provider needs (message names the setting, never its value)."""


class Provider:
    name = "base"
    modalities: tuple[str, ...] = ("audio", "text")

    def __init__(self, ctx: CallContext):
        self.ctx = ctx
        self.events: asyncio.Queue = asyncio.Queue()
        self.closed = False
        self.conversation = Conversation(ctx)

    @property
    def messages(self) -> list[dict]:
        return self.conversation.messages

    @property
    def supervisor_instructions(self) -> list[str]:
        return self.conversation.supervisor_instructions

    def emit(self, event) -> None:
        if not self.closed:
            self.events.put_nowait(event)

    async def start(self) -> None:
        raise NotImplementedError

    async def on_audio(self, payload_b64: str) -> None:
        pass

    async def on_text(self, text: str) -> None:
        pass

    async def on_dtmf(self, digit: str) -> None:
        pass

    async def on_interrupt(self, *, heard_text: str | None = None, heard_ms: int | None = None,
                           item_id: str = "") -> None:
        pass

    async def on_tool_result(self, call_id: str, result: str) -> None:
        pass

    async def on_action_result(self, call_id: str, outcome) -> None:
        """An API action the model asked for finished (`agents.action_requests.ActionOutcome`, redacted)."""
        await self.on_tool_result(call_id, outcome.model_text())

    def tool_call_event(self, name: str, call_id: str, arguments=None):
        """The event a tool call means (`Conversation.tool_event`: hang-up, API action run, else a handover)."""
        return self.conversation.tool_event(name, call_id, arguments)

    # -- knowledge (knowledge/runtime.py): search_knowledge calls are SearchKnowledge events the engine runs ----

    async def knowledge_for_turn(self, caller_text: str) -> str | None:
        """The every-turn option: the system message to put before the caller's turn (None: nothing to add)."""
        if self.ctx.knowledge.empty or not self.ctx.knowledge.every_turn:
            return None
        from channels.db import database_sync_to_async

        from calls.engine.events import Transcript

        try:
            lookup = await database_sync_to_async(knowledge_turn_lookup)(self.ctx.knowledge, caller_text)
        except Exception:  # noqa: BLE001 - answer without it rather than not at all
            logger.exception("knowledge lookup failed")
            return None
        if lookup is None:
            return None
        self.emit(Transcript("event", lookup.transcript_line()))
        return turn_message(lookup)

    async def on_instruction(self, text: str) -> None:
        """A supervisor's instruction (Studio's listen & intervene): part of the system prompt from now on.
        Providers that hold a conversation upstream also pass it on there (see the subclasses)."""
        self.conversation.instruct(text)

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.events.put_nowait(None)

    def tools(self) -> list[dict]:
        return self.conversation.tools()

    def chat_tools(self) -> list[dict]:
        return self.conversation.chat_tools()

    def system_prompt(self) -> str:
        return self.conversation.system_prompt()


class UnavailableProvider(Provider):
    """Stands in when the version's provider cannot run (unknown, or not over this transport): the call is
    admitted anyway and takes the failure path (apology, then the fallback) instead of dead air."""

    name = "unavailable"

    def __init__(self, ctx: CallContext, problem: str):
        super().__init__(ctx)
        self.problem = problem

    async def start(self) -> None:
        raise ProviderConfigError(self.problem)


# provider name (AgentVersion.Provider) -> "module:Class", imported when a call uses it
PROVIDERS = {
    "scripted": "calls.providers.scripted:ScriptedProvider",
    "openai_realtime": "calls.providers.openai_realtime:OpenAIRealtimeProvider",
    "openai_chat": "calls.providers.text_chat:ChatProvider",
    "cascaded": "calls.providers.cascaded:CascadedProvider",
}


def provider_class(name: str) -> type[Provider]:
    return load_class(PROVIDERS, name, "agent provider", ProviderConfigError)


def get_provider(ctx: CallContext) -> Provider:
    cls = provider_class(ctx.provider)
    if ctx.modality not in cls.modalities:
        raise ProviderConfigError(f"The {ctx.provider} provider cannot run over {ctx.transport}.")
    return cls(ctx)
