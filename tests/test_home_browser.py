"""Home is the workspace's dashboard: phone system, calls today, live agent calls, agents and their connectors."""
import pytest
from django.utils import timezone

from calls.models import CallSession
from dialer.models import Call
from tests.agents.factories import AgentFactory, PhoneConnectorFactory
from tests.dialer.voice_fixtures import ready_workspace
from tests.factories import MembershipFactory, UserFactory, WorkspaceFactory
from tests.fixtures_browser import login
from workspaces.models import Membership

pytestmark = [pytest.mark.browser]


def test_home_is_a_dashboard_with_links(browser_page, live_server):
    workspace = WorkspaceFactory(name="Acme")
    other = WorkspaceFactory(name="Other")
    MembershipFactory(workspace=workspace, user=UserFactory(username="ann"), role=Membership.Role.ADMIN)
    ready_workspace(workspace)
    for i, direction in enumerate(("outbound", "outbound", "inbound")):
        Call.objects.create(workspace=workspace, sid=f"CA{i:032d}", direction=direction)
    Call.objects.create(workspace=other, sid="CA" + "9" * 32, direction="outbound")  # not ours
    agent = AgentFactory(workspace=workspace, name="Front desk")
    connector = PhoneConnectorFactory(workspace=workspace, agent=agent, name="Main line")
    AgentFactory(workspace=workspace, name="Night shift")
    CallSession.objects.create(call_sid="CA" + "1" * 32, workspace=workspace, connector=connector,
                               from_number="+15125550111", stream_token_used_at=timezone.now(),
                               status=CallSession.Status.IN_PROGRESS)
    login(browser_page, live_server, "ann")
    page = browser_page
    page.goto(live_server.url + "/")
    assert page.get_by_test_id("home-phone-state").inner_text() == "Connected"
    assert page.get_by_test_id("home-dialer-calls").inner_text() == "3"
    assert "2 outbound · 1 inbound" in page.get_by_test_id("home-dialer").inner_text()
    assert page.get_by_test_id("home-agent-calls-count").inner_text() == "1"
    live = page.get_by_test_id("home-live")
    assert "+15125550111" in live.inner_text() and "In progress" in live.inner_text()
    agents = page.get_by_test_id("home-agents")
    assert "Main line" in agents.inner_text() and "enabled" in agents.inner_text()
    assert "Night shift" in agents.inner_text() and "No connector" in agents.inner_text()
    with page.expect_navigation():
        agents.get_by_role("link", name="Main line").click()
    assert page.url.endswith(f"/studio/connectors/{connector.pk}/")
