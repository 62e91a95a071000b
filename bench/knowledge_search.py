"""Knowledge retrieval over 10,000 passages: `passages_search` p50/p95 beside a trivial query, in one run.

    .venv/bin/python -m bench.knowledge_search                     # SQLite (FTS5), a fresh temporary file
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/callwell_bench_knowledge \
    .venv/bin/python -m bench.knowledge_search                     # PostgreSQL (tsvector + GIN)

A PostgreSQL database's name must contain `bench`: it is dropped and re-created. The knowledge base holds the
product manual of tests/knowledge (50 sections) and 9,950 generated passages of 60-140 words drawn from the
manual's words and 5,000 made-up ones (Zipf-like, so common words match thousands of passages, as in real
documents); the 50 questions of tests/knowledge/questions.json are asked in turn.

Rows: the trivial query (one passage by primary key, the baseline); `passages_search` over the live knowledge
base and over a published version's snapshot; and the every-turn lookup as the cascaded pipeline adds it to a
caller turn (`Provider.knowledge_for_turn`: the search in a worker thread via database_sync_to_async, awaited
on the event loop). Each row `--runs` times (default 3) in the same process, then the median of the runs; the
load average beside every run. Also: how many of the 50 questions find their manual section in the top 3 among
the 10,000 passages, and the turn latency of `--turn-calls` simulated cascaded calls (zero-latency stages) with
the every-turn lookup off and on, in the same run. Target: retrieval p95 at most 20 ms on both databases.

`--hybrid` (PostgreSQL with the pgvector extension): every live passage also gets a 1,536-dimension embedding
(a local hashed bag of words standing in for a model: the binary column and the pgvector column), and two more
rows beside full text alone in the same run: `passages_search` with embeddings configured, the vector ranking by
pgvector's `<=>` in SQL, and the same by numpy (the path without the column). The question's embedding is
computed in-process (a zero-latency endpoint): the rows show what our side adds, not the vendor's round trip.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PASSAGES = 10_000
TARGET_P95_MS = 20.0


def _setup_django() -> str:
    sys.path.insert(0, str(ROOT))
    url = os.environ.get("DATABASE_URL", "")
    if url:
        name = url.rsplit("/", 1)[-1]
        if "bench" not in name:
            raise SystemExit("The PostgreSQL database's name must contain 'bench' (it is dropped and re-created).")
        import psycopg

        with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
    else:
        folder = Path(tempfile.mkdtemp(prefix="callwell-bench-knowledge-"))
        os.environ["DATABASE_URL"] = f"sqlite:///{folder / 'bench.sqlite3'}"
        os.environ.setdefault("CELERY_FS_BROKER_DIR", str(folder / "broker"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")
    os.environ.setdefault("DJANGO_DEBUG", "0")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.db import connection

    return connection.vendor


def _seed(seed: int = 7):
    from agents.models import Agent, AgentVersion
    from agents.services import agent_publish
    from knowledge import services
    from knowledge.extraction import passages_split
    from knowledge.models import Passage
    from workspaces.models import Workspace

    manual = (ROOT / "tests" / "knowledge" / "manual.md").read_text(encoding="utf-8")
    workspace = Workspace.objects.create(name="Bench", slug="bench-knowledge")
    kb = services.knowledge_base_create(workspace=workspace, name="Manual")
    # The generated passages go in first, the manual's last: a search that stopped at the first rows it found
    # (lowest ids, first on disk) would favour the generated ones, never the manual's.
    filler = services.source_text_add(knowledge_base=kb, title="Generated", text="Generated passages.")
    rng = random.Random(seed)
    words = sorted(set(re.findall(r"[a-z]+", manual.lower())))
    made_up = ["".join(rng.choice("abcdefghiklmnoprstuvwyz") for _ in range(rng.randint(4, 10))) for _ in range(5000)]
    vocabulary = words + made_up
    weights = [1.0 / (rank + 1) ** 0.9 for rank in range(len(vocabulary))]
    rng.shuffle(vocabulary)
    generated = []
    for i in range(PASSAGES - filler.passage_count - len(passages_split(manual))):
        n = rng.randint(60, 140)
        text = " ".join(rng.choices(vocabulary, weights=weights, k=n)).capitalize() + "."
        generated.append(Passage(workspace=workspace, knowledge_base=kb, source=filler,
                                 source_title="Generated", position=i + 2, text=text))
    Passage.objects.bulk_create(generated, batch_size=2000)
    services.source_text_add(knowledge_base=kb, title="K2 owner's manual", text=manual)
    agent = Agent.objects.create(workspace=workspace, name="Bench", slug="bench")
    draft = AgentVersion.objects.create(agent=agent, state=AgentVersion.State.DRAFT)
    services.version_knowledge_set(draft=draft, knowledge_base=kb, used=True, every_turn=True)
    published = agent_publish(agent=agent)
    return workspace, kb, draft, published


def _pct(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _database_cpu() -> float:
    """CPU seconds of this benchmark's PostgreSQL backends so far (0 on SQLite, which runs in this process)."""
    from django.db import connection

    from bench._harness import _cpu_seconds

    if connection.vendor != "postgresql":
        return 0.0
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        return sum(_cpu_seconds(pid) for (pid,) in cursor.fetchall())


