"""Simulated inbound phone calls: the sandbox plays Twilio's part of a call to one of an account's numbers.

It requests the number's voice URL exactly as Twilio does (signed with the account's auth token, with the number's
method, the fallback URL when the first answer fails), follows the TwiML it gets back and sends the status and
recording callbacks in order:

- `<Say>` is recorded; `<Pause>` is skipped; `<Hangup>` ends the call; `<Redirect>` fetches its URL.
- `<Dial><Conference>` joins the conference (devtools/twilio_sandbox/conference.py).
- `<Dial>` records what was dialled and its outcome (a `<Client>` is never answered offline: "no-answer"; a
  `<Number>` answers with `dial_outcome`), then requests the `action` URL with `DialCallStatus`.
- `<Record>` makes a recording, sends its status callback and requests the `action` URL.
- `<Connect><Stream>` opens the websocket as Twilio does (`connected`, `start` with the `<Parameter>`s, 20 ms
  μ-law `media` frames all along, silence between the caller's words; the agent's audio played in real time, a
  mark echoed when the audio before it has played, `clear` honoured; `dtmf`; `stop`): it waits for the agent's
  greeting, then follows the caller's script (say, wait for the reply, say again, press a key; `SimulatedCall
  .script`, or `say` once) and stays on the line until the app hangs up or a limit. A REST redirect of the call
  (a handover's `<Dial>`) ends the stream and the new TwiML is followed.
- `<Connect><ConversationRelay>` opens the websocket with the handshake's `X-Twilio-Signature`, sends `setup`,
  waits for the greeting, sends `say` as a `prompt`; after `end` it requests the `<Connect action>` URL with
  `HandoffData` and follows that TwiML.

Standard library and twilio's signature helper only (plus the `websockets` client the app already depends on).
"""
from __future__ import annotations

import base64
import contextlib
import io
import json
import secrets
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
import wave
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

FRAME_BYTES = 160  # 20 ms of μ-law at 8 kHz
SILENCE_FRAME = b"\xff" * FRAME_BYTES
DEFAULT_SAY = "I want to talk to sales"
MAX_TWIML_STEPS = 20  # redirects and actions followed at most (a loop in someone's TwiML ends the call)
MAX_CALL_SECONDS = 60.0


def speech_ulaw(text: str, voice: str = "en-us") -> bytes:
    """`text` spoken by espeak-ng as 8 kHz μ-law (a short tone when espeak-ng is not installed)."""
    espeak = shutil.which("espeak-ng") or shutil.which("espeak")
    if espeak:
        wav = subprocess.run([espeak, "-v", voice, "-s", "150", "--stdout", text], capture_output=True,
                             check=True, timeout=30).stdout
        with wave.open(io.BytesIO(wav)) as w:
            pcm, rate, width = w.readframes(w.getnframes()), w.getframerate(), w.getsampwidth()
        return _pcm_to_ulaw(pcm, rate, width)
    import math
    samples = bytearray()
    for i in range(8000):  # one second of 440 Hz
        value = int(6000 * math.sin(2 * math.pi * 440 * i / 8000))
        samples += value.to_bytes(2, "little", signed=True)
    return _pcm_to_ulaw(bytes(samples), 8000, 2)


def _pcm_to_ulaw(pcm: bytes, rate: int, width: int) -> bytes:
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import audioop  # Python <= 3.12
    except ImportError:  # pragma: no cover - numpy fallback for Python 3.13+
        import numpy as np

        samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
        count = int(len(samples) * 8000 / rate)
        resampled = np.interp(np.linspace(0, len(samples) - 1, count), np.arange(len(samples)), samples)
        x = np.clip(resampled, -32635, 32635).astype(np.int32)
        sign = np.where(x < 0, 0x80, 0)
        x = np.abs(x) + 0x84
        exponent = np.floor(np.log2(x)).astype(np.int32) - 7
        mantissa = (x >> (exponent + 3)) & 0x0F
        return bytes((~(sign | (exponent << 4) | mantissa)) & 0xFF)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if width != 2:
            pcm = audioop.lin2lin(pcm, width, 2)
        if rate != 8000:
            pcm, _ = audioop.ratecv(pcm, 2, 1, rate, 8000, None)
        return audioop.lin2ulaw(pcm, 2)


