"""The incoming-call webhook against the trivial /healthz view, on gunicorn: `python -m bench.connector_webhook`.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/callwell_bench_webhook \
    REDIS_URL=redis://127.0.0.1:6379/14 \
    .venv/bin/python -m bench.connector_webhook --requests 1000

Seeds a workspace (Twilio connection, an agent with a published version that needs one
secret and one variable, the Production environment supplying them, a phone connector),
then POSTs validly signed Twilio requests, each with a fresh CallSid (so every request
reads the connector, checks the environment, creates a call session, issues a stream token
and builds TwiML), at concurrency 1 and 32, each time right after /healthz. Prints p50/p99,
the throughput ratio to /healthz, where the CPU went and, at c=32, whether p99 meets the
floor (at most 25 ms). Without DATABASE_URL/REDIS_URL it runs on SQLite with dev settings
(the smoke test does that).
"""
from __future__ import annotations

import argparse
import os
import secrets
import sys
from urllib.parse import urlsplit

from bench._harness import (
    bench_env,
    cpu_meter,
    fresh_postgres_database,
    hammer,
    report,
    run_seed,
    serve,
    signed_form_posts,
    summary,
)

SEED = r"""
import json, secrets
from agents import services as a
from connectors import services as c
from telephony.models import TwilioConnection
from workspaces.services import workspace_create

ws = workspace_create(name="Bench " + secrets.token_hex(3))
conn = TwilioConnection.objects.create(workspace=ws, account_sid="AC" + secrets.token_hex(16),
                                       auth_token=secrets.token_hex(16), status="connected")
agent = a.agent_create(workspace=ws, name="Bench agent")
draft = agent.versions.get(state="draft")
a.agent_draft_update(draft=draft, greeting="Hello", secrets=["OPENAI_API_KEY"], variables=["COMPANY"])
a.handover_action_create(draft=draft, name="transfer_to_sales", destination="+31201234567")
a.agent_publish(agent=agent)
env = {e.kind: e for e in a.environments_ensure(workspace=ws)}["production"]
a.environment_secret_set(environment=env, name="OPENAI_API_KEY", value="sk-bench-" + secrets.token_hex(8))
a.environment_variable_set(environment=env, name="COMPANY", value="Bench Inc")
connector = c.connector_create(workspace=ws, agent=agent, environment=env, version_mode="published")
assert connector.enabled
print("SEED=" + json.dumps({"identifier": connector.identifier, "account_sid": conn.account_sid,
                            "auth_token": conn.auth_token}))
"""


def seed(env: dict) -> dict:
    return run_seed(env, SEED)


def signed_requests(env: dict, seeded: dict, count: int, run_id: str) -> list[tuple]:
    return signed_form_posts(env, f"/v1/agents/{seeded['identifier']}/twilio-config", seeded["auth_token"], [
        {"CallSid": f"CA{run_id}{i:024x}"[:34], "AccountSid": seeded["account_sid"], "From": "+15125550100",
         "To": "+15125550199", "CallStatus": "ringing", "Direction": "inbound", "ApiVersion": "2010-04-01"}
        for i in range(count)])


def check_answer(base: str, spec: tuple) -> None:
    import http.client

    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    method, path, headers, body = spec
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    text = response.read().decode()
    conn.close()
    if response.status != 200 or "<Connect>" not in text or "<Stream" not in text:
        raise SystemExit(f"the webhook did not connect the call: HTTP {response.status}: {text[:500]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000, help="requests per measurement")
    parser.add_argument("--concurrency", default="1,32", help="comma-separated concurrency levels")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args(argv)
    levels = [int(x) for x in args.concurrency.split(",") if x.strip()]

    env = bench_env()
    fresh_postgres_database(env["DATABASE_URL"])
    database = urlsplit(env["DATABASE_URL"]).scheme
    failed = False
    with serve(env=env, workers=args.workers, threads=args.threads) as base:
        seeded = seed(env)
        warm = signed_requests(env, seeded, 50, secrets.token_hex(4))
        check_answer(base, warm[0])
        hammer(base + "/healthz", concurrency=2, requests=100)
        hammer(base, concurrency=2, requests=len(warm) - 1, make_request=lambda i: warm[i + 1])
        print(f"database: {database}, settings: {env['DJANGO_SETTINGS_MODULE']}, gunicorn {args.workers} workers x "
              f"{args.threads} threads, {args.requests} requests per row, load average {os.getloadavg()[0]:.2f}")
        for level in levels:
            specs = signed_requests(env, seeded, args.requests, secrets.token_hex(4))
            with cpu_meter(base) as cpu_base:
                baseline = hammer(base + "/healthz", concurrency=level, requests=args.requests)
            with cpu_meter(base, env["DATABASE_URL"]) as cpu_webhook:
                webhook = hammer(base, concurrency=level, requests=args.requests, make_request=lambda i: specs[i],
                                 ok_statuses=lambda s: s == 200)
            print()
            report([(f"healthz (baseline) c={level}", baseline), (f"webhook twilio-config c={level}", webhook)])
            summary("healthz", baseline, baseline, concurrency=level, cpu=cpu_base)
            summary("twilio-config", webhook, baseline, concurrency=level, cpu=cpu_webhook)
            if webhook.errors or baseline.errors:
                failed = True
                print(f"ERRORS: webhook {webhook.errors}, baseline {baseline.errors}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
