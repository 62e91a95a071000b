"""The cascaded Media Streams provider: voice activity -> speech-to-text -> chat model -> text-to-speech.

    Twilio μ-law 8 kHz ──table──> PCM16 8 kHz ──webrtcvad per 20 ms frame (+ Silero on candidates)──> start/end
                                     └──soxr stream──> STT rate ──> stage.send()       end -> stage.end_of_turn()
    Final text ──> chat model (streamed tokens) ──sentences──> TTS stage ──soxr──> μ-law ──> AudioOut

`VoicePipeline` is the audio half (voice activity, recognition, speaking sentence by sentence, barge-in, latency)
and is shared with the scripted agent, which speaks with the offline stack instead of tones. `CascadedProvider`
adds the chat model (the version's chat vendor, `calls.providers.chat`) and the conversation
(`calls.providers.conversation`: history, instructions, what a tool call means).

Barge-in: a speech start while the agent's audio is pending emits SpeechStarted (the engine sends `clear` and
reports what was heard through `on_interrupt`), cancels the reply in flight, and the history keeps only the
sentences the caller heard (up to the heard ms; the words of a sentence cut in the middle in proportion).

Settings (environment variables): `VAD_SILERO` (1 = confirm with Silero VAD; default off), `SILERO_VAD_PATH`
(default: the bundled model), `VAD_END_MS` (silence that ends a turn when the turn model is off, default 600),
`VAD_AGGRESSIVENESS` (0-3, default 2), `TURN_MODEL` (0 = the silence rule alone; default on: smart-turn v3.2 at
each pause, see `speech/turn.py`), `SMART_TURN_PATH` (default: the bundled model). The version's turn patience
(`turn_patience`: quick / normal / patient, or silence = the silence rule alone) sets the pause, the model's
threshold and the fallback silence. Vendor keys and base URLs: see `calls/providers/speech/registry.py`.
"""
from __future__ import annotations

import asyncio
import base64
import logging
import os
import re
import time
from collections import deque

import numpy as np

from calls.engine import audio
from calls.engine.events import (
    AudioOut,
    ProviderFailed,
    ReplyDone,
    SpeechStarted,
    Transcript,
    TurnLatency,
)
from calls.providers.base import Provider, ProviderConfigError, tasks_cancel
from calls.providers.chat import ChatError, ChatModel, chat_model
from calls.providers.speech import registry, turn, vad
from calls.providers.speech.base import Final, SpeechError, SpeechFailure

logger = logging.getLogger("calls.providers.cascaded")

PREROLL_FRAMES = 10  # 200 ms before the detected start go to the recogniser too
SENTENCE_END = re.compile(r"([.!?;:])(\s+|$)")
MAX_CLAUSE = 160  # characters: a long sentence without a stop is spoken from its last comma
CHUNK_MS = 100
BARGE_IN_MS = 600  # voiced speech over the agent's audio before it counts as a barge-in (backchannels are shorter)
TURN_MODEL_FRAMES = 8000 // 20  # the turn model reads the last 8 s
STT_BATCH_FRAMES = 5  # caller audio goes to the recogniser 100 ms at a time
# An outbound call's greeting waits for the callee's first end of turn ("Hello?"), or this long of silence from
# the first audio frame (read on the pipeline's clock as frames arrive: Twilio sends one every 20 ms).
GREETING_WAIT_SECONDS = 3.0
SPECULATE_MS = 200  # silence after which a recogniser that can (`speculate`) starts decoding the turn so far


def split_sentences(buffer: str) -> tuple[list[str], str]:
    """Complete sentences at the start of `buffer`, and the rest (still streaming)."""
    out = []
    while True:
        m = SENTENCE_END.search(buffer)
        if m is None or m.end() == len(buffer) and not m.group(2):
            break
        out.append(buffer[: m.end()].strip())
        buffer = buffer[m.end():]
    if len(buffer) > MAX_CLAUSE and "," in buffer:
        cut = buffer.rindex(",") + 1
        out.append(buffer[:cut].strip())
        buffer = buffer[cut:]
    return [s for s in out if s], buffer


