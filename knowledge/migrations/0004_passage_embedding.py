"""Optional embeddings per passage (knowledge/embeddings.py): a compact binary column everywhere, and a pgvector
column where PostgreSQL has the `vector` extension: already installed in the database, or available to the server
(`pg_available_extensions`) and created here when the migrating role may (a superuser, or a trusted-extension
owner); otherwise skipped, and retrieval ranks the binary vectors in Python instead.

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
        if _vector_extension(connection):
            schema_editor.execute("ALTER TABLE knowledge_passage ADD COLUMN IF NOT EXISTS embedding_vector vector")


def _vector_extension(connection) -> bool:
    """Whether the `vector` extension is in the database, creating it if the server has it and we may."""
    from django.db import DatabaseError, transaction

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'")
        if cursor.fetchone() is not None:
            return True
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
        if cursor.fetchone() is None:
            return False
    try:
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except DatabaseError:  # e.g. not a superuser: the column is skipped, as without the extension
        return False
    return True


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
