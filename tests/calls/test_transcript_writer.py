"""The process's batched transcript writer (calls/engine/persistence.py): order, flush at hang-up, the database
briefly down. A fake clock and a fake sleep drive it; nothing waits for real time."""
import asyncio
import logging

import pytest
from django.db import IntegrityError, OperationalError

from calls.engine.persistence import RETRY_MIN, TranscriptWriter
from calls.models import CallTurn
from calls.services.transcripts import transcript_lines_store
from tests.calls.engine.conftest import make_call_setup


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    async def sleep(self, seconds):
        self.now += seconds
        await asyncio.sleep(0)  # a turn of the loop, no real time


class FakeStore:
    """Records each batch; fails while `down` (the database unavailable) or for `refused` calls."""

    def __init__(self):
        self.batches: list[list[tuple]] = []
        self.down = 0
        self.refused: set[int] = set()

    async def __call__(self, lines):
        if self.down:
            self.down -= 1
            raise OperationalError("connection refused")
        if any(call_id in self.refused for _, call_id, _ in lines):
            raise IntegrityError("insert or update violates foreign key constraint")
        self.batches.append(list(lines))

    def texts(self, call_id=None):
        return [data[1] for batch in self.batches for kind, cid, data in batch
                if kind == "turn" and (call_id is None or cid == call_id)]


def _writer(**kw):
    clock, store = FakeClock(), FakeStore()
    return TranscriptWriter(store=store, clock=clock, sleep=clock.sleep, **kw), clock, store


def test_lines_wait_for_the_interval_or_the_batch_size_then_go_in_one_batch_in_order():
    async def scenario():
        writer, clock, store = _writer(interval=0.3, max_lines=5)
        assert writer.wait_time() is None
        writer.append(1, [("caller", "a", True, 1.0)])
        clock.now += 0.1
        writer.append(2, [("caller", "x", True, 1.0)])
        writer.append(1, [("agent", "b", True, 1.0), ("caller", "c", True, 1.0)])
        assert writer.wait_time() == pytest.approx(0.2)  # from the oldest line
        clock.now += 0.2
        assert writer.wait_time() == 0
        assert await writer.flush()
        assert len(store.batches) == 1 and store.texts(1) == ["a", "b", "c"] and store.texts(2) == ["x"]
        writer.append(3, [("caller", str(i), True, 1.0) for i in range(5)])
        assert writer.wait_time() == 0  # a full batch goes at once
    asyncio.run(scenario())


def test_the_background_task_flushes_on_its_own_with_the_fake_clock():
    async def scenario():
        writer, clock, store = _writer(interval=0.3)
        task = asyncio.get_running_loop().create_task(writer.run())
        writer.append(7, [("caller", "hello", True, 1.0)])
        writer.cut(7, 1, "hel")
        for _ in range(100):
            if store.batches:
                break
            await asyncio.sleep(0)
        task.cancel()
        assert store.batches == [[("turn", 7, ("caller", "hello", True, 1.0)), ("cut", 7, (1, "hel"))]]
        assert clock.now >= 1000.3  # it waited its interval, on the fake clock
    asyncio.run(scenario())


def test_a_call_hanging_up_stores_its_lines_at_once():
    async def scenario():
        writer, clock, store = _writer(interval=60)
        writer.append(1, [("caller", "bye", True, 1.0)])
        writer.append(2, [("caller", "still here", True, 1.0)])
        assert await writer.flush_call(1)
        assert store.texts(1) == ["bye"] and not writer.pending
        assert clock.now == 1000.0  # no wait for the interval
    asyncio.run(scenario())


def test_the_database_briefly_down_loses_nothing_keeps_the_order_logs_once_and_retries(caplog):
    async def scenario():
        writer, clock, store = _writer()
        store.down = 3
        writer.append(1, [("caller", "one", True, 1.0)])
        assert not await writer.flush()
        writer.append(1, [("agent", "two", True, 1.0)])  # comes while the database is down
        assert writer.wait_time() == pytest.approx(RETRY_MIN)  # backoff, not a busy loop
        assert not await writer.flush()
        assert writer.wait_time() == pytest.approx(2 * RETRY_MIN)
        # the call hangs up meanwhile: its end waits (fake time) until the database is back
        assert await writer.flush_call(1)
        return writer, clock, store

    with caplog.at_level(logging.WARNING, logger="calls.engine.persistence"):
        writer, clock, store = asyncio.run(scenario())
    assert store.texts(1) == ["one", "two"] and writer.stored == 2 and writer.dropped == 0
    messages = [r.getMessage() for r in caplog.records]
    assert sum("database is unavailable" in m for m in messages) == 1, messages  # logged once, not per retry
    assert "2 transcript lines of 1 calls kept in memory" not in messages[0]  # the first failure had one line
    assert "1 transcript lines of 1 calls kept in memory, retrying in 0.25 s" in messages[0]
    assert any("database is back; 2 kept lines stored after 3 failed attempts" in m for m in messages)


def test_a_call_end_does_not_wait_forever_for_a_database_that_stays_down(caplog):
    async def scenario():
        writer, clock, store = _writer()
        store.down = 10_000
        writer.append(5, [("caller", "lost?", True, 1.0)])
        ok = await writer.flush_call(5, timeout=3)
        return ok, writer, clock

    with caplog.at_level(logging.WARNING, logger="calls.engine.persistence"):
        ok, writer, clock = asyncio.run(scenario())
    assert not ok and writer.pending_for(5) == 1  # still queued for the background retries
    assert clock.now - 1000.0 <= 3
    assert any("ended with 1 transcript lines not stored yet" in r.getMessage() for r in caplog.records)


def test_a_batch_refused_for_one_call_stores_the_others_and_names_the_refused_call(caplog):
    async def scenario():
        writer, clock, store = _writer()
        store.refused = {2}
        writer.append(1, [("caller", "a", True, 1.0)])
        writer.append(2, [("caller", "gone", True, 1.0)])
        writer.append(3, [("caller", "c", True, 1.0)])
        assert await writer.flush()
        return writer, store

    with caplog.at_level(logging.WARNING, logger="calls.engine.persistence"):
        writer, store = asyncio.run(scenario())
    assert store.texts() == ["a", "c"] and writer.dropped == 1 and not writer.pending
    assert any("call session 2 refused" in r.getMessage() for r in caplog.records)


@pytest.mark.django_db
def test_the_store_gives_each_call_its_next_seqs_in_one_transaction_and_applies_cuts():
    setup = make_call_setup()
    a, b = setup.new_session(), setup.new_session()
    CallTurn.objects.create(call_session=a, seq=1, role="event", text="stored before (a webhook)")
    transcript_lines_store(lines=[
        ("turn", a.pk, ("agent", "Hello, how can I help?", True, 1_700_000_000.0)),
        ("turn", b.pk, ("caller", "hi", True)),
        ("turn", a.pk, ("caller", "sales", True, 1_700_000_001.0, {"latency_ms": 5})),
        ("cut", a.pk, (2, "Hello,")),
    ])
    assert list(CallTurn.objects.filter(call_session=a).order_by("seq").values_list("seq", "text", "heard")) == [
        (1, "stored before (a webhook)", True), (2, "Hello,", False), (3, "sales", True)]
    assert CallTurn.objects.get(call_session=a, seq=3).latency_ms == 5
    assert list(CallTurn.objects.filter(call_session=b).values_list("seq", "text")) == [(1, "hi")]
