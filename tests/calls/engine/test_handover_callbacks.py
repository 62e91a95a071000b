"""The Dial's action callback (`/v1/agents/<identifier>/dial-result`) and the relay handoff answer."""
import json
import re

import pytest

from calls.engine.context import HandoverActionSpec
from calls.models import CallHandover
from calls.services import handovers as handover

from .conftest import make_call_setup

BASE = "https://calls.example.test"


def _record(setup, name="transfer_to_sales", destination="+31201234567", transport="media_streams"):
    return handover.handover_record(call_session_id=setup.session.pk,
                                    action=HandoverActionSpec(name, destination), transport=transport)


def _post(client, setup, handover_id, params, identifier=None, sign=True):
    identifier = identifier or setup.connector.identifier
    path = f"/v1/agents/{identifier}/dial-result?handover={handover_id}"
    params = {"CallSid": setup.session.call_sid, "AccountSid": setup.connection.account_sid, **params}
    headers = {"HTTP_X_TWILIO_SIGNATURE": setup.sign(BASE + path, params)} if sign else {}
    return client.post(path, params, **headers)


@pytest.fixture
def setup(db):
    s = make_call_setup()
    s.new_session()
    return s


def test_answered_dial_is_recorded_once_and_retries_change_nothing(client, setup):
    record = _record(setup)
    first = _post(client, setup, record.pk, {"DialCallStatus": "completed", "DialCallSid": "CA" + "d" * 32,
                                             "DialCallDuration": "42"})
    assert first.status_code == 200
    assert "<Hangup />" in first.content.decode()
    record.refresh_from_db()
    assert (record.outcome, record.dial_duration) == (CallHandover.Outcome.ANSWERED, 42)
    outcome_at = record.outcome_at
    # Twilio retries (even with another status): same answer, nothing rewritten.
    again = _post(client, setup, record.pk, {"DialCallStatus": "busy"})
    assert again.content == first.content
    record.refresh_from_db()
    assert (record.outcome, record.outcome_at) == (CallHandover.Outcome.ANSWERED, outcome_at)


@pytest.mark.parametrize("status,outcome", [("busy", "busy"), ("no-answer", "no-answer"), ("failed", "failed"),
                                            ("canceled", "failed")])
def test_failed_dial_says_sorry_and_hangs_up_by_default(client, setup, status, outcome):
    record = _record(setup)
    body = _post(client, setup, record.pk, {"DialCallStatus": status}).content.decode()
    assert "<Say" in body and handover.DIAL_FAILED_MESSAGE in body and "<Hangup />" in body
    record.refresh_from_db()
    assert (record.outcome, record.fallback) == (outcome, "hangup")


def test_failed_dial_falls_back_to_another_action_once(client, setup):
    from agents.models import EnvironmentVariable

    EnvironmentVariable.objects.create(environment=setup.environment, name="HANDOVER_FALLBACK",
                                       value="transfer_to_support")
    record = _record(setup)
    body = _post(client, setup, record.pk, {"DialCallStatus": "busy"}).content.decode()
    assert "<Number>+31207654321</Number>" in body
    follow_up = CallHandover.objects.exclude(pk=record.pk).get()
    assert follow_up.action_name == "transfer_to_support"
    assert f"dial-result?handover={follow_up.pk}" in body
    # A retry returns the same TwiML and does not create a second follow-up handover.
    assert _post(client, setup, record.pk, {"DialCallStatus": "busy"}).content.decode() == body
    assert CallHandover.objects.count() == 2
    # The support line is busy too: its own fallback is itself, so it hangs up instead of looping.
    last = _post(client, setup, follow_up.pk, {"DialCallStatus": "busy"}).content.decode()
    assert "<Hangup />" in last


def test_failed_dial_can_go_back_to_the_agent_with_a_fresh_stream_token(client, setup):
    from agents.models import EnvironmentVariable
    from connectors.services import stream_token_consume

    EnvironmentVariable.objects.create(environment=setup.environment, name="HANDOVER_FALLBACK", value="agent")
    record = _record(setup)
    body = _post(client, setup, record.pk, {"DialCallStatus": "no-answer"}).content.decode()
    assert body.index("<Say") < body.index("<Connect>")
    assert '<Stream url="wss://calls.example.test/v1/stream/media">' in body
    token = re.search(r'<Parameter name="session" value="([^"]+)"', body).group(1)
    assert stream_token_consume(token=token).pk == setup.session.pk


