# ruff: noqa: I001 - config.asgi is imported first: it sets Django up
"""The ASGI app `bench.media_streams_served` serves: the runtime's own app, plus zero-latency "bench" speech and
chat stages registered in the speech registry (never in production: only this module adds them), and, with
`BENCH_ECHO=1`, each caller frame sent back after the cascaded pipeline has handled it (so a client measures the
whole per-frame path from outside: socket, Channels consumer, engine, pipeline with its VAD and turn model).

    uvicorn bench._served_app:application
"""
from __future__ import annotations

import os

from config.asgi import application  # noqa: F401 - served by uvicorn (sets Django up)

from calls.engine.events import AudioOut  # noqa: E402
from calls.providers import cascaded  # noqa: E402
from calls.providers.chat import base as chat_base  # noqa: E402
from calls.providers.chat.base import ChatModel  # noqa: E402
from calls.providers.speech import registry  # noqa: E402
from calls.providers.speech.base import Final, SpeechToText, TextToSpeech  # noqa: E402


class InstantSTT(SpeechToText):
    """Answers each end of turn at once."""

    name = "bench"
    sample_rate = 8000

    async def send(self, pcm16: bytes) -> None:
        pass

    async def end_of_turn(self) -> None:
        self.events.put_nowait(Final("What are your opening hours?"))


class InstantTTS(TextToSpeech):
    """100 ms of a quiet tone per word, at once."""

    name = "bench"
    sample_rate = 8000

    async def synthesize(self, text: str):
        import numpy as np

        t = np.arange(800) / 8000
        chunk = (2000 * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes()
        for _ in text.split():
            yield chunk


class InstantChat(ChatModel):
    vendor = "bench"

    async def stream(self, messages, *, tools=None):
        for token in ("We are open ", "nine to five. ", "Anything else?"):
            yield token


registry.STT["bench"] = "bench._served_app:InstantSTT"
registry.TTS["bench"] = "bench._served_app:InstantTTS"
chat_base.VENDORS["bench"] = "bench._served_app:InstantChat"
chat_base.SETTINGS_PREFIX["bench"] = "BENCH"
registry.PREFIX["bench"] = "BENCH"

if os.environ.get("BENCH_GC_UNFREEZE") == "1":  # the baseline of `--gc-baseline`: the app as before gc.freeze()
    import gc

    gc.unfreeze()

if os.environ.get("BENCH_ECHO") == "1":
    _on_audio = cascaded.CascadedProvider.on_audio

    async def on_audio(self, payload_b64: str) -> None:
        await _on_audio(self, payload_b64)
        self.emit(AudioOut(payload_b64, ""))  # the frame back, once the pipeline has handled it

    cascaded.CascadedProvider.on_audio = on_audio

if os.environ.get("BENCH_STATS"):
    # The transcript writer's counters (how many lines each commit carried), for the bench to print: written at
    # exit and on SIGUSR2 (the bench sends it before it stops the server).
    import atexit
    import json
    import signal

    def _write_stats():
        from calls.engine import persistence
        from calls.providers.speech.turn import TurnModel

        w = persistence._writer
        stats = {"flushes": w.flushes, "stored": w.stored, "dropped": w.dropped} if w else {}
        stats["turn_model"] = {"answered": TurnModel.answered, "skipped": TurnModel.skipped}
        with open(os.environ["BENCH_STATS"], "w") as f:
            json.dump(stats, f)

    atexit.register(_write_stats)
    signal.signal(signal.SIGUSR2, lambda signum, frame: _write_stats())

if os.environ.get("BENCH_PROFILE"):
    # cProfile of the event-loop thread while the bench measures: SIGUSR1 starts it afresh, SIGUSR2 stops it and
    # writes the stats to BENCH_PROFILE (signal handlers run in the main thread, which is the loop's).
    import cProfile
    import signal

    _profiler = cProfile.Profile()

    def _profile_start(signum, frame):
        global _profiler
        _profiler = cProfile.Profile()
        _profiler.enable()

    def _profile_stop(signum, frame):
        _profiler.disable()
        _profiler.dump_stats(os.environ["BENCH_PROFILE"])
        if os.environ.get("BENCH_STATS"):
            _write_stats()

    signal.signal(signal.SIGUSR1, _profile_start)
    signal.signal(signal.SIGUSR2, _profile_stop)
