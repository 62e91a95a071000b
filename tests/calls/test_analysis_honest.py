"""Honest analysis: no success without evidence. A call where the caller said nothing (no words, no key) is never
"Yes", whoever decides (rules or a model), and `call.analyzed` never says "success": true for it; the rule-based
analysis of scripted versions names the rule that decided its verdict."""
import pytest

from calls.models import CallAnalysis
from calls.services import analysis as analysis_service
from tests.agents.factories import draft_of
from tests.calls.test_analysis import _agent, _call, _end, _env
from tests.fakes.analysis_models import FakeAnalysisModel

pytestmark = pytest.mark.django_db

THANKS = 'The caller says "thanks".'


@pytest.fixture
def fake():
    server = FakeAnalysisModel().start()
    yield server
    server.stop()


@pytest.fixture
def analyzed(monkeypatch):
    """The `call.analyzed` payloads sent."""
    sent = []
    original = analysis_service.webhook_services.call_event_record

    def record(*, session, type, **data):
        sent.append(data.get("analysis"))
        return original(session=session, type=type, **data)

    monkeypatch.setattr(analysis_service.webhook_services, "call_event_record", record)
    return sent


def _scripted(workspace, success=THANKS):
    return _agent(workspace, provider="scripted", transport="media_streams", fields=[], success=success)


@pytest.mark.parametrize("turns", [
    [],  # nothing happened
    [("agent", "Hello, thanks for calling.")],  # only the greeting, which even holds the phrase
    [("agent", "Hello, thanks for calling."), ("caller", "  "), ("event", "The caller hung up")],
])
def test_a_call_where_the_caller_said_nothing_is_never_a_success_by_rules(workspace, analyzed, turns):
    agent = _scripted(workspace)
    analysis = _end(_call(workspace, draft_of(agent), _env(workspace), turns=turns))
    assert analysis.status == CallAnalysis.Status.DONE and analysis.model_used == "rules"
    assert analysis.success is False
    assert analysis.reason == analysis_service.NO_CALLER_INPUT
    assert analyzed[-1]["success"] is False and analyzed[-1]["success_rule"] == analysis_service.NO_CALLER_INPUT


def test_a_completed_call_without_a_quoted_phrase_is_not_a_success_by_default(workspace, analyzed):
    agent = _scripted(workspace, success="The caller got an answer.")
    analysis = _end(_call(workspace, draft_of(agent), _env(workspace),
                          turns=[("agent", "Hello."), ("caller", "When are you open?"), ("agent", "Nine to five.")]))
    assert analysis.success is None  # "Not told": rules cannot check words without quotes
    assert "quoted phrases only" in analysis.reason
    assert analyzed[-1]["success"] is None


def test_the_greeting_is_no_evidence_but_the_callers_words_are_and_the_rule_is_named(workspace, analyzed,
                                                                                       admin_client):
    agent = _scripted(workspace)
    env = _env(workspace)
    greeting_only = _end(_call(workspace, draft_of(agent), env,
                               turns=[("agent", "Hello, thanks for calling."), ("caller", "Where is my parcel?")]))
    assert greeting_only.success is False
    assert greeting_only.reason == "Rule: none of the criterion's phrases (“thanks”) was said after the caller spoke."

    call = _call(workspace, draft_of(agent), env,
                 turns=[("agent", "Hello."), ("caller", "Where is my parcel?"), ("agent", "It ships today."),
                        ("caller", "Great, thanks!")])
    analysis = _end(call)
    assert analysis.success is True
    assert analysis.reason == "Rule: the criterion's phrase “thanks” was said by the caller (turn 4)."
    assert analyzed[-1]["success"] is True and analyzed[-1]["success_rule"] == analysis.reason
    page = admin_client.get(f"/studio/calls/{call.pk}/").content.decode()
    assert 'data-testid="analysis-success-rule"' in page and "was said by the caller (turn 4)" in page


def test_a_key_press_is_caller_input(workspace):
    agent = _scripted(workspace, success='The agent says "connecting you".')
    analysis = _end(_call(workspace, draft_of(agent), _env(workspace),
                          turns=[("agent", "Press 1 for sales."), ("caller", "(pressed 1)"),
                                 ("agent", "Connecting you to sales.")]))
    assert analysis.success is True and "said by the agent (turn 3)" in analysis.reason


def test_a_model_saying_yes_for_a_silent_call_is_overruled(workspace, fake, analyzed):
    fake.script = [{"summary": "A great call.", "fields": {}, "success": True}]
    agent = _agent(workspace, fields=[])
    analysis = _end(_call(workspace, draft_of(agent), _env(workspace, fake),
                          turns=[("agent", "Hello, this is Ava.")]))
    assert analysis.status == CallAnalysis.Status.DONE and analysis.model_used.startswith("openai:")
    assert analysis.success is False and analysis.reason == analysis_service.NO_CALLER_INPUT
    assert analyzed[-1]["success"] is False


def test_a_model_verdict_with_caller_words_stands(workspace, fake):
    fake.script = [{"summary": "Answered.", "fields": {}, "success": True}]
    agent = _agent(workspace, fields=[])
    analysis = _end(_call(workspace, draft_of(agent), _env(workspace, fake)))
    assert analysis.success is True and analysis.reason == ""
