"""An OpenAI-compatible Chat Completions model, streamed, with tool calls for handovers (text transports).

Settings (environment secrets or variables): `OPENAI_API_KEY` (required), `OPENAI_BASE_URL`
(default https://api.openai.com/v1; any compatible server), `OPENAI_CHAT_MODEL` (default gpt-4o-mini),
`OPENAI_TIMEOUT` (seconds without a byte before the provider counts as failed, default 15).
"""
from __future__ import annotations

import asyncio
import json
import logging

import httpx

from calls.engine.events import Hangup, ProviderFailed, ReplyDone, TextOut, Transcript
from calls.providers.base import Provider, ProviderConfigError

logger = logging.getLogger("calls.providers.openai_chat")


class ChatError(Exception):
    """The model failed; `reason` is "http_error", "timeout" or "connection" (no secrets)."""

    def __init__(self, message: str, *, reason: str, permanent: bool = False, status: int | None = None,
                 error: str = ""):
        super().__init__(message)
        self.reason = reason
        self.permanent = permanent
        self.status = status
        self.error = error


class OpenAIChat:
    """One OpenAI-compatible model, streamed: `async for item in chat.stream(messages, tools=...)` yields text
    deltas (str) and, at the end, each tool call as {"id", "name", "arguments"}. Failures raise ChatError.
    Shared by the chat provider (text transports) and the cascaded provider (Media Streams)."""

    def __init__(self, *, api_key: str, model: str = "", base_url: str = "", timeout: float = 15.0):
        if not api_key:
            raise ProviderConfigError("The environment has no OPENAI_API_KEY secret.")
        self.model = model or "gpt-4o-mini"
        self.timeout = timeout
        self.client = httpx.AsyncClient(
            base_url=(base_url or "https://api.openai.com/v1").rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=httpx.Timeout(timeout, connect=5.0),
        )

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        await self.client.aclose()

    async def stream(self, messages: list[dict], *, tools: list[dict] | None = None):
        body = {"model": self.model, "messages": messages, "stream": True}
        if tools:
            body["tools"] = tools
        calls: dict[int, dict] = {}
        try:
            async with self.client.stream("POST", "/chat/completions", json=body) as response:
                if response.status_code >= 400:
                    await response.aread()
                    logger.warning("chat provider refused the request", extra={"status": response.status_code,
                                                                                "model": self.model})
                    raise ChatError(f"The chat model refused the request (HTTP {response.status_code}).",
                                    reason="http_error", status=response.status_code,
                                    permanent=response.status_code in (400, 401, 403, 404, 422))
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
            logger.warning("chat provider timed out", extra={"model": self.model, "timeout_s": self.timeout})
            raise ChatError("The chat model did not answer in time.", reason="timeout") from None
        except httpx.HTTPError as exc:
            logger.warning("chat provider connection failed", extra={"model": self.model, "error": type(exc).__name__})
            raise ChatError("The chat model could not be reached.", reason="connection",
                            error=type(exc).__name__) from None
        for c in calls.values():
            yield c


