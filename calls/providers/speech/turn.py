"""End of turn from the caller's voice: smart-turn v3.2 (an ONNX model, CPU) at each pause, the silence rule as
fallback.

Voice activity (`vad.VoiceActivity`) reports a *pause* after a short silence inside a caller's speech; the
pipeline then asks the turn model whether the words so far make a finished turn ("I want to talk to sales.")
or not ("my number is four one five, ..."). Finished: the turn ends at once. Not finished: the caller gets the
version's patience of silence before the silence rule ends the turn anyway. The model is asked twice per pause:
early (`Patience.early_ms`, ~250 ms of silence), where only a confident answer (`early_threshold`) ends the turn,
and at the patience's pause with its own threshold; a caller who finished a sentence is answered after the short
pause, a caller in the middle of a number gets the patience.

The model (smart-turn v3.2 by Daily, BSD-2-Clause, taken unchanged from the `pipecat-ai` 1.14.0 wheel on PyPI,
see models/LICENSE-smart-turn) reads Whisper's log-mel features of the last 8 s of audio at 16 kHz and answers a
probability that the turn is complete. The features are computed here with numpy (the same arithmetic as
`transformers.WhisperFeatureExtractor`: periodic Hann window of 400 samples, hop 160, power spectrum, 80 Slaney
mel filters, log10, clamp to 8 below the maximum, (x + 4) / 4), so neither torch nor transformers is needed.

One inference session per worker, shared by every call of the runtime process: by default the model runs in a
spawned worker process of its own (`TURN_MODEL_POOL=process`; started at the process's first pause, it loads
the model once), so nothing of it can hold the event loop's GIL, and the event loop asks it over a socket pair
it reads and writes itself (`_Worker`: no thread of the runtime process is involved); `TURN_MODEL_POOL=thread`
runs it in two threads of the runtime process instead (onnxruntime releases the GIL, the numpy feature code
around it not always: `bench.media_streams_served` measured the calls' audio stalling behind it under load).
Never on the event loop: about 45 ms of CPU per pause on the reference machine; the worker runs in the idle
scheduling class, and a pause it cannot take at once goes to the silence rule.

    model = TurnModel.shared()                                  # or TurnModel(path)
    p = await model.probability(pcm8k)                          # int16 samples at 8 kHz, the turn so far
"""
from __future__ import annotations

import asyncio
import os
import socket
import struct
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from calls.engine import audio
from calls.providers.speech import pools

BUNDLED_SMART_TURN = Path(__file__).with_name("models") / "smart-turn-v3.2-cpu.onnx"

RATE = 16000
SECONDS = 8
N_FFT = 400
HOP = 160
N_MELS = 80


# -- Whisper log-mel features (numpy) ------------------------------------------------------------------------


def _hz_to_mel(freq):
    """Slaney's mel scale: linear below 1 kHz (3 mels per 200 Hz), logarithmic above."""
    freq = np.atleast_1d(np.asarray(freq, dtype=np.float64))
    mels = 3.0 * freq / 200.0
    high = freq >= 1000.0
    mels[high] = 15.0 + np.log(freq[high] / 1000.0) * (27.0 / np.log(6.4))
    return mels


def _mel_to_hz(mels):
    mels = np.atleast_1d(np.asarray(mels, dtype=np.float64))
    freq = 200.0 * mels / 3.0
    high = mels >= 15.0
    freq[high] = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mels[high] - 15.0))
    return freq


