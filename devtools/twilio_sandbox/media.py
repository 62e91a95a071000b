"""The sandbox's side of a browser call's media: one aiortc peer per Voice SDK call (Twilio's media server).

The peer sends what the far side says (speech synthesised by espeak-ng through `phone.speech_ulaw`, tones,
silence otherwise) and measures what the browser's microphone sends (how many 20 ms frames carried voice), so
a test can tell that audio went both ways. aiortc's DTLS/SRTP/ICE are real: Chromium talks to it as it talks to
Twilio. The peers run on one asyncio loop in its own thread (`MediaLoop`), shared with the signalling server.

aiortc offers no `telephone-event` codec, so the SDK sends keys over signalling (`dtmf`), as it does whenever its
RTCDTMFSender cannot insert DTMF.
"""
from __future__ import annotations

import asyncio
import fractions
import math
import queue
import threading
import time
import warnings
from collections import deque

RATE = 8000
FRAME_SAMPLES = 160  # 20 ms at 8 kHz
VOICE_RMS = 300  # a 16-bit frame louder than this counts as voice (Chromium's fake microphone beeps well above)


class MediaLoop:
    """An asyncio loop in a daemon thread: `run(coro)` from any thread, `call(coro)` waits for its result."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="sandbox-media", daemon=True)
        self.thread.start()

    def submit(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call(self, coro, timeout: float = 20.0):
        return self.submit(coro).result(timeout)

    def stop(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


def speech_pcm(text: str) -> bytes:
    """`text` spoken by espeak-ng as 8 kHz 16-bit PCM (phone.py's synthesis, decoded from μ-law)."""
    from devtools.twilio_sandbox.phone import speech_ulaw

    return ulaw_to_pcm(speech_ulaw(text))


def ulaw_to_pcm(ulaw: bytes) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop

        return audioop.ulaw2lin(ulaw, 2)


def tone_pcm(hz: float = 1000.0, seconds: float = 0.4) -> bytes:
    out = bytearray()
    for i in range(int(RATE * seconds)):
        out += int(8000 * math.sin(2 * math.pi * hz * i / RATE)).to_bytes(2, "little", signed=True)
    return bytes(out)


def _rms(pcm: bytes) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop

        return audioop.rms(pcm, 2)


def _track_class():
    from aiortc.mediastreams import MediaStreamTrack

    class VoiceTrack(MediaStreamTrack):
        """20 ms frames of queued PCM (silence when the queue is empty), paced in real time."""

        kind = "audio"

        def __init__(self):
            super().__init__()
            self.queue: deque[bytes] = deque()
            self._start: float | None = None
            self._pts = 0
            self.sent_voice_frames = 0

        def play(self, pcm: bytes) -> float:
            """Queue `pcm`; the seconds of audio queued before it ends."""
            for i in range(0, len(pcm), FRAME_SAMPLES * 2):
                self.queue.append(pcm[i:i + FRAME_SAMPLES * 2].ljust(FRAME_SAMPLES * 2, b"\0"))
            return len(self.queue) * FRAME_SAMPLES / RATE

        def clear(self) -> None:
            self.queue.clear()

        async def recv(self):
            from av import AudioFrame

            if self._start is None:
                self._start = time.monotonic()
            else:
                self._pts += FRAME_SAMPLES
                wait = self._start + self._pts / RATE - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
            data = self.queue.popleft() if self.queue else b"\0" * (FRAME_SAMPLES * 2)
            if self.queue or data.strip(b"\0"):
                self.sent_voice_frames += 1
            frame = AudioFrame(format="s16", layout="mono", samples=FRAME_SAMPLES)
            frame.planes[0].update(data)
            frame.sample_rate = RATE
            frame.pts = self._pts
            frame.time_base = fractions.Fraction(1, RATE)
            return frame

    return VoiceTrack


class Peer:
    """One WebRTC peer facing a browser. Coroutines run on the media loop; `play`/`heard_*` are thread-safe."""

    def __init__(self, media: MediaLoop):
        from aiortc import RTCConfiguration, RTCPeerConnection

        self.media = media
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.track = _track_class()()
        self.pc.addTrack(self.track)
        self.heard_frames = 0
        self.heard_voice_frames = 0
        self.bridged_to: Peer | None = None  # what this peer hears is played by that one (browser to browser)
        self.tap: queue.Queue | None = None  # or goes out as 20 ms frames of 8 kHz PCM (to a Media Stream)
        self._tap_buffer = b""
        self._resample_state = None
        self._readers: list[asyncio.Task] = []

        @self.pc.on("track")
        def on_track(track):
            if track.kind == "audio":
                self._readers.append(asyncio.ensure_future(self._listen(track)))

    async def _listen(self, track) -> None:
        from aiortc.mediastreams import MediaStreamError

        while True:
            try:
                frame = await track.recv()
            except (MediaStreamError, asyncio.CancelledError):
                return
            pcm = bytes(frame.planes[0])[: frame.samples * 2 * len(frame.layout.channels)]
            self.heard_frames += 1
            if _rms(pcm) > VOICE_RMS:
                self.heard_voice_frames += 1
            if self.bridged_to is not None or self.tap is not None:
                self._forward(pcm, frame.sample_rate, len(frame.layout.channels))

    def _forward(self, pcm: bytes, rate: int, channels: int) -> None:
        """Play what this peer hears on the bridged peer (8 kHz mono; at most 200 ms behind)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import audioop

            if channels == 2:
                pcm = audioop.tomono(pcm, 2, 0.5, 0.5)
            if rate != RATE:
                pcm, self._resample_state = audioop.ratecv(pcm, 2, 1, rate, RATE, self._resample_state)
        if self.bridged_to is not None:
            frames = self.bridged_to.track.queue
            self.bridged_to.track.play(pcm)
            while len(frames) > 10:
                frames.popleft()
        if self.tap is not None:
            self._tap_buffer += pcm
            while len(self._tap_buffer) >= FRAME_SAMPLES * 2:
                chunk, self._tap_buffer = self._tap_buffer[:FRAME_SAMPLES * 2], self._tap_buffer[FRAME_SAMPLES * 2:]
                try:
                    self.tap.put_nowait(chunk)
                except queue.Full:  # nobody reads fast enough: the oldest audio goes
                    self.tap.get_nowait()
                    self.tap.put_nowait(chunk)

    def open_tap(self) -> "queue.Queue[bytes]":
        """What this peer hears from now on, as 20 ms frames of 8 kHz 16-bit PCM (at most 1 s kept)."""
        self.tap = queue.Queue(maxsize=50)
        return self.tap

    def clear(self) -> None:
        """Drop what is queued to play (a Media Stream's `clear`)."""
        self.media.loop.call_soon_threadsafe(self.track.clear)

    def bridge(self, other: "Peer") -> None:
        """Both ways: each peer plays what the other hears."""
        self.bridged_to, other.bridged_to = other, self

    @classmethod
    def create(cls, media: MediaLoop) -> "Peer":
        async def make():
            return cls(media)

        return media.call(make())

    def answer(self, offer_sdp: str) -> str:
        """The answer to the browser's offer (candidates included: ICE-lite style, as Twilio's media servers)."""
        async def go():
            from aiortc import RTCSessionDescription

            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            await self.pc.setLocalDescription(await self.pc.createAnswer())
            return self.pc.localDescription.sdp

        return self.media.call(go())

    def offer(self) -> str:
        async def go():
            await self.pc.setLocalDescription(await self.pc.createOffer())
            return self.pc.localDescription.sdp

        return self.media.call(go())

    def accept(self, answer_sdp: str) -> None:
        async def go():
            from aiortc import RTCSessionDescription

            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))

        self.media.call(go())

    def play(self, pcm: bytes) -> float:
        return self.media.call(self._async(lambda: self.track.play(pcm)))

    def say(self, text: str) -> float:
        return self.play(speech_pcm(text))

    @property
    def sent_voice_frames(self) -> int:
        return self.track.sent_voice_frames

    async def _async(self, fn):
        return fn()

    def close(self) -> None:
        async def go():
            for task in self._readers:
                task.cancel()
            await self.pc.close()

        try:
            self.media.call(go(), timeout=5)
        except Exception:  # noqa: BLE001 - closing a peer that already failed
            pass
