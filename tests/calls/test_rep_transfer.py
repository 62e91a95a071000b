"""Transfers to the dialer's reps (handover kind "reps", calls.services.rep_transfers), with Twilio's REST calls
recorded by a fake gateway: who rings (online members of the team), the first rep to accept gets the caller and the
others stop ringing, nobody (declined, no answer, nobody online): the agent takes the caller back; events carry the
kind and each rep tried; the rep's call becomes a dialer call linked to the agent's call; the ringing card's views."""
from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from agents.models import HandoverAction
from calls.engine.context import HandoverActionSpec
from calls.models import CallHandover, CallTurn
from calls.services import rep_transfers
from dialer.models import Call
from telephony import presence
from tests.calls.engine.conftest import make_call_setup
from tests.factories import MembershipFactory, UserFactory
from webhooks.models import EventType, WebhookEndpoint, WebhookEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def gateway(monkeypatch):
    """Twilio's REST side: participants created (one call SID each) and call updates, recorded."""
    record = SimpleNamespace(participants=[], updates=[])

    def participant_create(**kwargs):
        record.participants.append(kwargs)
        return SimpleNamespace(call_sid=f"CA{len(record.participants):032x}")

    def call_update(**kwargs):
        record.updates.append(kwargs)

    monkeypatch.setattr("telephony.twilio_gateway.conference_participant_create", participant_create)
    monkeypatch.setattr("telephony.twilio_gateway.call_update", call_update)
    monkeypatch.setattr("calls.services.transfers._creds_for", lambda handover: object())
    return record


def _rep(workspace, username, online=True):
    user = UserFactory(username=username)
    MembershipFactory(workspace=workspace, user=user)
    if online:
        presence.presence_mark(workspace_id=workspace.pk, user_id=user.pk, until=int(time.time()) + 600)
    return user


def _transfer(setup, gateway, team=()):
    WebhookEndpoint.objects.create(workspace=setup.workspace, environment=setup.environment,
                                   url="https://hooks.example.com/callwell", events=EventType.values, secret="s" * 32)
    HandoverAction.objects.filter(version=setup.version, name="transfer_to_sales").update(
        kind=HandoverAction.Kind.REPS, destination="", reps=list(team))
    session = setup.new_session()
    CallTurn.objects.create(call_session=session, seq=1, role=CallTurn.Role.CALLER, text="I want to buy ten chairs")
    handover = rep_transfers.reps_handover_record(
        call_session_id=session.pk, action=HandoverActionSpec("transfer_to_sales", "", kind="reps"),
        transport="media_streams")
    ctx = SimpleNamespace(creds=object(), call_sid=session.call_sid, connector_identifier=setup.connector.identifier,
                          call_session_id=session.pk, language="en-US")
    assert rep_transfers.reps_transfer_start(ctx=ctx, handover_id=handover.pk) == CallHandover.Outcome.PENDING
    handover.refresh_from_db()
    return session, handover


def _status(setup, handover, index, status, **extra):
    rep_transfers.rep_status_record(connector=setup.connector, handover_id=str(handover.pk), attempt=str(index),
                                    params={"CallStatus": status, **extra})
    handover.refresh_from_db()


def test_every_online_rep_of_the_team_rings_in_the_browser_while_the_caller_holds(gateway):
    setup = make_call_setup()
    rita, bob = _rep(setup.workspace, "rita"), _rep(setup.workspace, "bob")
    _rep(setup.workspace, "offline", online=False)
    carl = _rep(setup.workspace, "carl")  # online, not in the team

    session, handover = _transfer(setup, gateway, team=[rita.pk, bob.pk])

    assert sorted(p["to"] for p in gateway.participants) == sorted(
        f"client:ws{setup.workspace.pk}-u{u.pk}" for u in (rita, bob))
    assert f"client:ws{setup.workspace.pk}-u{carl.pk}" not in [p["to"] for p in gateway.participants]
    assert all(p["start_conference_on_enter"] and p["end_conference_on_exit"] for p in gateway.participants)
    assert all("/rep-transfer-status?handover=" in p["status_callback"] for p in gateway.participants)
    caller_hold = gateway.updates[0]
    assert caller_hold["call_sid"] == session.call_sid and "<Conference" in caller_hold["twiml"]
    assert {a["rep"] for a in handover.attempts} == {"rita", "bob"}
    assert {a["outcome"] for a in handover.attempts} == {"dialling"}
    started = WebhookEvent.objects.get(type=EventType.HANDOVER_STARTED).payload["data"]["handover"]
    assert started["kind"] == "reps" and {d["rep"] for d in started["destinations"]} == {"rita", "bob"}
    attempted = [e.payload["data"]["handover"]["attempt"] for e in WebhookEvent.objects.filter(
        type=EventType.HANDOVER_ATTEMPTED).order_by("id")]
    assert sorted((a["rep"], a["outcome"]) for a in attempted) == [("bob", "dialling"), ("rita", "dialling")]


