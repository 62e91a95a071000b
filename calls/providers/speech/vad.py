"""Voice activity and end of turn for the cascaded provider.

Every 20 ms frame goes through webrtcvad (a few microseconds, at the call's own 8 kHz: no resampling), with
hysteresis: `start_ms` of voiced frames (one unvoiced frame tolerated) make a candidate speech start,
`end_ms` of unvoiced frames after speech a candidate end of turn. With `pause_ms`, a shorter silence inside
speech is reported once as a "pause" (the pipeline asks the turn model, `turn.py`, whether the turn is finished
and may end it at once with `end_turn()`; `end_ms` is then the silence rule's fallback). Silero VAD (its ONNX model on onnxruntime,
no torch) is optional and runs only on those candidates, over the last few hundred ms: it confirms a start
(a cough or a line click is refused) or a turn end (a pause with quiet speech in it is not an end).

    vad = VoiceActivity(silero_path=...)     # silero_path "" = webrtcvad only
    for frame in frames:                     # PCM16 little-endian, 8 kHz, 20 ms (320 bytes)
        edge = vad.feed(frame)               # None | "start" | "pause" | "end"
"""
from __future__ import annotations

import threading
from collections import deque
from pathlib import Path

import numpy as np
import webrtcvad

from calls.engine import audio

RATE = audio.SAMPLE_RATE
FRAME_MS = 20
FRAME_SAMPLES = RATE * FRAME_MS // 1000
START = "start"
PAUSE = "pause"
END = "end"

# The model file shipped with the code (MIT, see models/LICENSE); the SILERO_VAD_PATH setting may point elsewhere.
BUNDLED_SILERO = Path(__file__).with_name("models") / "silero_vad_v6.onnx"

SILERO_RATE = 16000
SILERO_WINDOW = 512  # samples at 16 kHz (32 ms) per model step
SILERO_CONTEXT = 64


class Silero:
    """Silero VAD v6 on onnxruntime: the speech probability of each 32 ms window of a short segment.

    The loaded model is immutable (weights only; the recurrent state is passed in and out of each run), so one
    session per process and path is shared by all calls: loading it takes tens of ms, running it about 0.1 ms
    per window on one thread.
    """

    _sessions: dict[str, object] = {}
    _lock = threading.Lock()

    def __init__(self, path: str | Path):
        self.path = str(path)
        with self._lock:
            session = self._sessions.get(self.path)
            if session is None:
                import onnxruntime

                opts = onnxruntime.SessionOptions()
                opts.inter_op_num_threads = 1
                opts.intra_op_num_threads = 1
                opts.log_severity_level = 4
                session = onnxruntime.InferenceSession(self.path, providers=["CPUExecutionProvider"],
                                                       sess_options=opts)
                self._sessions[self.path] = session
        self.session = session

    def probabilities(self, pcm8k: np.ndarray) -> np.ndarray:
        """Speech probability per 32 ms window of int16 8 kHz samples (resampled to 16 kHz with soxr)."""
        x = audio.resample(pcm8k, RATE, SILERO_RATE).astype(np.float32) / 32768.0
        n = len(x) // SILERO_WINDOW
        if n == 0:
            return np.zeros(0, dtype=np.float32)
        windows = x[: n * SILERO_WINDOW].reshape(n, SILERO_WINDOW)
        context = np.zeros((n, SILERO_CONTEXT), dtype=np.float32)
        context[1:] = windows[:-1, -SILERO_CONTEXT:]
        batch = np.concatenate([context, windows], axis=1)
        state = np.zeros((1, 1, 128), dtype=np.float32)
        probs, _h, _c = self.session.run(None, {"input": batch, "h": state, "c": state})
        return np.asarray(probs, dtype=np.float32).reshape(-1)


