"""Outbound calls in the sandbox: `POST Calls.json` with a `Url` is dialled, and someone (or something) answers.

Who answers is told by the number called, as Twilio's test numbers tell outcomes by number:

| `To` ends in | what happens | status callbacks | `AnsweredBy` (AsyncAmd) |
| --- | --- | --- | --- |
| `77` | busy | initiated, ringing, busy | — |
| `88` | no answer | initiated, ringing, no-answer | — |
| `99` | failed (unreachable) | initiated, failed | — |
| `66` | an answering machine: greeting, beep, silence | …, in-progress, completed | `machine_end_beep` after the beep |
| anything else | a person: says "Hello?" first, waits for the agent's greeting, speaks the script | …, completed | `human` |

`+15005550001` is refused at once (400, 21217 invalid number), as with Twilio's test credentials.

The person's and the machine's words are set per sandbox (`sandbox.outbound_script`, `sandbox.machine_greeting`)
or per call number (`sandbox.outbound_scripts[to] = [...]`). The call follows the answer URL's TwiML with the
inbound simulation's machinery (`phone.SimulatedCall`): `<Connect><Stream>` / `<ConversationRelay>` websockets,
a REST redirect (the voicemail's `<Say>`) ending the stream, the final status callback.
"""
from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from dataclasses import dataclass, field

from devtools.twilio_sandbox.phone import FRAME_BYTES, SimulatedCall, speech_ulaw

TEST_NUMBER_INVALID = "+15005550001"
PERSON_HELLO = "Hello?"
PERSON_SCRIPT = ["Yes, I can talk now. What are your opening hours?"]
MACHINE_GREETING = "You have reached the Smith family. Please leave a message after the tone."


def behaviour_of(to: str) -> str:
    digits = "".join(ch for ch in to if ch.isdigit())
    return {"77": "busy", "88": "no-answer", "99": "failed", "66": "machine"}.get(digits[-2:], "person")


def beep_ulaw(seconds: float = 0.5) -> bytes:
    """A 1 kHz tone as μ-law (the answering machine's beep)."""
    import math

    from devtools.twilio_sandbox.phone import _pcm_to_ulaw

    samples = bytearray()
    for i in range(int(8000 * seconds)):
        samples += int(8000 * math.sin(2 * math.pi * 1000 * i / 8000)).to_bytes(2, "little", signed=True)
    return _pcm_to_ulaw(bytes(samples), 8000, 2)