@dataclass
class SimulatedCall:
    """One call the sandbox places to a number: its progress is `events` (for the control API and tests)."""

    sandbox: object
    account_sid: str
    to: str
    from_: str = "+15005550006"
    say: str = DEFAULT_SAY
    dial_outcome: str = "completed"
    # Media Streams: the caller's turns (`_next_step`): [{"say": "..."}, {"press": "1"}, {"silence": 2}], each
    # followed by waiting for the agent's reply (but silence); or a function (call, turn) -> step | None.
    script: object = None
    voice: str = "en-us"  # espeak-ng voice of the caller's words
    quiet: float = 2.5  # seconds of quiet after the agent's audio played out that end its reply
    linger: float = 6.0  # seconds the caller stays on the line after the script before hanging up
    limit: float = MAX_CALL_SECONDS  # the whole call, at most
    call_sid: str = field(default_factory=lambda: "CA" + secrets.token_hex(16))
    events: list = field(default_factory=list)
    status: str = "ringing"
    started: float = field(default_factory=time.monotonic)
    done: threading.Event = field(default_factory=threading.Event)

    # -- the run --------------------------------------------------------------------------------------------

    def start(self) -> "SimulatedCall":
        threading.Thread(target=self.run, name=f"sandbox-call-{self.call_sid}", daemon=True).start()
        return self

    def run(self) -> None:
        try:
            self._run()
        except Exception as exc:  # noqa: BLE001 - a simulated call reports what broke, it never takes the sandbox down
            self._log("error", error=repr(exc))
        finally:
            self._finish()
            self.done.set()

    def _run(self) -> None:
        number = self._number()
        if number is None:
            self._log("error", error=f"{self.to} is not a number of account {self.account_sid}")
            self.status = "failed"
            return
        self.sandbox.add_call(self.account_sid, self.call_sid, to=self.to, from_=self.from_, status="ringing",
                              direction="inbound", phone_number_sid=number["sid"], start_time=None)
        voice = self._voice_config(number)
        self.status_callback = voice["status_callback"]
        twiml = self._request(voice["url"], voice["method"], {}, fallback=(voice["fallback_url"],
                                                                           voice["fallback_method"]))
        if twiml is None:
            self.status = "failed"
            return
        self._set_status("in-progress")
        self._follow(twiml)

    def _follow(self, twiml: str) -> None:
        for _ in range(MAX_TWIML_STEPS):
            if twiml is None or self.status != "in-progress":
                return
            twiml = self._execute(twiml)
        self._log("error", error="too many TwiML documents in a row; hanging up")

    def _execute(self, twiml: str) -> str | None:
        """Run one TwiML document; the next document to run (an action's answer, a redirect) or None."""
        try:
            root = ET.fromstring(twiml)
        except ET.ParseError as exc:
            self._log("error", error=f"invalid TwiML: {exc}")
            return None
        self._log("twiml", twiml=twiml[:2000])
        for verb in root:
            if self._out_of_time():
                return None
            tag = verb.tag
            if tag == "Say":
                self._log("say", text=(verb.text or "").strip())
            elif tag == "Play":
                self._play(verb)
            elif tag == "Pause":
                continue
            elif tag == "Hangup":
                self._log("hangup")
                return None
            elif tag == "Reject":
                self._set_status("busy" if verb.get("reason") == "busy" else "no-answer")
                return None
            elif tag == "Redirect":
                return self._request((verb.text or "").strip(), verb.get("method", "POST"), {})
            elif tag == "Dial":
                nxt = self._dial(verb)
                if nxt is not False:
                    return nxt
            elif tag == "Record":
                return self._record(verb)
            elif tag == "Connect":
                return self._connect(verb)
            else:
                self._log("unsupported", verb=tag)
        return None  # the document ran out: Twilio hangs up

    def _finish(self) -> None:
        final = self.status if self.status in ("busy", "no-answer", "failed", "canceled") else "completed"
        duration = int(time.monotonic() - self.started)
        with self.sandbox.lock:
            call = self.sandbox.state["calls"].get(self.account_sid, {}).get(self.call_sid)
            recordings = [r["sid"] for r in self.sandbox.state["recordings"].get(self.account_sid, {}).values()
                          if r["call_sid"] == self.call_sid and r["status"] == "in-progress"]
        for recording_sid in recordings:  # a recording the app started ends with the call
            self.sandbox.complete_recording(self.account_sid, recording_sid, duration=max(1, duration))
            self._log("recording", recording_sid=recording_sid, status="completed")
        if call is not None and call["status"] not in ("completed", "canceled", "busy", "failed", "no-answer"):
            with self.sandbox.lock:
                call.update(status=final, duration=str(duration))
        self.status = final
        if getattr(self, "status_callback", None):
            self._callback(self.status_callback[0], self.status_callback[1],
                           {"CallStatus": final, "CallDuration": str(duration)})
        self._log("ended", status=final, duration=duration)

    # -- verbs ----------------------------------------------------------------------------------------------

    def _dial(self, verb) -> str | None | bool:
        if verb.find("Conference") is not None:  # conference.py: hold, the other participants, the action
            from devtools.twilio_sandbox import conference

            return conference.join(self, verb)
        nouns = [(child.tag, (child.text or "").strip()) for child in verb if child.tag in ("Number", "Client", "Sip")]
        if not nouns and (verb.text or "").strip():
            nouns = [("Number", verb.text.strip())]
        answered = any(kind == "Number" for kind, _ in nouns) and self.dial_outcome == "completed"
        outcome = "completed" if answered else ("no-answer" if self.dial_outcome == "completed" else self.dial_outcome)
        for child in verb:
            callback = child.get("statusCallback")
            if callback:
                leg = {"CallSid": "CA" + secrets.token_hex(16), "ParentCallSid": self.call_sid,
                       "To": (f"client:{child.text.strip()}" if child.tag == "Client" else (child.text or "").strip()),
                       "From": self.from_}
                for status in ("initiated", "ringing", "in-progress" if answered else outcome, "completed"):
                    if status == "completed" and not answered:
                        continue
                    self._callback(callback, child.get("statusCallbackMethod", "POST"), {**leg, "CallStatus": status})
        self._log("dial", to=[text for _, text in nouns], kinds=[kind for kind, _ in nouns], outcome=outcome,
                  caller_id=verb.get("callerId", ""))
        action = verb.get("action")
        if not action:
            return False  # no action: Twilio goes on with the next verb
        return self._request(action, verb.get("method", "POST"),
                             {"DialCallStatus": outcome, "DialCallDuration": "5" if answered else "0"})

    def _play(self, verb) -> None:
        """`<Play>`: Twilio fetches the audio (a plain GET, no signature) and plays it; logged with what came."""
        url = (verb.text or "").strip()
        entry = {"url": url}
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="GET"), timeout=15) as response:
                body = response.read()
                entry.update(status=response.status, content_type=response.headers.get("Content-Type", ""),
                             bytes=len(body))
        except urllib.error.HTTPError as exc:
            entry.update(status=exc.code, bytes=0)
        except Exception as exc:  # noqa: BLE001 - Twilio would log 11100 / 13227 and go on with the next verb
            entry.update(error=repr(exc), bytes=0)
        self._log("play", **entry)

    def _record(self, verb) -> str | None:
        recording_sid = self.sandbox.add_recording(self.account_sid, self.call_sid, status="in-progress",
                                                   source="RecordVerb", channels=1)
        callback = verb.get("recordingStatusCallback")
        with self.sandbox.lock:
            self.sandbox.state["recordings"][self.account_sid][recording_sid]["status_callback_url"] = callback
        self._log("record", recording_sid=recording_sid)
        self.sandbox.complete_recording(self.account_sid, recording_sid, duration=3, send_callback=bool(callback))
        action = verb.get("action")
        if not action:
            return None
        return self._request(action, verb.get("method", "POST"), {
            "RecordingSid": recording_sid, "RecordingDuration": "3",
            "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{self.account_sid}/Recordings/{recording_sid}"})

    def _connect(self, verb) -> str | None:
        history_before = self._twiml_history_length()
        handoff = None
        for child in verb:
            if child.tag == "Stream":
                self._stream(child, history_before)
            elif child.tag == "ConversationRelay":
                handoff = self._relay(child, history_before)
        redirected = self._redirected_twiml(history_before)
        if redirected is not None:
            self._log("redirected", twiml=redirected[:2000])
            return redirected
        action = verb.get("action")
        if action and self.status == "in-progress":
            params = {"HandoffData": handoff} if handoff is not None else {}
            return self._request(action, verb.get("method", "POST"), params)
        return None

    def _stream(self, stream, history_before: int) -> None:
        """Twilio's side of a bidirectional Media Stream, as Twilio behaves: caller audio (or silence) every 20 ms
        for as long as the stream lives, the agent's audio "played" in real time (a mark is echoed when the audio
        before it would have finished playing; `clear` drops what is queued and echoes its marks at once), DTMF
        as `dtmf` messages. The caller follows the script (`steps()`); then stays on the line, quiet, until the
        app hangs up or redirects, or `linger` seconds pass."""
        from websockets.exceptions import ConnectionClosed
        from websockets.sync.client import connect

        url = stream.get("url", "")
        parameters = {p.get("name"): p.get("value") for p in stream if p.tag == "Parameter"}
        stream_sid = "MZ" + secrets.token_hex(16)
        self._log("stream", url=url)
        heard = {"frames": 0, "bytes": 0, "last": time.monotonic(), "marks": 0, "clears": 0}
        playout = {"until": time.monotonic(), "marks": []}  # when the queued agent audio ends; (due, mark) pending
        lock = threading.Lock()
        closed = threading.Event()
        with connect(url, open_timeout=5, close_timeout=2, max_size=2 ** 20) as ws:
            def send(message: dict) -> None:
                try:
                    with lock:
                        ws.send(json.dumps(message))
                except ConnectionClosed:  # the app hung up between two frames
                    closed.set()

            def echo_due_marks(everything: bool = False) -> None:
                now = time.monotonic()
                with lock:
                    due = [m for t, m in playout["marks"] if everything or t <= now]
                    playout["marks"] = [] if everything else [(t, m) for t, m in playout["marks"] if t > now]
                for mark in due:
                    heard["marks"] += 1
                    send({"event": "mark", "streamSid": stream_sid, "mark": mark})

            def reader() -> None:
                try:
                    for raw in ws:
                        message = json.loads(raw)
                        event = message.get("event")
                        now = time.monotonic()
                        if event == "media":
                            size = len(base64.b64decode(message.get("media", {}).get("payload", "")))
                            heard["frames"] += 1
                            heard["bytes"] += size
                            heard["last"] = now
                            with lock:
                                playout["until"] = max(playout["until"], now) + size / 8000
                        elif event == "mark":
                            with lock:
                                playout["marks"].append((max(playout["until"], now), message.get("mark", {})))
                        elif event == "clear":
                            heard["clears"] += 1
                            with lock:
                                playout["until"] = now
                            echo_due_marks(everything=True)
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
            seq = [1]
            chunk = [0]
            clock = [time.monotonic()]

            def ended() -> bool:
                return closed.is_set() or self._out_of_time() or self._redirected_twiml(history_before) is not None

            def play(audio: bytes) -> None:
                """Send `audio` (caller speech or silence) in 20 ms frames at the line's pace."""
                for i in range(0, len(audio), FRAME_BYTES):
                    if ended():
                        return
                    frame = audio[i:i + FRAME_BYTES].ljust(FRAME_BYTES, b"\xff")
                    chunk[0] += 1
                    seq[0] += 1
                    send({"event": "media", "sequenceNumber": str(seq[0]), "streamSid": stream_sid,
                          "media": {"track": "inbound", "chunk": str(chunk[0]), "timestamp": str(chunk[0] * 20),
                                    "payload": base64.b64encode(frame).decode()}})
                    echo_due_marks()
                    clock[0] += 0.02
                    time.sleep(max(0.0, clock[0] - time.monotonic()))

            def playing() -> bool:
                with lock:
                    return playout["until"] > time.monotonic()

            def wait_reply(quiet: float, limit: float) -> None:
                """Caller silence until the agent has said something, it has played out, and the line has been
                quiet for `quiet` seconds (longer than end of turn plus recognition); at most `limit` seconds."""
                until = time.monotonic() + limit
                frames_before = heard["frames"]
                while time.monotonic() < until and not ended():
                    if (heard["frames"] > frames_before and not playing()
                            and time.monotonic() - heard["last"] > quiet):
                        return
                    play(SILENCE_FRAME * 5)

            clock[0] = time.monotonic()
            wait_reply(self.quiet, 10.0)
            self._log("heard", what="greeting", messages=heard["frames"], seconds=round(heard["bytes"] / 8000, 2))
            turn = 0
            while not ended():
                step = self._next_step(turn)
                if step is None:
                    break
                turn += 1
                before = heard["bytes"]
                if step.get("say"):
                    spoken = speech_ulaw(step["say"], voice=step.get("voice") or self.voice)
                    self._log("caller_says", text=step["say"], seconds=round(len(spoken) / 8000, 2))
                    play(spoken)
                elif step.get("press"):
                    for digit in str(step["press"]):
                        seq[0] += 1
                        send({"event": "dtmf", "streamSid": stream_sid, "sequenceNumber": str(seq[0]),
                              "dtmf": {"track": "inbound_track", "digit": digit}})
                        self._log("caller_presses", digit=digit)
                        play(SILENCE_FRAME * 10)
                elif step.get("silence"):
                    play(SILENCE_FRAME * int(float(step["silence"]) * 50))
                    continue
                heard["last"] = time.monotonic()
                wait_reply(self.quiet, float(step.get("limit") or 20.0))
                self._log("heard", what="reply", seconds=round((heard["bytes"] - before) / 8000, 2),
                          clears=heard["clears"], marks=heard["marks"])
            # The script is done: the caller stays on the line (silence) until the app hangs up or a limit.
            until = time.monotonic() + self.linger
            while time.monotonic() < until and not ended():
                play(SILENCE_FRAME * 5)
            if not closed.is_set():
                try:
                    seq[0] += 1
                    send({"event": "stop", "sequenceNumber": str(seq[0]), "streamSid": stream_sid,
                          "stop": {"accountSid": self.account_sid, "callSid": self.call_sid}})
                except Exception:  # noqa: BLE001
                    pass

    def _next_step(self, turn: int) -> dict | None:
        """The caller's next step: from `script` (a list of steps, or a function of this call and the turn
        number for a caller who reacts to what the agent said), else `say` once."""
        script = self.script if self.script is not None else [{"say": self.say}]
        if callable(script):
            step = script(self, turn)
        else:
            step = script[turn] if turn < len(script) else None
        if isinstance(step, str):
            step = {"say": step}
        return step

    @contextlib.contextmanager
    def _relay_socket(self, relay, direction: str):
        """Open ConversationRelay's websocket as Twilio does (signed, then `setup`) and yield it."""
        from twilio.request_validator import RequestValidator
        from websockets.sync.client import connect

        url = relay.get("url", "")
        signature = RequestValidator(self._token()).compute_signature(url, {})
        parameters = {p.get("name"): p.get("value") for p in relay if p.tag == "Parameter"}
        self._log("relay", url=url)
        with connect(url, open_timeout=5, close_timeout=2, additional_headers={"X-Twilio-Signature": signature}) as ws:
            ws.send(json.dumps({"type": "setup", "sessionId": "VX" + secrets.token_hex(16), "callSid": self.call_sid,
                                "accountSid": self.account_sid, "from": self.from_, "to": self.to,
                                "direction": direction, "customParameters": parameters}))
            yield ws

    @staticmethod
    def _relay_read(ws, limit: float, stop=None) -> tuple[str, str | None]:
        """The app's next reply over ConversationRelay: (its words, the handoff data if it ended the session).
        Without `stop`, a quiet socket ends the reply; with it, the read polls until `stop()` or the limit."""
        words, until = [], time.monotonic() + limit
        while time.monotonic() < until:
            if stop is not None and stop():
                break
            wait = max(0.1, until - time.monotonic()) if stop is None else min(0.2, max(0.05, until - time.monotonic()))
            try:
                message = json.loads(ws.recv(timeout=wait))
            except TimeoutError:
                if stop is None:
                    break
                continue
            if message.get("type") == "text":
                words.append(message.get("token", ""))
                if message.get("last"):
                    break
            elif message.get("type") == "end":
                return "".join(words), message.get("handoffData", "")
        return "".join(words), None

    def _relay(self, relay, history_before: int) -> str | None:
        handoff = None
        with self._relay_socket(relay, "inbound") as ws:
            greeting, handoff = self._relay_read(ws, 8.0)
            self._log("heard", what="greeting", text=greeting)
            if handoff is None and self._redirected_twiml(history_before) is None:
                ws.send(json.dumps({"type": "prompt", "voicePrompt": self.say, "lang": "en-US", "last": True}))
                self._log("caller_says", text=self.say)
                reply, handoff = self._relay_read(ws, 10.0)
                self._log("heard", what="reply", text=reply)
                if handoff is None:
                    _, handoff = self._relay_read(ws, 2.0)
        if handoff is not None:
            self._log("relay_end", handoff=handoff)
        return handoff

    # -- HTTP like Twilio -----------------------------------------------------------------------------------

    def _params(self, extra: dict) -> dict:
        return {"AccountSid": self.account_sid, "ApiVersion": "2010-04-01", "CallSid": self.call_sid,
                "CallStatus": self.status, "Called": self.to, "Caller": self.from_, "Direction": "inbound",
                "From": self.from_, "To": self.to, **extra}

    def _request(self, url: str, method: str, extra: dict, *, fallback=None) -> str | None:
        """Twilio's webhook request: signed, 15 s, the fallback URL if the answer is not TwiML."""
        body = self._fetch(url, method, self._params(extra))
        if body is None and fallback and fallback[0]:
            self._log("fallback", url=fallback[0])
            body = self._fetch(fallback[0], fallback[1] or "POST", self._params(extra))
        return body

    def _fetch(self, url: str, method: str, params: dict) -> str | None:
        from twilio.request_validator import RequestValidator

        method = (method or "POST").upper()
        validator = RequestValidator(self._token())
        if method == "GET":
            parts = urlsplit(url)
            full = url + ("&" if parts.query else "?") + urlencode(params)
            signature, data = validator.compute_signature(full, {}), None
            request = urllib.request.Request(full, method="GET")
        else:
            full, data = url, urlencode(params).encode()
            signature = validator.compute_signature(url, params)
            request = urllib.request.Request(url, data=data, method="POST",
                                             headers={"Content-Type": "application/x-www-form-urlencoded"})
        request.add_header("X-Twilio-Signature", signature)
        request.add_header("User-Agent", "TwilioProxy/1.1 (sandbox)")
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                text = response.read().decode("utf-8", "replace")
                self._log("webhook", url=url, method=method, status=response.status)
                return text
        except urllib.error.HTTPError as exc:
            self._log("webhook", url=url, method=method, status=exc.code)
        except Exception as exc:  # noqa: BLE001 - Twilio would log 11200 / 11205
            self._log("webhook", url=url, method=method, error=repr(exc))
        return None

    def _callback(self, url: str, method: str, extra: dict) -> None:
        params = self._params(extra)
        if (method or "POST").upper() == "POST":
            self.sandbox._send_callback(url, params, self._token())
        else:
            self._fetch(url, "GET", params)
        self._log("status_callback", url=url, status=extra.get("CallStatus", ""))

    # -- sandbox state --------------------------------------------------------------------------------------

    def _token(self) -> str:
        return self.sandbox._token(self.account_sid)

    def _number(self) -> dict | None:
        with self.sandbox.lock:
            for rec in self.sandbox.state["incoming_numbers"].get(self.account_sid, {}).values():
                if rec["phone_number"] == self.to:
                    return dict(rec)
        return None

    def _voice_config(self, number: dict) -> dict:
        source = number
        if number.get("voice_application_sid"):
            with self.sandbox.lock:
                source = dict(self.sandbox.state["applications"][self.account_sid].get(
                    number["voice_application_sid"], number))
        callback = source.get("status_callback")
        return {"url": source.get("voice_url") or "", "method": source.get("voice_method") or "POST",
                "fallback_url": source.get("voice_fallback_url") or "",
                "fallback_method": source.get("voice_fallback_method") or "POST",
                "status_callback": (callback, source.get("status_callback_method") or "POST") if callback else None}

    def _set_status(self, status: str) -> None:
        self.status = status
        with self.sandbox.lock:
            call = self.sandbox.state["calls"][self.account_sid].get(self.call_sid)
            if call is not None:
                call["status"] = status
                if status == "in-progress" and not call.get("start_time"):
                    from devtools.twilio_sandbox.server import _now

                    call["start_time"] = _now()

    def _twiml_history_length(self, call_sid: str = "") -> int:
        with self.sandbox.lock:
            call = self.sandbox.state["calls"][self.account_sid].get(call_sid or self.call_sid) or {}
            return len(call.get("twiml_history", []))

    def _redirected_twiml(self, history_before: int, *, call_sid: str = "") -> str | None:
        """TwiML the app sent with a REST redirect (`Calls/<sid>.json Twiml=`) since `history_before` (of this
        call, or of `call_sid`: a leg it dialled)."""
        with self.sandbox.lock:
            call = self.sandbox.state["calls"][self.account_sid].get(call_sid or self.call_sid) or {}
            history = call.get("twiml_history", [])[history_before:]
            if call.get("status") in ("completed", "canceled") and not call_sid:
                self.status = call["status"]
                return "<Response><Hangup/></Response>"
        for item in history:
            if isinstance(item, str):
                return item
        return None

    def _out_of_time(self) -> bool:
        return time.monotonic() - self.started > self.limit

    def _log(self, kind: str, **fields) -> None:
        self.events.append({"at": round(time.monotonic() - self.started, 3), "event": kind, **fields})

    def as_json(self) -> dict:
        return {"sid": self.call_sid, "account_sid": self.account_sid, "to": self.to, "from": self.from_,
                "status": self.status, "finished": self.done.is_set(), "events": list(self.events)}
