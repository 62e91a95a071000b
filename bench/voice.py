"""The browser dialer's two hot requests against the trivial /healthz view, on gunicorn: `python -m bench.voice`.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/callwell_bench_voice \
    REDIS_URL=redis://127.0.0.1:6379/14 \
    .venv/bin/python -m bench.voice --requests 1000

Seeds a ready workspace (connected Twilio connection with API key and TwiML app, a number,
its caller ID, a rep), logs the rep in, then measures at concurrency 1 and 32, each time
right after /healthz:

- `GET /v1/voice/token` as a logged-in rep (the path is described in docs/performance.md);
- the outbound TwiML webhook `POST /v1/voice/outbound/<workspace>`, validly signed, each
  request with a fresh CallSid so every one records a new call.

Prints p50/p99, the throughput ratio to /healthz, where the CPU went (gunicorn, this
database's PostgreSQL backends, the load generator) and, at c=32, whether p99 meets the
floor (at most 25 ms). Without DATABASE_URL/REDIS_URL it runs on SQLite with dev settings
(the smoke test does that). The token rate limit is raised for the run
(VOICE_TOKEN_RATE_LIMIT) so the counter is still paid for but does not answer 429.
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
    login_session,
    report,
    run_seed,
    serve,
    signed_form_posts,
    summary,
)

PASSWORD = "bench-" + secrets.token_hex(8)

SEED = r"""
import json, os, secrets
from django.contrib.auth import get_user_model
from telephony.models import CallerId, PhoneNumber, TwilioConnection
from workspaces.models import Membership, Workspace

suffix = secrets.token_hex(3)
ws = Workspace.objects.create(name="Bench voice " + suffix, slug="bench-voice-" + suffix)
user = get_user_model().objects.create_user("rep-" + suffix, password=os.environ["BENCH_PASSWORD"])
Membership.objects.create(workspace=ws, user=user, role="member")
conn = TwilioConnection.objects.create(
    workspace=ws, account_sid="AC" + secrets.token_hex(16), auth_token=secrets.token_hex(16), status="connected",
    api_key_sid="SK" + secrets.token_hex(16), api_key_secret=secrets.token_hex(16),
    twiml_app_sid="AP" + secrets.token_hex(16))
number = PhoneNumber.objects.create(workspace=ws, sid="PN" + secrets.token_hex(16), phone_number="+15125550100",
                                    is_primary=True, iso_country="US")
CallerId.objects.create(workspace=ws, phone_number=number.phone_number, kind="provisioned",
                        phone_number_ref=number, is_default=True, country="US", region="TX")
print("SEED=" + json.dumps({"workspace_id": ws.pk, "user_id": user.pk, "username": user.username,
                            "account_sid": conn.account_sid, "auth_token": conn.auth_token}))
"""


def seed(env: dict) -> dict:
    return run_seed(env, SEED, BENCH_PASSWORD=PASSWORD)


def outbound_requests(env: dict, seeded: dict, count: int, run_id: str) -> list[tuple]:
    identity = f"client:ws{seeded['workspace_id']}-u{seeded['user_id']}"
    return signed_form_posts(env, f"/v1/voice/outbound/{seeded['workspace_id']}", seeded["auth_token"], [
        {"CallSid": f"CA{run_id}{i:024x}"[:34], "AccountSid": seeded["account_sid"], "From": identity,
         "To": "(415) 555-0142", "CallerId": "+15125550100", "CallStatus": "ringing", "Direction": "inbound",
         "ApiVersion": "2010-04-01"}
        for i in range(count)])


def _fetch(base: str, method: str, path: str, headers: dict, body=None) -> tuple[int, str]:
    import http.client

    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    text = response.read().decode()
    conn.close()
    return response.status, text


def check_answers(base: str, session: dict, spec: tuple) -> None:
    status, text = _fetch(base, "GET", "/v1/voice/token", session)
    if status != 200 or '"token"' not in text:
        raise SystemExit(f"the token endpoint did not issue a token: HTTP {status}: {text[:300]}")
    status, text = _fetch(base, *spec[:2], spec[2], spec[3])
    if status != 200 or "<Dial" not in text or "+14155550142" not in text:
        raise SystemExit(f"the outbound webhook did not dial: HTTP {status}: {text[:500]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000, help="requests per measurement")
    parser.add_argument("--concurrency", default="1,32", help="comma-separated concurrency levels")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args(argv)
    levels = [int(x) for x in args.concurrency.split(",") if x.strip()]

    env = bench_env(VOICE_TOKEN_RATE_LIMIT=10_000_000)
    fresh_postgres_database(env["DATABASE_URL"])
    database = urlsplit(env["DATABASE_URL"]).scheme
    failed = False
    with serve(env=env, workers=args.workers, threads=args.threads) as base:
        seeded = seed(env)
        session = login_session(base, seeded["username"], PASSWORD)
        session = {"Cookie": session["Cookie"], "Accept": "application/json"}
        warm = outbound_requests(env, seeded, 51, secrets.token_hex(4))
        check_answers(base, session, warm[0])
        hammer(base + "/healthz", concurrency=2, requests=100)
        hammer(base + "/v1/voice/token", concurrency=2, requests=50, headers=session)
        hammer(base, concurrency=2, requests=len(warm) - 1, make_request=lambda i: warm[i + 1])
        print(f"database: {database}, settings: {env['DJANGO_SETTINGS_MODULE']}, gunicorn {args.workers} workers x "
              f"{args.threads} threads, {args.requests} requests per row, load average {os.getloadavg()[0]:.2f}")
        db = env["DATABASE_URL"]
        for level in levels:
            specs = outbound_requests(env, seeded, args.requests, secrets.token_hex(4))
            with cpu_meter(base) as cpu_base:
                baseline = hammer(base + "/healthz", concurrency=level, requests=args.requests)
            with cpu_meter(base, db) as cpu_token:
                token = hammer(base + "/v1/voice/token", concurrency=level, requests=args.requests,
                               headers=session, ok_statuses=lambda s: s == 200)
            with cpu_meter(base, db) as cpu_outbound:
                outbound = hammer(base, concurrency=level, requests=args.requests, make_request=lambda i: specs[i],
                                  ok_statuses=lambda s: s == 200)
            print()
            report([(f"healthz (baseline) c={level}", baseline), (f"GET /v1/voice/token c={level}", token),
                    (f"POST outbound TwiML c={level}", outbound)])
            summary("healthz", baseline, baseline, concurrency=level, cpu=cpu_base)
            summary("token", token, baseline, concurrency=level, cpu=cpu_token)
            summary("outbound webhook", outbound, baseline, concurrency=level, cpu=cpu_outbound)
            if token.errors or outbound.errors or baseline.errors:
                failed = True
                print(f"ERRORS: token {token.errors}, outbound {outbound.errors}, baseline {baseline.errors}",
                      file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
