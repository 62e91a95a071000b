"""Studio pages for calls: list (filters, search, pages), a call's page, JSON export; workspace scoping; query bounds."""
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from agents.models import Environment
from calls.models import CallHandover, CallIntervention, CallRecording, CallSession, CallTurn
from tests.agents.factories import AgentFactory, EnvironmentFactory, PhoneConnectorFactory, draft_of

pytestmark = pytest.mark.django_db

_n = iter(range(10 ** 6))


def _call(workspace, connector, *, status="completed", minutes_ago=5, turns=(), ended=True, **fields):
    version = draft_of(connector.agent)
    started = timezone.now() - timedelta(minutes=minutes_ago)
    call = CallSession.objects.create(
        call_sid=f"CA{next(_n):032d}", workspace=workspace, connector=connector, agent_version=version,
        environment=connector.environment, from_number="+15125550199", to_number="+15125550100", status=status,
        stream_token_used_at=started, **fields)
    CallSession.objects.filter(pk=call.pk).update(started_at=started,
                                                  ended_at=started + timedelta(seconds=90) if ended else None)
    CallTurn.objects.bulk_create([CallTurn(call_session=call, seq=i + 1, role=role, text=text, started_at=started)
                                  for i, (role, text) in enumerate(turns)])
    call.refresh_from_db()
    return call


@pytest.fixture
def studio(workspace, member_user):
    agent = AgentFactory(workspace=workspace, name="Ava")
    env = EnvironmentFactory(workspace=workspace, kind=Environment.Kind.PRODUCTION)
    connector = PhoneConnectorFactory(workspace=workspace, agent=agent, environment=env, name="Main line",
                                      version_mode="draft")
    return agent, env, connector


def test_calls_list_filters_and_searches_transcripts(member_client, workspace, studio):
    agent, env, connector = studio
    other_agent = AgentFactory(workspace=workspace, name="Bob")
    staging = EnvironmentFactory(workspace=workspace, kind=Environment.Kind.STAGING)
    other_connector = PhoneConnectorFactory(workspace=workspace, agent=other_agent, environment=staging,
                                            name="Side line", version_mode="draft")
    refund = _call(workspace, connector, minutes_ago=2,
                   turns=[("caller", "I want a REFUND for my order"), ("agent", "Sure.")])
    hours = _call(workspace, other_connector, status="busy", minutes_ago=3, turns=[("caller", "When are you open?")])
    old = _call(workspace, connector, minutes_ago=60 * 24 * 3, turns=[("caller", "refund again")])

    def ids(query):
        response = member_client.get("/studio/calls/" + query)
        assert response.status_code == 200
        return [c.pk for c in response.context["page"]]

    assert ids("") == [refund.pk, hours.pk, old.pk]
    assert ids("?q=refund") == [refund.pk, old.pk]  # case-insensitive, over the transcript
    assert ids(f"?connector={other_connector.pk}") == [hours.pk]
    assert ids(f"?agent={agent.pk}") == [refund.pk, old.pk]
    assert ids(f"?environment={staging.pk}") == [hours.pk]
    assert ids("?status=busy") == [hours.pk]
    today = timezone.localdate()
    assert ids(f"?date_from={today - timedelta(days=1)}") == [refund.pk, hours.pk]
    assert ids(f"?date_to={today - timedelta(days=2)}") == [old.pk]
    bad = member_client.get("/studio/calls/?date_from=yesterday")
    assert bad.status_code == 200 and "Enter a valid date" in bad.content.decode()


def test_calls_list_is_paginated(member_client, workspace, studio):
    _, _, connector = studio
    for i in range(55):
        _call(workspace, connector, minutes_ago=i + 1)
    first = member_client.get("/studio/calls/")
    assert len(first.context["page"]) == 50 and first.context["page"].has_next()
    second = member_client.get("/studio/calls/?page=2")
    assert len(second.context["page"]) == 5


