"""Warm transfers on the sandbox: a real call (ConversationRelay, scripted agent) is handed over with a warm action;
the caller holds in a conference, the person on the dialled leg hears the brief and takes, declines or is a machine.

Who answers is told by the number (devtools/twilio_sandbox/conference.py): …67 accepts, …11 declines, …66 is an
answering machine, …77 is busy.
"""
import pytest

from agents.models import HandoverAction
from calls.models import CallHandover, CallSession, CallTurn
from calls.services import transfers
from tests.calls.engine.conftest import asgi_server, make_call_setup  # noqa: F401 (fixture)
from tests.webhooks.conftest import receiver  # noqa: F401 (fixture)
from webhooks import services as webhook_services
from webhooks.models import EventType, WebhookEvent

pytestmark = pytest.mark.django_db(transaction=True)

ACCEPTS = "+31201234567"
DECLINES = "+31201234511"
MACHINE = "+31201234566"
BUSY = "+31201234577"


def _events(call, kind):
    return [e for e in call.events if e["event"] == kind]


def _setup(sandbox, settings, asgi_server, receiver, *destinations):  # noqa: F811
    settings.PUBLIC_BASE_URL = f"http://127.0.0.1:{asgi_server.port}"
    setup = make_call_setup(sandbox=sandbox, transport="conversation_relay")
    HandoverAction.objects.filter(version=setup.version, name="transfer_to_sales").update(
        kind=HandoverAction.Kind.WARM, destination=destinations[0], more_destinations=list(destinations[1:]))
    webhook_services.endpoint_create(environment=setup.environment, url=receiver().url, events=EventType.values)
    number = "+15125550100"
    sandbox.add_incoming_number(setup.connection.account_sid, number, voice_url=setup.connector.webhook_url,
                                voice_method="POST")
    return setup, number


def _person(sandbox, to):
    [person] = [c for c in sandbox.simulated.values() if c.to == to and hasattr(c, "conference_sid")]
    person.done.wait(30)
    return person


def _conference_log(sandbox, account_sid):
    return [entry for conf in sandbox.state["conferences"][account_sid].values() for entry in conf["log"]]


def test_a_warm_transfer_taken_joins_caller_and_person_after_the_brief(asgi_server, twilio_sandbox, settings,  # noqa: F811
                                                                        receiver):  # noqa: F811
    setup, number = _setup(twilio_sandbox, settings, asgi_server, receiver, ACCEPTS)

    call = twilio_sandbox.simulate_call(setup.connection.account_sid, number, say="I want to talk to sales",
                                        wait=True)

    assert call.done.is_set() and call.status == "completed", call.events
    person = _person(twilio_sandbox, ACCEPTS)
    # The caller held (the agent's relay session had ended), then talked with the person.
    assert _events(call, "relay_end")
    assert transfers.HOLD_MESSAGE in [e["text"] for e in _events(call, "say")]
    assert _events(call, "hold") and _events(call, "conference_started")
    # The person heard the brief with the caller's reason, pressed 1, and joined the caller's conference.
    brief = " ".join(e["text"] for e in _events(person, "say"))
    assert "+15125550199" in brief or "You have a call from" in brief
    assert "I want to talk to sales" in brief and "Press 1 to take the call" in brief
    assert _events(person, "pressed")[0]["digits"] == "1"
    log = _conference_log(twilio_sandbox, setup.connection.account_sid)
    started = [entry for entry in log if entry[0] == "start"]
    assert started and set(started[-1][2]) == {call.call_sid, person.call_sid}  # both in, nobody else (no agent)
    session = CallSession.objects.get(call_sid=call.call_sid)
    handover = CallHandover.objects.get(call_session=session)
    assert (handover.kind, handover.outcome, handover.destination) == ("warm", CallHandover.Outcome.ANSWERED, ACCEPTS)
    assert [a["outcome"] for a in handover.attempts] == ["taken"]
    assert CallTurn.objects.filter(call_session=session, role="event", text__contains="took the call").exists()
    completed = WebhookEvent.objects.get(type=EventType.HANDOVER_COMPLETED)
    data = completed.payload["data"]["handover"]
    assert data["kind"] == "warm" and data["outcome"] == "answered"
    assert [(d["destination"], d["outcome"]) for d in data["destinations"]] == [(ACCEPTS, "taken")]
    attempted = [e.payload["data"]["handover"]["attempt"]["outcome"]
                 for e in WebhookEvent.objects.filter(type=EventType.HANDOVER_ATTEMPTED).order_by("id")]
    assert attempted[-3:] == ["ringing", "briefed", "taken"]


