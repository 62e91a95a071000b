"""Listen & intervene over real websockets: a simulated Twilio call on loopback, a member's browser socket."""
import asyncio
import json

import pytest
from websockets.exceptions import InvalidStatus

from calls.engine import live
from calls.models import CallHandover, CallIntervention, CallSession, CallTurn
from tests.conditions import until
from workspaces.models import Membership

from .conftest import (
    Reader,
    TwilioMediaClient,
    browser_ws,
    cookie_for,
    eventually,
    make_call_setup,
    member_of,
    run,
    until_true,
)

pytestmark = pytest.mark.django_db(transaction=True)

LOUD = bytes([0x10]) * 160
RELAY_URL = "wss://calls.example.test/v1/stream/relay"


async def _media_call(server, setup, session, token):
    from websockets.asyncio.client import connect

    ws = await connect(server.ws_base + "/v1/stream/media")
    twilio = TwilioMediaClient(ws)
    await twilio.start(token=token, call_sid=session.call_sid, account_sid=setup.connection.account_sid)
    return ws, twilio


async def _wait_registered(session_id):
    await until(lambda: live.get(session_id) is not None, what="the call registered")


def test_member_hears_both_sides_and_the_transcript(asgi_server, twilio_sandbox):
    setup = make_call_setup(sandbox=twilio_sandbox, variables={"SCRIPTED_AUDIO_ECHO": "1"})
    session = setup.new_session(sandbox=twilio_sandbox)
    cookie = cookie_for(member_of(setup.workspace))
    token = setup.token(session)

    async def scenario():
        ws, twilio = await _media_call(asgi_server, setup, session, token)
        await _wait_registered(session.pk)
        async with browser_ws(asgi_server, f"/v1/studio/calls/{session.pk}/listen", cookie) as listen:
            reader = Reader(listen)
            hello = await reader.until(lambda m: m["kind"] == "hello")
            for i in range(10):
                await twilio.media(LOUD, chunk=i)
            await twilio.dtmf("7")  # no rule: just a transcript turn
            turn = await reader.until(lambda m: m["kind"] == "turn")
            await reader.until_audio(20)  # the caller's 10 frames and the agent's 10 (echo)
            await twilio.stop()
            end = await reader.until(lambda m: m["kind"] == "end")
        await ws.close()
        return hello, turn, end, reader.audio

    hello, turn, end, audio = run(scenario())
    assert hello["audio"] is True and hello["call"]["id"] == session.pk
    assert {a["name"] for a in hello["actions"]} == {"transfer_to_sales", "transfer_to_support"}
    assert (turn["role"], turn["text"]) == ("caller", "(pressed 7)")
    caller = [frame for track, frame in audio if track == live.TRACK_CALLER]
    agent = [frame for track, frame in audio if track == live.TRACK_AGENT]
    assert len(caller) == 10 and all(frame == LOUD for frame in caller)  # the caller's μ-law, byte for byte
    assert len(agent) == 10 and all(frame == LOUD for frame in agent)  # the agent's side (echo mode)
    assert end["call_id"] == session.pk


def _intervene(asgi_server, twilio_sandbox, setup, session, cookie, messages, *, after=None):
    """Open the call, listen, send each intervention message; returns (replies, listener events, twilio msgs)."""
    token = setup.token(session)

    async def scenario():
        ws, twilio = await _media_call(asgi_server, setup, session, token)
        await twilio.read_until(lambda m: m.get("event") == "mark")  # the greeting is playing
        await _wait_registered(session.pk)
        async with browser_ws(asgi_server, f"/v1/studio/calls/{session.pk}/listen", cookie) as listen:
            reader = Reader(listen)
            await reader.until(lambda m: m["kind"] == "hello")
            replies = []
            for msg in messages:
                await listen.send(json.dumps(msg))
                replies.append(await reader.until(lambda m: m["kind"] == "intervention"))
            if after is not None:
                await after(twilio, reader)
            # What each accepted intervention leads to, waited for (not a pause): its row, the listener's event,
            # and Twilio's side (the handover's <Dial>, the ended call).
            accepted = [m["type"] for m, r in zip(messages, replies) if r.get("ok")]
            await until_true(lambda: CallIntervention.objects.filter(call_session=session).count() >= len(accepted))
            for kind, event in (("takeover", "handover"), ("transfer", "handover"), ("end", "end")):
                if kind in accepted and not any(e["kind"] == event for e in reader.events):
                    await reader.until(lambda m, event=event: m["kind"] == event)
            if {"takeover", "transfer"} & set(accepted):
                await until_true(lambda: "</Dial>" in (twilio_sandbox.call_twiml(
                    setup.connection.account_sid, session.call_sid) or ""))
        await ws.close()
        return replies, reader.events, twilio.received

    return run(scenario())


