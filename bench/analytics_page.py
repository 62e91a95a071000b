"""The Studio analytics page over 100,000 agent calls (two versions, three turns each, analyses, handovers, action
runs) against the trivial /healthz view, in the same run, on gunicorn.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/callwell_bench_analytics REDIS_URL=redis://127.0.0.1:6379/14 \\
    .venv/bin/python -m bench.analytics_page                       # PostgreSQL (the number that counts)
    .venv/bin/python -m bench.analytics_page --calls 20000         # SQLite, smaller

Reports the page's p50/p95 and throughput as ratios to /healthz. The page's query count does not grow with the
calls (tests/analytics asserts it); this measures what the database's aggregation costs. The rounds run on a warm
cache (settled days cached, analytics/selectors.py); each round first times the page once with the analytics
entries deleted from Redis ("cold": the whole period from the database).
"""
from __future__ import annotations

import argparse
import sys

from bench._harness import bench_env, fresh_postgres_database, hammer, login_session, report, run_seed, seed_demo, serve

SEED = """
import json, random
from datetime import timedelta
from django.utils import timezone
from agents import services
from agents.models import Agent, AgentVersion
from calls.models import CallActionRun, CallAnalysis, CallHandover, CallSession, CallTurn
from workspaces.models import Workspace
ws = Workspace.objects.get(slug="demo")
agent = services.agent_create(workspace=ws, name="Bench agent")
draft = AgentVersion.objects.filter(agent=agent).first()
for n in (1, 2):
    services.agent_draft_update(draft=draft, greeting=f"v{n}")
    services.agent_publish(agent=agent)
    draft.refresh_from_db()
versions = list(AgentVersion.objects.filter(agent=agent, number__isnull=False))
rng = random.Random(7)
now = timezone.now()
N = int(__N__)
for start in range(0, N, 5000):
    batch, starts = [], []
    for i in range(start, min(N, start + 5000)):
        t = now - timedelta(seconds=rng.randrange(30 * 86400))
        starts.append(t)
        batch.append(CallSession(workspace=ws, agent_version=versions[i % 2], call_sid=f"CA{i:032d}",
                                 status=rng.choice(["completed"] * 8 + ["no-answer", "failed"]),
                                 started_at=t, ended_at=t + timedelta(seconds=rng.randrange(20, 600))))
    sessions = CallSession.objects.bulk_create(batch)
    # started_at is auto_now_add: bulk_create stamped every call "now"; spread them over the 30 days again.
    for s, t in zip(sessions, starts):
        s.started_at = t
    CallSession.objects.bulk_update(sessions, ["started_at"], batch_size=1000)
    sessions = list(CallSession.objects.filter(call_sid__in=[s.call_sid for s in batch]).only("id", "started_at"))
    turns, analyses, handovers, runs = [], [], [], []
    for s in sessions:
        for seq in range(3):
            lat = rng.randrange(400, 2500)
            turns.append(CallTurn(call_session_id=s.id, seq=seq, role="agent", text="x", heard=rng.random() > 0.1,
                                  latency_ms=lat, recognition_ms=lat // 3, first_token_ms=lat // 2,
                                  first_byte_ms=lat * 3 // 4))
        analyses.append(CallAnalysis(call_session_id=s.id, status="done", success=rng.random() > 0.3))
        if rng.random() < 0.2:
            handovers.append(CallHandover(call_session_id=s.id, action_name="sales", destination="+15125550100",
                                          transport="media_streams", outcome=rng.choice(["answered", "no-answer"])))
        if rng.random() < 0.3:
            runs.append(CallActionRun(call_session_id=s.id, name="order", ok=rng.random() > 0.1,
                                      started_at=s.started_at))
    CallTurn.objects.bulk_create(turns)
    CallAnalysis.objects.bulk_create(analyses)
    CallHandover.objects.bulk_create(handovers)
    CallActionRun.objects.bulk_create(runs)
print("SEED=" + json.dumps({"agent": agent.pk, "calls": CallSession.objects.filter(workspace=ws).count()}))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=60, help="page requests per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    env = bench_env()
    if env.get("DATABASE_URL"):
        fresh_postgres_database(env["DATABASE_URL"])
    with serve(env=env, workers=2, threads=2) as base:
        seed_demo(env)
        seeded = run_seed(env, SEED.replace("__N__", str(args.calls)))
        auth = login_session(base, "admin", "callwell-demo")
        page = f"{base}/studio/analytics/?agent={seeded['agent']}&days=30"
        hammer(page, concurrency=1, requests=3, headers=auth)  # warm-up
        rows, ratios, colds = [], [], []
        for n in range(args.rounds):
            if env.get("REDIS_URL"):
                _forget_analytics(env["REDIS_URL"])
                cold = hammer(page, concurrency=1, requests=1, headers=auth, timeout=60)
                colds.append(cold.percentile(50))
                rows.append((f"analytics cold (no cached day) round {n + 1}", cold))
            healthz = hammer(base + "/healthz", concurrency=1, requests=args.requests * 5)
            stats = hammer(page, concurrency=1, requests=args.requests, headers=auth, max_seconds=180, timeout=60)
            rows += [(f"healthz (baseline) round {n + 1}", healthz),
                     (f"analytics, {seeded['calls']} calls, round {n + 1}", stats)]
            ratios.append((stats.percentile(95), healthz.percentile(95)))
    report(rows)
    for i, (p95, base95) in enumerate(ratios, 1):
        print(f"round {i}: analytics page p95 {p95:.1f} ms; /healthz p95 {base95:.2f} ms; ratio {p95 / base95:.0f}x")
    med = sorted(p for p, _ in ratios)[len(ratios) // 2]
    print(f"median p95 over {len(ratios)} rounds: {med:.1f} ms")
    if colds:
        print(f"cold page (no cached day), median of {len(colds)}: {sorted(colds)[len(colds) // 2]:.1f} ms")
    return 0


def _forget_analytics(redis_url: str) -> None:
    """Delete the analytics' cached days from the bench's Redis database (nothing else)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match="*analytics:version-day:*", count=1000))
    if keys:
        client.delete(*keys)


if __name__ == "__main__":
    sys.exit(main())
