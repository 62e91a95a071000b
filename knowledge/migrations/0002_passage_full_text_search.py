"""Full-text search of passages, in each database's own way (knowledge/search.py queries them):

- PostgreSQL: a stored generated tsvector column (English configuration) and a GIN index on it.
- SQLite: an FTS5 table over knowledge_passage.text (porter stemmer), kept in step by three triggers.

Django's SQLite schema editor rebuilds a table to alter it (create, copy, drop, rename), which drops its
triggers: a later migration that alters knowledge_passage on SQLite must run `sqlite_forwards` again after it
(the table and its rowids are kept, so `rebuild` refills the index).
"""
from django.db import migrations

SQLITE_FORWARDS = [
    "CREATE VIRTUAL TABLE IF NOT EXISTS knowledge_passage_fts USING fts5("
    "text, content='knowledge_passage', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER IF NOT EXISTS knowledge_passage_fts_insert AFTER INSERT ON knowledge_passage BEGIN "
    "INSERT INTO knowledge_passage_fts(rowid, text) VALUES (new.id, new.text); END",
    "CREATE TRIGGER IF NOT EXISTS knowledge_passage_fts_delete AFTER DELETE ON knowledge_passage BEGIN "
    "INSERT INTO knowledge_passage_fts(knowledge_passage_fts, rowid, text) VALUES ('delete', old.id, old.text); END",
    "CREATE TRIGGER IF NOT EXISTS knowledge_passage_fts_update AFTER UPDATE OF text ON knowledge_passage BEGIN "
    "INSERT INTO knowledge_passage_fts(knowledge_passage_fts, rowid, text) VALUES ('delete', old.id, old.text); "
    "INSERT INTO knowledge_passage_fts(rowid, text) VALUES (new.id, new.text); END",
    "INSERT INTO knowledge_passage_fts(knowledge_passage_fts) VALUES ('rebuild')",
]
SQLITE_BACKWARDS = [
    "DROP TRIGGER IF EXISTS knowledge_passage_fts_insert",
    "DROP TRIGGER IF EXISTS knowledge_passage_fts_delete",
    "DROP TRIGGER IF EXISTS knowledge_passage_fts_update",
    "DROP TABLE IF EXISTS knowledge_passage_fts",
]
POSTGRESQL_FORWARDS = [
    "ALTER TABLE knowledge_passage ADD COLUMN IF NOT EXISTS search_vector tsvector "
    "GENERATED ALWAYS AS (to_tsvector('english'::regconfig, text)) STORED",
    "CREATE INDEX IF NOT EXISTS knowledge_passage_search_gin ON knowledge_passage USING GIN (search_vector)",
]
POSTGRESQL_BACKWARDS = [
    "DROP INDEX IF EXISTS knowledge_passage_search_gin",
    "ALTER TABLE knowledge_passage DROP COLUMN IF EXISTS search_vector",
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        for statement in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement)
    return run


sqlite_forwards = _run({"sqlite": SQLITE_FORWARDS})
forwards = _run({"sqlite": SQLITE_FORWARDS, "postgresql": POSTGRESQL_FORWARDS})
backwards = _run({"sqlite": SQLITE_BACKWARDS, "postgresql": POSTGRESQL_BACKWARDS})


class Migration(migrations.Migration):
    dependencies = [("knowledge", "0001_knowledge_bases")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