def test_take_over_fires_the_chosen_handover_action(asgi_server, twilio_sandbox):
    setup = make_call_setup(sandbox=twilio_sandbox)
    session = setup.new_session(sandbox=twilio_sandbox)
    user = member_of(setup.workspace)
    replies, events, _ = _intervene(asgi_server, twilio_sandbox, setup, session, cookie_for(user),
                                    [{"type": "takeover", "action": "nope"},
                                     {"type": "takeover", "action": "transfer_to_support"}])
    assert replies[0]["ok"] is False and replies[0]["field"] == "action"
    assert replies[1]["ok"] is True
    sent = twilio_sandbox.call_twiml(setup.connection.account_sid, session.call_sid)
    assert "<Number>+31207654321</Number></Dial>" in sent
    handover = CallHandover.objects.get(call_session=session)
    assert (handover.action_name, handover.destination) == ("transfer_to_support", "+31207654321")
    iv = CallIntervention.objects.get(call_session=session)  # the refused choice wrote nothing
    assert (iv.kind, iv.detail, iv.user, iv.username, iv.result) == (
        "takeover", "transfer_to_support", user, user.username, "accepted")
    assert eventually(lambda: CallTurn.objects.filter(
        call_session=session, role="event", text=f"{user.username} took over: transfer_to_support → +31207654321").exists())
    assert any(e["kind"] == "handover" and e["by"] == user.username for e in events)


def test_transfer_to_a_typed_number_is_validated_then_dialled(asgi_server, twilio_sandbox):
    setup = make_call_setup(sandbox=twilio_sandbox)
    session = setup.new_session(sandbox=twilio_sandbox)
    user = member_of(setup.workspace)
    replies, _, _ = _intervene(asgi_server, twilio_sandbox, setup, session, cookie_for(user),
                               [{"type": "transfer", "number": "020 123"},
                                {"type": "transfer", "number": "+31 20 555 1234"}])
    assert replies[0] == {"kind": "intervention", "ok": False, "type": "transfer", "field": "number",
                          "error": replies[0]["error"]}
    assert "country code" in replies[0]["error"]
    assert replies[1]["ok"] is True
    sent = twilio_sandbox.call_twiml(setup.connection.account_sid, session.call_sid)
    assert "<Number>+31205551234</Number></Dial>" in sent
    handover = CallHandover.objects.get(call_session=session)
    assert (handover.action_name, handover.destination) == ("supervisor_transfer", "+31205551234")
    iv = CallIntervention.objects.get(call_session=session)
    assert (iv.kind, iv.detail, iv.user) == ("transfer", "+31205551234", user)


