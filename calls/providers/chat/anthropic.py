"""An Anthropic chat model through the official `anthropic` SDK, streamed, with tool calls.

`AnthropicChat` yields text deltas (str) as they arrive and each completed tool call as a dict `{"id", "name",
"arguments"}` (arguments a JSON string). `messages` and `tools` are in the OpenAI chat shape the conversation
keeps its history in (system/user/assistant with `tool_calls`/tool); `anthropic_request` translates them
(system prompt apart, tool_use and tool_result blocks, consecutive turns of one role merged, a first assistant
turn preceded by a short user turn as the API requires). Failures raise `ChatError` (permanent for
400/401/403/404/422, transient otherwise, mid-stream overload too).

Settings (environment secrets or variables): `ANTHROPIC_API_KEY` (required), `ANTHROPIC_BASE_URL` (default
https://api.anthropic.com), `ANTHROPIC_CHAT_MODEL` (default claude-haiku-4-5), `ANTHROPIC_TIMEOUT` (seconds,
default 15), `ANTHROPIC_MAX_TOKENS` (default 1024).

Outbound guard: the base URL is checked when the model opens (a named refusal), and the SDK is given the guard's
`httpx2` client (`workspaces.outbound.async_client_httpx2`): each connection goes to the address that was
checked when it was made, so a DNS answer that changes after the check (rebinding) cannot reach a private address.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator

import anthropic

from calls.providers.base import ProviderConfigError
from calls.providers.chat.base import PERMANENT_STATUSES, ChatError, ChatModel, checked_base_url
from workspaces import outbound

logger = logging.getLogger("calls.providers.chat.anthropic")

DEFAULT_URL = "https://api.anthropic.com"
DEFAULT_MODEL = "claude-haiku-4-5"
SECRET = "ANTHROPIC_API_KEY"


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


class AnthropicChat(ChatModel):
    vendor = "anthropic"

    def __init__(self, *, api_key: str, model: str = "", base_url: str = "", timeout: float = 15.0,
                 max_tokens: int = 1024):
        if not api_key:
            raise ProviderConfigError(f"The environment has no {SECRET} secret.")
        super().__init__(api_key=api_key, model=model or DEFAULT_MODEL, base_url=base_url, timeout=timeout)
        self._api_key = api_key
        self.max_tokens = max_tokens
        self._client: anthropic.AsyncAnthropic | None = None

    def configure(self, setting) -> None:
        try:
            self.max_tokens = int(setting("ANTHROPIC_MAX_TOKENS", "1024") or 1024)
        except ValueError:
            raise ProviderConfigError("ANTHROPIC_MAX_TOKENS must be a whole number.") from None

    async def open(self) -> None:
        """Check the base URL (outbound guard) and build the client on the guard's HTTP client."""
        if self._client is not None:
            return
        base = self.base_url or DEFAULT_URL
        await checked_base_url(base, "Anthropic")
        http = await asyncio.to_thread(outbound.async_client_httpx2, timeout=self.timeout)
        self._client = anthropic.AsyncAnthropic(api_key=self._api_key, base_url=base, max_retries=0,
                                                timeout=self.timeout, http_client=http)

    async def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.close()
            self._client = None

    async def stream(self, messages: list[dict], *, tools: list[dict] | None = None) -> AsyncIterator[str | dict]:
        await self.open()
        request = anthropic_request(messages, tools)
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
            logger.warning("anthropic refused the request", extra={"status": status, "model": self.model})
            raise ChatError(f"Anthropic refused the request (HTTP {status}).", permanent=status in PERMANENT_STATUSES,
                            status=status, reason="http_error") from None
        except anthropic.APITimeoutError:
            raise ChatError("Anthropic did not answer in time.", reason="timeout") from None
        except anthropic.APIConnectionError as exc:
            error = type(exc.__cause__ or exc).__name__
            logger.warning("anthropic connection failed", extra={"model": self.model, "error": error})
            raise ChatError(f"Anthropic could not be reached ({error}).", reason="connection", error=error) from None
