"""Analytics: figures aggregated in the database match what the calls say; two versions on the same charts; the
numbers one click away (table and CSV); a bounded number of queries however many calls; nothing of another
workspace."""
import csv
import io
import math
from datetime import timedelta

import pytest
from django.utils import timezone

from agents.models import AgentVersion
from analytics import selectors
from calls.models import CallActionRun, CallAnalysis, CallHandover, CallSession, CallTurn
from dialer.models import Call
from tests.agents.factories import published_agent
from tests.factories import WorkspaceFactory

pytestmark = pytest.mark.django_db


def _call(workspace, version, *, day_offset=0, status="completed", minutes=2, success=None, handover=None,
          latencies=(), interrupted=0, failed_actions=0, n=[0]):
    n[0] += 1
    start = timezone.now() - timedelta(days=day_offset, hours=1)
    session = CallSession.objects.create(workspace=workspace, agent_version=version, call_sid=f"CA{n[0]:032d}",
                                         status=status)
    CallSession.objects.filter(pk=session.pk).update(started_at=start, ended_at=start + timedelta(minutes=minutes))
    if success is not None:
        CallAnalysis.objects.create(call_session=session, status="done", success=success)
    if handover:
        CallHandover.objects.create(call_session=session, action_name="sales", destination="+15125550100",
                                    transport="media_streams", outcome=handover)
    seq = 0
    for latency in latencies:
        seq += 1
        CallTurn.objects.create(call_session=session, seq=seq, role="agent", text="hi", latency_ms=latency,
                                recognition_ms=latency // 2)
    for _ in range(interrupted):
        seq += 1
        CallTurn.objects.create(call_session=session, seq=seq, role="agent", text="cut", heard=False)
    for _ in range(failed_actions):
        CallActionRun.objects.create(call_session=session, name="order", ok=False, started_at=start)
    return session


@pytest.fixture
def agent(workspace):
    return published_agent(workspace, versions=2)


def _versions(agent):
    return list(AgentVersion.objects.filter(agent=agent, number__isnull=False).order_by("number"))


def test_the_figures_are_what_the_calls_say(workspace, agent):
    v1, v2 = _versions(agent)
    _call(workspace, v1, success=True, latencies=[100, 200, 300, 400, 500, 600, 700, 800, 900, 1000])
    _call(workspace, v1, success=False, handover="answered", interrupted=2)
    _call(workspace, v1, status="no-answer")
    _call(workspace, v2, success=True, failed_actions=3)
    period = selectors.Period(since=timezone.now().date() - timedelta(days=6), until=timezone.now().date())
    s1, s2 = selectors.agent_stats(workspace=workspace, versions=[v1, v2], period=period)
    day = (timezone.now() - timedelta(hours=1)).date()
    assert s1.calls[day] == 3 and s1.answered[day] == 2 and s1.judged[day] == 2 and s1.success[day] == 1
    assert s1.handed_over[day] == 1 and s1.interruptions[day] == 2 and s1.handover_outcomes == {"answered": 1}
    assert s1.avg_duration[day] == pytest.approx(120)
    values = list(range(100, 1001, 100))
    nearest = [values[math.ceil(p * len(values)) - 1] for p in (0.5, 0.9)]
    assert s1.latency["latency_ms"][day] == tuple(nearest) == (500, 900)
    assert s1.latency["recognition_ms"][day] == (250, 450)
    assert s2.calls[day] == 1 and s2.action_failures[day] == 3 and day not in s2.latency.get("latency_ms", {})


def test_two_versions_share_each_chart_and_the_numbers_are_one_click_away(member_client, workspace, agent):
    v1, v2 = _versions(agent)
    _call(workspace, v1, success=True, latencies=[400])
    _call(workspace, v2, success=False, latencies=[300])
    page = member_client.get(f"/studio/analytics/?agent={agent.pk}").content.decode()
    assert page.count('data-testid="chart"') >= 11
    assert page.count("<svg") >= 11 and "<script" not in page.split("<main")[1].split("</main>")[0]
    assert f"{v1.label} p50" in page and f"{v2.label} p50" in page
    response = member_client.get(f"/studio/analytics/?agent={agent.pk}&chart=success&format=csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["Day (UTC)", f"{v2.label} (%)", f"{v1.label} (%)"]
    today = [r for r in rows if r[0] == (timezone.now() - timedelta(hours=1)).date().isoformat()][0]
    assert today[1:] == ["0.0", "100.0"]


def test_the_page_costs_the_same_queries_for_ten_or_a_hundred_calls(member_client, workspace, agent,
                                                                      django_assert_max_num_queries):
    v1, v2 = _versions(agent)
    for i in range(10):
        _call(workspace, v1, day_offset=i % 5, success=True, latencies=[200 + i], handover="answered")
    with django_assert_max_num_queries(20) as small:
        member_client.get(f"/studio/analytics/?agent={agent.pk}")
    for i in range(90):
        _call(workspace, v2 if i % 2 else v1, day_offset=i % 7, success=bool(i % 3), latencies=[100 + i, 50],
              interrupted=i % 2, failed_actions=i % 3)
    with django_assert_max_num_queries(len(small.captured_queries)):
        member_client.get(f"/studio/analytics/?agent={agent.pk}")


def test_another_workspaces_agent_and_calls_never_show(member_client, workspace, agent):
    other = WorkspaceFactory(name="Other")
    theirs = published_agent(other)
    assert member_client.get(f"/studio/analytics/?agent={theirs.pk}").status_code == 404
    _call(other, _versions(theirs)[0], success=True)
    v1, _ = _versions(agent)
    period = selectors.Period(since=timezone.now().date() - timedelta(days=6), until=timezone.now().date())
    [mine] = selectors.agent_stats(workspace=workspace, versions=[v1], period=period)
    assert mine.calls == {}


def test_dialer_analytics_per_rep(member_client, workspace, member_user):
    now = timezone.now() - timedelta(hours=1)
    for i, (answered, duration) in enumerate([(True, 60), (True, 120), (False, None)]):
        Call.objects.create(workspace=workspace, sid=f"CA{i:032d}", direction="outbound", user=member_user,
                            status="completed" if answered else "no-answer", started_at=now,
                            answered_at=now if answered else None, duration=duration)
    page = member_client.get("/analytics/dialer/").content.decode()
    assert "Calls per rep per day" in page and "bob" in page
    rows = list(csv.reader(io.StringIO(member_client.get("/analytics/dialer/?chart=connect_rate&format=csv")
                                       .content.decode())))
    today = [r for r in rows if r[0] == now.date().isoformat()][0]
    assert today[1] == "66.7"
    talk = list(csv.reader(io.StringIO(member_client.get("/analytics/dialer/?chart=talk_time&format=csv")
                                       .content.decode())))
    assert [r for r in talk if r[0] == now.date().isoformat()][0][1] == "3.0"


def test_the_period_shown_is_the_period_used(member_client, agent):
    page = member_client.get(f"/studio/analytics/?agent={agent.pk}").content.decode()
    assert '<option value="30" selected>' in page
    page = member_client.get(f"/studio/analytics/?agent={agent.pk}&days=7").content.decode()
    assert '<option value="7" selected>' in page


def _week():
    today = timezone.now().date()
    return selectors.Period(since=today - timedelta(days=6), until=today)


def test_a_settled_day_comes_from_the_cache_and_the_last_days_from_the_database(workspace, agent,
                                                                                 django_assert_max_num_queries):
    """Days two or more days old are computed once (their calls have ended and been analysed); yesterday and today
    are always counted afresh."""
    v1, _ = _versions(agent)
    _call(workspace, v1, day_offset=5, success=True, handover="answered", latencies=[300])
    _call(workspace, v1, day_offset=0, success=True)
    [first] = selectors.agent_stats(workspace=workspace, versions=[v1], period=_week())
    old, today = (timezone.now() - timedelta(days=5, hours=1)).date(), (timezone.now() - timedelta(hours=1)).date()
    assert first.calls == {old: 1, today: 1} and first.handover_outcomes == {"answered": 1}
    _call(workspace, v1, day_offset=5, success=False)  # written into a settled day behind the cache's back
    _call(workspace, v1, day_offset=0, success=False)
    [second] = selectors.agent_stats(workspace=workspace, versions=[v1], period=_week())
    assert second.calls == {old: 1, today: 2} and second.success == {old: 1, today: 1}
    assert second.latency["latency_ms"][old] == (300, 300) and second.handover_outcomes == {"answered": 1}
    settled = selectors.Period(since=_week().since, until=timezone.now().date() - timedelta(days=3))
    selectors.agent_stats(workspace=workspace, versions=[v1], period=settled)
    with django_assert_max_num_queries(0):  # every day of it settled and cached: no query at all
        [cached] = selectors.agent_stats(workspace=workspace, versions=[v1], period=settled)
    assert cached.calls == {old: 1}


def test_a_failing_cache_costs_speed_not_figures(workspace, agent, monkeypatch):
    v1, _ = _versions(agent)
    _call(workspace, v1, day_offset=4, success=True)
    _call(workspace, v1, day_offset=0, success=True)

    def down(*args, **kwargs):
        raise ConnectionError("cache is down")

    monkeypatch.setattr(selectors.cache, "get_many", down)
    monkeypatch.setattr(selectors.cache, "set_many", down)
    [stats] = selectors.agent_stats(workspace=workspace, versions=[v1], period=_week())
    assert sum(stats.calls.values()) == 2 and sum(stats.success.values()) == 2
