import pytest

from calls.models import CallSession
from connectors import services
from connectors.models import ConnectorNumber
from tests.agents.factories import HandoverActionFactory, PhoneConnectorFactory, draft_of, published_agent
from tests.factories import PhoneNumberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.test", "pw"))
    return client


def test_admin_pages_render_for_studio_models(staff_client, workspace):
    agent = published_agent(workspace)
    HandoverActionFactory(version=draft_of(agent))
    connector = PhoneConnectorFactory(workspace=workspace, agent=agent)
    ConnectorNumber.objects.create(connector=connector, phone_number=PhoneNumberFactory(workspace=workspace))
    session = CallSession.objects.create(call_sid="CA" + "5" * 32, workspace=workspace, connector=connector)
    services.stream_token_issue(call_session=session)
    version = agent.versions.get(number=1)
    pages = [
        "/admin/agents/agent/", f"/admin/agents/agent/{agent.pk}/change/",
        "/admin/agents/agentversion/", f"/admin/agents/agentversion/{version.pk}/change/",
        f"/admin/agents/agentversion/{draft_of(agent).pk}/change/",
        "/admin/agents/environment/", "/admin/agents/authconnector/",
        "/admin/connectors/phoneconnector/", f"/admin/connectors/phoneconnector/{connector.pk}/change/",
        "/admin/calls/callsession/", f"/admin/calls/callsession/{session.pk}/change/",
    ]
    for url in pages:
        response = staff_client.get(url)
        assert response.status_code == 200, url
    page = staff_client.get(f"/admin/calls/callsession/{session.pk}/change/").content.decode()
    session.refresh_from_db()
    assert session.stream_token_nonce not in page
    page = staff_client.get(f"/admin/connectors/phoneconnector/{connector.pk}/change/").content.decode()
    assert connector.webhook_url in page
