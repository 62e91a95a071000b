"""Test suites: run an agent's scenarios against a version + environment with the text engine.

Each scenario is a Studio test chat played by a script: the same `call_open("text", …)` engine engine and providers as the test
chat (handovers shown, nothing dialled; actions may run against the environment), the caller's turns sent one by
one once the agent's reply is complete. The conversation and the expectations' outcome are stored per scenario
(`agents.TestResult`); the run's progress is saved after each scenario so the page can show it.
"""
from __future__ import annotations

import asyncio
import logging
import time

from django.db import transaction
from django.utils import timezone

from agents.models import AgentVersion, Environment, TestResult, TestRun, TestScenario
from calls.engine.context import context_for_test_chat
from calls.engine.engine import call_open
from calls.providers import ProviderConfigError

logger = logging.getLogger(__name__)

REPLY_TIMEOUT = 20.0  # seconds an agent may take to finish one reply
MAX_TURN_CHARS = 2000


class TestRunRefused(Exception):
    __test__ = False

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@transaction.atomic
def test_run_start(*, agent, version: AgentVersion, environment: Environment, user=None) -> TestRun:
    """Queue a run of every scenario of `agent` (version and environment of the agent's workspace)."""
    if version.agent_id != agent.pk or environment.workspace_id != agent.workspace_id:
        raise TestRunRefused("Choose a version of this agent and an environment of this workspace.")
    total = TestScenario.objects.filter(agent=agent).count()
    if not total:
        raise TestRunRefused("Add a scenario first: what the caller says and what should happen.")
    run = TestRun.objects.create(agent=agent, version=version, version_label=version.label, environment=environment,
                                 total=total, created_by=user if user is not None and user.is_authenticated else None)
    from calls import tasks

    transaction.on_commit(lambda: tasks.test_run_execute.delay(run.pk))
    return run


def test_run_execute(*, run_id: int) -> TestRun | None:
    """Run the scenarios of a queued run (a second delivery of the task finds it started and does nothing)."""
    with transaction.atomic():
        run = TestRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.status != TestRun.Status.QUEUED:
            return run
        run.status = TestRun.Status.RUNNING
        run.save(update_fields=["status"])
    version = (AgentVersion.objects.select_related("agent").prefetch_related("actions")
               .filter(pk=run.version_id).first())
    environment = Environment.objects.filter(pk=run.environment_id).first()
    if version is None or environment is None:
        return _run_failed(run, "The version or environment was deleted before the run started.")
    ctx = context_for_test_chat(version=version, environment=environment)
    for scenario in TestScenario.objects.filter(agent_id=run.agent_id).order_by("name"):
        started = time.monotonic()
        try:
            conversation = asyncio.run(converse(ctx, scenario.caller_turns))
        except ProviderConfigError as exc:
            return _run_failed(run, str(exc)[:255])
        failures = expectations_check(scenario.expectations, conversation)
        with transaction.atomic():
            TestResult.objects.update_or_create(
                run=run, scenario=scenario,
                defaults={"scenario_name": scenario.name, "passed": not failures, "failures": failures,
                          "conversation": conversation, "duration_ms": int((time.monotonic() - started) * 1000)})
            TestRun.objects.filter(pk=run.pk).update(completed=run.results.count(),
                                                     passed=run.results.filter(passed=True).count())
    TestRun.objects.filter(pk=run.pk).update(status=TestRun.Status.DONE, finished_at=timezone.now())
    run.refresh_from_db()
    return run


def _run_failed(run: TestRun, message: str) -> TestRun:
    TestRun.objects.filter(pk=run.pk).update(status=TestRun.Status.FAILED, error=message, finished_at=timezone.now())
    run.refresh_from_db()
    return run


