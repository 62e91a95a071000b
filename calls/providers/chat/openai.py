"""An OpenAI-compatible Chat Completions model, streamed (tool calls included), through the outbound guard.

Settings (environment secrets or variables): `OPENAI_API_KEY` (required), `OPENAI_BASE_URL` (default
https://api.openai.com/v1; any compatible server), `OPENAI_CHAT_MODEL` (default gpt-4o-mini), `OPENAI_TIMEOUT`
(seconds without a byte before the model counts as failed, default 15).

The base URL comes from an environment secret or variable, so it is checked (`host_check`, a named refusal) and
the HTTP client is the outbound guard's: every connection is checked when it is made, to the address checked.
"""
from __future__ import annotations

import asyncio
import json
import logging

import httpx

from calls.providers.base import ProviderConfigError
from calls.providers.chat.base import PERMANENT_STATUSES, ChatError, ChatModel, checked_base_url

logger = logging.getLogger("calls.providers.chat.openai")

DEFAULT_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4o-mini"


class OpenAIChat(ChatModel):
    vendor = "openai"

    def __init__(self, *, api_key: str, model: str = "", base_url: str = "", timeout: float = 15.0):
        if not api_key:
            raise ProviderConfigError("The environment has no OPENAI_API_KEY secret.")
        super().__init__(api_key=api_key, model=model or DEFAULT_MODEL, base_url=base_url or DEFAULT_URL,
                         timeout=timeout)
        self._api_key = api_key
        self.client: httpx.AsyncClient | None = None

    async def open(self) -> None:
        if self.client is not None:
            return
        from workspaces import outbound

        await checked_base_url(self.base_url, "OpenAI")
        # Building a client loads the CA bundle (CPU): in a thread, off the event loop.
        self.client = await asyncio.to_thread(
            outbound.async_client, timeout=httpx.Timeout(self.timeout, connect=5.0), base_url=self.base_url,
            headers={"Authorization": f"Bearer {self._api_key}"})

    async def close(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            await client.aclose()

    async def stream(self, messages: list[dict], *, tools: list[dict] | None = None):
        await self.open()
        body = {"model": self.model, "messages": messages, "stream": True}
        if tools:
            body["tools"] = tools
        calls: dict[int, dict] = {}
        try:
            async with self.client.stream("POST", "/chat/completions", json=body) as response:
                if response.status_code >= 400:
                    await response.aread()
                    logger.warning("chat model refused the request", extra={"status": response.status_code,
                                                                             "model": self.model})
                    raise ChatError(f"The chat model refused the request (HTTP {response.status_code}).",
                                    reason="http_error", status=response.status_code,
                                    permanent=response.status_code in PERMANENT_STATUSES)
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    try:
                        chunk = json.loads(data)
                        delta = chunk["choices"][0].get("delta") or {}
                    except (ValueError, KeyError, IndexError, TypeError):
                        continue
                    token = delta.get("content")
                    if token:
                        yield token
                    for tc in delta.get("tool_calls") or ():
                        slot = calls.setdefault(tc.get("index", 0), {"id": "", "name": "", "arguments": ""})
                        slot["id"] = tc.get("id") or slot["id"]
                        fn = tc.get("function") or {}
                        slot["name"] += fn.get("name") or ""
                        slot["arguments"] += fn.get("arguments") or ""
        except httpx.TimeoutException:
            logger.warning("chat model timed out", extra={"model": self.model, "timeout_s": self.timeout})
            raise ChatError("The chat model did not answer in time.", reason="timeout") from None
        except httpx.HTTPError as exc:  # OutboundRefused included (a name that now resolves to a refused address)
            logger.warning("chat model connection failed", extra={"model": self.model, "error": type(exc).__name__})
            raise ChatError("The chat model could not be reached.", reason="connection",
                            error=type(exc).__name__) from None
        for c in calls.values():
            c["arguments"] = c["arguments"] or "{}"
            yield c
