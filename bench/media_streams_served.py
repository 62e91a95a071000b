"""Calls per process, measured where it counts: N Twilio-like media streams over real websockets against one
uvicorn process (Channels, the engine, transcripts written to the database), for three agents in the same run:

- `echo` (the baseline): the scripted agent's line-test mode sends every frame straight back;
- `cascaded`: the cascaded pipeline (webrtcvad per frame at 8 kHz, end of turn by silence, zero-latency bench
  stages: its turns and answers are real transcript rows, through the process's batched writer), each frame
  echoed once the pipeline has handled it;
- `cascaded+turn`: the same with smart-turn v3.2 asked at each pause (the turn model in its worker process).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/callwell_bench_served REDIS_URL=redis://127.0.0.1:6379/5 \\
    .venv/bin/python -m bench.media_streams_served --levels 25,50,100,200 --seconds 6 --rounds 3

The caller speaks (espeak-ng, 8 kHz μ-law) in a loop: about 1.6 s of speech, 1.2 s of silence, so every call
takes a turn every ~3 s. The calls are spread over `--clients` client processes (frames pre-rendered, sent in 4
groups 5 ms apart per process, on websockets' sans-I/O protocol with a callback per received message); per-frame
latency = the echo's arrival − the frame's send time (matched by content, in order). A level passes when p99 < 20 ms and no frame is dropped; the knee is the largest passing N
per agent, per round, and its median. Each row also shows the p99's ratio to the echo baseline's in the same round
and level, and the server's CPU per second of caller audio it handled (a CPU-starved server handles fewer frames
than were sent; per handled second the cost stays comparable), with `1000 / that` = the calls one core carries.
`--profile out.prof` profiles the server's event-loop thread (cProfile, while the frames flow) and prints its self
time grouped by where the code lives. `--nice -10` puts the server and the clients ahead of this session's other
processes (on Linux with autogroups it does not take CPU from other sessions).
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import signal
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


MEDIA = ('{"event":"media","sequenceNumber":"%d","streamSid":"%s","media":{"track":"inbound","chunk":"%d",'
         '"timestamp":"%d","payload":"%s"}}')  # as Twilio sends it, rendered without json.dumps per frame
SLOTS = 4  # each client process sends its calls' frames in 4 groups 5 ms apart (not 200 timers per 20 ms)


def _payload_of(raw: str) -> str | None:
    """The payload of a media message from the server (compact JSON), without parsing the whole message."""
    i = raw.find('"payload":"')
    if i < 0:
        return None
    i += 11
    return raw[i:raw.index('"', i)]


class LeanSocket(asyncio.Protocol):
    """A client websocket on websockets' sans-I/O protocol (handshake, masking, framing: the library's), each
    received text handed to a callback in `data_received`: no task, queue or future per message. The client
    processes share the server's cores, so what they spend per frame is taken from the server: at 200 calls the
    library's asyncio client took 0.4-0.5 of a core for both processes."""

    def __init__(self, uri: str):
        from websockets.client import ClientProtocol
        from websockets.uri import parse_uri

        self.conn = ClientProtocol(parse_uri(uri), max_size=None)
        self.opened = asyncio.get_running_loop().create_future()
        self.on_text = None
        self.closed = False
        self.transport = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.conn.send_request(self.conn.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        from websockets.frames import Frame, Opcode
        from websockets.http11 import Response

        now = time.perf_counter()
        self.conn.receive_data(data)
        for event in self.conn.events_received():
            if isinstance(event, Frame):
                if event.opcode is Opcode.TEXT and self.on_text is not None:
                    self.on_text(event.data.decode(), now)
            elif isinstance(event, Response) and not self.opened.done():
                self.opened.set_result(event.status_code == 101)
        self._flush()  # pongs, the close handshake
        if self.conn.close_expected():
            self.closed = True

    def connection_lost(self, exc) -> None:
        self.closed = True
        if not self.opened.done():
            self.opened.set_result(False)

    def _flush(self) -> None:
        out = self.conn.data_to_send()
        if out and not self.transport.is_closing():
            self.transport.write(b"".join(out))

    def send(self, text: str) -> None:
        if self.closed:
            raise ConnectionError("closed")
        self.conn.send_text(text.encode())
        self._flush()

    def close(self) -> None:
        if not self.closed:
            try:
                self.conn.send_close(1000)
                self._flush()
            except Exception:  # noqa: BLE001 - already closing
                pass
        self.closed = True
        self.transport.close()


async def lean_connect(url: str, timeout: float = 60) -> LeanSocket:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    _, ws = await asyncio.get_running_loop().create_connection(lambda: LeanSocket(url), parts.hostname, parts.port)
    if not await asyncio.wait_for(ws.opened, timeout):
        ws.close()
        raise ConnectionError("handshake refused")
    return ws


class Call:
    def __init__(self, ws, token, call_sid):
        self.ws, self.token, self.call_sid = ws, token, call_sid
        self.stream_sid = "MZ" + call_sid[2:]
        self.pending: dict[str, deque] = defaultdict(deque)
        self.latencies: list[float] = []
        self.admitted = asyncio.Event()
        self.outstanding = 0
        ws.on_text = self.on_text

    def on_text(self, raw: str, now: float) -> None:
        """A message from the server (in the socket's `data_received`, timestamped on arrival)."""
        if raw.startswith('{"event":"media"'):
            payload = _payload_of(raw)
            if payload == PROBE:
                self.admitted.set()
                return
            queue = self.pending.get(payload)
            if queue:
                self.latencies.append((now - queue.popleft()) * 1000)
                self.outstanding -= 1
            return
        msg = json.loads(raw)
        if msg.get("event") == "mark":  # as Twilio does once the audio has played (at once here)
            try:
                self.ws.send('{"event":"mark","streamSid":"%s","mark":{"name":"%s"}}'
                             % (self.stream_sid, msg["mark"]["name"]))
            except ConnectionError:
                pass


PROBE = base64.b64encode(b"\x7f" * 160).decode()


async def _admit(call: Call) -> None:
    call.ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
    call.ws.send(json.dumps({
        "event": "start", "sequenceNumber": "1", "streamSid": call.stream_sid,
        "start": {"streamSid": call.stream_sid, "callSid": call.call_sid, "tracks": ["inbound"],
                  "customParameters": {"session": call.token},
                  "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}))
    for _ in range(300):  # 60 s at most
        call.ws.send(MEDIA % (1, call.stream_sid, 0, 0, PROBE))
        try:
            await asyncio.wait_for(call.admitted.wait(), 0.2)
            return
        except asyncio.TimeoutError:
            if call.ws.closed:
                raise RuntimeError("not admitted (socket closed)")
    raise RuntimeError("not admitted in 60 s")


async def client_main(ws_url, calls, seconds, frames, conn) -> None:
    """One client process: open and admit its calls, report ready, send from the shared start time, report."""
    opened: list[Call] = []
    failed = 0
    sockets = []

    async def open_one(token, sid):
        nonlocal failed
        try:
            ws = await lean_connect(ws_url)
            sockets.append(ws)
            call = Call(ws, token, sid)
            await _admit(call)
            opened.append(call)
        except Exception:  # noqa: BLE001 - a call the server did not admit: all its frames count as dropped
            failed += 1

    await asyncio.gather(*(open_one(t, sid) for t, sid in calls))
    conn.send(("ready", len(opened)))
    start_at = conn.recv()
    cpu0 = time.process_time()
    n = int(seconds / FRAME)
    slots = [opened[i::SLOTS] for i in range(SLOTS)]
    offsets = {id(c): random.randrange(len(frames)) for c in opened}

    async def send_slot(k, group):
        t0 = start_at + k * FRAME / SLOTS
        for seq in range(n):
            delay = t0 + seq * FRAME - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            for call in group:
                payload = frames[(offsets[id(call)] + seq) % len(frames)]
                call.pending[payload].append(time.perf_counter())
                call.outstanding += 1
                try:
                    call.ws.send(MEDIA % (seq + 2, call.stream_sid, seq + 1, seq * 20, payload))
                except Exception:  # noqa: BLE001 - counted as dropped
                    pass

    await asyncio.gather(*(send_slot(k, g) for k, g in enumerate(slots) if g))
    for _ in range(100):  # up to 1 s for the last echoes
        if not any(c.outstanding for c in opened):
            break
        await asyncio.sleep(0.01)
    cpu = time.process_time() - cpu0
    latencies = [x for c in opened for x in c.latencies]
    dropped = sum(c.outstanding for c in opened) + failed * n
    for call in opened:
        try:
            call.ws.send(json.dumps({"event": "stop", "streamSid": call.stream_sid, "stop": {}}))
        except Exception:  # noqa: BLE001
            pass
    await asyncio.sleep(0.2)  # the server's close handshake
    for ws in sockets:
        ws.close()
    conn.send(("done", {"sent": n * (len(opened) + failed), "dropped": dropped, "latencies": latencies,
                        "cpu": cpu, "failed": failed}))


def _client_process(ws_url, calls, seconds, frames, conn) -> None:
    import gc

    gc.disable()  # a client must not pause while it timestamps (nothing cyclic lives for a run: refcounting frees)
    asyncio.run(client_main(ws_url, calls, seconds, frames, conn))
    conn.close()


def measure(ws_url, calls, seconds, frames, clients: int, server_pid: int, profile: bool = False) -> dict:
    """N calls split over `clients` client processes; frames from a start time shared by all of them."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    chunks = [calls[i::clients] for i in range(clients)]
    procs, pipes = [], []
    admit0 = time.perf_counter()
    for chunk in chunks:
        if not chunk:
            continue
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_client_process, args=(ws_url, chunk, seconds, frames, child), daemon=True)
        proc.start()
        procs.append(proc)
        pipes.append(parent)
    for pipe in pipes:
        pipe.recv()  # ("ready", admitted)
    admit_s = time.perf_counter() - admit0
    start_at = time.perf_counter() + 0.3
    if profile:  # the server's profiler runs while the frames flow (not during admission)
        os.kill(server_pid, signal.SIGUSR1)
    cpu0, t0 = _cpu_seconds(server_pid), time.perf_counter()
    for pipe in pipes:
        pipe.send(start_at)
    parts = [pipe.recv()[1] for pipe in pipes]
    if profile:
        os.kill(server_pid, signal.SIGUSR2)
    wall = time.perf_counter() - t0
    server_cpu = _cpu_seconds(server_pid) - cpu0
    for proc in procs:
        proc.join(10)
    lat = sorted(x for p in parts for x in p["latencies"])
    q = (lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]) if lat else (lambda p: float("nan"))
    return {"calls": len(calls), "frames": sum(p["sent"] for p in parts), "admit_s": admit_s,
            "dropped": sum(p["dropped"] for p in parts), "failed": sum(p["failed"] for p in parts),
            "p50_ms": q(0.5), "p99_ms": q(0.99), "max_ms": lat[-1] if lat else float("nan"),
            "server_cpu_ms_per_call_s": 1000 * server_cpu / wall / len(calls),
            # per second of caller audio the server handled (a CPU-starved server handles fewer frames than sent)
            "server_cpu_ms_per_handled_s": 1000 * server_cpu / max(1e-9, (sum(p["sent"] for p in parts)
                                                                       - sum(p["dropped"] for p in parts)) * FRAME),
            "client_cpu_pct": 100 * sum(p["cpu"] for p in parts) / wall}


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children that exited (the turn model's worker is a child)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(fields[i]) for i in (11, 12)) / os.sysconf("SC_CLK_TCK")


def _db_counts() -> tuple[int, int]:
    """(transcript rows, committed transactions) of the bench database so far (the commits include admission's)."""
    from django.db import connection

    from calls.models import CallTurn

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
        commits = cursor.fetchone()[0]
    return CallTurn.objects.count(), commits


def _descendants(pid: int) -> list[int]:
    try:
        children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
    return children + [d for c in children for d in _descendants(c)]


def _children_cpu(pid: int) -> float:
    total = 0.0
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        try:
            total += _cpu_seconds(int(child))
        except OSError:
            pass
    return total


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


PROFILE_GROUPS = (  # self time by where the code lives (cProfile, the server's event-loop thread)
    ("transcripts (writer, services)", ("calls/engine/persistence", "calls/services/transcripts")),
    ("Django ORM / database client", ("django/db", "psycopg")),
    ("asgiref / Channels (database_sync_to_async)", ("asgiref/", "channels/db")),
    ("VAD (webrtcvad + calls/providers/speech/vad)", ("webrtcvad", "speech/vad")),
    ("soxr resampling", ("soxr",)),
    ("μ-law / audio helpers (calls/engine/audio)", ("calls/engine/audio",)),
    ("the pipeline (cascaded.py)", ("calls/providers/cascaded",)),
    ("turn model client (speech/turn)", ("speech/turn", "concurrent/futures", "multiprocessing")),
    ("engine (calls/engine)", ("calls/engine/",)),
    ("Channels consumer (calls/consumers, channels/)", ("calls/consumers", "channels/")),
    ("uvicorn + websockets protocol", ("uvicorn/", "websockets/")),
    ("json", ("json/", "_json")),
    ("base64", ("base64", "binascii")),
    ("asyncio event loop", ("asyncio/", "uvloop", "selectors")),
)


def profile_summary(path: str, top: int = 25) -> None:
    import pstats

    stats = pstats.Stats(path)
    total = sum(row[2] for row in stats.stats.values())  # tottime
    groups: dict[str, float] = defaultdict(float)
    for (filename, _line, func), row in stats.stats.items():
        where = f"{filename}:{func}"
        for name, needles in PROFILE_GROUPS:
            if any(n in where for n in needles):
                groups[name] += row[2]
                break
        else:
            groups["other (" + ("builtins" if filename == "~" else "Python") + ")"] += row[2]
    print(f"\nprofile of the server's event-loop thread (cProfile self time, {total:.1f} s):")
    for name, t in sorted(groups.items(), key=lambda kv: -kv[1]):
        print(f"  {100 * t / total:5.1f}%  {name}")
    print()
    stats.sort_stats("tottime").print_stats(top)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="50,100,200")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--agents", default="echo,cascaded,cascaded+turn")
    parser.add_argument("--rounds", type=int, default=3, help="each level and agent this many times (medians)")
    parser.add_argument("--clients", type=int, default=2, help="client processes the calls are spread over")
    parser.add_argument("--loop", default="auto", help="uvicorn's event loop: auto, asyncio or uvloop")
    parser.add_argument("--ws", default="config.websocket:WebSocketProtocol",
                        help="uvicorn's websocket protocol (ours, or one of uvicorn's: websockets-sansio, wsproto)")
    parser.add_argument("--nice", type=int, default=0, help="CPU priority of the server and the clients (e.g. -10 "
                        "on a shared machine whose other jobs would otherwise starve them; needs root)")
    parser.add_argument("--profile", default="", help="profile the server's event loop (cProfile) while the frames "
                        "flow and write the last level's stats here (the latencies are then the profiler's)")
    args = parser.parse_args(argv)

    from bench._harness import bench_env, free_port
    from bench.media_streams import _sessions, _setup_django

    env = bench_env(LOG_LEVEL="WARNING", BENCH_ECHO="1")
    _setup_django(env)
    seeds = seed_agents()
    frames = caller_frames()
    port = free_port()
    # The served app: the runtime's own, with the bench stages registered (bench/_served_app.py).
    import subprocess
    if args.profile:
        env["BENCH_PROFILE"] = os.path.abspath(args.profile)
    import tempfile

    stats_path = env["BENCH_STATS"] = os.path.join(tempfile.mkdtemp(), "writer.json")
    cmd = [sys.executable, "-m", "uvicorn", "bench._served_app:application", "--host", "127.0.0.1",
           "--port", str(port), "--log-level", "warning", "--no-access-log", "--lifespan", "off",
           "--ws-ping-interval", "0", "--loop", args.loop, "--ws", args.ws]
    # The server's log to a file: a pipe nobody reads fills up (64 KB) and then blocks the server's loop on a write.
    log_path = os.path.join(os.path.dirname(stats_path), "server.log")
    log_file = open(log_path, "wb")
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=log_file)
    import socket
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(Path(log_path).read_text()[-2000:])
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.2)
    if args.nice:
        os.setpriority(os.PRIO_PROCESS, proc.pid, args.nice)  # its threads and the turn worker inherit it
        os.setpriority(os.PRIO_PROCESS, 0, args.nice)  # the client processes are forked from here
    ws_url = f"ws://127.0.0.1:{port}/v1/stream/media"
    agents = [a for a in args.agents.split(",") if a]
    levels = [int(x) for x in args.levels.split(",") if x.strip()]
    results: dict[tuple[str, int], list[dict]] = defaultdict(list)
    knees: dict[str, list[int]] = defaultdict(list)
    step = random.randrange(100, 9000)
    run = random.randrange(10 ** 24)  # call SIDs unique across runs on the same database
    print(f"one uvicorn process (loop {args.loop}, websockets {args.ws}), {os.cpu_count()} shared cores, "
          f"{args.clients} client processes, "
          f"{args.seconds:.0f} s per level, {args.rounds} rounds", flush=True)
    try:
        for rnd in range(1, args.rounds + 1):
            knee = {name: 0 for name in agents}
            for level in levels:
                for name in agents:
                    step += 1
                    calls = _sessions(seeds[name], level, step, run)
                    worker0 = _children_cpu(proc.pid)
                    db0 = _db_counts()
                    r = measure(ws_url, calls, args.seconds, frames, args.clients, proc.pid,
                                profile=bool(args.profile))
                    r["worker_cpu_ms_per_call_s"] = 1000 * (_children_cpu(proc.pid) - worker0) / args.seconds / level
                    time.sleep(1.0)  # PostgreSQL's statistics lag by up to a second
                    db1 = _db_counts()
                    r["rows"], r["commits"] = db1[0] - db0[0], db1[1] - db0[1]
                    r["load"] = os.getloadavg()[0]
                    r["ok"] = r["dropped"] == 0 and r["p99_ms"] < P99_LIMIT_MS
                    base = results[("echo", level)][-1] if name != "echo" and results[("echo", level)] else None
                    r["p99_ratio"] = r["p99_ms"] / base["p99_ms"] if base and len(results[("echo", level)]) == rnd \
                        else (1.0 if name == "echo" else float("nan"))
                    results[(name, level)].append(r)
                    if r["ok"]:
                        knee[name] = max(knee[name], level)
                    print(f"round {rnd} {name:14} N={level:4d} dropped={r['dropped']:5d} "
                          f"p50={r['p50_ms']:6.2f} p99={r['p99_ms']:7.2f} ms (x{r['p99_ratio']:.2f} echo) "
                          f"max={r['max_ms']:7.1f}  server CPU {r['server_cpu_ms_per_call_s']:5.2f} ms/call-s"
                          f" ({r['server_cpu_ms_per_handled_s']:5.2f} per handled s)"
                          f" (+turn worker {r['worker_cpu_ms_per_call_s']:4.2f})  client CPU "
                          f"{r['client_cpu_pct']:5.1f}%  admit {r['admit_s']:4.1f} s  transcript rows {r['rows']} "
                          f"in {r['commits']} commits  load {r['load']:.1f}  "
                          f"{'PASS' if r['ok'] else 'FAIL'}", flush=True)
            for name in agents:
                knees[name].append(knee[name])
    finally:
        if not args.profile and proc.poll() is None:
            os.kill(proc.pid, signal.SIGUSR2)  # the transcript writer's figures (bench/_served_app.py)
            time.sleep(0.5)
        children = _descendants(proc.pid)  # the turn model's worker (and its resource tracker)
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    from calls.models import CallTurn

    med = statistics.median
    print(f"\nmedians of {args.rounds} rounds (p99 / echo: the ratio in each round, then its median):")
    print("| agent | N | p99 ms | p99 / echo | passed | dropped | server CPU ms per handled call-s | "
          "CPU / echo | calls per core (CPU) | load |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for level in levels:
        for name in agents:
            rows = results[(name, level)]
            if not rows:
                continue
            ratios = [r["p99_ratio"] for r in rows if r["p99_ratio"] == r["p99_ratio"]]
            cpu = med(r["server_cpu_ms_per_handled_s"] for r in rows)
            echo_rows = results[("echo", level)]
            echo_cpu = med(r["server_cpu_ms_per_handled_s"] for r in echo_rows) if echo_rows else float("nan")
            print(f"| {name} | {level} | {med(r['p99_ms'] for r in rows):.1f} | "
                  f"{med(ratios) if ratios else float('nan'):.2f} | {sum(r['ok'] for r in rows)}/{len(rows)} | "
                  f"{med(r['dropped'] for r in rows):.0f} | {cpu:.2f} | {cpu / echo_cpu:.2f} | {1000 / cpu:.0f} | "
                  f"{min(r['load'] for r in rows):.1f}–{max(r['load'] for r in rows):.1f} |")
    print(f"\nknee (largest N with p99 < {P99_LIMIT_MS:.0f} ms and no drops) per round, median: "
          + "; ".join(f"{n}: {knees[n]} → {med(knees[n]) if knees[n] else 0:g}" for n in agents))
    print(f"transcript rows written: {CallTurn.objects.count()}")
    try:
        with open(stats_path) as f:
            w = json.load(f)
        print(f"the server's transcript writer: {w['stored']} lines in {w['flushes']} commits "
              f"({w['stored'] / max(1, w['flushes']):.1f} lines per commit), {w['dropped']} dropped")
        t = w.get("turn_model") or {}
        asked = t.get("answered", 0) + t.get("skipped", 0)
        print(f"the turn model (all levels): {t.get('answered', 0)} of {asked} questions answered, "
              f"{t.get('skipped', 0)} left to the silence rule (its worker was busy: it takes only spare CPU)")
    except (OSError, ValueError, KeyError):
        print("the server's transcript writer: no figures (an older server, or it did not exit cleanly)")
    log = Path(log_path).read_text(errors="replace").splitlines()
    print(f"server log: {len(log)} lines ({log_path}); writer lines: "
          + str([line[:200] for line in log if "transcript writer" in line][:5]))
    if args.profile:
        profile_summary(args.profile)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
