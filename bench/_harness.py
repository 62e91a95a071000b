"""Benchmark harness: run the app under gunicorn on 127.0.0.1, hammer it, report ratios to a baseline.

    from bench._harness import bench_env, hammer, report, serve

    with serve(env=bench_env()) as base:
        rows = [
            ("healthz (baseline)", hammer(base + "/healthz", concurrency=8, requests=2000)),
            ("login page", hammer(base + "/login/", concurrency=8, requests=2000)),
        ]
    report(rows)

Numbers on a shared 2-core machine are noisy; compare against the baseline row
measured in the same run (ratios), never against absolute figures. Traffic goes
to loopback only, and every loop is bounded in request count and time.
"""
from __future__ import annotations

import contextlib
import http.client
import ipaddress
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
MAX_SECONDS_DEFAULT = 60.0
_SERVERS: dict[str, int] = {}  # base URL -> gunicorn master pid, while `serve` runs


# ---------------------------------------------------------------- the server

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_env(**overrides) -> dict:
    """Environment for a production-like server: production settings when DATABASE_URL and REDIS_URL are set,
    else dev settings with DEBUG off on a fresh SQLite file (no services needed)."""
    from cryptography.fernet import Fernet

    env = {
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "PUBLIC_BASE_URL": "http://127.0.0.1",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "LOG_LEVEL": "WARNING",
    }
    if os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL"):
        env["DJANGO_SETTINGS_MODULE"] = "config.settings.production"
        env["DATABASE_URL"] = os.environ["DATABASE_URL"]
        env["REDIS_URL"] = os.environ["REDIS_URL"]
    else:
        folder = Path(tempfile.mkdtemp(prefix="callwell-bench-"))
        env["DJANGO_SETTINGS_MODULE"] = "config.settings.dev"
        env["DATABASE_URL"] = f"sqlite:///{folder / 'bench.sqlite3'}"
        env["CELERY_FS_BROKER_DIR"] = str(folder / "broker")
        env["CACHE_DIR"] = str(folder / "cache")
    env.update({k: str(v) for k, v in overrides.items()})
    return env


def _wait_http(url: str, timeout: float, proc: subprocess.Popen) -> None:
    parts = urlsplit(url)
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with code {proc.returncode} before answering")
        try:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=2)
            conn.request("GET", parts.path or "/")
            if conn.getresponse().status < 500:
                conn.close()
                return
        except OSError as exc:
            last_error = exc
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout}s ({last_error})")


@contextlib.contextmanager
def serve(*, app: str = "config.wsgi:application", env: dict | None = None, workers: int = 2, threads: int = 4,
          port: int | None = None, migrate: bool = True, ready_path: str = "/healthz",
          extra_args: tuple[str, ...] = (), startup_timeout: float = 60.0, server: str = "gunicorn") -> Iterator[str]:
    """Run gunicorn (the production server) on 127.0.0.1 with `env` and yield its base URL.

    `server="uvicorn"` runs `uvicorn config.asgi:application --workers N` instead (`app` and `threads` unused).

    `env` is added to this process's environment (see `bench_env()`); `migrate` runs
    `manage.py migrate` with the same environment first. The server is stopped on exit.
    """
    full_env = dict(os.environ)
    full_env.update(env if env is not None else bench_env())
    full_env.setdefault("PYTHONUNBUFFERED", "1")
    python = sys.executable
    if migrate:
        subprocess.run([python, "manage.py", "migrate", "--no-input", "-v0"], cwd=ROOT, env=full_env, check=True)
    port = port or free_port()
    log = tempfile.NamedTemporaryFile(prefix="callwell-gunicorn-", suffix=".log", delete=False)
    cmd = [
        python, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(workers), "--log-level", "warning", "--no-access-log",
        "--ws", "config.websocket:WebSocketProtocol", *extra_args,
    ] if server == "uvicorn" else [
        python, "-m", "gunicorn", app,
        "--bind", f"127.0.0.1:{port}",
        "--workers", str(workers),
        "--threads", str(threads),
        "--worker-class", "gthread" if threads > 1 else "sync",
        "--keep-alive", "30",
        "--log-level", "warning",
        *extra_args,
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_http(base + ready_path, startup_timeout, proc)
        _SERVERS[base] = proc.pid
        yield base
    except BaseException:
        log.flush()
        sys.stderr.write(Path(log.name).read_text()[-5000:])
        raise
    finally:
        _SERVERS.pop(base, None)
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()
        os.unlink(log.name)


# ---------------------------------------------------------------- the load

@dataclass
class Stats:
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float] = field(repr=False, default_factory=list)
    statuses: Counter = field(default_factory=Counter)

    @property
    def rps(self) -> float:
        return (self.requests - self.errors) / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        data = sorted(self.latencies_ms)
        k = min(len(data) - 1, max(0, round(p / 100 * (len(data) - 1))))
        return data[k]

    @property
    def p50_ms(self) -> float:
        return self.percentile(50)

    @property
    def p99_ms(self) -> float:
        return self.percentile(99)

    @property
    def mean_ms(self) -> float:
        return statistics.fmean(self.latencies_ms) if self.latencies_ms else float("nan")


