"""Offline turn latency: the scripted agent on the offline stack (pocketsphinx, espeak-ng), one call in process,
a caller asking "What are your opening hours" at real-time pace, six turns per mode.

    .venv/bin/python -m bench.turn_latency

Per answered turn, from the caller's last voiced frame (the runtime's own `TurnLatency`, as the call page shows
it): `recognised` (end-of-turn wait + recognition), `first speech` (espeak-ng's first bytes), `answered` (first
agent audio sent). The pipeline's own share is `answered − first speech` (resampling, μ-law, framing, emitting)
plus the turn model's wait when it is on. Modes: the silence rule (`TURN_MODEL=0`, 600 ms) and the turn model
(normal patience). Targets (issue 28): answered p50 ≤ 900 ms on a quiet machine, the pipeline's share p95 ≤ 30 ms.
"""
from __future__ import annotations

import asyncio
import base64
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


async def one_call(variables: dict, turns: int = 6) -> list[dict]:
    from bench.turn_set import _espeak
    from calls.engine import audio
    from calls.engine.context import CallContext
    from calls.engine.engine import call_open
    from calls.providers.scripted import ScriptedProvider

    speech = audio.pcm16_to_ulaw(_espeak("What are your opening hours?", "en-us+klatt"))
    caller = audio.silence(300) + speech + audio.silence(2700)
    frames = [caller[i:i + 160] for i in range(0, len(caller) - len(caller) % 160, 160)]
    ctx = CallContext(transport="media_streams", provider="scripted", greeting="", variables=variables,
                      scripted_answers=({"keywords": ["hours", "open"], "answer": "We are open nine to five."},))
    provider = ScriptedProvider(ctx)

    async def send(msg):
        pass

    call = call_open("media_streams", ctx, send, stream_sid="MZ1", provider=provider)
    call.start()
    while provider.voice is None or not provider.voice._tasks:
        await asyncio.sleep(0.01)
    t0 = time.perf_counter()
    for i, frame in enumerate(frames * turns):
        delay = t0 + i * 0.02 - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await call.handle({"event": "media", "streamSid": "MZ1", "media": {"payload": base64.b64encode(frame).decode()}})
    for _ in range(100):  # the last turn's answer (recognition may lag on a loaded machine), at most 5 s
        if sum(1 for t in call.turns if len(t) > 4 and t[4]) >= turns:
            break
        await asyncio.sleep(0.05)
    await call.close()
    return [t[4] for t in call.turns if len(t) > 4 and t[4]]


def main() -> None:
    import django

    django.setup()
    print(f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'mode':28} {'turns':>5} {'answered p50':>13} {'p95':>6} {'recognised p50':>15} {'first speech p50':>17} "
          f"{'own share p95':>14}")
    for name, variables in (("silence rule 600 ms", {"TURN_MODEL": "0"}), ("turn model (normal)", {})):
        rows = asyncio.run(one_call(variables))
        if not rows:
            print(f"{name:28} no answered turns")
            continue
        lat = sorted(r["latency_ms"] for r in rows)
        own = sorted(r["latency_ms"] - (r["first_byte_ms"] or 0) for r in rows)
        p95 = (lambda xs: xs[min(len(xs) - 1, int(0.95 * len(xs)))])
        print(f"{name:28} {len(rows):>5} {statistics.median(lat):>11.0f}ms {p95(lat):>4.0f}ms "
              f"{statistics.median(r['recognition_ms'] for r in rows):>13.0f}ms "
              f"{statistics.median(r['first_byte_ms'] for r in rows):>15.0f}ms {p95(own):>12.0f}ms")


if __name__ == "__main__":
    main()
