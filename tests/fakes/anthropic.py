"""A local fake of Anthropic's Messages streaming API (see FakeVendorServer).

`POST /v1/messages` with the key (`x-api-key`, or `Authorization: Bearer` as the 2.x SDK sends it) and
`anthropic-version` (else 401 `authentication_error` / 400), body
`{"model", "max_tokens", "messages", "system", "tools", "stream": true}`; the answer is the documented SSE
sequence (message_start, content_block_start, ping, content_block_delta text_delta / input_json_delta,
content_block_stop, message_delta, message_stop). Behaviour by the last user text:
- contains "sales"      → "Transferring you to sales." then a tool_use `transfer_to_sales` (input JSON in pieces)
- contains "bye"        → a tool_use `end_call`
- contains "slow"       → 40 text deltas, 50 ms apart
- contains "overloaded" → one text delta, then an `error` event (overloaded_error), as Anthropic does mid-stream
- contains "order"      → a tool_use `order_status` with {"order_id": "42"} (an API action)
- the last user turn is only tool results → "Your order is <the last result>."
- otherwise             → "Echo: <text>" word by word
`bodies` holds each request body; `status` makes every request fail with an Anthropic error body.
"""
from __future__ import annotations

import asyncio
import json

from aiohttp import web

from tests.fakes.vendor_server import FakeVendorServer

ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
               404: "not_found_error", 429: "rate_limit_error", 500: "api_error", 529: "overloaded_error"}


def _error(status: int) -> web.Response:
    kind = ERROR_TYPES.get(status, "api_error")
    return web.json_response({"type": "error", "error": {"type": kind, "message": f"fake {kind}"}}, status=status)


def _last_user_text(messages: list[dict]) -> str:
    for m in reversed(messages):
        if m.get("role") != "user":
            continue
        content = m.get("content")
        if isinstance(content, str):
            return content
        texts = [b.get("text", "") for b in content if b.get("type") == "text"]
        if texts:
            return " ".join(texts)
    return ""


def _last_tool_result(messages: list[dict]) -> str | None:
    """The content of the last turn's tool_result block (a user turn that answers a tool call), else None."""
    if not messages or messages[-1].get("role") != "user" or isinstance(messages[-1].get("content"), str):
        return None
    results = [b for b in messages[-1]["content"] if b.get("type") == "tool_result"]
    if not results or any(b.get("type") == "text" for b in messages[-1]["content"]):
        return None  # no tool result, or the caller spoke meanwhile: answer the words
    content = results[-1].get("content")
    if isinstance(content, list):
        content = " ".join(b.get("text", "") for b in content if isinstance(b, dict))
    return str(content or "")


class FakeAnthropic(FakeVendorServer):
    def __init__(self, api_key: str = "sk-ant-test-key"):
        super().__init__(api_key)
        self.bodies: list[dict] = []

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/messages", self.messages)

    async def messages(self, request: web.Request):
        body = await request.json()
        self.record(request, body)
        self.bodies.append(body)
        key = request.headers.get("x-api-key") or request.headers.get("Authorization", "").removeprefix("Bearer ")
        refused = 401 if key != self.api_key else (self.status if self.status != 200 else None)
        if refused:
            return _error(refused)
        if not request.headers.get("anthropic-version"):
            return _error(400)
        response = web.StreamResponse(status=200, headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)

        async def send(event: str, data: dict, delay: float = 0.0):
            await response.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())
            if delay or self.chunk_delay:
                await asyncio.sleep(delay or self.chunk_delay)

        index = 0

        async def text_block(pieces, delay=0.0):
            nonlocal index
            await send("content_block_start", {"type": "content_block_start", "index": index,
                                               "content_block": {"type": "text", "text": ""}})
            for piece in pieces:
                await send("content_block_delta", {"type": "content_block_delta", "index": index,
                                                   "delta": {"type": "text_delta", "text": piece}}, delay)
            await send("content_block_stop", {"type": "content_block_stop", "index": index})
            index += 1

        async def tool_block(name, arguments: str):
            nonlocal index
            await send("content_block_start", {"type": "content_block_start", "index": index, "content_block": {
                "type": "tool_use", "id": f"toolu_0{index}", "name": name, "input": {}}})
            half = len(arguments) // 2
            for piece in (arguments[:half], arguments[half:]):
                await send("content_block_delta", {"type": "content_block_delta", "index": index,
                                                   "delta": {"type": "input_json_delta", "partial_json": piece}})
            await send("content_block_stop", {"type": "content_block_stop", "index": index})
            index += 1

        user = _last_user_text(body.get("messages", [])).lower()
        result = _last_tool_result(body.get("messages", []))
        await send("message_start", {"type": "message_start", "message": {
            "id": "msg_fake", "type": "message", "role": "assistant", "content": [], "model": body.get("model"),
            "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 10, "output_tokens": 1}}})
        await send("ping", {"type": "ping"})
        stop = "end_turn"
        try:
            if "overloaded" in user:
                await text_block(["Let me "])
                await send("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
                return response
            if result is not None:
                await text_block(["Your ", "order ", "is ", f"{result}."])
            elif "order" in user:
                await tool_block("order_status", json.dumps({"order_id": "42"}))
                stop = "tool_use"
            elif "sales" in user:
                await text_block(["Transferring ", "you ", "to ", "sales."])
                await tool_block("transfer_to_sales", json.dumps({"reason": "the caller asked"}))
                stop = "tool_use"
            elif "bye" in user:
                await tool_block("end_call", "{}")
                stop = "tool_use"
            elif "slow" in user:
                await text_block([f"word{i} " for i in range(40)], delay=0.05)
            else:
                await text_block(["Echo: "] + [w + " " for w in user.split()])
            await send("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                                         "usage": {"output_tokens": 12}})
            await send("message_stop", {"type": "message_stop"})
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.closed += 1
        return response
