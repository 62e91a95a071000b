"""A local fake of ElevenLabs' streaming text-to-speech (see FakeVendorServer).

`POST /v1/text-to-speech/{voice_id}/stream?output_format=pcm_<rate>` with `xi-api-key` and
`{"text", "model_id", ...}`: streams the tone as raw PCM16 at <rate> (`output_format=ulaw_8000`: as μ-law
bytes at 8 kHz). A wrong key is a 401
(`detail.status: invalid_api_key`), a voice outside `voices` a 404 (`voice_not_found`), as ElevenLabs answers.
"""
from __future__ import annotations

from aiohttp import web

from tests.fakes.vendor_server import FakeVendorServer


def _detail(status: int, code: str) -> web.Response:
    return web.json_response({"detail": {"status": code, "message": f"fake {code}"}}, status=status)


class FakeElevenLabs(FakeVendorServer):
    def __init__(self, api_key: str = "el-test-key"):
        super().__init__(api_key)
        self.voices = {"JBFqnCBsd6RMkjVDRZzb", "21m00Tcm4TlvDq8ikWAM"}

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/text-to-speech/{voice_id}/stream", self.stream)

    async def stream(self, request: web.Request):
        body = await request.json()
        self.record(request, body)
        refused = self.refusal(request, "xi-api-key", self.api_key)
        if refused == 401:
            return _detail(401, "invalid_api_key")
        if refused:
            return _detail(refused, "internal_error")
        if request.match_info["voice_id"] not in self.voices:
            return _detail(404, "voice_not_found")
        fmt = request.query.get("output_format", "mp3_44100_128")
        if fmt == "ulaw_8000":  # μ-law 8 kHz, for phone calls
            return await self.stream_http(request, self.audio_for(body.get("text", ""), 8000, mulaw=True),
                                          "audio/basic")
        if not fmt.startswith("pcm_"):
            return _detail(400, "unsupported_output_format_for_fake")
        rate = int(fmt.split("_")[1])
        return await self.stream_http(request, self.audio_for(body.get("text", ""), rate), "audio/pcm")
