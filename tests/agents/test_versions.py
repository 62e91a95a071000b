import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from agents import selectors, services
from agents.models import AgentVersion, HandoverAction, ImmutableVersionError
from connectors.models import PhoneConnector
from connectors.selectors import connector_version_resolve

from .factories import AgentFactory, HandoverActionFactory, PhoneConnectorFactory, draft_of, published_agent

pytestmark = pytest.mark.django_db


def test_create_agent_makes_one_draft(workspace):
    agent = services.agent_create(workspace=workspace, name="Front desk")
    versions = list(agent.versions.all())
    assert len(versions) == 1
    assert versions[0].state == "draft" and versions[0].number is None
    assert agent.slug == "front-desk"
    assert services.agent_create(workspace=workspace, name="Front desk").slug == "front-desk-2"


def test_only_one_draft_per_agent(workspace):
    agent = AgentFactory(workspace=workspace)
    with pytest.raises(IntegrityError), transaction.atomic():
        AgentVersion.objects.create(agent=agent, state="draft")


def test_publish_copies_draft_and_actions_into_next_number(workspace, admin_user):
    agent = AgentFactory(workspace=workspace)
    draft = draft_of(agent)
    services.agent_draft_update(draft=draft, greeting="Hi there", secrets=["OPENAI_API_KEY"], variables=["COMPANY"])
    services.handover_action_create(draft=draft, name="transfer_to_sales", destination="+31201234567",
                                    description="Sales questions")
    v1 = services.agent_publish(agent=agent, user=admin_user)
    assert (v1.number, v1.state, v1.greeting, v1.published_by) == (1, "published", "Hi there", admin_user)
    assert v1.secrets == ["OPENAI_API_KEY"] and v1.variables == ["COMPANY"]
    assert [a.name for a in v1.actions.all()] == ["transfer_to_sales"]
    # The draft stays editable and separate.
    services.agent_draft_update(draft=draft, greeting="Changed")
    v1.refresh_from_db()
    assert v1.greeting == "Hi there"
    v2 = services.agent_publish(agent=agent)
    assert v2.number == 2 and v2.greeting == "Changed"
    assert HandoverAction.objects.filter(version__agent=agent).count() == 3  # draft, v1, v2


def test_publish_without_changes_is_refused(workspace):
    agent = published_agent(workspace)
    with pytest.raises(services.NothingToPublish):
        services.agent_publish(agent=agent)
    assert agent.versions.filter(state="published").count() == 1


def test_published_version_is_immutable(workspace):
    agent = published_agent(workspace)
    v1 = agent.versions.get(number=1)
    v1.greeting = "tampered"
    with pytest.raises(ImmutableVersionError):
        v1.save()
    with pytest.raises(ImmutableVersionError):
        v1.delete()
    # Even an instance loaded without its state field refuses.
    fresh = AgentVersion.objects.only("id", "greeting").get(pk=v1.pk)
    fresh.greeting = "tampered"
    with pytest.raises(ImmutableVersionError):
        fresh.save()
    with pytest.raises(ImmutableVersionError):
        services.agent_draft_update(draft=v1, greeting="x")
    action = HandoverActionFactory(version=draft_of(agent))
    services.agent_publish(agent=agent)
    published_action = HandoverAction.objects.get(version__number=2, name=action.name)
    published_action.destination = "+31201234568"
    with pytest.raises(ImmutableVersionError):
        published_action.save()
    with pytest.raises(ImmutableVersionError):
        services.handover_action_create(draft=v1, name="transfer_x", destination="+31201234567")
    assert AgentVersion.objects.get(pk=v1.pk).greeting == "Hello from v1"


def test_restore_copies_older_version_into_draft(workspace):
    agent = published_agent(workspace, versions=2)
    draft = draft_of(agent)
    v1 = agent.versions.get(number=1)
    HandoverActionFactory(version=draft, name="transfer_to_support")
    restored = services.agent_version_restore(version=v1)
    assert restored.pk == draft.pk
    assert restored.greeting == "Hello from v1" and restored.restored_from == 1
    assert list(restored.actions.values_list("name", flat=True)) == []
    v3 = services.agent_publish(agent=agent)
    assert v3.number == 3 and v3.greeting == "Hello from v1" and v3.restored_from == 1


def test_diff_lists_changed_fields_and_actions(workspace):
    agent = published_agent(workspace)
    draft = draft_of(agent)
    services.agent_draft_update(draft=draft, instructions="New rules")
    HandoverActionFactory(version=draft, name="transfer_to_sales")
    diff = selectors.version_diff(draft=draft, base=selectors.latest_published_get(agent_id=agent.pk))
    assert [c.field for c in diff.fields] == ["instructions"]
    assert [(a.name, a.change) for a in diff.actions] == [("transfer_to_sales", "added")]


@pytest.mark.parametrize("value,ok", [
    ("+31201234567", True), ("+999123456789", False), ("0201234567", False), ("+31 20 123 4567", False),
    ("+1512555", False), ("+442071838750", True),
])
def test_handover_destination_must_be_valid_e164(workspace, value, ok):
    draft = draft_of(AgentFactory(workspace=workspace))
    if ok:
        services.handover_action_create(draft=draft, name="transfer_to_sales", destination=value)
    else:
        with pytest.raises(ValidationError) as info:
            services.handover_action_create(draft=draft, name="transfer_to_sales", destination=value)
        assert "destination" in info.value.message_dict
        assert not draft.actions.exists()


@pytest.mark.parametrize("name", ["Transfer", "1transfer", "transfer-to-sales", "t", "x" * 65, "transfer to"])
def test_handover_name_must_be_safe_identifier(workspace, name):
    draft = draft_of(AgentFactory(workspace=workspace))
    with pytest.raises(ValidationError) as info:
        services.handover_action_create(draft=draft, name=name, destination="+31201234567")
    assert "name" in info.value.message_dict


def test_handover_name_unique_per_version(workspace):
    draft = draft_of(AgentFactory(workspace=workspace))
    services.handover_action_create(draft=draft, name="transfer_to_sales", destination="+31201234567")
    with pytest.raises(ValidationError):
        services.handover_action_create(draft=draft, name="transfer_to_sales", destination="+442071838750")
    assert draft.actions.count() == 1


def test_published_mode_resolves_newest_published(workspace):
    agent = published_agent(workspace, versions=3)
    connector = PhoneConnectorFactory(workspace=workspace, agent=agent)
    assert connector_version_resolve(connector=connector).number == 3


def test_published_mode_without_published_version_resolves_nothing(workspace):
    connector = PhoneConnectorFactory(workspace=workspace)
    assert connector_version_resolve(connector=connector) is None


def test_draft_mode_resolves_draft(workspace):
    agent = published_agent(workspace)
    connector = PhoneConnectorFactory(workspace=workspace, agent=agent, version_mode=PhoneConnector.VersionMode.DRAFT)
    assert connector_version_resolve(connector=connector).pk == draft_of(agent).pk


def test_pinned_mode_resolves_pinned_even_after_newer_publish(workspace):
    agent = published_agent(workspace, versions=2)
    v1 = agent.versions.get(number=1)
    connector = PhoneConnectorFactory(workspace=workspace, agent=agent, version_mode=PhoneConnector.VersionMode.PINNED,
                                      pinned_version=v1)
    services.agent_draft_update(draft=draft_of(agent), greeting="v3")
    services.agent_publish(agent=agent)
    assert connector_version_resolve(connector=connector).pk == v1.pk