class OpenAIChatProvider(Provider):
    name = "openai_chat"
    modalities = ("text",)

    def __init__(self, ctx):
        super().__init__(ctx)
        self.base_url = ctx.setting("OPENAI_BASE_URL", "https://api.openai.com/v1").rstrip("/")
        self.model = ctx.setting("OPENAI_CHAT_MODEL", "gpt-4o-mini")
        self.timeout = float(ctx.setting("OPENAI_TIMEOUT", "15") or 15)
        self.messages: list[dict] = []
        self.chat: OpenAIChat | None = None
        self._reply_task: asyncio.Task | None = None
        self._partial = ""
        self._turn = 0
        self._awaiting: set[str] = set()  # tool calls of the last reply still waiting for their result
        self._queued: list[dict] = []  # what the caller said meanwhile (goes after the tool results)

    async def start(self) -> None:
        self.chat = OpenAIChat(api_key=self.ctx.setting("OPENAI_API_KEY"), model=self.model,
                               base_url=self.base_url, timeout=self.timeout)
        system = self.system_prompt()
        if system:
            self.messages.append({"role": "system", "content": system})
        self._greeting_held = bool(self.ctx.greeting) and self.ctx.greet_after_callee
        if self.ctx.greeting and not self._greeting_held:
            self._greet()

    def _greet(self) -> None:
        """The greeting; on an outbound call it is held until the callee's first words ("Hello?")."""
        self._greeting_held = False
        self.messages.append({"role": "assistant", "content": self.ctx.greeting})
        self.emit(TextOut(self.ctx.greeting, last=True))
        self.emit(ReplyDone("greeting"))
        self.emit(Transcript("agent", self.ctx.greeting))

    async def on_text(self, text: str) -> None:
        text = (text or "").strip()
        if not text:
            return
        await self._cancel_reply(heard_text=None)
        self.emit(Transcript("caller", text))
        if getattr(self, "_greeting_held", False):
            self._greet()
            return
        if self._awaiting:
            self._queued.append({"role": "user", "content": text})
            return
        knowledge = await self.knowledge_for_turn(text)  # the version's every-turn retrieval (knowledge/)
        if knowledge:
            self.messages.append({"role": "system", "content": knowledge})
        self.messages.append({"role": "user", "content": text})
        self._start_reply()

    async def on_dtmf(self, digit: str) -> None:
        await self.on_text(f"(The caller pressed the key {digit}.)")

    async def on_interrupt(self, *, heard_text=None, heard_ms=None, item_id="") -> None:
        """The caller spoke over the agent. Twilio's speech lags the token stream, so the reply has often been
        streamed completely already: either way the history keeps only what the caller heard."""
        heard = heard_text if heard_text is not None else ""
        task = self._reply_task
        if task is not None and not task.done():
            await self._cancel_reply(heard_text=heard, record=False)
            return
        last = self.messages[-1] if self.messages else None
        if last is not None and last.get("role") == "assistant" and not last.get("tool_calls"):
            if heard:
                last["content"] = heard
            else:
                self.messages.pop()

    async def on_tool_result(self, call_id: str, result: str) -> None:
        self.messages.append({"role": "tool", "tool_call_id": call_id, "content": result})
        self._awaiting.discard(call_id)
        if self._awaiting:
            return  # the model gets all its tool results at once
        self.messages.extend(self._queued)
        self._queued = []
        self._start_reply()

    async def on_instruction(self, text: str) -> None:
        await super().on_instruction(text)
        # The next completion request carries it: the agent follows it from its next reply.
        self.messages.append({"role": "system", "content": f"Instruction from your supervisor, follow it from now on: {text}"})

    async def close(self) -> None:
        await self._cancel_reply(heard_text=None)
        if self.chat is not None:
            await self.chat.close()
        await super().close()

    # ---------------------------------------------------------------------------

    def _start_reply(self) -> None:
        self._turn += 1
        self._partial = ""
        self._reply_task = asyncio.create_task(self._reply(self._turn), name=f"chat-reply-{self._turn}")

    async def _cancel_reply(self, *, heard_text: str | None, record: bool = True) -> None:
        """Stop the reply being streamed. The history keeps only what the caller heard."""
        task, self._reply_task = self._reply_task, None
        if task is None or task.done():
            return
        task.cancel()
        try:
            await task
        except (asyncio.CancelledError, Exception):  # noqa: BLE001 - the reply is being dropped anyway
            pass
        heard = self._partial if heard_text is None else heard_text
        if heard:
            self.messages.append({"role": "assistant", "content": heard})
        if record:
            self.emit(Transcript("agent", heard, heard=False))

    async def _reply(self, turn: int) -> None:
        calls: dict[int, dict] = {}
        try:
            async for item in self.chat.stream(self.messages, tools=self.chat_tools()):
                if isinstance(item, str):
                    self._partial += item
                    self.emit(TextOut(item, last=False))
                else:
                    calls[len(calls)] = item
        except ChatError as exc:
            self.emit(ProviderFailed(exc.reason, {"status": exc.status} if exc.status else
                                     ({"error": exc.error} if exc.error else {})))
            return
        if turn != self._turn:
            return
        self._reply_task = None
        text = self._partial
        self.emit(TextOut("", last=True))
        self.emit(ReplyDone(f"turn-{turn}"))
        if calls:
            tool_calls = [{"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"] or "{}"}}
                          for c in calls.values()]
            self.messages.append({"role": "assistant", "content": text or None, "tool_calls": tool_calls})
            if text:
                self.emit(Transcript("agent", text))
            for c in calls.values():
                if c["name"] == "end_call":
                    self.messages.append({"role": "tool", "tool_call_id": c["id"], "content": "ok"})
                    self.emit(Hangup("agent"))
                else:
                    self._awaiting.add(c["id"])
                    self.emit(self.tool_call_event(c["name"], c["id"], c["arguments"]))
            return
        self.messages.append({"role": "assistant", "content": text})
        self.emit(Transcript("agent", text))
