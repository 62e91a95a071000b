"""Post-call analysis: computed when a call ends (Celery task, eager in tests) against local fake model servers."""
import logging
from datetime import timedelta

import pytest
from django.test import TestCase
from django.utils import timezone

from agents import services as agent_services
from agents.models import AgentVersion, Environment
from calls import tasks
from calls.models import CallAnalysis, CallSession, CallTurn
from calls.services import analysis as analysis_service
from calls.services.handovers import call_session_ended
from tests.agents.factories import (
    AgentFactory,
    EnvironmentFactory,
    EnvironmentSecretFactory,
    EnvironmentVariableFactory,
    draft_of,
)
from tests.fakes.analysis_models import FakeAnalysisModel

pytestmark = pytest.mark.django_db

FIELDS = [
    {"name": "order_number", "type": "text", "description": "The order the caller asks about",
     "keywords": ["order"]},
    {"name": "items", "type": "number", "description": "How many items", "keywords": ["items"]},
    {"name": "resolved", "type": "boolean", "description": "Was the question answered", "keywords": ["thanks"]},
    {"name": "sentiment", "type": "enum", "values": ["happy", "angry", "neutral"], "description": "Mood"},
]
TURNS = [("agent", "Hello, this is Ava."), ("caller", "Hi, my order is AB-1234, it had 3 items."),
         ("agent", "It ships tomorrow."), ("caller", "Great, thanks! I am happy now.")]

_n = iter(range(10 ** 6))


@pytest.fixture(autouse=True)
def eager_retries(monkeypatch):
    """Eager tasks retry in-process (countdowns are not waited for) only when their errors do not propagate."""
    from config.celery import app

    monkeypatch.setitem(app.conf, "task_eager_propagates", False)


@pytest.fixture
def fake():
    server = FakeAnalysisModel().start()
    yield server
    server.stop()


def _agent(workspace, *, provider="openai_chat", transport="conversation_relay", fields=FIELDS, summary=True,
           success="The caller's question was answered."):
    agent = AgentFactory(workspace=workspace, name="Ava")
    draft = draft_of(agent)
    agent_services.agent_draft_update(draft=draft, provider=provider, transport=transport, analysis_summary=summary,
                                      analysis_fields=fields, analysis_success=success)
    return agent


def _env(workspace, fake=None, **variables):
    env = EnvironmentFactory(workspace=workspace, kind=Environment.Kind.PRODUCTION)
    if fake is not None:
        EnvironmentSecretFactory(environment=env, name="OPENAI_API_KEY", value=fake.api_key)
        EnvironmentVariableFactory(environment=env, name="OPENAI_BASE_URL", value=fake.openai_base_url)
    for name, value in variables.items():
        EnvironmentVariableFactory(environment=env, name=name, value=value)
    return env


def _call(workspace, version, env, turns=TURNS) -> CallSession:
    started = timezone.now() - timedelta(minutes=2)
    call = CallSession.objects.create(call_sid=f"CA{next(_n):032d}", workspace=workspace, agent_version=version,
                                      environment=env, from_number="+15125550199", to_number="+15125550100",
                                      status="in-progress", stream_token_used_at=started)
    CallTurn.objects.bulk_create([CallTurn(call_session=call, seq=i + 1, role=role, text=text, started_at=started)
                                  for i, (role, text) in enumerate(turns)])
    return call


def on_commit():
    """Run the on-commit callbacks (the test's transaction never commits); the eager task runs in them."""
    return TestCase.captureOnCommitCallbacks(execute=True)


def _end(call) -> CallAnalysis | None:
    with on_commit():
        call_session_ended(call_session_id=call.pk)  # queues the task on commit (eager: runs now)
    return CallAnalysis.objects.filter(call_session=call).first()


