"""System check: every stored encrypted value must decrypt with the configured key."""
from django.apps import apps
from django.core.checks import Error, Tags, register
from django.db import DatabaseError, connection

from workspaces.fields import StrictEncryptedMixin, can_decrypt


def encrypted_fields():
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, StrictEncryptedMixin):
                yield model, field


@register(Tags.database)  # runs with `check --database default` (bin/run) and `check --deploy --database default`
def check_encrypted_values_decrypt(app_configs=None, databases=None, **kwargs):
    if not databases:
        return []
    errors = []
    try:
        tables = set(connection.introspection.table_names())
    except DatabaseError:
        return []
    for model, field in encrypted_fields():
        if model._meta.db_table not in tables:
            continue
        qn = connection.ops.quote_name
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {qn(field.column)} FROM {qn(model._meta.db_table)} "
                f"WHERE {qn(field.column)} IS NOT NULL AND {qn(field.column)} <> %s",
                [""],
            )
            values = [row[0] for row in cursor.fetchall()]
        bad = [v for v in values if not can_decrypt(v)]
        if bad:
            errors.append(
                Error(
                    f"{model._meta.label}.{field.name}: {len(bad)} stored value(s) cannot be decrypted with "
                    "FIELD_ENCRYPTION_KEY.",
                    hint="Set FIELD_ENCRYPTION_KEY to the key the data was written with (a list keeps old keys "
                    "readable during rotation).",
                    obj=model,
                    id="workspaces.E001",
                )
            )
    return errors