def test_dial_result_checks_signature_and_scoping(client, setup):
    record = _record(setup)
    assert _post(client, setup, record.pk, {"DialCallStatus": "busy"}, sign=False).status_code == 403
    # A handover of another connector's call is not this connector's business.
    other = make_call_setup()
    other.new_session()
    response = _post(client, other, record.pk, {"DialCallStatus": "busy"})
    assert response.status_code == 200 and "<Hangup />" in response.content.decode()
    record.refresh_from_db()
    assert record.outcome == CallHandover.Outcome.PENDING
    assert _post(client, setup, "not-a-number", {"DialCallStatus": "busy"}).status_code == 200
    assert client.post("/v1/agents/nope/dial-result?handover=1").status_code == 404


def test_relay_handover_twiml_dials_the_recorded_handover(setup):
    record = _record(setup, transport="conversation_relay")
    params = {"CallSid": setup.session.call_sid,
              "HandoffData": json.dumps({"reason": "handover", "action": "transfer_to_sales", "handover_id": record.pk})}
    body = handover.relay_handover_twiml(connector=setup.connector, params=params)
    assert "<Number>+31201234567</Number></Dial>" in body and f"handover={record.pk}" in body
    # Conversation simply over, or garbage: hang up.
    assert "<Hangup />" in handover.relay_handover_twiml(connector=setup.connector,
                                                         params={"CallSid": setup.session.call_sid})
    assert "<Hangup />" in handover.relay_handover_twiml(connector=setup.connector,
                                                         params={"CallSid": setup.session.call_sid,
                                                                 "HandoffData": "{oops"})
    # Agent failure: apology, then the fallback (hang-up by default); a retry gives the same answer.
    error = {"CallSid": setup.session.call_sid, "HandoffData": json.dumps({"reason": "error"})}
    body = handover.relay_handover_twiml(connector=setup.connector, params=error)
    assert handover.AGENT_FAILED_MESSAGE in body and "<Hangup />" in body


def test_handovers_are_shown_on_the_connector_page(client, other_client, setup):
    from tests.factories import MembershipFactory, UserFactory
    from workspaces.models import Membership

    record = _record(setup)
    _post(client, setup, record.pk, {"DialCallStatus": "busy"})
    admin = UserFactory()
    MembershipFactory(workspace=setup.workspace, user=admin, role=Membership.Role.ADMIN)
    client.force_login(admin)
    html = client.get(f"/studio/connectors/{setup.connector.pk}/").content.decode()
    section = html[html.index('data-testid="call-handovers"'):]
    assert "transfer_to_sales" in section and "+31201234567" in section and "Busy" in section
    assert "apology, hang-up" in section
    # Another workspace's admin cannot see this connector (nor its handovers).
    assert other_client.get(f"/studio/connectors/{setup.connector.pk}/").status_code == 404


def test_relay_agent_failure_falls_back_to_the_configured_action_once(setup):
    """ConversationRelay ended with an error: apology + the environment's fallback action; Twilio's retry of the
    `<Connect action>` request dials the same recorded leg, no second handover."""
    from agents.models import EnvironmentVariable

    EnvironmentVariable.objects.create(environment=setup.environment, name="HANDOVER_FALLBACK",
                                       value="transfer_to_support")
    error = {"CallSid": setup.session.call_sid, "HandoffData": json.dumps({"reason": "error", "error": "timeout"})}
    body = handover.relay_handover_twiml(connector=setup.connector, params=error)
    assert handover.AGENT_FAILED_MESSAGE in body and "<Number>+31207654321</Number></Dial>" in body
    record = CallHandover.objects.get()
    assert (record.action_name, record.outcome) == ("transfer_to_support", CallHandover.Outcome.PENDING)
    assert f"dial-result?handover={record.pk}" in body
    assert handover.relay_handover_twiml(connector=setup.connector, params=error) == body
    assert CallHandover.objects.count() == 1
