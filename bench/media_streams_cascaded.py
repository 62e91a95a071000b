"""The cascaded Media Streams pipeline's own cost: N calls in one process, voice activity on, zero-latency stages.

    .venv/bin/python -m bench.media_streams_cascaded                        # levels 25,50,100,150,200; 8 s each
    .venv/bin/python -m bench.media_streams_cascaded --levels 50,100 --seconds 5 --silero

Each simulated call is a Media Streams engine (`call_open("media_streams", …)`) with the `CascadedProvider` (the runtime's own classes, in
process: no websocket, so what is measured is the pipeline, not the socket layer `bench.media_streams` covers).
Its caller speaks (espeak-ng's "What are your opening hours", μ-law 8 kHz, or a voiced synthetic signal without
espeak-ng), pauses 1.2 s, speaks again; one 20 ms frame every 20 ms, real-time pacing, random phase per call.
The stages answer at once: speech-to-text returns its text on end of turn, the chat model streams two sentences,
text-to-speech returns 100 ms of audio per word.

Reported per level, with the same run's baseline (the same calls and frames through a provider that drops the
audio) as the ratio denominator:
- added per-frame latency p99: time from a frame's due time to the end of its handling (the event loop's backlog
  included); a level passes when p99 < 20 ms and no frame is dropped (every due frame handled in the window);
- the pipeline's share of a turn's latency p95: voice activity's end of turn -> first agent audio sent (with
  zero-latency stages this is our own work only);
- CPU per call (process CPU time / window / N), webrtcvad only, or webrtcvad + Silero with --silero / --both.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import os
import random
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
FRAME = 0.020
P99_LIMIT_MS = 20.0


def _caller_audio() -> bytes:
    import shutil
    import subprocess

    import numpy as np

    from calls.engine import audio

    if shutil.which("espeak-ng"):
        wav = subprocess.run(["espeak-ng", "--stdout", "-v", "en-us+klatt", "-s", "150",
                              "What are your opening hours"], capture_output=True, check=True).stdout
        i = wav.index(b"data") + 8
        pcm = np.frombuffer(wav[i: i + (len(wav) - i) // 2 * 2], dtype="<i2")
        speech = audio.pcm16_to_ulaw(audio.resample(pcm, int.from_bytes(wav[24:28], "little"), 8000))
    else:  # a voiced, syllable-modulated signal webrtcvad takes for speech
        t = np.arange(int(8000 * 1.8)) / 8000
        wave = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((140, 280, 420, 700, 1100), 1))
        wave *= 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2
        speech = audio.pcm16_to_ulaw((wave * 4000).astype(np.int16))
    return audio.silence(300) + speech + audio.silence(1200)


def _stages():
    from calls.providers.speech.base import Final, SpeechToText, TextToSpeech

    class InstantSTT(SpeechToText):
        name = "instant"

        def __init__(self):
            super().__init__(None)

        async def send(self, pcm16):
            pass

        async def end_of_turn(self):
            self.events.put_nowait(Final("what are your opening hours"))

    class InstantTTS(TextToSpeech):
        name = "instant"
        sample_rate = 16000
        WORD = b"\x00\x08" * 1600

        def __init__(self):
            super().__init__(None)

        async def synthesize(self, text):
            for _ in text.split():
                yield self.WORD

    from calls.providers.chat import ChatModel

    class InstantChat(ChatModel):
        async def stream(self, messages, tools=None):
            for token in ("We are open ", "nine to five. ", "Anything ", "else?"):
                yield token

    return InstantSTT, InstantTTS, InstantChat


async def _level(n: int, seconds: float, *, mode: str, caller: bytes) -> dict:
    from calls.engine.context import CallContext
    from calls.engine.engine import call_open
    from calls.engine.events import TurnLatency
    from calls.providers.base import Provider
    from calls.providers.cascaded import CascadedProvider
    from calls.providers.speech import vad

    InstantSTT, InstantTTS, InstantChat = _stages()

    class DropAudio(Provider):
        name = "drop"

        async def start(self):
            pass

    frames = [base64.b64encode(caller[i:i + 160]).decode() for i in range(0, len(caller) - 159, 160)]
    lateness: list[float] = []
    turn_ms: list[int] = []
    handled = due = 0

    async def one(k: int, start_at: float) -> None:
        nonlocal handled, due
        ctx = CallContext(transport="media_streams", provider="cascaded", call_sid=f"CA{k:032d}")
        if mode == "baseline":
            provider = DropAudio(ctx)
        else:
            provider = CascadedProvider(ctx, stt=InstantSTT(), tts=InstantTTS(), chat=InstantChat(),
                                        voice_activity=vad.VoiceActivity(
                                            silero_path=vad.BUNDLED_SILERO if mode == "silero" else ""))
        original = provider.emit

        def emit(event):
            if isinstance(event, TurnLatency):
                turn_ms.append(event.total_ms)
            original(event)
        provider.emit = emit

        async def send(_msg):
            pass
        call = call_open("media_streams", ctx, send, stream_sid=f"MZ{k:032d}", provider=provider)
        call.start()
        offset = random.randrange(len(frames))
        i = 0
        loop = asyncio.get_running_loop()
        while True:
            at = start_at + i * FRAME
            if at > start_at + seconds:
                break
            delay = at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            due += 1
            await call.handle({"event": "media", "streamSid": call.wire.stream_sid,
                               "media": {"payload": frames[(offset + i) % len(frames)]}})
            late = loop.time() - at
            lateness.append(late * 1000)
            if late < 1.0:  # handled more than a second late: Twilio's caller has lost it (a drop)
                handled += 1
            i += 1
        await call.close()

    loop = asyncio.get_running_loop()
    start_at = loop.time() + 0.5
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    wall0 = time.perf_counter()
    await asyncio.gather(*(one(k, start_at + random.random() * FRAME) for k in range(n)))
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.perf_counter() - wall0
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    lateness.sort()
    turn_ms.sort()
    return {
        "n": n, "mode": mode, "frames": handled, "dropped": due - handled,
        "p50": statistics.median(lateness) if lateness else 0.0,
        "p99": lateness[int(len(lateness) * 0.99) - 1] if lateness else 0.0,
        "turns": len(turn_ms),
        "turn_p95": turn_ms[max(0, int(len(turn_ms) * 0.95) - 1)] if turn_ms else None,
        "cpu_per_call_ms_per_s": cpu / wall / n * 1000,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", default="25,50,100,150,200")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--silero", action="store_true", help="webrtcvad + Silero instead of webrtcvad only")
    parser.add_argument("--both", action="store_true", help="webrtcvad, then webrtcvad + Silero, per level")
    args = parser.parse_args(argv)
    import logging

    import django

    django.setup()
    logging.disable(logging.WARNING)
    caller = _caller_audio()
    levels = [int(x) for x in args.levels.split(",") if x]
    modes = ["webrtcvad", "silero"] if args.both else (["silero"] if args.silero else ["webrtcvad"])
    header = (f"{'calls':>5} {'mode':>10} {'frames':>7} {'drop':>5} {'p50 ms':>7} {'p99 ms':>7} {'p99/base':>8} "
              f"{'turns':>5} {'turn p95':>8} {'cpu ms/s/call':>13} {'cpu/base':>8}  verdict")
    print(header)
    best = {m: 0 for m in modes}
    for n in levels:
        base = asyncio.run(_level(n, args.seconds, mode="baseline", caller=caller))
        print(f"{n:>5} {'baseline':>10} {base['frames']:>7} {base['dropped']:>5} {base['p50']:>7.2f} "
              f"{base['p99']:>7.2f} {1.0:>8.2f} {'':>5} {'':>8} {base['cpu_per_call_ms_per_s']:>13.3f} {1.0:>8.2f}")
        for mode in modes:
            r = asyncio.run(_level(n, args.seconds, mode=mode, caller=caller))
            ok = r["p99"] < P99_LIMIT_MS and r["dropped"] == 0
            if ok:
                best[mode] = max(best[mode], n)
            p99_ratio = r["p99"] / base["p99"] if base["p99"] else float("inf")
            cpu_ratio = r["cpu_per_call_ms_per_s"] / base["cpu_per_call_ms_per_s"] \
                if base["cpu_per_call_ms_per_s"] else float("inf")
            print(f"{n:>5} {mode:>10} {r['frames']:>7} {r['dropped']:>5} {r['p50']:>7.2f} {r['p99']:>7.2f} "
                  f"{p99_ratio:>8.2f} {r['turns']:>5} {str(r['turn_p95']):>8} {r['cpu_per_call_ms_per_s']:>13.3f} "
                  f"{cpu_ratio:>8.2f}  {'pass' if ok else 'FAIL'}")
    for mode, n in best.items():
        print(f"largest passing level ({mode}): {n} calls per process")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