def test_the_first_rep_to_accept_gets_the_caller_and_the_others_stop_ringing(gateway, client):
    setup = make_call_setup()
    rita, bob = _rep(setup.workspace, "rita"), _rep(setup.workspace, "bob")
    session, handover = _transfer(setup, gateway)
    index = {a["rep"]: i for i, a in enumerate(handover.attempts)}
    _status(setup, handover, index["rita"], "ringing")

    # The ringing card: the caller, the brief, the transcript so far.
    client.force_login(rita)
    rita_sid = handover.attempts[index["rita"]]["call_sid"]
    offer = client.get(f"/v1/voice/transfers/offer?call_sid={rita_sid}").json()
    assert offer["caller"] == session.from_number and "ten chairs" in offer["brief"]
    assert offer["transcript"][0]["text"] == "I want to buy ten chairs" and offer["state"] == "ringing"
    assert client.get(f"/v1/voice/transfers/offer?call_sid={handover.attempts[index['bob']]['call_sid']}"
                      ).status_code == 404  # bob's leg is not rita's

    taken = client.post("/v1/voice/transfers/accept", {"handover": handover.pk, "attempt": index["rita"]})
    assert taken.status_code == 200 and taken.json()["ok"]
    handover.refresh_from_db()
    assert handover.outcome == CallHandover.Outcome.ANSWERED and handover.detail == "taken by rita"
    assert handover.attempts[index["rita"]]["outcome"] == "taken"
    assert handover.attempts[index["bob"]]["outcome"] == rep_transfers.TAKEN_BY_OTHER
    bob_sid = handover.attempts[index["bob"]]["call_sid"]
    assert {"call_sid": bob_sid, "status": "completed"}.items() <= gateway.updates[-1].items()  # bob stops ringing

    client.force_login(bob)
    late = client.post("/v1/voice/transfers/accept", {"handover": handover.pk, "attempt": index["bob"]})
    assert late.status_code == 409 and "rita took the call" in late.json()["message"]

    # Rita's leg is now her dialer call, linked to the agent's call, until it ends.
    rep_call = Call.objects.get(sid=rita_sid)
    assert (rep_call.user, rep_call.agent_call_id, rep_call.direction) == (rita, session.pk, "inbound")
    _status(setup, handover, index["rita"], "in-progress")
    _status(setup, handover, index["rita"], "completed", CallDuration="42")
    rep_call.refresh_from_db()
    assert rep_call.status == "completed" and rep_call.duration == 42 and rep_call.answered_at is not None
    data = WebhookEvent.objects.get(type=EventType.HANDOVER_COMPLETED).payload["data"]["handover"]
    assert data["kind"] == "reps" and data["outcome"] == "answered"
    assert sorted((d["rep"], d["outcome"]) for d in data["destinations"]) == [
        ("bob", rep_transfers.TAKEN_BY_OTHER), ("rita", "taken")]


def test_nobody_taking_the_call_brings_the_agent_back_to_the_caller(gateway, client,
                                                                    django_capture_on_commit_callbacks):
    setup = make_call_setup()
    rita, _ = _rep(setup.workspace, "rita"), _rep(setup.workspace, "bob")
    session, handover = _transfer(setup, gateway)
    index = {a["rep"]: i for i, a in enumerate(handover.attempts)}

    client.force_login(rita)
    assert client.post("/v1/voice/transfers/decline", {"handover": handover.pk, "attempt": index["rita"]}).json()["ok"]
    handover.refresh_from_db()
    assert handover.outcome == CallHandover.Outcome.PENDING  # bob still rings
    with django_capture_on_commit_callbacks(execute=True):
        _status(setup, handover, index["bob"], "no-answer")

    assert handover.outcome == CallHandover.Outcome.NOT_TAKEN and handover.fallback == "agent"
    assert sorted(a["outcome"] for a in handover.attempts) == ["declined", "no-answer"]
    assert "<Stream" in gateway.updates[-1]["twiml"] or "<Connect" in gateway.updates[-1]["twiml"]
    assert CallTurn.objects.filter(call_session=session, role="event", text__contains="nobody took").exists()


