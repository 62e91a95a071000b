"""A local fake of OpenAI's audio endpoints (see FakeVendorServer), `Authorization: Bearer <key>`.

- `POST /v1/audio/speech` `{"model", "voice", "input", "response_format": "pcm"}`: streams the tone as raw PCM16
  at 24 kHz (OpenAI's pcm format); a voice outside `voices` is a 400 `invalid_request_error`, as OpenAI answers.
- `POST /v1/audio/transcriptions` (multipart: file, model, language, prompt, stream): with `stream=true`, SSE
  events `transcript.text.delta` (one per word of `transcript`) then `transcript.text.done`; otherwise
  `{"text": …}`. `uploads` holds (model, wav bytes, form fields) of each transcription request.
"""
from __future__ import annotations

import asyncio
import json

from aiohttp import web

from tests.fakes.vendor_server import FakeVendorServer

VOICES = {"alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse"}


def _error(status: int) -> web.Response:
    kind = {401: "invalid_api_key", 400: "invalid_request_error", 404: "not_found"}.get(status, "server_error")
    return web.json_response({"error": {"message": f"fake {kind}", "type": kind, "param": None, "code": kind}},
                             status=status)


class FakeOpenAIAudio(FakeVendorServer):
    def __init__(self, api_key: str = "sk-test-audio-key"):
        super().__init__(api_key)
        self.transcript = "I want to talk to sales."
        self.voices = set(VOICES)
        self.uploads: list[tuple[str, bytes, dict]] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/audio/speech", self.speech)
        app.router.add_post("/v1/audio/transcriptions", self.transcriptions)

    async def speech(self, request: web.Request):
        body = await request.json()
        self.record(request, body)
        refused = self.refusal(request, "Authorization", f"Bearer {self.api_key}")
        if refused:
            return _error(refused)
        if body.get("voice") not in self.voices:
            return _error(400)
        content_type = "audio/pcm" if body.get("response_format") == "pcm" else "application/octet-stream"
        return await self.stream_http(request, self.audio_for(body.get("input", ""), 24000), content_type)

    async def transcriptions(self, request: web.Request):
        form = await request.post()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        upload = form.get("file")
        self.record(request, fields)
        refused = self.refusal(request, "Authorization", f"Bearer {self.api_key}")
        if refused:
            return _error(refused)
        self.uploads.append((fields.get("model", ""), upload.file.read() if upload is not None else b"", fields))
        if fields.get("stream") != "true":
            return web.json_response({"text": self.transcript})
        response = web.StreamResponse(status=200, headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        words = self.transcript.split()
        for i, word in enumerate(words):
            if self.drop_after_chunks is not None and i >= self.drop_after_chunks:
                request.transport.close()
                return response
            delta = {"type": "transcript.text.delta", "delta": word + (" " if i < len(words) - 1 else "")}
            await response.write(f"data: {json.dumps(delta)}\n\n".encode())
            if self.chunk_delay:
                await asyncio.sleep(self.chunk_delay)
        done = {"type": "transcript.text.done", "text": self.transcript,
                "usage": {"type": "tokens", "input_tokens": 10, "output_tokens": len(words), "total_tokens": 10 + len(words)}}
        await response.write(f"data: {json.dumps(done)}\n\n".encode())
        await response.write_eof()
        return response