RequestSpec = tuple  # (method, path, headers, body)


def _check_loopback(host: str) -> None:
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise ValueError(f"benchmarks only target loopback addresses, not {host!r}")


def hammer(url: str, *, concurrency: int, requests: int, method: str = "GET", headers: dict | None = None,
           body: bytes | str | None = None, make_request: Callable[[int], RequestSpec] | None = None,
           max_seconds: float = MAX_SECONDS_DEFAULT, timeout: float = 10.0,
           ok_statuses: Callable[[int], bool] = lambda s: s < 400,
           ok_body: Callable[[bytes], bool] | None = None) -> Stats:
    """Send `requests` requests with `concurrency` keep-alive connections (bounded by `max_seconds`).

    `make_request(i)` may return `(method, path, headers, body)` per request instead of the fixed ones.
    A response whose status fails `ok_statuses`, or whose body fails `ok_body` (counted as "bad-body" in
    `statuses`, e.g. a spoken apology with HTTP 200), or a connection error, counts as an error.
    """
    parts = urlsplit(url)
    _check_loopback(parts.hostname or "")
    default_path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    base_headers = dict(headers or {})
    if isinstance(body, str):
        body = body.encode()

    counter = iter(range(requests))
    lock = threading.Lock()
    latencies: list[float] = []
    statuses: Counter = Counter()
    errors = 0
    deadline = time.monotonic() + max_seconds

    def next_index() -> int | None:
        with lock:
            return next(counter, None)

    def run():
        nonlocal errors
        conn = None
        local_lat: list[float] = []
        local_status: Counter = Counter()
        local_errors = 0
        while time.monotonic() < deadline:
            i = next_index()
            if i is None:
                break
            if make_request is not None:
                m, path, hdrs, data = make_request(i)
                hdrs = {**base_headers, **(hdrs or {})}
                if isinstance(data, str):
                    data = data.encode()
            else:
                m, path, hdrs, data = method, default_path, base_headers, body
            started = time.perf_counter()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
                conn.request(m, path, body=data, headers=hdrs)
                response = conn.getresponse()
                content = response.read()
                local_status[response.status] += 1
                if not ok_statuses(response.status):
                    local_errors += 1
                elif ok_body is not None and not ok_body(content):
                    local_status["bad-body"] += 1
                    local_errors += 1
                if response.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                local_errors += 1
                local_status["conn-error"] += 1
                if conn is not None:
                    conn.close()
                conn = None
            local_lat.append((time.perf_counter() - started) * 1000)
        if conn is not None:
            conn.close()
        with lock:
            latencies.extend(local_lat)
            statuses.update(local_status)
            errors += local_errors

    started = time.perf_counter()
    threads = [threading.Thread(target=run, daemon=True) for _ in range(max(1, concurrency))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max_seconds + timeout + 5)
    seconds = time.perf_counter() - started
    return Stats(requests=len(latencies), errors=errors, seconds=seconds, latencies_ms=latencies, statuses=statuses)


# ---------------------------------------------------------------- where the CPU went

def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(x) for x in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def _postgres_backends(database_url: str) -> list[int]:
    """The server processes of the other connections to this benchmark's own database (PostgreSQL only)."""
    if not urlsplit(database_url).scheme.startswith("postgres"):
        return []
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                            "AND pid <> pg_backend_pid()").fetchall()
    return [row[0] for row in rows]


