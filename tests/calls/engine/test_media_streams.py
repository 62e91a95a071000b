"""Media Streams over a real websocket on loopback (uvicorn serving the ASGI app), gateway on the sandbox."""
import asyncio
import json
import re

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from calls.models import CallHandover, CallSession, CallTurn

from .conftest import TwilioMediaClient, make_call_setup, run

LOUD = bytes([0x10]) * 160  # a loud 20 ms μ-law frame
QUIET = bytes([0xFF]) * 160

pytestmark = pytest.mark.django_db(transaction=True)


async def _closed(ws, timeout=60.0):
    """Read until the server closes (echoing marks, as Twilio does once audio has played); returns the close code."""
    async def loop():
        try:
            while True:
                msg = json.loads(await ws.recv())
                if msg.get("event") == "mark":
                    await ws.send(json.dumps({"event": "mark", "streamSid": msg["streamSid"], "mark": msg["mark"]}))
        except ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd else None
    return await asyncio.wait_for(loop(), timeout)


def test_webhook_to_stream_to_transfer_to_sales_dials_the_destination(asgi_server, twilio_sandbox, client):
    """End to end: signed webhook → <Connect><Stream> → stream admitted → DTMF rule picks transfer_to_sales →
    the sandbox's call update carries <Dial><Number>+31201234567</Number></Dial>."""
    setup = make_call_setup(sandbox=twilio_sandbox)
    call_sid = "CA" + "5" * 32
    twilio_sandbox.add_call(setup.connection.account_sid, call_sid)
    url = f"https://calls.example.test/v1/agents/{setup.connector.identifier}/twilio-config"
    params = {"CallSid": call_sid, "AccountSid": setup.connection.account_sid, "From": "+15125550199",
              "To": "+15125550100", "CallStatus": "ringing", "Direction": "inbound"}
    response = client.post(url.removeprefix("https://calls.example.test"), params,
                           HTTP_X_TWILIO_SIGNATURE=setup.sign(url, params))
    assert response.status_code == 200, response.content
    twiml = response.content.decode()
    stream_url = re.search(r'<Stream url="([^"]+)"', twiml).group(1)
    token = re.search(r'<Parameter name="session" value="([^"]+)"', twiml).group(1)
    assert stream_url == "wss://calls.example.test/v1/stream/media"

    async def scenario():
        async with connect(asgi_server.ws_base + "/v1/stream/media") as ws:
            twilio = TwilioMediaClient(ws)
            await twilio.start(token=token, call_sid=call_sid, account_sid=setup.connection.account_sid)
            first = await twilio.read_until(lambda m: m.get("event") == "media")
            assert first["streamSid"] == twilio.stream_sid
            await twilio.read_until(lambda m: m.get("event") == "mark")
            await twilio.dtmf("1")
            return await _closed(ws)

    run(scenario())
    sent = twilio_sandbox.call_twiml(setup.connection.account_sid, call_sid)
    assert "<Dial" in sent and "<Number>+31201234567</Number></Dial>" in sent
    handover = CallHandover.objects.get(call_session__call_sid=call_sid)
    assert (handover.action_name, handover.destination, handover.outcome) == (
        "transfer_to_sales", "+31201234567", CallHandover.Outcome.PENDING)
    assert f'action="https://calls.example.test/v1/agents/{setup.connector.identifier}/dial-result?handover={handover.pk}"' in sent
    session = CallSession.objects.get(call_sid=call_sid)
    assert session.ended_at is not None
    assert CallTurn.objects.filter(call_session=session, role="agent").exists()
    assert CallTurn.objects.filter(call_session=session, role="caller", text="(pressed 1)").exists()


def test_replayed_session_parameter_is_refused(asgi_server, twilio_sandbox):
    setup = make_call_setup(sandbox=twilio_sandbox)
    session = setup.new_session(sandbox=twilio_sandbox)
    token = setup.token()

    async def scenario():
        async with connect(asgi_server.ws_base + "/v1/stream/media") as ws:
            twilio = TwilioMediaClient(ws)
            await twilio.start(token=token, call_sid=session.call_sid)
            await twilio.read_until(lambda m: m.get("event") == "media")
            await twilio.stop()
        async with connect(asgi_server.ws_base + "/v1/stream/media") as ws:
            await TwilioMediaClient(ws).start(token=token, call_sid=session.call_sid)
            return await _closed(ws)

    assert run(scenario()) == 4403


@pytest.mark.parametrize("case", ["no-token", "forged", "other-call", "media-before-start", "malformed", "binary"])
def test_streams_without_a_valid_start_are_closed_at_once(asgi_server, twilio_sandbox, case):
    setup = make_call_setup(sandbox=twilio_sandbox)
    session = setup.new_session()
    token = setup.token()

    async def scenario():
        async with connect(asgi_server.ws_base + "/v1/stream/media") as ws:
            twilio = TwilioMediaClient(ws)
            if case == "no-token":
                await twilio.start(token=None, call_sid=session.call_sid)
            elif case == "forged":
                await twilio.start(token=token[:-3] + "abc", call_sid=session.call_sid)
            elif case == "other-call":
                await twilio.start(token=token, call_sid="CA" + "9" * 32)
            elif case == "media-before-start":
                await twilio.send({"event": "connected"})
                await twilio.media(LOUD)
            elif case == "malformed":
                await ws.send("{not json")
            elif case == "binary":
                await ws.send(b"\x00\x01")
            return await _closed(ws)

    code = run(scenario())
    assert code == (4403 if case in ("no-token", "forged", "other-call") else 4400)
    assert not CallHandover.objects.exists()


