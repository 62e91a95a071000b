"""Offline recognition must not stall other calls: `python -m bench.recognition_isolation`.

    .venv/bin/python -m bench.recognition_isolation --calls 100 --recognising 10 --seconds 8

One process, one event loop, `--calls` calls. Every call sends its outbound audio as Twilio gets it: a 20 ms
frame (μ-law, base64, the `media` JSON) every 20 ms on its own task; the bench records the gap between each
call's consecutive frames. Meanwhile `--recognising` of them are being recognised: each decodes spoken turns
(espeak-ng, "I want to talk to sales", μ-law 8 kHz → 16 kHz) back to back, through
`PocketsphinxSpeechToText` as a call does. Modes, in the same run:

- `baseline`: no recognition (the frames alone);
- `pool`: recognition in the recognition pool (`calls.providers.speech.offline`, what calls do now);
- `on-loop`: the same decode called on the event loop's thread, for one call only (what a decode holding the GIL
  on the loop's thread did to the others before; `--skip-on-loop` leaves it out).

Prints, per mode, the worst gap between consecutive outbound frames over all calls, its p99 and p99.9, the
ratio of the worst gap to the baseline's, and the turns decoded. Target: worst gap ≤ 20 ms over the 20 ms
pace (a frame late by at most one frame) at 100 calls per process. On a shared 2-core machine the pool's
processes compete with the loop for the cores: the figure is the loop's, beside its baseline in the same run.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import sys
import time

import numpy as np

FRAME_S = 0.02


async def _frames(call: int, gaps: list, stop: asyncio.Event) -> None:
    payload = bytes([0xFF]) * 160
    last = time.perf_counter()
    next_at = last + FRAME_S
    while not stop.is_set():
        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
        json.dumps({"event": "media", "streamSid": f"MZ{call}", "media": {
            "payload": base64.b64encode(payload).decode()}})
        now = time.perf_counter()
        gaps.append(now - last)
        last = now
        next_at += FRAME_S
        if next_at < now - 1.0:  # never "catch up" a long stall with a burst
            next_at = now


async def _recognising(turn_pcm16: bytes, mode: str, decoded: list, stop: asyncio.Event) -> None:
    from calls.providers.speech import offline
    from calls.providers.speech.base import SpeechSettings

    stt = offline.PocketsphinxSpeechToText(SpeechSettings(hints=("sales", "support")))
    await stt.start()
    while not stop.is_set():
        if mode == "on-loop":
            offline.recognise(turn_pcm16, ("sales", "support"), "open")  # blocks the loop: the old behaviour
        else:
            await stt.send(turn_pcm16)
            await stt.end_of_turn()
            await stt.events.get()
        decoded.append(1)
        await asyncio.sleep(0)


async def _run(mode: str, calls: int, recognising: int, seconds: float, turn: bytes) -> dict:
    stop = asyncio.Event()
    gaps: list[float] = []
    decoded: list[int] = []
    tasks = [asyncio.create_task(_frames(i, gaps, stop)) for i in range(calls)]
    if mode != "baseline":
        # On the loop, one call being recognised is enough to show the stall (more would stall it for minutes).
        count = 1 if mode == "on-loop" else recognising
        tasks += [asyncio.create_task(_recognising(turn, mode, decoded, stop)) for _ in range(count)]
    await asyncio.sleep(0.5)
    gaps.clear()  # past the start
    await asyncio.sleep(seconds)
    stop.set()
    measured = list(gaps)
    await asyncio.gather(*tasks, return_exceptions=True)
    g = np.array(measured) * 1000
    return {"mode": mode, "frames": len(g), "worst": float(g.max()), "p99": float(np.percentile(g, 99)),
            "p999": float(np.percentile(g, 99.9)), "turns": len(decoded)}


def _turn_audio() -> bytes:
    import shutil
    import subprocess

    from calls.engine import audio

    if not shutil.which("espeak-ng"):
        sys.exit("espeak-ng is not installed")
    wav = subprocess.run(["espeak-ng", "--stdout", "-v", "en-us+klatt", "-s", "150", "I want to talk to sales"],
                         capture_output=True, check=True).stdout
    i = wav.index(b"data") + 8
    pcm = np.frombuffer(wav[i: i + (len(wav) - i) // 2 * 2], dtype="<i2")
    ulaw = audio.pcm16_to_ulaw(audio.resample(pcm, 22050, 8000))
    return audio.ulaw_to_pcm(ulaw, 16000)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--recognising", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--skip-on-loop", action="store_true")
    args = parser.parse_args(argv)
    from calls.providers.speech import offline

    turn = _turn_audio()
    offline.recognition_pool()
    asyncio.run(offline._in_pool(offline._prepare, ("sales", "support")))  # warm (as a call's start does)
    modes = ["baseline", "pool"] + ([] if args.skip_on_loop else ["on-loop"])
    rows = [asyncio.run(_run(m, args.calls, args.recognising, args.seconds, turn)) for m in modes]
    offline.shutdown_pool()
    base = rows[0]["worst"]
    print(f"calls={args.calls} recognising={args.recognising} seconds={args.seconds} pool={offline.pool_size()} "
          f"cores={os.cpu_count()} load={os.getloadavg()[0]:.1f}")
    print(f"{'mode':10s} {'frames':>8s} {'turns':>6s} {'worst ms':>9s} {'p99 ms':>7s} {'p99.9 ms':>9s} "
          f"{'worst/base':>10s} {'late ≤ 20 ms':>12s}")
    for r in rows:
        late = r["worst"] - FRAME_S * 1000
        print(f"{r['mode']:10s} {r['frames']:8d} {r['turns']:6d} {r['worst']:9.1f} {r['p99']:7.1f} {r['p999']:9.1f} "
              f"{r['worst'] / base:10.2f} {'yes' if late <= 20 else 'no':>12s}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