def test_a_declined_warm_transfer_tells_the_caller_and_rings_the_next_destination(  # noqa: F811
        asgi_server, twilio_sandbox, settings, receiver, client):  # noqa: F811
    setup, number = _setup(twilio_sandbox, settings, asgi_server, receiver, DECLINES, ACCEPTS)

    call = twilio_sandbox.simulate_call(setup.connection.account_sid, number, say="I want to talk to sales",
                                        wait=True)

    assert call.done.is_set() and call.status == "completed", call.events
    decliner, taker = _person(twilio_sandbox, DECLINES), _person(twilio_sandbox, ACCEPTS)
    assert _events(decliner, "pressed")[0]["digits"] == "2"
    assert transfers.DECLINED_MESSAGE in [e["text"] for e in _events(decliner, "say")]
    assert transfers.NEXT_MESSAGE in [e["text"] for e in _events(call, "say")]  # the caller is told
    handover = CallHandover.objects.get(call_session__call_sid=call.call_sid)
    assert [(a["destination"], a["outcome"]) for a in handover.attempts] == [(DECLINES, "declined"),
                                                                              (ACCEPTS, "taken")]
    assert handover.outcome == CallHandover.Outcome.ANSWERED and handover.destination == ACCEPTS
    started = [e for e in _conference_log(twilio_sandbox, setup.connection.account_sid) if e[0] == "start"]
    assert set(started[-1][2]) == {call.call_sid, taker.call_sid}
    # The call page shows the transfer's progress: each destination tried and how it went.
    from tests.calls.conftest import member_of
    from workspaces.models import Membership

    client.force_login(member_of(setup.workspace, role=Membership.Role.ADMIN))
    html = client.get(f"/studio/calls/{handover.call_session_id}/").content.decode()
    tried = html[html.index('data-testid="handover-attempts"'):].split("</td>")[0]
    assert DECLINES in tried and "declined" in tried and ACCEPTS in tried and "taken" in tried
    [exported] = client.get(f"/studio/calls/{handover.call_session_id}/export.json").json()["handovers"]
    assert exported["kind"] == "warm"
    assert [(d["destination"], d["outcome"]) for d in exported["destinations"]] == [(DECLINES, "declined"),
                                                                                     (ACCEPTS, "taken")]


def test_an_answering_machine_counts_as_not_answered_and_the_next_destination_rings(  # noqa: F811
        asgi_server, twilio_sandbox, settings, receiver):  # noqa: F811
    setup, number = _setup(twilio_sandbox, settings, asgi_server, receiver, MACHINE, ACCEPTS)

    call = twilio_sandbox.simulate_call(setup.connection.account_sid, number, say="I want to talk to sales",
                                        wait=True)

    assert call.done.is_set() and call.status == "completed", call.events
    machine = _person(twilio_sandbox, MACHINE)
    assert _events(machine, "amd")[0]["answered_by"] == "machine_start"
    assert not _events(machine, "say")  # a machine never hears the brief
    handover = CallHandover.objects.get(call_session__call_sid=call.call_sid)
    assert [(a["destination"], a["outcome"]) for a in handover.attempts] == [(MACHINE, "machine"), (ACCEPTS, "taken")]
    assert twilio_sandbox.state["calls"][setup.connection.account_sid][machine.call_sid]["status"] == "completed"


