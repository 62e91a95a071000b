"""Voice activity on real speech (espeak-ng through μ-law) and on silence; Silero confirming candidates."""
import pytest

from calls.engine import audio
from calls.providers.speech import vad

from .speech_audio import espeak_ulaw, frames, needs_espeak


def edges(voice_activity, ulaw):
    found = []
    for i, frame in enumerate(frames(ulaw)):
        edge = voice_activity.feed(vad.ulaw_frames_to_pcm(frame))
        if edge:
            found.append((edge, i * 20))
    return found


def test_silence_is_never_speech():
    assert edges(vad.VoiceActivity(), audio.silence(3000)) == []


@needs_espeak
def test_a_spoken_sentence_is_one_turn_ending_after_the_silence_window():
    speech = espeak_ulaw("I want to talk to sales")
    ulaw = audio.silence(500) + speech + audio.silence(1500)
    found = edges(vad.VoiceActivity(end_ms=600), ulaw)
    assert [e for e, _ in found] == ["start", "end"]
    start, end = found[0][1], found[1][1]
    assert 500 <= start <= 700
    speech_end = 500 + len(speech) // 8
    assert speech_end <= end <= speech_end + 800  # espeak-ng ends its audio with ~300 ms of quiet


@needs_espeak
def test_a_short_pause_inside_a_turn_does_not_end_it():
    one = espeak_ulaw("I want to talk")
    ulaw = audio.silence(300) + one + audio.silence(250) + one + audio.silence(1200)
    assert [e for e, _ in edges(vad.VoiceActivity(end_ms=600), ulaw)] == ["start", "end"]


@pytest.mark.skipif(not vad.BUNDLED_SILERO.exists(), reason="the Silero VAD model file is not in the checkout")
def test_silero_refuses_a_steady_tone_that_webrtcvad_takes_for_speech():
    tone = audio.silence(200) + b"".join(audio.tone(f, 120, amplitude=9000) for f in (300, 450, 600) * 6) \
        + audio.silence(1000)
    assert "start" in [e for e, _ in edges(vad.VoiceActivity(aggressiveness=0), tone)]
    silero = vad.VoiceActivity(aggressiveness=0, silero_path=vad.BUNDLED_SILERO)
    assert edges(silero, tone) == []
    assert silero.silero_runs >= 1


@needs_espeak
@pytest.mark.skipif(not vad.BUNDLED_SILERO.exists(), reason="the Silero VAD model file is not in the checkout")
def test_silero_confirms_real_speech():
    ulaw = audio.silence(400) + espeak_ulaw("What are your opening hours") + audio.silence(1200)
    silero = vad.VoiceActivity(silero_path=vad.BUNDLED_SILERO)
    assert [e for e, _ in edges(silero, ulaw)] == ["start", "end"]
    assert silero.silero_runs >= 2
