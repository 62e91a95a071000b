"""What the call engine adds to an API action beyond the endpoint's own time (target: at most 5 ms per action).

    .venv/bin/python -m bench.api_actions [--actions 200] [--delay-ms 20]

A local endpoint (127.0.0.1, answering after --delay-ms) is called N times in two ways, interleaved:
- baseline: a plain kept-alive `httpx.AsyncClient` GET (the endpoint's own time as a client sees it);
- engine: the caller's words reach a Studio test-chat engine (`call_open("text", …)` engine, scripted provider), whose rule
  fires the API action; timed until the engine sends the action's result to the chat (validation, templates,
  the outbound guard's address check, the request, JSON pointer, redaction, recording the run, the event).
Prints p50/p90/mean of both and the difference per action. In-process, no database (the test chat is not
stored); run it three times on the shared machine and report every round.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall
    delay = 0.0

    def do_GET(self):  # noqa: N802
        if self.delay:
            time.sleep(self.delay)
        body = json.dumps({"order": {"id": self.path.rsplit("/", 1)[-1], "status": "shipped"}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    if "DJANGO_SETTINGS_MODULE" not in os.environ:
        from bench._harness import bench_env

        os.environ.update(bench_env())
    os.environ.setdefault("OUTBOUND_ALLOW_PRIVATE_TARGETS", "1")  # the endpoint is on loopback
    os.environ.setdefault("OUTBOUND_ALLOW_HTTP", "1")
    import django

    django.setup()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(actions: int, delay_ms: float) -> dict:
    """Per-action times in ms: {"baseline": [...], "engine": [...]} (the endpoint runs in a thread)."""
    import httpx

    from agents.action_requests import ApiActionSpec
    from calls.engine.context import CallContext
    from calls.engine.engine import call_open

    handler = type("H", (_Handler,), {"delay": delay_ms / 1000})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    action = ApiActionSpec(name="order_status", url="{API_BASE}/orders/{order_id}", result_pointer="/order/status",
                           parameters=({"name": "order_id", "type": "string", "required": True},))
    ctx = CallContext(transport="text", provider="scripted", greeting="", api_actions=(action,),
                      handover_rules=({"keyword": "order", "action": "order_status",
                                       "parameters": {"order_id": "42"}, "say": "It is {result}."},),
                      variables={"API_BASE": base}, secrets={"SOME_SECRET": "bench-secret-value"})
    done = asyncio.Event()

    async def send(msg):
        if msg.get("type") == "action":
            done.set()

    engine = call_open("text", ctx, send)
    engine.start()
    baseline, timed = [], []
    try:
        async with httpx.AsyncClient(timeout=10) as plain:
            for i in range(actions + 5):  # the first 5 of each warm up (connections, imports)
                t0 = time.perf_counter()
                response = await plain.get(f"{base}/orders/42")
                response.json()
                t1 = time.perf_counter()
                done.clear()
                await engine.handle({"type": "message", "text": "my order please"})
                await asyncio.wait_for(done.wait(), 10)
                t2 = time.perf_counter()
                if i >= 5:
                    baseline.append((t1 - t0) * 1000)
                    timed.append((t2 - t1) * 1000)
    finally:
        await engine.close()
        server.shutdown()
        server.server_close()
    return {"baseline": baseline, "engine": timed, "runs": len(engine.action_runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--actions", type=int, default=200)
    parser.add_argument("--delay-ms", type=float, default=20.0)
    args = parser.parse_args()
    _setup_django()
    result = asyncio.run(measure(min(args.actions, 5000), args.delay_ms))
    b, e = result["baseline"], result["engine"]
    print(f"{len(e)} actions, endpoint delay {args.delay_ms:g} ms, load average {os.getloadavg()[0]:.2f}")
    print(f"{'':32}{'p50 ms':>9}{'p90 ms':>9}{'mean ms':>9}")
    print(f"{'endpoint via plain httpx (base)':32}{_pct(b, .5):9.2f}{_pct(b, .9):9.2f}{statistics.mean(b):9.2f}")
    print(f"{'API action through the engine':32}{_pct(e, .5):9.2f}{_pct(e, .9):9.2f}{statistics.mean(e):9.2f}")
    overhead = _pct(e, .5) - _pct(b, .5)
    print(f"engine overhead per action (p50 difference): {overhead:.2f} ms "
          f"({'within' if overhead <= 5 else 'OVER'} the 5 ms target); ratio {_pct(e, .5) / _pct(b, .5):.3f}")


if __name__ == "__main__":
    main()
