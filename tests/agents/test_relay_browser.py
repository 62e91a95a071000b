"""The ConversationRelay options in a real browser: shown only for that transport, errors next to the field."""
import pytest

from tests.agents.factories import AgentFactory, draft_of
from tests.factories import MembershipFactory, UserFactory, WorkspaceFactory
from tests.fixtures_browser import login
from workspaces.models import Membership


@pytest.mark.browser
def test_relay_options_follow_the_transport_and_explain_a_wrong_voice(browser_page, live_server):
    page = browser_page
    workspace = WorkspaceFactory(name="Acme")
    user = UserFactory(username="relay-admin")
    MembershipFactory(workspace=workspace, user=user, role=Membership.Role.ADMIN)
    agent = AgentFactory(workspace=workspace, name="Front desk")
    login(page, live_server, "relay-admin")
    page.goto(f"{live_server.url}/studio/agents/{agent.pk}/")

    options = page.locator("[data-testid=relay-options]")
    assert not options.is_visible()  # Media Streams: nothing of Twilio's speech to choose
    page.select_option("#id_transport", "conversation_relay")
    assert options.is_visible()
    page.select_option("#id_relay_tts_provider", "Google")
    page.fill("#id_voice", "Joanna-Neural")
    page.fill("#id_relay_lang-0-code", "de-DE")
    page.fill("#id_relay_lang-0-voice", "de-DE-Journey-F")
    page.click("[data-testid=save-draft]")
    error = page.locator("[data-testid=error-voice]")
    error.wait_for()
    assert "Joanna-Neural is a Amazon (Polly) voice, not a Google one" in error.inner_text()

    page.fill("#id_voice", "en-US-Journey-O")
    page.click("[data-testid=save-draft]")
    page.wait_for_selector("text=Draft saved.")
    draft = draft_of(agent)
    assert (draft.transport, draft.relay_tts_provider, draft.voice) == ("conversation_relay", "Google",
                                                                        "en-US-Journey-O")
    assert draft.relay_languages == [{"code": "de-DE", "voice": "de-DE-Journey-F"}]

    page.select_option("#id_transport", "media_streams")
    assert not options.is_visible()
