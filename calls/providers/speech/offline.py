"""The offline speech stack: pocketsphinx (PyPI, ships an English model) and espeak-ng (Debian, a subprocess).

No network and no key: the default for scripted agents over Media Streams, and what tests speak end to end.

Recognition over the phone is hard for pocketsphinx's wideband model: μ-law 8 kHz has nothing above 4 kHz
(an "s" sounds like an "f": free decoding hears "talk to fail" for "talk to sales"). So the stage
- resamples 8 kHz to the model's 16 kHz with soxr (the cascaded provider does it, as for any stage),
- decodes the whole turn with the language model (the transcript), and
- when it has hints (the scripted version's handover keywords), also runs pocketsphinx's keyword search (a phone
  loop against each keyphrase, per-keyword thresholds by length, no keyword shorter than 4 phones: short words
  fire on almost anything) over the same audio: the keywords it spots are in `Final.keywords`. The keyword search
  gets the turn without the quiet around the words (100 ms kept): long digital silence upsets its decisions.
- when the agent asked a yes/no question (`expect = "answer"`), decodes with a closed grammar (yes / no / digits
  as fillers) and accepts "yes" only when the open decode agrees and the turn is short (`recognise`).
Decoding is CPU-bound and pocketsphinx holds the GIL: it runs in this worker process's recognition pool (spawned
processes, its share of the worker's `SPEECH_PROCESSES` budget, `pools.py`), each with one decoder loaded once and
reused by every call; the call awaits it (`run_in_executor`), so other calls' audio keeps flowing.
Latency: the pipeline asks for the text early, at a short pause (`speculate`, ~200 ms of silence); if the caller
does not speak again before the turn ends, that decode is the turn's text, so the end of turn waits only for what
is left of it (`end_of_turn`). A caller who goes on speaking costs one discarded decode (`discard_speculation`). The 8 kHz front end
(`samprate=8000`, `nfft=256`, `upperf` 3500-3800 with the shipped model) was measured and is worse than
resampling to 16 kHz (the model's filterbank is trained to 6.8 kHz): bench/recognition.py.

The agent's voice is espeak-ng's Klatt variant (`en-us+klatt` by default; the version's voice overrides it):
it is also the one pocketsphinx understands best.
"""
from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import numpy as np

from calls.providers.speech import pools
from calls.providers.speech.base import Final, SpeechConfigError, SpeechError, SpeechToText, TextToSpeech

logger = logging.getLogger("calls.providers.speech.offline")

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
    """The turn's audio is decoded in the recognition pool (`recognition_pool()`), never on the event loop.

    `expect` is what the agent asked for: "open" (any words; keyword spotting over the hints) or "answer" (a
    closed yes/no question: the answer grammar, cross-checked with the open decode, see `recognise`)."""

    name = "pocketsphinx"
    sample_rate = 16000

    def __init__(self, settings):
        super().__init__(settings)
        self._buffer = bytearray()
        self._hints: tuple[str, ...] = ()
        self._ready = False
        self.expect = "open"
        self._speculation: tuple[str, asyncio.Future] | None = None  # (expect, the decode of the turn so far)
        self.speculations = {"started": 0, "used": 0, "discarded": 0}

    async def start(self) -> None:
        if not self.settings.language.lower().startswith("en"):
            raise SpeechConfigError(f"The offline speech recognition knows English only, not {self.settings.language}.")
        self._hints = tuple(str(h) for h in self.settings.hints)
        try:
            # Warms the pool's decoder for these hints (loaded once per pool process, then reused by every call).
            await _in_pool(_prepare, self._hints)
        except (ImportError, RuntimeError, OSError, BrokenProcessPool) as exc:
            raise SpeechConfigError(f"The offline speech recognition could not load ({type(exc).__name__}).") from exc
        self._ready = True

    async def send(self, pcm16: bytes) -> None:
        if len(self._buffer) < MAX_TURN_SECONDS * self.sample_rate * 2:
            self._buffer += pcm16

    def speculate(self) -> None:
        """The caller paused: start decoding the turn so far (the pipeline has sent all of it). Used by
        `end_of_turn` if no more speech came (`discard_speculation` otherwise)."""
        self.discard_speculation()
        if not self._ready or not self._buffer:
            return
        future = asyncio.ensure_future(_in_pool(recognise, bytes(self._buffer), self._hints, self.expect))
        future.add_done_callback(_quiet)
        self._speculation = (self.expect, future)
        self.speculations["started"] += 1

    def discard_speculation(self) -> None:
        """The caller spoke again after the pause: the early decode is not the turn's text (it runs to its end in
        the pool, where it cannot be stopped; its result is dropped)."""
        if self._speculation is not None:
            self._speculation = None
            self.speculations["discarded"] += 1

    async def end_of_turn(self) -> None:
        data, self._buffer = bytes(self._buffer), bytearray()
        speculation, self._speculation = self._speculation, None
        if not data or not self._ready:
            self.events.put_nowait(Final(""))
            return
        try:
            if speculation is not None and speculation[0] == self.expect:
                # Only silence came after the pause: the decode started then is the turn's text.
                self.speculations["used"] += 1
                result = await speculation[1]
            else:
                result = await _in_pool(recognise, data, self._hints, self.expect)
        except (RuntimeError, OSError, BrokenProcessPool) as exc:
            raise SpeechError(f"Offline recognition failed ({type(exc).__name__}).") from exc
        self.last_result = result
        self.events.put_nowait(Final(result["text"], keywords=tuple(result["keywords"])))