def test_instruction_is_followed_from_the_next_turn(asgi_server, twilio_sandbox):
    setup = make_call_setup(sandbox=twilio_sandbox)
    session = setup.new_session(sandbox=twilio_sandbox)
    user = member_of(setup.workspace)

    async def after(twilio, reader):
        await twilio.dtmf("5")  # the caller's next turn (no rule for 5)
        await reader.until(lambda m: m["kind"] == "turn" and m["role"] == "agent")

    replies, events, _ = _intervene(asgi_server, twilio_sandbox, setup, session, cookie_for(user),
                                    [{"type": "instruction", "text": "  "},
                                     {"type": "instruction", "text": "Offer a callback tomorrow at nine."}],
                                    after=after)
    assert replies[0]["ok"] is False and replies[0]["field"] == "text"
    assert replies[1]["ok"] is True
    agent_turns = [e["text"] for e in events if e["kind"] == "turn" and e["role"] == "agent"]
    assert agent_turns[-1] == "Offer a callback tomorrow at nine."
    iv = CallIntervention.objects.get(call_session=session)
    assert (iv.kind, iv.detail) == ("instruction", "Offer a callback tomorrow at nine.")
    texts = list(CallTurn.objects.filter(call_session=session).values_list("role", "text"))
    i = texts.index(("event", f"{user.username} instructed the agent: Offer a callback tomorrow at nine."))
    assert ("agent", "Offer a callback tomorrow at nine.") in texts[i + 1:]  # in line, after the instruction


def test_end_the_call(asgi_server, twilio_sandbox):
    setup = make_call_setup(sandbox=twilio_sandbox)
    session = setup.new_session(sandbox=twilio_sandbox)
    user = member_of(setup.workspace)
    replies, events, _ = _intervene(asgi_server, twilio_sandbox, setup, session, cookie_for(user), [{"type": "end"}])
    assert replies[0]["ok"] is True
    assert twilio_sandbox.state["calls"][setup.connection.account_sid][session.call_sid]["status"] == "completed"
    assert any(e["kind"] == "end" for e in events)
    assert eventually(lambda: CallSession.objects.get(pk=session.pk).ended_at is not None)
    assert CallIntervention.objects.get(call_session=session).kind == "end"
    assert CallTurn.objects.filter(call_session=session, role="event", text=f"{user.username} ended the call").exists()


def test_relay_call_instruction_and_end(asgi_server, twilio_sandbox):
    """ConversationRelay: the listener follows the words; an instruction shapes the next reply; end sends `end`."""
    from websockets.asyncio.client import connect

    setup = make_call_setup(sandbox=twilio_sandbox, transport="conversation_relay")
    session = setup.new_session(sandbox=twilio_sandbox)
    cookie = cookie_for(member_of(setup.workspace, role=Membership.Role.ADMIN))
    token = setup.token(session)

    async def scenario():
        headers = {"X-Twilio-Signature": setup.sign(RELAY_URL)}
        async with connect(asgi_server.ws_base + "/v1/stream/relay", additional_headers=headers) as ws:
            await ws.send(json.dumps({"type": "setup", "callSid": session.call_sid,
                                      "accountSid": setup.connection.account_sid,
                                      "customParameters": {"session": token}}))
            await _wait_registered(session.pk)
            async with browser_ws(asgi_server, f"/v1/studio/calls/{session.pk}/listen", cookie) as listen:
                reader = Reader(listen)
                hello = await reader.until(lambda m: m["kind"] == "hello")
                await listen.send(json.dumps({"type": "instruction", "text": "Say we close early today."}))
                await reader.until(lambda m: m["kind"] == "intervention")
                await ws.send(json.dumps({"type": "prompt", "voicePrompt": "When are you open?", "last": True}))
                reply = await reader.until(lambda m: m["kind"] == "turn" and m["role"] == "agent"
                                           and "close" in m["text"])
                await listen.send(json.dumps({"type": "end"}))
                ended = None
                while ended is None:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
                    if msg.get("type") == "end":
                        ended = msg
                await reader.until(lambda m: m["kind"] == "end")
                return hello, reply, ended, reader.events

    hello, reply, ended, events = run(scenario())
    assert hello["audio"] is False
    assert reply["text"] == "Say we close early today."
    assert any(e["kind"] == "token" for e in events)  # the agent's words as they are spoken
    assert json.loads(ended["handoffData"]) == {"reason": "hangup"}
    assert list(CallIntervention.objects.filter(call_session=session).values_list("kind", flat=True)) == [
        "instruction", "end"]


