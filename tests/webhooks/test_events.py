"""Where the events come from: a call answered, ended, handed over, its recording completed, each written with
the change that caused it, once, and only for calls through an environment."""
import pytest

from calls.engine.context import HandoverActionSpec
from calls.models import CallHandover, CallSession
from calls.services import handovers, recordings
from connectors import services as connector_services
from tests.agents.factories import PhoneConnectorFactory, published_agent
from tests.connectors.helpers import call_params, connection_for
from webhooks.models import EventType, WebhookEvent

pytestmark = pytest.mark.django_db

ACTION = HandoverActionSpec("transfer_to_sales", "+31201234567")


@pytest.fixture
def connector(workspace, environment):
    return PhoneConnectorFactory(workspace=workspace, agent=published_agent(workspace), environment=environment)


@pytest.fixture
def connection(workspace):
    return connection_for(workspace)


@pytest.fixture
def session(connector, connection):
    session, _ = connector_services.inbound_call_answer(connector=connector, params=call_params(connection))
    return session


def events(type=None):
    rows = WebhookEvent.objects.order_by("id")
    return list(rows.filter(type=type) if type else rows)


def test_an_answered_call_sends_call_started(hook, session, connector):
    [event] = events()
    assert event.type == "call.started" and event.endpoint_id == hook[1].pk
    call = event.payload["data"]["call"]
    assert call["call_id"] == session.pk and call["call_sid"] == session.call_sid
    assert call["from"] == "+15125550100" and call["to"] == "+15125550199"
    assert call["agent_id"] == connector.agent_id and call["agent_version"] == 1 and call["ended_at"] is None


def test_a_retried_call_webhook_sends_call_started_once(hook, session, connector, connection):
    connector_services.inbound_call_answer(connector=connector, params=call_params(connection))
    assert len(events("call.started")) == 1


def test_a_call_that_is_not_connected_sends_nothing(hook, connector, connection):
    connector.enabled = False
    connector.save()
    session, _ = connector_services.inbound_call_answer(connector=connector, params=call_params(connection))
    assert session.status == CallSession.Status.REJECTED and events() == []


def test_the_end_of_a_call_sends_call_ended_once(hook, session):
    handovers.call_session_ended(call_session_id=session.pk)
    handovers.call_session_ended(call_session_id=session.pk)  # the runtime's second word changes nothing
    [event] = events("call.ended")
    call = event.payload["data"]["call"]
    assert call["status"] == "completed" and call["ended_at"] and call["duration_seconds"] >= 0


def test_a_handover_sends_started_then_completed(hook, session, connector):
    record = handovers.handover_record(call_session_id=session.pk, action=ACTION, transport="media_streams")
    [started] = events("handover.started")
    assert started.payload["data"]["handover"] == {
        "handover_id": record.pk, "action": "transfer_to_sales", "destination": "+31201234567",
        "transport": "media_streams", "requested_at": started.payload["data"]["handover"]["requested_at"],
        "outcome": "pending", "outcome_at": None, "dial_duration_seconds": None, "fallback": "",
        "kind": "cold", "destinations": [{"destination": "+31201234567", "outcome": "pending"}]}
    params = {"DialCallStatus": "completed", "DialCallSid": "CA" + "9" * 32, "DialCallDuration": "42"}
    handovers.dial_result_record(connector=connector, handover_id=record.pk, params=params)
    handovers.dial_result_record(connector=connector, handover_id=record.pk, params=params)  # Twilio's retry
    [completed] = events("handover.completed")
    handover = completed.payload["data"]["handover"]
    assert handover["outcome"] == "answered" and handover["dial_duration_seconds"] == 42
    assert completed.payload["data"]["call"]["call_sid"] == session.call_sid


def test_a_handover_that_could_not_redirect_sends_completed_once(hook, session):
    record = handovers.handover_record(call_session_id=session.pk, action=ACTION, transport="media_streams")
    handovers.handover_outcome_set(handover_id=record.pk, outcome=CallHandover.Outcome.CALLER_GONE)
    handovers.handover_outcome_set(handover_id=record.pk, outcome=CallHandover.Outcome.FAILED)
    [completed] = events("handover.completed")
    assert completed.payload["data"]["handover"]["outcome"] == "caller-gone"


def test_a_completed_recording_sends_recording_ready_once(hook, session):
    sid = "RE" + "4" * 32
    recordings.recording_status_record(call_session_id=session.pk, recording_sid=sid, status="in-progress",
                                       from_callback=False)
    assert events("recording.ready") == []
    for _ in range(2):  # Twilio retries the callback
        recordings.recording_status_record(call_session_id=session.pk, recording_sid=sid, status="completed",
                                           duration="61", channels="2")
    [ready] = events("recording.ready")
    assert ready.payload["data"]["recording"] == {
        "recording_id": ready.payload["data"]["recording"]["recording_id"], "recording_sid": sid,
        "status": "completed", "duration_seconds": 61, "channels": 2}


def test_a_call_through_no_environment_sends_nothing(hook, session):
    CallSession.objects.filter(pk=session.pk).update(environment=None)
    handovers.handover_record(call_session_id=session.pk, action=ACTION, transport="media_streams")
    handovers.call_session_ended(call_session_id=session.pk)
    assert [e.type for e in events()] == ["call.started"]


def test_the_endpoint_gets_only_the_events_it_wants(environment, receiver, session):
    from webhooks import services

    endpoint, _ = services.endpoint_create(environment=environment, url=receiver().url,
                                           events=[EventType.CALL_ENDED])
    handovers.handover_record(call_session_id=session.pk, action=ACTION, transport="media_streams")
    handovers.call_session_ended(call_session_id=session.pk)
    assert [(e.type, e.endpoint_id) for e in events()] == [("call.ended", endpoint.pk)]


def test_payloads_carry_no_secret(hook, session, environment):
    from tests.agents.factories import EnvironmentSecretFactory

    secret = EnvironmentSecretFactory(environment=environment, name="API_KEY", value="sk-live-abcdef123456")
    handovers.call_session_ended(call_session_id=session.pk)
    text = str([e.payload for e in events()])
    assert secret.value not in text and session.stream_token_nonce not in text and hook[2] not in text


def test_a_finished_analysis_sends_call_analyzed_and_a_failed_one_does_not(hook, session):
    from calls.models import CallAnalysis
    from calls.services import analysis as analysis_service

    analysis = CallAnalysis.objects.create(call_session=session)
    analysis_service._save_result(analysis, status=CallAnalysis.Status.FAILED, reason="The model refused.")
    assert events("call.analyzed") == []
    analysis_service._save_result(analysis, status=CallAnalysis.Status.DONE, model_used="rules",
                                  result={"summary": "Wants sales.", "fields": {"resolved": True}, "success": True})
    [event] = events("call.analyzed")
    data = event.payload["data"]
    assert data["call"]["call_id"] == session.pk
    assert data["analysis"]["summary"] == "Wants sales." and data["analysis"]["fields"] == {"resolved": True}
    assert data["analysis"]["success"] is True