@dataclass
class OutboundCall(SimulatedCall):
    """A call the app placed (`Calls.json`): the callee's side, with AMD and status callbacks."""

    form: dict = field(default_factory=dict)
    behaviour: str = "person"
    script: list = field(default_factory=lambda: list(PERSON_SCRIPT))
    machine_greeting: str = MACHINE_GREETING

    def _run(self) -> None:
        form = self.form
        callback = form.get("StatusCallback")
        self.status_callback = (callback, form.get("StatusCallbackMethod") or "POST") if callback else None
        self._log("dialled", to=self.to, behaviour=self.behaviour)
        self._progress("initiated")
        if self.behaviour == "failed":
            self._set_status("failed")
            return
        self._set_status("ringing")
        self._progress("ringing")
        if self.behaviour in ("busy", "no-answer"):
            self._set_status(self.behaviour)
            return
        self._set_status("in-progress")
        self._progress("in-progress")
        twiml = self._request(form.get("Url", ""), form.get("Method") or "POST", {})
        if twiml is None:
            self._log("error", error="the answer URL gave no TwiML")
            return
        self._follow(twiml)

    def _progress(self, status: str) -> None:
        if self.status_callback and status != "completed":
            self._callback(self.status_callback[0], self.status_callback[1], {"CallStatus": status})

    def _params(self, extra: dict) -> dict:
        return {**super()._params(extra), "Direction": "outbound-api", **extra}

    def _amd(self, answered_by: str, duration_ms: int) -> None:
        url = self.form.get("AsyncAmdStatusCallback")
        if not url or str(self.form.get("AsyncAmd", "")).lower() != "true":
            return
        with self.sandbox.lock:
            call = self.sandbox.state["calls"][self.account_sid].get(self.call_sid)
            if call is not None:
                call["answered_by"] = answered_by
        params = {"AccountSid": self.account_sid, "CallSid": self.call_sid, "AnsweredBy": answered_by,
                  "MachineDetectionDuration": str(duration_ms)}
        self.sandbox._send_callback(url, params, self._token())
        self._log("amd", answered_by=answered_by)

    # -- the callee on the media stream / relay --------------------------------------------------------------

    def _stream(self, stream, history_before: int) -> None:
        from websockets.sync.client import connect

        url = stream.get("url", "")
        parameters = {p.get("name"): p.get("value") for p in stream if p.tag == "Parameter"}
        stream_sid = "MZ" + secrets.token_hex(16)
        self._log("stream", url=url)
        heard = {"frames": 0, "bytes": 0, "last": time.monotonic()}
        closed = threading.Event()
        with connect(url, open_timeout=5, close_timeout=2, max_size=2 ** 20) as ws:
            def send(message: dict) -> None:
                ws.send(json.dumps(message))

            def reader() -> None:
                try:
                    for raw in ws:
                        message = json.loads(raw)
                        if message.get("event") == "media":
                            heard["frames"] += 1
                            heard["bytes"] += len(base64.b64decode(message.get("media", {}).get("payload", "")))
                            heard["last"] = time.monotonic()
                        elif message.get("event") == "mark":
                            send({"event": "mark", "streamSid": stream_sid, "mark": message.get("mark", {})})
                except Exception:  # noqa: BLE001 - the server closed the socket
                    pass
                finally:
                    closed.set()

            send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
            send({"event": "start", "sequenceNumber": "1", "streamSid": stream_sid,
                  "start": {"streamSid": stream_sid, "accountSid": self.account_sid, "callSid": self.call_sid,
                            "tracks": ["inbound"], "customParameters": parameters,
                            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}})
            threading.Thread(target=reader, daemon=True).start()
            chunk = [0]

            def ended() -> bool:
                return closed.is_set() or self._redirected_twiml(history_before) is not None

            def play(audio: bytes) -> None:
                for i in range(0, len(audio), FRAME_BYTES):
                    if ended():
                        return
                    chunk[0] += 1
                    send({"event": "media", "sequenceNumber": str(chunk[0] + 1), "streamSid": stream_sid,
                          "media": {"track": "inbound", "chunk": str(chunk[0]), "timestamp": str(chunk[0] * 20),
                                    "payload": base64.b64encode(audio[i:i + FRAME_BYTES].ljust(FRAME_BYTES, b"\xff")
                                                                ).decode()}})
                    time.sleep(0.02)

            def quiet_until(seconds: float, limit: float, *, need_audio: bool = True) -> None:
                until = time.monotonic() + limit
                while time.monotonic() < until and not ended():
                    if (heard["frames"] or not need_audio) and time.monotonic() - heard["last"] > seconds:
                        return
                    play(b"\xff" * FRAME_BYTES * 10)

            if self.behaviour == "machine":
                before = heard["bytes"]
                greeting = speech_ulaw(self.machine_greeting)
                self._log("machine_says", text=self.machine_greeting, seconds=round(len(greeting) / 8000, 2))
                play(greeting)
                play(beep_ulaw())
                self._log("beep")
                self._amd("machine_end_beep", int(len(greeting) / 8))
                quiet_until(30.0, 10.0, need_audio=False)  # silence until the app redirects (voicemail) or hangs up
                self._log("heard", what="before_redirect", seconds=round((heard["bytes"] - before) / 8000, 2))
            else:
                spoken = speech_ulaw(PERSON_HELLO)
                before = heard["bytes"]
                self._log("callee_says", text=PERSON_HELLO, agent_audio_before=round(before / 8000, 2))
                play(spoken)
                self._amd("human", 1200)  # a short "Hello?" then silence: DetectMessageEnd says human
                heard["last"] = time.monotonic()
                quiet_until(1.0, 8.0)
                self._log("heard", what="greeting", seconds=round((heard["bytes"] - before) / 8000, 2))
                for line in self.script:
                    if ended():
                        break
                    before = heard["bytes"]
                    self._log("caller_says", text=line)
                    play(speech_ulaw(line))
                    heard["last"] = time.monotonic()
                    quiet_until(1.5, 10.0)
                    self._log("heard", what="reply", seconds=round((heard["bytes"] - before) / 8000, 2))
            if not closed.is_set():
                try:
                    send({"event": "stop", "sequenceNumber": str(chunk[0] + 2), "streamSid": stream_sid,
                          "stop": {"accountSid": self.account_sid, "callSid": self.call_sid}})
                except Exception:  # noqa: BLE001
                    pass

    def _relay(self, relay, history_before: int) -> str | None:
        handoff = None
        with self._relay_socket(relay, "outbound-api") as ws:
            def read(limit: float) -> tuple[str, str | None]:
                return self._relay_read(ws, limit, stop=lambda: self._redirected_twiml(history_before) is not None)

            def say(text: str) -> None:
                ws.send(json.dumps({"type": "prompt", "voicePrompt": text, "lang": "en-US", "last": True}))

            if self.behaviour == "machine":
                self._log("machine_says", text=self.machine_greeting)
                say(self.machine_greeting)
                self._log("beep")
                self._amd("machine_end_beep", 3000)
                before_redirect, handoff = read(10.0)
                self._log("heard", what="before_redirect", text=before_redirect)
            else:
                early, _ = read(0.5)  # an agent that speaks before the callee does
                self._log("callee_says", text=PERSON_HELLO, agent_said_before=early)
                say(PERSON_HELLO)
                self._amd("human", 1200)
                greeting, handoff = read(8.0)
                self._log("heard", what="greeting", text=greeting)
                for line in self.script:
                    if handoff is not None or self._redirected_twiml(history_before) is not None:
                        break
                    self._log("caller_says", text=line)
                    say(line)
                    reply, handoff = read(10.0)
                    self._log("heard", what="reply", text=reply)
                    if handoff is None:  # a reply before a handover ("Let me transfer you."), then the `end`
                        _, handoff = read(1.0)
        if handoff is not None:
            self._log("relay_end", handoff=handoff)
        return handoff


def dial(sandbox, account_sid: str, call_sid: str, form: dict) -> OutboundCall | None:
    """Start the callee's side of a call just created with `Url` (called by `calls_create`, under the lock)."""
    to = form.get("To", "")
    script = getattr(sandbox, "outbound_scripts", {}).get(to) or getattr(sandbox, "outbound_script", None) \
        or list(PERSON_SCRIPT)
    call = OutboundCall(sandbox=sandbox, account_sid=account_sid, to=to, from_=form.get("From", ""),
                        call_sid=call_sid, form=dict(form), behaviour=behaviour_of(to), script=list(script),
                        machine_greeting=getattr(sandbox, "machine_greeting", MACHINE_GREETING))
    sandbox.simulated[call_sid] = call
    call.start()
    return call
