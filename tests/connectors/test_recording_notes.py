"""The connector page says when its environment records nothing (the setup guide expects a recording after the
first test call), and a recording made by the sandbox says it is a placeholder."""
import pytest
from django.test import override_settings

from calls.models import CallRecording, CallSession
from tests.agents.factories import EnvironmentFactory, PhoneConnectorFactory, published_agent

pytestmark = pytest.mark.django_db


def test_the_connector_page_says_recording_is_off(admin_client, workspace):
    environment = EnvironmentFactory(workspace=workspace, kind="production", recording_enabled=False)
    connector = PhoneConnectorFactory(workspace=workspace, agent=published_agent(workspace), environment=environment)
    page = admin_client.get(f"/studio/connectors/{connector.pk}/").content.decode()
    assert 'data-testid="recording-off-note"' in page and "Record calls" in page
    environment.recording_enabled = True
    environment.save()
    page = admin_client.get(f"/studio/connectors/{connector.pk}/").content.decode()
    assert 'data-testid="recording-off-note"' not in page


def test_a_sandbox_recording_says_it_is_a_placeholder(admin_client, workspace):
    environment = EnvironmentFactory(workspace=workspace, kind="production", recording_enabled=True)
    call = CallSession.objects.create(workspace=workspace, environment=environment, call_sid="CA" + "7" * 32)
    CallRecording.objects.create(call_session=call, recording_sid="RE" + "7" * 32, status="completed", duration=5)
    with override_settings(TWILIO_API_BASE_URL="http://127.0.0.1:9"):
        assert 'data-testid="sandbox-recording-note"' in admin_client.get(f"/studio/calls/{call.pk}/").content.decode()
    with override_settings(TWILIO_API_BASE_URL=""):
        assert 'data-testid="sandbox-recording-note"' not in admin_client.get(
            f"/studio/calls/{call.pk}/").content.decode()
