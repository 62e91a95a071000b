"""An Anthropic chat model through the official `anthropic` SDK, streamed, with tool calls for handovers.

Two layers:
- `AnthropicChat`: one model behind a streaming interface the cascaded provider uses as it uses the OpenAI chat
  model: `async for item in chat.stream(messages, tools=...)` yields text deltas (str) as they arrive and each
  completed tool call as a dict `{"id", "name", "arguments"}` (arguments a JSON string). `messages` and `tools`
  are in the OpenAI chat shape the providers keep their history in (system/user/assistant with `tool_calls`/
  tool); `anthropic_request` translates them (system prompt apart, tool_use and tool_result blocks, consecutive
  turns of one role merged, a first assistant turn preceded by a short user turn as the API requires).
  Failures raise `ChatError` (permanent for 400/401/403/404/422, transient otherwise, mid-stream overload too).
- `AnthropicChatProvider`: the text-transport provider (ConversationRelay, Studio's test chat), the OpenAI chat
  provider's conversation handling with Anthropic's model underneath.

Settings (environment secrets or variables): `ANTHROPIC_API_KEY` (required), `ANTHROPIC_BASE_URL` (default
https://api.anthropic.com; checked by the outbound guard before the SDK opens it),
`ANTHROPIC_CHAT_MODEL` (default claude-haiku-4-5), `ANTHROPIC_TIMEOUT` (seconds, default 15),
`ANTHROPIC_MAX_TOKENS` (default 1024).
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator

import anthropic

from calls.engine.events import Handover, Hangup, ProviderFailed, ReplyDone, TextOut, Transcript
from calls.providers.base import ProviderConfigError
from calls.providers.openai_chat import OpenAIChatProvider
from knowledge.runtime import KNOWLEDGE_TOOL
from workspaces import outbound

logger = logging.getLogger("calls.providers.anthropic_chat")

DEFAULT_URL = "https://api.anthropic.com"
DEFAULT_MODEL = "claude-haiku-4-5"
SECRET = "ANTHROPIC_API_KEY"
PERMANENT_STATUSES = frozenset({400, 401, 403, 404, 422})


class ChatError(Exception):
    """The model failed. `permanent` (bad key, unknown model, refused request) is not retried."""

    def __init__(self, message: str, *, permanent: bool = False, status: int | None = None, reason: str = ""):
        super().__init__(message)
        self.permanent = permanent
        self.status = status
        self.reason = reason  # "http_error" | "timeout" | "connection"


def _tool(spec: dict) -> dict:
    fn = spec.get("function", spec)  # the chat shape {"type": "function", "function": {...}} or the flat one
    return {"name": fn["name"], "description": fn.get("description") or fn["name"],
            "input_schema": fn.get("parameters") or {"type": "object", "properties": {}}}


def _arguments(raw) -> dict:
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def anthropic_request(messages: list[dict], tools: list[dict] | None = None) -> dict:
    """OpenAI-shaped chat history and tools -> Anthropic's `system`, `messages`, `tools`."""
    system: list[str] = []
    turns: list[dict] = []

    def add(role: str, blocks: list[dict]) -> None:
        if not blocks:
            return
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": list(blocks)})

    for m in messages:
        role, content = m.get("role"), m.get("content")
        if role == "system":
            if content:
                system.append(content)
        elif role == "user":
            add("user", [{"type": "text", "text": content}] if content else [])
        elif role == "assistant":
            blocks = [{"type": "text", "text": content}] if content else []
            for call in m.get("tool_calls") or ():
                fn = call.get("function", {})
                blocks.append({"type": "tool_use", "id": call.get("id", ""), "name": fn.get("name", ""),
                               "input": _arguments(fn.get("arguments"))})
            add("assistant", blocks)
        elif role == "tool":
            add("user", [{"type": "tool_result", "tool_use_id": m.get("tool_call_id", ""),
                          "content": str(content or "")}])
    if turns and turns[0]["role"] == "assistant":
        turns.insert(0, {"role": "user", "content": [{"type": "text", "text": "(The call has started.)"}]})
    request: dict = {"messages": turns}
    if system:
        request["system"] = "\n\n".join(system)
    if tools:
        request["tools"] = [_tool(t) for t in tools]
    return request


