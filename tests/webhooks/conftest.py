"""A local webhook receiver (a real HTTP server on loopback) and an environment with an endpoint pointing at it."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agents.models import Environment
from tests.agents.factories import EnvironmentFactory
from webhooks import services
from webhooks.models import EventType


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes


@dataclass
class Receiver:
    """Answers each POST with the next planned (status, body, headers); 200 once the plan is used up."""

    url: str
    requests: list[Received] = field(default_factory=list)
    plan: list[tuple[int, bytes, dict]] = field(default_factory=list)
    # A planned status of 0 keeps the request hanging (the sender is killed meanwhile) until `release` is set.
    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def answer(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
        self.plan.append((status, body, headers or {}))


@pytest.fixture
def receiver():
    servers = []

    def start() -> Receiver:
        state = Receiver(url="")

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                state.requests.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                status, answer, headers = state.plan.pop(0) if state.plan else (200, b'{"ok":true}', {})
                state.arrived.set()
                if status == 0:
                    state.release.wait(60)
                    status = 200
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        Handler.state = state
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        state.url = f"http://127.0.0.1:{httpd.server_address[1]}/hooks/callwell"
        return state

    yield start
    for httpd in servers:
        httpd.RequestHandlerClass.state.release.set()
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def environment(workspace) -> Environment:
    return EnvironmentFactory(workspace=workspace, kind=Environment.Kind.PRODUCTION)


@pytest.fixture
def hook(environment, receiver):
    """(receiver, endpoint, secret): an endpoint of the workspace's production environment, all events."""
    rx = receiver()
    endpoint, secret = services.endpoint_create(environment=environment, url=rx.url, events=EventType.values)
    return rx, endpoint, secret