def _quiet(future: asyncio.Future) -> None:
    """A discarded early decode's failure is nobody's: read it so asyncio does not log it as never retrieved."""
    if not future.cancelled():
        future.exception()


# -- the recognition pool: pocketsphinx holds the GIL while it decodes, so it runs in other processes -------------

POOL_NICENESS = 10
_pool: ProcessPoolExecutor | None = None
_pool_lock = threading.Lock()


def pool_size() -> int:
    """The recogniser's share of the worker's speech-process budget (`pools.py`: `SPEECH_PROCESSES`)."""
    return pools.recognition_processes()


def recognition_pool() -> ProcessPoolExecutor:
    """This worker process's recognition pool (its share of `SPEECH_PROCESSES`, see `pools.py`), started
    on first use. Spawned, not forked: the web worker has threads (a fork could copy a held lock)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ProcessPoolExecutor(max_workers=pool_size(), mp_context=pools.spawn_context(),
                                        initializer=_pool_process_start)
        return _pool


def shutdown_pool() -> None:
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


async def _in_pool(fn, *args):
    loop = asyncio.get_running_loop()
    try:
        return await loop.run_in_executor(recognition_pool(), fn, *args)
    except BrokenProcessPool:
        shutdown_pool()  # a pool process died (killed, out of memory): the next turn starts a fresh pool
        raise


# In a pool process: one decoder, its keyword searches per hint set (a few, the oldest dropped), the answer grammar.
_DECODER = None
_KEYWORD_SEARCHES: dict[tuple, tuple[str, list[str]]] = {}
MAX_KEYWORD_SEARCHES = 32
ANSWER_GRAMMAR = """#JSGF V1.0;
grammar answer;
public <answer> = <yes> | <no> | <other>;
<yes> = yes | yeah | yep | yes please | that's right | correct;
<no> = no | nope | no thanks | wrong | not that;
<other> = one | two | three | four | five | six | seven | eight | nine | zero | oh;
"""
YES_WORDS = {"yes", "yeah", "yea", "yep", "yup", "correct", "right"}
NO_WORDS = {"no", "nope", "wrong", "not"}
ANSWER_MAX_SECONDS = 1.6  # a yes or a no is short: a longer turn is a sentence, never a yes


def _pool_process_start() -> None:
    """A pool process: below the web worker's priority (the calls' audio frames come first on a busy machine; a
    turn's decode can wait a few ms), its decoder loaded once, at start."""
    try:
        niceness = int(os.environ.get("OFFLINE_STT_NICENESS", POOL_NICENESS))  # benches of outcomes, not timing: 0
    except ValueError:
        niceness = POOL_NICENESS
    pools.lower_priority(niceness)  # every thread (os.nice would lower the main thread only)
    _decoder()


def _decoder():
    global _DECODER
    if _DECODER is None:
        from pocketsphinx import Decoder

        wide = os.environ.get("OFFLINE_STT_BEAMS", "") == "wide"  # pocketsphinx's own beams (for comparison)
        _DECODER = Decoder(samprate=16000, loglevel="FATAL", **({} if wide else DECODER_OPTIONS))
        _DECODER.add_jsgf_string("answer", ANSWER_GRAMMAR)
    return _DECODER


# Narrower beams than pocketsphinx's defaults (1e-48 / 1e-40, no HMM cap): a third of the CPU per audio second on
# the phone-line set (0.3 instead of 1.0 CPU-s per audio second on the reference machine), the same outcomes in
# bench.offline_agent (docs/performance.md, "Offline turn latency").
DECODER_OPTIONS = {"beam": 1e-40, "wbeam": 1e-30, "maxhmmpf": 3000, "fwdflatbeam": 1e-50, "fwdflatwbeam": 1e-30}

