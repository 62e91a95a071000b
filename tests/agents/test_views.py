"""Studio pages: the admin's flow, form errors, members read-only, and cross-workspace access on every page."""
import pytest

from agents.models import Agent, AgentVersion, EnvironmentSecret, EnvironmentVariable, HandoverAction
from connectors.models import PhoneConnector
from tests.agents.factories import (
    EnvironmentFactory,
    EnvironmentSecretFactory,
    EnvironmentVariableFactory,
    HandoverActionFactory,
    PhoneConnectorFactory,
    draft_of,
    published_agent,
    rows_post,
)
from tests.factories import PhoneNumberFactory

pytestmark = pytest.mark.django_db


def test_admin_builds_and_publishes_an_agent(admin_client, workspace):
    response = admin_client.post("/studio/agents/", {"name": "Front desk"})
    agent = Agent.objects.get(workspace=workspace)
    assert response["Location"] == f"/studio/agents/{agent.pk}/"
    response = admin_client.post(f"/studio/agents/{agent.pk}/actions/", {
        "type": "phone", "name": "transfer_to_sales", "destination": "+31201234567", "description": "Sales"})
    assert response.status_code == 302
    response = admin_client.post(f"/studio/agents/{agent.pk}/", {
        "caller_name": "Acme", "greeting": "Welcome to Acme", "instructions": "Help callers", "language": "en-US",
        "voice": "", "transport": "media_streams", "provider": "scripted", "variables_text": "COMPANY",
        "secrets_text": "OPENAI_API_KEY, CRM_TOKEN",
        **rows_post("answers", {"keywords": "hours", "answer": "9 to 5"}, {}),
        **rows_post("rules", {"digit": "1", "action": "transfer_to_sales"}),
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    draft = draft_of(agent)
    assert draft.secrets == ["OPENAI_API_KEY", "CRM_TOKEN"] and draft.scripted_answers == [
        {"keywords": ["hours"], "answer": "9 to 5"}]
    assert draft.handover_rules == [{"digit": "1", "action": "transfer_to_sales"}]
    page = admin_client.get(f"/studio/agents/{agent.pk}/publish/").content.decode()
    assert "Welcome to Acme" in page and "transfer_to_sales" in page and "Publish v1" in page
    response = admin_client.post(f"/studio/agents/{agent.pk}/publish/")
    assert response.status_code == 302
    v1 = AgentVersion.objects.get(agent=agent, number=1)
    assert v1.greeting == "Welcome to Acme" and v1.actions.get().destination == "+31201234567"
    # Nothing changed since: the confirmation page says so and offers no button.
    page = admin_client.get(f"/studio/agents/{agent.pk}/publish/").content.decode()
    assert "nothing to publish" in page and "confirm-publish" not in page


def test_publish_page_shows_diff_against_latest(admin_client, workspace):
    agent = published_agent(workspace, versions=2)
    draft = draft_of(agent)
    draft.greeting = "Brand new greeting"
    draft.save()
    page = admin_client.get(f"/studio/agents/{agent.pk}/publish/").content.decode()
    assert "v2" in page and "Hello from v2" in page and "Brand new greeting" in page and "Publish v3" in page


def test_bad_action_input_keeps_values_and_explains(admin_client, workspace):
    agent = published_agent(workspace)
    response = admin_client.post(f"/studio/agents/{agent.pk}/actions/", {
        "type": "phone", "name": "Transfer Sales", "destination": "0201234567", "description": "keep me"})
    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-testid="error-name"' in page and 'data-testid="error-destination"' in page
    assert "keep me" in page and "0201234567" in page
    assert not HandoverAction.objects.exists()
    HandoverActionFactory(version=draft_of(agent), name="transfer_to_sales")
    response = admin_client.post(f"/studio/agents/{agent.pk}/actions/", {
        "type": "phone", "name": "transfer_to_sales", "destination": "+31201234567"})
    assert "already has an action with this name" in response.content.decode()


def test_an_incomplete_scripted_answer_row_is_explained_and_nothing_is_saved(admin_client, workspace):
    agent = published_agent(workspace)
    before = draft_of(agent).scripted_answers
    response = admin_client.post(f"/studio/agents/{agent.pk}/", {
        "caller_name": "x", "language": "en-US", "transport": "media_streams", "provider": "scripted",
        **rows_post("answers", {"keywords": "hours", "answer": ""})})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="error-answers-0-answer"' in html and "Enter the answer the agent gives." in html
    assert draft_of(agent).scripted_answers == before


def test_rows_are_removed_with_their_remove_box(admin_client, workspace):
    agent = published_agent(workspace)
    data = {"caller_name": "x", "language": "en-US", "transport": "media_streams", "provider": "scripted"}
    admin_client.post(f"/studio/agents/{agent.pk}/", {**data, **rows_post(
        "answers", {"keywords": "hours, open", "answer": "9 to 5"}, {"keywords": "price", "answer": "Free"})})
    assert [r["answer"] for r in draft_of(agent).scripted_answers] == ["9 to 5", "Free"]
    page = admin_client.get(f"/studio/agents/{agent.pk}/").content.decode()
    assert 'value="hours, open"' in page and "Scripted answers (JSON)" not in page
    admin_client.post(f"/studio/agents/{agent.pk}/", {**data, **rows_post(
        "answers", {"keywords": "hours, open", "answer": "9 to 5", "DELETE": "on"},
        {"keywords": "price", "answer": "Free"}, initial=2)})
    assert draft_of(agent).scripted_answers == [{"keywords": ["price"], "answer": "Free"}]


def test_handover_rules_naming_an_action_that_does_not_exist_are_refused(admin_client, workspace):
    agent = published_agent(workspace)
    draft = draft_of(agent)
    HandoverActionFactory(version=draft, name="transfer_to_sales")
    data = {"caller_name": "x", "language": "en-US", "transport": "media_streams", "provider": "scripted"}
    response = admin_client.post(f"/studio/agents/{agent.pk}/", {
        **data, **rows_post("rules", {"keyword": "billing", "action": "transfer_to_billing"})})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="error-rules-0-action"' in html
    assert "This version has no action named transfer_to_billing" in html
    assert draft_of(agent).handover_rules == draft.handover_rules
    page = admin_client.get(f"/studio/agents/{agent.pk}/").content.decode()
    assert '<option value="transfer_to_sales">transfer_to_sales</option>' in page  # chosen from the actions
    response = admin_client.post(f"/studio/agents/{agent.pk}/", {
        **data, **rows_post("rules", {"keyword": "sales", "action": "transfer_to_sales"},
                            {"digit": "9", "action": "hangup"})})  # hangup: built in
    assert response.status_code == 302
    assert draft_of(agent).handover_rules == [{"keyword": "sales", "action": "transfer_to_sales"},
                                              {"digit": "9", "action": "hangup"}]


def test_restore_from_versions_page(admin_client, workspace):
    agent = published_agent(workspace, versions=2)
    v1 = agent.versions.get(number=1)
    page = admin_client.get(f"/studio/agents/{agent.pk}/versions/").content.decode()
    assert "restore-1" in page
    admin_client.post(f"/studio/agents/{agent.pk}/versions/{v1.pk}/restore/")
    assert draft_of(agent).greeting == "Hello from v1"


def test_member_reads_but_cannot_change(member_client, workspace):
    agent = published_agent(workspace)
    assert member_client.get(f"/studio/agents/{agent.pk}/").status_code == 200
    assert member_client.post(f"/studio/agents/{agent.pk}/publish/").status_code == 403
    assert member_client.post("/studio/agents/", {"name": "x"}).status_code == 403
    assert member_client.get("/studio/connectors/new/").status_code == 403


def test_connector_create_flow_shows_webhook_url_and_steps(admin_client, workspace):
    agent = published_agent(workspace)
    admin_client.get("/studio/connectors/new/")  # creates the environments
    env = workspace.environments.get(kind="production")
    page = admin_client.get("/studio/connectors/new/").content.decode()
    for label in ("Twilio", "Development", "Staging", "Production", "Published", "Draft", "Pinned"):
        assert label in page
    response = admin_client.post("/studio/connectors/new/", {
        "type": "twilio", "agent": agent.pk, "environment": env.pk, "version_mode": "published"})
    connector = PhoneConnector.objects.get()
    assert response["Location"] == f"/studio/connectors/{connector.pk}/"
    assert connector.enabled and len(connector.identifier) >= 32
    page = admin_client.get(response["Location"]).content.decode()
    assert f"https://calls.example.test/v1/agents/{connector.identifier}/twilio-config" in page
    assert "A call comes in" in page and "Webhook" in page and "HTTP GET" in page


def test_pinned_mode_needs_a_version_of_that_agent(admin_client, workspace):
    agent = published_agent(workspace)
    other_agent = published_agent(workspace)
    env = EnvironmentFactory(workspace=workspace)
    response = admin_client.post("/studio/connectors/new/", {
        "type": "twilio", "agent": agent.pk, "environment": env.pk, "version_mode": "pinned",
        "pinned_version": other_agent.versions.get(number=1).pk})
    assert response.status_code == 200
    assert 'data-testid="error-pinned_version"' in response.content.decode()
    assert not PhoneConnector.objects.exists()


# ---------------------------------------------------------------------------
# Cross-workspace: an admin of another workspace gets 404 (ids in URL) or a form error (ids in fields).


@pytest.fixture
def foreign(workspace):
    """Objects of `workspace`, attacked by `other_client` (admin of `other_workspace`)."""
    agent = published_agent(workspace, versions=2)
    action = HandoverActionFactory(version=draft_of(agent), name="transfer_to_sales")
    env = EnvironmentFactory(workspace=workspace, kind="production")
    secret = EnvironmentSecretFactory(environment=env, name="OPENAI_API_KEY")
    variable = EnvironmentVariableFactory(environment=env, name="COMPANY", value="Acme")
    from agents.models import AuthConnector

    auth = AuthConnector.objects.create(environment=env, name="crm_api", kind="bearer", secret="tok-123456")
    connector = PhoneConnectorFactory(workspace=workspace, agent=agent, environment=env)
    number = PhoneNumberFactory(workspace=workspace)
    from connectors.models import ConnectorNumber

    link = ConnectorNumber.objects.create(connector=connector, phone_number=number)
    return {"agent": agent, "action": action, "version": agent.versions.get(number=1), "env": env, "secret": secret,
            "variable": variable, "auth": auth, "connector": connector, "number": number, "link": link}


def test_cross_workspace_pages_are_404(other_client, foreign):
    f = foreign
    a, c = f["agent"].pk, f["connector"].pk
    gets = [
        f"/studio/agents/{a}/", f"/studio/agents/{a}/actions/", f"/studio/agents/{a}/actions/{f['action'].pk}/",
        f"/studio/agents/{a}/versions/", f"/studio/agents/{a}/versions/{f['version'].pk}/",
        f"/studio/agents/{a}/publish/", f"/studio/environments/production/auth-connectors/{f['auth'].pk}/",
        f"/studio/connectors/{c}/", f"/studio/connectors/{c}/edit/",
    ]
    for url in gets:
        assert other_client.get(url).status_code == 404, url
    posts = [
        f"/studio/agents/{a}/", f"/studio/agents/{a}/actions/", f"/studio/agents/{a}/actions/{f['action'].pk}/delete/",
        f"/studio/agents/{a}/publish/", f"/studio/agents/{a}/versions/{f['version'].pk}/restore/",
        f"/studio/environments/production/secrets/{f['secret'].pk}/delete/",
        f"/studio/environments/production/variables/{f['variable'].pk}/delete/",
        f"/studio/environments/production/auth-connectors/{f['auth'].pk}/delete/",
        f"/studio/connectors/{c}/enable/", f"/studio/connectors/{c}/disable/", f"/studio/connectors/{c}/alert/clear/",
        f"/studio/connectors/{c}/numbers/attach/", f"/studio/connectors/{c}/numbers/{f['link'].pk}/detach/",
        f"/studio/connectors/{c}/numbers/check/",
    ]
    for url in posts:
        assert other_client.post(url, {"name": "x"}).status_code == 404, url
    # Nothing changed.
    assert AgentVersion.objects.filter(agent=f["agent"], state="published").count() == 2
    assert EnvironmentSecret.objects.filter(pk=f["secret"].pk).exists()
    assert EnvironmentVariable.objects.filter(pk=f["variable"].pk).exists()
    f["connector"].refresh_from_db()
    assert f["connector"].enabled


def test_cross_workspace_lists_show_nothing_foreign(other_client, foreign):
    for url in ["/studio/agents/", "/studio/connectors/", "/studio/environments/production/",
                "/studio/environments/"]:
        response = other_client.get(url)
        assert response.status_code == 200, url
        page = response.content.decode()
        assert foreign["agent"].name not in page and "OPENAI_API_KEY" not in page and "COMPANY" not in page, url
        assert foreign["connector"].identifier not in page


def test_cross_workspace_ids_in_form_fields_are_refused(other_client, other_workspace, foreign):
    own_agent = published_agent(other_workspace)
    own_env = EnvironmentFactory(workspace=other_workspace)
    # Foreign agent / environment / pinned version in the connector form.
    for data in [
        {"agent": foreign["agent"].pk, "environment": own_env.pk, "version_mode": "published"},
        {"agent": own_agent.pk, "environment": foreign["env"].pk, "version_mode": "published"},
        {"agent": own_agent.pk, "environment": own_env.pk, "version_mode": "pinned",
         "pinned_version": foreign["version"].pk},
    ]:
        response = other_client.post("/studio/connectors/new/", {"type": "twilio", **data})
        assert response.status_code == 200 and "errorlist" in response.content.decode()
    assert not PhoneConnector.objects.filter(workspace=other_workspace).exists()
    # Foreign number attached to an own connector.
    own_connector = PhoneConnectorFactory(workspace=other_workspace, agent=own_agent, environment=own_env)
    response = other_client.post(f"/studio/connectors/{own_connector.pk}/numbers/attach/",
                                 {"phone_number": foreign["number"].pk})
    assert response.status_code == 404
    assert foreign["link"].connector_id == foreign["connector"].pk


def test_pages_need_login(client, foreign):
    for url in ["/studio/agents/", "/studio/environments/", "/studio/connectors/",
                f"/studio/connectors/{foreign['connector'].pk}/"]:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/"), url


def test_sidebar_has_studio_links(admin_client):
    page = admin_client.get("/studio/agents/").content.decode()
    assert 'href="/studio/agents/"' in page and 'href="/studio/environments/"' in page
    assert 'href="/studio/connectors/"' in page


def test_editing_a_connector_into_an_impossible_setup_disables_it(admin_client, workspace):
    agent = published_agent(workspace)
    unpublished = published_agent(workspace, versions=0)
    env = EnvironmentFactory(workspace=workspace)
    connector = PhoneConnectorFactory(workspace=workspace, agent=agent, environment=env)
    response = admin_client.post(f"/studio/connectors/{connector.pk}/edit/", {
        "type": "twilio", "agent": unpublished.pk, "environment": env.pk, "version_mode": "published"}, follow=True)
    connector.refresh_from_db()
    assert connector.agent == unpublished and not connector.enabled
    assert "disabled" in response.content.decode()


def test_publish_diff_shows_lists_readably(admin_client, workspace):
    agent = published_agent(workspace)
    draft = draft_of(agent)
    draft.secrets = ["OPENAI_API_KEY", "CRM_TOKEN"]
    draft.save()
    page = admin_client.get(f"/studio/agents/{agent.pk}/publish/").content.decode()
    assert "OPENAI_API_KEY, CRM_TOKEN" in page and "[&#x27;" not in page


def test_provider_that_cannot_run_over_the_transport_is_explained(admin_client, workspace):
    """OpenAI Chat is text-only: over Media Streams every call would only hear the apology."""
    agent = published_agent(workspace)
    response = admin_client.post(f"/studio/agents/{agent.pk}/", {
        "caller_name": "x", "language": "en-US", "transport": "media_streams", "provider": "openai_chat",
        "greeting": "keep me"})
    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-testid="error-provider"' in page and "ConversationRelay" in page and "keep me" in page
    assert draft_of(agent).provider == "scripted"
    response = admin_client.post(f"/studio/agents/{agent.pk}/", {
        "caller_name": "x", "language": "en-US", "transport": "conversation_relay", "provider": "openai_chat"})
    assert response.status_code == 302
    assert draft_of(agent).provider == "openai_chat"


def test_scripted_answer_audio_must_be_an_https_url(admin_client, workspace):
    agent = published_agent(workspace)
    data = {"caller_name": "x", "language": "en-US", "transport": "conversation_relay", "provider": "scripted"}
    response = admin_client.post(f"/studio/agents/{agent.pk}/", {
        **data, **rows_post("answers", {"keywords": "jingle", "answer": "Hi", "play": "ftp://x/y.mp3"})})
    assert response.status_code == 200
    assert 'data-testid="error-answers-0-play"' in response.content.decode()
    response = admin_client.post(f"/studio/agents/{agent.pk}/", {
        **data, **rows_post("answers", {"keywords": "jingle", "answer": "Hi", "play": "https://x.test/j.mp3"})})
    assert response.status_code == 302
    assert draft_of(agent).scripted_answers[0]["play"] == "https://x.test/j.mp3"


def test_pinning_is_scoped_to_the_workspace_and_the_agents_published_versions(admin_client, workspace):
    from tests.factories import WorkspaceFactory

    agent = published_agent(workspace)
    connector = PhoneConnectorFactory(workspace=workspace, agent=agent)
    other_agent = published_agent(WorkspaceFactory())
    foreign = PhoneConnectorFactory(workspace=other_agent.workspace, agent=other_agent)
    v1 = agent.versions.get(number=1)
    assert admin_client.post(f"/studio/connectors/{foreign.pk}/pin/",
                             {"version_id": other_agent.versions.get(number=1).pk}).status_code == 404
    assert admin_client.post(f"/studio/connectors/{connector.pk}/pin/",
                             {"version_id": other_agent.versions.get(number=1).pk}).status_code == 404
    response = admin_client.post(f"/studio/connectors/{connector.pk}/pin/", {"version_id": draft_of(agent).pk},
                                 follow=True)
    assert "Choose a published version" in response.content.decode()
    assert PhoneConnector.objects.get(pk=connector.pk).version_mode == "published"
    admin_client.post(f"/studio/connectors/{connector.pk}/pin/", {"version_id": v1.pk})
    assert PhoneConnector.objects.get(pk=connector.pk).pinned_version_id == v1.pk


def test_a_scripted_rule_can_run_an_api_action_with_fixed_parameters_edited_as_a_row(admin_client, workspace):
    from agents.models import ApiAction

    agent = published_agent(workspace)
    ApiAction.objects.create(version=draft_of(agent), name="order_status", url="https://api.example.com/{order_id}")
    data = {"caller_name": "x", "language": "en-US", "transport": "media_streams", "provider": "scripted"}
    response = admin_client.post(f"/studio/agents/{agent.pk}/", {**data, **rows_post("rules", {
        "keyword": "order", "action": "order_status", "parameters": "[1, 2]", "field": "order"})})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Enter a JSON object of names to values" in html and "A JSON pointer such as" in html
    response = admin_client.post(f"/studio/agents/{agent.pk}/", {**data, **rows_post("rules", {
        "keyword": "order", "action": "order_status", "parameters": '{"order_id": "42"}', "field": "/status",
        "say": "Your order is {result}."})})
    assert response.status_code == 302
    rule = {"keyword": "order", "action": "order_status", "parameters": {"order_id": "42"}, "field": "/status",
            "say": "Your order is {result}."}
    assert draft_of(agent).handover_rules == [rule]
    page = admin_client.get(f"/studio/agents/{agent.pk}/").content.decode()
    assert 'value="{&quot;order_id&quot;: &quot;42&quot;}"' in page and 'value="/status"' in page
