"""The offline speech stack: pocketsphinx (PyPI, ships an English model) and espeak-ng (Debian, a subprocess).

No network and no key: the default for scripted agents over Media Streams, and what tests speak end to end.

Recognition over the phone is hard for pocketsphinx's wideband model: μ-law 8 kHz has nothing above 4 kHz
(an "s" sounds like an "f": free decoding hears "talk to fail" for "talk to sales"). So the stage
- resamples 8 kHz to the model's 16 kHz with soxr (the cascaded provider does it, as for any stage),
- decodes the whole turn with the language model (the transcript), and
- when it has hints (the scripted version's keywords: answers' keywords and handover rules' keywords), also runs
  pocketsphinx's keyword search (a phone loop against each keyphrase) over the same audio: the keywords it
  spots are in `Final.keywords`, which the scripted agent matches as well as the words. The keyword search gets
  the turn without the quiet around the words (100 ms kept): long digital silence upsets its decisions.
Decoding runs in a thread at the end of the turn (a second of speech takes ~0.2 s of one core).

The agent's voice is espeak-ng's Klatt variant (`en-us+klatt` by default; the version's voice overrides it):
it is also the one pocketsphinx understands best.
"""
from __future__ import annotations

import asyncio
import logging
import re
import shutil

import numpy as np

from calls.providers.speech.base import Final, SpeechConfigError, SpeechError, SpeechToText, TextToSpeech

logger = logging.getLogger("calls.providers.speech.offline")

KEYWORD_THRESHOLD = 1e-20  # pocketsphinx keyword search: lower spots more (and more falsely)
MAX_TURN_SECONDS = 30
ESPEAK = "espeak-ng"
ESPEAK_RATE = 22050
DEFAULT_VOICE = "en-us+klatt"
ESPEAK_SPEED = "150"


def espeak_available() -> bool:
    return shutil.which(ESPEAK) is not None


def _wav_data(wav: bytes) -> bytes:
    """The samples of espeak-ng's streamed WAV (its header's sizes are placeholders)."""
    i = wav.find(b"data")
    return wav[i + 8:] if i >= 0 else b""


class PocketsphinxSpeechToText(SpeechToText):
    name = "pocketsphinx"
    sample_rate = 16000

    def __init__(self, settings):
        super().__init__(settings)
        self._buffer = bytearray()
        self._decoder = None
        self._keywords: list[str] = []
        self._busy: asyncio.Task | None = None

    async def start(self) -> None:
        if not self.settings.language.lower().startswith("en"):
            raise SpeechConfigError(f"The offline speech recognition knows English only, not {self.settings.language}.")
        try:
            self._decoder, self._keywords = await asyncio.to_thread(self._load, self.settings.hints)
        except (ImportError, RuntimeError, OSError) as exc:
            raise SpeechConfigError(f"The offline speech recognition could not load ({type(exc).__name__}).") from exc

    @staticmethod
    def _load(hints: tuple[str, ...]):
        from pocketsphinx import Decoder

        decoder = Decoder(samprate=16000, loglevel="FATAL")
        keywords = []
        for hint in hints:
            phrase = " ".join(re.findall(r"[a-z']+", str(hint).lower()))
            # Keyword search needs every word in the dictionary (pocketsphinx has no letter-to-sound here).
            if phrase and phrase not in keywords and all(decoder.lookup_word(w) for w in phrase.split()):
                keywords.append(phrase)
        if keywords:
            _add_keywords(decoder, keywords)
        return decoder, keywords

    async def send(self, pcm16: bytes) -> None:
        if len(self._buffer) < MAX_TURN_SECONDS * self.sample_rate * 2:
            self._buffer += pcm16

    async def end_of_turn(self) -> None:
        data, self._buffer = bytes(self._buffer), bytearray()
        if not data or self._decoder is None:
            self.events.put_nowait(Final(""))
            return
        try:
            text, spotted = await asyncio.to_thread(self._decode, data)
        except RuntimeError as exc:
            raise SpeechError(f"Offline recognition failed ({type(exc).__name__}).") from exc
        self.events.put_nowait(Final(text, keywords=tuple(spotted)))

    def _decode(self, data: bytes) -> tuple[str, list[str]]:
        decoder = self._decoder
        decoder.activate_search("_default")
        text = _run(decoder, data)
        spotted: list[str] = []
        if self._keywords:
            decoder.activate_search("keywords")
            for word in _run(decoder, trim_silence(data, self.sample_rate, margin_ms=100)).split("  "):
                word = word.strip()
                if word and word not in spotted:
                    spotted.append(word)
        return text, spotted