MIN_SPOT_PHONES = 4  # shorter keywords (yes, no, digits, "hi") fire on almost anything: never spotted in open speech


def keyword_threshold(phones: int) -> float:
    """Per-keyword threshold of the keyword search, by the phrase's length in phones (measured on espeak-ng voices
    over the phone line, bench/recognition.py): a longer phrase has a lower probability at the same confidence."""
    return 1e-20 if phones <= 4 else 1e-25 if phones <= 6 else 1e-30


def spotting_phrases(decoder, hints) -> list[tuple[str, float]]:
    """The keyphrases of the open keyword search with their thresholds: the hints the dictionary knows whose
    pronunciation has at least `MIN_SPOT_PHONES` phones (no single short word)."""
    phrases: list[tuple[str, float]] = []
    for hint in hints:
        phrase = " ".join(re.findall(r"[a-z']+", str(hint).lower()))
        if not phrase or any(phrase == p for p, _ in phrases):
            continue
        prons = [decoder.lookup_word(w) for w in phrase.split()]
        if not all(prons):
            continue  # pocketsphinx has no letter-to-sound here
        phones = sum(len(p.split()) for p in prons)
        if phones >= MIN_SPOT_PHONES:
            phrases.append((phrase, keyword_threshold(phones)))
    return phrases


def _prepare(hints: tuple) -> tuple[str, list[str]]:
    key = tuple(hints)
    if key in _KEYWORD_SEARCHES:
        return _KEYWORD_SEARCHES[key]
    decoder = _decoder()
    phrases = spotting_phrases(decoder, hints)
    name = ""
    if phrases:
        if len(_KEYWORD_SEARCHES) >= MAX_KEYWORD_SEARCHES:
            oldest = next(iter(_KEYWORD_SEARCHES))
            old_name, _ = _KEYWORD_SEARCHES.pop(oldest)
            if old_name:
                decoder.remove_search(old_name)
        name = f"kws{abs(hash(key)) % 10 ** 12}"
        _add_keywords(decoder, name, phrases)
    _KEYWORD_SEARCHES[key] = (name, [p for p, _ in phrases])
    return _KEYWORD_SEARCHES[key]


def recognise(data: bytes, hints: tuple = (), expect: str = "open") -> dict:
    """One turn (PCM16 16 kHz) → {"text", "keywords", "answer", "pid"}; runs in a pool process.

    - open: the language model's words, and the hints spotted (a keyword counts once one of its phrases is).
    - answer: "yes" only when the closed grammar says yes AND the open decode starts with a yes word AND the turn
      is short (two views must agree: the grammar alone turns any sentence into one of its words); "no" when
      either says no; otherwise "" (not understood: the agent asks again)."""
    decoder = _decoder()
    decoder.activate_search("_default")
    text = _run(decoder, data)
    result = {"text": text, "keywords": [], "answer": "", "pid": os.getpid()}
    if expect == "answer":
        trimmed = trim_silence(data, 16000, margin_ms=100)
        decoder.activate_search("answer")
        said = _run(decoder, trimmed)
        words = text.split()
        grammar_yes = bool(said) and said.split()[0] in YES_WORDS | {"that's"}
        grammar_no = bool(said) and said.split()[0] in NO_WORDS
        short = len(trimmed) / 32000 <= ANSWER_MAX_SECONDS
        if grammar_yes and short and words and words[0] in YES_WORDS:
            result["answer"] = "yes"
        elif grammar_no or (words and words[0] in NO_WORDS):
            result["answer"] = "no"
        result["grammar"] = said
        result["text"] = result["answer"] or text
        return result
    name, phrases = _prepare(tuple(hints))
    if name:
        decoder.activate_search(name)
        spotted = []
        for found in _run(decoder, trim_silence(data, 16000, margin_ms=100)).split("  "):
            found = found.strip()
            if found in phrases and found not in spotted:
                spotted.append(found)
        result["keywords"] = spotted
    return result


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


def _add_keywords(decoder, name: str, keywords: list[tuple[str, float]]) -> None:
    import tempfile

    # The keyword list goes through a file (pocketsphinx's API for several keyphrases with thresholds).
    fd, path = tempfile.mkstemp(suffix=".kws", prefix="callwell-")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write("".join(f"{k} /{threshold:g}/\n" for k, threshold in keywords))
        decoder.add_kws(name, path)
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
