"""A local fake of Deepgram's live transcription websocket and Aura REST speech API (see FakeVendorServer).

- `GET /v1/listen` (websocket; `Authorization: Token <key>`, else 401 before the upgrade): binary audio frames
  in; every `interim_every_ms` of audio a `Results` message with `is_final: false` revealing one more word of
  `transcript`; `{"type": "Finalize"}` → a `Results` with `is_final: true, from_finalize: true` and the whole
  transcript (only if audio arrived since the last one, as Deepgram does); `{"type": "CloseStream"}` → a
  `Metadata` message, then close. `drop_after_chunks` closes the socket (code 1011) after that many frames.
  `messages` holds the JSON control messages received, `audio_bytes` the audio byte count, `queries` the URLs'
  query strings.
- `POST /v1/speak?model=…&encoding=linear16&sample_rate=…` with `{"text": …}`: streams the tone at that rate
  (`status`, `chunk_delay`, `drop_after_chunks` apply).
"""
from __future__ import annotations

import json
import uuid

from aiohttp import WSMsgType, web

from tests.fakes.vendor_server import FakeVendorServer


def results(text: str, *, is_final: bool, from_finalize: bool = False, start: float = 0.0,
            duration: float = 1.0) -> dict:
    """A Results message as Deepgram documents it."""
    return {
        "type": "Results",
        "channel_index": [0, 1],
        "duration": duration,
        "start": start,
        "is_final": is_final,
        "speech_final": is_final,
        "from_finalize": from_finalize,
        "channel": {"alternatives": [{"transcript": text, "confidence": 0.98,
                                      "words": [{"word": w.lower().strip(".,"), "start": start, "end": start + 0.3,
                                                 "confidence": 0.98, "punctuated_word": w}
                                                for w in text.split()]}]},
        "metadata": {"request_id": str(uuid.uuid4()),
                     "model_info": {"name": "general-nova-3", "version": "fake", "arch": "nova-3"},
                     "model_uuid": str(uuid.uuid4())},
    }


class FakeDeepgram(FakeVendorServer):
    def __init__(self, api_key: str = "dg-test-key"):
        super().__init__(api_key)
        self.transcript = "I want to talk to sales."
        self.interim_every_ms = 200  # of audio, whatever its encoding (the query's encoding and sample_rate)
        self.messages: list[dict] = []
        self.audio_bytes = 0
        self.queries: list[str] = []

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/v1/listen", self.listen)
        app.router.add_post("/v1/speak", self.speak)

    async def listen(self, request: web.Request):
        self.record(request)
        self.queries.append(request.query_string)
        refused = self.refusal(request, "Authorization", f"Token {self.api_key}")
        if refused:
            return web.json_response({"err_code": "INVALID_AUTH", "err_msg": "Invalid credentials."}, status=refused)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        words = self.transcript.split()
        rate = int(request.query.get("sample_rate", "16000"))
        bytes_per_sample = 1 if request.query.get("encoding") in ("mulaw", "alaw") else 2
        every = rate * bytes_per_sample * self.interim_every_ms // 1000
        pending = 0  # audio bytes since the last final
        frames = 0
        try:
            async for msg in ws:
                if msg.type == WSMsgType.BINARY:
                    frames += 1
                    if self.drop_after_chunks is not None and frames > self.drop_after_chunks:
                        await ws.close(code=1011, message=b"fake: dropped")
                        break
                    before = pending // every
                    pending += len(msg.data)
                    self.audio_bytes += len(msg.data)
                    revealed = pending // every
                    if revealed > before and revealed <= len(words):
                        await ws.send_json(results(" ".join(words[:revealed]), is_final=False))
                elif msg.type == WSMsgType.TEXT:
                    data = json.loads(msg.data)
                    self.messages.append(data)
                    if data.get("type") == "Finalize" and pending:
                        pending = 0
                        await ws.send_json(results(self.transcript, is_final=True, from_finalize=True))
                    elif data.get("type") == "CloseStream":
                        await ws.send_json({"type": "Metadata", "transaction_key": "deprecated",
                                            "request_id": str(uuid.uuid4()), "sha256": "0" * 64,
                                            "created": "2026-01-01T00:00:00.000Z", "duration": 1.0,
                                            "channels": 1, "models": [], "model_info": {}})
                        await ws.close()
                        break
        finally:
            self.closed += 1
        return ws

    async def speak(self, request: web.Request):
        body = await request.json()
        self.record(request, body)
        refused = self.refusal(request, "Authorization", f"Token {self.api_key}")
        if refused:
            return web.json_response({"err_code": "INVALID_AUTH" if refused == 401 else "ERROR",
                                      "err_msg": "fake refusal"}, status=refused)
        rate = int(float(request.query.get("sample_rate", "24000")))
        if request.query.get("encoding") == "mulaw":
            return await self.stream_http(request, self.audio_for(body.get("text", ""), rate, mulaw=True),
                                          "audio/basic")
        return await self.stream_http(request, self.audio_for(body.get("text", ""), rate), "audio/l16")
