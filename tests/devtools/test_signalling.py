"""The sandbox's Voice SDK signalling (devtools/twilio_sandbox/signalling.py) over a plain websocket: tokens are
verified as Twilio does and refused with the SDK's error codes; a good one is connected and registers."""
import base64
import json
import ssl
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

import pytest
from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import ChatGrant, VoiceGrant
from twilio.request_validator import RequestValidator
from websockets.sync.client import connect

from devtools.twilio_sandbox import SandboxServer


@pytest.fixture
def sandbox():
    with SandboxServer() as server:
        yield server


def _post(sandbox, account_sid, token, path, fields):
    request = urllib.request.Request(f"{sandbox.base_url}/2010-04-01/Accounts/{account_sid}/{path}",
                                     data=urllib.parse.urlencode(fields).encode(), method="POST")
    request.add_header("Authorization", "Basic " + base64.b64encode(f"{account_sid}:{token}".encode()).decode())
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


def _workspace(sandbox, app_fields=None):
    """An account with an API key and a TwiML app, as the dialer's provisioning leaves it: (sid, key, secret, app)."""
    sid, token = sandbox.add_account()
    key = _post(sandbox, sid, token, "Keys.json", {"FriendlyName": "dialer"})
    app = _post(sandbox, sid, token, "Applications.json", app_fields or {
        "FriendlyName": "dialer", "VoiceUrl": "https://calls.example.test/v1/voice/outbound/1"})
    return sid, key["sid"], key["secret"], app["sid"]


def _token(sid, key, secret, *, app, ttl=3600, grants=None, identity="ws1-u1", valid_until=None):
    token = AccessToken(sid, key, secret, identity=identity, ttl=ttl, valid_until=valid_until)
    for grant in grants if grants is not None else [VoiceGrant(outgoing_application_sid=app, incoming_allow=True)]:
        token.add_grant(grant)
    jwt = token.to_jwt()
    return jwt.decode() if isinstance(jwt, bytes) else jwt


def _listen(sandbox, token, then=(), during=lambda: None, more=0):
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with connect(f"wss://{sandbox.signalling.host}/signal", ssl=context, open_timeout=5) as ws:
        replies = []
        for type_, payload in [("listen", {"token": token, "browserinfo": {}, "reconnectTimeout": 0}), *then]:
            ws.send(json.dumps({"type": type_, "version": "1.6", "payload": payload}))
            replies.append(json.loads(ws.recv(timeout=5)))
        replies += [json.loads(ws.recv(timeout=10)) for _ in range(more)]  # messages the server sends by itself
        during()
        return replies


def test_a_valid_token_is_connected_then_registered(sandbox):
    sid, key, secret, app = _workspace(sandbox)
    registered = []
    connected, ready = _listen(sandbox, _token(sid, key, secret, app=app),
                               then=[("register", {"media": {"audio": True}})],
                               during=lambda: registered.extend(sandbox.signalling.registered(sid, "ws1-u1")))
    assert connected["type"] == "connected"
    assert connected["payload"]["token"]["identity"] == "ws1-u1"
    assert 3500 < connected["payload"]["token"]["ttl"] <= 3600
    assert ready["type"] == "ready"
    assert registered  # a call to client:ws1-u1 rings this socket


def test_an_expired_token_is_refused_with_20104(sandbox):
    sid, key, secret, app = _workspace(sandbox)
    [reply] = _listen(sandbox, _token(sid, key, secret, app=app, valid_until=int(time.time()) - 60))
    assert reply["type"] == "error"
    assert reply["payload"]["error"]["code"] == 20104


def test_a_token_for_another_workspaces_app_is_refused_with_20101(sandbox):
    sid, key, secret, _ = _workspace(sandbox)
    *_, other_app = _workspace(sandbox)
    [reply] = _listen(sandbox, _token(sid, key, secret, app=other_app))
    assert reply["payload"]["error"]["code"] == 20101
    assert other_app in reply["payload"]["error"]["message"]


