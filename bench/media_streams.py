"""Media Streams capacity: N simulated Twilio calls at once against one runtime process on loopback.

    .venv/bin/python -m bench.media_streams                     # levels 25,50,100,150,200 (about 1-2 minutes)
    .venv/bin/python -m bench.media_streams --levels 10,20 --seconds 5 --server daphne

Each simulated call does what Twilio does: opens `/v1/stream/media`, sends `connected` and `start` with the
call's signed single-use session parameter (issued by the real service), then one 20 ms μ-law `media`
frame every 20 ms (real-time pacing, random phase per call). The agent is the scripted provider in its
line-test mode (environment variable SCRIPTED_AUDIO_ECHO=1): every caller frame goes through the whole
runtime (JSON parse → engine → provider → event queue → call task → JSON → socket) and comes back as an
outbound `media` frame. Per-frame *added latency* = time the echo arrives − time the frame was sent, on
loopback. A level passes when p99 < 20 ms (one frame) and no frame is dropped (every frame sent in the
window came back). CPU per call = the server process's CPU time in the window / window / N.

Reports the largest passing N. The client runs in this process, on the same (shared) cores: its own CPU
is reported too, because it competes with the server.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FRAME = 0.020
P99_LIMIT_MS = 20.0


# ---------------------------------------------------------------------------- measuring (also used by the smoke test)


def _payload(seq: int) -> str:
    return base64.b64encode(struct.pack(">I", seq) + b"\xff" * 156).decode()


PROBE = 0xFFFFFFFF


async def _one_call(ws_url: str, token: str, call_sid: str, seconds: float, barrier: dict, stats: dict,
                    on_admitted=None) -> None:
    """One simulated Twilio media stream: admission, then `seconds` of real-time 20 ms frames, echo latencies.

    `on_admitted` (async, optional) runs once the call is admitted and before the frames start (e.g. attach
    listeners); the coroutine function it returns, if any, runs after the last frame, before `stop`."""
    from websockets.asyncio.client import connect

    stream_sid = "MZ" + call_sid[2:]
    sent: dict[int, float] = {}
    latencies: list[float] = []
    async with connect(ws_url, max_queue=None, ping_interval=None, compression=None) as ws:
        await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        await ws.send(json.dumps({"event": "start", "sequenceNumber": "1", "streamSid": stream_sid,
                                  "start": {"streamSid": stream_sid, "callSid": call_sid, "tracks": ["inbound"],
                                            "customParameters": {"session": token},
                                            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000,
                                                            "channels": 1}}}))
        done = asyncio.Event()
        admitted = asyncio.Event()

        async def reader():
            try:
                async for raw in ws:
                    now = time.perf_counter()
                    msg = json.loads(raw)
                    if msg.get("event") != "media":
                        continue
                    seq = struct.unpack(">I", base64.b64decode(msg["media"]["payload"])[:4])[0]
                    if seq == PROBE:
                        admitted.set()
                        continue
                    t = sent.pop(seq, None)
                    if t is not None:
                        latencies.append((now - t) * 1000)
                    if done.is_set() and not sent:
                        return
            except Exception:  # noqa: BLE001 - a closed socket counts as dropped frames
                return

        read_task = asyncio.create_task(reader())
        # Admission (token check, context load) happens once per call; the measurement covers the steady
        # state after it: a probe frame is sent until it comes back, then all calls start together.
        while not admitted.is_set():
            await ws.send(json.dumps({"event": "media", "streamSid": stream_sid,
                                      "media": {"track": "inbound", "payload": _payload(PROBE)}}))
            try:
                await asyncio.wait_for(admitted.wait(), 0.1)
            except asyncio.TimeoutError:
                pass
        after_frames = await on_admitted() if on_admitted is not None else None
        barrier["admitted"] += 1
        if barrier["admitted"] == barrier["calls"]:
            barrier["start_at"].set_result(time.perf_counter() + 0.2)
        start_at = await barrier["start_at"]
        # Real-time pacing on an absolute schedule; the phase differs per call like real calls.
        t0 = start_at + random.random() * FRAME
        n = int(seconds / FRAME)
        for seq in range(n):
            delay = t0 + seq * FRAME - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent[seq] = time.perf_counter()
            await ws.send(json.dumps({"event": "media", "sequenceNumber": str(seq + 2), "streamSid": stream_sid,
                                      "media": {"track": "inbound", "chunk": str(seq + 1),
                                                "timestamp": str(seq * 20), "payload": _payload(seq)}}))
        done.set()
        try:
            await asyncio.wait_for(read_task, 1.0)  # grace for the last frames
        except asyncio.TimeoutError:
            read_task.cancel()
        stats["sent"] += n
        stats["dropped"] += len(sent)
        stats["latencies"].extend(latencies)
        if after_frames is not None:
            await after_frames()
        await ws.send(json.dumps({"event": "stop", "streamSid": stream_sid, "stop": {}}))


async def measure(ws_url: str, calls: list[tuple[str, str]], seconds: float) -> dict:
    """Run the calls ((token, call_sid) each) at once for `seconds`; returns latency/drop figures."""
    stats = {"sent": 0, "dropped": 0, "latencies": []}
    barrier = {"calls": len(calls), "admitted": 0, "start_at": asyncio.get_running_loop().create_future()}
    admit0 = time.perf_counter()
    await asyncio.gather(*(_one_call(ws_url, t, sid, seconds, barrier, stats) for t, sid in calls))
    stats["admit_s"] = barrier["start_at"].result() - 0.2 - admit0 if barrier["start_at"].done() else float("nan")
    lat = sorted(stats["latencies"])
    q = (lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]) if lat else (lambda p: float("nan"))
    return {"calls": len(calls), "frames": stats["sent"], "dropped": stats["dropped"], "admit_s": stats["admit_s"],
            "p50_ms": q(0.50), "p99_ms": q(0.99), "max_ms": lat[-1] if lat else float("nan"),
            "mean_ms": statistics.fmean(lat) if lat else float("nan")}


# ---------------------------------------------------------------------------- the server and its data


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _ensure_database(url: str) -> None:
    """A PostgreSQL bench database named in DATABASE_URL is created when it does not exist yet (instead of the
    connection pool's ten-second timeout and a traceback)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if not parts.scheme.startswith("postgres") or not parts.path.strip("/"):
        return
    import psycopg
    from psycopg import sql

    name = parts.path.strip("/")
    with psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"created the bench database {name}", flush=True)


