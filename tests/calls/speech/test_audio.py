"""μ-law <-> PCM16 with numpy tables and soxr resampling (no per-sample loops, no audioop)."""
import numpy as np

from calls.engine import audio


def _reference_encode(sample: int) -> int:  # G.711 as written in the standard, one sample at a time
    sign = 0x80 if sample < 0 else 0
    magnitude = min(abs(sample), 32635) + 0x84
    exponent, mask = 7, 0x4000
    while exponent > 0 and not magnitude & mask:
        exponent -= 1
        mask >>= 1
    return ~(sign | (exponent << 4) | ((magnitude >> (exponent + 3)) & 0x0F)) & 0xFF


def test_vectorised_ulaw_encoder_matches_g711_for_every_int16_value():
    samples = np.arange(-32768, 32768, dtype=np.int16)
    encoded = np.frombuffer(audio.pcm16_to_ulaw(samples), dtype=np.uint8)
    assert all(int(encoded[i]) == _reference_encode(int(samples[i])) for i in range(65536))
    assert audio.pcm16_to_ulaw(samples.astype("<i2").tobytes()) == encoded.tobytes()  # bytes in: the same codes
    # decode(encode(x)) stays within μ-law's quantisation step
    decoded = audio.ulaw_to_pcm16(audio.pcm16_to_ulaw(samples)).astype(np.int32)
    err = np.abs(decoded - samples.astype(np.int32))
    assert err.max() <= 1024 and err[np.abs(samples.astype(np.int32)) < 256].max() <= 8


def test_the_frame_decode_by_byte_tables_equals_the_g711_table_for_every_byte():
    every_byte = bytes(range(256)) + bytes(range(255, -1, -1))
    expected = b"".join(audio.ulaw_decode_sample(b).to_bytes(2, "little", signed=True) for b in every_byte)
    assert audio.ulaw_to_pcm16le(every_byte) == expected
    assert audio.ulaw_to_pcm16le(every_byte) == audio.ulaw_to_pcm16(every_byte).astype("<i2").tobytes()
    assert audio.ulaw_to_pcm16le(b"") == b""


def test_ulaw_to_pcm_at_vendor_rates_and_back_keeps_the_signal():
    tone = audio.tone(440, 200, amplitude=8000)  # 1600 μ-law bytes
    for rate in (8000, 16000, 24000, 44100):
        pcm = audio.ulaw_to_pcm(tone, rate)
        assert len(pcm) // 2 == pytest_approx(1600 * rate // 8000)
        back = audio.pcm_to_ulaw(pcm, rate)
        a = audio.ulaw_to_pcm16(tone).astype(float)[200:1400]
        b = audio.ulaw_to_pcm16(back).astype(float)[200:1400]
        assert np.corrcoef(a, b)[0, 1] > 0.98


def pytest_approx(n):
    import pytest

    return pytest.approx(n, abs=n * 0.02 + 2)


def test_streaming_resampler_equals_whole_buffer_resampling():
    samples = audio.ulaw_to_pcm16(audio.tone(300, 400, amplitude=9000))
    whole = audio.resample(samples, 8000, 16000)
    stream = audio.Resampler(8000, 16000)
    parts = [stream(samples[i:i + 160]) for i in range(0, len(samples), 160)] + [stream(samples[:0], last=True)]
    chunked = np.concatenate(parts)
    assert abs(len(chunked) - len(whole)) <= 2
    n = min(len(chunked), len(whole)) - 100
    assert np.corrcoef(chunked[100:n].astype(float), whole[100:n].astype(float))[0, 1] > 0.99