def test_a_token_signed_with_another_secret_is_refused_with_20101(sandbox):
    sid, key, _, app = _workspace(sandbox)
    [reply] = _listen(sandbox, _token(sid, key, "not-the-secret" * 3, app=app))
    assert reply["payload"]["error"]["code"] == 20101


def test_a_token_without_a_voice_grant_is_refused_with_20151(sandbox):
    sid, key, secret, app = _workspace(sandbox)
    [reply] = _listen(sandbox, _token(sid, key, secret, app=app, grants=[ChatGrant(service_sid="IS" + "0" * 32)]))
    assert reply["payload"]["error"]["code"] == 20151
    assert sandbox.signalling.refusals[-1]["code"] == 20151


def test_nothing_but_listen_is_served_before_a_valid_token(sandbox):
    sid, key, secret, app = _workspace(sandbox)
    _, reply = _listen(sandbox, _token(sid, key, secret, app=app, valid_until=int(time.time()) - 60),
                       then=[("register", {"media": {"audio": True}})])
    assert reply["payload"]["error"]["code"] == 31204
    assert not sandbox.signalling.registered(sid, "ws1-u1")


ROOM = '<Dial><Conference startConferenceOnEnter="true" endConferenceOnExit="true">room</Conference></Dial>'


class _App(BaseHTTPRequestHandler):
    """The app's webhooks: /voice dials the number asked for, /ring dials client ws1-u1 for 1 s, /done hangs up.
    Requests are kept (path, form, url, signature)."""

    seen: list = []
    stream_url = ""
    fail_paths: set = set()

    def do_POST(self):
        form = dict(parse_qsl(self.rfile.read(int(self.headers["Content-Length"])).decode(), keep_blank_values=True))
        base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.seen.append((self.path, form, base + self.path, self.headers.get("X-Twilio-Signature")))
        number = f'<Number statusCallback="{base}/leg">{form.get("To")}</Number>'
        twiml = {"/voice": f'<Response><Dial action="{base}/done" callerId="+15125550100">{number}</Dial></Response>',
                 "/ring": f'<Response><Dial timeout="1" action="{base}/done"><Client>ws1-u1</Client></Dial></Response>',
                 "/ring-rep": f'<Response><Dial timeout="10" action="{base}/moved"><Client statusCallback="{base}/leg">'
                              'ws1-u1</Client></Dial></Response>',
                 "/moved": f"<Response>{ROOM}</Response>",
                 "/agent": f'<Response><Connect><Stream url="{self.stream_url}"/></Connect></Response>',
                 "/done": "<Response><Hangup/></Response>"}.get(self.path, "")
        self.send_response(500 if self.path in self.fail_paths else 200)
        self.send_header("Content-Type", "text/xml")
        self.end_headers()
        self.wfile.write(twiml.encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def app_base():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _App)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _App.seen, _App.fail_paths = [], set()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_an_invite_requests_the_apps_voice_url_as_twilio_and_follows_its_dial(sandbox, app_base):
    sid, key, secret, app = _workspace(sandbox, {"VoiceUrl": f"{app_base}/voice",
                                                 "StatusCallback": f"{app_base}/status"})
    invite = {"callsid": "TJSce1", "sdp": "v=0", "twilio": {"params": "To=%2B15125550186&CallerId=auto"}}
    _, ringing, hangup = _listen(sandbox, _token(sid, key, secret, app=app), then=[("invite", invite)], more=1)
    call_sid = ringing["payload"]["callsid"]
    assert ringing["type"] == "ringing" and call_sid.startswith("CA")
    assert hangup == {"type": "hangup", "version": "1.6", "payload": {"callsid": call_sid}}
    auth_token = sandbox.state["accounts"][sid]["auth_token"]
    by_path = {path: (form, url, signature) for path, form, url, signature in _App.seen}
    form, url, signature = by_path["/voice"]
    assert RequestValidator(auth_token).validate(url, form, signature)
    assert form["From"] == "client:ws1-u1" and form["To"] == "+15125550186" and form["CallerId"] == "auto"
    assert form["ApplicationSid"] == app and form["CallSid"] == call_sid and form["Direction"] == "inbound"
    assert by_path["/done"][0]["DialCallStatus"] == "busy"  # 0186: the sandbox person who is always busy
    assert [f["CallStatus"] for p, f, *_ in _App.seen if p == "/leg"] == ["initiated", "ringing", "busy"]
    assert by_path["/status"][0]["CallStatus"] == "completed"


