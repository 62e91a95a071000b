"""The sandbox's Voice SDK signalling (devtools/twilio_sandbox/signalling.py) over a plain websocket: tokens are
verified as Twilio does and refused with the SDK's error codes; a good one is connected and registers."""
import base64
import json
import ssl
import time
import urllib.request

import pytest
from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import ChatGrant, VoiceGrant
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


def _workspace(sandbox):
    """An account with an API key and a TwiML app, as the dialer's provisioning leaves it: (sid, key, secret, app)."""
    sid, token = sandbox.add_account()
    key = _post(sandbox, sid, token, "Keys.json", {"FriendlyName": "dialer"})
    app = _post(sandbox, sid, token, "Applications.json", {"FriendlyName": "dialer",
                                                          "VoiceUrl": "https://calls.example.test/v1/voice/outbound/1"})
    return sid, key["sid"], key["secret"], app["sid"]


def _token(sid, key, secret, *, app, ttl=3600, grants=None, identity="ws1-u1", valid_until=None):
    token = AccessToken(sid, key, secret, identity=identity, ttl=ttl, valid_until=valid_until)
    for grant in grants if grants is not None else [VoiceGrant(outgoing_application_sid=app, incoming_allow=True)]:
        token.add_grant(grant)
    jwt = token.to_jwt()
    return jwt.decode() if isinstance(jwt, bytes) else jwt


def _listen(sandbox, token, then=(), during=lambda: None):
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with connect(f"wss://{sandbox.signalling.host}/signal", ssl=context, open_timeout=5) as ws:
        replies = []
        for type_, payload in [("listen", {"token": token, "browserinfo": {}, "reconnectTimeout": 0}), *then]:
            ws.send(json.dumps({"type": type_, "version": "1.6", "payload": payload}))
            replies.append(json.loads(ws.recv(timeout=5)))
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
