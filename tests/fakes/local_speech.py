"""A local fake of a self-hosted OpenAI-compatible speech server (speaches / faster-whisper-server, Kokoro-FastAPI):
the OpenAI audio routes of `FakeOpenAIAudio`, but no key is needed (any Authorization header is taken) and a
transcription is always answered in one piece (`{"text": ...}`), as those servers do for whisper models."""
from __future__ import annotations

from aiohttp import web

from tests.fakes.openai_audio import FakeOpenAIAudio


class FakeLocalSpeechServer(FakeOpenAIAudio):
    def __init__(self):
        super().__init__(api_key="")
        self.transcript = "My number is 415 555 0100."
        self.voices = {"alloy", "af_heart"}
        self.authorizations: list[str] = []

    def refusal(self, request: web.Request, header: str, expected: str) -> int | None:
        self.authorizations.append(request.headers.get("Authorization", ""))
        return self.status if self.status != 200 else None

    async def transcriptions(self, request: web.Request):
        form = await request.post()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        upload = form.get("file")
        self.record(request, fields)
        refused = self.refusal(request, "Authorization", "")
        if refused:
            return web.json_response({"detail": "fake failure"}, status=refused)
        self.uploads.append((fields.get("model", ""), upload.file.read() if upload is not None else b"", fields))
        return web.json_response({"text": self.transcript})
