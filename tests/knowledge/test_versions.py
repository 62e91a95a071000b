"""A published version answers from what it was published with: publishing freezes the knowledge its draft
uses; later edits change the draft, not the live agent; the diff shows knowledge changes."""
import pytest

from agents import services as agent_services
from agents.models import ImmutableVersionError
from agents.selectors import draft_get, version_diff
from knowledge import services
from knowledge.models import KnowledgeSnapshot, VersionKnowledge
from knowledge.selectors import version_knowledge_scope

pytestmark = pytest.mark.django_db


@pytest.fixture
def kb(workspace):
    kb = services.knowledge_base_create(workspace=workspace, name="Help")
    services.source_text_add(knowledge_base=kb, title="Policies", text="# Returns\nReturn items within 30 days.")
    return kb


def _answers(version, question):
    return [h.text for h in version_knowledge_scope(version=version).search(question)]


def test_publishing_freezes_the_knowledge_and_later_edits_change_only_the_draft(agent, kb):
    draft = draft_get(agent=agent)
    services.version_knowledge_set(draft=draft, knowledge_base=kb, used=True)
    v1 = agent_services.agent_publish(agent=agent)
    link = VersionKnowledge.objects.get(version=v1)
    assert link.snapshot is not None and link.snapshot.passage_count == 1

    source = kb.sources.get()
    services.source_text_update(source=source, title="Policies", text="# Returns\nReturn items within 14 days.")
    assert _answers(v1, "return items") == ["Returns: Return items within 30 days."]
    assert _answers(draft, "return items") == ["Returns: Return items within 14 days."]

    diff = version_diff(draft=draft, base=v1)
    [change] = diff.actions
    assert (change.name, change.change) == ("knowledge: Help", "changed")
    assert "its content was edited" in change.new["destination"]
    v2 = agent_services.agent_publish(agent=agent)
    assert _answers(v2, "return items") == ["Returns: Return items within 14 days."]
    assert _answers(v1, "return items") == ["Returns: Return items within 30 days."]


def test_the_diff_shows_a_knowledge_base_added_and_publishing_it_is_a_change(agent, kb):
    v1 = agent_services.agent_publish(agent=agent)
    draft = draft_get(agent=agent)
    assert version_diff(draft=draft, base=v1).empty
    services.version_knowledge_set(draft=draft, knowledge_base=kb, used=True, every_turn=True)
    diff = version_diff(draft=draft, base=v1)
    assert [(a.name, a.change) for a in diff.actions] == [("knowledge: Help", "added")]
    assert "every caller turn" in diff.actions[0].new["destination"]
    v2 = agent_services.agent_publish(agent=agent)
    scope = version_knowledge_scope(version=v2)
    assert scope.every_turn and scope.snapshot_ids and not scope.knowledge_base_ids
    services.version_knowledge_set(draft=draft, knowledge_base=kb, used=False)
    assert [(a.name, a.change) for a in version_diff(draft=draft, base=v2).actions] == [("knowledge: Help", "removed")]


def test_an_unchanged_knowledge_base_reuses_its_snapshot(agent, kb):
    services.version_knowledge_set(draft=draft_get(agent=agent), knowledge_base=kb, used=True)
    v1 = agent_services.agent_publish(agent=agent)
    agent_services.agent_draft_update(draft=draft_get(agent=agent), greeting="Hi there")
    v2 = agent_services.agent_publish(agent=agent)
    assert KnowledgeSnapshot.objects.count() == 1
    assert VersionKnowledge.objects.get(version=v1).snapshot_id == VersionKnowledge.objects.get(version=v2).snapshot_id


def test_a_published_versions_knowledge_cannot_be_changed(agent, kb):
    services.version_knowledge_set(draft=draft_get(agent=agent), knowledge_base=kb, used=True)
    v1 = agent_services.agent_publish(agent=agent)
    link = VersionKnowledge.objects.get(version=v1)
    with pytest.raises(ImmutableVersionError):
        link.every_turn = True
        link.save()
    with pytest.raises(ImmutableVersionError):
        link.delete()
    with pytest.raises(ImmutableVersionError):
        services.version_knowledge_set(draft=v1, knowledge_base=kb, used=False)


def test_deleting_the_knowledge_base_keeps_the_published_versions_answers(agent, kb):
    draft = draft_get(agent=agent)
    services.version_knowledge_set(draft=draft, knowledge_base=kb, used=True)
    v1 = agent_services.agent_publish(agent=agent)
    services.knowledge_base_delete(knowledge_base=kb)
    assert _answers(v1, "return") == ["Returns: Return items within 30 days."]
    assert not VersionKnowledge.objects.filter(version=draft).exists()


def test_restoring_a_version_gives_the_draft_its_knowledge_bases_live(agent, kb, workspace):
    draft = draft_get(agent=agent)
    services.version_knowledge_set(draft=draft, knowledge_base=kb, used=True)
    v1 = agent_services.agent_publish(agent=agent)
    other = services.knowledge_base_create(workspace=workspace, name="Other")
    services.version_knowledge_set(draft=draft, knowledge_base=kb, used=False)
    services.version_knowledge_set(draft=draft, knowledge_base=other, used=True)
    agent_services.agent_version_restore(version=v1)
    links = list(VersionKnowledge.objects.filter(version=draft))
    assert [(link.knowledge_base_id, link.snapshot_id) for link in links] == [(kb.pk, None)]


def test_a_new_draft_after_publishing_uses_the_same_knowledge_bases(agent, kb):
    draft = draft_get(agent=agent)
    services.version_knowledge_set(draft=draft, knowledge_base=kb, used=True, every_turn=True)
    agent_services.agent_publish(agent=agent)
    draft.delete()
    new_draft = agent_services.agent_draft_ensure(agent=agent)
    link = VersionKnowledge.objects.get(version=new_draft)
    assert (link.knowledge_base_id, link.snapshot_id, link.every_turn) == (kb.pk, None, True)


def test_a_knowledge_base_of_another_workspace_cannot_be_attached(agent, other_workspace):
    from django.core.exceptions import ValidationError

    theirs = services.knowledge_base_create(workspace=other_workspace, name="Theirs")
    with pytest.raises(ValidationError):
        services.version_knowledge_set(draft=draft_get(agent=agent), knowledge_base=theirs, used=True)