def vad_from_settings(ctx) -> vad.VoiceActivity:
    """Voice activity and end of turn for a call: the environment's settings and the version's turn patience."""
    silero = ctx.setting("VAD_SILERO", "0").lower() in ("1", "true", "yes")
    path = ctx.setting("SILERO_VAD_PATH", str(vad.BUNDLED_SILERO)) if silero else ""
    if path and not os.path.exists(path):
        raise ProviderConfigError(f"VAD_SILERO is on but the Silero model is missing ({path}).")
    try:
        end_ms = int(ctx.setting("VAD_END_MS", "600"))
        aggressiveness = int(ctx.setting("VAD_AGGRESSIVENESS", "2"))
    except ValueError:
        raise ProviderConfigError("VAD_END_MS and VAD_AGGRESSIVENESS must be whole numbers.") from None
    options = dict(aggressiveness=min(3, max(0, aggressiveness)), end_ms=max(200, end_ms), silero_path=path)
    patience = turn.patience((ctx.speech or {}).get("turn_patience", ""))
    if patience.name != "silence" and ctx.setting("TURN_MODEL", "1").lower() not in ("0", "false", "no", "off"):
        model_path = ctx.setting("SMART_TURN_PATH", str(turn.BUNDLED_SMART_TURN))
        if not os.path.exists(model_path):
            raise ProviderConfigError(f"The turn model is missing ({model_path}); TURN_MODEL=0 turns it off.")
        options.update(pause_ms=patience.pause_ms, end_ms=patience.fallback_ms,
                       turn_model=turn.TurnModel.shared(model_path), turn_threshold=patience.threshold,
                       early_ms=patience.early_ms, early_threshold=patience.early_threshold)
    return vad.VoiceActivity(**options)


class Reply:
    """One agent reply being spoken: its sentences and how many ms of audio each got."""

    def __init__(self, item_id: str):
        self.item_id = item_id
        self.spoken: list[tuple[str, int]] = []  # (sentence, ms of audio sent for it)
        self.sent_ms = 0
        self.task: asyncio.Task | None = None
        self.heard_text: str | None = None  # set on barge-in: what the caller heard of it

    def text(self) -> str:
        return " ".join(s for s, _ in self.spoken)

    def heard(self, heard_ms: int) -> str:
        words, at = [], 0
        for sentence, ms in self.spoken:
            if at + ms <= heard_ms:
                words.append(sentence)
            else:
                parts = sentence.split()
                n = int(len(parts) * max(0, heard_ms - at) / ms) if ms else 0
                if n:
                    words.append(" ".join(parts[:n]))
                break
            at += ms
        return " ".join(words)