def mel_filterbank(n_freqs: int = N_FFT // 2 + 1, n_mels: int = N_MELS, rate: int = RATE) -> np.ndarray:
    """Triangular mel filters with Slaney area normalisation, shape (n_freqs, n_mels) (librosa's `htk=False,
    norm="slaney"`, which is what Whisper's feature extractor uses)."""
    edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0)[0], _hz_to_mel(rate / 2)[0], n_mels + 2))
    fft_freqs = np.linspace(0, rate // 2, n_freqs)
    slopes = edges[None, :] - fft_freqs[:, None]
    widths = np.diff(edges)
    down = -slopes[:, :-2] / widths[:-1]
    up = slopes[:, 2:] / widths[1:]
    filters = np.maximum(0.0, np.minimum(down, up))
    return filters * (2.0 / (edges[2:n_mels + 2] - edges[:n_mels]))[None, :]


_WINDOW = np.hanning(N_FFT + 1)[:-1]  # periodic Hann (torch.hann_window)
_FILTERS_T = mel_filterbank().T.copy()


def log_mel(samples16k: np.ndarray, lead: int = 0) -> np.ndarray:
    """float audio at 16 kHz, exactly 8 s (128000 samples) -> float32 (80, 800) features in about [-1, 1].

    `lead`: how many samples at the start are zero padding (a short turn): the frames that lie wholly in it have
    one and the same spectrum, computed once (the result is the same as without it, in a third of the time)."""
    x = np.asarray(samples16k, dtype=np.float32)
    x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)  # zero mean, unit variance (do_normalize)
    padded = np.pad(x.astype(np.float64), (N_FFT // 2, N_FFT // 2), mode="reflect")
    n_frames = 1 + (len(padded) - N_FFT) // HOP
    # Frame j covers padded[j*HOP : j*HOP + N_FFT]; the constant lead covers padded[: lead + N_FFT // 2].
    flat = min(n_frames, max(0, (lead + N_FFT // 2 - N_FFT) // HOP + 1)) if lead > N_FFT // 2 else 0
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP][flat:]
    power = np.empty((n_frames, N_FFT // 2 + 1))
    power[flat:] = np.abs(np.fft.rfft(frames * _WINDOW, axis=-1)) ** 2
    if flat:
        power[:flat] = np.abs(np.fft.rfft(padded[:N_FFT] * _WINDOW)) ** 2
    mel = np.log10(np.maximum(1e-10, _FILTERS_T @ power.T))[:, :-1]  # the last frame is dropped, as Whisper does
    mel = np.maximum(mel, mel.max() - 8.0)
    return ((mel + 4.0) / 4.0).astype(np.float32)


def model_input(pcm8k: np.ndarray) -> np.ndarray:
    """The turn so far (int16 at 8 kHz) -> the model's input: the last 8 s at 16 kHz, zeros in front."""
    x = audio.resample(np.asarray(pcm8k, dtype=np.int16), audio.SAMPLE_RATE, RATE).astype(np.float32) / 32768.0
    n = RATE * SECONDS
    x = x[-n:]
    lead = n - len(x)
    if lead:
        x = np.concatenate([np.zeros(lead, dtype=np.float32), x])
    return log_mel(x, lead)[None, :, :]


# -- the model ------------------------------------------------------------------------------------------------


WORKER_NICENESS = 10


def _lower_priority() -> None:
    """Each worker thread runs at a lower CPU priority than the event loop's (Linux: nice is per thread): when
    the cores are short, the calls' audio goes first and the model answers later, or the silence rule decides."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICENESS)
    except (AttributeError, OSError):
        pass


_WORKER_MODEL: TurnModel | None = None


def _worker_init(path: str) -> None:
    global _WORKER_MODEL
    pools.lower_priority(WORKER_NICENESS, idle=True)  # every thread; spare CPU only (the silence rule decides)
    _WORKER_MODEL = TurnModel(path)
    _WORKER_MODEL.session  # noqa: B018 - load it now


_QUESTION = struct.Struct("<II")  # question id, bytes of int16 samples (8 kHz) that follow
_ANSWER = struct.Struct("<Id")  # question id, probability (NaN: the model failed on it)
SOCKET_BUFFER = 1 << 20  # asked of the kernel (Linux grants up to twice net.core.wmem_max): a question never waits


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def _worker_main(sock: socket.socket, path: str) -> None:
    """The worker process: below the calls' priority, the model loaded once, then questions until the socket
    closes (the runtime process ended or let it go)."""
    _worker_init(path)
    sock.setblocking(True)
    while True:
        header = _recv_exact(sock, _QUESTION.size)
        if header is None:
            return
        qid, size = _QUESTION.unpack(header)
        payload = _recv_exact(sock, size)
        if payload is None:
            return
        try:
            p = _WORKER_MODEL.predict(np.frombuffer(payload, dtype="<i2"))
        except Exception:  # noqa: BLE001 - the asker's silence rule decides
            p = float("nan")
        sock.sendall(_ANSWER.pack(qid, p))


class TurnWorkerFailed(Exception):
    """The worker process is gone or could not answer: the silence rule decides this pause (a new worker is
    started at the next one)."""


class _Worker:
    """The turn model's process for one event loop, asked over a socket pair that the loop itself writes and reads.

    `ProcessPoolExecutor` (used before) handed each question to two threads of the runtime process (its manager
    and its queue's feeder, which pickle, write and read); each took the GIL from the calls' event loop at every
    question and answer, and under load the loop then waited for a core again. `bench.media_streams_served`,
    cascaded + turn at 200 calls with a model that only sleeps 45 ms: p99 11-40 ms through the executor, 6-7 ms
    for the same wait on the loop. Here a question is one non-blocking write and its answer one read on the loop:
    no thread. One question is on the wire at a time (the process answers one at a time); the others wait for the
    lock, within `TurnModel.MAX_IN_FLIGHT`. An answer to a question given up on (its call ended) is dropped by
    the next question's read (answers carry the question's id)."""

    def __init__(self, path: str):
        parent, child = socket.socketpair()
        for sock in (parent, child):
            for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):
                try:
                    sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)
                except OSError:
                    pass
        try:
            self.process = pools.spawn_context().Process(target=_worker_main, args=(child, path), daemon=True,
                                                         name="turn-model")
            self.process.start()
        finally:
            child.close()
        parent.setblocking(False)
        self.sock = parent
        self.lock = asyncio.Lock()
        self.broken = False
        self._next_id = 0
        self._received = bytearray()

    async def ask(self, pcm8k: np.ndarray) -> float:
        # The model reads the last 8 s: no more is sent (128 KB at most).
        payload = np.asarray(pcm8k, dtype="<i2")[-SECONDS * audio.SAMPLE_RATE:].tobytes()
        loop = asyncio.get_running_loop()
        async with self.lock:
            if self.broken:
                raise TurnWorkerFailed("the turn model's worker is gone")
            self._next_id = (self._next_id + 1) & 0xFFFFFFFF
            qid = self._next_id
            try:
                await loop.sock_sendall(self.sock, _QUESTION.pack(qid, len(payload)) + payload)
            except OSError as exc:  # the worker is gone
                self.broken = True
                raise TurnWorkerFailed(str(exc)) from exc
            except BaseException:  # cancelled mid-write: the stream can no longer be trusted
                self.broken = True
                raise
            try:
                while True:
                    while len(self._received) >= _ANSWER.size:
                        aid, p = _ANSWER.unpack_from(self._received)
                        del self._received[:_ANSWER.size]
                        if aid == qid:
                            if p != p:  # NaN
                                raise TurnWorkerFailed("the turn model failed in its worker")
                            return p
                    data = await loop.sock_recv(self.sock, 4096)
                    if not data:
                        raise OSError("the turn model's worker closed its socket")
                    self._received += data
            except OSError as exc:
                self.broken = True
                raise TurnWorkerFailed(str(exc)) from exc

    def stop(self) -> None:
        self.broken = True
        try:
            self.sock.close()  # the worker reads end of file and exits
        except OSError:
            pass


_WORKERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # event loop -> {model path: _Worker}
_WORKERS_LOCK = threading.Lock()


def _worker_for(path: str) -> _Worker:
    """This event loop's worker for the model (started on first use; again after it failed)."""
    loop = asyncio.get_running_loop()
    with _WORKERS_LOCK:
        workers = _WORKERS.get(loop)
        if workers is None:
            workers = _WORKERS[loop] = {}
            weakref.finalize(loop, _stop_all, workers)  # a loop that is gone lets its workers go
        worker = workers.get(path)
        if worker is None or worker.broken:
            if worker is not None:
                worker.stop()
            worker = workers[path] = _Worker(path)
        return worker


def _stop_all(workers: dict) -> None:
    for worker in workers.values():
        worker.stop()


class TurnModelBusy(Exception):
    """The pool already has `MAX_IN_FLIGHT` questions: this pause is left to the silence rule (under load the
    model is skipped rather than answering late)."""


class TurnModel:
    """smart-turn v3.2 on onnxruntime; `probability` asks this event loop's worker process (`_Worker`), or with
    `TURN_MODEL_POOL=thread` runs in the module's thread pool.

    About 75 ms of CPU for the model and 20 ms for the features per question on this project's reference
    machine: a process answers some 10-20 pauses per second per core. Beyond `MAX_IN_FLIGHT` waiting questions
    `probability` raises `TurnModelBusy` at once and the silence rule decides that pause."""

    WORKERS = 2
    MAX_IN_FLIGHT = 4
    # "process" (default): the model runs in worker processes of its own (spawned, each loads it once): nothing of
    # it can hold this process's GIL. "thread": in threads of this process (onnxruntime releases the GIL, but the
    # feature arithmetic around it does not always: measured, it stalled the calls' audio under load).
    MODE = os.environ.get("TURN_MODEL_POOL", "process")
    _models: dict[str, TurnModel] = {}
    _lock = threading.Lock()
    _pool: ThreadPoolExecutor | None = None
    _in_flight = 0
    runs = 0
    skipped = 0
    answered = 0  # questions answered (in this process, whichever pool ran them)

    def __init__(self, path: str | Path = BUNDLED_SMART_TURN):
        self.path = str(path)
        self._session = None  # loaded on first use, where the model runs (a worker process, by default)

    @property
    def session(self):
        if self._session is None:
            import onnxruntime

            opts = onnxruntime.SessionOptions()
            opts.inter_op_num_threads = 1
            opts.intra_op_num_threads = 1
            opts.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
            opts.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
            opts.log_severity_level = 4
            self._session = onnxruntime.InferenceSession(self.path, providers=["CPUExecutionProvider"],
                                                         sess_options=opts)
        return self._session

    @classmethod
    def shared(cls, path: str | Path = BUNDLED_SMART_TURN) -> TurnModel:
        """The process's one session for `path` (loaded on first use)."""
        key = str(path)
        with cls._lock:
            model = cls._models.get(key)
            if model is None:
                model = cls._models[key] = cls(key)
        # The worker starts at the process's first pause, not here: starting it (a Python importing numpy and
        # onnxruntime, loading the model: 1-2 s of CPU) while a call is admitted delayed that call's greeting.
        # That first answer comes late, so the silence rule decides that one pause.
        return model

    @classmethod
    def pool(cls) -> ThreadPoolExecutor:
        with cls._lock:
            if cls._pool is None:
                cls._pool = ThreadPoolExecutor(max_workers=cls.WORKERS, thread_name_prefix="turn-model",
                                               initializer=_lower_priority)
            return cls._pool

    def predict(self, pcm8k: np.ndarray) -> float:
        """Blocking: the probability that the turn is complete (call it from a worker thread)."""
        TurnModel.runs += 1
        out = self.session.run(None, {"input_features": model_input(pcm8k)})
        return float(np.asarray(out[0]).reshape(-1)[0])

    async def probability(self, pcm8k: np.ndarray) -> float:
        with TurnModel._lock:
            if TurnModel._in_flight >= self.MAX_IN_FLIGHT:
                TurnModel.skipped += 1
                raise TurnModelBusy()
            TurnModel._in_flight += 1
        try:
            if self.MODE == "process":
                p = await _worker_for(self.path).ask(pcm8k)
            else:
                p = await asyncio.get_running_loop().run_in_executor(self.pool(), self.predict, pcm8k)
            TurnModel.answered += 1
            return p
        finally:
            with TurnModel._lock:
                TurnModel._in_flight -= 1


# -- patience -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Patience:
    """How long a caller may pause. `pause_ms`: silence before the model is asked; `threshold`: the probability
    that counts as finished; `fallback_ms`: silence that ends the turn whatever the model said (the silence rule)."""

    name: str
    pause_ms: int
    threshold: float
    fallback_ms: int
    early_ms: int = 0  # a first, early question (0: none); only a probability >= early_threshold ends the turn there
    early_threshold: float = 1.0


# Chosen on bench.turn_taking's espeak-ng set: asked after 200 ms the model ends too many turns mid-number (it
# was trained on human voices; espeak-ng's prosody misleads it), asked after 600 ms it saves most of the silence
# rule's cut-offs at 600 ms. Re-tune on real callers' recordings when there are some.
# The early question (250 ms, only p >= 0.9 ends the turn) is part of "quick" only: on the same set it answers a
# finished sentence ~350 ms sooner but adds cut-offs inside pauses (normal + early: 29/48 instead of 17/48; see
# docs/performance.md, "Offline turn latency"), which the normal and patient versions are there to avoid.
PATIENCE = {
    "quick": Patience("quick", 400, 0.5, 1000, early_ms=250, early_threshold=0.9),
    "normal": Patience("normal", 600, 0.5, 1200),
    "patient": Patience("patient", 800, 0.7, 2000),
}
DEFAULT_PATIENCE = "normal"


SILENCE_ONLY = Patience("silence", 0, 1.0, 0)  # the silence rule alone (VAD_END_MS)


def patience(name: str) -> Patience:
    if name == "silence":
        return SILENCE_ONLY
    return PATIENCE.get(name or DEFAULT_PATIENCE, PATIENCE[DEFAULT_PATIENCE])
