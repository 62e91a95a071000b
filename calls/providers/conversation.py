"""The agent's side of a conversation, one module for every provider.

`Conversation` owns:
- the history, in the OpenAI chat shape (system / user / assistant with `tool_calls` / tool) that every chat
  vendor module translates from (`calls.providers.chat`);
- the instructions (the version's prompt, the agent's name and language, what its tools are for) and a
  supervisor's instructions, followed from the next turn;
- barge-in truncation: the history keeps only what the caller heard of a reply (`keep_heard`);
- the tools the model is offered (handover actions, API actions, hang-up) and the ONE place that decides what
  a tool call means (`tool_event`: an API action run, a knowledge search, the hang-up, else a handover by name; the engine answers
  an unknown name).

Providers keep the transport-facing half (streaming tokens, speaking audio, cancelling a reply); they ask the
conversation what the model said means (`reply_events`).
"""
from __future__ import annotations

import logging

from agents.action_requests import action_tool_schema
from calls.engine.events import Handover, Hangup, RunAction, SearchKnowledge
from knowledge.runtime import KNOWLEDGE_TOOL, knowledge_tool_schema, tool_query

logger = logging.getLogger("calls.providers")

HANG_UP_TOOL = "end_call"
SUPERVISOR_PREFIX = "Instruction from your supervisor, follow it from now on: "


class Conversation:
    def __init__(self, ctx):
        self.ctx = ctx
        self.messages: list[dict] = []
        self.supervisor_instructions: list[str] = []

    # -- instructions ------------------------------------------------------------------

    def system_prompt(self) -> str:
        ctx = self.ctx
        parts = [ctx.instructions.strip()] if ctx.instructions.strip() else []
        if ctx.agent_name:
            parts.append(f"Your name is {ctx.agent_name}.")
        if ctx.language:
            parts.append(f"Speak {ctx.language}.")
        if ctx.api_actions:
            parts.append("You can look things up and make changes with your tools; use only what a tool answers.")
        if not ctx.knowledge.empty:
            parts.append("For facts about the product or the company, call search_knowledge and answer from what "
                         "it returns.")
        if ctx.actions:
            parts.append("To transfer the caller, call the matching tool; say briefly that you are transferring them.")
        for text in self.supervisor_instructions:
            parts.append(SUPERVISOR_PREFIX + text)
        return "\n".join(parts)

    def begin(self, *, hold_greeting: bool = False) -> str:
        """The history's start (the system prompt, the greeting as the agent's first turn); returns the greeting.
        `hold_greeting` (an outbound call: the callee speaks first): the greeting joins the history when it is
        said (`add_reply`)."""
        system = self.system_prompt()
        if system:
            self.messages.append({"role": "system", "content": system})
        if self.ctx.history:  # handed over by another agent: what was said so far, then this agent's greeting
            who = self.ctx.handed_over_from or "another agent"
            self.messages.append({"role": "system", "content": f"This call was handed over to you by {who}. "
                                                               "The conversation so far follows; continue it."})
            for role, text in self.ctx.history:
                self.messages.append({"role": "user" if role == "caller" else "assistant", "content": text})
        if self.ctx.greeting and not hold_greeting:
            self.messages.append({"role": "assistant", "content": self.ctx.greeting})
        return self.ctx.greeting

    def instruct(self, text: str) -> None:
        """A supervisor's instruction: in the system prompt from now on, and in the history for the next request."""
        self.supervisor_instructions.append(text)
        self.messages.append({"role": "system", "content": SUPERVISOR_PREFIX + text})

    # -- history -----------------------------------------------------------------------

    def add_user(self, text: str, *, knowledge: str | None = None) -> None:
        """The caller's turn; `knowledge` (the every-turn lookup's passages) goes just before it."""
        if knowledge:
            self.messages.append({"role": "system", "content": knowledge})
        self.messages.append({"role": "user", "content": text})

    def add_tool_result(self, call_id: str, result: str) -> None:
        self.messages.append({"role": "tool", "tool_call_id": call_id, "content": result})

    def add_reply(self, text: str) -> None:
        self.messages.append({"role": "assistant", "content": text})

    def keep_heard(self, heard: str) -> None:
        """Barge-in after the reply was recorded: the last agent turn becomes what the caller heard (or goes)."""
        last = self.messages[-1] if self.messages else None
        if last is not None and last.get("role") == "assistant" and not last.get("tool_calls"):
            if heard:
                last["content"] = heard
            else:
                self.messages.pop()

    # -- tools -------------------------------------------------------------------------

    def tools(self) -> list[dict]:
        """Handover actions, API actions and hang-up as function tools, in the flat shape (Realtime)."""
        ctx = self.ctx
        tools = [
            {
                "type": "function",
                "name": a.name,
                "description": a.description or f"Transfer the caller ({a.name}).",
                "parameters": {"type": "object", "properties": {}, "additionalProperties": False},
            }
            for a in ctx.actions
        ]
        for a in ctx.api_actions:
            try:
                schema = action_tool_schema(a)
            except ValueError:  # malformed parameters (a version edited by hand): the model does not get it
                logger.warning("API action with malformed parameters left out", extra={"action": a.name})
                continue
            description = a.description or f"Run the {a.name} action."
            if a.wait_message and ctx.modality == "audio":
                # Text transports say it for the model (the engine); a speech-to-speech model says it itself.
                description += f" While it runs, tell the caller: {a.wait_message}"
            tools.append({"type": "function", "name": a.name, "description": description, "parameters": schema})
        if not ctx.knowledge.empty:
            tools.append(knowledge_tool_schema())
        tools.append({
            "type": "function",
            "name": HANG_UP_TOOL,
            "description": "Hang up once the conversation is over and the caller has said goodbye.",
            "parameters": {"type": "object", "properties": {}, "additionalProperties": False},
        })
        return tools

    def chat_tools(self) -> list[dict]:
        """The same tools in the chat shape ({"type": "function", "function": {...}})."""
        return [{"type": "function", "function": {k: v for k, v in t.items() if k != "type"}} for t in self.tools()]

    def tool_event(self, name: str, call_id: str, arguments=None):
        """What a tool call means: the hang-up, an API action run, else a handover by name (the engine answers a
        name that is no handover action)."""
        if name == HANG_UP_TOOL:
            return Hangup("agent")
        if name == KNOWLEDGE_TOOL and not self.ctx.knowledge.empty:
            return SearchKnowledge(call_id, tool_query(arguments))
        if self.ctx.api_action(name) is not None:
            return RunAction(name, call_id, arguments)
        return Handover(name, call_id)

    def reply_events(self, text: str, calls: list[dict], *, entry: dict | None = None) -> tuple[list, set[str]]:
        """A reply the model finished: record it (in `entry` if the provider already put one in the history) and
        return (the events its tool calls mean, the call ids still waiting for a result). The hang-up is answered
        at once ("ok"); the others are answered by the engine through `add_tool_result`."""
        if entry is None:
            entry = {"role": "assistant", "content": ""}
            self.messages.append(entry)
        if not calls:
            entry["content"] = text
            if not text and entry in self.messages:
                self.messages.remove(entry)
            return [], set()
        entry["content"] = text or None
        entry["tool_calls"] = [{"id": c["id"], "type": "function",
                                "function": {"name": c["name"], "arguments": c.get("arguments") or "{}"}}
                               for c in calls]
        events, waiting = [], set()
        for c in calls:
            event = self.tool_event(c["name"], c["id"], c.get("arguments") or "{}")
            if isinstance(event, Hangup):
                self.add_tool_result(c["id"], "ok")
            else:
                waiting.add(c["id"])
            events.append(event)
        return events, waiting
