"""Real speech for tests: espeak-ng's voice as Twilio would carry it (μ-law 8 kHz), and the skip when it is absent."""
from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from calls.engine import audio

ESPEAK = shutil.which("espeak-ng")
needs_espeak = pytest.mark.skipif(ESPEAK is None, reason="espeak-ng is not installed (apt-get install espeak-ng): "
                                                         "the real-speech tests need it")


def espeak_ulaw(text: str, voice: str = "en-us+klatt", speed: str = "150") -> bytes:
    """What a caller's phone sends when espeak-ng says `text`: μ-law 8 kHz."""
    wav = subprocess.run([ESPEAK, "--stdout", "-v", voice, "-s", speed, "--", text], capture_output=True,
                         check=True).stdout
    rate = int.from_bytes(wav[24:28], "little")
    pcm = np.frombuffer(wav[wav.index(b"data") + 8:][: (len(wav) - wav.index(b"data") - 8) // 2 * 2], dtype="<i2")
    return audio.pcm16_to_ulaw(audio.resample(pcm, rate, audio.SAMPLE_RATE))


def frames(ulaw: bytes, size: int = audio.FRAME_BYTES) -> list[bytes]:
    ulaw = ulaw + audio.silence(20)[: (-len(ulaw)) % size]
    return [ulaw[i:i + size] for i in range(0, len(ulaw), size)]