def test_openai_analysis_asks_for_the_fields_json_schema_and_stores_the_answer(workspace, fake):
    agent = _agent(workspace)
    call = _call(workspace, draft_of(agent), _env(workspace, fake, OPENAI_ANALYSIS_MODEL="gpt-test-mini"))
    analysis = _end(call)
    assert analysis.status == CallAnalysis.Status.DONE, analysis.reason
    assert analysis.fields == {"order_number": "AB-1234", "items": 42, "resolved": True, "sentiment": "happy"}
    assert analysis.summary.startswith("The caller asked about order AB-1234") and analysis.success is True
    assert analysis.model_used == "openai:gpt-test-mini" and analysis.definition_label == "Draft"
    assert analysis.definition["fields"][0]["name"] == "order_number"
    (path, headers, body), = fake.requests
    assert path == "/v1/chat/completions" and headers["authorization"] == f"Bearer {fake.api_key}"
    assert body["model"] == "gpt-test-mini"
    rf = body["response_format"]
    assert rf["type"] == "json_schema" and rf["json_schema"]["strict"] is True
    schema = rf["json_schema"]["schema"]
    assert schema["required"] == ["summary", "fields", "success"] and schema["additionalProperties"] is False
    props = schema["properties"]["fields"]["properties"]
    assert props["sentiment"]["enum"] == ["happy", "angry", "neutral", None]
    assert props["items"]["type"] == ["number", "null"] and props["resolved"]["type"] == ["boolean", "null"]
    assert "Caller: Hi, my order is AB-1234" in body["messages"][1]["content"]
    assert "Success criterion: The caller's question was answered." in body["messages"][0]["content"]


def test_duplicate_task_runs_write_one_analysis(workspace, fake):
    agent = _agent(workspace)
    call = _call(workspace, draft_of(agent), _env(workspace, fake))
    first = _end(call)
    tasks.call_analysis_compute.delay(call.pk)  # delivered again
    tasks.call_analysis_compute.apply(args=[call.pk])
    assert CallAnalysis.objects.filter(call_session=call).count() == 1
    assert len(fake.requests) == 1  # the repeats found it done
    assert CallAnalysis.objects.get(call_session=call).pk == first.pk
    with on_commit() as callbacks:
        call_session_ended(call_session_id=call.pk)  # a second end does not queue it again
    assert callbacks == []
    assert len(fake.requests) == 1


def test_the_unique_constraint_refuses_a_second_analysis_row(workspace):
    from django.db import IntegrityError, transaction

    agent = _agent(workspace, provider="scripted", transport="media_streams")
    call = _call(workspace, draft_of(agent), _env(workspace))
    CallAnalysis.objects.create(call_session=call)
    with pytest.raises(IntegrityError), transaction.atomic():
        CallAnalysis.objects.create(call_session=call)


def test_a_server_error_is_retried_and_then_succeeds(workspace, fake):
    fake.script = [500, None]
    agent = _agent(workspace)
    analysis = _end(_call(workspace, draft_of(agent), _env(workspace, fake)))
    assert analysis.status == CallAnalysis.Status.DONE and analysis.reason == ""
    assert len(fake.requests) == 2 and analysis.attempts == 2


def test_a_timeout_is_retried(workspace, fake, monkeypatch):
    monkeypatch.setattr(analysis_service, "TIMEOUT_SECONDS", 0.3)
    fake.script = ["hang", None]
    agent = _agent(workspace)
    analysis = _end(_call(workspace, draft_of(agent), _env(workspace, fake)))
    assert analysis.status == CallAnalysis.Status.DONE and len(fake.requests) == 2 and analysis.attempts == 2


def test_rate_limits_are_retried_with_backoff_then_recorded_as_failed(workspace, fake, monkeypatch):
    fake.script = [429]
    countdowns = []
    original = tasks.call_analysis_compute.retry

    def spy(*args, **kwargs):
        countdowns.append(kwargs.get("countdown"))
        return original(*args, **kwargs)

    monkeypatch.setattr(tasks.call_analysis_compute, "retry", spy)
    agent = _agent(workspace)
    analysis = _end(_call(workspace, draft_of(agent), _env(workspace, fake)))
    assert analysis.status == CallAnalysis.Status.FAILED
    assert "HTTP 429" in analysis.reason
    assert len(fake.requests) == 6  # the first try and 5 retries
    assert countdowns == [30, 60, 120, 240, 480]


def test_invalid_json_is_asked_for_again_once(workspace, fake):
    fake.script = ["{not json", None]
    agent = _agent(workspace)
    analysis = _end(_call(workspace, draft_of(agent), _env(workspace, fake)))
    assert analysis.status == CallAnalysis.Status.DONE and len(fake.requests) == 2


