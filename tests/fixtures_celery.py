"""A REAL Celery worker process for end-to-end task tests.

    @pytest.mark.worker
    def test_task_runs(celery_worker):          # implies transactional_db
        worker = celery_worker()                 # or celery_worker({"TWILIO_API_BASE_URL": sandbox.base_url})
        my_task.delay(...)
        wait_for(lambda: Thing.objects.filter(...).exists())

- The worker is `celery -A config worker --pool=solo` with DJANGO_SETTINGS_MODULE=config.settings.test,
  pointed at the SAME test database pytest-django created (SQLite file or PostgreSQL `test_*` DB)
  and the SAME broker (the run's filesystem folder, or REDIS_URL), consuming this run's own queue.
- The fixture requests `transactional_db`: rows must be COMMITTED for another process to see them,
  so a test using it runs outside a wrapping transaction (slower; use it only for worker tests).
- While the test runs, the in-process app sends tasks to the broker (`task_always_eager = False`);
  it is switched back at teardown, and the worker is stopped (TERM, then KILL).
- `worker.log()` returns the worker's output so far (shown in the failure report as well).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest

READY_TIMEOUT = float(os.environ.get("CELERY_TEST_WORKER_READY_TIMEOUT", "60"))
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def wait_for(predicate, *, timeout: float = 20.0, interval: float = 0.1, message: str = "condition"):
    """Poll `predicate()` until it returns something truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def worker_database_url() -> str:
    """A DATABASE_URL for the test database pytest-django created (what `connection` is using now)."""
    from django.db import connection

    settings_dict = connection.settings_dict
    name = settings_dict["NAME"]
    if settings_dict["ENGINE"].endswith("sqlite3"):
        if not name or name == ":memory:" or str(name).startswith("file:memorydb"):
            raise RuntimeError("A worker process cannot share an in-memory SQLite database; set TEST NAME to a file.")
        return f"sqlite:///{name}"
    configured = os.environ.get("DATABASE_URL", "")
    if not configured:
        raise RuntimeError("DATABASE_URL is not set but the database is not SQLite.")
    parts = urlsplit(configured)
    return urlunsplit((parts.scheme, parts.netloc, "/" + str(name), parts.query, parts.fragment))


class WorkerProcess:
    def __init__(self, popen: subprocess.Popen, queue: str, hostname: str):
        self.popen = popen
        self.queue = queue
        self.hostname = hostname
        self._lines: list[str] = []
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.popen.stdout:
            self._lines.append(line)
            if " ready." in line:
                self._ready.set()
        self._ready.set()  # exited: stop waiting

    def log(self) -> str:
        return "".join(self._lines)

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        if not self._ready.wait(timeout) or self.popen.poll() is not None:
            self.stop()
            raise RuntimeError(
                f"The Celery worker did not become ready in {timeout}s (exit code {self.popen.poll()}).\n"
                f"--- worker output ---\n{self.log()}"
            )

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)
            except ProcessLookupError:
                pass
        self._reader.join(5)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item._celery_rep_call = report
    return report


@pytest.fixture
def celery_worker(request, transactional_db):
    """Factory: `celery_worker(extra_env=None) -> WorkerProcess`, a ready worker on this run's broker and test DB."""
    from django.conf import settings

    from config import celery_app

    workers: list[WorkerProcess] = []
    previous_eager = celery_app.conf.task_always_eager
    queue = settings.CELERY_TASK_DEFAULT_QUEUE

    def start(extra_env: dict | None = None, *, concurrency: int = 1) -> WorkerProcess:
        env = dict(os.environ)
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "config.settings.test",
                "DATABASE_URL": worker_database_url(),
                "CELERY_TASK_ALWAYS_EAGER": "0",
                "CELERY_TASK_DEFAULT_QUEUE": queue,
                "PYTHONUNBUFFERED": "1",
            }
        )
        # The worker must see the same broker and the same per-run folders as this process.
        for key in ("REDIS_URL", "CELERY_FS_BROKER_DIR", "CALLWELL_TEST_RUN_DIR"):
            if os.environ.get(key):
                env[key] = os.environ[key]
        if settings.TWILIO_API_BASE_URL:
            env["TWILIO_API_BASE_URL"] = settings.TWILIO_API_BASE_URL
        env.update({k: str(v) for k, v in (extra_env or {}).items()})
        hostname = f"test-{uuid.uuid4().hex[:8]}@%h"
        popen = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "config", "worker",
                "--pool=solo" if concurrency == 1 else "--pool=threads", f"--concurrency={concurrency}",
                "-Q", queue, "-n", hostname, "--loglevel=INFO",
                "--without-gossip", "--without-mingle", "--without-heartbeat",
            ],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        worker = WorkerProcess(popen, queue, hostname)
        workers.append(worker)
        worker.wait_ready()
        celery_app.conf.task_always_eager = False
        return worker

    # Nothing queued before this test (e.g. by an earlier test on a shared Redis) may reach the worker.
    celery_app.conf.task_always_eager = False
    try:
        with celery_app.connection_for_write() as conn:
            conn.default_channel.queue_purge(queue)
    except Exception:  # noqa: BLE001 - the queue may not exist yet
        pass

    yield start

    celery_app.conf.task_always_eager = previous_eager
    for worker in workers:
        worker.stop()
    failed = getattr(request.node, "_celery_rep_call", None)
    if failed is not None and failed.failed:
        for worker in workers:
            failed.sections.append((f"celery worker {worker.hostname}", worker.log()[-20000:]))