def test_calls_list_never_shows_or_filters_by_another_workspace(member_client, other_client, workspace, studio):
    agent, env, connector = studio
    mine = _call(workspace, connector, turns=[("caller", "secret words")])
    theirs = other_client.get("/studio/calls/?q=secret")
    assert theirs.status_code == 200 and list(theirs.context["page"]) == []
    # ids of our agent / connector / environment in the other workspace's filters: not found
    assert other_client.get(f"/studio/calls/?connector={connector.pk}").status_code == 404
    assert other_client.get(f"/studio/calls/?agent={agent.pk}").status_code == 404
    assert other_client.get(f"/studio/calls/?environment={env.pk}").status_code == 404
    assert other_client.get(f"/studio/calls/{mine.pk}/").status_code == 404
    assert other_client.get(f"/studio/calls/{mine.pk}/export.json").status_code == 404
    assert member_client.get(f"/studio/calls/{mine.pk}/").status_code == 200


def test_call_page_shows_everything(member_client, workspace, studio):
    _, env, connector = studio
    call = _call(workspace, connector, turns=[("agent", "Hello, this is Ava."), ("caller", "sales please"),
                                              ("event", "Handover: transfer_to_sales → +31201234567")],
                 runtime_error="")
    CallHandover.objects.create(call_session=call, action_name="transfer_to_sales", destination="+31201234567",
                                transport="media_streams", outcome="answered", dial_duration=61)
    CallRecording.objects.create(call_session=call, recording_sid="RE" + "1" * 32, status="completed", duration=90,
                                 channels=2)
    html = member_client.get(f"/studio/calls/{call.pk}/").content.decode()
    for expected in ("Ava", "Draft", "Production", "Main line", "+15125550199", "+15125550100", "90 s",
                     "Hello, this is Ava.", "sales please", "Handover: transfer_to_sales → +31201234567",
                     "Answered", "(61 s)", "<audio", "Export JSON", "2 channels"):
        assert expected in html, expected
    assert "listen-panel" not in html  # not live


def test_live_call_page_offers_listen_and_the_versions_actions(member_client, workspace, studio):
    _, _, connector = studio
    call = _call(workspace, connector, status="in-progress", ended=False)
    from agents.models import HandoverAction

    HandoverAction.objects.create(version=call.agent_version, name="transfer_to_sales", destination="+31201234567")
    html = member_client.get(f"/studio/calls/{call.pk}/").content.decode()
    assert f'data-ws-path="/v1/studio/calls/{call.pk}/listen"' in html
    assert '<option value="transfer_to_sales">' in html


def test_export_json(member_client, workspace, studio, member_user):
    _, _, connector = studio
    call = _call(workspace, connector, turns=[("caller", "hi"), ("agent", "Hello!")])
    CallIntervention.objects.create(call_session=call, user=member_user, username=member_user.username,
                                    kind="instruction", detail="Be brief.", result="accepted")
    response = member_client.get(f"/studio/calls/{call.pk}/export.json")
    assert response.status_code == 200 and response["Content-Type"].startswith("application/json")
    assert f'call-{call.call_sid}.json' in response["Content-Disposition"]
    data = json.loads(response.content)
    assert data["call_sid"] == call.call_sid and data["duration_seconds"] == 90
    assert [(t["speaker"], t["text"]) for t in data["transcript"]] == [("caller", "hi"), ("agent", "Hello!")]
    assert data["interventions"][0]["by"] == member_user.username
    assert data["agent"] == "Ava" and data["connector"]["name"] == "Main line"


