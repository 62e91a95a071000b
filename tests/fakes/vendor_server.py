"""The base of the speech vendors' fakes: an aiohttp app (HTTP and websockets on one port) on 127.0.0.1, in its
own thread and event loop, so tests and benchmarks can point the official SDKs at `fake.base_url`.

Knobs every fake shares:
- `api_key`: requests with another key get the vendor's 401.
- `status`: anything but 200 makes every request fail with that status (e.g. 500, or 404 for an unknown voice).
- `drop_after_chunks`: close the connection after that many audio chunks (a vendor dying mid-stream).
- `chunk_delay`: seconds between streamed chunks (0 = answer at once).
- `requests`: (path, query, headers, body) of each request, for assertions; `closed`: websocket/streams that ended.
Audio is a 440 Hz sine at the requested rate (`tone_pcm16`), `ms_per_word` long per word of text, streamed in
chunks of `chunk_bytes` — an odd number on purpose, as real vendors do not align chunks to samples.
"""
from __future__ import annotations

import asyncio
import threading

import numpy as np
from aiohttp import web


def tone_pcm16(rate: int, ms: int, freq: float = 440.0) -> bytes:
    n = rate * ms // 1000
    t = np.arange(n) / rate
    return (8000 * np.sin(2 * np.pi * freq * t)).astype("<i2").tobytes()


def dominant_frequency(pcm: bytes, rate: int) -> float:
    """The strongest frequency of PCM16 audio read at `rate` (a test's check that the rate is right)."""
    x = np.frombuffer(pcm, dtype="<i2").astype(float)
    spectrum = np.abs(np.fft.rfft(x))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[int(np.argmax(spectrum[1:])) + 1])


class FakeVendorServer:
    def __init__(self, api_key: str = "test-vendor-key"):
        self.api_key = api_key
        self.status = 200
        self.drop_after_chunks: int | None = None
        self.chunk_delay = 0.0
        self.chunk_bytes = 1001
        self.ms_per_word = 200
        self.requests: list[tuple[str, dict, dict, object]] = []
        self.closed = 0
        self.port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._stopped: asyncio.Event | None = None
        self.thread = threading.Thread(target=self._run, daemon=True, name=type(self).__name__)

    # subclasses add their routes
    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        self.thread.start()
        if not self._ready.wait(5):
            raise RuntimeError("the fake vendor server did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        self.thread.join(5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        app = web.Application()
        self.routes(app)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        self._ready.set()
        await self._stopped.wait()
        await self._runner.cleanup()

    # ---------------------------------------------------------------------------
    # helpers for the subclasses

    def record(self, request: web.Request, body=None) -> None:
        self.requests.append((request.path, dict(request.query), dict(request.headers), body))

    def refusal(self, request: web.Request, header: str, expected: str) -> int | None:
        """The failing status for this request (bad key, or the `status` knob), else None."""
        if request.headers.get(header) != expected:
            return 401
        return self.status if self.status != 200 else None

    def audio_for(self, text: str, rate: int, mulaw: bool = False) -> bytes:
        """The tone for `text` (its length by words): PCM16 at `rate`, or G.711 μ-law bytes (a phone call's)."""
        words = max(1, len(text.split()))
        pcm = tone_pcm16(rate, self.ms_per_word * words)
        if mulaw:
            from calls.engine.audio import pcm16_to_ulaw

            return pcm16_to_ulaw(pcm)
        return pcm

    def chunks(self, audio: bytes, size: int | None = None) -> list[bytes]:
        size = size or self.chunk_bytes
        return [audio[i:i + size] for i in range(0, len(audio), size)]

    async def stream_http(self, request: web.Request, audio: bytes, content_type: str) -> web.StreamResponse:
        """Chunked HTTP audio, honouring `chunk_delay` and `drop_after_chunks`."""
        response = web.StreamResponse(status=200, headers={"Content-Type": content_type})
        await response.prepare(request)
        try:
            for i, chunk in enumerate(self.chunks(audio)):
                if self.drop_after_chunks is not None and i >= self.drop_after_chunks:
                    request.transport.close()  # mid-stream disconnect: no terminating chunk
                    return response
                await response.write(chunk)
                if self.chunk_delay:
                    await asyncio.sleep(self.chunk_delay)
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.closed += 1
        return response
