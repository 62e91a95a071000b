"""The chat provider for the text transports (ConversationRelay, Studio's test chat): a chat model, streamed.

The model is the version's chat vendor (`chat_vendor`: OpenAI-compatible by default, or Anthropic), built by
`calls.providers.chat.chat_model` from the call's environment; the conversation (history, instructions,
barge-in, what a tool call means) is `calls.providers.conversation`. Settings: see the vendor modules in
`calls/providers/chat/`.
"""
from __future__ import annotations

import asyncio
import logging

from calls.engine.events import ProviderFailed, ReplyDone, TextOut, Transcript
from calls.providers.base import Provider
from calls.providers.chat import ChatError, ChatModel, chat_model

logger = logging.getLogger("calls.providers.text_chat")


class ChatProvider(Provider):
    name = "openai_chat"  # AgentVersion.Provider.OPENAI_CHAT: "a chat model over a text transport"
    modalities = ("text",)

    def __init__(self, ctx, *, chat: ChatModel | None = None):
        super().__init__(ctx)
        self.vendor = (ctx.speech or {}).get("chat_vendor") or "openai"
        self.chat: ChatModel | None = chat
        self._reply_task: asyncio.Task | None = None
        self._partial = ""
        self._turn = 0
        self._awaiting: set[str] = set()  # tool calls of the last reply still waiting for their result
        self._queued: list[dict] = []  # what the caller said meanwhile (goes after the tool results)
        self._ready = asyncio.Event()  # the chat model is open (the caller may speak while it opens)
        self._greeting_held = ""

    async def start(self) -> None:
        if self.chat is None:
            # In a thread: the first call with a vendor imports its SDK (seconds of CPU for some).
            self.chat = await asyncio.to_thread(chat_model, self.ctx, self.vendor,
                                                model=(self.ctx.speech or {}).get("chat_model", ""))
        await self.chat.open()
        self._ready.set()
        hold = bool(self.ctx.greet_after_callee)
        greeting = self.conversation.begin(hold_greeting=hold)
        # An outbound call: the greeting waits for the callee's first words ("Hello?"), as people expect.
        self._greeting_held = greeting if hold else ""
        if greeting and not hold:
            self._say_greeting(greeting)

    def _say_greeting(self, greeting: str) -> None:
        self.emit(TextOut(greeting, last=True))
        self.emit(ReplyDone("greeting"))
        self.emit(Transcript("agent", greeting))

    async def on_text(self, text: str) -> None:
        text = (text or "").strip()
        if not text:
            return
        await self._cancel_reply(heard_text=None)
        self.emit(Transcript("caller", text))
        if self._greeting_held:
            greeting, self._greeting_held = self._greeting_held, ""
            self.conversation.add_reply(greeting)
            self._say_greeting(greeting)
            return
        if self._awaiting:
            self._queued.append({"role": "user", "content": text})
            return
        self.conversation.add_user(text, knowledge=await self.knowledge_for_turn(text))
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
        self.conversation.keep_heard(heard)

    async def on_tool_result(self, call_id: str, result: str) -> None:
        self.conversation.add_tool_result(call_id, result)
        self._awaiting.discard(call_id)
        if self._awaiting:
            return  # the model gets all its tool results at once
        self.messages.extend(self._queued)
        self._queued = []
        self._start_reply()

    async def close(self) -> None:
        await self._cancel_reply(heard_text=None)
        if self.chat is not None:
            try:
                await self.chat.close()
            except Exception:  # noqa: BLE001 - closing must not fail the call's end
                logger.warning("chat model did not close cleanly", extra={"vendor": self.vendor})
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
            self.conversation.add_reply(heard)
        if record:
            self.emit(Transcript("agent", heard, heard=False))

    async def _reply(self, turn: int) -> None:
        calls: list[dict] = []
        await self._ready.wait()
        try:
            async for item in self.chat.stream(self.messages, tools=self.chat_tools()):
                if isinstance(item, str):
                    self._partial += item
                    self.emit(TextOut(item, last=False))
                else:
                    calls.append(item)
        except ChatError as exc:
            logger.warning("chat model failed", extra={"vendor": self.vendor, "status": exc.status,
                                                       "reason": exc.reason})
            self.emit(ProviderFailed(exc.reason, exc.detail()))
            return
        if turn != self._turn:
            return
        self._reply_task = None
        text = self._partial
        self.emit(TextOut("", last=True))
        self.emit(ReplyDone(f"turn-{turn}"))
        events, waiting = self.conversation.reply_events(text, calls)
        self._awaiting |= waiting
        if text or not calls:
            self.emit(Transcript("agent", text))
        for event in events:
            self.emit(event)
