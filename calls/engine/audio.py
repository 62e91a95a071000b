"""μ-law 8 kHz helpers: G.711 μ-law <-> PCM16 (numpy tables), resampling (soxr), frame energy, prompts.

No audioop (gone in Python 3.13) and no per-sample Python loops on the audio path: μ-law is decoded with a
256-entry table and encoded with vectorised numpy arithmetic; sample-rate conversion is soxr's (a maintained
resampler), with a streaming `Resampler` per call so chunk edges leave no clicks.
"""
from __future__ import annotations

import base64
from functools import lru_cache

import numpy as np
import soxr

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
    return int(pcm16_to_ulaw(np.array([sample], dtype=np.int16))[0])


# Decoding: one table lookup per byte. Encoding: exponent = the segment of (|x| + bias) >> 7, from a table.
_ULAW_TO_PCM = np.array([ulaw_decode_sample(b) for b in range(256)], dtype=np.int16)
_EXPONENT = np.array([0] + [min(7, int(v).bit_length() - 1) for v in range(1, 256)], dtype=np.int32)


def ulaw_to_pcm16(data: bytes) -> np.ndarray:
    """μ-law bytes -> int16 samples (same rate)."""
    return _ULAW_TO_PCM[np.frombuffer(data, dtype=np.uint8)]


# The same table as two byte-translation tables (low and high byte of each little-endian sample): a frame decodes
# with two `bytes.translate` and two strided copies, no numpy array per 20 ms frame (the hot path's decode).
_PCM_LE = _ULAW_TO_PCM.astype("<i2").tobytes()
_LOW, _HIGH = _PCM_LE[0::2], _PCM_LE[1::2]


def ulaw_to_pcm16le(data: bytes) -> bytes:
    """μ-law bytes -> PCM16 little-endian bytes (same rate): `ulaw_to_pcm16(data).astype("<i2").tobytes()`."""
    out = bytearray(2 * len(data))
    out[0::2] = data.translate(_LOW)
    out[1::2] = data.translate(_HIGH)
    return bytes(out)


def _encode(x: np.ndarray) -> np.ndarray:
    """int16 samples -> μ-law codes (G.711's segment arithmetic, vectorised)."""
    x = x.astype(np.int32)
    sign = np.where(x < 0, 0x80, 0).astype(np.int32)
    magnitude = np.minimum(np.abs(x), _CLIP) + _BIAS
    exponent = _EXPONENT[magnitude >> 7]
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8)


# Encoding: one lookup per sample in a table of every int16 value's code (64 KB, indexed by the sample's bits
# read as unsigned): one numpy operation per chunk instead of ten (agent audio from a vendor that sends PCM).
_PCM_TO_ULAW = _encode(np.arange(65536, dtype=np.uint16).view(np.int16))


def pcm16_to_ulaw(samples) -> bytes:
    """int16 samples (array or bytes) -> μ-law bytes."""
    if isinstance(samples, (bytes, bytearray, memoryview)):
        index = np.frombuffer(samples, dtype="<u2")
    else:
        index = np.asarray(samples, dtype=np.int16).view(np.uint16)
    return _PCM_TO_ULAW[index].tobytes()


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """A whole buffer of int16 samples to another rate (soxr)."""
    if from_rate == to_rate or not len(samples):
        return np.asarray(samples, dtype=np.int16)
    return soxr.resample(np.asarray(samples, dtype=np.int16), from_rate, to_rate, quality="HQ")


class Resampler:
    """A stream of int16 chunks from one rate to another, keeping the filter state between chunks."""

    def __init__(self, from_rate: int, to_rate: int):
        self.same = from_rate == to_rate
        self._stream = None if self.same else soxr.ResampleStream(from_rate, to_rate, 1, dtype="int16",
                                                                   quality="HQ")

    def __call__(self, samples: np.ndarray, last: bool = False) -> np.ndarray:
        if self.same:
            return np.asarray(samples, dtype=np.int16)
        return self._stream.resample_chunk(np.asarray(samples, dtype=np.int16), last=last)


def ulaw_to_pcm(data: bytes, rate: int) -> bytes:
    """μ-law 8 kHz -> PCM16 little-endian at `rate` (one-shot)."""
    return resample(ulaw_to_pcm16(data), SAMPLE_RATE, rate).astype("<i2").tobytes()


def pcm_to_ulaw(pcm: bytes, rate: int) -> bytes:
    """PCM16 little-endian at `rate` -> μ-law 8 kHz (one-shot)."""
    return pcm16_to_ulaw(resample(np.frombuffer(pcm, dtype="<i2"), rate, SAMPLE_RATE))


# byte -> |sample| / 128 (0..250): `frame.translate(_LEVEL)` then `sum()` runs in C.
_LEVEL = bytes(int(v) for v in np.minimum(255, np.abs(_ULAW_TO_PCM.astype(np.int32)) >> 7))


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
    i = np.arange(n)
    gain = np.minimum(1.0, np.minimum(i / fade, (n - 1 - i) / fade)) if fade else np.ones(n)
    wave = amplitude * gain * np.sin(2 * np.pi * freq * i / SAMPLE_RATE)
    return pcm16_to_ulaw(wave.astype(np.int16))


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
