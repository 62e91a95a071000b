"""An agent hands a caller over to the dialer's reps, in a real browser against the sandbox: the agent's call
(ConversationRelay, scripted agent, the app on an ASGI server) puts the caller on hold in a conference, the rep's
browser dialer rings (the sandbox's signalling: a Participants API call to `client:<identity>`), its ringing card
shows the brief, the rep accepts, and the caller and the rep are joined with the agent gone."""
from __future__ import annotations

import pytest

from agents.models import HandoverAction
from calls.models import CallHandover, CallSession
from dialer.models import Call
from tests.agents.factories import AgentFactory, EnvironmentFactory, PhoneConnectorFactory, draft_of
from tests.calls.engine.conftest import asgi_server  # noqa: F401 (fixture)
from tests.dialer.test_dialer_calls_browser import (  # noqa: F401 (fixtures)
    _rep_page,
    _state,
    chromium_with_mic,
    sandboxed,
    wait_for,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AGENT_NUMBER = "+15125550177"


def _agent_with_reps_handover(workspace):
    agent = AgentFactory(workspace=workspace, name="Ava")
    version = draft_of(agent)
    version.provider, version.transport = "scripted", "conversation_relay"
    version.greeting = "Hello, this is Ava."
    version.handover_rules = [{"keyword": "sales", "digit": "1", "action": "transfer_to_sales"}]
    version.save()
    HandoverAction.objects.create(version=version, name="transfer_to_sales", kind=HandoverAction.Kind.REPS,
                                  description="The caller wants to buy something.")
    return PhoneConnectorFactory(workspace=workspace, agent=agent, environment=EnvironmentFactory(workspace=workspace),
                                 version_mode="draft")


def test_an_agent_hands_the_caller_to_the_dialer_reps_and_the_rep_who_accepts_gets_the_caller(
        chromium_with_mic, sandboxed, live_server, workspace, asgi_server, settings):  # noqa: F811
    sandbox, sid = sandboxed
    page = _rep_page(chromium_with_mic, live_server, workspace, "rita")  # online: the dialer registered
    settings.PUBLIC_BASE_URL = f"http://127.0.0.1:{asgi_server.port}"  # the agent's relay socket needs ASGI
    connector = _agent_with_reps_handover(workspace)
    sandbox.add_incoming_number(sid, AGENT_NUMBER, voice_url=connector.webhook_url, voice_method="POST")

    caller = sandbox.simulate_call(sid, AGENT_NUMBER, from_="+13105550142", say="I want to talk to sales")

    card = page.locator("[data-testid=dialer-transfer-card]")
    try:
        card.wait_for(timeout=30_000)
    except Exception:
        raise AssertionError("\n".join(page.console_log[-30:]) + repr(caller.events[-10:])) from None
    assert "+13105550142" in card.locator("[data-testid=transfer-caller]").inner_text()
    assert "I want to talk to sales" in card.locator("[data-testid=transfer-brief]").inner_text()
    assert "talk to sales" in card.locator("[data-testid=transfer-transcript]").inner_text()
    page.click("[data-testid=transfer-accept]")
    _state(page, "In call")

    session = CallSession.objects.get(call_sid=caller.call_sid)
    handover = wait_for(lambda: CallHandover.objects.filter(call_session=session, kind="reps",
                                                            outcome=CallHandover.Outcome.ANSWERED).first(),
                        what="the transfer taken")
    [attempt] = handover.attempts
    assert attempt["outcome"] == "taken" and attempt["rep"] == "rita"
    # Caller and rep are joined in the conference; the agent is gone (its relay session ended before).
    conference = next(iter(sandbox.state["conferences"][sid].values()))
    wait_for(lambda: any(e[0] == "start" for e in conference["log"]), what="the conference started")
    started = [e for e in conference["log"] if e[0] == "start"][-1]
    assert set(started[2]) == {caller.call_sid, attempt["call_sid"]}
    assert [e for e in caller.events if e["event"] == "relay_end"]
    # The rep's call is an ordinary dialer call, linked to the agent's call.
    rep_call = wait_for(lambda: Call.objects.filter(sid=attempt["call_sid"], status="in-progress").first(),
                        what="the rep's dialer call answered")
    assert rep_call.agent_call_id == session.pk and rep_call.user.username == "rita"

    page.click("[data-role=hangup]")
    _state(page, "Call ended")
    assert caller.done.wait(30), caller.events
    wait_for(lambda: Call.objects.filter(sid=rep_call.sid, status="completed").exists(), what="the rep's call ended")
    page.goto(f"{live_server.url}/studio/calls/{session.pk}/")
    assert page.locator("[data-testid=rep-call-link]").get_attribute("href") == f"/calls/{rep_call.pk}/"
    assert not page.console_errors, page.console_errors
    page.context.close()
