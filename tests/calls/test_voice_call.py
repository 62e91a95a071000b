""""Call this version": the browser's Media Stream consumer, driven with Channels' WebsocketCommunicator.

The socket is the real route of `config.routing` (origin validator, session auth). The "browser" here plays
Twilio's side of the protocol by hand: connected/start, μ-law media, mark echoes, DTMF, stop.
"""
from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from calls.engine import audio
from calls.models import CallHandover, CallSession, CallTurn
from tests.calls.engine.conftest import fake_realtime as fake_realtime  # noqa: F401  (the fixture)
from tests.conditions import CEILING
from workspaces.models import Membership

from .conftest import cookie_for, make_call_setup, member_of, run

pytestmark = pytest.mark.django_db(transaction=True)

SID = "MZ" + "a" * 32
WORKLET = Path(__file__).resolve().parents[2] / "calls" / "static" / "calls" / "voice_call_worklet.js"


def _app():
    from config.routing import websocket_urlpatterns

    return URLRouter(websocket_urlpatterns)


def _socket(setup, cookie, *, origin="http://testserver", version=None, environment=None):
    path = f"/v1/studio/voice-call/{(version or setup.version).pk}/{(environment or setup.environment).pk}"
    headers = [(b"host", b"testserver")]
    if origin:
        headers.append((b"origin", origin.encode()))
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    return WebsocketCommunicator(_app(), path, headers=headers)


