"""The benchmark harness works (bounded, loopback only, ratios); benchmarks themselves are run by hand."""
import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench._harness import Stats, bench_env, hammer, login_session, report, seed_demo, serve


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        status = 500 if self.path.startswith("/fail") else 200
        body = b"ok"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, *args):
        pass


@pytest.fixture
def tiny_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_hammer_counts_requests_and_errors(tiny_server):
    ok = hammer(tiny_server + "/", concurrency=4, requests=200)
    assert ok.requests == 200 and ok.errors == 0 and ok.statuses[200] == 200
    assert ok.rps > 0 and 0 < ok.p50_ms <= ok.p99_ms

    paths = hammer(tiny_server, concurrency=2, requests=10,
                   make_request=lambda i: ("GET", "/fail" if i % 2 else "/", None, None))
    assert paths.requests == 10 and paths.errors == 5 and paths.statuses[500] == 5


def test_hammer_is_bounded_in_time(tiny_server, monkeypatch):
    """It stops at `max_seconds` of its own clock (a fake one here: each reading is 0.1 s later), whatever the
    machine's speed."""
    import types

    import bench._harness as harness

    ticks = iter(range(10**9))
    fake_time = types.SimpleNamespace(**{name: getattr(harness.time, name) for name in ("perf_counter", "sleep",
                                                                                         "process_time")},
                                      monotonic=lambda: next(ticks) * 0.1)
    monkeypatch.setattr(harness, "time", fake_time)
    stats = hammer(tiny_server + "/", concurrency=1, requests=10_000_000, max_seconds=0.5)
    # The deadline is read once, then once before each request: 5 readings reach it.
    assert stats.requests == 4


def test_hammer_refuses_non_loopback_targets():
    with pytest.raises(ValueError, match="loopback"):
        hammer("http://10.0.0.1/", concurrency=1, requests=1)


def test_report_gives_ratios_to_the_first_row():
    base = Stats(requests=100, errors=0, seconds=1.0, latencies_ms=[1.0] * 100)
    slow = Stats(requests=100, errors=0, seconds=4.0, latencies_ms=[4.0] * 100)
    text = report([("healthz (baseline)", base), ("page", slow)], out=io.StringIO())
    page_line = text.splitlines()[-1]
    assert page_line.split()[-3:] == ["0.25", "4.00", "4.00"]


def test_serve_runs_the_app_under_gunicorn_with_a_logged_in_session():
    env = bench_env()
    with serve(env=env, workers=1, threads=2) as base:
        seed_demo(env)
        headers = login_session(base, "admin", "callwell-demo")
        stats = hammer(base + "/settings/dialer/", concurrency=2, requests=10, headers=headers)
        assert stats.statuses[200] == 10, stats.statuses
        assert hammer(base + "/healthz", concurrency=2, requests=20).errors == 0
