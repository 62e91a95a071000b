"""Listen fan-out: the latency a call's audio gains when 0, 1 or 5 Studio listeners hear it, in one run.

    .venv/bin/python -m bench.listen_fanout                      # 10 calls, 0/1/5 listeners per call, 8 s each
    .venv/bin/python -m bench.listen_fanout --calls 20 --listeners 0,1,5,10 --seconds 5

One uvicorn process on loopback (as `bench.media_streams`, whose pieces this reuses: seed, tokens, server).
Each simulated call streams a 20 ms μ-law frame every 20 ms to the scripted agent in echo mode, so every frame
crosses the whole runtime and comes back; per-frame *added latency* = echo arrival − send time. At each level,
every call first gets L listener websockets (`/v1/studio/calls/<id>/listen`, a logged-in member's session
cookie), which receive both sides' frames (binary) while the call is measured. The figure that matters is the
difference against the 0-listener level of the same run: what fan-out costs the call. Listeners that fall behind
lose frames (counted as "listener drops"); the call's own frames must never be dropped.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time

from bench.media_streams import FRAME, _cpu_seconds, _seed, _sessions, _setup_django, _start_server
from bench.media_streams import _one_call as media_streams_call


async def _listener(listen_url: str, cookie: str, counts: dict, ready: asyncio.Event, stop: asyncio.Event) -> None:
    from websockets.asyncio.client import connect

    headers = {"Cookie": cookie, "Origin": "http://127.0.0.1"}
    while True:  # the call registers right after admission: retry until it is live
        async with connect(listen_url, additional_headers=headers, max_queue=None, compression=None) as ws:
            hello = json.loads(await ws.recv())
            if hello.get("kind") != "hello":
                await asyncio.sleep(0.02)
                continue
            ready.set()
            while not stop.is_set():
                try:
                    raw = await asyncio.wait_for(ws.recv(), 0.2)
                except asyncio.TimeoutError:
                    continue
                except Exception:  # noqa: BLE001 - the call ended
                    return
                if isinstance(raw, bytes):
                    counts["frames"] += 1
            return


async def _one_call(ws_base: str, token: str, call_sid: str, session_id: int, listeners: int, cookie: str,
                    seconds: float, barrier: dict, stats: dict) -> None:
    """`bench.media_streams`' simulated call, with `listeners` listen websockets attached once it is admitted."""
    stop = asyncio.Event()
    counts = {"frames": 0}
    tasks: list[asyncio.Task] = []

    async def attach_listeners():
        for _ in range(listeners):
            ready = asyncio.Event()
            tasks.append(asyncio.create_task(_listener(f"{ws_base}/v1/studio/calls/{session_id}/listen", cookie,
                                                       counts, ready, stop)))
            await asyncio.wait_for(ready.wait(), 10)

        async def detach_listeners():
            await asyncio.sleep(0.2)  # the listeners' last frames
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)

        return detach_listeners

    await media_streams_call(ws_base + "/v1/stream/media", token, call_sid, seconds, barrier, stats,
                             on_admitted=attach_listeners)
    stats["listener_frames"] += counts["frames"]
    # each listener should get the caller's and the agent's side of every frame
    stats["listener_expected"] += listeners * 2 * int(seconds / FRAME)


async def measure_level(ws_base: str, calls: list[tuple[str, str, int]], listeners: int, cookie: str,
                        seconds: float) -> dict:
    """Run the calls ((token, call_sid, session id) each) with `listeners` listeners each, for `seconds`."""
    stats = {"sent": 0, "dropped": 0, "latencies": [], "listener_frames": 0, "listener_expected": 0}
    barrier = {"calls": len(calls), "admitted": 0, "start_at": asyncio.get_running_loop().create_future()}
    await asyncio.gather(*(_one_call(ws_base, t, sid, pk, listeners, cookie, seconds, barrier, stats)
                           for t, sid, pk in calls))
    lat = sorted(stats["latencies"])
    q = (lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]) if lat else (lambda p: float("nan"))
    expected = stats["listener_expected"]
    return {"calls": len(calls), "listeners": listeners, "frames": stats["sent"], "dropped": stats["dropped"],
            "p50_ms": q(0.50), "p99_ms": q(0.99), "mean_ms": statistics.fmean(lat) if lat else float("nan"),
            "listener_frames": stats["listener_frames"],
            "listener_drop_pct": 100 * max(0, expected - stats["listener_frames"]) / expected if expected else 0.0}


def _member_cookie(seed) -> str:
    """A member of the bench workspace, logged in (a session row, like the browser's)."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    from workspaces.models import Membership

    user = get_user_model().objects.create_user(username=f"listener-{os.getpid()}", password="x")
    Membership.objects.create(workspace=seed[0], user=user, role=Membership.Role.MEMBER)
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10, help="concurrent calls at each level")
    parser.add_argument("--listeners", default="0,1,5", help="listeners per call, one level each")
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds of audio per level")
    args = parser.parse_args(argv)

    from bench._harness import bench_env, free_port

    env = bench_env(LOG_LEVEL="WARNING")
    _setup_django(env)
    seed = _seed()
    cookie = _member_cookie(seed)
    port = free_port()
    proc = _start_server("uvicorn", port, env)
    ws_base = f"ws://127.0.0.1:{port}"
    from calls.models import CallSession

    rows = []
    try:
        for step, listeners in enumerate(int(x) for x in args.listeners.split(",") if x.strip()):
            pairs = _sessions(seed, args.calls, 500 + step)
            ids = dict(CallSession.objects.filter(call_sid__in=[s for _, s in pairs]).values_list("call_sid", "pk"))
            calls = [(t, s, ids[s]) for t, s in pairs]
            cpu0, t0 = _cpu_seconds(proc.pid), time.perf_counter()
            result = asyncio.run(measure_level(ws_base, calls, listeners, cookie, args.seconds))
            result["server_cpu_pct"] = 100 * (_cpu_seconds(proc.pid) - cpu0) / (time.perf_counter() - t0)
            rows.append(result)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except Exception:  # noqa: BLE001
            proc.kill()
    base = rows[0] if rows and rows[0]["listeners"] == 0 else None
    print(f"{args.calls} calls, {args.seconds:.0f} s of 20 ms frames per level, one uvicorn process, "
          f"{os.cpu_count()} shared cores, load average {os.getloadavg()[0]:.1f}")
    print("listeners/call  frames  call drops  p50 ms  p99 ms  mean ms  +p50 ms  +p99 ms  listener drops  server CPU")
    for r in rows:
        d50 = r["p50_ms"] - base["p50_ms"] if base else float("nan")
        d99 = r["p99_ms"] - base["p99_ms"] if base else float("nan")
        print(f"{r['listeners']:14d}  {r['frames']:6d}  {r['dropped']:10d}  {r['p50_ms']:6.2f}  {r['p99_ms']:6.2f}  "
              f"{r['mean_ms']:7.2f}  {d50:+7.2f}  {d99:+7.2f}  {r['listener_drop_pct']:13.1f}%  "
              f"{r['server_cpu_pct']:8.1f}%", flush=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    raise SystemExit(main())
