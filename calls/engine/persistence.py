"""The process's transcript writer: every live call's transcript lines, stored in batches, in order, off the loop.

A commit per transcript turn was a quarter of a busy process's time (issue 28's profile at 50 calls). Now a call
hands its lines to the one `TranscriptWriter` of its process (`writer()`), which stores them a few times a second
(`INTERVAL` after the oldest waiting line, or at once when `MAX_LINES` wait) with one INSERT and one commit for all
the calls (`calls.services.transcripts.transcript_lines_store`, in the database thread). What it guarantees:

- **In order**: the lines of a call are stored in the order the call produced them (one flush at a time, the
  lines of a failed flush go back in front of the newer ones).
- **Nothing lost at hang-up or when a call's task crashes**: the lines belong to the process's writer, not to
  the call; `flush_call(id)` stores a call's lines before its end is recorded (the analysis reads them).
- **The database briefly down**: the lines stay in memory, the failure is logged once with what is kept, and
  the flush is retried with a backoff (`RETRY_MIN` .. `RETRY_MAX`); recovery is logged too. A batch the database
  refuses for what it holds (a call deleted meanwhile) is stored call by call, and only the refused call's
  lines are dropped, with an error log naming it.
- **Still readable live**: listeners and the live view get each turn at once from the call (not from the
  database); the call page's stored transcript is at most `INTERVAL` behind.

A crash of the whole process loses at most the last `INTERVAL` of lines (they were only in memory).
Tests drive it with a fake clock and a fake sleep (`TranscriptWriter(clock=..., sleep=...)`); no real waits.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Awaitable, Callable

logger = logging.getLogger("calls.engine.persistence")

INTERVAL = 0.3  # seconds: a line waits at most this long (the call page is this far behind at most)
MAX_LINES = 200  # this many waiting lines are flushed at once
RETRY_MIN = 0.25  # seconds before the first retry after the database failed; doubled up to RETRY_MAX
RETRY_MAX = 2.0
FLUSH_CALL_TIMEOUT = 5.0  # seconds a call's end waits for its lines to be stored (then they stay queued)
LOG_EVERY_FAILURES = 20


def _transient(exc: BaseException) -> bool:
    """The database is unavailable (connection refused or lost, a pool timeout): retry the same lines later."""
    from django.db import InterfaceError, OperationalError

    return isinstance(exc, (OperationalError, InterfaceError, ConnectionError, TimeoutError))


async def _store_in_db_thread(lines: list[tuple]) -> None:
    from channels.db import database_sync_to_async

    from calls.services.transcripts import transcript_lines_store

    await database_sync_to_async(transcript_lines_store)(lines=lines)


class TranscriptWriter:
    """Lines of every call of the process -> the database, in batches. See the module docstring."""

    def __init__(self, *, store: Callable[[list[tuple]], Awaitable[None]] = _store_in_db_thread,
                 interval: float = INTERVAL, max_lines: int = MAX_LINES, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] | None = None):
        self.store = store
        self.interval = interval
        self.max_lines = max_lines
        self.clock = clock
        self._sleep = sleep
        self.pending: deque[tuple] = deque()  # ("turn" | "cut", call_session_id, data)
        self._oldest = 0.0  # when the oldest pending line came
        self._lock = asyncio.Lock()  # one flush at a time: the order of the lines is the order they are stored
        self._wake = asyncio.Event()
        self._failures = 0
        self._retry_at = 0.0
        self.flushes = 0
        self.stored = 0
        self.dropped = 0
        self.task: asyncio.Task | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    # -- from the calls (on the event loop; never blocks) ---------------------------------

    def append(self, call_session_id: int, turns) -> None:
        for turn in turns:
            self._add(("turn", call_session_id, tuple(turn)))

    def cut(self, call_session_id: int, seq: int, text: str) -> None:
        self._add(("cut", call_session_id, (seq, text)))

    def _add(self, line: tuple) -> None:
        if not self.pending:
            self._oldest = self.clock()
            self._wake.set()
        self.pending.append(line)
        if len(self.pending) >= self.max_lines:
            self._wake.set()

    def pending_for(self, call_session_id: int) -> int:
        return sum(1 for _, call_id, _ in self.pending if call_id == call_session_id)

    # -- flushing -------------------------------------------------------------------------

    def wait_time(self) -> float | None:
        """Seconds until the next flush is due (0: now), or None with nothing waiting."""
        if not self.pending:
            return None
        now = self.clock()
        if now < self._retry_at:
            return self._retry_at - now
        if len(self.pending) >= self.max_lines:
            return 0.0
        return max(0.0, self._oldest + self.interval - now)

    async def flush(self) -> bool:
        """Store every waiting line now. False when the database failed (the lines are kept for a retry)."""
        async with self._lock:
            if not self.pending:
                return True
            lines = list(self.pending)
            self.pending.clear()
            try:
                await self.store(lines)
            except Exception as exc:  # noqa: BLE001 - sorted below: retried, or stored call by call
                if _transient(exc):
                    self._failed(lines, exc)
                    return False
                await self._store_call_by_call(lines, exc)
            else:
                self._stored(lines)
            return True

    def _stored(self, lines: list[tuple]) -> None:
        self.flushes += 1
        self.stored += len(lines)
        if self._failures:
            logger.warning("transcript writer: the database is back; %d kept lines stored after %d failed attempts",
                           len(lines), self._failures)
        self._failures = 0
        self._retry_at = 0.0

    def _failed(self, lines: list[tuple], exc: BaseException) -> None:
        # back in front of what came meanwhile: the order stays the order of the calls
        self.pending.extendleft(reversed(lines))
        self._oldest = self.clock()
        self._failures += 1
        delay = min(RETRY_MAX, RETRY_MIN * 2 ** (self._failures - 1))
        self._retry_at = self.clock() + delay
        if self._failures == 1 or self._failures % LOG_EVERY_FAILURES == 0:
            calls = len({call_id for _, call_id, _ in self.pending})
            logger.warning("transcript writer: the database is unavailable (%s); %d transcript lines of %d calls "
                           "kept in memory, retrying in %.2f s (attempt %d)", type(exc).__name__,
                           len(self.pending), calls, delay, self._failures)

    async def _store_call_by_call(self, lines: list[tuple], exc: BaseException) -> None:
        """The database refused the batch for what it holds: store each call's lines alone; drop only a refused
        call's lines (logged with the call). A transient failure meanwhile keeps the rest for a retry."""
        logger.warning("transcript writer: a batch was refused (%s); storing call by call", type(exc).__name__)
        by_call: dict[int, list[tuple]] = {}
        for line in lines:
            by_call.setdefault(line[1], []).append(line)
        ok: list[tuple] = []
        calls = list(by_call.items())
        for i, (call_id, call_lines) in enumerate(calls):
            try:
                await self.store(call_lines)
            except Exception as call_exc:  # noqa: BLE001
                if _transient(call_exc):
                    rest = [line for _, later in calls[i:] for line in later]
                    self._failed(rest, call_exc)
                    break
                self.dropped += len(call_lines)
                logger.error("transcript writer: %d transcript lines of call session %s refused by the database "
                             "(%s) and dropped", len(call_lines), call_id, type(call_exc).__name__)
            else:
                ok.extend(call_lines)
        if ok:
            self._stored(ok)

    async def flush_call(self, call_session_id: int, timeout: float = FLUSH_CALL_TIMEOUT) -> bool:
        """Store this call's waiting lines now (its end, a handover that reads them). Retries while the database
        is down, up to `timeout`; False then (the lines stay queued and the background flush keeps trying)."""
        deadline = self.clock() + timeout
        while True:
            async with self._lock:  # a flush in flight has this call's lines: wait for it
                pass
            if not self.pending_for(call_session_id):
                return True
            if await self.flush() and not self.pending_for(call_session_id):
                return True
            wait = self._retry_at - self.clock()
            if self.clock() + max(0.0, wait) > deadline:
                logger.warning("transcript writer: call session %s ended with %d transcript lines not stored yet "
                               "(the database is unavailable); they stay queued", call_session_id,
                               self.pending_for(call_session_id))
                return False
            await self._pause(max(0.0, wait))

    # -- the background task ---------------------------------------------------------------

    async def _pause(self, seconds: float | None) -> None:
        if self._sleep is not None and seconds is not None:
            await self._sleep(seconds)
            return
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    async def run(self) -> None:
        while True:
            try:
                wait = self.wait_time()
                if wait is None:
                    await self._pause(None)
                elif wait > 0:
                    await self._pause(wait)
                else:
                    await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the writer must outlive any one failure
                logger.exception("transcript writer: unexpected failure; going on")

    def start(self) -> "TranscriptWriter":
        self.loop = asyncio.get_running_loop()
        self.task = self.loop.create_task(self.run(), name="transcript-writer")
        return self


_writer: TranscriptWriter | None = None


def writer() -> TranscriptWriter:
    """The writer of this process (of its running event loop), started on first use."""
    global _writer
    loop = asyncio.get_running_loop()
    if _writer is None or _writer.loop is not loop:
        if _writer is not None and _writer.pending and not _writer.loop.is_closed():
            logger.warning("transcript writer: %d lines of another event loop left behind", len(_writer.pending))
        _writer = TranscriptWriter().start()
    return _writer
