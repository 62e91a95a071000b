"""The offline scripted agent over simulated phone calls: `python -m bench.offline_agent`.

    .venv/bin/python -m bench.offline_agent            # about 2-4 minutes on 2 cores

The set (generated here, `caller_set()`): callers who want sales or support say one of several sentences in one of
six espeak-ng voices, carried as a phone line carries them (μ-law 8 kHz, back to 16 kHz for the recogniser, as the
pipeline does). Each call runs the scripted agent's own decisions (`calls.providers.scripted.Dialogue`) on the
offline recogniser's own output (`calls.providers.speech.offline.recognise`: open decode + keyword spotting, or the
closed yes/no grammar while a confirmation is pending), and the caller answers as a person would:

- a confirmation of what they want: "yes" (by voice; the "keys" persona presses the key offered);
- a confirmation of something else: "no";
- the same question asked again, or the keys offered: the key it offers for what they want (a "voice" persona
  says the keyword instead when the keys are offered at the agent's first turn).

Reports: calls reaching the intended outcome within three agent turns (target ≥ 95%), wrong actions (target 0),
turns taken; and the recogniser's own figures beside it, on the same audio: keyword spotting hits and false alarms
(per sentence and keyword), the closed yes/no grammar's yes-accepted on "yes" utterances and on everything else.
The baseline in the same run is the old agent (`--old` rule: act at once on any keyword spotted or heard).

`--held-out` runs a second set never used to tune the recogniser or the agent (thresholds, grammar, the rules of
`Dialogue`): other espeak-ng voices and variants (Received Pronunciation, Lancaster, West Midlands, New York, and
the m3 / f4 / Storm variants; Debian's mbrola voices are not installed here), other sentences for the same
intents, other "other" sentences, and callers who confirm with "yeah" / "yes please" instead of "yes".
"""
from __future__ import annotations

import argparse
import asyncio
import io
import os
import shutil
import subprocess
import sys
import time
import wave
from collections import Counter

VOICES = ["en-us+klatt", "en-us", "en-gb", "en-us+f3", "en-gb-scotland", "en-029"]
RULES = [{"keyword": "sales", "digit": "1", "action": "transfer_to_sales"},
         {"keyword": "support", "digit": "2", "action": "transfer_to_support"},
         {"keyword": "goodbye", "digit": "9", "action": "hangup"}]
ANSWERS = [{"keywords": ["hours", "open"], "answer": "We are open nine to five."}]
HINTS = ("sales", "support", "goodbye")
SENTENCES = {
    "sales": ["I want to talk to sales", "sales please", "can I speak to someone in sales",
              "I would like to buy something, put me through to sales"],
    "support": ["I need support", "can I talk to support please", "my printer is broken, I need support"],
}
ANSWER_WORDS = ["yes", "no", "yeah", "nope"]
OTHER = ["hello can you hear me", "what are your opening hours", "um", "okay"]
YES = ["yes"]

# The held-out set: nothing here was used in tuning (bench.recognition's thresholds, the answer grammar, Dialogue).
HELD_OUT = {
    "voices": ["en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-us-nyc", "en-us+m3", "en-gb+f4",
               "en-us+Storm"],
    "sentences": {
        "sales": ["could you connect me to sales", "I'd like to speak with sales about a new order",
                  "put me through to the sales team please", "sales department please"],
        "support": ["I have a problem with my account, I need support", "technical support please",
                    "can you transfer me to support"],
    },
    "answer_words": ["yes please", "yeah", "no thanks", "nope"],
    "other": ["hi there, is this the right number", "I'm calling about my bill", "hmm", "sure"],
    "yes": ["yeah", "yes please"],
}


def caller_set(voices=VOICES, sentences=None, yes=None) -> list[dict]:
    """The simulated callers: (intent, opening sentence, voice, persona, how they say yes)."""
    sentences, yes = sentences or SENTENCES, yes or YES
    return [{"intent": intent, "sentence": s, "voice": v, "persona": persona, "yes": yes[i % len(yes)]}
            for i, (intent, s, v, persona) in enumerate(
                (intent, s, v, persona) for intent, ss in sentences.items() for s in ss for v in voices
                for persona in ("voice", "keys"))]


