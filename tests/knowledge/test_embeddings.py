"""Optional embeddings (knowledge/embeddings.py) against a local fake OpenAI-compatible endpoint (loopback):
passages embedded off-request by the Celery task after their source changes, stored per passage (binary, no
pgvector column unless PostgreSQL has the extension: test_pgvector.py), the search fuses full-text and vector ranks (reciprocal rank fusion); retrieval works without
embeddings configured or with the endpoint down; another workspace's passages never come back."""
import hashlib
import re

import numpy as np
import pytest
from django.db import connection
from django.test import override_settings

from knowledge import embeddings, services
from knowledge.models import Passage
from knowledge.selectors import passages_search
from tests.fakes.http_fake import JsonHandler, LocalHttpFake

pytestmark = pytest.mark.django_db(transaction=True)  # the task runs after the commit (eager Celery)

DIMENSIONS = 64
# The fake "understands" these as the same meaning (what an embedding model adds to full text).
SYNONYMS = {"refund": "money", "reimburse": "money", "money": "money", "cash": "money"}


def fake_vector(text: str) -> list[float]:
    vector = np.zeros(DIMENSIONS)
    for word in re.findall(r"[a-z]+", text.lower()):
        word = SYNONYMS.get(word, word)
        vector[int(hashlib.sha256(word.encode()).hexdigest(), 16) % DIMENSIONS] += 1.0
    return vector.tolist()


class FakeEmbeddings(LocalHttpFake):
    def __init__(self, status=200):
        self.status, self.requests, self.keys = status, [], []
        fake = self

        class Handler(JsonHandler):
            def do_POST(self):
                body = self.read_json()
                fake.requests.append((self.path, body))
                fake.keys.append(self.headers.get("Authorization"))
                if fake.status != 200:
                    return self.send_json(fake.status, {"error": {"message": "down"}})
                self.send_json(200, {"object": "list", "model": body["model"], "data": [
                    {"object": "embedding", "index": i, "embedding": fake_vector(t)}
                    for i, t in enumerate(body["input"])]})

        self.serve(Handler)


@pytest.fixture
def fake():
    server = FakeEmbeddings().start()
    with override_settings(KNOWLEDGE_EMBEDDINGS_BASE_URL=server.origin + "/v1",
                           KNOWLEDGE_EMBEDDINGS_API_KEY="sk-embed-test", KNOWLEDGE_EMBEDDINGS_MODEL="fake-embed"):
        yield server
    server.stop()


TEXT = ("# Refunds\nWe reimburse the full price within 30 days of delivery.\n\n"
        "# Payment money\nWe take cards. Money, money, money: no cash on delivery.\n\n"
        "# Delivery\nOrders arrive within three days of payment.")


def _kb(workspace, name="Help"):
    kb = services.knowledge_base_create(workspace=workspace, name=name)
    services.source_text_add(knowledge_base=kb, title="Policies", text=TEXT)
    return kb


def test_passages_are_embedded_by_the_task_after_the_commit_and_stored_compactly(fake, workspace):
    kb = _kb(workspace)
    passages = list(Passage.objects.filter(knowledge_base=kb))
    assert passages and all(p.embedding_model == "fake-embed" for p in passages)
    assert all(len(bytes(p.embedding)) == DIMENSIONS * 4 for p in passages)  # float32, no JSON
    assert fake.requests[0][0] == "/v1/embeddings" and fake.keys[0] == "Bearer sk-embed-test"
    # the pgvector column only where PostgreSQL has the extension (test_pgvector.py checks it is filled)
    assert embeddings.pgvector_column(connection) == embeddings.pgvector_installed(connection)
    assert connection.vendor == "postgresql" or not embeddings.pgvector_column(connection)


def test_the_search_fuses_full_text_and_vector_ranks(fake, workspace):
    kb = _kb(workspace)

    def sections(query):
        return [h.text.split(":")[0] for h in passages_search(workspace_id=workspace.pk, query=query,
                                                              knowledge_base_ids=[kb.pk])]

    with override_settings(KNOWLEDGE_EMBEDDINGS_BASE_URL=""):
        full_text = sections("refund after delivery")
    asked = len(fake.requests)
    hybrid = sections("refund after delivery")
    assert full_text == ["Refunds", "Delivery", "Payment money"]
    # the fake embeds "refund" like "money": the Payment passage is nearer the question than Delivery
    assert hybrid == ["Refunds", "Payment money", "Delivery"]
    assert len(fake.requests) == asked + 1 and fake.requests[-1][1]["input"] == ["refund after delivery"]
    assert embeddings.rrf([1, 2, 3], [3, 1]) == [(1, pytest.approx(1 / 61 + 1 / 62)),
                                                 (3, pytest.approx(1 / 63 + 1 / 61)), (2, pytest.approx(1 / 62))]


def test_retrieval_works_without_embeddings_configured_and_with_the_endpoint_down(workspace):
    kb = _kb(workspace)  # no endpoint configured: nothing is queued, nothing embedded
    assert not Passage.objects.filter(knowledge_base=kb, embedding__isnull=False).exists()
    assert passages_search(workspace_id=workspace.pk, query="delivery", knowledge_base_ids=[kb.pk])
    down = FakeEmbeddings(status=503).start()
    try:
        with override_settings(KNOWLEDGE_EMBEDDINGS_BASE_URL=down.origin + "/v1"):
            Passage.objects.filter(knowledge_base=kb).update(embedding=b"\0" * 16, embedding_model="text-embedding-3-small")
            if embeddings.pgvector_column(connection):  # where the SQL ranking reads the pgvector column
                with connection.cursor() as cursor:
                    cursor.execute("UPDATE knowledge_passage SET embedding_vector = '[1,0,0,0]' "
                                   "WHERE knowledge_base_id = %s", [kb.pk])
            hits = passages_search(workspace_id=workspace.pk, query="delivery days", knowledge_base_ids=[kb.pk])
        assert hits and hits[0].text.startswith("Delivery:") and down.requests  # asked, failed, full text
    finally:
        down.stop()


def test_another_workspaces_passages_never_come_back_in_hybrid_search(fake, workspace, other_workspace):
    mine, theirs = _kb(workspace), _kb(other_workspace)
    assert passages_search(workspace_id=workspace.pk, query="refund delivery", knowledge_base_ids=[theirs.pk]) == []
    assert {h.knowledge_base_id for h in passages_search(workspace_id=workspace.pk, query="refund delivery",
                                                          knowledge_base_ids=[mine.pk, theirs.pk])} == {mine.pk}


def test_a_published_snapshot_keeps_the_embeddings(fake, workspace, agent):
    from agents import services as agent_services
    from agents.selectors import draft_get

    kb = _kb(workspace)
    services.version_knowledge_set(draft=draft_get(agent=agent), knowledge_base=kb, used=True)
    agent_services.agent_publish(agent=agent)
    frozen = Passage.objects.filter(snapshot__isnull=False)
    assert frozen.exists() and not frozen.filter(embedding__isnull=True).exists()
