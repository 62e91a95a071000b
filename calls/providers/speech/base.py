"""The interface of the cascaded provider's speech stages.

Audio is PCM16 little-endian mono bytes at the stage's `sample_rate`; the cascaded provider converts from/to
Twilio's μ-law 8 kHz with `calls.engine.audio` (numpy/soxr), never per-sample Python loops.

    stt = SomeSpeechToText(settings)      # settings: SpeechSettings (keys from the environment's secrets)
    await stt.start()                     # connect (raises SpeechConfigError / SpeechError)
    await stt.send(pcm16)                 # caller audio (μ-law 8 kHz if stt.encoding == "mulaw"), returns quickly
    await stt.end_of_turn()               # voice activity says the caller stopped: ask for the final text
    event = await stt.events.get()        # Partial / Final / SpeechFailure; None after close
    await stt.close()

    tts = SomeTextToSpeech(settings)
    tts.phone_audio()                                     # optional: the vendor's μ-law 8 kHz, if it has it
    async for chunk in tts.synthesize("Hello there."):   # PCM16 at tts.sample_rate (μ-law 8 kHz once
        ...                                              # phone_audio() said True), first bytes asap;
    await tts.close()                                    # cancelling the consuming task stops it
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field


class SpeechError(Exception):
    """A vendor failed. `permanent` (bad key, unknown voice) is not retried; transient ones may be."""

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


class SpeechConfigError(SpeechError):
    """A missing or invalid setting: the message names the secret/variable, never its value."""

    def __init__(self, message: str):
        super().__init__(message, permanent=True)


@dataclass(frozen=True)
class SpeechSettings:
    """What a stage needs, resolved from the version and the environment when the call starts."""

    language: str = "en-US"
    voice: str = ""  # vendor voice id/name ("" = the stage's default)
    model: str = ""  # vendor model ("" = the stage's default)
    api_key: str = field(default="", repr=False)
    base_url: str = ""  # "" = the vendor's public API; tests point it at a local fake
    hints: tuple[str, ...] = ()  # words to favour (keywords of the version's rules)


@dataclass(frozen=True, slots=True)
class Partial:
    text: str


@dataclass(frozen=True, slots=True)
class Final:
    """The recognised text of one caller turn (may be empty: noise). `keywords`: hints a keyword search spotted
    in the turn (the offline stage), in addition to the words of `text`."""

    text: str
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SpeechFailure:
    message: str
    permanent: bool = False


class SpeechToText:
    name = "base"
    sample_rate = 16000
    # "linear16": `send` gets PCM16 at `sample_rate`; "mulaw": G.711 μ-law 8 kHz bytes, the call's own audio
    # (a vendor that takes Twilio's format gets it without resampling: half the bytes, no soxr per batch)
    encoding = "linear16"
    required_secret = ""  # e.g. "DEEPGRAM_API_KEY"; "" for offline stages

    def __init__(self, settings: SpeechSettings):
        self.settings = settings
        self.events: asyncio.Queue = asyncio.Queue()

    async def start(self) -> None:
        pass

    async def send(self, pcm16: bytes) -> None:
        raise NotImplementedError

    async def end_of_turn(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        self.events.put_nowait(None)


class TextToSpeech:
    name = "base"
    sample_rate = 16000
    encoding = "linear16"  # "mulaw": `synthesize` yields the call's own μ-law at 8 kHz (see `phone_audio`)
    required_secret = ""
    PHONE_ENCODING: str | None = None  # the vendor's name for μ-law 8 kHz output, if it has one

    def __init__(self, settings: SpeechSettings):
        self.settings = settings

    def phone_audio(self) -> bool:
        """Ask the vendor for a phone call's own audio, μ-law at 8 kHz, where it offers it: the cascaded pipeline
        then sends its bytes as they come (no resampling, no encoding, a quarter of 16 kHz PCM's bytes over the
        wire). True if this stage now yields μ-law 8 kHz; False: it keeps PCM16 at `sample_rate`."""
        if not self.PHONE_ENCODING:
            return False
        self.encoding, self.sample_rate = "mulaw", 8000
        return True

    def synthesize(self, text: str) -> AsyncIterator[bytes]:
        raise NotImplementedError

    async def close(self) -> None:
        pass
