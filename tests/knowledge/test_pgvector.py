"""The pgvector path of the optional embeddings (knowledge/embeddings.py), on PostgreSQL where the `vector`
extension is available (migration 0004 creates it and adds `knowledge_passage.embedding_vector`): the column is
filled by the task and copied into snapshots, hybrid ranking through pgvector's `<=>` in SQL gives the same
passages as the numpy path on the fake embeddings, another workspace's passages never come back.

Skipped elsewhere (SQLite, or PostgreSQL without pgvector as in CI): there the numpy path of test_embeddings.py
is the one that runs. To run it, install pgvector into the server and set DATABASE_URL (docs/knowledge.md)."""
import json

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from knowledge import embeddings, search, services
from knowledge.models import Passage
from knowledge.selectors import passages_search
from tests.knowledge.conftest import MANUAL, QUESTIONS
from tests.knowledge.test_embeddings import DIMENSIONS, _kb, fake  # noqa: F401 (fake: the fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fake")]  # the loopback endpoint


@pytest.fixture(autouse=True)
def _pgvector_column(db):
    if connection.vendor != "postgresql":
        pytest.skip("pgvector is PostgreSQL's: this database is " + connection.vendor)
    if not embeddings.pgvector_column(connection):
        pytest.skip("the PostgreSQL server has no `vector` extension (pgvector), so migration 0004 added no "
                    "embedding_vector column; the numpy path (test_embeddings.py) is the one in use")


def _vectors(**filters) -> dict[int, np.ndarray]:
    ids = list(Passage.objects.filter(**filters).values_list("id", flat=True))
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, embedding_vector::text FROM knowledge_passage WHERE id = ANY(%s) "
                       "AND embedding_vector IS NOT NULL", [ids])
        return {pk: np.asarray(json.loads(text), dtype=np.float32) for pk, text in cursor.fetchall()}


def test_the_vector_column_is_filled_by_the_task_and_copied_into_the_snapshot(workspace, agent):
    from agents import services as agent_services
    from agents.selectors import draft_get

    assert embeddings.pgvector_installed(connection)
    kb = _kb(workspace)
    live = {p.pk: p for p in Passage.objects.filter(knowledge_base=kb)}
    vectors = _vectors(knowledge_base=kb)
    assert live and vectors.keys() == live.keys()
    for pk, vector in vectors.items():  # the same unit vector as the binary column
        assert vector.shape == (DIMENSIONS,)
        assert np.allclose(vector, embeddings.unpack_many([bytes(live[pk].embedding)])[0], atol=1e-6)

    services.version_knowledge_set(draft=draft_get(agent=agent), knowledge_base=kb, used=True)
    agent_services.agent_publish(agent=agent)
    frozen = Passage.objects.filter(snapshot__knowledge_base=kb)
    assert frozen.count() == len(live) and len(_vectors(snapshot__knowledge_base=kb)) == len(live)


def test_hybrid_ranking_through_pgvector_gives_the_numpy_paths_passages(workspace, monkeypatch, request):
    kb = services.knowledge_base_create(workspace=workspace, name="Kestrel K2 manual")
    services.source_text_add(knowledge_base=kb, title="K2 owner's manual", text=MANUAL.read_text(encoding="utf-8"))
    assert len(_vectors(knowledge_base=kb)) == Passage.objects.filter(knowledge_base=kb).count() > 40
    questions = [q["question"] for q in json.loads(QUESTIONS.read_text())]

    def top3():
        return [[h.id for h in passages_search(workspace_id=workspace.pk, query=q, knowledge_base_ids=[kb.pk],
                                               limit=3)] for q in questions]

    asked = len(request.getfixturevalue("fake").requests)
    with CaptureQueriesContext(connection) as queries:
        through_pgvector = top3()
    # every question embedded (those with two or more full-text candidates) was ranked in SQL
    embedded = len(request.getfixturevalue("fake").requests) - asked
    assert embedded >= 45 and sum("<=>" in q["sql"] for q in queries.captured_queries) == embedded
    monkeypatch.setattr(search.embeddings, "pgvector_column", lambda conn: False)
    with CaptureQueriesContext(connection) as queries:
        through_numpy = top3()
    assert not any("<=>" in q["sql"] for q in queries.captured_queries)
    assert through_pgvector == through_numpy
    # and the fused ranking is not just the full-text one (the vectors changed something)
    monkeypatch.setattr(search.embeddings, "embeddings_config", lambda: None)
    assert top3() != through_pgvector


def test_hybrid_through_pgvector_fuses_the_synonym_as_numpy_does(workspace):
    kb = _kb(workspace)
    hits = passages_search(workspace_id=workspace.pk, query="refund after delivery", knowledge_base_ids=[kb.pk])
    assert [h.text.split(":")[0] for h in hits] == ["Refunds", "Payment money", "Delivery"]


def test_another_workspaces_passages_never_come_back_through_pgvector(workspace, other_workspace):
    mine, theirs = _kb(workspace), _kb(other_workspace)
    assert _vectors(knowledge_base=theirs)  # they have vectors, as near to the question as ours
    assert passages_search(workspace_id=workspace.pk, query="refund delivery", knowledge_base_ids=[theirs.pk]) == []
    hits = passages_search(workspace_id=workspace.pk, query="refund money delivery",
                           knowledge_base_ids=[mine.pk, theirs.pk], limit=10)
    assert hits and {h.knowledge_base_id for h in hits} == {mine.pk}
    # the SQL ranking itself re-checks the workspace: their ids asked for under our workspace give nothing
    their_ids = list(Passage.objects.filter(knowledge_base=theirs).values_list("id", flat=True))
    query = np.asarray(embeddings.unpack_many([bytes(Passage.objects.get(pk=their_ids[0]).embedding)])[0])
    assert search._pgvector_order(connection, their_ids, query, workspace_id=workspace.pk, model="fake-embed") == []
    assert len(search._pgvector_order(connection, their_ids, query, workspace_id=other_workspace.pk,
                                      model="fake-embed")) == len(their_ids)