@pytest.mark.parametrize(("browser", "outcome"), [("reject", "busy"), ("nothing", "no-answer")])
def test_a_dial_to_a_registered_client_rings_its_browser(sandbox, app_base, browser, outcome):
    sid, key, secret, app = _workspace(sandbox)
    sandbox.add_incoming_number(sid, "+15125550100", voice_url=f"{app_base}/ring", voice_method="POST")
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with connect(f"wss://{sandbox.signalling.host}/signal", ssl=context, open_timeout=5) as ws:
        for type_, payload in [("listen", {"token": _token(sid, key, secret, app=app)}),
                               ("register", {"media": {"audio": True}})]:
            ws.send(json.dumps({"type": type_, "version": "1.6", "payload": payload}))
            ws.recv(timeout=5)
        call = sandbox.simulate_call(sid, "+15125550100", from_="+13105550111")
        invite = json.loads(ws.recv(timeout=10))
        assert invite["type"] == "invite" and invite["payload"]["sdp"].startswith("v=0")
        leg_sid = invite["payload"]["callsid"]
        assert invite["payload"]["parameters"]["From"] == "+13105550111"
        assert invite["payload"]["parameters"]["To"] == "client:ws1-u1"
        if browser == "reject":
            ws.send(json.dumps({"type": "reject", "version": "1.6", "payload": {"callsid": leg_sid}}))
        else:  # the <Dial timeout> runs out
            assert json.loads(ws.recv(timeout=10)) == {"type": "cancel", "version": "1.6",
                                                      "payload": {"callsid": leg_sid}}
        assert call.done.wait(20), call.events
    assert [e for e in call.events if e["event"] == "dial"][0]["outcome"] == outcome
    assert [form["DialCallStatus"] for path, form, *_ in _App.seen if path == "/done"] == [outcome]


def _offer_sdp() -> str:
    """A browser-like offer (aiortc's own peer stands in for Chromium; no media flows in this test)."""
    import asyncio

    from aiortc import RTCPeerConnection

    async def make():
        pc = RTCPeerConnection()
        pc.addTransceiver("audio")
        await pc.setLocalDescription(await pc.createOffer())
        sdp = pc.localDescription.sdp
        await pc.close()
        return sdp

    return asyncio.run(make())


def test_an_answered_call_ends_when_the_app_completes_it_over_rest(sandbox, app_base):
    sid, key, secret, app = _workspace(sandbox, {"VoiceUrl": f"{app_base}/voice"})
    invite = {"callsid": "TJSce2", "sdp": _offer_sdp(), "twilio": {"params": "To=%2B15125550123"}}
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with connect(f"wss://{sandbox.signalling.host}/signal", ssl=context, open_timeout=5) as ws:
        for type_, payload in [("listen", {"token": _token(sid, key, secret, app=app)}), ("invite", invite)]:
            ws.send(json.dumps({"type": type_, "version": "1.6", "payload": payload}))
        replies = [json.loads(ws.recv(timeout=10)) for _ in range(3)]
        assert [r["type"] for r in replies] == ["connected", "ringing", "answer"]  # the person picked up
        call_sid = replies[2]["payload"]["callsid"]
        assert "a=candidate" in replies[2]["payload"]["sdp"]
        ws.send(json.dumps({"type": "dtmf", "version": "1.6", "payload": {"callsid": call_sid, "dtmf": "42"}}))
        _post(sandbox, sid, sandbox.state["accounts"][sid]["auth_token"], f"Calls/{call_sid}.json",
              {"Status": "completed"})
        assert json.loads(ws.recv(timeout=10)) == {"type": "hangup", "version": "1.6", "payload": {"callsid": call_sid}}
    call = sandbox.simulated[call_sid]
    assert call.done.wait(10)
    dial = [e for e in call.events if e["event"] == "dial"][0]
    assert dial["outcome"] == "completed" and dial["digits"] == "42"
    assert not [form for path, form, *_ in _App.seen if path == "/done"]  # a REST update skips the action


