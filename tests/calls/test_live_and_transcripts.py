"""The live view over a real websocket, and transcripts stored as the call goes (both transports)."""
import asyncio
import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from calls.models import CallTurn
from tests.conditions import until

from .conftest import Reader, TwilioMediaClient, browser_ws, cookie_for, eventually, make_call_setup, member_of, run

pytestmark = pytest.mark.django_db(transaction=True)

RELAY_URL = "wss://calls.example.test/v1/stream/relay"


def _stored(session_id):
    return list(CallTurn.objects.filter(call_session_id=session_id).order_by("seq")
                .values_list("role", "text", "started_at"))


async def _until_stored(session_id, predicate):
    await until(lambda: asyncio.to_thread(lambda: predicate(_stored(session_id))), what="the turns stored",
                interval=0.05)
    return await asyncio.to_thread(_stored, session_id)


def test_live_view_sees_calls_start_talk_hand_over_and_end(asgi_server, twilio_sandbox, other_admin_user):
    setup = make_call_setup(sandbox=twilio_sandbox)
    session = setup.new_session(sandbox=twilio_sandbox)
    token = setup.token(session)
    member = cookie_for(member_of(setup.workspace))
    other = cookie_for(other_admin_user)

    async def scenario():
        async with browser_ws(asgi_server, "/v1/studio/calls/live", member) as watch, \
                browser_ws(asgi_server, "/v1/studio/calls/live", other) as stranger:
            reader, other_reader = Reader(watch), Reader(stranger)
            async with connect(asgi_server.ws_base + "/v1/stream/media") as ws:
                twilio = TwilioMediaClient(ws)
                await twilio.start(token=token, call_sid=session.call_sid, account_sid=setup.connection.account_sid)
                start = await reader.until(lambda m: m["kind"] == "start")
                greeting = await reader.until(lambda m: m["kind"] == "turn")
                await twilio.read_until(lambda m: m.get("event") == "mark")
                await twilio.dtmf("1")
                handover = await reader.until(lambda m: m["kind"] == "handover")
                end = await reader.until(lambda m: m["kind"] == "end")
            await other_reader.drain(0.5)
            return start, greeting, handover, end, other_reader.events

    start, greeting, handover, end, stranger_saw = run(scenario())
    call = start["call"]
    assert (call["id"], call["from"], call["to"], call["agent"], call["transport"]) == (
        session.pk, "+15125550199", "+15125550100", "Ava", "media_streams")
    assert (greeting["call_id"], greeting["role"], greeting["text"]) == (session.pk, "agent", "Hello, this is Ava.")
    assert (handover["action"], handover["destination"]) == ("transfer_to_sales", "+31201234567")
    assert end["call_id"] == session.pk
    assert stranger_saw == []  # another workspace's live view hears nothing of this call


def test_live_view_refuses_logged_out_browsers(asgi_server):
    async def scenario():
        with pytest.raises(InvalidStatus) as info:
            async with browser_ws(asgi_server, "/v1/studio/calls/live"):
                pass
        return info.value.response.status_code

    assert run(scenario()) == 403


def test_media_streams_turns_are_stored_as_the_call_goes(asgi_server, twilio_sandbox):
    setup = make_call_setup(sandbox=twilio_sandbox)
    session = setup.new_session(sandbox=twilio_sandbox)
    token = setup.token(session)

    async def scenario():
        async with connect(asgi_server.ws_base + "/v1/stream/media") as ws:
            twilio = TwilioMediaClient(ws)
            await twilio.start(token=token, call_sid=session.call_sid, account_sid=setup.connection.account_sid)
            # the call is still open: the greeting is already in the database
            first = await _until_stored(session.pk, lambda t: len(t) >= 1)
            await twilio.read_until(lambda m: m.get("event") == "mark")
            await twilio.dtmf("4")
            second = await _until_stored(session.pk, lambda t: any(x[1] == "(pressed 4)" for x in t))
            await twilio.dtmf("1")
            await _until_stored(session.pk, lambda t: any(x[1].startswith("Handover:") for x in t))
            return first, second

    first, second = run(scenario())
    assert first[0][:2] == ("agent", "Hello, this is Ava.")
    assert second[1][:2] == ("caller", "(pressed 4)")
    assert first[0][2] is not None and first[0][2] <= second[1][2]  # start times, in order
    final = _stored(session.pk)
    roles_texts = [(r, t) for r, t, _ in final]
    i = roles_texts.index(("caller", "(pressed 1)"))
    assert ("event", "Handover: transfer_to_sales → +31201234567") in roles_texts[i + 1:]  # in line
    assert [t[2] for t in final] == sorted(t[2] for t in final)
    assert len(final) == len(set(CallTurn.objects.filter(call_session=session).values_list("seq", flat=True)))


def test_relay_turns_are_stored_as_the_call_goes(asgi_server, twilio_sandbox):
    setup = make_call_setup(sandbox=twilio_sandbox, transport="conversation_relay")
    session = setup.new_session(sandbox=twilio_sandbox)
    token = setup.token(session)

    async def scenario():
        headers = {"X-Twilio-Signature": setup.sign(RELAY_URL)}
        async with connect(asgi_server.ws_base + "/v1/stream/relay", additional_headers=headers) as ws:
            await ws.send(json.dumps({"type": "setup", "callSid": session.call_sid,
                                      "accountSid": setup.connection.account_sid,
                                      "customParameters": {"session": token}}))
            await _until_stored(session.pk, lambda t: any(x[0] == "agent" for x in t))  # the greeting, first
            await ws.send(json.dumps({"type": "prompt", "voicePrompt": "When are you ", "last": False}))
            await ws.send(json.dumps({"type": "prompt", "voicePrompt": "open?", "last": True}))
            during = await _until_stored(session.pk, lambda t: any(x[0] == "agent" and "nine" in x[1] for x in t))
            await ws.send(json.dumps({"type": "prompt", "voicePrompt": "sales please", "last": True}))
            while json.loads(await asyncio.wait_for(ws.recv(), 5)).get("type") != "end":
                pass
            return during

    during = run(scenario())
    assert [(r, t) for r, t, _ in during] == [("agent", "Hello, this is Ava."), ("caller", "When are you open?"),
                                               ("agent", "We are open nine to five.")]
    caller_started = during[1][2]
    answer_started = during[2][2]
    assert caller_started <= answer_started
    expected = [("caller", "sales please"), ("agent", "Let me transfer you."),
                ("event", "Handover: transfer_to_sales → +31201234567")]
    # `end` reaches Twilio before the close path stores the last turns: wait for them
    assert eventually(lambda: [(r, t) for r, t, _ in _stored(session.pk)][-3:] == expected), _stored(session.pk)
