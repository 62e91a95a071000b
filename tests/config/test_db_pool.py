"""Issue 22.4: under uvicorn (2 workers, production settings) the PostgreSQL connections stay within the pool's
bound (DB_POOL_MAX_SIZE per process) while 32 signed incoming calls run at once, and every call is connected (no
apology). Real uvicorn, PostgreSQL and Redis; skipped when DATABASE_URL is not PostgreSQL or REDIS_URL is unset.
The settings themselves are checked without services."""
import os
import secrets
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
POOL_MAX = 3
WORKERS = 2


def _settings_with(tmp_path, **env) -> dict:
    from cryptography.fernet import Fernet

    full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"),
            "DJANGO_SETTINGS_MODULE": "config.settings.production", "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(), "DJANGO_ALLOWED_HOSTS": "calls.example.com",
            "PUBLIC_BASE_URL": "https://calls.example.com", "REDIS_URL": "redis://127.0.0.1:6379/15", **env}
    script = "import json; from django.conf import settings; print(json.dumps(settings.DATABASES['default'], default=str))"
    out = subprocess.run([sys.executable, "-c", f"import django; django.setup(); {script}"], cwd=ROOT, env=full,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    import json

    return json.loads(out.stdout.strip().splitlines()[-1])


def test_production_settings_pool_postgresql_connections_sized_from_the_environment(tmp_path):
    db = _settings_with(tmp_path, DATABASE_URL="postgres://u@db.example:5432/callwell", DB_CONN_MAX_AGE="60",
                        DB_POOL_MIN_SIZE="1", DB_POOL_MAX_SIZE="7", DB_POOL_TIMEOUT="4.5")
    assert db["OPTIONS"]["pool"] == {"min_size": 1, "max_size": 7, "timeout": 4.5}
    assert db["CONN_MAX_AGE"] == 0  # the pool keeps the connections (Django refuses both)
    off = _settings_with(tmp_path, DATABASE_URL="postgres://u@db.example:5432/callwell", DB_POOL_MAX_SIZE="0")
    assert "pool" not in off.get("OPTIONS", {}) and off["CONN_MAX_AGE"] == 60  # e.g. behind PgBouncer
    sqlite = _settings_with(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'x.sqlite3'}")
    assert "pool" not in sqlite.get("OPTIONS", {})


@pytest.fixture
def pool_database():
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres") or not os.environ.get("REDIS_URL"):
        pytest.skip("needs DATABASE_URL (PostgreSQL) and REDIS_URL")
    import psycopg

    name = f"callwell_bench_pooltest_{secrets.token_hex(4)}"
    parts = urlsplit(url)
    admin_url = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield parts._replace(path=f"/{name}").geturl()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_uvicorn_keeps_postgresql_connections_within_the_pool_bound_under_load(pool_database):
    from bench._harness import bench_env, hammer, serve
    from bench.asgi_webhook_load import ConnectionSampler, connected
    from bench.connector_webhook import seed, signed_requests

    env = bench_env(DATABASE_URL=pool_database, REDIS_URL=os.environ["REDIS_URL"],
                    DJANGO_SETTINGS_MODULE="config.settings.production", DB_POOL_MAX_SIZE=POOL_MAX,
                    DB_POOL_MIN_SIZE=1, DB_CONN_MAX_AGE=60, DB_POOL_TIMEOUT=30)
    with serve(env=env, workers=WORKERS, server="uvicorn") as base:
        seeded = seed(env)
        specs = signed_requests(env, seeded, 200, secrets.token_hex(4))
        with ConnectionSampler(pool_database, interval=0.01) as sampler:
            stats = hammer(base, concurrency=32, requests=len(specs), make_request=lambda i: specs[i],
                           ok_statuses=lambda s: s == 200, ok_body=connected, max_seconds=240, timeout=60)
    assert stats.requests == len(specs) and stats.errors == 0, dict(stats.statuses)
    assert 0 < sampler.most <= POOL_MAX * WORKERS
