"""The campaign scheduler's cost per tick with 100,000 contacts in the list: `python -m bench.campaign_tick`.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/callwell_bench_campaigns \
    REDIS_URL=redis://127.0.0.1:6379/10 \
    .venv/bin/python -m bench.campaign_tick --contacts 100000

In process (the tick is a Celery task body: no HTTP), on a fresh database, in the same run:

1. an empty tick (no campaign running): the baseline;
2. a tick over a running campaign of N contacts, none inside its calling window (their local time is night);
3. a tick over the same campaign inside the window, all 10 slots busy (10 calls in progress are read back);
4. a tick that claims 10 due contacts and dials them (`agent_call_place`, `call_create` to an in-process
   Twilio sandbox that accepts every call).

Each row: the median and p90 of R rounds in ms, the queries per tick, and the ratio to the empty tick.
Without DATABASE_URL it runs on SQLite (dev settings). Loopback only.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from bench._harness import bench_env, fresh_postgres_database


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)

    env = bench_env(CAMPAIGNS_CALLS_PER_SECOND="100000", OUTBOUND_ALLOW_PRIVATE_TARGETS="1",
                    OUTBOUND_ALLOW_HTTP="1")
    fresh_postgres_database(env["DATABASE_URL"])
    os.environ.update(env)
    from devtools.twilio_sandbox import SandboxServer

    sandbox = SandboxServer().start()
    os.environ["TWILIO_API_BASE_URL"] = sandbox.base_url

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    call_command("migrate", verbosity=0)

    from agents import services as agent_services
    from calls.models import CallSession
    from campaigns import services
    from campaigns.models import Campaign, CampaignAttempt, CampaignContact, Contact, ContactList
    from telephony.models import CallerId, OutboundCallPolicy, TwilioConnection
    from workspaces.services import workspace_create

    sid, token = sandbox.add_account(friendly_name="Bench")
    ws = workspace_create(name="Bench campaigns")
    TwilioConnection.objects.create(workspace=ws, account_sid=sid, auth_token=token, status="connected")
    CallerId.objects.create(workspace=ws, phone_number="+15125550100", kind="provisioned", is_default=True)
    OutboundCallPolicy.objects.create(workspace=ws, max_concurrent_agent_calls=1000)
    agent = agent_services.agent_create(workspace=ws, name="Bench agent")
    agent_services.agent_publish(agent=agent)
    environment = {e.kind: e for e in agent_services.environments_ensure(workspace=ws)}["production"]

    contact_list = ContactList.objects.create(workspace=ws, name="Big")
    areas = [("212", "America/New_York"), ("312", "America/Chicago"), ("213", "America/Los_Angeles")]
    started = time.perf_counter()
    Contact.objects.bulk_create(
        (Contact(contact_list=contact_list, phone_number=f"+1{areas[i % 3][0]}{2000000 + i:07d}",
                 name=f"Lead {i}", fields={"first_name": f"L{i}"}, time_zone=areas[i % 3][1])
         for i in range(args.contacts)), batch_size=5000)
    from datetime import time as dtime

    campaign = Campaign.objects.create(
        workspace=ws, name="Bench", contact_list=contact_list, agent=agent, environment=environment,
        caller_id="+15125550100", window_days=[1, 2, 3, 4, 5], window_start=dtime(9), window_end=dtime(17),
        max_concurrent=10, max_attempts=3)
    monday_noon_ny = datetime(2026, 12, 7, 17, 0, tzinfo=dt_timezone.utc)
    night = monday_noon_ny + timedelta(hours=10)  # 03:00 in New York, midnight in Los Angeles
    print(f"seeded {args.contacts} contacts in {time.perf_counter() - started:.1f}s", file=sys.stderr)

    def measure(label, prepare, now):
        times, queries = [], 0
        for _ in range(args.rounds):
            prepare()
            reset_queries()
            with CaptureQueriesContext(connection) as ctx:
                t0 = time.perf_counter()
                services.campaigns_tick(now=now)
                times.append((time.perf_counter() - t0) * 1000)
            queries = len(ctx.captured_queries)
        times.sort()
        return label, statistics.median(times), times[int(len(times) * 0.9) - 1], queries

    rows = [measure("empty tick (no campaign running)", lambda: None, monday_noon_ny)]
    services.campaign_start(campaign=campaign, now=monday_noon_ny - timedelta(hours=1))
    rows.append(measure(f"{args.contacts} contacts, outside the window", lambda: None, night))

    def full_slots():
        if CampaignContact.objects.filter(campaign=campaign, state="calling").count() < 10:
            services.campaigns_tick(now=monday_noon_ny)

    full_slots()
    rows.append(measure(f"{args.contacts} contacts, 10 calls in progress", full_slots, monday_noon_ny))

    def free_slots():
        live = list(CampaignContact.objects.filter(campaign=campaign, state="calling").values_list("pk", flat=True))
        CallSession.objects.filter(workspace=ws, ended_at__isnull=True).update(
            status="completed", outcome="conversation", answered_by="human", ended_at=monday_noon_ny)
        services.campaigns_tick(now=monday_noon_ny)  # settles the ended calls and dials the next 10 (untimed)
        CallSession.objects.filter(workspace=ws, ended_at__isnull=True).update(
            status="completed", outcome="conversation", answered_by="human", ended_at=monday_noon_ny)
        for attempt in CampaignAttempt.objects.filter(ended_at__isnull=True):
            services.attempt_close(attempt=attempt, outcome="answered", now=monday_noon_ny)
        return live

    rows.append(measure(f"{args.contacts} contacts, claim and dial 10", free_slots, monday_noon_ny))
    sandbox.stop()

    base = rows[0][1]
    print(f"{'tick':52} {'p50 ms':>9} {'p90 ms':>9} {'queries':>8} {'p50/base':>9}")
    for label, p50, p90, queries in rows:
        print(f"{label:52} {p50:9.2f} {p90:9.2f} {queries:8d} {p50 / base:9.1f}")
    print(f"database: {connection.vendor}, rounds: {args.rounds}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
