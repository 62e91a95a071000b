"""The draft form in a real browser: scripted answers and handover rules as rows, the provider against the
transport, and the publish diff in words."""
import pytest

from tests.agents.factories import AgentFactory, HandoverActionFactory, draft_of
from tests.factories import MembershipFactory, UserFactory, WorkspaceFactory
from tests.fixtures_browser import login
from workspaces.models import Membership


def _admin_on_draft(page, live_server):
    workspace = WorkspaceFactory(name="Acme")
    user = UserFactory(username="rows-admin")
    MembershipFactory(workspace=workspace, user=user, role=Membership.Role.ADMIN)
    agent = AgentFactory(workspace=workspace, name="Front desk")
    HandoverActionFactory(version=draft_of(agent), name="transfer_to_sales")
    login(page, live_server, "rows-admin")
    page.goto(f"{live_server.url}/studio/agents/{agent.pk}/")
    return agent


@pytest.mark.browser
def test_answers_and_rules_are_added_as_rows_and_shown_in_words_before_publishing(browser_page, live_server):
    page = browser_page
    agent = _admin_on_draft(page, live_server)
    assert page.locator("textarea[name=scripted_answers_text]").count() == 0  # no JSON to type
    page.fill("#id_answers-0-keywords", "hours, open")
    page.fill("#id_answers-0-answer", "We are open nine to five.")
    page.click("[data-testid=add-answer]")
    page.fill("#id_answers-1-keywords", "price")
    page.fill("#id_answers-1-answer", "It is free.")
    page.fill("#id_rules-0-keyword", "sales")
    page.select_option("#id_rules-0-digit", "1")
    page.select_option("#id_rules-0-action", "transfer_to_sales")
    page.click("[data-testid=save-draft]")
    page.wait_for_selector("text=Draft saved.")
    draft = draft_of(agent)
    assert draft.scripted_answers == [{"keywords": ["hours", "open"], "answer": "We are open nine to five."},
                                      {"keywords": ["price"], "answer": "It is free."}]
    assert draft.handover_rules == [{"keyword": "sales", "digit": "1", "action": "transfer_to_sales"}]

    # Remove one row, then look at the diff.
    page.check("#id_answers-1-DELETE")
    page.click("[data-testid=save-draft]")
    page.wait_for_selector("text=Draft saved.")
    assert [r["answer"] for r in draft_of(agent).scripted_answers] == ["We are open nine to five."]
    page.goto(f"{live_server.url}/studio/agents/{agent.pk}/publish/")
    diff = page.locator("[data-testid=diff-fields]").inner_text()
    assert "“hours”, “open” → We are open nine to five." in diff
    assert "“sales” or key 1 → transfer_to_sales" in diff
    assert "Media Streams (raw audio)" in diff  # the transport as people read it, not media_streams
    assert "['" not in diff and "{'" not in diff and "keywords:" not in diff


@pytest.mark.browser
def test_a_provider_the_transport_cannot_run_is_refused_next_to_the_provider(browser_page, live_server):
    page = browser_page
    agent = _admin_on_draft(page, live_server)
    field = page.locator(".field-provider")
    assert "OpenAI Realtime: Media Streams only; needs the secret OPENAI_API_KEY" in field.inner_text()
    assert "OpenAI Chat: ConversationRelay only; needs the key of the chat vendor chosen below" in field.inner_text()
    page.select_option("#id_transport", "conversation_relay")
    page.select_option("#id_provider", "openai_realtime")
    page.click("[data-testid=save-draft]")
    error = page.locator("[data-testid=error-provider]")
    error.wait_for()
    assert "OpenAI Realtime cannot run over ConversationRelay" in error.inner_text()
    assert draft_of(agent).provider == "scripted"


@pytest.mark.browser
def test_a_connector_is_pinned_from_the_versions_page(browser_page, live_server):
    from connectors.models import PhoneConnector
    from tests.agents.factories import PhoneConnectorFactory, published_agent

    page = browser_page
    workspace = WorkspaceFactory(name="Acme")
    MembershipFactory(workspace=workspace, user=UserFactory(username="pin-admin"), role=Membership.Role.ADMIN)
    agent = published_agent(workspace, versions=2)
    connector = PhoneConnectorFactory(workspace=workspace, agent=agent, name="Main line")
    v1 = agent.versions.get(number=1)
    login(page, live_server, "pin-admin")
    page.goto(f"{live_server.url}/studio/agents/{agent.pk}/versions/")
    with page.expect_navigation():
        page.get_by_test_id(f"pin-1-{connector.pk}").click()
    assert "Main line now answers with v1." in page.content()
    assert page.get_by_test_id("pinned-1").is_visible()
    connector = PhoneConnector.objects.get(pk=connector.pk)
    assert (connector.version_mode, connector.pinned_version_id) == ("pinned", v1.pk)