def test_when_nobody_takes_the_call_the_agent_comes_back_and_offers_to_take_a_message(  # noqa: F811
        asgi_server, twilio_sandbox, settings, receiver, client):  # noqa: F811
    """Driven by the callbacks alone (the caller's leg is a plain sandbox call): busy, then the agent is back."""
    from calls.engine.context import HandoverActionSpec, context_for_call_session

    setup, _ = _setup(twilio_sandbox, settings, asgi_server, receiver, BUSY)
    session = setup.new_session(sandbox=twilio_sandbox)
    action = HandoverActionSpec("transfer_to_sales", BUSY, kind="warm")
    handover = transfers.warm_handover_record(call_session_id=session.pk, action=action,
                                              transport=CallHandover.Transport.MEDIA_STREAMS)
    ctx = context_for_call_session(CallSession.objects.select_related("agent_version__agent", "connector",
                                                                      "environment").get(pk=session.pk))
    assert transfers.warm_transfer_start(ctx=ctx, handover_id=handover.pk) == CallHandover.Outcome.PENDING
    person = _person(twilio_sandbox, BUSY)
    assert person.status == "busy"

    def settled():
        handover.refresh_from_db()
        return handover.outcome != CallHandover.Outcome.PENDING

    from tests.calls.engine.conftest import eventually

    assert eventually(settled)
    assert handover.outcome == CallHandover.Outcome.NOT_TAKEN and handover.fallback == "agent"
    assert [(a["destination"], a["outcome"]) for a in handover.attempts] == [(BUSY, "busy")]
    assert eventually(lambda: transfers.NOBODY_MESSAGE in (
        twilio_sandbox.call_twiml(setup.connection.account_sid, session.call_sid) or ""))
    twiml = twilio_sandbox.call_twiml(setup.connection.account_sid, session.call_sid)
    assert "<Connect" in twiml  # the agent again, a new stream of the same session
    assert CallTurn.objects.filter(call_session=session, role="event", text__contains="take a message").exists()
    assert WebhookEvent.objects.filter(type=EventType.HANDOVER_COMPLETED,
                                       payload__data__handover__outcome="not-taken").exists()


def test_a_media_streams_agent_choosing_a_warm_action_holds_the_caller_and_dials_a_participant(  # noqa: F811
        asgi_server, twilio_sandbox):  # noqa: F811
    """The live-call engine (Media Streams): the key press picks the warm action; the caller is redirected into the
    conference and the person's leg is created with answering-machine detection."""

    from websockets.asyncio.client import connect

    from tests.calls.engine.conftest import TwilioMediaClient, run

    setup = make_call_setup(sandbox=twilio_sandbox)
    twilio_sandbox.transfer_talk_seconds = 0
    HandoverAction.objects.filter(version=setup.version, name="transfer_to_sales").update(
        kind=HandoverAction.Kind.WARM, destination=BUSY)
    session = setup.new_session(sandbox=twilio_sandbox)
    token = setup.token()

    async def scenario():
        async with connect(asgi_server.ws_base + "/v1/stream/media") as ws:
            twilio = TwilioMediaClient(ws)
            await twilio.start(token=token, call_sid=session.call_sid, account_sid=setup.connection.account_sid)
            await twilio.read_until(lambda m: m.get("event") == "mark")
            await twilio.dtmf("1")
            await twilio.until_closed()  # the server closes the stream

    run(scenario())
    handover = CallHandover.objects.get(call_session=session)
    assert handover.kind == "warm"
    twiml = twilio_sandbox.state["calls"][setup.connection.account_sid][session.call_sid]["twiml_history"][0]
    assert "<Conference" in twiml and f"callwell-transfer-{handover.pk}</Conference>" in twiml
    assert 'startConferenceOnEnter="false"' in twiml and transfers.HOLD_MESSAGE in twiml
    [(_, path, form)] = twilio_sandbox.requests_to(r"/Participants\.json$", "POST")
    assert f"/Conferences/callwell-transfer-{handover.pk}/" in path
    assert (form["To"], form["From"], form["MachineDetection"]) == (BUSY, "+15125550100", "Enable")
    assert form["StartConferenceOnEnter"] == "false" and "transfer-amd" in form["AmdStatusCallback"]
    assert CallSession.objects.get(pk=session.pk).ended_at is not None  # the agent's part is over