CPU: dict[str, float] = {}


def _time(fn, rounds: int, label: str = "") -> list[float]:
    """Wall ms per call; the mean CPU ms per call (this process + the database's backends) goes to CPU[label]:
    on a loaded shared machine the wall times wait for a core, the CPU figure does not."""
    for _ in range(5):
        fn(0)
    out = []
    cpu0, db0 = time.process_time(), _database_cpu()
    for i in range(rounds):
        t0 = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - t0) * 1000)
    CPU[label] = (time.process_time() - cpu0 + _database_cpu() - db0) * 1000 / rounds
    return out


def _quality(workspace, kb) -> int:
    """How many of the 50 questions find their manual section in the top 3 among all 10,000 passages."""
    from knowledge.selectors import passages_search

    found = 0
    for q in json.loads((ROOT / "tests/knowledge/questions.json").read_text()):
        hits = passages_search(workspace_id=workspace.pk, query=q["question"], knowledge_base_ids=[kb.pk], limit=3)
        found += any(h.text.startswith(q["section"] + ":") for h in hits)
    return found


async def _cascaded_turns(scope, *, calls: int, seconds: float) -> list[int]:
    """Turn latency (the caller's end of turn -> first agent audio) of `calls` simulated cascaded calls at once,
    real-time pacing, zero-latency stages (bench.media_streams_cascaded's): what our own pipeline adds, with the
    version's knowledge `scope` (every turn, or none)."""
    from bench.media_streams_cascaded import FRAME, _caller_audio, _stages
    from calls.engine.context import CallContext
    from calls.engine.engine import call_open
    from calls.engine.events import TurnLatency
    from calls.providers.cascaded import CascadedProvider
    from calls.providers.speech import vad

    InstantSTT, InstantTTS, InstantChat = _stages()
    caller = _CALLER.setdefault("audio", _caller_audio())
    frames = [base64.b64encode(caller[i:i + 160]).decode() for i in range(0, len(caller) - 159, 160)]
    turn_ms: list[int] = []

    async def one(k: int, start_at: float) -> None:
        ctx = CallContext(transport="media_streams", provider="cascaded", call_sid=f"CA{k:032d}", knowledge=scope)
        provider = CascadedProvider(ctx, stt=InstantSTT(), tts=InstantTTS(), chat=InstantChat(),
                                    voice_activity=vad.VoiceActivity(silero_path=""))
        original = provider.emit

        def emit(event):
            if isinstance(event, TurnLatency):
                turn_ms.append(event.total_ms)
            original(event)
        provider.emit = emit

        async def send(_msg):
            pass
        call = call_open("media_streams", ctx, send, stream_sid=f"MZ{k:032d}", provider=provider)
        call.start()
        loop = asyncio.get_running_loop()
        offset, i = random.randrange(len(frames)), 0
        while (at := start_at + i * FRAME) <= start_at + seconds:
            if (delay := at - loop.time()) > 0:
                await asyncio.sleep(delay)
            await call.handle({"event": "media", "streamSid": call.wire.stream_sid,
                               "media": {"payload": frames[(offset + i) % len(frames)]}})
            i += 1
        await call.close()

    loop = asyncio.get_running_loop()
    start_at = loop.time() + 0.3
    await asyncio.gather(*(one(k, start_at + random.random() * FRAME) for k in range(calls)))
    return turn_ms


_CALLER: dict = {}
HYBRID_DIMENSIONS = 1536


def _hashed_vector(text: str):
    """A unit bag-of-words vector (hashed words): a stand-in embedding, deterministic, no model."""
    import hashlib

    import numpy as np

    vector = np.zeros(HYBRID_DIMENSIONS, dtype=np.float32)
    for word in re.findall(r"[a-z]+", text.lower()):
        vector[int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
               % HYBRID_DIMENSIONS] += 1.0
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm else vector


