"""Warm vs cold transfer: time from the agent's decision to the person's phone ringing, in one run.

    .venv/bin/python -m bench.transfers --rounds 40

In process, on a fresh SQLite file (dev settings, DEBUG off) with the Twilio sandbox on loopback. Each round is
one call session whose agent has just chosen a handover action; the clock starts at the decision (what the
live-call engine does in `hand_over`, from recording the handover on):

- cold (baseline): `handover_record` + `redirect_to_dial` (the caller's call is redirected to `<Dial><Number>`);
  the phone rings when Twilio has that TwiML, i.e. when the call update returned.
- warm: `warm_handover_record` + `warm_transfer_start` (the caller redirected into the conference, then the
  person's leg created with `conference_participant_create`); the clock stops when the sandbox's simulated leg
  reports "ringing" (after Twilio's `initiated` and `ringing` status callbacks to the app's URL).

Figures are p50/p95 in ms and the ratio to the cold transfer measured in the same run (a shared 2-core machine:
compare ratios, not absolute figures). Loopback only, bounded rounds.
"""
from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RING_WAIT = 10.0


def _setup_django(public_base: str) -> None:
    sys.path.insert(0, str(ROOT))
    folder = Path(tempfile.mkdtemp(prefix="callwell-bench-transfers-"))
    os.environ["DATABASE_URL"] = f"sqlite:///{folder / 'bench.sqlite3'}"
    os.environ.setdefault("CELERY_FS_BROKER_DIR", str(folder / "broker"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")
    os.environ.setdefault("DJANGO_DEBUG", "0")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["PUBLIC_BASE_URL"] = public_base
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _seed(sandbox):
    from agents import services as agents
    from agents.models import HandoverAction
    from connectors.models import PhoneConnector
    from telephony.models import TwilioConnection
    from workspaces.services import workspace_create

    sid, token = sandbox.add_account(friendly_name="Bench transfers")
    workspace = workspace_create(name="Bench " + secrets.token_hex(3))
    TwilioConnection.objects.create(workspace=workspace, account_sid=sid, auth_token=token, status="connected",
                                    mode=TwilioConnection.Mode.BYOK)
    agent = agents.agent_create(workspace=workspace, name="Bench agent")
    draft = agent.versions.get(state="draft")
    agents.handover_action_create(draft=draft, name="cold_sales", destination="+31201234567")
    agents.handover_action_create(draft=draft, name="warm_sales", destination="+31201234567",
                                  kind=HandoverAction.Kind.WARM)
    environment = {e.kind: e for e in agents.environments_ensure(workspace=workspace)}["production"]
    connector = PhoneConnector.objects.create(workspace=workspace, agent=agent, environment=environment,
                                              version_mode=PhoneConnector.VersionMode.DRAFT, enabled=True)
    return sid, workspace, draft, environment, connector


def _session(sandbox, sid, workspace, draft, environment, connector):
    from calls.engine.context import context_for_call_session
    from calls.models import CallSession

    call_sid = "CA" + secrets.token_hex(16)
    sandbox.add_call(sid, call_sid)
    session = CallSession.objects.create(call_sid=call_sid, workspace=workspace, connector=connector,
                                         agent_version=draft, environment=environment, from_number="+15125550199",
                                         to_number="+15125550100", status=CallSession.Status.IN_PROGRESS)
    session = CallSession.objects.select_related("agent_version__agent", "connector", "environment").get(pk=session.pk)
    return context_for_call_session(session)


def _ringing(sandbox, handover_pk: int) -> threading.Event:
    """Set when the sandbox's leg of this warm handover has logged "ringing"."""
    done = threading.Event()

    def watch():
        deadline = time.monotonic() + RING_WAIT
        while time.monotonic() < deadline:
            for call in list(sandbox.simulated.values()):
                if getattr(call, "conference_sid", "") and any(e["event"] == "ringing" for e in call.events):
                    conf = sandbox.state["conferences"][call.account_sid].get(call.conference_sid)
                    if conf and conf["friendly_name"] == f"callwell-transfer-{handover_pk}":
                        done.set()
                        return
            time.sleep(0.001)

    threading.Thread(target=watch, daemon=True).start()
    return done


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    rounds = max(1, min(args.rounds, 500))

    from devtools.twilio_sandbox import SandboxServer

    sandbox = SandboxServer(callback_timeout=2.0).start()
    sandbox.transfer_talk_seconds = 0
    _setup_django(public_base="http://127.0.0.1:9")  # callbacks: refused at once (nothing listens on port 9)
    from django.conf import settings

    settings.TWILIO_API_BASE_URL = sandbox.base_url
    from calls.engine.context import HandoverActionSpec
    from calls.models import CallHandover
    from calls.services import handovers, transfers
    from telephony import twilio_gateway

    twilio_gateway.reset_http_client()
    seeded = _seed(sandbox)
    cold_action = HandoverActionSpec("cold_sales", "+31201234567")
    warm_action = HandoverActionSpec("warm_sales", "+31201234567", kind="warm")
    cold, warm, missed = [], [], 0
    try:
        for i in range(rounds + 3):  # the first 3 rounds warm up (connections, imports)
            ctx = _session(sandbox, *seeded)
            t = time.perf_counter()
            record = handovers.handover_record(call_session_id=ctx.call_session_id, action=cold_action,
                                               transport=CallHandover.Transport.MEDIA_STREAMS)
            handovers.redirect_to_dial(ctx=ctx, action=cold_action, handover_id=record.pk)
            cold_ms = (time.perf_counter() - t) * 1000

            ctx = _session(sandbox, *seeded)
            t = time.perf_counter()
            record = transfers.warm_handover_record(call_session_id=ctx.call_session_id, action=warm_action,
                                                    transport=CallHandover.Transport.MEDIA_STREAMS)
            ringing = _ringing(sandbox, record.pk)
            transfers.warm_transfer_start(ctx=ctx, handover_id=record.pk)
            if not ringing.wait(RING_WAIT):
                missed += 1
                continue
            warm_ms = (time.perf_counter() - t) * 1000
            if i >= 3:
                cold.append(cold_ms)
                warm.append(warm_ms)
    finally:
        sandbox.stop()

    base50, base95 = statistics.median(cold), _pct(cold, 0.95)
    print(f"{'decision → phone ringing':44} {'rounds':>6} {'p50 ms':>8} {'p95 ms':>8} {'p50/base':>9} {'p95/base':>9}")
    for label, values in (("cold: <Dial><Number> redirect (base)", cold),
                          ("warm: conference hold + participant ringing", warm)):
        p50, p95 = statistics.median(values), _pct(values, 0.95)
        print(f"{label:44} {len(values):>6} {p50:>8.1f} {p95:>8.1f} {p50 / base50:>9.2f} {p95 / base95:>9.2f}")
    if missed:
        print(f"warm rounds whose leg never rang within {RING_WAIT:.0f} s: {missed}")


if __name__ == "__main__":
    main()