def trim_silence(data: bytes, rate: int, margin_ms: int = 100, level: float = 50.0) -> bytes:
    """The turn without the quiet before and after the words (but `margin_ms` of it). The recogniser's
    decisions are sensitive to long stretches of digital silence (a μ-law line's idle byte decodes to 0)."""
    step = rate // 100  # 10 ms
    x = np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2").astype(np.float32)
    n = len(x) // step
    if n == 0:
        return data
    energy = np.sqrt((x[: n * step].reshape(n, step) ** 2).mean(axis=1))
    voiced = np.flatnonzero(energy > level)
    if not len(voiced):
        return data
    first = max(0, int(voiced[0]) - margin_ms // 10)
    last = min(n, int(voiced[-1]) + 1 + margin_ms // 10)
    return data[first * step * 2: last * step * 2]


def _add_keywords(decoder, keywords: list[str]) -> None:
    import os
    import tempfile

    # The keyword list goes through a file (pocketsphinx's API for several keyphrases with thresholds).
    fd, path = tempfile.mkstemp(suffix=".kws", prefix="callwell-")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write("".join(f"{k} /{KEYWORD_THRESHOLD:g}/\n" for k in keywords))
        decoder.add_kws("keywords", path)
    finally:
        os.unlink(path)


def _run(decoder, data: bytes) -> str:
    decoder.start_utt()
    decoder.process_raw(data, full_utt=True)
    decoder.end_utt()
    hyp = decoder.hyp()
    return hyp.hypstr.strip() if hyp is not None else ""


class EspeakTextToSpeech(TextToSpeech):
    """espeak-ng in a subprocess, `--stdout` WAV streamed as it synthesises (22.05 kHz PCM16)."""

    name = "espeak"
    sample_rate = ESPEAK_RATE
    CHUNK = 4410  # bytes: 100 ms

    def _voice(self) -> str:
        if self.settings.voice:
            return self.settings.voice
        language = (self.settings.language or "en-US").lower()
        return DEFAULT_VOICE if language.startswith("en") else language.split("-")[0]

    async def synthesize(self, text: str):
        if not espeak_available():
            raise SpeechConfigError("espeak-ng is not installed (Debian package espeak-ng).")
        text = " ".join((text or "").split())
        if not text:
            return
        proc = await asyncio.create_subprocess_exec(
            ESPEAK, "--stdout", "-v", self._voice(), "-s", ESPEAK_SPEED, "--", text,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        header = b""
        try:
            while len(header) < 44 or b"data" not in header:
                more = await proc.stdout.read(64)
                if not more:
                    break
                header += more
            rest = _wav_data(header)
            pending = rest[len(rest) - len(rest) % 2:]
            if len(rest) >= 2:
                yield rest[: len(rest) - len(rest) % 2]
            while True:
                chunk = await proc.stdout.read(self.CHUNK)
                if not chunk:
                    break
                chunk = pending + chunk
                cut = len(chunk) - len(chunk) % 2
                pending = chunk[cut:]
                if cut:
                    yield chunk[:cut]
            await proc.wait()
            if proc.returncode:
                raise SpeechError(f"espeak-ng failed (exit {proc.returncode}); is the voice {self._voice()!r} known?",
                                  permanent=True)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