def _hybrid_setup(kb) -> str:
    """Embeds the live passages (both columns) and makes the question's embedding local; '' or why not."""
    from django.db import connection

    from knowledge import embeddings
    from knowledge.models import Passage

    if not embeddings.pgvector_column(connection):
        return "no pgvector column (PostgreSQL without the `vector` extension, or SQLite)"
    rows = list(Passage.objects.filter(knowledge_base=kb).values_list("id", "text"))
    with connection.cursor() as cursor:
        for start in range(0, len(rows), 1000):
            chunk = [(pk, _hashed_vector(text)) for pk, text in rows[start:start + 1000]]
            cursor.execute(
                "UPDATE knowledge_passage p SET embedding = v.blob, embedding_model = 'bench-hashed', "
                "embedding_vector = v.vec::vector FROM unnest(%s::bigint[], %s::bytea[], %s::text[]) AS v(id, blob, vec) "
                "WHERE p.id = v.id",
                [[pk for pk, _ in chunk], [embeddings.pack(v) for _, v in chunk],
                 [embeddings.vector_literal(v) for _, v in chunk]])
        cursor.execute("ANALYZE knowledge_passage")
    embeddings.embed = lambda texts, *, config, timeout: __import__("numpy").stack([_hashed_vector(t) for t in texts])
    return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=500, help="searches per row and run")
    parser.add_argument("--runs", type=int, default=3, help="runs of every row (the summary takes their median)")
    parser.add_argument("--turn-calls", type=int, default=8, help="simulated cascaded calls at once (0: skip)")
    parser.add_argument("--turn-seconds", type=float, default=12.0)
    parser.add_argument("--hybrid", action="store_true",
                        help="also hybrid retrieval (PostgreSQL with pgvector): <=> in SQL and numpy, same run")
    args = parser.parse_args()
    vendor = _setup_django()
    import logging

    from django.db import connection

    from calls.engine.context import CallContext
    from calls.providers.base import Provider
    from knowledge.models import Passage
    from knowledge.selectors import KnowledgeScope, passages_search, version_knowledge_scope

    logging.disable(logging.WARNING)
    t0 = time.perf_counter()
    workspace, kb, draft, published = _seed()
    if vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE knowledge_passage")
    seeded = time.perf_counter() - t0
    questions = [q["question"] for q in json.loads((ROOT / "tests/knowledge/questions.json").read_text())]
    ids = list(Passage.objects.filter(knowledge_base=kb).values_list("pk", flat=True))
    live_count = len(ids)
    snapshot = version_knowledge_scope(version=published)
    rounds = min(args.rounds, 5000)
    quality = _quality(workspace, kb)
    print(f"{vendor}: {live_count} live passages (+ {len(snapshot.snapshot_ids)} snapshot of the same), "
          f"seeded in {seeded:.1f} s; {rounds} rounds x {args.runs} runs; the manual's section in the top 3 for "
          f"{quality}/50 questions among the 10,000")

    labels = ["trivial query: one passage by id (base)", "passages_search, live knowledge base",
              "passages_search, published snapshot", "every-turn lookup (knowledge_for_turn)"]
    hybrid_labels = ["hybrid, live: vectors by pgvector <=> (SQL)", "hybrid, live: vectors by numpy"]

    def hybrid(i, pgvector: bool):
        from django.test import override_settings

        from knowledge import embeddings

        column = embeddings.pgvector_column
        if not pgvector:
            embeddings.pgvector_column = lambda conn: False
        try:
            with override_settings(KNOWLEDGE_EMBEDDINGS_BASE_URL="http://embeddings.invalid/v1",
                                   KNOWLEDGE_EMBEDDINGS_MODEL="bench-hashed"):
                return passages_search(workspace_id=workspace.pk, query=questions[i % 50],
                                       knowledge_base_ids=[kb.pk], limit=3)
        finally:
            embeddings.pgvector_column = column

    if args.hybrid:
        why_not = _hybrid_setup(kb)
        if why_not:
            print(f"--hybrid skipped: {why_not}")
            args.hybrid = False
        else:
            found = {flag: sum(any(h.text.startswith(q["section"] + ":") for h in hybrid(i, flag))
                               for i, q in enumerate(json.loads((ROOT / "tests/knowledge/questions.json").read_text())))
                     for flag in (True, False)}
            same = all([h.id for h in hybrid(i, True)] == [h.id for h in hybrid(i, False)] for i in range(50))
            print(f"hybrid: {live_count} live passages embedded ({HYBRID_DIMENSIONS} dimensions, both columns); "
                  f"the manual's section in the top 3 for {found[True]}/50 (pgvector) and {found[False]}/50 "
                  f"(numpy); same top 3 on both paths for all 50: {same}")

    async def turn_lookups():
        provider = Provider(CallContext(transport="media_streams", provider="cascaded", knowledge=snapshot))
        out = []
        for i in range(rounds + 5):
            t = time.perf_counter()
            await provider.knowledge_for_turn(questions[i % 50])
            if i >= 5:
                out.append((time.perf_counter() - t) * 1000)
        return out

    runs = []
    for run in range(1, args.runs + 1):
        rows = [
            (labels[0], _time(lambda i: Passage.objects.filter(pk=ids[i % len(ids)]).values_list("text", flat=True)
                              .first(), rounds, labels[0])),
            (labels[1], _time(lambda i: passages_search(workspace_id=workspace.pk, query=questions[i % 50],
                                                        knowledge_base_ids=[kb.pk], limit=3), rounds, labels[1])),
            (labels[2], _time(lambda i: passages_search(workspace_id=workspace.pk, query=questions[i % 50],
                                                        snapshot_ids=snapshot.snapshot_ids, limit=3), rounds,
                              labels[2])),
        ]
        if args.hybrid:
            rows += [(hybrid_labels[0], _time(lambda i: hybrid(i, True), rounds, hybrid_labels[0])),
                     (hybrid_labels[1], _time(lambda i: hybrid(i, False), rounds, hybrid_labels[1]))]
        connection.close()  # the lookups run in database_sync_to_async's thread
        rows.append((labels[3], asyncio.run(turn_lookups())))
        runs.append({label: (_pct(v, .5), _pct(v, .95)) for label, v in rows})
        base = _pct(rows[0][1], .5)
        print(f"\nrun {run}: load average {os.getloadavg()[0]:.2f}")
        print(f"{'':46}{'p50 ms':>9}{'p95 ms':>9}{'mean ms':>9}{'p50/base':>10}{'p95/base':>10}{'CPU ms':>9}")
        for label, values in rows:
            cpu = f"{CPU[label]:9.2f}" if label in CPU and label != labels[3] else f"{'—':>9}"
            print(f"{label:46}{_pct(values, .5):9.2f}{_pct(values, .95):9.2f}{statistics.mean(values):9.2f}"
                  f"{_pct(values, .5) / base:10.1f}{_pct(values, .95) / _pct(rows[0][1], .95):10.1f}{cpu}")

    print(f"\nmedian of {len(runs)} runs{'':26}{'p50 ms':>9}{'p95 ms':>9}{'p95/base':>10}")
    median = {label: (statistics.median(r[label][0] for r in runs), statistics.median(r[label][1] for r in runs))
              for label in labels}
    if args.hybrid:
        labels = labels + hybrid_labels
        median.update({label: (statistics.median(r[label][0] for r in runs),
                               statistics.median(r[label][1] for r in runs)) for label in hybrid_labels})
    for label in labels:
        print(f"{label:46}{median[label][0]:9.2f}{median[label][1]:9.2f}"
              f"{median[label][1] / median[labels[0]][1]:10.1f}")
    worst = max(median[labels[1]][1], median[labels[2]][1])
    print(f"retrieval p95 (median of runs) {worst:.2f} ms: {'within' if worst <= TARGET_P95_MS else 'OVER'} the "
          f"{TARGET_P95_MS:g} ms target; load average {os.getloadavg()[0]:.2f}")

    if args.turn_calls:
        connection.close()
        print(f"\ncascaded turns, {args.turn_calls} simulated calls x {args.turn_seconds:g} s each way "
              "(end of turn -> first agent audio, zero-latency stages)")
        off_on = []
        for run in range(1, args.runs + 1):
            for label, scope in (("every-turn off", KnowledgeScope()), ("every-turn on", snapshot)):
                turns = sorted(asyncio.run(_cascaded_turns(scope, calls=args.turn_calls, seconds=args.turn_seconds)))
                p50, p95 = (_pct(turns, .5), _pct(turns, .95)) if turns else (float("nan"), float("nan"))
                off_on.append((label, p50, p95))
                print(f"run {run} {label:16} turns {len(turns):4}  p50 {p50:6.0f} ms  p95 {p95:6.0f} ms  "
                      f"load average {os.getloadavg()[0]:.2f}")
        med = {label: (statistics.median(p for lb, p, _ in off_on if lb == label),
                       statistics.median(q for lb, _, q in off_on if lb == label))
               for label in ("every-turn off", "every-turn on")}
        print(f"added by the every-turn lookup (median of runs): p50 "
              f"{med['every-turn on'][0] - med['every-turn off'][0]:+.0f} ms, p95 "
              f"{med['every-turn on'][1] - med['every-turn off'][1]:+.0f} ms")


if __name__ == "__main__":
    main()