class AnthropicChat:
    def __init__(self, *, api_key: str, model: str = "", base_url: str = "", timeout: float = 15.0,
                 max_tokens: int = 1024):
        if not api_key:
            raise ProviderConfigError(f"The environment has no {SECRET} secret.")
        self._api_key = api_key
        self.model = model or DEFAULT_MODEL
        self.base_url = (base_url or "").strip().rstrip("/")
        self.timeout = timeout
        self.max_tokens = max_tokens
        self._client: anthropic.AsyncAnthropic | None = None

    async def open(self) -> None:
        """Check the base URL (outbound guard) and build the client; `stream` calls it when needed."""
        if self._client is not None:
            return
        base = DEFAULT_URL
        if self.base_url:
            try:
                await asyncio.to_thread(outbound.host_check, self.base_url)
            except outbound.OutboundRefused as exc:
                raise ProviderConfigError(f"The Anthropic base URL is refused: {exc}") from None
            base = self.base_url
        # This SDK runs on httpx2 and refuses an httpx client, so it cannot take the outbound guard's client:
        # the base URL is checked (above) before the SDK opens it, as for the websocket SDKs.
        self._client = anthropic.AsyncAnthropic(api_key=self._api_key, base_url=base, max_retries=0,
                                                timeout=self.timeout)

    async def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.close()
            self._client = None

    async def stream(self, messages: list[dict], *, tools: list[dict] | None = None,
                     system: str = "") -> AsyncIterator[str | dict]:
        await self.open()
        request = anthropic_request(messages, tools)
        if system:
            request["system"] = system + ("\n\n" + request["system"] if request.get("system") else "")
        try:
            async with self._client.messages.stream(model=self.model, max_tokens=self.max_tokens,
                                                    **request) as events:
                async for event in events:
                    if event.type == "text":
                        if event.text:
                            yield event.text
                    elif event.type == "content_block_stop" and event.content_block.type == "tool_use":
                        block = event.content_block
                        yield {"id": block.id, "name": block.name, "arguments": json.dumps(block.input or {})}
        except anthropic.APIStatusError as exc:
            status = exc.status_code
            if status < 400:  # an `error` event in a stream that had started fine (e.g. overloaded_error)
                kind = ((exc.body or {}).get("error") or {}).get("type", "error") if isinstance(exc.body, dict) else "error"
                raise ChatError(f"Anthropic failed mid-reply ({kind}).", reason="http_error") from None
            raise ChatError(f"Anthropic refused the request (HTTP {status}).", permanent=status in PERMANENT_STATUSES,
                            status=status, reason="http_error") from None
        except anthropic.APITimeoutError:
            raise ChatError("Anthropic did not answer in time.", reason="timeout") from None
        except anthropic.APIConnectionError as exc:
            raise ChatError(f"Anthropic could not be reached ({type(exc.__cause__ or exc).__name__}).",
                            reason="connection") from None


class AnthropicChatProvider(OpenAIChatProvider):
    """The chat provider's conversation (history, barge-in, handovers) with an Anthropic model (text transports)."""

    name = "anthropic_chat"
    modalities = ("text",)

    def __init__(self, ctx):
        super().__init__(ctx)
        self.model = ctx.setting("ANTHROPIC_CHAT_MODEL", DEFAULT_MODEL)
        self.timeout = float(ctx.setting("ANTHROPIC_TIMEOUT", "15") or 15)
        self.chat: AnthropicChat | None = None

    async def start(self) -> None:
        self.chat = AnthropicChat(
            api_key=self.ctx.setting(SECRET), model=self.model, base_url=self.ctx.setting("ANTHROPIC_BASE_URL"),
            timeout=self.timeout, max_tokens=int(self.ctx.setting("ANTHROPIC_MAX_TOKENS", "1024") or 1024),
        )
        await self.chat.open()
        system = self.system_prompt()
        if system:
            self.messages.append({"role": "system", "content": system})
        self._greeting_held = bool(self.ctx.greeting) and self.ctx.greet_after_callee
        if self.ctx.greeting and not self._greeting_held:
            self._greet()  # OpenAIChatProvider's: on an outbound call, held until the callee's first words

    async def close(self) -> None:
        await self._cancel_reply(heard_text=None)
        if self.chat is not None:
            await self.chat.close()
        await super().close()

    async def _reply(self, turn: int) -> None:
        calls: list[dict] = []
        try:
            async for item in self.chat.stream(self.messages, tools=self.chat_tools()):
                if isinstance(item, str):
                    self._partial += item
                    self.emit(TextOut(item, last=False))
                else:
                    calls.append(item)
        except ChatError as exc:
            logger.warning("anthropic chat failed", extra={"model": self.model, "status": exc.status,
                                                           "reason": exc.reason})
            self.emit(ProviderFailed(exc.reason or "http_error", {"status": exc.status} if exc.status else {}))
            return
        if turn != self._turn:
            return
        self._reply_task = None
        text = self._partial
        self.emit(TextOut("", last=True))
        self.emit(ReplyDone(f"turn-{turn}"))
        if calls:
            tool_calls = [{"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
                          for c in calls]
            self.messages.append({"role": "assistant", "content": text or None, "tool_calls": tool_calls})
            if text:
                self.emit(Transcript("agent", text))
            for c in calls:
                if c["name"] == "end_call":
                    self.messages.append({"role": "tool", "tool_call_id": c["id"], "content": "ok"})
                    self.emit(Hangup("agent"))
                elif c["name"] == KNOWLEDGE_TOOL:
                    self.emit(self.tool_call_event(c["name"], c["id"], c["arguments"]))
                else:
                    self.emit(Handover(c["name"], c["id"]))
            return
        self.messages.append({"role": "assistant", "content": text})
        self.emit(Transcript("agent", text))