def phone_audio(text: str, voice: str) -> bytes:
    """`text` in `voice`, as the recogniser gets it from a phone line (μ-law 8 kHz → PCM16 16 kHz)."""
    import numpy as np

    from calls.engine import audio

    wav = subprocess.run(["espeak-ng", "--stdout", "-v", voice, "-s", "150", "--", text], capture_output=True,
                         check=True).stdout
    with wave.open(io.BytesIO(wav)) as w:
        rate, pcm = w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return audio.ulaw_to_pcm(audio.pcm16_to_ulaw(audio.resample(pcm, rate, 8000)), 16000)


class Recogniser:
    """The pool's `recognise`, cached per (text, voice, mode): the same utterance decodes the same way."""

    def __init__(self):
        self.cache: dict = {}
        self.audio: dict = {}

    async def __call__(self, text: str, voice: str, expect: str) -> dict:
        from calls.providers.speech import offline

        key = (text, voice, expect)
        if key not in self.cache:
            if (text, voice) not in self.audio:
                self.audio[(text, voice)] = await asyncio.to_thread(phone_audio, text, voice)
            self.cache[key] = asyncio.ensure_future(
                offline._in_pool(offline.recognise, self.audio[(text, voice)], HINTS, expect))
        return await self.cache[key]


async def simulate(caller: dict, recognise: Recogniser, old: bool = False) -> dict:
    """One call: the agent's turns until it acts or three turns pass; the outcome."""
    from calls.providers.scripted import Dialogue

    dialogue = Dialogue(RULES, ANSWERS)
    intent = caller["intent"]
    digit = next(r["digit"] for r in RULES if r["keyword"] == intent)
    said_keyword = False
    result = await recognise(caller["sentence"], caller["voice"], "open")
    if old:
        words = set(result["text"].split()) | set(result["keywords"])
        acted = next((r for r in RULES if r["keyword"] in words), None)
        return {"turns": 1, "acted": acted["keyword"] if acted else None}
    step = dialogue.heard(result["text"], tuple(result["keywords"]))
    for turn in range(1, 4):
        if step.rule is not None:
            return {"turns": turn, "acted": step.rule["keyword"]}
        if turn == 3:
            break
        said = step.say.lower()
        asked_again = said.startswith("sorry, i did not catch that.") and "is that right" in said
        if "is that right" in said and not said.startswith(f"sorry, i did not catch that. {intent}") \
                and not said.startswith(intent):
            reply = ("say", "no")
        elif "is that right" in said and (asked_again or caller["persona"] == "keys"):
            reply = ("press", digit)
        elif "is that right" in said:
            reply = ("say", caller.get("yes", "yes"))
        elif f"press {digit}" in said and caller["persona"] == "voice" and turn == 1 and not said_keyword:
            reply, said_keyword = ("say", intent), True
        else:
            reply = ("press", digit)
        if reply[0] == "press":
            step = dialogue.pressed(reply[1]) or step
            continue
        expect = step.expect
        result = await recognise(reply[1], caller["voice"], expect)
        step = dialogue.heard(result["text"], tuple(result["keywords"]), result.get("answer", ""))
    return {"turns": 3, "acted": None}


async def recogniser_figures(recognise: Recogniser, voices, sentences=None, other=None, answer_words=None) -> dict:
    sentences, other = sentences or SENTENCES, other or OTHER
    answer_words = answer_words or ANSWER_WORDS
    spotting = Counter()
    for intent, intent_sentences in sentences.items():
        for s in intent_sentences + other:
            for v in voices:
                found = set((await recognise(s, v, "open"))["keywords"])
                for keyword in HINTS:
                    present = keyword in s.lower()
                    spotting["in" if present else "out"] += 1
                    spotting["hit" if present and keyword in found else "fa" if keyword in found and not present
                             else "-"] += 1
    answers = Counter()
    for s in answer_words + other + [x for xs in sentences.values() for x in xs]:
        for v in voices:
            got = (await recognise(s, v, "answer"))["answer"]
            kind = "yes" if s in ("yes", "yeah", "yes please") else "no" if s in ("no", "nope", "no thanks") \
                else "other"
            answers[(kind, got or "-")] += 1
    return {"spotting": spotting, "answers": answers}


