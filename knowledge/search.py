"""Full-text retrieval on the database the product runs: one entry point, two vendors.

Both rank only a bounded set of candidates, so a question made of common words costs no more than a few hundred
passages' ranking however large the knowledge base (bench/knowledge_search.py: p95 over 10,000 passages):

- PostgreSQL: `knowledge_passage.search_vector`, a stored generated `tsvector` (English configuration, plus the
  passage's scope lexemes `~k<knowledge base>` / `~s<snapshot>`) with a GIN index, kept in the row (migration
  0003). Candidates: for each distinct lexeme of the question, at most `PER_TERM_CANDIDATES` passages of the
  scope containing it (one GIN lookup of `word & scope`; a rare word brings all its passages, a common one a
  bounded sample); only those are ranked by `ts_rank` normalised by the passage's length, against the OR of
  every word.
- SQLite: the FTS5 table `knowledge_passage_fts` (porter stemmer; kept in step by triggers), ranked by `bm25`.
  First each word's document count (FTS5 counts from its index, no ranking); the MATCH then keeps the rarest
  words up to `CANDIDATE_BUDGET` matching passages in all (at least the rarest word): the common words, which
  bm25 weighs least, do not widen the set that is ranked.

Both are created by migration 0002 (vendor SQL). A question's words are reduced to plain lowercase terms
before they reach either query language, so nothing a caller says can change the query's syntax.
Every search is limited to one workspace, and to live knowledge bases or to snapshots: never both, never all.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace

from django.db import connection

from knowledge import embeddings

logger = logging.getLogger(__name__)

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


PER_TERM_CANDIDATES = 100
CANDIDATE_BUDGET = 2000


def _scope_tsquery(*, knowledge_base_ids, snapshot_ids) -> str:
    """The scope lexemes of migration 0003 (`~k<id>` / `~s<id>`), OR-ed: built from integers only."""
    if snapshot_ids is not None:
        return " | ".join(f"'~s{int(i)}'" for i in snapshot_ids)
    return " | ".join(f"'~k{int(i)}'" for i in knowledge_base_ids)


def _postgresql(terms, workspace_id, scope, scope_params, limit, *, scope_query):
    # Per lexeme of the question, its passages in the scope straight from the GIN index (the scope is in the
    # tsvector), at most PER_TERM_CANDIDATES; the workspace is checked again on the row.
    sql = (f"SELECT {COLUMNS.format(score='ts_rank(p.search_vector, q.q, 1) AS score')} "
           "FROM (SELECT DISTINCT c.id FROM unnest(tsvector_to_array(to_tsvector('english', %s))) AS t(lexeme), "
           "LATERAL (SELECT p.id FROM knowledge_passage p "
           "WHERE p.search_vector @@ (t.lexeme::tsquery && %s::tsquery) AND p.workspace_id = %s LIMIT %s) c"
           ") candidates JOIN knowledge_passage p ON p.id = candidates.id, to_tsquery('english', %s) q "
           f"WHERE {scope} ORDER BY score DESC, p.id LIMIT %s")
    # (the scope's columns are checked on the ranked rows, not in the candidates' lookup: there the planner
    # would AND the GIN bitmap with the whole knowledge base's btree bitmap again)
    return sql, [" ".join(terms), scope_query, workspace_id, PER_TERM_CANDIDATES, " | ".join(terms),
                 *scope_params, limit]


def _sqlite_terms(cursor, terms) -> list[str]:
    """The rarest of `terms` (by FTS5 document count) up to CANDIDATE_BUDGET matching passages in all."""
    count = "(SELECT count(*) FROM knowledge_passage_fts WHERE knowledge_passage_fts MATCH %s)"
    cursor.execute("SELECT " + ", ".join([count] * len(terms)), [f'"{t}"' for t in terms])
    chosen, total = [], 0
    for n, term in sorted(zip(cursor.fetchone(), terms)):
        if n == 0:
            continue
        if chosen and total + n > CANDIDATE_BUDGET:
            break
        chosen.append(term)
        total += n
    return chosen


def _sqlite(terms, workspace_id, scope, scope_params, limit):
    # FTS5 sorts by its `rank` column (bm25) itself, computing it once per match; only the top rows' ids leave
    # the inner query, and only those are read in full.
    sql = (f"SELECT {COLUMNS.format(score='-top.rank AS score')} FROM ("
           "SELECT f.rowid AS id, f.rank AS rank FROM knowledge_passage_fts f "
           "JOIN knowledge_passage p ON p.id = f.rowid "
           f"WHERE knowledge_passage_fts MATCH %s AND p.workspace_id = %s AND {scope} ORDER BY f.rank LIMIT %s"
           ") top JOIN knowledge_passage p ON p.id = top.id ORDER BY top.rank, p.id")
    return sql, [" OR ".join(f'"{t}"' for t in terms), workspace_id, *scope_params, limit]


def search(*, workspace_id: int, query: str, limit: int, knowledge_base_ids=None, snapshot_ids=None,
           using=None) -> list[PassageHit]:
    terms = query_terms(query)
    ids = snapshot_ids if snapshot_ids is not None else knowledge_base_ids
    if not terms or not ids or limit <= 0:
        return []
    scope, scope_params = _scope_sql(knowledge_base_ids=knowledge_base_ids, snapshot_ids=snapshot_ids)
    conn = connection if using is None else using
    config = embeddings.embeddings_config()
    with conn.cursor() as cursor:
        if conn.vendor == "postgresql":
            sql, params = _postgresql(terms, workspace_id, scope, scope_params, limit, scope_query=_scope_tsquery(
                knowledge_base_ids=knowledge_base_ids, snapshot_ids=snapshot_ids))
        elif conn.vendor == "sqlite":
            terms = _sqlite_terms(cursor, terms)
            if not terms:
                return []
            sql, params = _sqlite(terms, workspace_id, scope, scope_params, limit)
        else:  # pragma: no cover - the product runs on these two
            raise NotImplementedError(f"No knowledge search on {conn.vendor}.")
        if config is not None:  # hybrid: more full-text candidates, re-ranked below
            params[-1] = max(limit, embeddings.CANDIDATES)
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    hits = [PassageHit(id=r[0], text=r[1], source_title=r[2], position=r[3], score=round(float(r[4]), 4),
                       knowledge_base_id=r[5], snapshot_id=r[6]) for r in rows]
    if config is not None and len(hits) > 1:
        return _hybrid(hits, query=query, config=config, conn=conn, workspace_id=workspace_id)[:limit]
    return hits[:limit]


def _hybrid(hits: list[PassageHit], *, query: str, config, conn, workspace_id: int) -> list[PassageHit]:
    """The full-text candidates fused with their ranking by cosine similarity to the question's embedding
    (reciprocal rank fusion). Candidates without an embedding from the model keep only their full-text rank;
    if the question cannot be embedded, the full-text ranking as it is. Where the pgvector column exists the
    vector ranking is pgvector's `<=>` (cosine distance) in SQL, else numpy over the binary vectors."""
    ids = [h.id for h in hits]
    in_ids = ", ".join(["%s"] * len(ids))
    pgvector = embeddings.pgvector_column(conn)
    with conn.cursor() as cursor:
        if pgvector:
            cursor.execute(f"SELECT id, vector_dims(embedding_vector) FROM knowledge_passage WHERE id IN ({in_ids}) "
                           "AND workspace_id = %s AND embedding_model = %s AND embedding_vector IS NOT NULL",
                           [*ids, workspace_id, config.model])
            stored = dict(cursor.fetchall())
        else:
            cursor.execute(f"SELECT id, embedding FROM knowledge_passage WHERE id IN ({in_ids}) "
                           "AND workspace_id = %s AND embedding_model = %s AND embedding IS NOT NULL",
                           [*ids, workspace_id, config.model])
            stored = {pk: bytes(blob) for pk, blob in cursor.fetchall()}
    if not stored:
        return hits
    try:
        [vector] = embeddings.embed([query[:2000]], config=config, timeout=embeddings.QUERY_TIMEOUT)
    except embeddings.EmbeddingError as exc:
        logger.warning("knowledge search without embeddings", extra={"reason": str(exc)})
        return hits
    with_vectors = [pk for pk in ids if pk in stored]
    if pgvector:
        by_vector = _pgvector_order(conn, with_vectors, vector, workspace_id=workspace_id, model=config.model)
    else:
        by_vector = [with_vectors[i] for i in embeddings.cosine_order(vector, [stored[pk] for pk in with_vectors])]
    by_id = {h.id: h for h in hits}
    return [replace(by_id[pk], score=round(score, 4)) for pk, score in embeddings.rrf(ids, by_vector)]


def _pgvector_order(conn, ids: list[int], vector, *, workspace_id: int, model: str) -> list[int]:
    """`ids` best first by pgvector's cosine distance to `vector` (only those of its dimension: `<=>` refuses
    vectors of different lengths). Ties in the order of `ids` (the full-text rank), as numpy's stable sort."""
    position = {pk: i for i, pk in enumerate(ids)}
    with conn.cursor() as cursor:
        cursor.execute(f"SELECT id, embedding_vector <=> %s::vector AS distance FROM knowledge_passage "
                       f"WHERE id IN ({', '.join(['%s'] * len(ids))}) AND workspace_id = %s AND embedding_model = %s "
                       "AND vector_dims(embedding_vector) = %s ORDER BY distance",
                       [embeddings.vector_literal(vector), *ids, workspace_id, model, len(vector)])
        rows = cursor.fetchall()
    return [pk for pk, _ in sorted(rows, key=lambda r: (round(r[1], 6), position[r[0]]))]