class VoicePipeline:
    """Audio in -> turns of text out (`on_turn`); text in -> speech out, sentence by sentence.

    Turn-taking: a pause inside the caller's speech asks the version's turn model (when voice activity has one)
    whether the turn is finished; the silence rule (`vad.end_frames`) ends it otherwise. The turn's latency is
    counted from the caller's last voiced frame, so the wait for the end of turn is part of it.

    Barge-in the line cannot trigger: while the agent's audio plays (estimated from what was sent: Twilio plays
    it in real time), caller speech is held back, not recognised, until it has lasted `barge_in_ms` of voiced
    frames; shorter speech (a backchannel: "uh-huh", "okay", "yeah"; a click or a cough) is dropped and the
    reply goes on. Before the caller's first turn (the greeting, and anything spoken at pickup: "hello?") the
    agent is not interrupted at all: the speech is held until the greeting has played, then recognised if the
    caller is still talking. A key press clears the agent's queued audio at once (`key_pressed`).
    """

    def __init__(self, provider: Provider, *, stt, tts, voice_activity: vad.VoiceActivity, on_turn,
                 barge_in_ms: int = BARGE_IN_MS, clock=time.perf_counter, on_turn_end=None):
        self.provider = provider
        self.stt = stt
        self.tts = tts
        # The call's own μ-law 8 kHz from the vendor where it has it: its bytes go out as they come.
        self._tts_ulaw = bool(getattr(tts, "phone_audio", lambda: False)())
        self.vad = voice_activity
        self.on_turn = on_turn  # async (text, keywords) -> None
        self.on_turn_end = on_turn_end  # () -> None: the caller's turn ended (its text comes later, on_turn)
        self.clock = clock
        self.barge_in_frames = max(1, barge_in_ms // vad.FRAME_MS)
        self._pcm_rest = b""
        mulaw = getattr(stt, "encoding", "linear16") == "mulaw"  # the vendor takes the call's μ-law 8 kHz as is
        self._to_stt = audio.Resampler(audio.SAMPLE_RATE, audio.SAMPLE_RATE if mulaw else stt.sample_rate)
        self._stt_bytes = audio.pcm16_to_ulaw if mulaw else (lambda samples: samples.astype("<i2").tobytes())
        self._stt_batch: list[bytes] = []
        self._eot: asyncio.Task | None = None
        self._listening = False
        self._mode: str | None = None  # the caller's speech now: "listen", "hold" (maybe a barge-in), "opening"
        self._held: list[bytes] = []
        self._turn_frames: deque[bytes] = deque(maxlen=TURN_MODEL_FRAMES)  # the turn so far, for the turn model
        self._tasks: list[asyncio.Task] = []
        self.reply: Reply | None = None
        self._seq = 0
        self._turns = 0  # caller turns (and key presses) so far: none yet = the opening
        self._playing_until = 0.0  # when the audio sent so far will have played (clock)
        self._turn_end: float | None = None  # when the caller's last words of the turn ended
        self._eot_wait_ms: int | None = None  # how long after them the turn was declared over
        self.latencies: list[dict] = []  # per answered turn, in ms from the caller's last words: each stage
        self.final_at: float | None = None  # when the stage gave the current turn's text
        self.frames = 0
        self.decisions: list[tuple[str, float | None]] = []  # ("model", p) / ("silence", None) per turn end
        self._speculating = False  # the recogniser is decoding the turn so far (the caller paused)
        self._speculate_frames = SPECULATE_MS // vad.FRAME_MS if hasattr(stt, "speculate") else 0
        self.dropped: list[str] = []  # caller speech not taken as a turn: "backchannel", "opening"

    async def start(self) -> None:
        await self.stt.start()
        self._tasks.append(asyncio.create_task(self._recognised(), name="cascaded-stt"))

    async def close(self) -> None:
        self.cancel_reply()
        await tasks_cancel(self._tasks)
        for stage in (self.stt, self.tts):
            try:
                await stage.close()
            except Exception:  # noqa: BLE001 - closing must not fail the call's end
                logger.warning("speech stage did not close cleanly", extra={"stage": stage.name})

    # -- caller audio ----------------------------------------------------------------

    def agent_talking(self) -> bool:
        """The agent's reply is being produced, or its audio is still playing at the caller's end."""
        reply = self.reply
        if reply is None:
            return False
        return (reply.task is not None and not reply.task.done()) or self.clock() < self._playing_until

    async def feed(self, payload_b64: str) -> None:
        try:
            ulaw = base64.b64decode(payload_b64)
        except (ValueError, TypeError):
            return
        pcm = audio.ulaw_to_pcm16le(ulaw)
        if self._pcm_rest:
            pcm = self._pcm_rest + pcm
        size = vad.FRAME_SAMPLES * 2
        usable = len(pcm) - len(pcm) % size
        self._pcm_rest = pcm[usable:]
        for i in range(0, usable, size):
            await self._frame(pcm[i:i + size])

    async def _frame(self, frame: bytes) -> None:
        self.frames += 1
        edge = self.vad.feed(frame)
        if edge == vad.START:
            preroll = list(self.vad.recent)[-PREROLL_FRAMES:-1]
            if not self.agent_talking():
                await self._speech_started(preroll)
            else:
                self._mode = "opening" if self._turns == 0 else "hold"
                self._held = preroll
        mode = self._mode
        if mode == "listen":
            self._turn_frames.append(frame)
            await self._send_stt(frame)
        elif mode is not None:
            self._held.append(frame)
            del self._held[:-TURN_MODEL_FRAMES]
            if not self.agent_talking() or mode == "hold" and self.vad.speech_frames >= self.barge_in_frames:
                # Confirmed: long enough to be meant (or the agent has finished): a barge-in, recognised from
                # its start.
                held, self._held = self._held, []
                await self._speech_started(held[:-1])
                self._turn_frames.append(frame)
                await self._send_stt(frame)
        if self._mode == "listen" and edge != vad.END:
            await self._pause_steps()
        if edge == vad.PAUSE and self._mode == "listen" and self.vad.turn_model is not None:
            pcm = np.frombuffer(b"".join(self._turn_frames), dtype="<i2")
            self._spawn(self._ask_turn_model(pcm, self.vad.pauses), "cascaded-turn-model")
        elif edge == vad.END:
            if self._mode == "listen":
                self.decisions.append(("silence", None))
                self._end_turn(self.vad.end_frames)
            elif self._mode is not None:
                self.dropped.append("backchannel" if self._mode == "hold" else "opening")
            self._mode, self._held = None, []

    def _spawn(self, coro, name: str) -> None:
        self._tasks = [t for t in self._tasks if not t.done()]
        self._tasks.append(asyncio.create_task(coro, name=name))

    async def _pause_steps(self) -> None:
        """Latency work at a short silence inside the caller's speech: the recogniser starts on the turn so far
        (`SPECULATE_MS`), the turn model is asked early (`vad.early_ms`: only a confident answer ends the turn
        there). Speech again: the early decode is dropped."""
        quiet = self.vad.quiet_frames
        if quiet == 0:
            if self._speculating:
                self._speculating = False
                self.stt.discard_speculation()
            return
        if quiet == self._speculate_frames:
            await self._flush_stt()
            self.stt.speculate()
            self._speculating = True
        if self.vad.turn_model is not None and self.vad.early_ms and quiet == self.vad.early_ms // vad.FRAME_MS:
            pcm = np.frombuffer(b"".join(self._turn_frames), dtype="<i2")
            self._spawn(self._ask_turn_model(pcm, None, spoken=self.vad.speech_frames), "cascaded-turn-model-early")

    async def _ask_turn_model(self, pcm: np.ndarray, pause: int | None, spoken: int = 0) -> None:
        """Ask the turn model about the turn so far. `pause`: the pause it was asked in (the patience's question);
        None: the early question, which ends the turn only if confident and no voiced frame came since (`spoken`)."""
        try:
            p = await self.vad.turn_model.probability(pcm)
        except turn.TurnModelBusy:
            return  # the process is busy: the silence rule decides this pause
        except turn.TurnWorkerFailed as exc:  # a new worker is started at the next pause
            logger.warning("turn model's worker failed (%s); the silence rule decides", exc)
            return
        except Exception:  # noqa: BLE001 - the silence rule decides instead
            logger.exception("turn model failed; the silence rule decides")
            return
        if pause is None:
            still = self.vad.speaking and self.vad.speech_frames == spoken and self.vad.quiet_frames > 0
            finished = p >= self.vad.early_threshold and still
        else:
            finished = p >= self.vad.turn_threshold and self.vad.in_pause(pause)
        if finished and self._mode == "listen":
            self.decisions.append(("model-early" if pause is None else "model", p))
            quiet = self.vad.quiet_frames
            self.vad.end_turn()
            self._end_turn(quiet)
            self._mode = None

    def _end_turn(self, quiet_frames: int) -> None:
        """The caller's turn is over: ask the recogniser for its text (the turn ended `quiet_frames` ago)."""
        self._listening = False
        self._speculating = False  # the recogniser's end of turn takes the early decode, if one stands
        now = self.clock()
        self._turn_end = now - quiet_frames * vad.FRAME_MS / 1000
        self._eot_wait_ms = round((now - self._turn_end) * 1000)
        self._turn_frames.clear()
        rest, self._stt_batch = self._stt_batch, []  # the turn's last frames, sent before its end
        previous = self._eot
        self._eot = asyncio.create_task(self._end_of_turn(rest, previous), name="cascaded-eot")
        self._tasks = [t for t in self._tasks if not t.done()] + [self._eot]
        if self.on_turn_end is not None:
            self.on_turn_end()

    def caller_speaking(self) -> bool:
        """The caller's words are being taken in as a turn now."""
        return self._mode == "listen"

    async def _send_stt(self, frame: bytes) -> None:
        """Caller audio to the recogniser in 100 ms batches (one resampling call per batch, not per frame)."""
        self._stt_batch.append(frame)
        if len(self._stt_batch) >= STT_BATCH_FRAMES:
            await self._flush_stt()

    async def _flush_stt(self) -> None:
        """The batched frames to the recogniser now (a full batch, or before it decodes the turn so far)."""
        if self._stt_batch:
            pcm, self._stt_batch = b"".join(self._stt_batch), []
            samples = self._to_stt(np.frombuffer(pcm, dtype="<i2"))
            if len(samples):
                await self.stt.send(self._stt_bytes(samples))

    async def _speech_started(self, preroll: list[bytes]) -> None:
        self._listening = True
        self._mode = "listen"
        self._turn_frames.clear()
        # The frames that made voice activity decide (and a little before) are the start of the words.
        for frame in preroll:
            self._turn_frames.append(frame)
            await self._send_stt(frame)
        reply = self.reply
        if reply is not None and (reply.task is not None and not reply.task.done() or reply.sent_ms):
            # The agent is talking (or about to): barge-in. The engine clears Twilio's buffer and, if audio was
            # queued there, tells us what was heard (on_interrupt); the reply in flight stops here.
            self.cancel_reply(keep_sent=True)
            self._playing_until = 0.0
        self.provider.emit(SpeechStarted())

    def key_pressed(self) -> None:
        """A key press: the agent's queued audio is cleared at once (the engine sends `clear`), its reply stops."""
        self._turns += 1
        if self.agent_talking():
            self.cancel_reply(keep_sent=True)
            self._playing_until = 0.0
            self.provider.emit(SpeechStarted())

    async def _end_of_turn(self, rest: list[bytes], previous: asyncio.Task | None = None) -> None:
        if previous is not None and not previous.done():
            # One turn at a time in the recogniser (a stage may hold one decoder per call): the next turn's end
            # waits for the previous one's text.
            await asyncio.wait([previous])
        try:
            samples = self._to_stt(np.frombuffer(b"".join(rest), dtype="<i2")) if rest else ()
            if len(samples):
                await self.stt.send(self._stt_bytes(samples))
            await self.stt.end_of_turn()
        except SpeechError as exc:
            self.provider.emit(ProviderFailed("speech_recognition", {"message": str(exc)}))

    async def _recognised(self) -> None:
        while True:
            event = await self.stt.events.get()
            if event is None:
                return
            if isinstance(event, SpeechFailure):
                logger.warning("speech recognition failed", extra={"stage": self.stt.name,
                                                                   "permanent": event.permanent})
                self.provider.emit(ProviderFailed("speech_recognition", {"message": event.message}))
                return
            if isinstance(event, Final):
                keywords = tuple(getattr(event, "keywords", ()) or ())
                if not event.text.strip() and not keywords:
                    continue
                self.final_at = self.clock()
                self._turns += 1
                try:
                    await self.on_turn(event.text.strip(), keywords)
                except Exception:  # noqa: BLE001
                    logger.exception("cascaded turn handling failed")
                    self.provider.emit(ProviderFailed("internal"))

    # -- agent speech ------------------------------------------------------------------

    def new_reply(self) -> Reply:
        self._seq += 1
        self.reply = Reply(f"cascaded-{self._seq}")
        return self.reply

    def cancel_reply(self, *, keep_sent: bool = False) -> Reply | None:
        reply = self.reply
        if reply is None:
            return None
        if reply.task is not None and not reply.task.done():
            reply.task.cancel()
        if not keep_sent:
            self.reply = None
        return reply

    async def speak(self, reply: Reply, sentences, *, first_token_at: list | None = None,
                    then: tuple = (), transcript: str = "") -> None:
        """Speak the sentences (an async iterator of str, or a list) as they come; then emit `then`.

        `first_token_at` ([float | None], set by the caller's producer) feeds the turn's latency; `transcript`
        (a fixed text's words) is emitted after its audio, with the latency emitted at its first audio."""
        state = {"turn_end": self._turn_end, "final_at": self.final_at, "first_byte": None,
                 "token": first_token_at, "transcript": transcript, "eot_wait": self._eot_wait_ms}
        self._turn_end = self._eot_wait_ms = None
        rate = self.tts.sample_rate
        size = audio.SAMPLE_RATE * CHUNK_MS // 1000
        if hasattr(sentences, "__aiter__"):
            source = sentences
        else:
            async def _list():
                for s in sentences:
                    yield s
            source = _list()
        ulaw = self._tts_ulaw
        async for sentence in source:
            to_8k = None if ulaw else audio.Resampler(rate, audio.SAMPLE_RATE)
            ms_before = reply.sent_ms
            rest = b""
            async for chunk in self.tts.synthesize(sentence):
                if state["first_byte"] is None:
                    state["first_byte"] = self.clock()
                rest += chunk if ulaw else audio.pcm16_to_ulaw(to_8k(np.frombuffer(chunk, dtype="<i2")))
                # Whole 20 ms frames only (as Twilio sends them); the first ones go out as soon as there are any.
                while len(rest) >= size or (not reply.sent_ms and len(rest) >= audio.FRAME_BYTES):
                    cut = size if len(rest) >= size else len(rest) - len(rest) % audio.FRAME_BYTES
                    part, rest = rest[:cut], rest[cut:]
                    self._emit_audio(reply, part, state)
            tail = to_8k(np.zeros(0, dtype=np.int16), last=True) if to_8k is not None else ()
            rest += audio.pcm16_to_ulaw(tail) if len(tail) else b""
            if rest:  # the sentence's last frame, completed with silence
                rest += bytes([audio.SILENCE_BYTE]) * (-len(rest) % audio.FRAME_BYTES)
                self._emit_audio(reply, rest, state)
            reply.spoken.append((sentence, reply.sent_ms - ms_before))
        if state["transcript"]:  # once its audio is all sent (the engine dates the turn from its first audio)
            self.provider.emit(Transcript("agent", state["transcript"]))
        self.provider.emit(ReplyDone(reply.item_id))
        for event in then:
            self.provider.emit(event)

    def _emit_audio(self, reply: Reply, ulaw: bytes, state: dict) -> None:
        if not reply.sent_ms:
            turn_end = state["turn_end"]
            if turn_end is not None:
                def ms(t):
                    return None if t is None else max(0, int((t - turn_end) * 1000))
                now = self.clock()
                # A fixed text (greeting, scripted answer) has no model: its "first token" is the recognised text.
                token = state["token"][0] if state["token"] is not None else state["final_at"]
                figures = TurnLatency(ms(now), ms(state["final_at"]), ms(token), ms(state["first_byte"]))
                self.latencies.append({"end_of_turn": state["eot_wait"], "recognised": figures.recognition_ms,
                                       "first_token": figures.first_token_ms, "first_speech": figures.first_byte_ms,
                                       "answered": figures.total_ms})
                self.provider.emit(figures)
        self.provider.emit(AudioOut(base64.b64encode(ulaw).decode("ascii"), reply.item_id))
        ms = len(ulaw) * 1000 // audio.SAMPLE_RATE
        reply.sent_ms += ms
        now = self.clock()
        self._playing_until = max(self._playing_until, now) + ms / 1000

    def heard(self, item_id: str, heard_ms: int | None) -> str | None:
        reply = self.reply
        if reply is None or reply.item_id != item_id or heard_ms is None:
            return None
        return reply.heard(heard_ms)


def scripted_hints(ctx) -> tuple[str, ...]:
    """The words a scripted version listens for: its answers' keywords and its handover rules' keywords."""
    words = []
    for row in ctx.scripted_answers:
        words.extend(str(k) for k in (row.get("keywords") or []) if str(k).strip())
    for rule in ctx.handover_rules:
        if str(rule.get("keyword") or "").strip():
            words.append(str(rule["keyword"]))
    return tuple(dict.fromkeys(w.strip().lower() for w in words))


class CascadedProvider(Provider):
    name = "cascaded"
    modalities = ("audio",)

    def __init__(self, ctx, *, stt=None, tts=None, chat=None, voice_activity=None):
        super().__init__(ctx)
        self._stages = (stt, tts, chat, voice_activity)
        self.pipeline: VoicePipeline | None = None
        self.chat: ChatModel | None = None
        self._reply_task: asyncio.Task | None = None
        self._awaiting: set[str] = set()  # tool calls of the last reply still waiting for their result
        self._chat_ready = asyncio.Event()  # the chat model is open (a key may be pressed while it opens)
        # An outbound call: the greeting waits for the callee's first end of turn (or `greeting_wait` seconds of
        # nothing from them); the first turn's words are then answered by the greeting, not by the model.
        self.greeting_wait = GREETING_WAIT_SECONDS
        self._greeting_held = ""
        self._greeting_entry: dict | None = None
        self._greeting_answers_turn = False
        self._wait_from: float | None = None

    def _build(self):
        stt, tts, chat, voice_activity = self._stages
        v = self.ctx.speech
        try:
            stt = stt or registry.speech_to_text(self.ctx, v.get("stt_vendor", ""), model=v.get("stt_model", ""),
                                                 hints=tuple(dict.fromkeys(
                                                     [*(v.get("hints") or ()), *scripted_hints(self.ctx)])))
            tts = tts or registry.text_to_speech(self.ctx, v.get("tts_vendor", ""), voice=self.ctx.voice,
                                                 model=v.get("tts_model", ""))
        except SpeechError as exc:
            raise ProviderConfigError(str(exc)) from None
        return stt, tts, chat, voice_activity or vad_from_settings(self.ctx)

    async def start(self) -> None:
        stt, tts, self.chat, voice_activity = self._build()
        self.pipeline = VoicePipeline(self, stt=stt, tts=tts, voice_activity=voice_activity, on_turn=self._turn,
                                      on_turn_end=self._callee_turn_ended)
        if self.chat is None:  # in a thread: the first call with a vendor imports its SDK (seconds of CPU for some)
            v = self.ctx.speech
            self.chat = await asyncio.to_thread(chat_model, self.ctx, v.get("chat_vendor", ""),
                                                model=v.get("chat_model", ""))
        try:
            await self.pipeline.start()
            await self.chat.open()
            self._chat_ready.set()
        except SpeechError as exc:
            raise ProviderConfigError(str(exc)) from None
        hold = bool(self.ctx.greet_after_callee)
        greeting = self.conversation.begin(hold_greeting=hold)
        if greeting and hold:
            self._greeting_held = greeting
        elif greeting:
            self._speak_fixed(greeting)

    def _greet(self) -> None:
        """The held greeting, now: it joins the history as the agent's first turn."""
        greeting, self._greeting_held = self._greeting_held, ""
        if not greeting:
            return
        self.conversation.add_reply(greeting)
        self._greeting_entry = self.messages[-1]
        self._speak_fixed(greeting)

    def _callee_turn_ended(self) -> None:
        if self._greeting_held:
            self._greet()
            self._greeting_answers_turn = True  # that turn's words, when recognised, need no other answer
        else:
            self._greeting_answers_turn = False  # a later turn: its words (if the first had none) are answered

    async def close(self) -> None:
        if self.pipeline is not None:
            await self.pipeline.close()
        if self.chat is not None:
            try:
                await self.chat.close()
            except Exception:  # noqa: BLE001
                pass
        await super().close()

    def _speak_fixed(self, text: str, then: tuple = ()) -> None:
        reply = self.pipeline.new_reply()
        reply.task = asyncio.create_task(self._guard(self.pipeline.speak(reply, [text], then=then,
                                                                         transcript=text)))

    async def _guard(self, coro) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except SpeechError as exc:
            logger.warning("text-to-speech failed", extra={"permanent": exc.permanent})
            self.emit(ProviderFailed("text_to_speech", {"message": str(exc)}))
        except ChatError as exc:
            logger.warning("chat model failed", extra={"reason": exc.reason, "status": exc.status})
            self.emit(ProviderFailed(exc.reason, {"status": exc.status} if exc.status else {}))
        except Exception:  # noqa: BLE001
            logger.exception("cascaded reply failed")
            self.emit(ProviderFailed("internal"))

    async def on_audio(self, payload_b64: str) -> None:
        if self.pipeline is None:
            return
        await self.pipeline.feed(payload_b64)
        if self._greeting_held:
            now = self.pipeline.clock()
            if self._wait_from is None:
                self._wait_from = now
            elif now - self._wait_from >= self.greeting_wait and not self.pipeline.caller_speaking():
                self._greet()  # the callee has said nothing: greet them anyway

    async def on_dtmf(self, digit: str) -> None:
        if self.pipeline is not None:
            self.pipeline.key_pressed()  # the queued audio is cleared at once, not played before the answer
        await self._turn(f"(The caller pressed the key {digit}.)", (), transcript=False)

    async def on_interrupt(self, *, heard_text=None, heard_ms=None, item_id="") -> None:
        heard = self.pipeline.heard(item_id, heard_ms) if self.pipeline else None
        if heard is None:
            return
        self.pipeline.reply.heard_text = heard
        self.conversation.keep_heard(heard)
        if heard:
            self.emit(Transcript("agent", heard, heard=False))

    async def on_tool_result(self, call_id: str, result: str) -> None:
        self.conversation.add_tool_result(call_id, result)
        self._awaiting.discard(call_id)
        if self._awaiting:
            return  # the model gets all its tool results at once
        self._start_reply()

    # ---------------------------------------------------------------------------

    async def _turn(self, text: str, keywords: tuple, transcript: bool = True) -> None:
        if self._greeting_held or self._greeting_answers_turn:
            # The callee's first words ("Hello?", or a key): the greeting is their answer.
            self._greeting_answers_turn = False
            if self._greeting_held:
                self._greet()
            if transcript:
                self.emit(Transcript("caller", text))
            entry = self._greeting_entry
            at = self.messages.index(entry) if entry is not None and entry in self.messages else len(self.messages)
            self.messages.insert(at, {"role": "user", "content": text})
            return
        previous = self.pipeline.cancel_reply()
        if previous is not None and previous.task is not None and not previous.task.cancelled() \
                and previous.spoken and not previous.task.done():
            self.conversation.keep_heard(previous.text())
        missing = [k for k in keywords if k not in text.lower()]
        if missing:  # the keyword search heard them where the words did not
            text = f"{text} (also heard: {', '.join(missing)})".strip()
        if transcript:
            self.emit(Transcript("caller", text))
        # the version's every-turn retrieval (knowledge/): its passages just before the caller's words
        self.conversation.add_user(text, knowledge=await self.knowledge_for_turn(text))
        self._start_reply()

    def _start_reply(self) -> None:
        reply = self.pipeline.new_reply()
        reply.task = asyncio.create_task(self._guard(self._reply(reply)), name=f"cascaded-{reply.item_id}")

    async def _reply(self, reply: Reply) -> None:
        first_token = [None]
        calls: list[dict] = []
        text_parts: list[str] = []
        # The history gets the reply as it is spoken (replaced by what was heard on barge-in).
        entry = {"role": "assistant", "content": ""}
        self.messages.append(entry)

        async def sentences():
            buffer = ""
            await self._chat_ready.wait()
            async for item in self.chat.stream(self.messages[:-1], tools=self.chat_tools()):
                if isinstance(item, str):
                    if first_token[0] is None:
                        first_token[0] = time.perf_counter()
                    text_parts.append(item)
                    entry["content"] += item
                    done, buffer = split_sentences(buffer + item)
                    for s in done:
                        yield s
                else:
                    calls.append(item)
            if buffer.strip():
                yield buffer.strip()

        try:
            await self.pipeline.speak(reply, sentences(), first_token_at=first_token)
        except asyncio.CancelledError:
            entry["content"] = reply.heard_text if reply.heard_text is not None else reply.text()
            if not entry["content"] and entry in self.messages:
                self.messages.remove(entry)
            raise
        text = "".join(text_parts).strip()
        events, waiting = self.conversation.reply_events(text, calls, entry=entry)
        self._awaiting |= waiting
        if text:
            self.emit(Transcript("agent", text))
        for event in events:
            self.emit(event)
