"""Profile mode: one hot path in-process (no HTTP server), with its SQL and optionally cProfile.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/callwell_bench_profile \
    REDIS_URL=redis://127.0.0.1:6379/14 \
    .venv/bin/python -m bench.profile token --requests 500 --cprofile

Paths: `healthz`, `token` (GET /v1/voice/token as a rep), `outbound` (the signed outbound TwiML webhook, a
fresh CallSid each time), `webhook` (the signed incoming-call `twilio-config`, a fresh CallSid each time),
`settings` (Settings → Dialer as the demo admin; `--path` picks another page). Seeds a fresh database with the
benchmarks' own seeds (same settings as `bench_env()`: production on PostgreSQL + Redis, else dev on SQLite),
then drives the view through `django.test.Client`: prints the SQL queries and cache (Redis) commands of one
warm request and the mean time per request next to `/healthz` measured the same way. Not a benchmark (no server, no concurrency): use it to see
where a request's time goes, then measure with the benchmarks.
"""
from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import os
import pstats
import secrets
import subprocess
import sys
import time
from urllib.parse import urlencode

from bench._harness import ROOT, bench_env, fresh_postgres_database, seed_demo

PATHS = ("healthz", "token", "outbound", "webhook", "settings")


def _prepare(env: dict, path_name: str, numbers: int) -> dict:
    from bench import connector_webhook, settings_dialer, voice

    full_env = {**os.environ, **env}
    subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "-v0"], cwd=ROOT, env=full_env, check=True)
    seeded: dict = {}
    if path_name in ("token", "outbound"):
        seeded = voice.seed(env)
    elif path_name == "webhook":
        seeded = connector_webhook.seed(env)
    elif path_name == "settings":
        seed_demo(env)
        settings_dialer.seed_numbers(env, numbers)
    return seeded


def _request_maker(path_name: str, seeded: dict, page: str):
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client
    from twilio.request_validator import RequestValidator

    client = Client(HTTP_HOST="127.0.0.1")
    run = secrets.token_hex(4)
    if path_name == "healthz":
        return lambda i: client.get("/healthz")
    if path_name == "token":
        client.force_login(get_user_model().objects.get(pk=seeded["user_id"]))
        return lambda i: client.get("/v1/voice/token", HTTP_ACCEPT="application/json")
    if path_name == "settings":
        client.force_login(get_user_model().objects.get(username="admin"))
        return lambda i: client.get(page)
    if path_name == "outbound":
        path = f"/v1/voice/outbound/{seeded['workspace_id']}"
        params = {"From": f"client:ws{seeded['workspace_id']}-u{seeded['user_id']}", "To": "(415) 555-0142",
                  "CallerId": "+15125550100"}
    else:
        path = f"/v1/agents/{seeded['identifier']}/twilio-config"
        params = {"From": "+15125550100", "To": "+15125550199"}
    url = settings.PUBLIC_BASE_URL.rstrip("/") + path
    validator = RequestValidator(seeded["auth_token"])

    def signed(i):
        data = {"CallSid": f"CA{run}{i:024x}"[:34], "AccountSid": seeded["account_sid"], "CallStatus": "ringing",
                "Direction": "inbound", "ApiVersion": "2010-04-01", **params}
        return client.post(path, urlencode(data), content_type="application/x-www-form-urlencoded",
                           HTTP_X_TWILIO_SIGNATURE=validator.compute_signature(url, data))

    return signed


@contextlib.contextmanager
def _redis_commands():
    """The Redis commands sent inside the block (None when the cache is not Redis): one line each, keys shortened."""
    from django.conf import settings

    if "redis" not in settings.CACHES["default"]["BACKEND"].lower():
        yield None
        return
    import redis

    commands: list[str] = []
    original = redis.Redis.execute_command

    def execute_command(self, *args, **options):
        commands.append(" ".join(str(a)[:48] for a in args[:3]))
        return original(self, *args, **options)

    redis.Redis.execute_command = execute_command
    try:
        yield commands
    finally:
        redis.Redis.execute_command = original


def _time(make, requests: int, start: int) -> float:
    for i in range(start, start + 20):  # warm-up
        make(i)
    began = time.perf_counter()
    for i in range(start + 20, start + 20 + requests):
        make(i)
    return (time.perf_counter() - began) / requests * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path_name", choices=PATHS)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--path", default="/settings/dialer/", help="the page for `settings`")
    parser.add_argument("--numbers", type=int, default=200, help="phone numbers for `settings`")
    parser.add_argument("--cprofile", action="store_true", help="print the cProfile top 40 (cumulative, own time)")
    args = parser.parse_args(argv)

    env = bench_env(VOICE_TOKEN_RATE_LIMIT=10_000_000, DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost,testserver")
    fresh_postgres_database(env["DATABASE_URL"])
    seeded = _prepare(env, args.path_name, args.numbers)
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    make = _request_maker(args.path_name, seeded, args.path)
    response = make(0)
    if response.status_code != 200:
        raise SystemExit(f"{args.path_name}: HTTP {response.status_code}: {response.content[:300]!r}")
    make(1)
    with CaptureQueriesContext(connection) as queries, _redis_commands() as commands:
        make(2)
    print(f"{args.path_name}: {len(queries.captured_queries)} SQL queries on a warm request")
    for query in queries.captured_queries:
        print("   ", query["sql"][:160])
    if commands is not None:
        print(f"{args.path_name}: {len(commands)} Redis commands on a warm request")
        for command in commands:
            print("   ", command[:160])
    baseline = _time(_request_maker("healthz", {}, ""), args.requests, 10_000)
    mean = _time(make, args.requests, 100)
    print(f"healthz {baseline:.3f} ms/request, {args.path_name} {mean:.3f} ms/request in-process "
          f"({args.requests} requests; settings {env['DJANGO_SETTINGS_MODULE']})")
    if args.cprofile:
        profiler = cProfile.Profile()
        profiler.enable()
        for i in range(50_000, 50_000 + args.requests):
            make(i)
        profiler.disable()
        for order in ("cumulative", "tottime"):
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(40)
            print(out.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
