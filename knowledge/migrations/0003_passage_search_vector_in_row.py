"""PostgreSQL: the passage's tsvector carries its scope and stays in its row. Nothing on SQLite.

- Scope lexemes: `search_vector` becomes `to_tsvector('english', text)` plus two lexemes naming where the passage
  lives, `~k<knowledge_base_id>` and `~s<snapshot_id>` (0 when unset; a caller's words never start with `~`), so
  one GIN lookup finds a word's passages *in the searched knowledge bases or snapshots* (knowledge/search.py:
  `word & ('~k12' | …)`). Before, the plan ANDed the GIN bitmap with a bitmap of the whole knowledge base from the
  `knowledge_base_id` index for every word (EXPLAIN ANALYZE: ~0.4 ms a word at 10,000 passages).
- In the row: a passage is at most about 1,200 characters, but its text plus its tsvector passes the default
  2 kB threshold at which PostgreSQL moves the largest value out of line, and every `@@` / `ts_rank` then fetched
  it from the TOAST table. `toast_tuple_target` 8160 keeps rows up to a page inline (the column is re-added, so
  existing rows are rewritten).
"""
from django.db import migrations

VECTOR = ("to_tsvector('english'::regconfig, text) || array_to_tsvector(ARRAY["
          "'~k' || coalesce(knowledge_base_id, 0)::text, '~s' || coalesce(snapshot_id, 0)::text])")
OLD_VECTOR = "to_tsvector('english'::regconfig, text)"


def _vector(expression):
    return [
        "DROP INDEX IF EXISTS knowledge_passage_search_gin",
        "ALTER TABLE knowledge_passage DROP COLUMN IF EXISTS search_vector",
        f"ALTER TABLE knowledge_passage ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ({expression}) STORED",
        "CREATE INDEX knowledge_passage_search_gin ON knowledge_passage USING GIN (search_vector)",
    ]


FORWARDS = ["ALTER TABLE knowledge_passage SET (toast_tuple_target = 8160)", *_vector(VECTOR)]
BACKWARDS = ["ALTER TABLE knowledge_passage RESET (toast_tuple_target)", *_vector(OLD_VECTOR)]


def _run(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            for statement in statements:
                schema_editor.execute(statement)
    return run


class Migration(migrations.Migration):
    dependencies = [("knowledge", "0002_passage_full_text_search")]

    operations = [migrations.RunPython(_run(FORWARDS), _run(BACKWARDS), elidable=False)]
