"""One-click attach and the drift check, against the Twilio sandbox."""
import pytest

from connectors import services, tasks
from connectors.models import ConnectorNumber
from tests.agents.factories import PhoneConnectorFactory, published_agent
from tests.factories import PhoneNumberFactory, TwilioConnectionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def attached_setup(workspace, twilio_sandbox):
    sid, token = twilio_sandbox.add_account()
    TwilioConnectionFactory(workspace=workspace, account_sid=sid, auth_token=token)
    number_sid = twilio_sandbox.add_incoming_number(sid, "+15125550142", voice_url="https://old.example/voice")
    number = PhoneNumberFactory(workspace=workspace, sid=number_sid, phone_number="+15125550142")
    connector = PhoneConnectorFactory(workspace=workspace, agent=published_agent(workspace))
    return twilio_sandbox, sid, number, connector


def test_attach_points_number_at_connector_with_get(admin_client, attached_setup):
    sandbox, sid, number, connector = attached_setup
    response = admin_client.post(f"/studio/connectors/{connector.pk}/numbers/attach/", {"phone_number": number.pk})
    assert response.status_code == 302
    rec = sandbox.state["incoming_numbers"][sid][number.sid]
    assert rec["voice_url"] == connector.webhook_url
    assert rec["voice_method"] == "GET"
    assert not rec.get("voice_application_sid")
    link = ConnectorNumber.objects.get()
    assert link.connector == connector and not link.drift
    page = admin_client.get(f"/studio/connectors/{connector.pk}/").content.decode()
    assert "+15125550142" in page


def test_several_numbers_share_one_connector_and_moving_a_number_relinks(admin_client, attached_setup, workspace):
    sandbox, sid, number, connector = attached_setup
    second_sid = sandbox.add_incoming_number(sid, "+15125550143")
    second = PhoneNumberFactory(workspace=workspace, sid=second_sid, phone_number="+15125550143")
    services.connector_number_attach(connector=connector, phone_number=number)
    services.connector_number_attach(connector=connector, phone_number=second)
    assert connector.numbers.count() == 2
    other = PhoneConnectorFactory(workspace=workspace, agent=connector.agent, environment=connector.environment)
    services.connector_number_attach(connector=other, phone_number=number)
    assert ConnectorNumber.objects.get(phone_number=number).connector == other
    assert ConnectorNumber.objects.count() == 2


def test_attach_failure_writes_nothing_and_says_why(admin_client, attached_setup):
    sandbox, sid, number, connector = attached_setup
    sandbox.inject_fault(method="POST", path_pattern=r"IncomingPhoneNumbers/PN", kind="500", times=1)
    response = admin_client.post(f"/studio/connectors/{connector.pk}/numbers/attach/", {"phone_number": number.pk},
                                 follow=True)
    assert not ConnectorNumber.objects.exists()
    assert "Twilio did not update" in response.content.decode()


def test_attach_without_twilio_connection_says_connect_first(admin_client, workspace):
    connector = PhoneConnectorFactory(workspace=workspace)
    number = PhoneNumberFactory(workspace=workspace)
    response = admin_client.post(f"/studio/connectors/{connector.pk}/numbers/attach/", {"phone_number": number.pk},
                                 follow=True)
    assert "Connect your Twilio account first" in response.content.decode()
    assert not ConnectorNumber.objects.exists()


def test_drift_check_flags_numbers_pointing_elsewhere(admin_client, attached_setup):
    sandbox, sid, number, connector = attached_setup
    services.connector_number_attach(connector=connector, phone_number=number)
    tasks.connector_numbers_check_all.delay()  # eager in tests
    assert not ConnectorNumber.objects.get().drift
    sandbox.state["incoming_numbers"][sid][number.sid]["voice_url"] = "https://someone-else.example/voice"
    tasks.connector_numbers_check_all.delay()
    link = ConnectorNumber.objects.get()
    assert link.drift and link.observed_voice_url == "https://someone-else.example/voice"
    assert link.last_checked_at is not None
    page = admin_client.get(f"/studio/connectors/{connector.pk}/").content.decode()
    assert "No longer points here" in page
    # Re-attaching fixes it.
    services.connector_number_attach(connector=connector, phone_number=number)
    assert not ConnectorNumber.objects.get().drift


def test_drift_check_survives_twilio_errors(attached_setup, workspace):
    sandbox, sid, number, connector = attached_setup
    services.connector_number_attach(connector=connector, phone_number=number)
    sandbox.inject_fault(method="GET", path_pattern=r"IncomingPhoneNumbers/PN", kind="500", times=1)
    counts = services.connector_numbers_check(workspace_id=workspace.pk)
    assert counts["errors"] == 1
    link = ConnectorNumber.objects.get()
    assert not link.drift and link.check_error


def test_drift_check_flags_released_number(attached_setup, workspace):
    sandbox, sid, number, connector = attached_setup
    services.connector_number_attach(connector=connector, phone_number=number)
    del sandbox.state["incoming_numbers"][sid][number.sid]
    services.connector_numbers_check(workspace_id=workspace.pk)
    assert ConnectorNumber.objects.get().drift


def test_detach_clears_voice_url_and_link(admin_client, attached_setup):
    sandbox, sid, number, connector = attached_setup
    link = services.connector_number_attach(connector=connector, phone_number=number)
    response = admin_client.post(f"/studio/connectors/{connector.pk}/numbers/{link.pk}/detach/")
    assert response.status_code == 302
    assert not ConnectorNumber.objects.exists()
    assert not sandbox.state["incoming_numbers"][sid][number.sid]["voice_url"]


def test_detach_hands_the_number_back_to_the_dialers_twiml_app(admin_client, attached_setup, workspace):
    sandbox, sid, number, connector = attached_setup
    from telephony import twilio_gateway

    app_sid = twilio_gateway.application_create(creds=workspace.twilio_connection.credentials(),
                                                friendly_name="dialer", voice_url="https://calls.example.test/v").sid
    workspace.twilio_connection.twiml_app_sid = app_sid
    workspace.twilio_connection.save(update_fields=["twiml_app_sid"])
    link = services.connector_number_attach(connector=connector, phone_number=number)
    assert not sandbox.state["incoming_numbers"][sid][number.sid]["voice_application_sid"]
    admin_client.post(f"/studio/connectors/{connector.pk}/numbers/{link.pk}/detach/")
    record = sandbox.state["incoming_numbers"][sid][number.sid]
    assert record["voice_application_sid"] == app_sid and not record["voice_url"]


def test_beat_schedule_has_the_drift_check(settings):
    tasks_scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "connectors.tasks.connector_numbers_check_all" in tasks_scheduled


def test_connector_list_counts_drifted_numbers(admin_client, attached_setup):
    sandbox, sid, number, connector = attached_setup
    services.connector_number_attach(connector=connector, phone_number=number)
    ConnectorNumber.objects.update(drift=True)
    page = admin_client.get("/studio/connectors/").content.decode()
    assert "1 number no longer points here" in page
