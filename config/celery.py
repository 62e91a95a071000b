import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")

app = Celery("callwell")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def _forget_inherited_connection_pools(**kwargs):
    """A prefork child must not use the PostgreSQL pool its parent may have opened (its sockets are the
    parent's): drop the inherited pools unclosed (closing would end the parent's connections); each child then
    opens its own, bounded by DB_POOL_MAX_SIZE (config.settings.base.postgres_pool_from_env)."""
    from django.db import connections

    for alias in connections:
        pools = getattr(type(connections[alias]), "_connection_pools", None)
        if pools:
            pools.clear()
