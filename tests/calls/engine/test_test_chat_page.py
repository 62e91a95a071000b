"""The Test-in-Studio panel on the agent's Studio page: rendering, scoping, and a real browser conversation."""
import re

import pytest

from agents.models import Environment
from tests.agents.factories import EnvironmentFactory
from tests.factories import MembershipFactory, UserFactory
from tests.fixtures_browser import login
from workspaces.models import Membership

from .conftest import AsgiServer, make_call_setup


@pytest.fixture
def chat_setup(db):
    setup = make_call_setup()
    admin = UserFactory(username="tess")
    MembershipFactory(workspace=setup.workspace, user=admin, role=Membership.Role.ADMIN)
    return setup, admin


def test_panel_lists_only_this_workspaces_versions_and_environments(chat_setup, client):
    setup, admin = chat_setup
    staging = EnvironmentFactory(workspace=setup.workspace, kind=Environment.Kind.STAGING)
    foreign = make_call_setup()  # another workspace's environment must not be offered
    client.force_login(admin)
    html = client.get(f"/studio/agents/{setup.version.agent_id}/").content.decode()
    assert 'data-testid="test-chat"' in html
    versions = re.search(r'name="version".*?</select>', html, re.S).group(0)
    environments = re.search(r'name="environment".*?</select>', html, re.S).group(0)
    assert re.search(rf'<option value="{setup.version.pk}"[^>]*>Draft', versions)
    assert f'<option value="{setup.environment.pk}" ' in environments and f'<option value="{staging.pk}" ' in environments
    assert f'<option value="{foreign.environment.pk}" ' not in environments
    assert f'<option value="{foreign.version.pk}" ' not in versions
    assert "calls/test_chat.js" in html


def test_members_do_not_get_the_panel(chat_setup, client):
    setup, _ = chat_setup
    member = UserFactory()
    MembershipFactory(workspace=setup.workspace, user=member, role=Membership.Role.MEMBER)
    client.force_login(member)
    response = client.get(f"/studio/agents/{setup.version.agent_id}/")
    assert response.status_code == 200
    assert 'data-testid="test-chat"' not in response.content.decode()


@pytest.fixture
def asgi_http_server(transactional_db):
    """The ASGI app with static files (like runserver) so a browser can load the page and open the websocket."""
    from channels.routing import ProtocolTypeRouter, URLRouter
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
    from django.core.asgi import get_asgi_application

    from config.routing import websocket_urlpatterns

    app = ProtocolTypeRouter({"http": ASGIStaticFilesHandler(get_asgi_application()),
                              "websocket": URLRouter(websocket_urlpatterns)})
    server = AsgiServer(app=app).start()
    server.url = f"http://127.0.0.1:{server.port}"
    yield server
    server.stop()


@pytest.mark.browser
def test_admin_talks_to_the_draft_in_the_browser_and_sees_the_handover(_browser, asgi_http_server):
    setup = make_call_setup()
    admin = UserFactory(username="tess")
    MembershipFactory(workspace=setup.workspace, user=admin, role=Membership.Role.ADMIN)
    context = _browser.new_context(base_url=asgi_http_server.url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    try:
        login(page, asgi_http_server, "tess")
        page.goto(f"{asgi_http_server.url}/studio/agents/{setup.version.agent_id}/")
        page.select_option("[data-testid=test-chat-environment]", str(setup.environment.pk))
        page.click("[data-testid=test-chat-start]")
        log = page.locator("[data-testid=test-chat-log]")
        log.get_by_text("Hello, this is Ava.").wait_for()
        page.fill("[data-testid=test-chat-text]", "When are you open?")
        page.click("[data-testid=test-chat-send]")
        log.get_by_text("We are open nine to five.").wait_for()
        page.fill("[data-testid=test-chat-text]", "Can I talk to sales?")
        page.press("[data-testid=test-chat-text]", "Enter")
        log.get_by_text("Handover: transfer_to_sales → +31201234567 (shown, not dialled)").wait_for()
        log.get_by_text("Conversation ended.").wait_for()
        assert not errors
    finally:
        context.close()


@pytest.mark.browser
def test_message_input_is_full_width_and_end_is_hidden_before_a_conversation(browser_page, live_server):
    setup = make_call_setup()
    admin = UserFactory(username="tess")
    MembershipFactory(workspace=setup.workspace, user=admin, role=Membership.Role.ADMIN)
    login(browser_page, live_server, "tess")
    browser_page.goto(f"{live_server.url}/studio/agents/{setup.version.agent_id}/")
    panel = browser_page.locator("[data-testid=test-chat]")
    text = browser_page.locator("[data-testid=test-chat-text]")
    form_width = panel.locator("form.test-chat-input").bounding_box()["width"]
    assert text.bounding_box()["width"] > form_width * 0.6
    assert panel.locator("[data-action=stop]").is_hidden()
    assert panel.locator("[data-testid=test-chat-start]").is_visible()


@pytest.mark.browser
def test_panel_warns_when_the_environment_lacks_what_the_version_needs(browser_page, live_server):
    setup = make_call_setup(secrets_={"CRM_TOKEN": "s3cret-value"}, variables={"COMPANY": "Acme"})
    setup.version.secrets = ["CRM_TOKEN", "OPENAI_API_KEY"]
    setup.version.variables = ["COMPANY", "OPENING_HOURS"]
    setup.version.save()
    complete = EnvironmentFactory(workspace=setup.workspace, kind=Environment.Kind.STAGING)
    for name in ("CRM_TOKEN", "OPENAI_API_KEY"):
        complete.secrets.create(name=name, value="x")
    for name in ("COMPANY", "OPENING_HOURS"):
        complete.variables.create(name=name, value="y")
    admin = UserFactory(username="tess")
    MembershipFactory(workspace=setup.workspace, user=admin, role=Membership.Role.ADMIN)
    login(browser_page, live_server, "tess")
    browser_page.goto(f"{live_server.url}/studio/agents/{setup.version.agent_id}/")
    note = browser_page.locator("[data-testid=test-chat-missing]")
    browser_page.select_option("[data-testid=test-chat-environment]", str(setup.environment.pk))
    note.wait_for()
    text = note.inner_text()
    assert "lacks the secret OPENAI_API_KEY and the variable OPENING_HOURS" in text
    assert "CRM_TOKEN" not in text and "s3cret" not in browser_page.content()
    browser_page.select_option("[data-testid=test-chat-environment]", str(complete.pk))
    note.wait_for(state="hidden")
