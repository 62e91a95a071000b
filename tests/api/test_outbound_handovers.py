"""Handovers on a call an agent placed (issue 23): such a call has no connector, so its handover callbacks are the
call session's own (`/v1/calls/outbound/<id>/…`). On the sandbox, end to end: the callee asks for sales, the
scripted agent hands over cold (a `<Dial>` whose result comes back to the session's URL) or warm (the callee holds
in a conference, the person on the dialled leg hears the brief and takes the call)."""
import json

import pytest
from django.test import Client

from agents.models import HandoverAction
from calls.models import CallHandover, CallSession
from tests.api.helpers import outbound_setup
from tests.api.test_outbound_sandbox import _events, _wait
from tests.calls.engine.conftest import asgi_server  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db(transaction=True)

TO = "+15125550123"
ACCEPTS = "+31201234567"  # devtools/twilio_sandbox/conference.py: …67 takes the call


def _place(o, sandbox) -> CallSession:
    sandbox.outbound_scripts = {TO: ["I want to talk to sales"]}
    response = Client().post("/api/v1/calls", data=json.dumps(o.body(to=TO)), content_type="application/json",
                             HTTP_AUTHORIZATION=f"Bearer {o.key}")
    assert response.status_code == 201, response.content
    return CallSession.objects.get(pk=response.json()["id"])


def test_a_placed_call_hands_over_cold_through_its_own_callback_urls(asgi_server, twilio_sandbox, settings):  # noqa: F811
    settings.PUBLIC_BASE_URL = f"http://127.0.0.1:{asgi_server.port}"
    o = outbound_setup(sandbox=twilio_sandbox)
    session = _place(o, twilio_sandbox)
    call = twilio_sandbox.simulated[session.call_sid]
    assert call.done.wait(60), call.events

    assert _events(call, "relay_end"), call.events
    [dial] = _events(call, "dial")
    assert dial["to"] == [ACCEPTS] and dial["outcome"] == "completed"
    # The relay's <Connect action> and the Dial's action are the session's own URLs (there is no connector).
    answered = {e["url"].split("?")[0]: e.get("status") for e in _events(call, "webhook")}
    base = f"http://127.0.0.1:{asgi_server.port}/v1/calls/outbound/{session.pk}"
    assert answered[f"{base}/handover"] == 200 and answered[f"{base}/dial-result"] == 200, answered
    handover = _wait(lambda: CallHandover.objects.filter(call_session=session,
                                                         outcome=CallHandover.Outcome.ANSWERED).first())
    assert (handover.kind, handover.destination, handover.action_name) == ("cold", ACCEPTS, "transfer_to_sales")
    assert handover.answer_twiml  # the Dial's result was recorded by /v1/calls/outbound/<id>/dial-result


def test_a_placed_call_hands_over_warm_and_the_person_takes_it(asgi_server, twilio_sandbox, settings):  # noqa: F811
    settings.PUBLIC_BASE_URL = f"http://127.0.0.1:{asgi_server.port}"
    o = outbound_setup(sandbox=twilio_sandbox)
    HandoverAction.objects.filter(version=o.setup.version, name="transfer_to_sales").update(
        kind=HandoverAction.Kind.WARM, destination=ACCEPTS)
    session = _place(o, twilio_sandbox)
    call = twilio_sandbox.simulated[session.call_sid]
    assert call.done.wait(90), call.events

    [person] = [c for c in twilio_sandbox.simulated.values() if c.to == ACCEPTS and hasattr(c, "conference_sid")]
    assert person.done.wait(30)
    assert _events(call, "hold") and _events(call, "conference_started"), call.events
    brief = " ".join(e["text"] for e in _events(person, "say"))
    assert f"You have a call with Jane at {TO}" in brief or TO in brief, brief
    assert "I want to talk to sales" in brief
    assert _events(person, "pressed")[0]["digits"] == "1"
    handover = _wait(lambda: CallHandover.objects.filter(call_session=session,
                                                         outcome=CallHandover.Outcome.ANSWERED).first())
    assert handover.kind == "warm" and [a["outcome"] for a in handover.attempts] == ["taken"]


def test_a_placed_calls_callbacks_reach_only_its_own_handovers(twilio_sandbox):
    """Another call's handover id in this call's URL: hang up, nothing recorded (the URLs are per session)."""
    from calls.engine.context import HandoverActionSpec
    from calls.services import handovers, transfers

    o = outbound_setup(sandbox=twilio_sandbox)
    mine, other = (o.setup.new_session(sandbox=twilio_sandbox) for _ in range(2))
    theirs = handovers.handover_record(call_session_id=other.pk, transport="media_streams",
                                       action=HandoverActionSpec("transfer_to_sales", ACCEPTS))
    twiml = handovers.dial_result_record(call_session=mine, handover_id=theirs.pk,
                                         params={"DialCallStatus": "busy"})
    assert "<Hangup />" in twiml
    theirs.refresh_from_db()
    assert theirs.outcome == CallHandover.Outcome.PENDING and not theirs.answer_twiml
    warm = transfers.warm_handover_record(call_session_id=other.pk, transport="media_streams",
                                          action=HandoverActionSpec("transfer_to_sales", ACCEPTS, kind="warm"))
    assert "no longer waiting" in transfers.answer_record(call_session=mine, handover_id=warm.pk, attempt=0,
                                                          params={"Digits": "1"})
    assert handovers.callback_base(call_session_id=mine.pk) == f"/v1/calls/outbound/{mine.pk}"