def _start(stream_sid=SID):
    return {"event": "start", "sequenceNumber": "1", "streamSid": stream_sid,
            "start": {"streamSid": stream_sid, "accountSid": "", "callSid": "", "tracks": ["inbound"],
                      "customParameters": {},
                      "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}


class Browser:
    """Reads the server's messages and echoes marks, as the page's worklet does once the audio played."""

    def __init__(self, comm, echo_marks=True):
        self.comm = comm
        self.echo_marks = echo_marks  # False: the audio is "still playing" (a caller's voice then barges in)
        self.received: list[dict] = []

    async def until(self, predicate, timeout=CEILING) -> dict:
        async def loop():
            while True:
                output = await self.comm.receive_output(timeout)
                if output["type"] == "websocket.close":
                    raise AssertionError(f"closed ({output.get('code')}) while waiting; got {self.received[-5:]}")
                msg = json.loads(output["text"])
                self.received.append(msg)
                if msg.get("event") == "mark" and self.echo_marks:
                    await self.comm.send_to(text_data=json.dumps({"event": "mark", "streamSid": SID,
                                                                  "mark": msg["mark"]}))
                if predicate(msg):
                    return msg
        return await asyncio.wait_for(loop(), timeout)

    def studio(self, kind):
        return [m for m in self.received if m.get("event") == "studio" and m.get("kind") == kind]


def _admin(setup):
    return member_of(setup.workspace, role=Membership.Role.ADMIN)


def test_admin_calls_the_draft_hears_the_greeting_and_a_key_hands_over_shown_not_dialled(twilio_sandbox):
    setup = make_call_setup(sandbox=twilio_sandbox)
    cookie = cookie_for(_admin(setup))

    async def call():
        comm = _socket(setup, cookie)
        connected, _ = await comm.connect()
        assert connected
        browser = Browser(comm)
        await comm.send_to(text_data=json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        await comm.send_to(text_data=json.dumps(_start()))
        ready = await browser.until(lambda m: m.get("kind") == "ready")
        await browser.until(lambda m: m.get("kind") == "turn" and m["role"] == "agent")  # the greeting's transcript
        silence = base64.b64encode(bytes([audio.SILENCE_BYTE]) * 160).decode()
        for chunk in range(5):
            await comm.send_to(text_data=json.dumps({"event": "media", "streamSid": SID,
                                                     "media": {"track": "inbound", "chunk": str(chunk),
                                                               "timestamp": str(chunk * 20), "payload": silence}}))
        await comm.send_to(text_data=json.dumps({"event": "dtmf", "streamSid": SID,
                                                 "dtmf": {"track": "inbound_track", "digit": "1"}}))
        handover = await browser.until(lambda m: m.get("kind") == "handover")
        closed = await comm.receive_output(5)
        await comm.disconnect()
        return ready, handover, closed, browser

    ready, handover, closed, browser = run(call())
    assert ready["provider"] == "scripted" and ready["agent"] == "Ava"
    assert {"name": "transfer_to_sales", "destination": "+31201234567"} in ready["actions"]
    media = [m for m in browser.received if m.get("event") == "media"]
    assert media and all(m["streamSid"] == SID for m in media)  # the greeting's audio, as Twilio gets it
    assert all(len(base64.b64decode(m["media"]["payload"])) % audio.FRAME_BYTES == 0 for m in media)
    assert sum(len(base64.b64decode(m["media"]["payload"])) for m in media) >= 8000 * 0.2  # some 200 ms at least
    assert any(m.get("event") == "mark" for m in browser.received)
    turns = [(m["role"], m["text"]) for m in browser.studio("turn")]
    assert ("agent", "Hello, this is Ava.") in turns and ("caller", "(pressed 1)") in turns
    latencies = browser.studio("latency")
    assert [m["after"] for m in latencies] == ["start", "caller"] and all(m["ms"] >= 0 for m in latencies)
    assert handover["action"] == "transfer_to_sales" and handover["destination"] == "+31201234567"
    assert closed["type"] == "websocket.close"
    # Shown, never dialled or stored: no call session, turn or handover rows, no request to Twilio.
    assert not CallSession.objects.exists() and not CallTurn.objects.exists() and not CallHandover.objects.exists()
    assert not twilio_sandbox.requests_to(r"/Calls")


def test_barge_in_clears_the_browsers_queued_audio():
    # The scripted agent's tone mode (frame-energy barge-in): the offline speech pipeline never lets the caller's
    # first words cut the greeting (tests/calls/engine/test_cascaded_turns.py).
    setup = make_call_setup(variables={"SCRIPTED_SPEECH": "tones"})
    cookie = cookie_for(_admin(setup))
    import numpy as np

    loud = base64.b64encode(audio.pcm16_to_ulaw((8000 * np.sin(np.arange(160) / 3)).astype("int16"))).decode()

    async def call():
        comm = _socket(setup, cookie)
        assert (await comm.connect())[0]
        browser = Browser(comm, echo_marks=False)  # the greeting is still playing in the browser
        await comm.send_to(text_data=json.dumps(_start()))
        await browser.until(lambda m: m.get("event") == "mark")
        for chunk in range(5):
            await comm.send_to(text_data=json.dumps({"event": "media", "streamSid": SID,
                                                     "media": {"track": "inbound", "payload": loud}}))
        clear = await browser.until(lambda m: m.get("event") == "clear")
        await comm.disconnect()
        return clear

    assert run(call()) == {"event": "clear", "streamSid": SID}


def test_the_agents_hang_up_is_shown_and_a_stop_from_the_browser_ends_the_call():
    setup = make_call_setup()
    cookie = cookie_for(_admin(setup))

    async def call(script):
        comm = _socket(setup, cookie)
        assert (await comm.connect())[0]
        browser = Browser(comm)
        await comm.send_to(text_data=json.dumps(_start()))
        await browser.until(lambda m: m.get("kind") == "ready")
        result = await script(comm, browser)
        await comm.disconnect()
        return result, browser

    async def goodbye(comm, browser):
        await comm.send_to(text_data=json.dumps({"event": "dtmf", "streamSid": SID, "dtmf": {"digit": "9"}}))
        await browser.until(lambda m: m.get("kind") == "hangup")
        return await comm.receive_output(5)

    async def stop(comm, browser):
        await browser.until(lambda m: m.get("kind") == "turn" and m["role"] == "agent")
        await comm.send_to(text_data=json.dumps({"event": "stop", "streamSid": SID, "stop": {}}))
        return await comm.receive_output(5)

    closed, browser = run(call(goodbye))
    assert closed["type"] == "websocket.close"
    assert ("event", "The agent ended the call") in [(m["role"], m["text"]) for m in browser.studio("turn")]
    closed, browser = run(call(stop))
    assert closed["type"] == "websocket.close" and not browser.studio("hangup")
    assert not CallSession.objects.exists() and not CallTurn.objects.exists()


def test_a_realtime_version_runs_its_own_provider_barge_in_truncates_and_the_tool_handover_is_shown(
        twilio_sandbox, fake_realtime):
    """The provider a phone call of the version gets (OpenAI Realtime, against the local fake): its μ-law goes to
    the browser untouched, the caller's voice clears it and truncates the reply, its tool call is shown."""
    from tests.fakes.openai_realtime import ULAW_CHUNK

    fake_realtime.tool_after_loud_frames = 8
    setup = make_call_setup(sandbox=twilio_sandbox, provider="openai_realtime",
                            secrets_={"OPENAI_API_KEY": fake_realtime.api_key},
                            variables={"OPENAI_BASE_URL": fake_realtime.base_url,
                                       "OPENAI_REALTIME_MODEL": "gpt-realtime-test"})
    cookie = cookie_for(_admin(setup))
    loud = base64.b64encode(bytes([0x10]) * 160).decode()

    async def call():
        comm = _socket(setup, cookie)
        assert (await comm.connect())[0]
        browser = Browser(comm, echo_marks=False)
        await comm.send_to(text_data=json.dumps(_start()))
        ready = await browser.until(lambda m: m.get("kind") == "ready")
        media = await browser.until(lambda m: m.get("event") == "media")
        await browser.until(lambda m: m.get("event") == "mark")
        for _ in range(3):
            await comm.send_to(text_data=json.dumps({"event": "media", "streamSid": SID,
                                                     "media": {"track": "inbound", "payload": loud}}))
        await browser.until(lambda m: m.get("event") == "clear")
        browser.echo_marks = True
        for _ in range(7):
            await comm.send_to(text_data=json.dumps({"event": "media", "streamSid": SID,
                                                     "media": {"track": "inbound", "payload": loud}}))
        handover = await browser.until(lambda m: m.get("kind") == "handover", timeout=10)
        await comm.disconnect()
        return ready, media, handover, browser

    ready, media, handover, browser = run(call())
    assert ready["provider"] == "openai_realtime" and ready["provider_class"] == "OpenAIRealtimeProvider"
    assert base64.b64decode(media["media"]["payload"]) == ULAW_CHUNK
    assert any(m.get("event") == "clear" for m in browser.received)
    assert any(e["type"] == "conversation.item.truncate" for e in fake_realtime.events)
    assert handover["action"] == "transfer_to_sales"
    assert not CallHandover.objects.exists() and not twilio_sandbox.requests_to(r"/Calls")


@pytest.mark.parametrize("who", ["member", "other_workspace_admin", "anonymous"])
def test_only_admins_of_the_workspace_may_call(who):
    setup = make_call_setup()
    if who == "member":
        cookie = cookie_for(member_of(setup.workspace, role=Membership.Role.MEMBER))
    elif who == "other_workspace_admin":
        cookie = cookie_for(_admin(make_call_setup()))
    else:
        cookie = ""

    async def attempt():
        comm = _socket(setup, cookie)
        connected, code = await comm.connect()
        await comm.disconnect()
        return connected, code

    connected, code = run(attempt())
    assert not connected and code == 4404


def test_another_workspaces_agent_or_environment_is_refused():
    setup = make_call_setup()
    foreign = make_call_setup()
    cookie = cookie_for(_admin(setup))

    async def attempt(**kw):
        comm = _socket(setup, cookie, **kw)
        connected, _ = await comm.connect()
        await comm.disconnect()
        return connected

    assert run(attempt()) is True
    assert run(attempt(version=foreign.version)) is False
    assert run(attempt(environment=foreign.environment)) is False


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "", "http://testserver.evil.example"])
def test_other_origins_are_refused(origin):
    setup = make_call_setup()
    cookie = cookie_for(_admin(setup))

    async def attempt():
        comm = _socket(setup, cookie, origin=origin)
        connected, _ = await comm.connect()
        await comm.disconnect()
        return connected

    assert run(attempt()) is False


def test_public_base_url_origin_is_same_origin_behind_a_proxy(settings):
    settings.PUBLIC_BASE_URL = "https://calls.example.test"
    setup = make_call_setup()
    cookie = cookie_for(_admin(setup))

    async def attempt():
        comm = _socket(setup, cookie, origin="https://calls.example.test")
        connected, _ = await comm.connect()
        await comm.disconnect()
        return connected

    assert run(attempt()) is True


def test_a_conversation_relay_version_is_explained_not_called():
    setup = make_call_setup(transport="conversation_relay")
    cookie = cookie_for(_admin(setup))

    async def attempt():
        comm = _socket(setup, cookie)
        assert (await comm.connect())[0]
        error = json.loads((await comm.receive_output(5))["text"])
        closed = await comm.receive_output(5)
        await comm.disconnect()
        return error, closed

    error, closed = run(attempt())
    assert error["kind"] == "error" and "ConversationRelay" in error["message"]
    assert closed["type"] == "websocket.close"


def test_provider_that_cannot_start_is_reported_and_the_apology_plays():
    setup = make_call_setup(provider="openai_realtime")  # no OPENAI_API_KEY in this environment
    cookie = cookie_for(_admin(setup))

    async def call():
        comm = _socket(setup, cookie)
        assert (await comm.connect())[0]
        browser = Browser(comm)
        await comm.send_to(text_data=json.dumps(_start()))
        error = await browser.until(lambda m: m.get("kind") == "error")
        await browser.until(lambda m: m.get("event") == "media")
        await comm.disconnect()
        return error

    error = run(call())
    assert "OPENAI_API_KEY" in error["message"]


HOSTILE = {
    "not json": "{not json",
    "not an object": "[1, 2]",
    "huge": json.dumps({"event": "media", "media": {"payload": "A" * 200_000}}),
    "media before start": json.dumps({"event": "media", "streamSid": SID, "media": {"payload": "AAAA"}}),
    "wrong media format": json.dumps({**_start(), "start": {**_start()["start"],
                                                           "mediaFormat": {"encoding": "audio/l16",
                                                                           "sampleRate": "x"}}}),
}


CASES = [(kind, False) for kind in HOSTILE] + [(kind, True) for kind in ("not json", "not an object", "huge")]


@pytest.mark.parametrize(("kind", "started"), CASES, ids=[f"{k}-{'call' if s else 'handshake'}" for k, s in CASES])
def test_hostile_frames_close_the_socket_once_without_a_traceback(kind, started, caplog):
    setup = make_call_setup()
    cookie = cookie_for(_admin(setup))

    async def attack():
        comm = _socket(setup, cookie)
        assert (await comm.connect())[0]
        if started:
            browser = Browser(comm)
            await comm.send_to(text_data=json.dumps(_start()))
            await browser.until(lambda m: m.get("kind") == "ready")
        for _ in range(50):
            await comm.send_to(text_data=HOSTILE[kind])
        await comm.send_to(bytes_data=b"\x00\x01")
        outputs = []
        while not await comm.receive_nothing(0.5):  # (receive_output's timeout would cancel the application)
            outputs.append(await comm.receive_output())
        await comm.disconnect()
        return outputs

    with caplog.at_level(logging.INFO):
        outputs = run(attack())
    closes = [o for o in outputs if o["type"] == "websocket.close"]
    assert len(closes) == 1
    assert closes[0]["code"] in (4400, 1009)
    assert not any(r.exc_info for r in caplog.records), [r.getMessage() for r in caplog.records if r.exc_info]
    assert sum("stream refused" in r.getMessage() for r in caplog.records) == 1


def test_a_binary_frame_closes_the_socket():
    setup = make_call_setup()
    cookie = cookie_for(_admin(setup))

    async def attack():
        comm = _socket(setup, cookie)
        assert (await comm.connect())[0]
        await comm.send_to(bytes_data=b"\xff" * 160)
        closed = await comm.receive_output(2)
        await comm.disconnect()
        return closed

    assert run(attack())["type"] == "websocket.close"


@pytest.mark.skipif(not shutil.which("node"), reason="node is not installed")
def test_the_browsers_mulaw_codec_matches_g711():
    """The worklet's encoder and decoder (run in node) give the same bytes and samples as calls.engine.audio."""
    import numpy as np

    script = (f"const A = require({json.dumps(str(WORKLET))});"
              "const enc = []; for (let s = -32768; s < 32768; s += 7) enc.push(A.mulawEncode(s / 32767));"
              "const dec = []; for (let b = 0; b < 256; b++) dec.push(Math.round(A.mulawDecode(b) * 32768));"
              "console.log(JSON.stringify({enc, dec}));")
    out = json.loads(subprocess.run(["node", "-e", script], capture_output=True, text=True, check=True).stdout)
    samples = np.arange(-32768, 32768, 7)
    expected = audio.pcm16_to_ulaw(np.round(samples / 32767 * 32767).astype(np.int16))
    mismatched = [int(s) for s, got, want in zip(samples, out["enc"], expected) if got != want]
    assert not mismatched, mismatched[:10]
    assert out["dec"] == [int(v) for v in audio.ulaw_to_pcm16(bytes(range(256)))]


@pytest.mark.skipif(not shutil.which("node"), reason="node is not installed")
@pytest.mark.parametrize("rate", [48000, 44100])
def test_the_browsers_resampler_keeps_a_tone_and_20ms_frames(rate):
    """One second in at the context's rate: 50 frames of 160 bytes, a 440 Hz tone survives, a 6 kHz one (above
    4 kHz) is filtered out; playback consumes 8 kHz audio in real time and echoes a mark once it has played."""
    script = (f"const A = require({json.dumps(str(WORKLET))}); const R = {rate};"
              "function run(freq) { const frames = []; const d = new A.Downsampler(R, (f, l) => frames.push([f.length, l]));"
              " const x = new Float32Array(R); for (let i = 0; i < x.length; i++)"
              " x[i] = 0.5 * Math.sin(2 * Math.PI * freq * i / R);"
              " for (let i = 0; i < x.length; i += 128) d.push(x.subarray(i, i + 128)); return frames; }"
              "const low = run(440), high = run(6000); const marks = [];"
              "const p = new A.Player(R, (name) => marks.push(name)); p.enqueue(new Uint8Array(160).fill(0xff));"
              "p.mark('m1'); const before = marks.length; const out = new Float32Array(Math.round(R / 50) + 8);"
              "p.render(out); p.enqueue(new Uint8Array(160)); p.mark('m2'); p.clear();"
              "console.log(JSON.stringify({n: low.length, sizes: [...new Set(low.map(f => f[0]))], low: low[25][1],"
              " high: high[25][1], left: p.pending(), before, marks}));")
    out = json.loads(subprocess.run(["node", "-e", script], capture_output=True, text=True, check=True).stdout)
    assert out["n"] in (49, 50) and out["sizes"] == [160]
    assert 0.3 < out["low"] < 0.4  # the tone's RMS (0.5 / √2) through the codec
    assert out["high"] < 0.05
    assert out["before"] == 0 and out["marks"] == ["m1", "m2"]  # m1 once played, m2 at once on clear
    assert out["left"] == 0


def test_agent_page_offers_the_call_to_admins_only_with_no_inline_script_or_style(client):
    setup = make_call_setup()
    foreign = make_call_setup()
    admin = _admin(setup)
    client.force_login(admin)
    html = client.get(f"/studio/agents/{setup.version.agent_id}/").content.decode()
    panel = html[html.index('data-testid="voice-call"'):]
    panel = panel[:panel.index("</section>")]
    environments = re.search(r'name="environment".*?</select>', panel, re.S).group(0)
    assert f'<option value="{setup.version.pk}">Draft' in panel
    assert f'<option value="{setup.environment.pk}">' in environments
    assert f'<option value="{foreign.environment.pk}">' not in environments
    assert 'data-worklet-url="/static/calls/voice_call_worklet.js"' in panel
    assert "calls/voice_call.js" in html and "style=" not in panel and "<script>" not in html.split("voice-call")[1]
    member = member_of(setup.workspace, role=Membership.Role.MEMBER)
    client.force_login(member)
    assert 'data-testid="voice-call"' not in client.get(f"/studio/agents/{setup.version.agent_id}/").content.decode()


def test_latency_is_measured_to_a_new_reply_only():
    """A caller turn recorded while the agent's reply is already under way (a late transcript) shows no latency."""
    from calls.engine.context import CallContext
    from calls.engine.engine import call_open
    from calls.engine.events import AudioOut
    from calls.providers.scripted import ScriptedProvider

    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    async def scenario():
        ctx = CallContext(transport="media_streams", provider="scripted", test_mode=True)
        call = call_open("browser", ctx, send, stream_sid=SID, provider=ScriptedProvider(ctx))
        frame = base64.b64encode(bytes(160)).decode()
        await call.dispatch(AudioOut(frame, "r1"))  # the greeting: latency after the start
        call.record_turn("caller", "late transcript")
        await call.dispatch(AudioOut(frame, "r1"))  # the same reply goes on: nothing to measure
        call.record_turn("caller", "hello?")
        await call.dispatch(AudioOut(frame, "r2"))  # a new reply: measured
        return call

    call = run(scenario())
    assert [after for after, _ in call.wire.latencies] == ["start", "caller"]
    assert [m["after"] for m in sent if m.get("kind") == "latency"] == ["start", "caller"]
