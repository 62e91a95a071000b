"""The agents' version page lists the knowledge bases the version uses, with links: a draft's live knowledge base,
a published version's frozen copy (its own page: passages, the versions answering from it). Another workspace's
copy is not found."""
import pytest
from django.urls import reverse

from agents import services as agent_services
from agents.selectors import draft_get
from knowledge import services
from knowledge.models import VersionKnowledge

pytestmark = pytest.mark.django_db


@pytest.fixture
def kb(workspace):
    kb = services.knowledge_base_create(workspace=workspace, name="Help")
    services.source_text_add(knowledge_base=kb, title="Policies", text="# Returns\nReturn items within 30 days.")
    return kb


def _version_page(client, version):
    return client.get(reverse("agents:version", args=[version.agent_id, version.pk]))


def test_a_drafts_page_links_its_live_knowledge_base(member_client, agent, kb):
    draft = draft_get(agent=agent)
    assert "None" in _version_page(member_client, draft).content.decode().split('data-testid="version-knowledge"')[1]
    services.version_knowledge_set(draft=draft, knowledge_base=kb, used=True, every_turn=True)
    page = _version_page(member_client, draft)
    content = page.content.decode()
    assert page.status_code == 200
    assert f'href="{reverse("knowledge:detail", args=[kb.pk])}">Help</a>' in content
    assert "looked up every caller turn" in content and "live: edits apply to this draft at once" in content


def test_a_published_versions_page_links_the_copy_it_answers_from(member_client, agent, kb,
                                                                  django_assert_max_num_queries):
    services.version_knowledge_set(draft=draft_get(agent=agent), knowledge_base=kb, used=True)
    v1 = agent_services.agent_publish(agent=agent)
    snapshot = VersionKnowledge.objects.get(version=v1).snapshot
    content = _version_page(member_client, v1).content.decode()
    assert f'href="{reverse("knowledge:detail", args=[kb.pk])}">Help</a>' in content
    assert f'href="{reverse("knowledge:snapshot", args=[snapshot.pk])}" data-testid="version-snapshot"' in content
    with django_assert_max_num_queries(12):
        page = member_client.get(reverse("knowledge:snapshot", args=[snapshot.pk]))
    snapshot_page = page.content.decode()
    assert page.status_code == 200 and "Return items within 30 days." in snapshot_page
    assert f'href="{reverse("agents:version", args=[agent.pk, v1.pk])}"' in snapshot_page
    # the knowledge base's page links the published version and its copy too
    kb_page = member_client.get(reverse("knowledge:detail", args=[kb.pk])).content.decode()
    assert f'href="{reverse("knowledge:snapshot", args=[snapshot.pk])}"' in kb_page


def test_another_workspaces_copy_is_not_found(other_client, agent, kb):
    services.version_knowledge_set(draft=draft_get(agent=agent), knowledge_base=kb, used=True)
    v1 = agent_services.agent_publish(agent=agent)
    snapshot = VersionKnowledge.objects.get(version=v1).snapshot
    assert other_client.get(reverse("knowledge:snapshot", args=[snapshot.pk])).status_code == 404
