"""A local fake of Cartesia's TTS websocket (see FakeVendorServer).

`GET /tts/websocket` (websocket; `Authorization: Bearer <key>`, `X-API-Key` or `?api_key=`, and a
`Cartesia-Version` header, else 401/400 before the upgrade). Each generation request
`{"context_id", "model_id", "transcript", "voice": {"mode": "id", "id"}, "output_format": {"container": "raw",
"encoding": "pcm_s16le" (or "pcm_mulaw"), "sample_rate"}}` gets `chunk` messages (base64 tone at that rate) then `done`; a voice
outside `voices` gets an `error` message (`title`, `message`, `error_code: voice_not_found`, the current API
version's shape); `{"context_id", "cancel": true}` stops that
context (recorded in `cancelled`). `drop_after_chunks` closes the socket abruptly after that many chunks.
"""
from __future__ import annotations

import asyncio
import base64
import json

from aiohttp import WSMsgType, web

from tests.fakes.vendor_server import FakeVendorServer


class FakeCartesia(FakeVendorServer):
    def __init__(self, api_key: str = "ca-test-key"):
        super().__init__(api_key)
        self.voices = {"6ccbfb76-1fc6-48f7-b71d-91ac6298247b"}
        self.generations: list[dict] = []
        self.cancelled: list[str] = []
        self.connections = 0

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/tts/websocket", self.websocket)

    def _key(self, request: web.Request) -> str:
        auth = request.headers.get("Authorization", "")
        return auth[7:] if auth.startswith("Bearer ") else request.headers.get("X-API-Key") or request.query.get("api_key", "")

    async def websocket(self, request: web.Request):
        self.record(request)
        if self._key(request) != self.api_key:
            return web.json_response({"error": "Invalid API key"}, status=401)
        if not request.headers.get("Cartesia-Version"):
            return web.json_response({"error": "Cartesia-Version header is required"}, status=400)
        if self.status != 200:
            return web.json_response({"error": "fake failure"}, status=self.status)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.connections += 1
        tasks: dict[str, asyncio.Task] = {}
        sent = [0]
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                data = json.loads(msg.data)
                ctx = data.get("context_id", "")
                if data.get("cancel"):
                    self.cancelled.append(ctx)
                    task = tasks.pop(ctx, None)
                    if task is not None:
                        task.cancel()
                    continue
                self.generations.append(data)
                tasks[ctx] = asyncio.create_task(self._generate(ws, data, sent))
        finally:
            for task in tasks.values():
                task.cancel()
            self.closed += 1
        return ws

    async def _generate(self, ws, data: dict, sent: list[int]) -> None:
        ctx = data.get("context_id", "")
        voice = (data.get("voice") or {}).get("id")
        if voice not in self.voices:
            await ws.send_json({"type": "error", "context_id": ctx, "done": True, "title": "Voice not found",
                                "message": f"Voice {voice} was not found.", "error_code": "voice_not_found"})
            return
        fmt = data.get("output_format") or {}
        audio = self.audio_for(data.get("transcript", ""), int(fmt.get("sample_rate", 44100)),
                               mulaw=fmt.get("encoding") == "pcm_mulaw")
        for chunk in self.chunks(audio, size=self.chunk_bytes & ~1):  # pcm_s16le chunks hold whole samples
            if self.drop_after_chunks is not None and sent[0] >= self.drop_after_chunks:
                ws._req.transport.close()
                return
            sent[0] += 1
            await ws.send_json({"type": "chunk", "context_id": ctx, "status_code": 206, "done": False,
                                "step_time": 1.0, "data": base64.b64encode(chunk).decode()})
            if self.chunk_delay:
                await asyncio.sleep(self.chunk_delay)
        await ws.send_json({"type": "done", "context_id": ctx, "status_code": 200, "done": True})