def test_an_answer_that_keeps_missing_the_schema_is_recorded_as_failed(workspace, fake):
    fake.script = [{"summary": "x", "fields": {"order_number": 5}, "success": True}]
    agent = _agent(workspace)
    analysis = _end(_call(workspace, draft_of(agent), _env(workspace, fake)))
    assert analysis.status == CallAnalysis.Status.FAILED and len(fake.requests) == 2
    assert "did not match" in analysis.reason


def test_a_refused_request_is_permanent_and_leaks_no_secret(workspace, fake, caplog, member_client):
    caplog.set_level(logging.DEBUG)
    agent = _agent(workspace)
    env = _env(workspace)
    EnvironmentSecretFactory(environment=env, name="OPENAI_API_KEY", value="sk-wrong-key-5551234abcd")
    EnvironmentVariableFactory(environment=env, name="OPENAI_BASE_URL", value=fake.openai_base_url)
    call = _call(workspace, draft_of(agent), env)
    analysis = _end(call)
    assert analysis.status == CallAnalysis.Status.FAILED and len(fake.requests) == 1  # not retried
    assert "HTTP 401" in analysis.reason
    page = member_client.get(f"/studio/calls/{call.pk}/").content.decode()
    assert "HTTP 401" in page
    for text in (caplog.text, analysis.reason, page, str(analysis.definition),
                 member_client.get(f"/studio/calls/{call.pk}/export.json").content.decode(),
                 member_client.get("/studio/calls/export.csv").content.decode()):
        assert "sk-wrong-key-5551234abcd" not in text


def test_a_missing_key_is_recorded_with_the_reason(workspace):
    agent = _agent(workspace)
    analysis = _end(_call(workspace, draft_of(agent), _env(workspace)))
    assert analysis.status == CallAnalysis.Status.FAILED
    assert analysis.reason == "The environment has no OPENAI_API_KEY secret."


def test_a_refused_base_url_is_permanent(workspace, fake, settings):
    settings.OUTBOUND_ALLOW_PRIVATE_TARGETS = False
    agent = _agent(workspace)
    analysis = _end(_call(workspace, draft_of(agent), _env(workspace, fake)))
    assert analysis.status == CallAnalysis.Status.FAILED and "refused" in analysis.reason
    assert fake.requests == []


def test_anthropic_analysis_uses_a_forced_tool_with_the_schema(workspace, fake):
    agent = _agent(workspace)
    env = _env(workspace, ANALYSIS_PROVIDER="anthropic", ANTHROPIC_BASE_URL=fake.anthropic_base_url,
               ANTHROPIC_ANALYSIS_MODEL="claude-test")
    EnvironmentSecretFactory(environment=env, name="ANTHROPIC_API_KEY", value=fake.api_key)
    analysis = _end(_call(workspace, draft_of(agent), env))
    assert analysis.status == CallAnalysis.Status.DONE, analysis.reason
    assert analysis.model_used == "anthropic:claude-test" and analysis.fields["sentiment"] == "happy"
    (path, headers, body), = fake.requests
    assert path == "/v1/messages" and fake.api_key in (headers.get("x-api-key"), headers.get("authorization", "")[7:])
    assert "anthropic-version" in headers
    assert body["tool_choice"] == {"type": "tool", "name": analysis_service.TOOL_NAME}
    assert body["tools"][0]["input_schema"]["properties"]["fields"]["required"] == [
        "order_number", "items", "resolved", "sentiment"]


def test_a_version_whose_chat_vendor_is_anthropic_is_analysed_by_anthropic(workspace, fake):
    from agents.models import AgentVersion as V

    agent = _agent(workspace)
    env = _env(workspace, fake, ANTHROPIC_BASE_URL=fake.anthropic_base_url, ANTHROPIC_CHAT_MODEL="claude-chat")
    EnvironmentSecretFactory(environment=env, name="ANTHROPIC_API_KEY", value=fake.api_key)
    V.objects.filter(pk=draft_of(agent).pk).update(provider="openai_chat", chat_vendor="anthropic")
    analysis = _end(_call(workspace, draft_of(agent), env))
    assert analysis.model_used == "anthropic:claude-chat" and [r[0] for r in fake.requests] == ["/v1/messages"]


