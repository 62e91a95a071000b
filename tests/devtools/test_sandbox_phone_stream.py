"""The sandbox's phone behaves like Twilio on a Media Stream: it streams (silence between the caller's words)
until the app hangs up, echoes a mark only once the audio before it has played, honours `clear` (queued marks
come back at once), and follows a multi-turn script (say, wait for the reply, press a key)."""
import base64
import json
import threading
import xml.etree.ElementTree as ET

from websockets.sync.server import serve

from devtools.twilio_sandbox.phone import SimulatedCall


class App:
    """A Media Streams app on loopback: `behave(ws, log)` plays the app's part; `log` is what it got, in order."""

    def __init__(self, behave):
        self.log: list[tuple[str, object]] = []
        self.behave = behave
        self.server = serve(self._handle, "127.0.0.1", 0)
        self.port = self.server.socket.getsockname()[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _handle(self, ws):
        self.behave(ws, self.log)

    def stop(self):
        self.server.shutdown()


def _read(ws, log, until):
    """Read the phone's messages into `log` until `until(message)`; the message."""
    for raw in ws:
        message = json.loads(raw)
        event = message["event"]
        if event == "media":
            log.append(("media", base64.b64decode(message["media"]["payload"])))
        elif event == "dtmf":
            log.append(("dtmf", message["dtmf"]["digit"]))
        else:
            log.append((event, message.get("mark", {}).get("name")))
        if until(message):
            return message
    return None


def _send_audio(ws, sid, seconds):
    for _ in range(int(seconds * 50)):
        ws.send(json.dumps({"event": "media", "streamSid": sid, "media": {"payload": base64.b64encode(
            b"\x7f" * 160).decode()}}))


def _place(sandbox, app, **options):
    sid, _ = sandbox.add_account()
    call = SimulatedCall(sandbox=sandbox, account_sid=sid, to="+15125550100", **options)
    sandbox.add_call(sid, call.call_sid)
    call.status = "in-progress"
    stream = ET.fromstring(f'<Stream url="ws://127.0.0.1:{app.port}/"/>')
    done = threading.Thread(target=call._stream, args=(stream, 0), daemon=True)
    done.start()
    return call, done


def test_a_mark_is_echoed_once_its_audio_has_played_and_clear_returns_queued_marks_at_once(twilio_sandbox):
    def behave(ws, log):
        start = _read(ws, log, lambda m: m["event"] == "start")
        sid = start["streamSid"]
        _send_audio(ws, sid, 1.0)  # one second of the agent's audio, then a mark
        ws.send(json.dumps({"event": "mark", "streamSid": sid, "mark": {"name": "played"}}))
        log.append(("sent", "played"))
        _read(ws, log, lambda m: m["event"] == "mark")
        _send_audio(ws, sid, 2.0)
        ws.send(json.dumps({"event": "mark", "streamSid": sid, "mark": {"name": "cleared"}}))
        ws.send(json.dumps({"event": "clear", "streamSid": sid}))
        log.append(("sent", "cleared"))
        _read(ws, log, lambda m: m["event"] == "mark")
        ws.close()

    app = App(behave)
    call, done = _place(twilio_sandbox, app, script=[], linger=60)
    done.join(60)
    app.stop()
    kinds = [k if k != "mark" and k != "sent" else f"{k}:{v}" for k, v in app.log]
    sent, echoed = kinds.index("sent:played"), kinds.index("mark:played")
    # The phone kept streaming 20 ms frames while the second of audio played: about 50 frames before the echo.
    assert kinds[sent:echoed].count("media") >= 25
    sent, echoed = kinds.index("sent:cleared"), kinds.index("mark:cleared")
    assert kinds[sent:echoed].count("media") < 25  # the clear dropped two seconds of queued audio
    assert not done.is_alive()  # the app closed the socket: the call's stream ended


def test_the_caller_follows_a_multi_turn_script_and_stays_on_the_line_until_the_app_hangs_up(twilio_sandbox):
    def behave(ws, log):
        start = _read(ws, log, lambda m: m["event"] == "start")
        sid = start["streamSid"]
        _send_audio(ws, sid, 0.5)  # the greeting
        _read(ws, log, lambda m: m["event"] == "media" and base64.b64decode(m["media"]["payload"]) != b"\xff" * 160)
        _read(ws, log, lambda m: m["event"] == "media" and base64.b64decode(m["media"]["payload"]) == b"\xff" * 160)
        _send_audio(ws, sid, 0.5)  # the reply to the words
        _read(ws, log, lambda m: m["event"] == "dtmf")
        # After the script: silence keeps coming until the app hangs up (here, after 200 more frames: 4 s).
        count = [0]

        def two_hundred(m):
            count[0] += m["event"] == "media"
            return count[0] >= 200
        _read(ws, log, two_hundred)
        log.append(("hangup", None))
        ws.close()

    app = App(behave)
    call, done = _place(twilio_sandbox, app, script=[{"say": "I want to talk to sales"}, {"press": "1"}], quiet=0.5,
                        linger=60)
    done.join(90)
    app.stop()
    kinds = [k for k, _ in app.log]
    assert kinds.count("dtmf") == 1 and ("dtmf", "1") in app.log
    assert kinds[-1] == "hangup"
    assert [e["event"] for e in call.events if e["event"] in ("caller_says", "caller_presses")] == [
        "caller_says", "caller_presses"]
    assert not done.is_alive()