class VoiceActivity:
    """Speech start / end of turn from 20 ms frames of 8 kHz PCM16."""

    def __init__(self, *, aggressiveness: int = 2, start_ms: int = 100, end_ms: int = 600,
                 silero_path: str | Path = "", silero_threshold: float = 0.5, confirm_ms: int = 320,
                 pause_ms: int = 0, turn_model=None, turn_threshold: float = 0.5, early_ms: int = 0,
                 early_threshold: float = 1.0):
        self.webrtc = webrtcvad.Vad(aggressiveness)
        self.start_frames = max(1, start_ms // FRAME_MS)
        self.end_frames = max(1, end_ms // FRAME_MS)
        self.silero = Silero(silero_path) if silero_path else None
        self.silero_threshold = silero_threshold
        self.confirm_frames = max(1, confirm_ms // FRAME_MS)
        self.recent: deque[bytes] = deque(maxlen=max(self.confirm_frames, self.start_frames) + 2)
        self.speaking = False
        self._voiced = 0
        self._gap = 0
        self._quiet = 0
        self.silero_runs = 0
        self.pause_frames = max(1, pause_ms // FRAME_MS) if pause_ms else 0
        self.turn_model = turn_model  # turn.TurnModel (or a fake with `async probability(pcm8k)`), or None
        self.turn_threshold = turn_threshold
        # An early question to the turn model (the pipeline asks it at `early_ms` of silence; only a probability
        # of at least `early_threshold` ends the turn there). 0: none.
        self.early_ms = early_ms if turn_model is not None and early_ms < (pause_ms or end_ms) else 0
        self.early_threshold = early_threshold
        self.pauses = 0  # pauses reported so far (a turn-model answer applies only to the pause it was asked in)
        self.speech_frames = 0  # voiced frames since the last start (a barge-in needs enough of them)

    @property
    def quiet_frames(self) -> int:
        """Unvoiced frames since the caller's last voiced one (0 while speaking, or when not in speech)."""
        return self._quiet if self.speaking else 0

    def in_pause(self, pause: int) -> bool:
        """True while the caller is still silent in the pause numbered `pause`."""
        return self.speaking and self.pauses == pause and self._quiet > 0

    def end_turn(self) -> None:
        """The turn model decided: the caller finished (the next voiced frames make a new start)."""
        self.speaking = False
        self._quiet = 0

    def reset(self) -> None:
        self.speaking = False
        self._voiced = self._gap = self._quiet = 0
        self.recent.clear()

    def _confirm(self, frames: int) -> bool:
        if self.silero is None:
            return True
        self.silero_runs += 1
        pcm = np.frombuffer(b"".join(list(self.recent)[-frames:]), dtype="<i2")
        probs = self.silero.probabilities(pcm)
        return bool(len(probs)) and float(probs.max()) >= self.silero_threshold

    def feed(self, frame: bytes) -> str | None:
        """One 20 ms frame (320 bytes of PCM16 at 8 kHz); returns "start", "end" or None."""
        if len(frame) != FRAME_SAMPLES * 2:
            return None
        self.recent.append(frame)
        voiced = self.webrtc.is_speech(frame, RATE)
        if not self.speaking:
            if voiced:
                self._voiced += 1
                self._gap = 0
            elif self._voiced:
                self._gap += 1
                if self._gap > 1:  # one unvoiced frame inside a start is tolerated
                    self._voiced = self._gap = 0
            if self._voiced >= self.start_frames:
                self._voiced = self._gap = 0
                if self._confirm(max(self.start_frames + 2, self.confirm_frames // 2)):
                    self.speaking = True
                    self._quiet = 0
                    self.speech_frames = self.start_frames
                    return START
            return None
        if voiced:
            self._quiet = 0
            self.speech_frames += 1
            return None
        self._quiet += 1
        if self._quiet == self.pause_frames and self._quiet < self.end_frames:
            self.pauses += 1
            return PAUSE
        if self._quiet >= self.end_frames:
            # Silero looks at the last part of the pause: speech in it means the caller is still talking.
            if self.silero is not None and self._confirm(self.confirm_frames):
                self._quiet = self.end_frames // 2
                return None
            self.speaking = False
            self._quiet = 0
            return END
        return None


def ulaw_frames_to_pcm(ulaw: bytes) -> bytes:
    """μ-law 8 kHz -> PCM16 little-endian 8 kHz (a table lookup)."""
    return audio.ulaw_to_pcm16le(ulaw)