def _machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all cores, from /proc/stat."""
    values = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


@dataclass
class Cpu:
    """CPU spent while a `cpu_meter` block ran: the gunicorn processes, this benchmark database's PostgreSQL
    backends, this process (the load generator) and the whole machine (other users' work included)."""
    server_s: float = 0.0
    database_s: float = 0.0
    client_s: float = 0.0
    machine_busy_pct: float = float("nan")
    load1: float = float("nan")

    def per_request_ms(self, requests: int) -> dict:
        n = max(1, requests)
        return {"server": 1000 * self.server_s / n, "database": 1000 * self.database_s / n,
                "client": 1000 * self.client_s / n}

    def describe(self, requests: int) -> str:
        per = self.per_request_ms(requests)
        return (f"CPU per request: gunicorn {per['server']:.2f} ms, PostgreSQL {per['database']:.2f} ms, "
                f"load generator {per['client']:.2f} ms; machine {self.machine_busy_pct:.0f}% busy, "
                f"load average {self.load1:.2f}")


@contextlib.contextmanager
def cpu_meter(base: str, database_url: str = "") -> Iterator[Cpu]:
    """Measure the CPU of the server started by `serve` at `base` (and of the database's backends) in a block."""
    master = _SERVERS.get(base)

    def server_pids() -> list[int]:
        return [master, *_children(master)] if master else []

    def snapshot(pids: list[int]) -> dict[int, float]:
        return {pid: _cpu_seconds(pid) for pid in pids}

    result = Cpu()
    server0 = snapshot(server_pids())
    db0 = snapshot(_postgres_backends(database_url)) if database_url else {}
    client0 = time.process_time()
    busy0, total0 = _machine_busy()
    try:
        yield result
    finally:
        busy1, total1 = _machine_busy()
        result.client_s = time.process_time() - client0
        server1 = snapshot(server_pids())
        db1 = snapshot(_postgres_backends(database_url)) if database_url else {}
        # a process started inside the block counts from zero
        result.server_s = sum(t - server0.get(pid, 0.0) for pid, t in server1.items())
        result.database_s = sum(t - db0.get(pid, 0.0) for pid, t in db1.items())
        result.machine_busy_pct = 100 * (busy1 - busy0) / (total1 - total0) if total1 > total0 else float("nan")
        result.load1 = os.getloadavg()[0]


# ---------------------------------------------------------------- the report

def report(rows: list[tuple[str, Stats]], *, out=None) -> str:
    """Print a table; the first row is the baseline every ratio is taken against. Returns the text."""
    out = out or sys.stdout
    if not rows:
        return ""
    base = rows[0][1]
    header = f"{'benchmark':<36} {'reqs':>7} {'err':>5} {'rps':>9} {'p50 ms':>8} {'p99 ms':>8} " \
             f"{'rps/base':>9} {'p50/base':>9} {'p99/base':>9}"
    lines = [header, "-" * len(header)]
    for name, s in rows:
        def ratio(a, b):
            return f"{a / b:9.2f}" if b and b == b and a == a else f"{'n/a':>9}"
        lines.append(
            f"{name[:36]:<36} {s.requests:>7} {s.errors:>5} {s.rps:>9.1f} {s.p50_ms:>8.2f} {s.p99_ms:>8.2f} "
            f"{ratio(s.rps, base.rps)} {ratio(s.p50_ms, base.p50_ms)} {ratio(s.p99_ms, base.p99_ms)}"
        )
    text = "\n".join(lines)
    print(text, file=out)
    return text


# The issue-11 floor for the token and the two Twilio webhooks: p99 at most 25 ms with 32 concurrent clients.
FLOOR_P99_MS = 25.0
FLOOR_CONCURRENCY = 32


def summary(name: str, stats: Stats, baseline: Stats, *, concurrency: int, cpu: Cpu | None = None) -> str:
    """Lines under a `report` table for one hot path: ratio to the baseline, p50/p99, statuses, where the CPU went,
    and at c=32 the floor's verdict with the closed-loop bound (Little's law: mean latency = clients / throughput)."""
    ratio = stats.rps / baseline.rps if baseline.rps else 0.0
    lines = [f"{name}: throughput ratio {ratio:.2f} to healthz, p50 {stats.p50_ms:.2f} ms, p99 {stats.p99_ms:.2f} ms; "
             f"statuses {dict(stats.statuses)}"]
    if cpu is not None:
        lines.append("  " + cpu.describe(stats.requests))
    if concurrency == FLOOR_CONCURRENCY:
        verdict = "meets" if stats.p99_ms <= FLOOR_P99_MS else "MISSES"
        bound = 1000 * concurrency / stats.rps if stats.rps else float("nan")
        lines.append(f"  p99 {stats.p99_ms:.1f} ms at c={concurrency} {verdict} the floor (<= {FLOOR_P99_MS:.0f} ms); "
                     f"{concurrency} clients at {stats.rps:.0f} req/s wait {bound:.1f} ms on average (c / rps)")
    text = "\n".join(lines)
    print(text)
    return text


# ---------------------------------------------------------------- helpers

def fresh_postgres_database(url: str) -> None:
    """(Re)create a benchmark's own PostgreSQL database (each run has a new FIELD_ENCRYPTION_KEY, so rows of an
    earlier run could not be decrypted). No-op on SQLite. Only names containing "bench" are touched."""
    parts = urlsplit(url)
    if not parts.scheme.startswith("postgres"):
        return
    import psycopg

    name = parts.path.lstrip("/")
    if "bench" not in name:
        raise SystemExit(f"refusing to recreate {name!r}: a benchmark database name must contain 'bench'")
    admin_url = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def seed_demo(env: dict, *, username: str = "admin", password: str = "callwell-demo") -> None:
    """Create the demo workspace and admin in the server's database (same env as `serve`)."""
    full_env = {**os.environ, **env}
    subprocess.run([sys.executable, "manage.py", "seed_demo", "--username", username, "--password", password],
                   cwd=ROOT, env=full_env, check=True, stdout=subprocess.DEVNULL)


def login_session(base: str, username: str, password: str) -> dict:
    """Log in through /login/ like a browser; returns headers (Cookie, X-CSRFToken, Referer) for `hammer`."""
    import re
    from http.cookies import SimpleCookie

    parts = urlsplit(base)
    _check_loopback(parts.hostname or "")
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    jar: dict[str, str] = {}

    def remember(response):
        for header in response.msg.get_all("Set-Cookie") or []:
            for key, morsel in SimpleCookie(header).items():
                jar[key] = morsel.value

    def cookie_header() -> str:
        return "; ".join(f"{k}={v}" for k, v in jar.items())

    conn.request("GET", "/login/")
    response = conn.getresponse()
    html = response.read().decode()
    remember(response)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    from urllib.parse import urlencode

    form = urlencode({"username": username, "password": password, "csrfmiddlewaretoken": token})
    conn.request("POST", "/login/", body=form, headers={
        "Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie_header(), "Referer": base + "/login/",
    })
    response = conn.getresponse()
    response.read()
    remember(response)
    conn.close()
    if response.status != 302 or "sessionid" not in jar:
        raise RuntimeError(f"login as {username!r} failed (HTTP {response.status})")
    return {"Cookie": cookie_header(), "X-CSRFToken": jar.get("csrftoken", ""), "Referer": base + "/"}


def run_seed(env: dict, script: str, **extra_env: str) -> dict:
    """Run a seeding script with `manage.py shell` in `env`; it prints one `SEED=<json>` line, returned decoded."""
    import json

    out = subprocess.run([sys.executable, "manage.py", "shell", "-c", script], cwd=ROOT,
                         env={**os.environ, **env, **extra_env}, check=True, capture_output=True, text=True)
    line = next(line for line in out.stdout.splitlines() if line.startswith("SEED="))
    return json.loads(line[5:])


def signed_form_posts(env: dict, path: str, auth_token: str, params_list: list[dict]) -> list[tuple]:
    """`hammer` request specs: form POSTs to `path`, each signed as Twilio signs them (PUBLIC_BASE_URL + path)."""
    from urllib.parse import urlencode

    from twilio.request_validator import RequestValidator

    url = env["PUBLIC_BASE_URL"].rstrip("/") + path
    validator = RequestValidator(auth_token)
    return [("POST", path, {"X-Twilio-Signature": validator.compute_signature(url, params),
                            "Content-Type": "application/x-www-form-urlencoded", "Host": "127.0.0.1"},
             urlencode(params)) for params in params_list]
