"""The public API's `POST /api/v1/calls` against /healthz, on gunicorn: `python -m bench.api_calls`.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/callwell_bench_api \
    REDIS_URL=redis://127.0.0.1:6379/6 \
    .venv/bin/python -m bench.api_calls --requests 300

Seeds a workspace (its Twilio account on the local sandbox, an agent with a published version, the
Production environment, a caller ID, an API key), then, in the same run:

1. /healthz, then `POST /api/v1/calls` (each with its own Idempotency-Key, each one a real call_create to the
   sandbox, which accepts it; nobody answers) at each concurrency: p50/p99 and the ratio to /healthz.
2. The dial rate the concurrency limit allows: with the limit at L and calls that stay live, a burst of
   requests places exactly L calls (the rest get 429 at once); the live calls are then ended and the next
   burst places L again. The rate is L per average call length, printed for a 60 s call.

Without DATABASE_URL/REDIS_URL it runs on SQLite with dev settings. Loopback only.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from urllib.parse import urlsplit

from bench._harness import bench_env, cpu_meter, fresh_postgres_database, hammer, report, run_seed, serve, summary

SEED = r"""
import json, os, secrets
from agents import services as a
from api.services import api_key_create
from telephony.models import CallerId, OutboundCallPolicy, TwilioConnection
from workspaces.services import workspace_create

ws = workspace_create(name="Bench " + secrets.token_hex(3))
TwilioConnection.objects.create(workspace=ws, account_sid=os.environ["BENCH_ACCOUNT_SID"],
                                auth_token=os.environ["BENCH_AUTH_TOKEN"], status="connected")
CallerId.objects.create(workspace=ws, phone_number="+15125550100", kind="provisioned", is_default=True)
agent = a.agent_create(workspace=ws, name="Bench agent")
draft = agent.versions.get(state="draft")
a.agent_draft_update(draft=draft, greeting="Hi {first_name}")
a.agent_publish(agent=agent)
env = {e.kind: e for e in a.environments_ensure(workspace=ws)}["production"]
OutboundCallPolicy.objects.create(workspace=ws, max_concurrent_agent_calls=1_000_000)
_, key = api_key_create(workspace=ws, name="bench")
print("SEED=" + json.dumps({"workspace": ws.pk, "agent": agent.pk, "environment": env.pk, "key": key}))
"""

LIMIT = r"""
import json, os
from django.utils import timezone
from calls.models import CallSession
from telephony.models import OutboundCallPolicy
ws = int(os.environ["BENCH_WORKSPACE"])
ended = CallSession.objects.filter(workspace_id=ws, ended_at__isnull=True).update(ended_at=timezone.now(),
                                                                                  status="completed")
OutboundCallPolicy.objects.filter(workspace_id=ws).update(max_concurrent_agent_calls=int(os.environ["BENCH_LIMIT"]))
print("SEED=" + json.dumps({"ended": ended}))
"""


def call_requests(seeded: dict, count: int, run_id: str) -> list[tuple]:
    headers = {"Authorization": f"Bearer {seeded['key']}", "Content-Type": "application/json", "Host": "127.0.0.1"}
    specs = []
    for i in range(count):
        body = json.dumps({"agent": seeded["agent"], "environment": seeded["environment"],
                           "to": f"+1512555{i % 10000:04d}", "variables": {"first_name": "Bench"}})
        specs.append(("POST", "/api/v1/calls", {**headers, "Idempotency-Key": f"{run_id}-{i}"}, body))
    return specs


def main(argv: list[str] | None = None) -> int:
    from devtools.twilio_sandbox import SandboxServer

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300, help="requests per measurement")
    parser.add_argument("--concurrency", default="1,8", help="comma-separated concurrency levels")
    parser.add_argument("--limit", type=int, default=10, help="concurrent agent calls allowed (part 2)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args(argv)
    levels = [int(x) for x in args.concurrency.split(",") if x.strip()]

    sandbox = SandboxServer().start()
    sandbox.dial_outbound = False  # Twilio accepts each call; no callee (the calls stay live)
    account_sid, auth_token = sandbox.add_account(friendly_name="Bench")
    env = bench_env(TWILIO_API_BASE_URL=sandbox.base_url, API_RATE_PER_KEY="1000000/min")
    fresh_postgres_database(env["DATABASE_URL"])
    database = urlsplit(env["DATABASE_URL"]).scheme
    failed = False
    try:
        with serve(env=env, workers=args.workers, threads=args.threads) as base:
            seeded = run_seed(env, SEED, BENCH_ACCOUNT_SID=account_sid, BENCH_AUTH_TOKEN=auth_token)
            warm = call_requests(seeded, 20, secrets.token_hex(4))
            hammer(base + "/healthz", concurrency=2, requests=50)
            warmed = hammer(base, concurrency=2, requests=len(warm), make_request=lambda i: warm[i],
                            ok_statuses=lambda s: s == 201)
            if warmed.errors:
                raise SystemExit(f"the API did not place calls: {warmed.statuses}")
            print(f"database: {database}, settings: {env['DJANGO_SETTINGS_MODULE']}, gunicorn {args.workers} "
                  f"workers x {args.threads} threads, {args.requests} requests per row, "
                  f"load average {os.getloadavg()[0]:.2f}")
            for level in levels:
                specs = call_requests(seeded, args.requests, secrets.token_hex(4))
                with cpu_meter(base) as cpu_base:
                    baseline = hammer(base + "/healthz", concurrency=level, requests=args.requests)
                with cpu_meter(base, env["DATABASE_URL"]) as cpu_api:
                    created = hammer(base, concurrency=level, requests=args.requests, make_request=lambda i: specs[i],
                                     ok_statuses=lambda s: s == 201)
                print()
                report([(f"healthz (baseline) c={level}", baseline), (f"POST /api/v1/calls c={level}", created)])
                summary("healthz", baseline, baseline, concurrency=level, cpu=cpu_base)
                summary("api-create", created, baseline, concurrency=level, cpu=cpu_api)
                failed |= bool(created.errors or baseline.errors)

            print(f"\nconcurrency limit {args.limit}: bursts of {args.limit * 3} requests at c=8, calls staying live")
            for burst in range(2):
                run_seed(env, LIMIT, BENCH_WORKSPACE=str(seeded["workspace"]), BENCH_LIMIT=str(args.limit))
                specs = call_requests(seeded, args.limit * 3, secrets.token_hex(4))
                stats = hammer(base, concurrency=8, requests=len(specs), make_request=lambda i: specs[i],
                               ok_statuses=lambda s: s in (201, 429))
                placed, refused = stats.statuses.get(201, 0), stats.statuses.get(429, 0)
                print(f"  burst {burst + 1}: placed {placed}, refused (429) {refused}, "
                      f"p99 {stats.p99_ms:.1f} ms; allowed dial rate = {args.limit} calls per call length "
                      f"({args.limit / 60:.2f} calls/s for 60 s calls)")
                failed |= placed != args.limit or bool(stats.errors)
    finally:
        sandbox.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
