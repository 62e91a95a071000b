"""Calls per process, measured where it counts: N Twilio-like media streams over real websockets against one
uvicorn process (Channels, the engine, transcripts written to the database), for three agents in the same run:

- `echo` (the baseline): the scripted agent's line-test mode sends every frame straight back;
- `cascaded`: the cascaded pipeline (webrtcvad per frame, end of turn by silence, zero-latency bench stages: its
  turns and answers are real transcript rows), each frame echoed once the pipeline has handled it;
- `cascaded+turn`: the same with smart-turn v3.2 asked at each pause (the turn model in its thread pool).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/callwell_bench_served REDIS_URL=redis://127.0.0.1:6379/5 \\
    .venv/bin/python -m bench.media_streams_served --levels 50,100,200 --seconds 8

The caller speaks (espeak-ng, 8 kHz μ-law) in a loop: about 1.6 s of speech, 1.2 s of silence, so every call
takes a turn every ~3 s. Per-frame latency = the echo's arrival − the frame's send time (matched by content, in
order). A level passes when p99 < 20 ms and no frame is dropped; the knee is the largest passing N per agent.
The client runs on the same shared cores (its CPU is printed).
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import statistics
import sys
import time
from collections import defaultdict, deque
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
FRAME = 0.020
P99_LIMIT_MS = 20.0


def caller_frames() -> list[str]:
    """One loop of the caller: speech then silence, as base64 μ-law 20 ms frames."""
    from bench.media_streams_cascaded import _caller_audio
    from calls.engine import audio

    ulaw = _caller_audio()
    ulaw += audio.silence(20)[: (-len(ulaw)) % 160]
    return [base64.b64encode(ulaw[i:i + 160]).decode() for i in range(0, len(ulaw), 160)]


async def one_call(ws_url, token, call_sid, seconds, frames, barrier, stats):
    from websockets.asyncio.client import connect

    stream_sid = "MZ" + call_sid[2:]
    pending: dict[str, deque] = defaultdict(deque)
    latencies: list[float] = []
    async with connect(ws_url, max_queue=None, ping_interval=None, compression=None) as ws:
        await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        await ws.send(json.dumps({"event": "start", "sequenceNumber": "1", "streamSid": stream_sid,
                                  "start": {"streamSid": stream_sid, "callSid": call_sid, "tracks": ["inbound"],
                                            "customParameters": {"session": token},
                                            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000,
                                                            "channels": 1}}}))
        admitted = asyncio.Event()
        probe = base64.b64encode(b"\x7f" * 160).decode()
        done = asyncio.Event()

        async def reader():
            try:
                async for raw in ws:
                    now = time.perf_counter()
                    msg = json.loads(raw)
                    if msg.get("event") == "mark":  # as Twilio does once the audio has played (at once here)
                        await ws.send(json.dumps({"event": "mark", "streamSid": stream_sid, "mark": msg["mark"]}))
                        continue
                    if msg.get("event") != "media":
                        continue
                    payload = msg["media"]["payload"]
                    if payload == probe:
                        admitted.set()
                        continue
                    queue = pending.get(payload)
                    if queue:
                        latencies.append((now - queue.popleft()) * 1000)
                    if done.is_set() and not any(pending.values()):
                        return
            except Exception:  # noqa: BLE001 - a closed socket counts as dropped frames
                return

        read_task = asyncio.create_task(reader())
        while not admitted.is_set():
            await ws.send(json.dumps({"event": "media", "streamSid": stream_sid,
                                      "media": {"track": "inbound", "payload": probe}}))
            try:
                await asyncio.wait_for(admitted.wait(), 0.2)
            except asyncio.TimeoutError:
                pass
        barrier["admitted"] += 1
        if barrier["admitted"] == barrier["calls"] and not barrier["start_at"].done():
            barrier["start_at"].set_result(time.perf_counter() + 0.2)
        start_at = await barrier["start_at"]
        t0 = start_at + random.random() * FRAME
        offset = random.randrange(len(frames))
        n = int(seconds / FRAME)
        for seq in range(n):
            delay = t0 + seq * FRAME - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            payload = frames[(offset + seq) % len(frames)]
            pending[payload].append(time.perf_counter())
            await ws.send(json.dumps({"event": "media", "sequenceNumber": str(seq + 2), "streamSid": stream_sid,
                                      "media": {"track": "inbound", "chunk": str(seq + 1),
                                                "timestamp": str(seq * 20), "payload": payload}}))
        done.set()
        try:
            await asyncio.wait_for(read_task, 1.0)
        except asyncio.TimeoutError:
            read_task.cancel()
        stats["sent"] += n
        stats["dropped"] += sum(len(q) for q in pending.values())
        stats["latencies"].extend(latencies)
        await ws.send(json.dumps({"event": "stop", "streamSid": stream_sid, "stop": {}}))


async def measure(ws_url, calls, seconds, frames) -> dict:
    stats = {"sent": 0, "dropped": 0, "latencies": []}
    barrier = {"calls": len(calls), "admitted": 0, "start_at": asyncio.get_running_loop().create_future()}
    admit0 = time.perf_counter()
    async def guarded(token, sid):
        try:
            await one_call(ws_url, token, sid, seconds, frames, barrier, stats)
        except BaseException:
            barrier["calls"] -= 1  # the others do not wait for it
            if barrier["admitted"] >= barrier["calls"] and not barrier["start_at"].done():
                barrier["start_at"].set_result(time.perf_counter() + 0.2)
            raise

    results = await asyncio.gather(*(guarded(t, sid) for t, sid in calls), return_exceptions=True)
    failed = sum(isinstance(r, BaseException) for r in results)  # a call the server did not admit: all dropped
    stats["dropped"] += failed * int(seconds / FRAME)
    stats["sent"] += failed * int(seconds / FRAME)
    admit = barrier["start_at"].result() - 0.2 - admit0 if barrier["start_at"].done() else float("nan")
    lat = sorted(stats["latencies"])
    q = (lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]) if lat else (lambda p: float("nan"))
    return {"calls": len(calls), "frames": stats["sent"], "dropped": stats["dropped"], "admit_s": admit,
            "p50_ms": q(0.5), "p99_ms": q(0.99), "max_ms": lat[-1] if lat else float("nan"),
            "mean_ms": statistics.fmean(lat) if lat else float("nan")}


def seed_agents():
    """One workspace per agent (an environment per workspace and kind), each with its connector."""
    from agents.models import Agent, AgentVersion, Environment, EnvironmentVariable
    from connectors.models import PhoneConnector
    from telephony.models import TwilioConnection
    from workspaces.models import Workspace

    out = {}
    for i, (name, provider, variables) in enumerate((
        ("echo", "scripted", {"SCRIPTED_AUDIO_ECHO": "1"}),
        ("cascaded", "cascaded", {"TURN_MODEL": "0"}),
        ("cascaded+turn", "cascaded", {"TURN_MODEL": "1"}),
    )):
        ws = Workspace.objects.create(name=f"Bench {name}", slug=f"bench-served-{os.getpid()}-{i}")
        TwilioConnection.objects.create(workspace=ws, account_sid="AC" + str(i) * 32, auth_token="c" * 32,
                                        status=TwilioConnection.Status.CONNECTED)
        agent = Agent.objects.create(workspace=ws, name=name, slug=f"agent-{i}")
        version = AgentVersion.objects.create(agent=agent, state=AgentVersion.State.DRAFT, provider=provider,
                                              transport="media_streams", greeting="", stt_vendor="bench",
                                              chat_vendor="bench", tts_vendor="bench")
        env = Environment.objects.create(workspace=ws, kind=Environment.Kind.PRODUCTION)
        for k, v in variables.items():
            EnvironmentVariable.objects.create(environment=env, name=k, value=v)
        connector = PhoneConnector.objects.create(workspace=ws, agent=agent, environment=env, version_mode="draft")
        out[name] = (ws, connector, version, env)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="50,100,200")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--agents", default="echo,cascaded,cascaded+turn")
    args = parser.parse_args(argv)

    from bench._harness import bench_env, free_port
    from bench.media_streams import _cpu_seconds, _sessions, _setup_django

    env = bench_env(LOG_LEVEL="WARNING", BENCH_ECHO="1")
    _setup_django(env)
    seeds = seed_agents()
    frames = caller_frames()
    port = free_port()
    # The served app: the runtime's own, with the bench stages registered (bench/_served_app.py).
    import subprocess
    cmd = [sys.executable, "-m", "uvicorn", "bench._served_app:application", "--host", "127.0.0.1", "--port",
           str(port), "--log-level", "warning", "--no-access-log", "--lifespan", "off", "--ws-ping-interval", "0"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    import socket
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(proc.stderr.read().decode()[-2000:])
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.2)
    ws_url = f"ws://127.0.0.1:{port}/v1/stream/media"
    knees: dict[str, int] = {}
    step = random.randrange(100, 9000)  # call SIDs unique across runs on the same database
    try:
        for level in (int(x) for x in args.levels.split(",") if x.strip()):
            for name in args.agents.split(","):
                step += 1
                calls = _sessions(seeds[name], level, step)
                cpu0, client0, t0 = _cpu_seconds(proc.pid), time.process_time(), time.perf_counter()
                r = asyncio.run(measure(ws_url, calls, args.seconds, frames))
                wall = time.perf_counter() - t0 - r["admit_s"]
                cpu = 1000 * (_cpu_seconds(proc.pid) - cpu0) / wall / level  # ms of CPU per call-second
                ok = r["dropped"] == 0 and r["p99_ms"] < P99_LIMIT_MS
                if ok:
                    knees[name] = max(knees.get(name, 0), level)
                print(f"{name:14} N={level:4d} frames={r['frames']:6d} dropped={r['dropped']:5d} "
                      f"p50={r['p50_ms']:6.2f} ms p99={r['p99_ms']:7.2f} ms max={r['max_ms']:7.1f} ms "
                      f"server CPU {cpu:5.1f} ms per call-second, client CPU "
                      f"{100 * (time.process_time() - client0) / wall:5.1f}%  load {os.getloadavg()[0]:.1f}  "
                      f"{'PASS' if ok else 'FAIL'}", flush=True)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    from calls.models import CallTurn

    print(f"\nknee (largest N with p99 < {P99_LIMIT_MS:.0f} ms and no drops), one uvicorn process, "
          f"{os.cpu_count()} shared cores: " + ", ".join(f"{n}: {knees.get(n, 0)}" for n in args.agents.split(",")))
    print(f"transcript rows written: {CallTurn.objects.count()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