async def run(voices, limit: int | None, held_out: bool = False) -> None:
    from calls.providers.speech import offline

    recognise = Recogniser()
    kind = HELD_OUT if held_out else {}
    sentences, other, answer_words = kind.get("sentences"), kind.get("other"), kind.get("answer_words")
    callers = caller_set(voices, sentences, kind.get("yes"))
    callers = callers[:limit] if limit else callers
    started = time.perf_counter()
    outcomes = await asyncio.gather(*(simulate(c, recognise) for c in callers))
    old = await asyncio.gather(*(simulate(c, recognise, old=True) for c in callers if c["persona"] == "voice"))
    figures = await recogniser_figures(recognise, voices, sentences, other, answer_words)
    offline.shutdown_pool()
    n = len(callers)
    reached = sum(1 for c, o in zip(callers, outcomes) if o["acted"] == c["intent"])
    wrong = sum(1 for c, o in zip(callers, outcomes) if o["acted"] not in (None, c["intent"]))
    turns = Counter(o["turns"] for c, o in zip(callers, outcomes) if o["acted"] == c["intent"])
    voice_callers = [c for c in callers if c["persona"] == "voice"]
    old_right = sum(1 for c, o in zip(voice_callers, old) if o["acted"] == c["intent"])
    old_wrong = sum(1 for c, o in zip(voice_callers, old) if o["acted"] not in (None, c["intent"]))
    print(f"{'held-out set' if held_out else 'tuning set'}: voices={len(voices)} calls={n} "
          f"({time.perf_counter() - started:.0f} s, pool={offline.pool_size()}, load average "
          f"{os.getloadavg()[0]:.2f})")
    print(f"agent (confirm / offer keys): intended outcome within 3 agent turns {reached}/{n} "
          f"({100 * reached / n:.1f}%), wrong actions {wrong}, by turns {dict(sorted(turns.items()))}")
    print(f"baseline (act at once on any keyword, same audio): right {old_right}/{len(voice_callers)}, "
          f"wrong actions {old_wrong}, nothing {len(voice_callers) - old_right - old_wrong}")
    s = figures["spotting"]
    print(f"recogniser, open keyword spotting: hits {s['hit']}/{s['in']} ({100 * s['hit'] / max(1, s['in']):.0f}%), "
          f"false alarms {s['fa']}/{s['out']} ({100 * s['fa'] / max(1, s['out']):.1f}%)")
    a = figures["answers"]
    for kind in ("yes", "no", "other"):
        total = sum(v for (k, _), v in a.items() if k == kind)
        print(f"recogniser, yes/no grammar on {kind!r} utterances ({total}): "
              + ", ".join(f"{got} {v}" for (k, got), v in sorted(a.items()) if k == kind))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voices", type=int, default=99, help="only the first N voices")
    parser.add_argument("--limit", type=int, default=0, help="only the first N callers (a smoke run)")
    parser.add_argument("--held-out", action="store_true", help="the held-out set (voices and sentences not tuned on)")
    args = parser.parse_args(argv)
    if not shutil.which("espeak-ng"):
        print("espeak-ng is not installed", file=sys.stderr)
        return 1
    import django

    django.setup()  # the scripted agent's module imports the call context (models)
    # Outcomes, not timing: the pool at the normal CPU priority (niced, it starves on a machine shared with others).
    os.environ.setdefault("OFFLINE_STT_NICENESS", "0")
    voices = HELD_OUT["voices"] if args.held_out else VOICES
    asyncio.run(run(voices[: args.voices], args.limit or None, held_out=args.held_out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
