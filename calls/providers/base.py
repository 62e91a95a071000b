"""The provider interface.

A provider is fed by the call engine and answers only through `self.events` (an asyncio.Queue of
`connectors.runtime.events` objects; `None` means it has closed):

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
"""
from __future__ import annotations

import asyncio
import logging

from agents.action_requests import action_tool_schema
from calls.engine.context import CallContext
from knowledge.runtime import (
    KNOWLEDGE_TOOL,
    knowledge_tool_run,
    knowledge_tool_schema,
    knowledge_turn_lookup,
    tool_query,
    turn_message,
)

logger = logging.getLogger("calls.providers")


class ProviderConfigError(Exception):
    """The version or environment lacks what the provider needs (message names the setting, never its value)."""


class Provider:
    name = "base"
    modalities: tuple[str, ...] = ("audio", "text")

    def __init__(self, ctx: CallContext):
        self.ctx = ctx
        self.events: asyncio.Queue = asyncio.Queue()
        self.closed = False
        self.supervisor_instructions: list[str] = []

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
        """The event for a tool call the model made: an API action run, or a handover (by name)."""
        from calls.engine.events import Handover, RunAction

        if name == KNOWLEDGE_TOOL and not self.ctx.knowledge.empty:
            return self.knowledge_lookup_start(call_id, arguments)
        if self.ctx.api_action(name) is not None:
            return RunAction(name, call_id, arguments)
        return Handover(name, call_id)

    # -- knowledge (knowledge/runtime.py; to move into the conversation module) ----------------

    def knowledge_lookup_start(self, call_id: str, arguments):
        """search_knowledge: look up off the event loop, then the passages used go to the transcript and the
        result to the model (on_tool_result). Returns the event marking the lookup in the transcript."""
        from calls.engine.events import Transcript

        query = tool_query(arguments)
        task = asyncio.create_task(self._knowledge_lookup(call_id, query), name=f"knowledge-{call_id}")
        self._knowledge_tasks = getattr(self, "_knowledge_tasks", set())
        self._knowledge_tasks.add(task)
        task.add_done_callback(self._knowledge_tasks.discard)
        return Transcript("event", "")  # nothing to record yet (an empty transcript event is dropped)

    async def _knowledge_lookup(self, call_id: str, query: str) -> None:
        from channels.db import database_sync_to_async

        from calls.engine.events import Transcript

        try:
            lookup = await database_sync_to_async(knowledge_tool_run)(self.ctx.knowledge, query)
            self.emit(Transcript("event", lookup.transcript_line()))
            result = lookup.model_text()
        except Exception:  # noqa: BLE001 - a failed lookup must not end the call
            logger.exception("knowledge lookup failed")
            result = "The knowledge base could not be searched just now."
        await self.on_tool_result(call_id, result)

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
        self.supervisor_instructions.append(text)

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.events.put_nowait(None)

    def tools(self) -> list[dict]:
        """Handover actions (and hang-up) as function tools, in the flat shape (Realtime); see `chat_tools`."""
        tools = [
            {
                "type": "function",
                "name": a.name,
                "description": a.description or f"Transfer the caller ({a.name}).",
                "parameters": {"type": "object", "properties": {}, "additionalProperties": False},
            }
            for a in self.ctx.actions
        ]
        for a in self.ctx.api_actions:
            try:
                schema = action_tool_schema(a)
            except ValueError:  # malformed parameters (a version edited by hand): the model does not get it
                logger.warning("API action with malformed parameters left out", extra={"action": a.name})
                continue
            description = a.description or f"Run the {a.name} action."
            if a.wait_message and self.ctx.modality == "audio":
                # Text transports say it for the model (the engine); a speech-to-speech model says it itself.
                description += f" While it runs, tell the caller: {a.wait_message}"
            tools.append({"type": "function", "name": a.name, "description": description,
                          "parameters": schema})
        if not self.ctx.knowledge.empty:
            tools.append(knowledge_tool_schema())
        tools.append({
            "type": "function",
            "name": "end_call",
            "description": "Hang up once the conversation is over and the caller has said goodbye.",
            "parameters": {"type": "object", "properties": {}, "additionalProperties": False},
        })
        return tools

    def chat_tools(self) -> list[dict]:
        return [{"type": "function", "function": {k: v for k, v in t.items() if k != "type"}} for t in self.tools()]

    def system_prompt(self) -> str:
        parts = [self.ctx.instructions.strip()] if self.ctx.instructions.strip() else []
        if self.ctx.agent_name:
            parts.append(f"Your name is {self.ctx.agent_name}.")
        if self.ctx.language:
            parts.append(f"Speak {self.ctx.language}.")
        if self.ctx.api_actions:
            parts.append("You can look things up and make changes with your tools; use only what a tool answers.")
        if not self.ctx.knowledge.empty:
            parts.append("For facts about the product or the company, call search_knowledge and answer from what "
                         "it returns.")
        if self.ctx.actions:
            parts.append("To transfer the caller, call the matching tool; say briefly that you are transferring them.")
        for text in self.supervisor_instructions:
            parts.append(f"Instruction from your supervisor, follow it from now on: {text}")
        return "\n".join(parts)


class UnavailableProvider(Provider):
    """Stands in when the version's provider cannot run (unknown, or not over this transport): the call is
    admitted anyway and takes the failure path (apology, then the fallback) instead of dead air."""

    name = "unavailable"

    def __init__(self, ctx: CallContext, problem: str):
        super().__init__(ctx)
        self.problem = problem

    async def start(self) -> None:
        raise ProviderConfigError(self.problem)


def get_provider(ctx: CallContext) -> Provider:
    from calls.providers.cascaded import CascadedProvider
    from calls.providers.openai_chat import OpenAIChatProvider
    from calls.providers.openai_realtime import OpenAIRealtimeProvider
    from calls.providers.scripted import ScriptedProvider

    classes = {c.name: c for c in (ScriptedProvider, OpenAIRealtimeProvider, OpenAIChatProvider, CascadedProvider)}
    cls = classes.get(ctx.provider)
    if cls is None:
        raise ProviderConfigError(f"Unknown agent provider {ctx.provider!r}.")
    if ctx.modality not in cls.modalities:
        raise ProviderConfigError(f"The {ctx.provider} provider cannot run over {ctx.transport}.")
    return cls(ctx)