async def converse(ctx, caller_turns: list) -> list[dict]:
    """Play the caller's turns against a text engine; the conversation as the test chat would show it."""
    conversation: list[dict] = []
    reply: list[str] = []
    done = asyncio.Event()  # the agent's current reply is complete (or the call is over)
    over = asyncio.Event()

    async def receive(message: dict) -> None:
        kind = message.get("type")
        if kind == "token":
            reply.append(message.get("token") or "")
            if message.get("last"):
                _reply_done()
        elif kind == "action":
            conversation.append({"role": "action", "name": message.get("name", ""),
                                 "arguments": message.get("arguments") or message.get("parameters") or {},
                                 "status": message.get("status", "")})
        elif kind == "handover":
            _reply_done()
            conversation.append({"role": "event", "kind": "handover", "action": message.get("action", ""),
                                 "text": f"Handover: {message.get('action', '')} → {message.get('destination', '')}"})
            over.set()
        elif kind == "hangup":
            _reply_done()
            conversation.append({"role": "event", "kind": "hangup", "text": "The agent ended the call."})
            over.set()
        elif kind == "error":
            _reply_done()
            conversation.append({"role": "event", "kind": "error", "text": message.get("message", "")})
            over.set()

    def _reply_done() -> None:
        text = "".join(reply).strip()
        if text:
            conversation.append({"role": "agent", "text": text})
        reply.clear()
        done.set()

    async def wait_reply() -> None:
        while True:
            try:
                await asyncio.wait_for(done.wait(), REPLY_TIMEOUT)
            except asyncio.TimeoutError:
                _reply_done()
                conversation.append({"role": "event", "kind": "timeout",
                                     "text": f"The agent did not finish a reply within {REPLY_TIMEOUT:.0f} s."})
                over.set()
            done.clear()
            # An API action is running (the reply was its wait message, or a tool call): its answer comes next.
            if over.is_set() or not call.actions_pending:
                return

    call = call_open("text", ctx, receive)
    task = call.start(on_finish=_noop)
    try:
        await wait_reply()  # the greeting
        for turn in caller_turns:
            if over.is_set() or task.done():
                break
            text = str(turn)[:MAX_TURN_CHARS]
            conversation.append({"role": "caller", "text": text})
            await call.handle({"type": "message", "text": text})
            await wait_reply()
    finally:
        await call.close("test_done")
        try:
            await asyncio.wait_for(task, 5)
        except (asyncio.TimeoutError, asyncio.CancelledError, Exception):  # noqa: BLE001 - outcome already recorded
            task.cancel()
    return conversation


async def _noop() -> None:
    return None


def expectations_check(expectations: list, conversation: list[dict]) -> list[str]:
    """The expectations that did not hold, each in plain words (empty: the scenario passed)."""
    replies = [t["text"] for t in conversation if t["role"] == "agent"]
    said = " ".join(replies).lower()
    called = [t for t in conversation if t["role"] == "action"]
    handed = [t for t in conversation if t.get("kind") == "handover"]
    ended = any(t.get("kind") in ("handover", "hangup") for t in conversation)
    failures = []
    for expectation in expectations or []:
        kind, value = expectation.get("kind"), expectation.get("value")
        if kind == TestScenario.Expect.ACTION_CALLED:
            arguments = expectation.get("arguments") or {}
            matches = [c for c in called if c["name"] == value and all(
                str(c["arguments"].get(k)) == str(v) for k, v in arguments.items())]
            if not matches and not any(h["action"] == value for h in handed if not arguments):
                shown = f" with {arguments}" if arguments else ""
                failures.append(f"The agent did not call {value}{shown}.")
        elif kind == TestScenario.Expect.REPLY_CONTAINS:
            if str(value).lower() not in said:
                failures.append(f"No reply contains “{value}”.")
        elif kind == TestScenario.Expect.REPLY_NOT_CONTAINS:
            if str(value).lower() in said:
                failures.append(f"A reply contains “{value}”.")
        elif kind == TestScenario.Expect.ENDED:
            if not ended:
                failures.append("The call did not end (no handover or hang-up).")
        elif kind == TestScenario.Expect.MAX_TURNS:
            if len(replies) > int(value):
                failures.append(f"The agent took {len(replies)} turns (at most {int(value)} expected).")
    problem = next((t["text"] for t in conversation if t.get("kind") in ("error", "timeout")), "")
    if problem:
        failures.append(problem)
    return failures
