"""Per-turn latency: stored with the agent's turns, shown on the call's page, p50/p95 per version in Studio."""
import pytest

from calls import selectors
from calls.models import CallTurn
from calls.services.handovers import transcript_save

from .test_pages import _call

pytestmark = pytest.mark.django_db


def _answered(call, latencies):
    transcript_save(call_session_id=call.pk, turns=[
        ("agent", f"answer {i}", True, 0, {"latency_ms": total, "recognition_ms": total // 4,
                                           "first_token_ms": total // 2, "first_byte_ms": total - 10})
        for i, total in enumerate(latencies)])


def test_latency_is_stored_with_the_turn_and_shown_on_the_call_page(member_client, workspace):
    from tests.agents.factories import AgentFactory, EnvironmentFactory, PhoneConnectorFactory

    agent = AgentFactory(workspace=workspace, name="Ava")
    connector = PhoneConnectorFactory(workspace=workspace, agent=agent, environment=EnvironmentFactory(
        workspace=workspace), version_mode="draft")
    call = _call(workspace, connector, turns=[("caller", "sales please")])
    _answered(call, [840])
    transcript_save(call_session_id=call.pk, turns=[("caller", "thanks", True, 0)])  # no latency: nothing stored
    turn = CallTurn.objects.get(call_session=call, role="agent")
    assert (turn.latency_ms, turn.recognition_ms, turn.first_token_ms, turn.first_byte_ms) == (840, 210, 420, 830)
    assert CallTurn.objects.get(call_session=call, text="thanks").latency_ms is None
    page = member_client.get(f"/studio/calls/{call.pk}/").content.decode()
    assert 'data-testid="turn-latency"' in page and "answered in 840 ms" in page
    # each stage's own time (the stored figures are cumulative from the caller's end of turn)
    assert "stages: recognition 210 ms · model 210 ms · speech 410 ms · sending 10 ms" in page
    export = member_client.get(f"/studio/calls/{call.pk}/export.json").json()
    assert [t.get("latency_ms") for t in export["transcript"]] == [None, 840, None]


def test_studio_shows_p50_and_p95_per_version_in_one_query(member_client, workspace, django_assert_num_queries):
    from agents.services import agent_publish
    from tests.agents.factories import AgentFactory, EnvironmentFactory, PhoneConnectorFactory

    agent = AgentFactory(workspace=workspace, name="Ava")
    connector = PhoneConnectorFactory(workspace=workspace, agent=agent, environment=EnvironmentFactory(
        workspace=workspace), version_mode="draft")
    draft_call = _call(workspace, connector)
    _answered(draft_call, list(range(100, 1100, 10)))  # 100 turns: 100..1090 ms
    v1 = agent_publish(agent=agent, allow_unchanged=True)
    published_call = _call(workspace, connector)
    published_call.agent_version = v1
    published_call.save()
    _answered(published_call, [300, 500])
    with django_assert_num_queries(1):
        stats = selectors.version_latency(workspace=workspace, agent_id=agent.pk)
    by_label = {s["label"]: s for s in stats}
    assert by_label["Draft"]["total"] == {"p50": 590, "p95": 1040}
    assert by_label["Draft"]["turns"] == 100
    assert by_label["v1"]["total"] == {"p50": 300, "p95": 500}
    assert selectors.version_latency(workspace=workspace, agent_id=agent.pk, limit=10)[0]["turns"] == 10
    # Another workspace's agent id shows nothing.
    from tests.factories import WorkspaceFactory
    assert selectors.version_latency(workspace=WorkspaceFactory(), agent_id=agent.pk) == []
    page = member_client.get(f"/studio/calls/?agent={agent.pk}").content.decode()
    assert 'data-testid="version-latency"' in page and "590 / 1040 ms" in page
