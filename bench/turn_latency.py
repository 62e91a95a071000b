"""Offline turn latency: the scripted agent on the offline stack (pocketsphinx in its pool, espeak-ng), one call
in process, callers asking for the opening hours in several sentences and voices at real-time pace.

    .venv/bin/python -m bench.turn_latency                 # 3 rounds x 4 modes x 5 turns, about 8 minutes

Per answered turn, from the caller's last voiced frame (the pipeline's own figures, `VoicePipeline.latencies`; the
call page shows the same recognised / first speech / answered):

- `end of turn`: the wait until the turn is declared over (the silence rule, or the turn model's answer);
- `recognition`: from then to the recogniser's text (what is left of the decode; with the early decode, often 0);
- `speech`: from the text to espeak-ng's first bytes (the scripted agent has no chat model);
- `own`: from espeak-ng's first bytes to the first agent audio sent (resampling, μ-law, framing, emitting): the
  pipeline's own share.

Modes, each in the same run: the **baseline** (the code before this bench's changes: the silence rule at 600 ms,
the turn decoded from its end, pocketsphinx's own wide beams), the silence rule with the early decode and the
narrower beams, and the turn model at normal patience (asked at 600 ms of silence) and at quick patience (also asked at 250 ms:
a confident answer, p ≥ 0.9, ends the turn there).
Targets (issue 28): answered p50 ≤ 900 ms on a quiet machine, the pipeline's own share p95 ≤ 30 ms.
Each round's figures are printed; the summary is the median over rounds, with the load average.
"""
from __future__ import annotations

import argparse
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

CALLERS = [("What are your opening hours?", "en-us+klatt"), ("When are you open today?", "en-gb"),
           ("Tell me your opening hours please", "en-us")]
MODES = {
    "baseline: silence 600 ms, decode at end": {"TURN_MODEL": "0", "speculate": False, "beams": "wide"},
    "silence 600 ms + early decode": {"TURN_MODEL": "0", "speculate": True, "beams": ""},
    "turn model, normal (asked at 600 ms)": {"speculate": True, "beams": ""},
    "turn model, quick (early 250 ms >= 0.9)": {"speculate": True, "beams": "", "patience": "quick"},
}
STAGES = ("end_of_turn", "recognition", "speech", "own", "answered")


def _caller_frames(turns: int) -> list[bytes]:
    from bench.turn_set import _espeak
    from calls.engine import audio

    caller = b""
    for i in range(turns):
        text, voice = CALLERS[i % len(CALLERS)]
        caller += audio.silence(300) + audio.pcm16_to_ulaw(_espeak(text, voice)) + audio.silence(5000)
    return [caller[i:i + 160] for i in range(0, len(caller) - len(caller) % 160, 160)]


async def one_call(mode: dict, turns: int) -> list[dict]:
    from calls.engine.context import CallContext
    from calls.engine.engine import call_open
    from calls.providers import cascaded
    from calls.providers.scripted import ScriptedProvider
    from calls.providers.speech import offline

    offline.shutdown_pool()  # a fresh pool: its processes take this mode's beams from the environment
    os.environ["OFFLINE_STT_BEAMS"] = mode["beams"]
    cascaded.SPECULATE_MS = 200 if mode["speculate"] else 10 ** 6
    variables = {k: v for k, v in mode.items() if k.isupper()}
    frames = _caller_frames(turns)
    ctx = CallContext(transport="media_streams", provider="scripted", greeting="", variables=variables,
                      speech={"turn_patience": mode.get("patience", "normal")},
                      scripted_answers=({"keywords": ["hours", "open"], "answer": "We are open nine to five."},))
    provider = ScriptedProvider(ctx)

    async def send(msg):
        pass

    call = call_open("media_streams", ctx, send, stream_sid="MZ1", provider=provider)
    call.start()
    while provider.voice is None or not provider.voice._tasks:
        await asyncio.sleep(0.01)
    pipeline = provider.voice
    if pipeline.vad.turn_model is not None:  # the turn model's worker started before the call, as in a warm worker
        import numpy as np

        await pipeline.vad.turn_model.probability(np.zeros(8000, dtype=np.int16))
    t0 = time.perf_counter()
    for i, frame in enumerate(frames):
        delay = t0 + i * 0.02 - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await call.handle({"event": "media", "streamSid": "MZ1",
                           "media": {"payload": base64.b64encode(frame).decode()}})
    for _ in range(100):  # the last turn's answer (recognition may lag on a loaded machine), at most 5 s
        if len(pipeline.latencies) >= turns:
            break
        await asyncio.sleep(0.05)
    await call.close()
    rows = []
    for r in pipeline.latencies:
        if r["end_of_turn"] is None or r["recognised"] is None or r["first_speech"] is None:
            continue
        rows.append({"end_of_turn": r["end_of_turn"], "recognition": max(0, r["recognised"] - r["end_of_turn"]),
                     "speech": r["first_speech"] - r["recognised"], "own": r["answered"] - r["first_speech"],
                     "answered": r["answered"], "decision": None})
    for row, decision in zip(rows, [d[0] for d in pipeline.decisions]):
        row["decision"] = decision
    offline.shutdown_pool()
    return rows


