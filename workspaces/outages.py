"""Recognising an outage of PostgreSQL or Redis in an exception (issue 22.10), for the error page
(`workspaces.views.server_error`) and for the webhooks that spool calls while the database is down."""
from __future__ import annotations

DATABASE = "database"
CACHE = "cache"


def _database_errors() -> tuple[type[BaseException], ...]:
    from django.db.utils import InterfaceError, OperationalError

    found: list[type[BaseException]] = [OperationalError, InterfaceError]
    try:
        import psycopg
        import psycopg_pool

        found += [psycopg.OperationalError, psycopg_pool.PoolTimeout]
    except ImportError:  # pragma: no cover - psycopg is a dependency
        pass
    return tuple(found)


def _cache_errors() -> tuple[type[BaseException], ...]:
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError
    except ImportError:  # pragma: no cover - redis is a dependency
        return ()
    return (RedisConnectionError, RedisTimeoutError)


def outage_kind(exc: BaseException | None) -> str | None:
    """"database" or "cache" when `exc` (or an exception it was raised from) says the service is unreachable."""
    database, cache = _database_errors(), _cache_errors()
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, database):
            return DATABASE
        if cache and isinstance(exc, cache):
            return CACHE
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None