def test_live_view_and_stats(member_client, other_client, workspace, studio):
    _, _, connector = studio
    live_call = _call(workspace, connector, status="in-progress", ended=False, minutes_ago=1)
    done = _call(workspace, connector, minutes_ago=3)
    _call(workspace, connector, minutes_ago=4, runtime_error="timeout")
    CallHandover.objects.create(call_session=done, action_name="x", destination="+31201234567",
                                transport="media_streams")
    response = member_client.get("/studio/calls/live/")
    assert [c.pk for c in response.context["calls"]] == [live_call.pk]
    (row,) = response.context["stats"]
    assert (row["calls"], row["handovers"], row["errors"], row["avg_duration"]) == (3, 1, 1, 90)
    stats = member_client.get("/studio/calls/live/stats/")
    assert 'data-stat="calls">3<' in stats.content.decode()
    theirs = other_client.get("/studio/calls/live/")
    assert list(theirs.context["calls"]) == [] and theirs.context["stats"] == []
    their_stats = other_client.get("/studio/calls/live/stats/").content.decode()
    assert "Main line" not in their_stats and "No phone connectors." in their_stats


def test_pages_need_login(client, workspace, studio):
    _, _, connector = studio
    call = _call(workspace, connector)
    for url in ("/studio/calls/", f"/studio/calls/{call.pk}/", f"/studio/calls/{call.pk}/export.json",
                "/studio/calls/live/", "/studio/calls/live/stats/"):
        assert client.get(url).status_code == 302, url


def test_bounded_queries_with_500_calls_and_long_transcripts(member_client, workspace, studio,
                                                             django_assert_max_num_queries):
    _, _, connector = studio
    version = draft_of(connector.agent)
    now = timezone.now()
    calls = CallSession.objects.bulk_create([
        CallSession(call_sid=f"CB{i:032d}", workspace=workspace, connector=connector, agent_version=version,
                    environment=connector.environment, status="completed", from_number="+15125550199",
                    to_number="+15125550100", ended_at=now)
        for i in range(500)])
    long_call = calls[0]
    CallTurn.objects.bulk_create([CallTurn(call_session_id=c.pk, seq=j + 1, role="caller" if j % 2 else "agent",
                                           text=f"turn {j} " + "words " * 40, started_at=now)
                                  for c in calls[:100] for j in range(20)])
    CallTurn.objects.bulk_create([CallTurn(call_session=long_call, seq=100 + j, role="agent",
                                           text="a long answer " * 30, started_at=now) for j in range(400)])
    for j in range(5):
        CallHandover.objects.create(call_session=long_call, action_name=f"a{j}", destination="+31201234567",
                                    transport="media_streams")
        CallRecording.objects.create(call_session=long_call, recording_sid=f"RE{j:032d}", status="completed")
    with django_assert_max_num_queries(12):
        assert member_client.get("/studio/calls/").status_code == 200
    with django_assert_max_num_queries(8):
        assert member_client.get("/studio/calls/?q=words&page=2").status_code == 200
    with django_assert_max_num_queries(8):
        response = member_client.get(f"/studio/calls/{long_call.pk}/")
    assert response.status_code == 200 and response.content.decode().count('class="turn ') == 420
    with django_assert_max_num_queries(9):  # 8 + the audit row of the export
        assert member_client.get(f"/studio/calls/{long_call.pk}/export.json").status_code == 200
    with django_assert_max_num_queries(8):
        assert member_client.get("/studio/calls/live/").status_code == 200


def test_environment_recording_settings(admin_client, member_client, workspace):
    response = admin_client.post("/studio/environments/production/recording/",
                                 {"recording-recording_enabled": "on", "recording-recording_retention_days": "0"})
    assert response.status_code == 400 and "greater than or equal to 1" in response.content.decode()
    env = Environment.objects.get(workspace=workspace, kind="production")
    assert env.recording_enabled is False  # nothing half-written
    response = admin_client.post("/studio/environments/production/recording/",
                                 {"recording-recording_enabled": "on", "recording-recording_retention_days": "14"})
    assert response.status_code == 302
    env.refresh_from_db()
    assert (env.recording_enabled, env.recording_retention_days) == (True, 14)
    assert member_client.post("/studio/environments/production/recording/",
                              {"recording-recording_retention_days": "3"}).status_code == 403
