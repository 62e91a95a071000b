"""Full-text retrieval on the database the product runs: one entry point, two vendors.

- PostgreSQL: `knowledge_passage.search_vector`, a stored generated `tsvector` (English configuration) with a
  GIN index; the question becomes an OR of its words (`to_tsquery`), ranked by `ts_rank` normalised by the
  passage's length.
- SQLite: the FTS5 table `knowledge_passage_fts` (porter stemmer; kept in step by triggers), ranked by `bm25`.

Both are created by migration 0002 (vendor SQL). A question's words are reduced to plain lowercase terms
before they reach either query language, so nothing a caller says can change the query's syntax.
Every search is limited to one workspace, and to live knowledge bases or to snapshots: never both, never all.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from django.db import connection

# Common English words that say nothing about which passage answers (PostgreSQL's English configuration
# drops its own list; SQLite's FTS5 has none, so we drop these before either sees the question).
STOP_WORDS = frozenset("""
a about above after again against all am an and any are as at be because been before being below between both
but by can could did do does doing down during each few for from further had has have having he her here hers
him his how i if in into is it its itself just me more most my no nor not of off on once only or other our ours
out over own same she should so some such than that the their theirs them then there these they this those
through to too under until up very was we were what when where which while who whom why will with would you
your yours yourself please tell know want need get got let lets can't cannot don't does doesn't i'm i've
hi hello thanks thank okay ok yes also much many
""".split())
MAX_TERMS = 24
TERM_RE = re.compile(r"[^\W_]+", re.UNICODE)


def query_terms(question: str) -> list[str]:
    """The question's searchable words: lowercase, letters and digits only, no stop words, each once."""
    terms = []
    for word in TERM_RE.findall((question or "").lower()):
        if word in STOP_WORDS or (len(word) < 2 and not word.isdigit()) or word in terms:
            continue
        terms.append(word)
    return terms[:MAX_TERMS]


@dataclass(frozen=True)
class PassageHit:
    id: int
    text: str
    source_title: str
    position: int
    score: float
    knowledge_base_id: int | None
    snapshot_id: int | None

    @property
    def citation(self) -> str:
        return f"{self.source_title} · passage {self.position}"


def _scope_sql(*, knowledge_base_ids, snapshot_ids) -> tuple[str, list]:
    if snapshot_ids is not None:
        ids = [int(i) for i in snapshot_ids]
        return f"p.snapshot_id IN ({', '.join(['%s'] * len(ids))})", ids
    ids = [int(i) for i in knowledge_base_ids]
    return f"p.knowledge_base_id IN ({', '.join(['%s'] * len(ids))})", ids


COLUMNS = "p.id, p.text, p.source_title, p.position, {score}, p.knowledge_base_id, p.snapshot_id"


def search(*, workspace_id: int, query: str, limit: int, knowledge_base_ids=None, snapshot_ids=None,
           using=None) -> list[PassageHit]:
    terms = query_terms(query)
    ids = snapshot_ids if snapshot_ids is not None else knowledge_base_ids
    if not terms or not ids or limit <= 0:
        return []
    scope, scope_params = _scope_sql(knowledge_base_ids=knowledge_base_ids, snapshot_ids=snapshot_ids)
    conn = connection if using is None else using
    if conn.vendor == "postgresql":
        sql = (f"SELECT {COLUMNS.format(score='ts_rank(p.search_vector, q, 1) AS score')} "
               "FROM knowledge_passage p, to_tsquery('english', %s) q "
               f"WHERE p.search_vector @@ q AND p.workspace_id = %s AND {scope} "
               "ORDER BY score DESC, p.id LIMIT %s")
        params = [" | ".join(terms), workspace_id, *scope_params, limit]
    elif conn.vendor == "sqlite":
        sql = (f"SELECT {COLUMNS.format(score='-bm25(knowledge_passage_fts) AS score')} "
               "FROM knowledge_passage_fts JOIN knowledge_passage p ON p.id = knowledge_passage_fts.rowid "
               f"WHERE knowledge_passage_fts MATCH %s AND p.workspace_id = %s AND {scope} "
               "ORDER BY bm25(knowledge_passage_fts), p.id LIMIT %s")
        params = [" OR ".join(f'"{t}"' for t in terms), workspace_id, *scope_params, limit]
    else:  # pragma: no cover - the product runs on these two
        raise NotImplementedError(f"No knowledge search on {conn.vendor}.")
    with conn.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return [PassageHit(id=r[0], text=r[1], source_title=r[2], position=r[3], score=round(float(r[4]), 4),
                       knowledge_base_id=r[5], snapshot_id=r[6]) for r in rows]
