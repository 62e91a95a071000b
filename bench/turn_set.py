"""The labelled caller-audio set of `bench.turn_taking`: turns with pauses inside (phone numbers, spelled names,
"umm" hesitations, a sentence broken off and resumed) and complete short answers, said by espeak-ng voices and
carried as a phone line does (μ-law 8 kHz, faint line noise).

    .venv/bin/python -m bench.turn_set --out /tmp/turn_set      # writes <name>.ulaw + labels.json

Each item is a list of (text, pause after in ms); the label is where the caller's turn really ends (the end of
the last piece's audio) and where each inside pause is (a turn ended there is a false cut-off).
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

VOICES = ("en-us", "en-gb-x-rp", "en-us+f3", "en-gb-scotland")
RATE = 8000

# (category, pieces): a piece's pause is the silence after it inside the turn (the last one has none).
SCRIPTS: list[tuple[str, list[tuple[str, int]]]] = [
    ("phone number", [("My number is four one five", 700), ("five five five", 600), ("zero one zero zero.", 0)]),
    ("phone number", [("It's oh seven seven", 900), ("double nine", 500), ("three four two.", 0)]),
    ("phone number", [("You can reach me on six one two", 800), ("four four", 800), ("eight nine one.", 0)]),
    ("spelled name", [("My name is Smith, that's S", 600), ("M", 500), ("I T H.", 0)]),
    ("spelled name", [("The last name is Nguyen", 700), ("N G", 600), ("U Y E N.", 0)]),
    ("spelled name", [("Order number A", 500), ("B seven", 700), ("two two.", 0)]),
    ("hesitation", [("I'd like to, umm", 1000), ("book a table for two.", 0)]),
    ("hesitation", [("So the thing is", 800), ("uhh", 700), ("my package never arrived.", 0)]),
    ("hesitation", [("Can I, umm", 900), ("change my delivery address?", 0)]),
    ("broken off", [("I want to talk to", 800), ("someone in sales.", 0)]),
    ("broken off", [("The order was placed on", 900), ("Monday the third.", 0)]),
    ("broken off", [("I was wondering if", 700), ("you are open on Sunday.", 0)]),
    ("short answer", [("Yes.", 0)]),
    ("short answer", [("No thanks.", 0)]),
    ("short answer", [("Sales, please.", 0)]),
    ("short answer", [("That's all, thank you.", 0)]),
    ("short answer", [("Saturday morning works for me.", 0)]),
    ("short answer", [("I want to talk to sales.", 0)]),
]


@dataclass
class Item:
    name: str
    category: str
    voice: str
    text: str
    pcm: np.ndarray  # int16 at 8 kHz: 300 ms lead-in, the turn, 3 s of silence after it
    pauses: list[tuple[int, int]]  # (start ms, end ms) of each pause inside the turn
    end_ms: int  # where the turn's last piece ends


def _espeak(text: str, voice: str) -> np.ndarray:
    from calls.engine import audio

    wav = subprocess.run(["espeak-ng", "--stdout", "-v", voice, "-s", "160", "--", text], capture_output=True,
                         check=True).stdout
    i = wav.index(b"data") + 8
    pcm = np.frombuffer(wav[i: i + (len(wav) - i) // 2 * 2], dtype="<i2")
    pcm = audio.resample(pcm, int.from_bytes(wav[24:28], "little"), RATE)
    nz = np.flatnonzero(np.abs(pcm) > 200)  # espeak's own leading/trailing silence off: pauses are ours
    return pcm[nz[0]: nz[-1] + 1] if len(nz) else pcm


def _line(pcm: np.ndarray, seed: int) -> np.ndarray:
    """As the phone line carries it: faint noise, μ-law round trip."""
    from calls.engine import audio

    noise = np.random.default_rng(seed).normal(0, 40, len(pcm))
    x = np.clip(pcm.astype(np.float64) + noise, -32768, 32767).astype(np.int16)
    return audio.ulaw_to_pcm16(audio.pcm16_to_ulaw(x))


def build(voices=VOICES) -> list[Item]:
    if not shutil.which("espeak-ng"):
        raise SystemExit("espeak-ng is needed (apt-get install espeak-ng)")
    items = []
    for v, voice in enumerate(voices):
        for s, (category, pieces) in enumerate(SCRIPTS):
            parts = [np.zeros(RATE * 300 // 1000, dtype=np.int16)]
            at = 300
            pauses = []
            for text, pause in pieces:
                # A piece followed by a pause is said as an unfinished clause (espeak-ng's comma intonation), as
                # a caller's voice stays up mid-number; alone it would get a sentence's final fall.
                speech = _espeak(text if not pause or text[-1] in ",." else text + ",", voice)
                parts.append(speech)
                at += len(speech) * 1000 // RATE
                if pause:
                    parts.append(np.zeros(RATE * pause // 1000, dtype=np.int16))
                    pauses.append((at, at + pause))
                    at += pause
            parts.append(np.zeros(RATE * 3, dtype=np.int16))
            pcm = _line(np.concatenate(parts), seed=v * 100 + s)
            items.append(Item(f"{s:02d}-{voice}", category, voice, " / ".join(t for t, _ in pieces), pcm, pauses,
                              at))
    return items


def main() -> None:
    import os
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from calls.engine import audio

    labels = []
    for item in build():
        (out / f"{item.name}.ulaw").write_bytes(audio.pcm16_to_ulaw(item.pcm))
        labels.append({"name": item.name, "category": item.category, "voice": item.voice, "text": item.text,
                       "pauses_ms": item.pauses, "end_ms": item.end_ms})
    (out / "labels.json").write_text(json.dumps(labels, indent=1))
    print(f"{len(labels)} items in {out}")


if __name__ == "__main__":
    main()
