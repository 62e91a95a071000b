"""A local fake of the OpenAI Chat Completions streaming API (SSE, tool calls), on 127.0.0.1.

Behaviour by the last user message:
- contains "sales"  → streams "Transferring you to sales." then a tool call `transfer_to_sales` (in pieces)
- contains "bye"    → a tool call `end_call`
- contains "slow"   → streams 40 tokens, 50 ms apart (for interrupt tests)
- contains "hang"   → sends headers then nothing (for timeout tests)
- contains "order"  → a tool call `order_status` with {"order_id": "<last word>"} (an API action); once the
                      last message is that tool's result: "The tool said: <result>"
- otherwise         → "Echo: <text>" token by token
`fake.status = 500` makes every request fail; `fake.requests` holds (headers, body) of each request.
"""
from __future__ import annotations

import json
import time

from tests.fakes.http_fake import JsonHandler, LocalHttpFake


class FakeChatServer(LocalHttpFake):
    def __init__(self, api_key: str = "sk-test-chat-key"):
        self.api_key = api_key
        self.requests: list[tuple[dict, dict]] = []
        self.status = 200
        self.hang_seconds = 5.0
        fake = self

        class Handler(JsonHandler):
            def do_POST(self):
                body = self.read_json()
                fake.requests.append((dict(self.headers), body))
                if self.path != "/v1/chat/completions":
                    return self.send_json(404, "not found")
                if self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                    return self.send_json(401, {"error": {"message": "Incorrect API key"}})
                if fake.status != 200:
                    return self.send_json(fake.status, {"error": {"message": "boom"}})
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                user = next((m["content"] for m in reversed(body["messages"]) if m["role"] == "user"), "")
                try:
                    fake.respond(self, user.lower(), body)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                self.close_connection = True

        self.serve(Handler)

    @property
    def base_url(self) -> str:
        return f"{self.origin}/v1"

    # ---------------------------------------------------------------------------

    @staticmethod
    def _chunk(delta: dict, finish=None) -> bytes:
        data = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "fake",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return f"data: {json.dumps(data)}\n\n".encode()

    def _tokens(self, handler, tokens, delay=0.0):
        for t in tokens:
            handler.wfile.write(self._chunk({"content": t}))
            handler.wfile.flush()
            if delay:
                time.sleep(delay)

    def _tool(self, handler, name):
        handler.wfile.write(self._chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                                          "function": {"name": name[:6], "arguments": ""}}]}))
        handler.wfile.write(self._chunk({"tool_calls": [{"index": 0, "function": {"name": name[6:], "arguments": "{}"}}]}))
        handler.wfile.write(self._chunk({}, finish="tool_calls"))

    def _tool_args(self, handler, name, arguments: str):
        handler.wfile.write(self._chunk({"tool_calls": [{"index": 0, "id": "call_order", "type": "function",
                                                          "function": {"name": name, "arguments": arguments[:5]}}]}))
        handler.wfile.write(self._chunk({"tool_calls": [{"index": 0, "function": {"arguments": arguments[5:]}}]}))
        handler.wfile.write(self._chunk({}, finish="tool_calls"))

    def respond(self, handler, user: str, body: dict) -> None:
        last = body["messages"][-1] if body.get("messages") else {}
        if last.get("role") == "tool":
            self._tokens(handler, ["The tool said: ", str(last.get("content"))])
            handler.wfile.write(self._chunk({}, finish="stop"))
            handler.wfile.write(b"data: [DONE]\n\n")
            handler.wfile.flush()
            return
        if "order" in user:
            self._tool_args(handler, "order_status", json.dumps({"order_id": user.split()[-1]}))
            handler.wfile.write(b"data: [DONE]\n\n")
            handler.wfile.flush()
            return
        if "hang" in user:
            handler.wfile.flush()
            time.sleep(self.hang_seconds)
            return
        if "sales" in user:
            self._tokens(handler, ["Transferring ", "you ", "to ", "sales."])
            self._tool(handler, "transfer_to_sales")
        elif "bye" in user:
            self._tool(handler, "end_call")
        elif "slow" in user:
            self._tokens(handler, [f"word{i} " for i in range(40)], delay=0.05)
            handler.wfile.write(self._chunk({}, finish="stop"))
        else:
            self._tokens(handler, ["Echo: "] + [w + " " for w in user.split()])
            handler.wfile.write(self._chunk({}, finish="stop"))
        handler.wfile.write(b"data: [DONE]\n\n")
        handler.wfile.flush()
