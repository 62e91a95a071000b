"""Studio → Knowledge: the list, a knowledge base's page (sources, Try it, agents), adding sources with clear
errors, attaching to a draft; other workspaces' knowledge bases are not found. Query counts are bounded."""
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from agents.selectors import draft_get
from knowledge import services
from knowledge.models import KnowledgeBase, KnowledgeSource, VersionKnowledge

pytestmark = pytest.mark.django_db


@pytest.fixture
def kb(workspace):
    kb = services.knowledge_base_create(workspace=workspace, name="Help")
    services.source_text_add(knowledge_base=kb, title="Policies",
                             text="# Returns\nReturn items within 30 days.\n\n# Shipping\nWe ship in 5 days.")
    return kb


def test_the_list_and_creating_a_knowledge_base(member_client, kb, django_assert_max_num_queries):
    with django_assert_max_num_queries(12):
        page = member_client.get(reverse("knowledge:list"))
    assert page.status_code == 200 and b"Help" in page.content and b'data-testid="nav-knowledge"' in page.content
    response = member_client.post(reverse("knowledge:list"), {"kb-name": "Pricing"})
    new = KnowledgeBase.objects.get(name="Pricing")
    assert response.status_code == 302 and response["Location"] == reverse("knowledge:detail", args=[new.pk])
    again = member_client.post(reverse("knowledge:list"), {"kb-name": "Pricing"})
    assert again.status_code == 400 and b"already has a knowledge base with this name" in again.content


def test_the_knowledge_base_page_lists_sources_agents_and_fetch_status(member_client, kb, agent, workspace,
                                                                         django_assert_max_num_queries):
    KnowledgeSource.objects.create(knowledge_base=kb, kind="url", title="FAQ", url="https://example.com/faq",
                                   fetch_status="failed", fetch_error="The page answered HTTP 503.")
    from tests.agents.factories import AgentFactory

    for i in range(3):
        AgentFactory(workspace=workspace, name=f"Agent {i}")
    with django_assert_max_num_queries(14):
        page = member_client.get(reverse("knowledge:detail", args=[kb.pk]))
    content = page.content.decode()
    assert page.status_code == 200
    assert "Policies" in content and "The page answered HTTP 503." in content and "Support" in content
    assert 'hx-post="%s"' % reverse("knowledge:try", args=[kb.pk]) in content


def test_try_it_shows_the_passages_and_their_scores(member_client, kb):
    response = member_client.post(reverse("knowledge:try", args=[kb.pk]), {"question": "can I return it?"},
                                  HTTP_HX_REQUEST="true")
    content = response.content.decode()
    assert response.status_code == 200 and 'data-testid="try-hit"' in content
    assert "Returns: Return items within 30 days." in content and "passage 1" in content
    assert 'class="pill"' in content  # the score
    empty = member_client.post(reverse("knowledge:try", args=[kb.pk]), {"question": "zebra"})
    assert b"No passage matches this question." in empty.content


def test_adding_text_and_a_file_and_a_bad_file_gets_a_clear_message(member_client, kb):
    response = member_client.post(reverse("knowledge:add_text", args=[kb.pk]),
                                  {"text-title": "Hours", "text-text": "Open 9 to 5."})
    assert response.status_code == 302 and kb.sources.filter(title="Hours").exists()
    upload = SimpleUploadedFile("notes.md", b"# Pets\nDogs are welcome.", content_type="text/markdown")
    response = member_client.post(reverse("knowledge:add_file", args=[kb.pk]), {"file-file": upload})
    assert response.status_code == 302 and kb.sources.filter(title="notes.md", passage_count=1).exists()
    bad = SimpleUploadedFile("deck.pptx", b"PK", content_type="application/octet-stream")
    response = member_client.post(reverse("knowledge:add_file", args=[kb.pk]), {"file-file": bad})
    assert response.status_code == 400
    assert "deck.pptx is not a file we can read" in response.content.decode()
    assert kb.sources.count() == 3


def test_attaching_to_an_agents_draft_from_the_knowledge_page(member_client, kb, agent):
    response = member_client.post(reverse("knowledge:attach", args=[kb.pk]),
                                  {"agent": agent.pk, "used": "1", "every_turn": "1"})
    assert response.status_code == 302
    link = VersionKnowledge.objects.get(version=draft_get(agent=agent))
    assert link.knowledge_base == kb and link.every_turn
    member_client.post(reverse("knowledge:attach", args=[kb.pk]), {"agent": agent.pk})
    assert not VersionKnowledge.objects.exists()


def test_another_workspaces_knowledge_base_is_not_found(other_admin_user, kb):
    from django.test import Client

    client = Client()
    client.force_login(other_admin_user)
    assert client.get(reverse("knowledge:detail", args=[kb.pk])).status_code == 404
    assert client.post(reverse("knowledge:try", args=[kb.pk]), {"question": "returns"}).status_code == 404