def test_with_nobody_online_the_agent_keeps_the_caller_at_once(gateway):
    setup = make_call_setup()
    _rep(setup.workspace, "offline", online=False)

    session, handover = _transfer(setup, gateway)

    assert gateway.participants == []
    assert handover.outcome == CallHandover.Outcome.NOT_TAKEN and handover.attempts == []
    assert CallTurn.objects.filter(call_session=session, role="event", text__contains="no rep online").exists()


def test_the_live_view_shows_who_is_ringing_then_who_took_the_call(gateway):
    setup = make_call_setup()
    _rep(setup.workspace, "rita")
    _, handover = _transfer(setup, gateway)
    assert rep_transfers.progress_text(handover) == ("ringing", "caller waiting; ringing rita")
    ok, _ = rep_transfers.offer_accept(user_id=handover.attempts[0]["user_id"], workspace_id=setup.workspace.pk,
                                       handover_id=handover.pk, attempt=0)
    handover.refresh_from_db()
    assert ok and rep_transfers.progress_text(handover) == ("taken", "taken by rita")


def test_the_live_view_gets_the_transfers_progress_and_shows_it_for_calls_in_progress(
        gateway, client, monkeypatch, django_capture_on_commit_callbacks):
    from django.utils import timezone

    from calls.models import CallSession
    from tests.calls.conftest import member_of

    published = []

    async def publish(workspace_id, event):  # calls.engine.live.publish: to the workspace's live view group
        published.append((workspace_id, event))

    monkeypatch.setattr("calls.engine.live.publish", publish)
    setup = make_call_setup()
    rita = _rep(setup.workspace, "rita")

    with django_capture_on_commit_callbacks(execute=True):
        session, handover = _transfer(setup, gateway)
    workspace_id, event = published[-1]
    assert workspace_id == setup.workspace.pk
    assert (event["kind"], event["call_id"], event["state"]) == ("transfer", session.pk, "ringing")
    assert event["text"] == "caller waiting; ringing rita" and event["call"]["from"] == session.from_number

    with django_capture_on_commit_callbacks(execute=True):
        rep_transfers.offer_accept(user_id=rita.pk, workspace_id=setup.workspace.pk, handover_id=handover.pk,
                                   attempt=0)
    assert (published[-1][1]["state"], published[-1][1]["text"]) == ("taken", "taken by rita")

    CallSession.objects.filter(pk=session.pk).update(stream_token_used_at=timezone.now())  # admitted: live
    client.force_login(member_of(setup.workspace))
    page = client.get("/studio/calls/live/").content.decode()
    cell = page[page.index('data-testid="transfer-progress"'):].split("</td>")[0]
    assert 'data-state="taken"' in cell and "taken by rita" in cell


def test_a_rep_who_accepted_but_never_connected_gives_the_caller_back_to_the_agent(
        gateway, django_capture_on_commit_callbacks):
    setup = make_call_setup()
    rita = _rep(setup.workspace, "rita")
    session, handover = _transfer(setup, gateway)
    ok, _ = rep_transfers.offer_accept(user_id=rita.pk, workspace_id=setup.workspace.pk, handover_id=handover.pk,
                                       attempt=0)
    assert ok

    with django_capture_on_commit_callbacks(execute=True):
        _status(setup, handover, 0, "canceled")  # the browser went away before answering

    assert handover.outcome == CallHandover.Outcome.NOT_TAKEN and handover.fallback == "agent"
    assert handover.attempts[0]["outcome"] == "failed"
    assert "<Connect" in gateway.updates[-1]["twiml"]  # the agent is back on the caller's line
    assert Call.objects.get(sid=handover.attempts[0]["call_sid"]).status == "canceled"
