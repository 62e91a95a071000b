"""A local company API for agent actions, with an OAuth2 client-credentials token endpoint (RFC 6749 §4.4).

Routes:
- GET  /orders/<id>          → {"order": {"id": <id>, "status": "shipped", "eta": "Tuesday"}}
- POST /bookings             → 201 {"booking": {"day": ..., "confirmed": true}, "received": <json body>}
- GET  /echo                 → the request's headers, query and path (so tests can see what was sent)
- GET  /leak                 → an answer containing the Authorization header's value (redaction test)
- GET  /slow                 → answers once `slow_release` is set (or after `slow_seconds`); `slow_answered`
                               counts the answers it gave
- GET  /big                  → `big_bytes` of JSON
- GET  /text                 → not JSON
- GET  /status/<code>        → that status
- GET  /redirect?to=<url>    → 302 to <url>;  GET /loop → 302 to itself, forever
- POST /token                → {"access_token", "token_type": "Bearer", "expires_in"} for the right client
- GET  /secure/...           → needs a Bearer token the token endpoint issued and that was not revoked
`fake.requests` holds (method, path, headers, body) of every request; `fake.token_requests` counts tokens.
"""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class FakeActionApi:
    def __init__(self, *, client_id: str = "cw-client", client_secret: str = "oauth-client-secret-9876",
                 host: str = "127.0.0.1"):
        self.client_id, self.client_secret = client_id, client_secret
        self.requests: list[tuple[str, str, dict, bytes]] = []
        self.token_requests = 0
        self.tokens: set[str] = set()
        self.expires_in = 3600
        self.slow_seconds = 2.0
        self.slow_release = threading.Event()  # set: /slow answers at once
        self.slow_answered = 0
        self.big_bytes = 100_000
        self.delay = 0.0  # added to every answer (the benchmark's "endpoint time")
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall

            def log_message(self, *args):
                pass

            def _body(self) -> bytes:
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _json(self, status: int, payload, headers: dict | None = None) -> None:
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str) -> None:
                body = self._body()
                parts = urlsplit(self.path)
                fake.requests.append((method, self.path, dict(self.headers), body))
                if fake.delay:
                    time.sleep(fake.delay)
                path = parts.path
                if path == "/token" and method == "POST":
                    form = parse_qs(body.decode())
                    fake.token_requests += 1
                    if form.get("grant_type") != ["client_credentials"] or form.get("client_id") != [fake.client_id] \
                            or form.get("client_secret") != [fake.client_secret]:
                        return self._json(401, {"error": "invalid_client"})
                    token = f"access-token-{fake.token_requests}-xyz"
                    fake.tokens.add(token)
                    return self._json(200, {"access_token": token, "token_type": "Bearer",
                                            "expires_in": fake.expires_in})
                if path.startswith("/secure"):
                    auth = self.headers.get("Authorization", "")
                    if not auth.startswith("Bearer ") or auth[7:] not in fake.tokens:
                        return self._json(401, {"error": "invalid_token"})
                    return self._json(200, {"ok": True, "path": path})
                if path.startswith("/orders/"):
                    order_id = path.rsplit("/", 1)[1]
                    return self._json(200, {"order": {"id": order_id, "status": "shipped", "eta": "Tuesday"}})
                if path == "/bookings" and method == "POST":
                    received = json.loads(body or b"null")
                    return self._json(201, {"booking": {"day": (received or {}).get("day"), "confirmed": True},
                                            "received": received})
                if path == "/echo":
                    return self._json(200, {"headers": {k.lower(): v for k, v in self.headers.items()},
                                            "query": parse_qs(parts.query), "path": path})
                if path == "/leak":
                    return self._json(200, {"you_sent": self.headers.get("Authorization", ""),
                                            "key": self.headers.get("X-Api-Key", "")})
                if path == "/slow":
                    fake.slow_release.wait(fake.slow_seconds)
                    fake.slow_answered += 1
                    return self._json(200, {"late": True})
                if path == "/big":
                    return self._json(200, json.dumps({"blob": "x" * fake.big_bytes}).encode())
                if path == "/text":
                    data = b"<html>not json</html>"
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                if path.startswith("/status/"):
                    return self._json(int(path.rsplit("/", 1)[1]), {"error": "as asked"})
                if path == "/loop":
                    self.send_response(302)
                    self.send_header("Location", "/loop")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if path == "/redirect":
                    target = parse_qs(parts.query).get("to", ["/"])[0]
                    self.send_response(302)
                    self.send_header("Location", target)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                return self._json(404, {"error": "not found"})

            def do_GET(self):  # noqa: N802
                self._handle("GET")

            def do_POST(self):  # noqa: N802
                self._handle("POST")

            def do_PUT(self):  # noqa: N802
                self._handle("PUT")

            def do_PATCH(self):  # noqa: N802
                self._handle("PATCH")

            def do_DELETE(self):  # noqa: N802
                self._handle("DELETE")

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def revoke_tokens(self) -> None:
        self.tokens.clear()

    def start(self) -> "FakeActionApi":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.slow_release.set()
        self.server.shutdown()
        self.server.server_close()
