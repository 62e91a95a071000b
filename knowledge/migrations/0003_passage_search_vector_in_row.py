"""PostgreSQL: keep a passage's tsvector in its row (not TOASTed), so ranking reads no second relation.

A passage is at most about 1,200 characters, but its text plus its tsvector (about 1.5× the text) passes the
default 2 kB threshold at which PostgreSQL moves the largest value out of line, and every `@@` / `ts_rank` then
fetched it from the TOAST table (EXPLAIN ANALYZE: the ranking's cost was mostly that). `toast_tuple_target`
8160 keeps rows up to a page inline; existing rows are rewritten once. Nothing on SQLite.
"""
from django.db import migrations

FORWARDS = [
    "ALTER TABLE knowledge_passage SET (toast_tuple_target = 8160)",
    "UPDATE knowledge_passage SET text = text",
]
BACKWARDS = ["ALTER TABLE knowledge_passage RESET (toast_tuple_target)"]


def _run(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            for statement in statements:
                schema_editor.execute(statement)
    return run


class Migration(migrations.Migration):
    dependencies = [("knowledge", "0002_passage_full_text_search")]

    operations = [migrations.RunPython(_run(FORWARDS), _run(BACKWARDS), elidable=False)]