def test_anthropic_server_errors_are_retried(workspace, fake):
    fake.script = [529, None]
    agent = _agent(workspace)
    env = _env(workspace, ANALYSIS_PROVIDER="anthropic", ANTHROPIC_BASE_URL=fake.anthropic_base_url)
    EnvironmentSecretFactory(environment=env, name="ANTHROPIC_API_KEY", value=fake.api_key)
    analysis = _end(_call(workspace, draft_of(agent), env))
    assert analysis.status == CallAnalysis.Status.DONE and len(fake.requests) == 2


def test_scripted_versions_get_a_rule_based_analysis(workspace, fake):
    agent = _agent(workspace, provider="scripted", transport="media_streams",
                   success='The caller says "thanks".')
    analysis = _end(_call(workspace, draft_of(agent), _env(workspace, fake)))
    assert analysis.status == CallAnalysis.Status.DONE and analysis.model_used == "rules"
    assert analysis.fields == {"order_number": "AB-1234", "items": 3, "resolved": True, "sentiment": "happy"}
    assert analysis.success is True
    assert "Hi, my order is AB-1234" in analysis.summary and "It ships tomorrow." in analysis.summary
    assert fake.requests == []  # offline

    other = _end(_call(workspace, draft_of(agent), _env(workspace), turns=[("caller", "Where is my parcel?")]))
    assert other.fields == {"order_number": None, "items": None, "resolved": False, "sentiment": None}
    assert other.success is False


def test_no_analysis_when_the_version_asks_for_none(workspace, fake):
    agent = _agent(workspace, fields=[], summary=False, success="")
    call = _call(workspace, draft_of(agent), _env(workspace, fake))
    assert _end(call) is None and fake.requests == []


def test_analyse_again_uses_the_agents_newest_definition(workspace):
    agent = _agent(workspace, provider="scripted", transport="media_streams", fields=FIELDS[:1], summary=False,
                   success="")
    v1 = agent_services.agent_publish(agent=agent)
    call = _call(workspace, v1, _env(workspace))
    first = _end(call)
    assert list(first.fields) == ["order_number"] and first.definition_label == "v1"
    agent_services.agent_draft_update(draft=draft_of(agent), analysis_fields=FIELDS)
    v2 = agent_services.agent_publish(agent=agent)
    assert AgentVersion.objects.get(pk=v2.pk).analysis_fields == FIELDS  # copied on publish
    tasks.call_analysis_compute.apply(args=[call.pk])  # not forced: stays as it was
    assert list(CallAnalysis.objects.get(pk=first.pk).fields) == ["order_number"]
    with on_commit():
        analysis_service.call_analysis_request(call=call)
    again = CallAnalysis.objects.get(call_session=call)
    assert again.pk == first.pk and again.definition_label == "v2" and again.fields["sentiment"] == "happy"
    assert again.attempts == 2


def test_restore_copies_the_analysis_definition(workspace):
    agent = _agent(workspace, provider="scripted", transport="media_streams")
    v1 = agent_services.agent_publish(agent=agent)
    agent_services.agent_draft_update(draft=draft_of(agent), analysis_fields=[], analysis_summary=False)
    agent_services.agent_version_restore(version=v1)
    draft = draft_of(agent)
    assert draft.analysis_fields == FIELDS and draft.analysis_summary is True


def test_a_summary_only_definition_asks_for_no_fields(workspace, fake):
    agent = _agent(workspace, fields=[], success="")
    analysis = _end(_call(workspace, draft_of(agent), _env(workspace, fake)))
    assert analysis.status == CallAnalysis.Status.DONE and analysis.fields == {} and analysis.success is None
    schema = fake.requests[0][2]["response_format"]["json_schema"]["schema"]
    assert schema["required"] == ["summary"]


def test_analyse_again_when_the_agent_no_longer_asks_for_anything(workspace, fake):
    agent = _agent(workspace)
    call = _call(workspace, draft_of(agent), _env(workspace, fake))
    _end(call)
    agent_services.agent_draft_update(draft=draft_of(agent), analysis_fields=[], analysis_summary=False,
                                      analysis_success="")
    with on_commit():
        analysis_service.call_analysis_request(call=call)
    analysis = CallAnalysis.objects.get(call_session=call)
    assert analysis.status == CallAnalysis.Status.DONE and analysis.fields == {} and analysis.summary == ""
    assert len(fake.requests) == 1  # no vendor call for nothing