def _answer_sdp(offer: str) -> str:
    """A browser-like answer to the sandbox's offer (aiortc stands in for Chromium)."""
    import asyncio

    from aiortc import RTCPeerConnection, RTCSessionDescription

    async def make():
        pc = RTCPeerConnection()
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        sdp = pc.localDescription.sdp
        await pc.close()
        return sdp

    return asyncio.run(make())


def test_the_reps_browser_leg_of_an_inbound_call_redirected_into_a_conference_takes_the_caller_with_it(
        sandbox, app_base):
    """Inbound coaching (dialer/coaching.py): a REST update of the dialled client leg moves the rep's browser into
    the conference; the caller's <Dial> ends, its action joins the caller; the rep hanging up ends it all."""
    from tests.conditions import eventually

    sid, key, secret, app = _workspace(sandbox)
    auth_token = sandbox.state["accounts"][sid]["auth_token"]
    sandbox.add_incoming_number(sid, "+15125550100", voice_url=f"{app_base}/ring-rep", voice_method="POST")
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with connect(f"wss://{sandbox.signalling.host}/signal", ssl=context, open_timeout=5) as ws:
        for type_, payload in [("listen", {"token": _token(sid, key, secret, app=app)}),
                               ("register", {"media": {"audio": True}})]:
            ws.send(json.dumps({"type": type_, "version": "1.6", "payload": payload}))
            ws.recv(timeout=5)
        call = sandbox.simulate_call(sid, "+15125550100", from_="+13105550111")
        invite = json.loads(ws.recv(timeout=10))["payload"]
        leg_sid = invite["callsid"]
        ws.send(json.dumps({"type": "answer", "version": "1.6",
                            "payload": {"callsid": leg_sid, "sdp": _answer_sdp(invite["sdp"])}}))
        assert eventually(lambda: sandbox.state["calls"][sid][leg_sid]["status"] == "in-progress")

        _post(sandbox, sid, auth_token, f"Calls/{leg_sid}.json", {"Twiml": f"<Response>{ROOM}</Response>"})

        def room():
            return [c for c in sandbox.state["conferences"][sid].values() if c["friendly_name"] == "room"]
        assert eventually(lambda: room() and set(room()[0]["participants"]) == {leg_sid, call.call_sid})
        moved = [form for path, form, *_ in _App.seen if path == "/moved"]
        assert [(f["DialCallStatus"], f["CallSid"]) for f in moved] == [("completed", call.call_sid)]
        assert room()[0]["status"] == "in-progress"
        assert not call.done.is_set()

        ws.send(json.dumps({"type": "hangup", "version": "1.6", "payload": {"callsid": leg_sid}}))
        assert call.done.wait(20), call.events
    assert room()[0]["status"] == "completed"
    # The leg's callbacks: no final status while it moved, "completed" when the rep left the conference.
    assert eventually(lambda: [f["CallStatus"] for p, f, *_ in _App.seen if p == "/leg"][-1:] == ["completed"])
    assert [f["CallStatus"] for p, f, *_ in _App.seen if p == "/leg"] == [
        "initiated", "ringing", "in-progress", "completed"]