def test_unknown_stream_sid_and_garbage_after_start_are_ignored(asgi_server, twilio_sandbox):
    setup = make_call_setup(sandbox=twilio_sandbox)
    session = setup.new_session(sandbox=twilio_sandbox)
    token = setup.token()

    async def scenario():
        async with connect(asgi_server.ws_base + "/v1/stream/media") as ws:
            twilio = TwilioMediaClient(ws)
            await twilio.start(token=token, call_sid=session.call_sid)
            await twilio.read_until(lambda m: m.get("event") == "media")
            await ws.send("{oops")
            await twilio.send({"event": "media", "streamSid": "MZ-someone-else", "media": {"payload": "AAAA"}})
            await twilio.send({"event": "dtmf", "streamSid": "MZ-someone-else", "dtmf": {"digit": "1"}})
            await twilio.send({"event": "start", "streamSid": twilio.stream_sid, "start": {}})
            await twilio.send({"event": "bogus"})
            await twilio.send({"event": "media", "streamSid": twilio.stream_sid, "media": {"payload": 12}})
            await twilio.dtmf("2")  # the stream still works (messages are handled in order): transfer_to_support
            return await _closed(ws)

    run(scenario())
    # The foreign DTMF "1" did nothing: the only handover is the one the real stream asked for.
    assert list(CallHandover.objects.values_list("action_name", flat=True)) == ["transfer_to_support"]


def test_barge_in_clears_queued_audio_and_records_what_was_heard(asgi_server, twilio_sandbox):
    # The scripted agent's tone mode (frame-energy voice detection); with real speech: tests/calls/engine/test_cascaded.py
    setup = make_call_setup(sandbox=twilio_sandbox, variables={"SCRIPTED_SPEECH": "tones"})
    session = setup.new_session(sandbox=twilio_sandbox)
    token = setup.token()

    async def scenario():
        async with connect(asgi_server.ws_base + "/v1/stream/media") as ws:
            twilio = TwilioMediaClient(ws)
            twilio.echo_marks = False  # Twilio is still playing the greeting
            await twilio.start(token=token, call_sid=session.call_sid)
            first_mark = await twilio.read_until(lambda m: m.get("event") == "mark")
            # Twilio played the audio up to the first mark only.
            await twilio.send({"event": "mark", "streamSid": twilio.stream_sid, "mark": first_mark["mark"]})
            for i in range(5):
                await twilio.media(LOUD, chunk=i)
            clear = await twilio.read_until(lambda m: m.get("event") == "clear")
            assert clear["streamSid"] == twilio.stream_sid
            await twilio.stop()
            return await _closed(ws)

    run(scenario())
    turns = list(CallTurn.objects.filter(call_session=session).values_list("role", "text", "heard"))
    interrupted = [t for t in turns if not t[2]]
    assert interrupted and interrupted[0][0] == "agent"
    assert "heard 100 of" in interrupted[0][1]


def test_agent_hangup_ends_the_call_and_an_already_ended_call_is_not_an_error(asgi_server, twilio_sandbox):
    setup = make_call_setup(sandbox=twilio_sandbox)
    live = setup.new_session(sandbox=twilio_sandbox)
    live_token = setup.token()
    gone = setup.new_session(sandbox=twilio_sandbox)
    gone_token = setup.token(gone)
    twilio_sandbox.state["calls"][setup.connection.account_sid][gone.call_sid]["status"] = "completed"

    async def scenario(session, token):
        async with connect(asgi_server.ws_base + "/v1/stream/media") as ws:
            twilio = TwilioMediaClient(ws)
            await twilio.start(token=token, call_sid=session.call_sid)
            await twilio.read_until(lambda m: m.get("event") == "mark")
            await twilio.dtmf("9")
            return await _closed(ws)

    run(scenario(live, live_token))
    call = twilio_sandbox.state["calls"][setup.connection.account_sid][live.call_sid]
    assert call["status"] == "completed" and call["updates"][-1].get("Status") == "completed"
    run(scenario(gone, gone_token))
    assert CallSession.objects.get(pk=gone.pk).ended_at is not None


def test_handover_when_the_caller_already_hung_up_is_recorded_not_raised(asgi_server, twilio_sandbox):
    setup = make_call_setup(sandbox=twilio_sandbox)
    session = setup.new_session(sandbox=twilio_sandbox)
    token = setup.token()
    twilio_sandbox.state["calls"][setup.connection.account_sid][session.call_sid]["status"] = "completed"

    async def scenario():
        async with connect(asgi_server.ws_base + "/v1/stream/media") as ws:
            twilio = TwilioMediaClient(ws)
            await twilio.start(token=token, call_sid=session.call_sid)
            await twilio.read_until(lambda m: m.get("event") == "mark")
            await twilio.dtmf("1")
            return await _closed(ws)

    run(scenario())
    assert CallHandover.objects.get().outcome == CallHandover.Outcome.CALLER_GONE
