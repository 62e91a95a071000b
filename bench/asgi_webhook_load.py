"""Incoming calls under load on uvicorn (issue 22.4): `python -m bench.asgi_webhook_load`.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/callwell_bench_asgi_load \
    REDIS_URL=redis://127.0.0.1:6379/14 \
    .venv/bin/python -m bench.asgi_webhook_load --requests 2000 --rounds 3

Runs the README's server, `uvicorn config.asgi:application --workers 2`, on production settings (PostgreSQL, Redis,
the bounded connection pool of `config.settings.base.postgres_pool_from_env`), seeds the workspace and connector
of `bench.connector_webhook`, then, per round, sends `/healthz` and then validly signed incoming-call webhooks
(`twilio-config`, a fresh CallSid each) at concurrency 64. While the webhooks run, a sampler counts this
database's PostgreSQL connections every 20 ms. Prints per round, and the median of the rounds:

- apologies: answers that are not a `<Connect><Stream>` (the spoken apology with HTTP 200, any other status, a
  dropped connection): must be 0;
- the most PostgreSQL connections seen, against the bound DB_POOL_MAX_SIZE × workers;
- throughput as a ratio to `/healthz` in the same round, and p50/p99.

Exits 1 when a round had an apology or went over the bound. PostgreSQL and Redis are required.
"""
from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import threading
from urllib.parse import urlsplit

from bench._harness import bench_env, fresh_postgres_database, hammer, report, serve
from bench.connector_webhook import check_answer, seed, signed_requests


class ConnectionSampler:
    """Counts the connections to one PostgreSQL database (other than its own) every `interval` seconds."""

    def __init__(self, database_url: str, interval: float = 0.02):
        self.database_url, self.interval = database_url, interval
        self.most = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psycopg

        name = urlsplit(self.database_url).path.lstrip("/")
        admin_url = urlsplit(self.database_url)._replace(path="/postgres").geturl()
        with psycopg.connect(admin_url, autocommit=True) as conn:
            while not self._stop.is_set():
                (count,) = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> "
                                        "pg_backend_pid()", [name]).fetchone()
                self.most = max(self.most, count)
                self._stop.wait(self.interval)

    def __enter__(self) -> ConnectionSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)


def connected(body: bytes) -> bool:
    return b"<Connect>" in body and b"<Stream" in body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="webhook requests per round")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pool-max", type=int, default=int(os.environ.get("DB_POOL_MAX_SIZE", "10")))
    parser.add_argument("--max-seconds", type=float, default=120.0, help="bound on each round's load")
    args = parser.parse_args(argv)
    if not (os.environ.get("DATABASE_URL", "").startswith("postgres") and os.environ.get("REDIS_URL")):
        print("needs DATABASE_URL (PostgreSQL, a database name containing 'bench') and REDIS_URL", file=sys.stderr)
        return 2

    env = bench_env(DB_POOL_MAX_SIZE=args.pool_max, DB_CONN_MAX_AGE=60)  # the setting: the pool wins
    fresh_postgres_database(env["DATABASE_URL"])
    bound = args.pool_max * args.workers
    rounds = []
    with serve(env=env, workers=args.workers, server="uvicorn") as base:
        seeded = seed(env)
        warm = signed_requests(env, seeded, 50, secrets.token_hex(4))
        check_answer(base, warm[0])
        hammer(base + "/healthz", concurrency=4, requests=200)
        hammer(base, concurrency=4, requests=len(warm) - 1, make_request=lambda i: warm[i + 1])
        print(f"uvicorn {args.workers} workers, production settings, pool max {args.pool_max} per process "
              f"(bound {bound}), c={args.concurrency}, {args.requests} webhooks per round, "
              f"load average {os.getloadavg()[0]:.2f}")
        for number in range(1, args.rounds + 1):
            specs = signed_requests(env, seeded, args.requests, secrets.token_hex(4))
            baseline = hammer(base + "/healthz", concurrency=args.concurrency, requests=args.requests,
                              max_seconds=args.max_seconds)
            with ConnectionSampler(env["DATABASE_URL"]) as sampler:
                webhook = hammer(base, concurrency=args.concurrency, requests=args.requests,
                                 make_request=lambda i: specs[i], ok_statuses=lambda s: s == 200,
                                 ok_body=connected, max_seconds=args.max_seconds, timeout=30.0)
            apologies = webhook.errors + (args.requests - webhook.requests)
            ratio = webhook.rps / baseline.rps if baseline.rps else 0.0
            rounds.append((apologies, sampler.most, ratio, webhook.p50_ms, webhook.p99_ms))
            print()
            report([(f"round {number}: healthz (baseline) c={args.concurrency}", baseline),
                    (f"round {number}: twilio-config c={args.concurrency}", webhook)])
            print(f"  apologies {apologies} (statuses {dict(webhook.statuses)}), most PostgreSQL connections "
                  f"{sampler.most} (bound {bound}), throughput {ratio:.2f}x healthz, "
                  f"load average {os.getloadavg()[0]:.2f}")
    print()
    print(f"median of {len(rounds)} rounds: apologies {statistics.median(r[0] for r in rounds):g}, "
          f"most PostgreSQL connections {statistics.median(r[1] for r in rounds):g} (bound {bound}), "
          f"throughput {statistics.median(r[2] for r in rounds):.2f}x healthz, "
          f"p50 {statistics.median(r[3] for r in rounds):.1f} ms, p99 {statistics.median(r[4] for r in rounds):.1f} ms")
    failed = any(r[0] or r[1] > bound for r in rounds)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