@pytest.fixture
def agent_stream():
    """A Media Streams server standing in for an agent: it speaks a tone after `start` and counts the caller's
    frames that carry voice; it hangs up once it heard 25 of them."""
    import warnings

    from websockets.sync.server import serve

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop  # deprecated, present on 3.11

    from devtools.twilio_sandbox.media import VOICE_RMS, tone_pcm

    heard = {"voice": 0, "start": None}

    def handler(ws):
        for raw in ws:
            message = json.loads(raw)
            if message["event"] == "start":
                heard["start"] = message["start"]
                tone = audioop.lin2ulaw(tone_pcm(seconds=2.0), 2)
                for i in range(0, len(tone), 160):
                    ws.send(json.dumps({"event": "media", "streamSid": message["streamSid"],
                                        "media": {"payload": base64.b64encode(tone[i:i + 160]).decode()}}))
            elif message["event"] == "media":
                pcm = audioop.ulaw2lin(base64.b64decode(message["media"]["payload"]), 2)
                heard["voice"] += audioop.rms(pcm, 2) > VOICE_RMS
                if heard["voice"] >= 25:
                    return

    server = serve(handler, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    heard["url"] = f"ws://127.0.0.1:{server.socket.getsockname()[1]}/stream"
    yield heard
    server.shutdown()


def test_a_browser_calling_an_agents_number_talks_to_its_media_stream(sandbox, app_base, agent_stream):
    """The browser is an aiortc peer here (its own microphone: a tone); the number's TwiML is <Connect><Stream>."""
    from devtools.twilio_sandbox.media import MediaLoop, Peer, tone_pcm

    sid, key, secret, app = _workspace(sandbox, {"VoiceUrl": f"{app_base}/voice"})
    _App.stream_url = agent_stream["url"]
    sandbox.add_incoming_number(sid, "+15125550177", voice_url=f"{app_base}/agent", voice_method="POST")
    loop = MediaLoop()
    browser = Peer.create(loop)
    try:
        invite = {"callsid": "TJSce3", "sdp": browser.offer(), "twilio": {"params": "To=%2B15125550177"}}
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        with connect(f"wss://{sandbox.signalling.host}/signal", ssl=context, open_timeout=5) as ws:
            for type_, payload in [("listen", {"token": _token(sid, key, secret, app=app)}), ("invite", invite)]:
                ws.send(json.dumps({"type": type_, "version": "1.6", "payload": payload}))
            replies = [json.loads(ws.recv(timeout=10)) for _ in range(3)]
            assert [r["type"] for r in replies] == ["connected", "ringing", "answer"]
            browser.accept(replies[2]["payload"]["sdp"])
            browser.play(tone_pcm(hz=600, seconds=6.0))  # the rep talks
            hangup = json.loads(ws.recv(timeout=20))  # the agent hung up once it heard the rep
            assert hangup["type"] == "hangup"
        assert agent_stream["voice"] >= 25
        assert browser.heard_voice_frames > 10  # the agent's tone reached the browser
        assert agent_stream["start"]["mediaFormat"]["encoding"] == "audio/x-mulaw"
    finally:
        browser.close()
        loop.stop()


def test_a_voice_url_that_fails_hangs_up_the_sdks_call_with_an_error(sandbox, app_base):
    sid, key, secret, app = _workspace(sandbox, {"VoiceUrl": f"{app_base}/missing-page-500"})
    _App.fail_paths = {"/missing-page-500"}
    invite = {"callsid": "TJSce4", "sdp": "v=0", "twilio": {"params": "To=%2B15125550123"}}
    _, hangup = _listen(sandbox, _token(sid, key, secret, app=app), then=[("invite", invite)])
    assert hangup["type"] == "hangup"
    assert hangup["payload"]["callsid"] == "TJSce4"  # the SDK has no CallSid yet
    assert hangup["payload"]["error"]["code"] == 31000