def _setup_django(env: dict) -> None:
    os.environ.update(env)
    _ensure_database(os.environ.get("DATABASE_URL", ""))
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def _seed():
    """A workspace with a Twilio connection, a scripted agent in line-test (echo) mode, a connector."""
    from agents.models import Agent, AgentVersion, Environment, EnvironmentVariable
    from connectors.models import PhoneConnector
    from telephony.models import TwilioConnection
    from workspaces.models import Workspace

    ws = Workspace.objects.create(name="Bench", slug=f"bench-{os.getpid()}")
    TwilioConnection.objects.create(workspace=ws, account_sid="AC" + "b" * 32, auth_token="c" * 32,
                                    status=TwilioConnection.Status.CONNECTED)
    agent = Agent.objects.create(workspace=ws, name="Echo", slug="echo")
    version = AgentVersion.objects.create(agent=agent, state=AgentVersion.State.DRAFT, provider="scripted",
                                          transport="media_streams", greeting="")
    env = Environment.objects.create(workspace=ws, kind=Environment.Kind.PRODUCTION)
    EnvironmentVariable.objects.create(environment=env, name="SCRIPTED_AUDIO_ECHO", value="1")
    connector = PhoneConnector.objects.create(workspace=ws, agent=agent, environment=env, version_mode="draft")
    return ws, connector, version, env


