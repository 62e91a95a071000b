"""A local fake of the OpenAI Realtime websocket protocol (GA and beta event names), on 127.0.0.1.

It checks the bearer key, sends `session.created`, records every client event, and:
- `response.create` → `greeting_chunks` audio deltas of 100 ms μ-law (item "item_greet_N"), the transcript,
  `response.done` (audio sessions); in text sessions, text deltas echoing the last user text.
- loud `input_audio_buffer.append` frames → `input_audio_buffer.speech_started` once per burst (and
  `input_audio_buffer.speech_stopped` at the first quiet frame after it); after
  `tool_after_loud_frames` loud frames, a function call `tool_name` (e.g. transfer_to_sales).
- text containing "sales" → a function call `transfer_to_sales`; containing "order" → a function call
  `order_status` with {"order_id": "<last word>"} (an API action; its output is recorded in `events`).
Failure modes (`mode`): "ok", "reject" (HTTP 401), "silent" (never sends session.created),
"drop_after_greeting" (closes the socket once the greeting is sent).
"""
from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading

from websockets.asyncio.server import serve
from websockets.datastructures import Headers
from websockets.http11 import Response

ULAW_CHUNK = bytes([0x2A]) * 800  # 100 ms of a non-silent μ-law level


def _level(payload_b64: str) -> bool:
    data = base64.b64decode(payload_b64)
    return sum(1 for b in data if b not in (0xFF, 0x7F, 0xFE, 0x7E)) > len(data) // 2


class FakeRealtimeServer:
    def __init__(self, api_key: str = "sk-test-realtime-key"):
        self.api_key = api_key
        self.mode = "ok"
        self.greeting_chunks = 5
        self.tool_after_loud_frames = 0
        self.tool_name = "transfer_to_sales"
        self.events: list[dict] = []
        self.headers: list[dict] = []
        self.paths: list[str] = []
        self.connections = 0
        self.closed_connections = 0
        self.port = None
        self._loop = None
        self._ready = threading.Event()
        self._stop: asyncio.Future | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> "FakeRealtimeServer":
        self.thread.start()
        self._ready.wait(5)
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._stop.set_result, None)
        self.thread.join(5)

    def types(self) -> list[str]:
        return [e.get("type") for e in self.events]

    def _run(self):
        asyncio.run(self._main())

    async def _main(self):
        self._loop = asyncio.get_running_loop()
        self._stop = self._loop.create_future()

        def process_request(connection, request):
            if request.headers.get("Authorization") != f"Bearer {self.api_key}" or self.mode == "reject":
                return Response(401, "Unauthorized", Headers([("Content-Length", "0")]), b"")
            return None

        quiet = logging.getLogger("tests.fakes.openai_realtime")
        quiet.setLevel(logging.INFO)  # the fake's own handshake logs are not the app's logs
        async with serve(self._handler, "127.0.0.1", 0, process_request=process_request, logger=quiet) as server:
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stop

    async def _handler(self, ws):
        self.connections += 1
        self.headers.append(dict(ws.request.headers))
        self.paths.append(ws.request.path)
        if self.mode == "silent":
            await ws.wait_closed()
            self.closed_connections += 1
            return
        await ws.send(json.dumps({"type": "session.created", "session": {"id": "sess_1"}}))
        loud = 0
        in_speech = False
        text_session = False
        responses = 0
        try:
            async for raw in ws:
                event = json.loads(raw)
                self.events.append(event)
                kind = event.get("type")
                if kind == "session.update":
                    s = event["session"]
                    text_session = s.get("output_modalities") == ["text"] or s.get("modalities") == ["text"]
                    await ws.send(json.dumps({"type": "session.updated", "session": s}))
                elif kind == "response.create":
                    responses += 1
                    if text_session:
                        await self._text_reply(ws, responses)
                    else:
                        await self._audio_reply(ws, f"item_greet_{responses}")
                    if self.mode == "drop_after_greeting":
                        await ws.close()
                        return
                elif kind == "input_audio_buffer.append":
                    if _level(event["audio"]):
                        loud += 1
                        if not in_speech:
                            in_speech = True
                            await ws.send(json.dumps({"type": "input_audio_buffer.speech_started",
                                                      "audio_start_ms": 0, "item_id": "item_user"}))
                        if self.tool_after_loud_frames and loud == self.tool_after_loud_frames:
                            await self._function_call(ws, self.tool_name)
                    else:
                        if in_speech:
                            await ws.send(json.dumps({"type": "input_audio_buffer.speech_stopped",
                                                      "audio_end_ms": 0, "item_id": "item_user"}))
                        in_speech = False
                elif kind == "conversation.item.create":
                    item = event.get("item") or {}
                    if item.get("type") == "message":
                        text = item["content"][0].get("text", "")
                        self._last_text = text
                        if "sales" in text.lower():
                            await self._function_call(ws, "transfer_to_sales")
                        elif "order" in text.lower():
                            await self._function_call(ws, "order_status",
                                                      json.dumps({"order_id": text.split()[-1]}))
        except Exception:  # noqa: BLE001 - the client went away
            pass
        finally:
            self.closed_connections += 1

    async def _audio_reply(self, ws, item_id):
        for _ in range(self.greeting_chunks):
            await ws.send(json.dumps({"type": "response.output_audio.delta", "item_id": item_id, "output_index": 0,
                                      "content_index": 0, "delta": base64.b64encode(ULAW_CHUNK).decode()}))
        await ws.send(json.dumps({"type": "response.output_audio_transcript.done", "item_id": item_id,
                                  "transcript": "Hello from the fake model."}))
        await ws.send(json.dumps({"type": "response.done", "response": {"id": f"resp_{item_id}"}}))

    async def _text_reply(self, ws, n):
        text = getattr(self, "_last_text", "")
        for token in ["You ", "said: ", text]:
            await ws.send(json.dumps({"type": "response.output_text.delta", "item_id": f"item_t{n}", "delta": token}))
        await ws.send(json.dumps({"type": "response.done", "response": {"id": f"resp_t{n}"}}))

    async def _function_call(self, ws, name, arguments="{}"):
        item = {"type": "function_call", "id": "item_fc", "call_id": "call_fc_1", "name": name,
                "arguments": arguments}
        await ws.send(json.dumps({"type": "response.output_item.done", "output_index": 0, "item": item}))
        await ws.send(json.dumps({"type": "response.function_call_arguments.done", "call_id": "call_fc_1",
                                  "name": name, "arguments": arguments}))
        await ws.send(json.dumps({"type": "response.done", "response": {"id": "resp_fc"}}))
