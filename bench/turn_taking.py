"""End of turn: the silence rule against smart-turn v3.2 on the labelled caller set of `bench.turn_set`.

    .venv/bin/python -m bench.turn_taking                    # the whole set (4 voices x 18 scripts)
    .venv/bin/python -m bench.turn_taking --voices en-us     # a quicker run

Each item goes frame by frame (20 ms, 8 kHz, as Twilio sends them) through the runtime's own voice activity
(`calls.providers.speech.vad.VoiceActivity`, webrtcvad at aggressiveness 2); with the turn model, at each
pause the model (`calls.providers.speech.turn.TurnModel`, the real ONNX session) is asked about the turn so far,
and its answer takes effect when the inference would have finished on a quiet machine (its measured CPU time on
one thread, rounded up to the next frame; the caller may have resumed by then; wall times are printed too). The first end of turn decides the item:

- a **false cut-off**: the turn was ended inside one of its pauses (the caller had more to say);
- otherwise the **end-of-turn delay**: from the end of the caller's last word to the end of turn.

Rows: the silence rule at 600 ms (the baseline, `VAD_END_MS`'s default) and 1000 ms, and the model at each
turn patience (quick / normal / patient: pause before asking, threshold, fallback silence). Ratios are to the
baseline row of the same run.
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

FRAME_MS = 20


def simulate(item, *, end_ms: int, pause_ms: int = 0, threshold: float = 0.5, model=None, cache=None,
             timings=None, early_ms: int = 0, early_threshold: float = 1.0) -> int | None:
    """The ms at which the first end of turn is decided (None: never)."""
    import numpy as np

    from calls.providers.speech import vad

    voice = vad.VoiceActivity(end_ms=end_ms, pause_ms=pause_ms if model else 0)
    frame_bytes = vad.FRAME_SAMPLES * 2
    pcm = item.pcm.astype("<i2").tobytes()
    turn: list[bytes] = []
    pending: tuple[int, int, bool] | None = None  # (frame at which the answer lands, pause number, finished)
    early: tuple[int, int, bool] | None = None  # the early question's (frame, voiced frames so far, confident)
    early_frames = early_ms // FRAME_MS
    for i in range(len(pcm) // frame_bytes):
        frame = pcm[i * frame_bytes:(i + 1) * frame_bytes]
        edge = voice.feed(frame)
        if edge == vad.START:
            turn = list(voice.recent)[-10:]
        elif voice.speaking:
            turn.append(frame)
        if edge == vad.END:
            return (i + 1) * FRAME_MS
        if model is not None and early_frames and voice.speaking and voice.quiet_frames == early_frames:
            p, cpu_ms = _ask(model, item, i, turn, cache, timings)
            early = (i + math.ceil(cpu_ms / FRAME_MS), voice.speech_frames, p >= early_threshold)
        if early is not None and i >= early[0]:
            at, spoken, confident = early
            early = None
            if confident and voice.speaking and voice.speech_frames == spoken and voice.quiet_frames:
                return (i + 1) * FRAME_MS
        if edge == vad.PAUSE and model is not None:
            key = (item.name, i)
            if key not in cache:
                started, cpu = time.perf_counter(), time.thread_time()
                p = model.predict(np.frombuffer(b"".join(turn[-400:]), dtype="<i2"))
                cache[key] = (p, (time.thread_time() - cpu) * 1000)
                timings.append(((time.perf_counter() - started) * 1000, cache[key][1]))
            p, cpu_ms = cache[key]
            # The answer lands when one thread has done the work (its CPU time: a quiet machine's wall time).
            pending = (i + math.ceil(cpu_ms / FRAME_MS), voice.pauses, p >= threshold)
        if pending is not None and i >= pending[0]:
            at, pause, finished = pending
            pending = None
            if finished and voice.in_pause(pause):
                return (i + 1) * FRAME_MS
    return None


def _ask(model, item, i, turn, cache, timings) -> tuple[float, float]:
    import numpy as np

    key = (item.name, i)
    if key not in cache:
        started, cpu = time.perf_counter(), time.thread_time()
        p = model.predict(np.frombuffer(b"".join(turn[-400:]), dtype="<i2"))
        cache[key] = (p, (time.thread_time() - cpu) * 1000)
        timings.append(((time.perf_counter() - started) * 1000, cache[key][1]))
    return cache[key]


def evaluate(items, **mode) -> dict:
    cutoffs, delays, short, missed = 0, [], [], 0
    paused = [it for it in items if it.pauses]
    for item in items:
        at = simulate(item, **mode)
        if at is None:
            missed += 1
            continue
        if at < item.end_ms:
            cutoffs += 1 if item.pauses else 0
            continue
        delays.append(at - item.end_ms)
        if not item.pauses:
            short.append(at - item.end_ms)
    q = statistics.quantiles(delays, n=10) if len(delays) >= 2 else [0] * 9
    return {"cutoffs": cutoffs, "paused": len(paused), "delay_p50": statistics.median(delays) if delays else 0,
            "delay_p90": q[8], "short_p50": statistics.median(short) if short else 0, "missed": missed,
            "ended": len(delays)}


def main() -> None:
    import django

    django.setup()
    from bench.turn_set import VOICES, build
    from calls.providers.speech import turn

    parser = argparse.ArgumentParser()
    parser.add_argument("--voices", default=",".join(VOICES))
    parser.add_argument("--early", default="", type=lambda v: [(int(a), float(b)) for a, b in
                                                             (x.split(":") for x in v.split(",") if x)],
                        help="extra rows: early questions as ms:threshold,... on the normal patience (tuning)")
    args = parser.parse_args()
    items = build(tuple(v for v in args.voices.split(",") if v))
    model = turn.TurnModel(turn.BUNDLED_SMART_TURN)
    cache: dict = {}
    timings: list[float] = []
    cpu0 = time.process_time()
    rows = [("silence rule 600 ms (baseline)", evaluate(items, end_ms=600)),
            ("silence rule 1000 ms", evaluate(items, end_ms=1000))]
    for name in ("quick", "normal", "patient"):
        p = turn.PATIENCE[name]
        early = f"early {p.early_ms} ms ≥ {p.early_threshold}, " if p.early_ms else ""
        rows.append((f"turn model, {name} ({early}{p.threshold} / {p.fallback_ms} ms)",
                     evaluate(items, end_ms=p.fallback_ms, pause_ms=p.pause_ms, threshold=p.threshold, model=model,
                              cache=cache, timings=timings, early_ms=p.early_ms, early_threshold=p.early_threshold)))
    for early_ms, early_threshold in args.early:
        p = turn.PATIENCE["normal"]
        rows.append((f"normal + early {early_ms} ms ≥ {early_threshold}",
                     evaluate(items, end_ms=p.fallback_ms, pause_ms=p.pause_ms, threshold=p.threshold, model=model,
                              cache=cache, timings=timings, early_ms=early_ms, early_threshold=early_threshold)))
    cpu = time.process_time() - cpu0
    n_paused = rows[0][1]["paused"]
    print(f"{len(items)} turns ({n_paused} with pauses inside, {len(items) - n_paused} complete short answers), "
          f"voices: {args.voices}; load average {os.getloadavg()[0]:.2f}")
    base = rows[0][1]
    print(f"{'mode':44} {'cut-offs':>9} {'delay p50':>10} {'p90':>7} {'short p50':>10} {'missed':>7} "
          f"{'p50/base':>9}")
    for name, r in rows:
        ratio = r["delay_p50"] / base["delay_p50"] if base["delay_p50"] else float("nan")
        print(f"{name:44} {r['cutoffs']:>4}/{r['paused']:<4} {r['delay_p50']:>8.0f}ms {r['delay_p90']:>5.0f}ms "
              f"{r['short_p50']:>8.0f}ms {r['missed']:>7} {ratio:>9.2f}")
    if timings:
        walls, cpus = [w for w, _ in timings], [c for _, c in timings]
        print(f"turn model: {len(timings)} inferences (features + model, one thread): CPU p50 "
              f"{statistics.median(cpus):.0f} ms, max {max(cpus):.0f} ms (the answer's lag in the rows above); wall "
              f"p50 {statistics.median(walls):.0f} ms, max {max(walls):.0f} ms on this machine now; bench CPU "
              f"{cpu:.1f} s")


if __name__ == "__main__":
    main()
