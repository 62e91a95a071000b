"""Optional embeddings per passage (knowledge/embeddings.py): a compact binary column everywhere, and a pgvector
column where PostgreSQL has the `vector` extension installed (detected here; skipped otherwise).

SQLite: adding nullable columns is an ALTER TABLE (no table rebuild), so 0002's FTS5 triggers stay; if a rebuild
ever dropped them, they are put back (and the index refilled) below.
"""
from importlib import import_module

from django.db import migrations, models

fts = import_module("knowledge.migrations.0002_passage_full_text_search")


def forwards(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM sqlite_master WHERE type = 'trigger' "
                           "AND name LIKE 'knowledge_passage_fts_%'")
            if cursor.fetchone()[0] < 3:
                fts.sqlite_forwards(apps, schema_editor)
    elif connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'")
            if cursor.fetchone() is not None:
                schema_editor.execute("ALTER TABLE knowledge_passage ADD COLUMN IF NOT EXISTS embedding_vector vector")


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE knowledge_passage DROP COLUMN IF EXISTS embedding_vector")


class Migration(migrations.Migration):

    dependencies = [
        ("knowledge", "0003_passage_search_vector_in_row"),
    ]

    operations = [
        migrations.AddField(
            model_name="passage",
            name="embedding",
            field=models.BinaryField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="passage",
            name="embedding_model",
            field=models.CharField(blank=True, editable=False, max_length=200, null=True),
        ),
        migrations.RunPython(forwards, backwards, elidable=False),
    ]