def test_a_listener_leaving_changes_nothing_for_the_call(asgi_server, twilio_sandbox):
    setup = make_call_setup(sandbox=twilio_sandbox)
    session = setup.new_session(sandbox=twilio_sandbox)
    cookie = cookie_for(member_of(setup.workspace))
    token = setup.token(session)

    async def scenario():
        ws, twilio = await _media_call(asgi_server, setup, session, token)
        await twilio.read_until(lambda m: m.get("event") == "mark")
        await _wait_registered(session.pk)
        async with browser_ws(asgi_server, f"/v1/studio/calls/{session.pk}/listen", cookie) as listen:
            await Reader(listen).until(lambda m: m["kind"] == "hello")
            for i in range(5):
                await twilio.media(LOUD, chunk=i)
        # the listener is gone (closed mid-call); the call goes on and still hands over by the caller's key
        engine = live.get(session.pk)
        await until(lambda: not engine.listeners, what="the listener left")
        listeners = len(engine.listeners)
        await twilio.dtmf("1")
        await until_true(lambda: "<Number>+31201234567</Number>" in (twilio_sandbox.call_twiml(
            setup.connection.account_sid, session.call_sid) or ""))  # handed over
        await ws.close()
        return listeners

    assert run(scenario()) == 0
    assert "<Number>+31201234567</Number>" in twilio_sandbox.call_twiml(setup.connection.account_sid, session.call_sid)


def test_slow_listener_loses_frames_never_blocks():
    listener = live.Listener(maxsize=3)
    for i in range(10):
        listener.audio(0, "AAAA")  # returns at once even when full
    assert listener.queue.qsize() == 3 and listener.dropped == 7
    listener.event({"kind": "turn"})  # events make room by dropping the oldest frame
    assert listener.queue.qsize() == 3 and listener.dropped == 8
    items = [listener.queue.get_nowait() for _ in range(3)]
    assert items[-1] == ("event", {"kind": "turn"})


def test_listen_is_refused_to_other_workspaces_and_strangers(asgi_server, twilio_sandbox, other_admin_user):
    setup = make_call_setup(sandbox=twilio_sandbox)
    session = setup.new_session(sandbox=twilio_sandbox)

    async def refused(cookie):
        try:
            async with browser_ws(asgi_server, f"/v1/studio/calls/{session.pk}/listen", cookie) as ws:
                await ws.recv()
        except InvalidStatus as exc:
            return exc.response.status_code
        return None

    assert run(refused(cookie_for(other_admin_user))) == 403  # admin of another workspace
    assert run(refused(None)) == 403  # logged out
    member = cookie_for(member_of(setup.workspace))

    async def not_live():
        async with browser_ws(asgi_server, f"/v1/studio/calls/{session.pk}/listen", member) as ws:
            return json.loads(await ws.recv())

    assert run(not_live())["kind"] == "not_live"  # allowed, but the call is not running here
    assert not CallIntervention.objects.exists()


