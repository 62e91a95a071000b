"""μ-law 8 kHz helpers: frame energy for voice activity, and pre-rendered prompts (tones, silence).

No audioop (gone in Python 3.13): G.711 μ-law is encoded/decoded with small tables here.
"""
from __future__ import annotations

import base64
import math
from functools import lru_cache

SAMPLE_RATE = 8000
FRAME_MS = 20
FRAME_BYTES = SAMPLE_RATE * FRAME_MS // 1000  # 160 bytes of μ-law per 20 ms frame
SILENCE_BYTE = 0xFF

_BIAS = 0x84
_CLIP = 32635


def ulaw_decode_sample(byte: int) -> int:
    u = ~byte & 0xFF
    sign = u & 0x80
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    magnitude = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return -magnitude if sign else magnitude


def ulaw_encode_sample(sample: int) -> int:
    sign = 0x80 if sample < 0 else 0
    magnitude = min(abs(sample), _CLIP) + _BIAS
    exponent = 7
    mask = 0x4000
    while exponent > 0 and not magnitude & mask:
        exponent -= 1
        mask >>= 1
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


# byte -> |sample| / 128 (0..250): `frame.translate(_LEVEL)` then `sum()` runs in C.
_LEVEL = bytes(min(255, abs(ulaw_decode_sample(b)) >> 7) for b in range(256))


def frame_level(frame: bytes) -> float:
    """Mean absolute amplitude of a μ-law frame, in units of 128 (silence ≈ 0, normal speech ≈ 10-60)."""
    if not frame:
        return 0.0
    return sum(frame.translate(_LEVEL)) / len(frame)


def silence(ms: int) -> bytes:
    return bytes([SILENCE_BYTE]) * (SAMPLE_RATE * ms // 1000)


def tone(freq: float, ms: int, amplitude: int = 6000) -> bytes:
    n = SAMPLE_RATE * ms // 1000
    fade = min(80, n // 4)  # 10 ms fade in/out: no clicks
    out = bytearray(n)
    for i in range(n):
        gain = min(1.0, i / fade, (n - 1 - i) / fade) if fade else 1.0
        out[i] = ulaw_encode_sample(int(amplitude * gain * math.sin(2 * math.pi * freq * i / SAMPLE_RATE)))
    return bytes(out)


@lru_cache(maxsize=None)
def prompt(name: str) -> bytes:
    """Pre-rendered μ-law prompts for when no speech synthesis is available (scripted agent, provider failure)."""
    if name == "greeting":  # rising two-note chime
        return tone(660, 180) + silence(40) + tone(880, 260) + silence(200)
    if name == "answer":
        return tone(740, 220) + silence(160)
    if name == "apology":  # falling chime: "sorry", played before the call is redirected
        return tone(880, 200) + silence(40) + tone(587, 200) + silence(40) + tone(440, 360) + silence(200)
    if name == "transfer":
        return tone(523, 150) + silence(30) + tone(659, 150) + silence(30) + tone(784, 200)
    raise KeyError(name)


def chunks_b64(audio: bytes, chunk_ms: int = 100) -> list[str]:
    """Split audio into base64 payloads of `chunk_ms` each (Twilio accepts any multiple of a frame)."""
    size = SAMPLE_RATE * chunk_ms // 1000
    return [base64.b64encode(audio[i:i + size]).decode("ascii") for i in range(0, len(audio), size)]


def duration_ms(payload_b64: str) -> int:
    """Length in ms of a base64 μ-law payload (without decoding it)."""
    n = len(payload_b64)
    if not n:
        return 0
    pad = payload_b64.count("=", n - 2)
    return ((n // 4) * 3 - pad) * 1000 // SAMPLE_RATE