def _sessions(seed, n: int, level: int, run: int = 0) -> list[tuple[str, str]]:  # level: a unique step number
    from calls.models import CallSession
    from connectors.services import stream_token_issue

    ws, connector, version, env = seed
    out = []
    for i in range(n):
        sid = f"CA{level:04d}{i:04d}{run % 10 ** 24:024d}"  # run: unique per bench run on a kept database
        session = CallSession.objects.create(call_sid=sid, workspace=ws, connector=connector, agent_version=version,
                                             environment=env, status=CallSession.Status.IN_PROGRESS)
        out.append((stream_token_issue(call_session=session), sid))
    return out


def _start_server(server: str, port: int, env: dict, loop: str = "auto") -> subprocess.Popen:
    if server == "daphne":
        cmd = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"]
    else:
        cmd = [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1", "--port", str(port),
               "--log-level", "warning", "--no-access-log", "--lifespan", "off", "--ws-ping-interval", "0",
               "--loop", loop, "--ws", "config.websocket:WebSocketProtocol"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    import socket

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{server} exited: {proc.stderr.read().decode()[-2000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{server} did not start")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="25,50,100,150,200", help="concurrent calls per step")
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds of audio per step")
    parser.add_argument("--server", choices=["uvicorn", "daphne"], default="uvicorn")
    parser.add_argument("--loop", choices=["auto", "asyncio", "uvloop"], default="auto",
                        help="uvicorn's event loop (auto = uvloop when installed)")
    parser.add_argument("--keep-going", action="store_true", help="run every level even after one fails")
    args = parser.parse_args(argv)

    from bench._harness import bench_env, free_port

    env = bench_env(LOG_LEVEL="WARNING")
    _setup_django(env)
    seed = _seed()
    port = free_port()
    proc = _start_server(args.server, port, env, args.loop)
    ws_url = f"ws://127.0.0.1:{port}/v1/stream/media"
    rows, best = [], None
    try:
        for step, level in enumerate(int(x) for x in args.levels.split(",") if x.strip()):
            calls = _sessions(seed, level, step)
            cpu0, client0, t0 = _cpu_seconds(proc.pid), time.process_time(), time.perf_counter()
            result = asyncio.run(measure(ws_url, calls, args.seconds))
            wall = time.perf_counter() - t0 - result["admit_s"]
            result["server_cpu_per_call_pct"] = 100 * (_cpu_seconds(proc.pid) - cpu0) / wall / level
            result["client_cpu_pct"] = 100 * (time.process_time() - client0) / wall
            result["ok"] = result["dropped"] == 0 and result["p99_ms"] < P99_LIMIT_MS
            result["load1"] = os.getloadavg()[0]
            rows.append(result)
            print(f"N={level:4d}  frames={result['frames']:6d}  dropped={result['dropped']:5d}  "
                  f"p50={result['p50_ms']:6.2f} ms  p99={result['p99_ms']:7.2f} ms  max={result['max_ms']:7.1f} ms  "
                  f"server CPU/call={result['server_cpu_per_call_pct']:5.2f}% of a core  "
                  f"client CPU={result['client_cpu_pct']:5.1f}%  admission of all={result['admit_s']:.1f} s  "
                  f"loadavg={result['load1']:.1f}  "
                  f"{'PASS' if result['ok'] else 'FAIL'}", flush=True)
            if result["ok"]:
                best = result
            elif not args.keep_going:
                break
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    if best:
        print(f"\nLargest N sustained ({args.server}, loop {args.loop}, one process, {os.cpu_count()} shared cores): {best['calls']} "
              f"concurrent calls, p99 added latency {best['p99_ms']:.2f} ms, no dropped frames, "
              f"{best['server_cpu_per_call_pct']:.2f}% of a core per call.")
    else:
        print("\nNo level passed (p99 < 20 ms and no dropped frames).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