def estimate(speech_ms: float) -> None:
    """What a quiet machine would take (the method of bench.turn_taking: a stage lands when its measured CPU time on
    one thread has passed): the end-of-turn rule's wait (exact, frame-counted), the decode's CPU from where it
    starts (the end of turn, or the 200 ms pause), the turn model's CPU per question, `speech_ms` as measured."""
    import numpy as np
    from pocketsphinx import Decoder

    from bench.turn_set import _espeak
    from calls.engine import audio
    from calls.providers.speech import offline, turn

    def cpu_ms(fn, n=3):
        times = []
        for _ in range(n):
            t = time.thread_time()
            fn()
            times.append((time.thread_time() - t) * 1000)
        return statistics.median(times)

    model = turn.TurnModel(turn.BUNDLED_SMART_TURN)
    decoders = {"wide": Decoder(samprate=16000, loglevel="FATAL"),
                "narrow": Decoder(samprate=16000, loglevel="FATAL", **offline.DECODER_OPTIONS)}
    rows = {k: [] for k in ("baseline", "silence", "normal", "quick")}
    print(f"\nquiet-machine estimate from CPU times (load average {os.getloadavg()[0]:.2f}; speech {speech_ms:.0f} ms "
          f"as measured)")
    for text, voice in CALLERS:
        pcm8 = audio.ulaw_to_pcm16(audio.pcm16_to_ulaw(_espeak(text, voice)))
        pcm16 = audio.resample(np.asarray(pcm8, dtype=np.int16), 8000, 16000).astype("<i2").tobytes()
        wide = cpu_ms(lambda: offline._run(decoders["wide"], pcm16))
        narrow = cpu_ms(lambda: offline._run(decoders["narrow"], pcm16))
        model_ms = cpu_ms(lambda: model.predict(np.asarray(pcm8, dtype=np.int16)))
        normal, quick = turn.PATIENCE["normal"], turn.PATIENCE["quick"]
        rows["baseline"].append(600 + wide + speech_ms)
        rows["silence"].append(600 + max(0, narrow - 400) + speech_ms)
        eot = normal.pause_ms + model_ms
        rows["normal"].append(eot + max(0, narrow - (eot - 200)) + speech_ms)
        eot = quick.early_ms + model_ms  # when the early answer is confident (else as quick's pause)
        rows["quick"].append(eot + max(0, narrow - (eot - 200)) + speech_ms)
        print(f"  {text!r} ({voice}, {len(pcm8) / 8000:.2f} s): decode CPU wide {wide:.0f} ms, narrow {narrow:.0f} ms; "
              f"turn model {model_ms:.0f} ms per question")
    for name, values in rows.items():
        print(f"  {name:10} answered p50 {statistics.median(values):.0f} ms")


def p95(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(0.95 * len(xs)))]


def main() -> None:
    import django

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--estimate-only", action="store_true", help="only the quiet-machine estimate")
    args = parser.parse_args()
    django.setup()
    if args.estimate_only:
        estimate(50.0)
        return
    loads = [os.getloadavg()[0]]
    summary: dict[str, list[dict]] = {name: [] for name in MODES}
    header = (f"{'mode':42} {'turns':>5} {'answered p50':>12} {'p95':>6} " + " ".join(f"{s + ' p50':>15}"
              for s in STAGES[:-1]) + f" {'own p95':>8}")
    for r in range(args.rounds):
        print(f"round {r + 1}, load average {os.getloadavg()[0]:.2f}")
        print(header)
        for name, mode in MODES.items():
            rows = asyncio.run(one_call(mode, args.turns))
            loads.append(os.getloadavg()[0])
            if not rows:
                print(f"{name:42} no answered turns")
                continue
            figures = {s: statistics.median(x[s] for x in rows) for s in STAGES}
            figures |= {"p95": p95([x["answered"] for x in rows]), "own_p95": p95([x["own"] for x in rows]),
                        "turns": len(rows)}
            summary[name].append(figures)
            print(f"{name:42} {len(rows):>5} {figures['answered']:>10.0f}ms {figures['p95']:>4.0f}ms "
                  + " ".join(f"{figures[s]:>13.0f}ms" for s in STAGES[:-1]) + f" {figures['own_p95']:>6.0f}ms"
                  + "  decisions: " + ",".join(str(x["decision"]) for x in rows))
    print(f"\nmedian over {args.rounds} rounds; load average {min(loads):.2f}-{max(loads):.2f}")
    print(header + f" {'p50/base':>9}")
    base = None
    for name, rounds in summary.items():
        if not rounds:
            continue
        m = {k: statistics.median(x[k] for x in rounds) for k in rounds[0]}
        base = base or m["answered"]
        print(f"{name:42} {m['turns']:>5.0f} {m['answered']:>10.0f}ms {m['p95']:>4.0f}ms "
              + " ".join(f"{m[s]:>13.0f}ms" for s in STAGES[:-1]) + f" {m['own_p95']:>6.0f}ms"
              + f" {m['answered'] / base:>9.2f}")
    speech = [x["speech"] for rounds in summary.values() for x in rounds]
    estimate(statistics.median(speech) if speech else 50.0)


if __name__ == "__main__":
    main()
