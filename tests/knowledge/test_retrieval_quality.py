"""The retrieval's quality on a product manual we wrote (manual.md) and 50 callers' questions about it
(questions.json, each with the section that answers it): the right passage is in the top 3 for at least 90%.

Runs on the database of the run: SQLite (FTS5) by default, PostgreSQL (tsvector + GIN) with DATABASE_URL."""
import json

import pytest

from knowledge.selectors import passages_search

from .conftest import QUESTIONS

pytestmark = pytest.mark.django_db


def test_the_manual_is_cut_into_one_passage_per_section(manual_kb):
    from knowledge.models import Passage

    sections = {q["section"] for q in json.loads(QUESTIONS.read_text())}
    texts = [p.text for p in Passage.objects.filter(knowledge_base=manual_kb)]
    assert all(sum(t.startswith(s + ":") for t in texts) == 1 for s in sections)


def test_the_right_passage_is_in_the_top_3_for_at_least_90_percent_of_the_questions(manual_kb):
    questions = json.loads(QUESTIONS.read_text())
    assert len(questions) == 50
    misses = []
    for q in questions:
        hits = passages_search(workspace_id=manual_kb.workspace_id, query=q["question"],
                               knowledge_base_ids=[manual_kb.pk], limit=3)
        if not any(h.text.startswith(q["section"] + ":") for h in hits):
            misses.append((q["question"], q["section"], [h.text.split(":", 1)[0] for h in hits]))
    found = len(questions) - len(misses)
    print(f"\ntop-3: {found}/{len(questions)}; misses: {misses}")
    assert found / len(questions) >= 0.9, misses
