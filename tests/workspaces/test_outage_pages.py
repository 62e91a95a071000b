"""Issue 22.10: with PostgreSQL or Redis down, a page says what is wrong and that nothing saved is lost (HTTP 503),
never a bare "Server Error (500)". Real uvicorn on production settings, pointed at a PostgreSQL or a Redis that
does not answer (a closed loopback port); the other service is the real one from REDIS_URL."""
import http.client
import os
from urllib.parse import urlsplit

import pytest

DEAD_POSTGRES = "postgres://postgres@127.0.0.1:1/callwell_down"
DEAD_REDIS = "redis://127.0.0.1:1/0"


def _get(base: str, path: str, **headers) -> tuple[int, dict, str]:
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.request("GET", path, headers={"Host": "127.0.0.1", **headers})
    response = conn.getresponse()
    body = response.read().decode()
    conn.close()
    return response.status, dict(response.getheaders()), body


def _serve(tmp_path, *, database_url: str, redis_url: str):
    """Production settings with the connection pool (a short DB_POOL_TIMEOUT: the pool's own wait is what a
    request sees of a dead database)."""
    from bench._harness import bench_env, serve

    env = bench_env(DJANGO_SETTINGS_MODULE="config.settings.production", DATABASE_URL=database_url,
                    REDIS_URL=redis_url, OUTAGE_SPOOL_DIR=str(tmp_path / "spool"), DB_POOL_MAX_SIZE=2,
                    DB_POOL_MIN_SIZE=1, DB_POOL_TIMEOUT=1)
    return serve(env=env, workers=1, server="uvicorn", migrate=False)


@pytest.fixture
def redis_url():
    url = os.environ.get("REDIS_URL", "")
    if not url:
        pytest.skip("needs REDIS_URL (a real Redis) to take PostgreSQL down alone")
    return url


def test_with_postgresql_down_a_page_says_the_database_is_unreachable_and_nothing_is_lost(tmp_path, redis_url):
    with _serve(tmp_path, database_url=DEAD_POSTGRES, redis_url=redis_url) as base:
        status, headers, body = _get(base, "/", Cookie="sessionid=" + "x" * 32)
        assert status == 503, body[:500]
        assert "cannot reach its database" in body and "Nothing is lost" in body
        assert "Server Error (500)" not in body
        assert headers.get("Retry-After") == "30"
        status, _, body = _get(base, "/healthz")
        assert status == 200  # the process itself is fine


@pytest.mark.django_db(transaction=True)
def test_with_redis_down_a_page_says_redis_is_unreachable_and_nothing_is_lost(tmp_path, settings, workspace,
                                                                               member_user):
    """A signed-in member (session in PostgreSQL: Django's cached_db sessions fall back to it) opens a page with
    Redis down: the workspace lookup needs the cache."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django.db import connection

    from bench._harness import bench_env, serve

    if connection.vendor != "postgresql":
        pytest.skip("needs DATABASE_URL (PostgreSQL) for a server process to share the test database")
    session = SessionStore()
    session.update({SESSION_KEY: str(member_user.pk), BACKEND_SESSION_KEY: settings.AUTHENTICATION_BACKENDS[-1],
                    HASH_SESSION_KEY: member_user.get_session_auth_hash()})
    session.create()
    db = connection.settings_dict
    database_url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    env = bench_env(DJANGO_SETTINGS_MODULE="config.settings.production", DATABASE_URL=database_url,
                    REDIS_URL=DEAD_REDIS, DJANGO_SECRET_KEY=settings.SECRET_KEY, DB_POOL_MAX_SIZE=0,
                    OUTAGE_SPOOL_DIR=str(tmp_path / "spool"))
    with serve(env=env, workers=1, server="uvicorn", migrate=False) as base:
        status, _, body = _get(base, "/", Cookie=f"{settings.SESSION_COOKIE_NAME}={session.session_key}")
    assert status == 503, body[:500]
    assert "cannot reach its Redis server" in body and "Nothing is lost" in body
    assert "Server Error (500)" not in body


@pytest.mark.django_db
def test_any_other_error_is_still_the_plain_500(client, settings):
    from workspaces.views import server_error

    request = client.get("/healthz").wsgi_request
    try:
        raise ValueError("a bug")
    except ValueError:
        response = server_error(request)
    assert response.status_code == 500
