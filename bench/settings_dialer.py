"""Settings → Dialer pages against the trivial /healthz view, on gunicorn, with 200 numbers and caller IDs.

    .venv/bin/python -m bench.settings_dialer                 # ~1000 requests per row, well under a minute
    .venv/bin/python -m bench.settings_dialer --requests 200 --numbers 50

Reports each page's requests/s as a ratio to /healthz measured in the same run (read the
ratios, not the absolute numbers). Nothing reaches Twilio: the pages read the database only.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys

from bench._harness import ROOT, bench_env, fresh_postgres_database, hammer, login_session, report, seed_demo, serve

SEED = """
import secrets
from telephony.models import CallerId, PhoneNumber, TwilioConnection
from telephony.services import _caller_id_for_number
from workspaces.models import Workspace
ws = Workspace.objects.get(slug="demo")
TwilioConnection.objects.update_or_create(workspace=ws, defaults=dict(
    account_sid="AC" + secrets.token_hex(16), auth_token=secrets.token_hex(16), status="connected",
    api_key_sid="SK" + secrets.token_hex(16), api_key_secret=secrets.token_hex(16),
    twiml_app_sid="AP" + secrets.token_hex(16)))
CallerId.objects.filter(workspace=ws).delete()
PhoneNumber.objects.filter(workspace=ws).delete()
numbers = PhoneNumber.objects.bulk_create([
    PhoneNumber(workspace=ws, sid="PN" + secrets.token_hex(16), phone_number=f"+1512555{i:04d}", locality="Austin",
                region="TX", iso_country="US", capabilities={"voice": True, "sms": True}, is_primary=(i == 0))
    for i in range(N)])
numbers = list(PhoneNumber.objects.filter(workspace=ws))
CallerId.objects.bulk_create([_caller_id_for_number(n, is_default=n.is_primary) for n in numbers])
print(PhoneNumber.objects.filter(workspace=ws).count())
"""


def seed_numbers(env: dict, count: int) -> None:
    full_env = {**os.environ, **env}
    subprocess.run([sys.executable, "manage.py", "shell", "-c", f"N = {int(count)}\n" + SEED], cwd=ROOT,
                   env=full_env, check=True, stdout=subprocess.DEVNULL)


PAGES = [
    ("settings/dialer", "/settings/dialer/"),
    ("settings/dialer/numbers", "/settings/dialer/numbers/"),
    ("settings/dialer/caller-ids", "/settings/dialer/caller-ids/"),
    ("settings/dialer/status (htmx poll)", "/settings/dialer/status/"),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000, help="requests per row")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--numbers", type=int, default=200, help="phone numbers and caller IDs in the workspace")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args(argv)
    env = bench_env()
    fresh_postgres_database(env["DATABASE_URL"])
    with serve(env=env, workers=args.workers, threads=args.threads) as base:
        seed_demo(env)
        seed_numbers(env, args.numbers)
        auth = login_session(base, "admin", "callwell-demo")
        kw = {"concurrency": args.concurrency, "requests": args.requests, "max_seconds": 12}
        hammer(base + "/healthz", concurrency=2, requests=min(100, args.requests))  # warm-up
        hammer(base + "/settings/dialer/", concurrency=2, requests=min(20, args.requests), headers=auth)
        rows = [("healthz (baseline)", hammer(base + "/healthz", **kw))]
        for label, path in PAGES:
            rows.append((f"{label} ({args.numbers} numbers)", hammer(base + path, headers=auth, **kw)))
    report(rows)
    baseline = rows[0][1].rps
    failed = False
    for label, stats in rows[1:]:
        ratio = stats.rps / baseline if baseline else float("nan")
        print(f"{label}: throughput ratio to healthz = {ratio:.2f} ({stats.rps:.1f} / {baseline:.1f} req/s)")
        if stats.errors or set(stats.statuses) - {200}:
            print(f"  errors: {stats.errors}, statuses: {dict(stats.statuses)}")
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
