"""API actions as part of a version: saved on the draft, immutable once published, copied on publish and
restore, in the publish diff, and required from the environment before a connector can go live."""
import pytest
from django.core.exceptions import ValidationError

from agents import selectors, services
from agents.models import ApiAction, AuthConnector, EnvironmentVariable, HandoverAction, ImmutableVersionError
from connectors.selectors import connector_readiness

from .factories import AgentFactory, EnvironmentFactory, PhoneConnectorFactory, draft_of

pytestmark = pytest.mark.django_db

ORDER = dict(description="Look up an order", url="{API_BASE}/orders/{order_id}", auth_connector="shop",
             parameters=[{"name": "order_id", "type": "string", "required": True}], result_pointer="/order/status")


def test_publish_copies_api_actions_and_they_are_immutable(workspace):
    agent = AgentFactory(workspace=workspace)
    draft = draft_of(agent)
    services.api_action_save(draft=draft, name="order_status", **ORDER)
    v1 = services.agent_publish(agent=agent)
    copied = v1.api_actions.get()
    assert (copied.name, copied.url, copied.parameters, copied.auth_connector) == (
        "order_status", ORDER["url"], ORDER["parameters"], "shop")
    assert v1.action_requirements == {"auth_connectors": ["shop"], "variables": ["API_BASE"]}
    copied.url = "https://evil.example/"
    with pytest.raises(ImmutableVersionError):
        copied.save()
    with pytest.raises(ImmutableVersionError):
        copied.delete()
    with pytest.raises(ImmutableVersionError):
        services.api_action_save(draft=v1, name="other", url="https://x.example/")


def test_the_diff_shows_api_action_changes_and_restore_brings_them_back(workspace):
    agent = AgentFactory(workspace=workspace)
    draft = draft_of(agent)
    action = services.api_action_save(draft=draft, name="order_status", **ORDER)
    v1 = services.agent_publish(agent=agent)
    services.api_action_save(draft=draft, action=action, name="order_status", **{**ORDER, "timeout_seconds": 9})
    diff = selectors.version_diff(draft=draft, base=v1)
    assert [(c.name, c.change) for c in diff.actions] == [("order_status", "changed")]
    assert diff.actions[0].new["timeout_seconds"] == 9
    services.api_action_delete(action=action)
    assert draft.action_requirements == {"auth_connectors": [], "variables": []}
    assert [(c.name, c.change) for c in selectors.version_diff(draft=draft, base=v1).actions] == [
        ("order_status", "removed")]
    services.agent_version_restore(version=v1)
    draft.refresh_from_db()
    assert [a.name for a in draft.api_actions.all()] == ["order_status"]
    assert draft.action_requirements["auth_connectors"] == ["shop"]


def test_names_are_unique_across_both_action_kinds(workspace):
    draft = draft_of(AgentFactory(workspace=workspace))
    HandoverAction.objects.create(version=draft, name="transfer_to_sales", destination="+31201234567")
    with pytest.raises(ValidationError) as caught:
        services.api_action_save(draft=draft, name="transfer_to_sales", url="https://x.example/")
    assert "already has an action" in str(caught.value)
    with pytest.raises(ValidationError):
        services.api_action_save(draft=draft, name="x", url="https://x.example/", timeout_seconds=30)
    assert not ApiAction.objects.exists()


def test_a_connector_cannot_go_live_without_the_auth_connector_and_variable_its_actions_name(workspace):
    agent = AgentFactory(workspace=workspace)
    draft = draft_of(agent)
    services.api_action_save(draft=draft, name="order_status", **ORDER)
    env = EnvironmentFactory(workspace=workspace)
    connector = PhoneConnectorFactory(workspace=workspace, agent=agent, environment=env, version_mode="draft")
    _, completeness, problem = connector_readiness(connector=connector)
    assert completeness.missing_auth_connectors == ["shop"] and completeness.missing_variables == ["API_BASE"]
    assert "auth connectors: shop" in problem and "variables: API_BASE" in problem
    EnvironmentVariable.objects.create(environment=env, name="API_BASE", value="https://api.example.com")
    AuthConnector.objects.create(environment=env, name="shop", kind="bearer", secret="tok-123456")
    assert connector_readiness(connector=connector)[2] == ""


def test_readiness_reads_no_action_rows(workspace, django_assert_num_queries):
    agent = AgentFactory(workspace=workspace)
    draft = draft_of(agent)
    services.api_action_save(draft=draft, name="order_status", **ORDER)
    env = EnvironmentFactory(workspace=workspace)
    draft.refresh_from_db()
    with django_assert_num_queries(1):
        assert not selectors.environment_completeness(version=draft, environment=env).complete


def test_the_connector_page_names_the_missing_auth_connector_and_enabling_is_refused(admin_client, workspace):
    from connectors.services import connector_enable

    agent = AgentFactory(workspace=workspace)
    services.api_action_save(draft=draft_of(agent), name="order_status", **ORDER)
    env = EnvironmentFactory(workspace=workspace)
    connector = PhoneConnectorFactory(workspace=workspace, agent=agent, environment=env, version_mode="draft",
                                      enabled=False)
    page = admin_client.get(f"/studio/connectors/{connector.pk}/").content.decode()
    assert "Auth connector <code>shop</code>" in page and "Variable <code>API_BASE</code>" in page
    with pytest.raises(ValidationError) as caught:
        connector_enable(connector=connector)
    assert "auth connectors: shop" in str(caught.value)
