"""Migrations 0002-0003 create each database's full-text search objects (SQLite: the FTS5 table and its triggers;
PostgreSQL: the generated tsvector column and its GIN index), and removes them when migrated back.
Run on SQLite by default, on PostgreSQL with DATABASE_URL."""
import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from knowledge import services
from knowledge.selectors import passages_search

BEFORE = ("knowledge", "0001_knowledge_bases")
AFTER = ("knowledge", "0003_passage_search_vector_in_row")  # 0003: the PostgreSQL vector with its scope


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


def _search_objects() -> set[str]:
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT type || ' ' || name FROM sqlite_master WHERE name LIKE 'knowledge_passage_fts%' "
                           "AND type IN ('table', 'trigger') AND name NOT LIKE 'knowledge_passage_fts\\_%' ESCAPE '\\' "
                           "UNION SELECT type || ' ' || name FROM sqlite_master WHERE type = 'trigger' "
                           "AND tbl_name = 'knowledge_passage'")
        else:
            cursor.execute("SELECT 'column ' || column_name FROM information_schema.columns WHERE "
                           "table_name = 'knowledge_passage' AND column_name = 'search_vector' UNION "
                           "SELECT 'index ' || indexname FROM pg_indexes WHERE tablename = 'knowledge_passage' "
                           "AND indexname = 'knowledge_passage_search_gin'")
        return {row[0] for row in cursor.fetchall()}


EXPECTED = {
    "sqlite": {"table knowledge_passage_fts", "trigger knowledge_passage_fts_insert",
               "trigger knowledge_passage_fts_delete", "trigger knowledge_passage_fts_update"},
    "postgresql": {"column search_vector", "index knowledge_passage_search_gin"},
}


@pytest.mark.django_db(transaction=True)
def test_the_full_text_search_objects_come_and_go_with_their_migration(workspace):
    kb = services.knowledge_base_create(workspace=workspace, name="Help")
    services.source_text_add(knowledge_base=kb, title="A", text="Refunds take five days.")
    assert _search_objects() == EXPECTED[connection.vendor]
    try:
        _migrate([BEFORE])
        assert _search_objects() == set()
        _migrate([AFTER])
        assert _search_objects() == EXPECTED[connection.vendor]
        # Passages written before the index existed are found (SQLite rebuilds it; PostgreSQL computes the column).
        assert [h.text for h in passages_search(workspace_id=workspace.pk, query="refunds",
                                                knowledge_base_ids=[kb.pk])] == ["Refunds take five days."]
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