def test_call_on_another_process_is_followed_and_controlled_through_the_channel_layer(asgi_server, twilio_sandbox):
    """A listener on a process that does not run the call: transcript events from the workspace group, interventions
    through the call's control group (simulated here by hiding the engine from this process's registry)."""
    setup = make_call_setup(sandbox=twilio_sandbox)
    session = setup.new_session(sandbox=twilio_sandbox)
    user = member_of(setup.workspace)
    cookie = cookie_for(user)
    token = setup.token(session)

    async def scenario():
        ws, twilio = await _media_call(asgi_server, setup, session, token)
        await twilio.read_until(lambda m: m.get("event") == "mark")
        await _wait_registered(session.pk)
        engine = live.REGISTRY.pop(session.pk)  # "another process"
        try:
            async with browser_ws(asgi_server, f"/v1/studio/calls/{session.pk}/listen", cookie) as listen:
                reader = Reader(listen)
                hello = await reader.until(lambda m: m["kind"] == "hello")
                await twilio.dtmf("6")
                turn = await reader.until(lambda m: m["kind"] == "turn")
                await listen.send(json.dumps({"type": "takeover", "action": "transfer_to_sales"}))
                result = await reader.until(lambda m: m["kind"] == "intervention")
                end = await reader.until(lambda m: m["kind"] == "end")
        finally:
            if not engine.closed:
                live.REGISTRY.setdefault(session.pk, engine)
        await ws.close()
        return hello, turn, result, end, reader.audio

    hello, turn, result, end, audio = run(scenario())
    assert hello["remote"] is True and hello["audio"] is True
    assert {a["name"] for a in hello["actions"]} == {"transfer_to_sales", "transfer_to_support"}
    assert (turn["call_id"], turn["text"]) == (session.pk, "(pressed 6)")
    assert result["ok"] is True and end["call_id"] == session.pk
    assert "<Number>+31201234567</Number>" in twilio_sandbox.call_twiml(setup.connection.account_sid, session.call_sid)
    iv = CallIntervention.objects.get(call_session=session)
    assert (iv.kind, iv.detail, iv.user, iv.result) == ("takeover", "transfer_to_sales", user, "accepted")


def test_call_on_another_process_is_heard_through_the_channel_layer(asgi_server, twilio_sandbox):
    """Audio crosses processes too: the call's engine forwards both sides' frames to a remote listener's channel,
    and stops when the listener leaves."""
    setup = make_call_setup(sandbox=twilio_sandbox, variables={"SCRIPTED_AUDIO_ECHO": "1"})
    session = setup.new_session(sandbox=twilio_sandbox)
    cookie = cookie_for(member_of(setup.workspace))
    token = setup.token(session)

    async def scenario():
        ws, twilio = await _media_call(asgi_server, setup, session, token)
        await _wait_registered(session.pk)
        engine = live.REGISTRY.pop(session.pk)  # "another process"
        try:
            async with browser_ws(asgi_server, f"/v1/studio/calls/{session.pk}/listen", cookie) as listen:
                reader = Reader(listen)
                hello = await reader.until(lambda m: m["kind"] == "hello")
                # The join travels through the call's control group.
                await until(lambda: any(isinstance(lst, live.RemoteListener) for lst in engine.listeners),
                            what="the remote listener joined")
                for i in range(10):
                    await twilio.media(LOUD, chunk=i)
                await reader.until_audio(20)  # both sides' 10 frames, through the other process's group
            await until(lambda: not engine.listeners, what="leaving removed the forwarder")
            remaining = set(engine.listeners)
            await twilio.stop()
        finally:
            if not engine.closed:
                live.REGISTRY.setdefault(session.pk, engine)
        await ws.close()
        return hello, reader.audio, remaining

    hello, audio, remaining = run(scenario())
    assert hello["remote"] is True and hello["audio"] is True
    caller = [frame for track, frame in audio if track == live.TRACK_CALLER]
    agent = [frame for track, frame in audio if track == live.TRACK_AGENT]
    assert len(caller) == 10 and all(frame == LOUD for frame in caller)
    assert len(agent) == 10 and all(frame == LOUD for frame in agent)
    assert remaining == set()


def test_a_second_take_over_is_refused_once_the_call_is_handed_over(asgi_server, twilio_sandbox):
    setup = make_call_setup(sandbox=twilio_sandbox)
    session = setup.new_session(sandbox=twilio_sandbox)
    replies, _, _ = _intervene(asgi_server, twilio_sandbox, setup, session, cookie_for(member_of(setup.workspace)),
                               [{"type": "takeover", "action": "transfer_to_sales"},
                                {"type": "transfer", "number": "+31205551234"}])
    assert replies[0]["ok"] is True
    assert replies[1]["ok"] is False and replies[1]["error"] in ("The call is already being handed over.",
                                                                 "The call has already ended.")
    assert CallHandover.objects.filter(call_session=session).count() == 1
    assert list(CallIntervention.objects.filter(call_session=session).values_list("result", flat=True)) == [
        "accepted", replies[1]["error"]]
