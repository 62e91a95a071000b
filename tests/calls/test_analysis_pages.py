"""Post-call analysis in Studio: the version form's field rows, the call page, the list's columns and filters,
the CSV/JSON export, "Analyse again", workspace scoping and query counts."""
import csv
import io
import json
from datetime import timedelta

import pytest
from django.test import TestCase
from django.utils import timezone

from agents import services as agent_services
from agents.models import Environment
from calls.models import CallAnalysis, CallSession, CallTurn
from tests.agents.factories import AgentFactory, EnvironmentFactory, PhoneConnectorFactory, draft_of

pytestmark = pytest.mark.django_db

FIELDS = [{"name": "order_number", "type": "text", "description": "The order", "keywords": ["order"]},
          {"name": "resolved", "type": "boolean", "description": "Answered?"},
          {"name": "sentiment", "type": "enum", "values": ["happy", "angry"], "description": ""}]
DEFINITION = {"summary": True, "fields": FIELDS, "success": "The caller got an answer."}

_n = iter(range(10 ** 6))


@pytest.fixture
def studio(workspace):
    agent = AgentFactory(workspace=workspace, name="Ava")
    agent_services.agent_draft_update(draft=draft_of(agent), analysis_summary=True, analysis_fields=FIELDS,
                                      analysis_success=DEFINITION["success"])
    env = EnvironmentFactory(workspace=workspace, kind=Environment.Kind.PRODUCTION)
    connector = PhoneConnectorFactory(workspace=workspace, agent=agent, environment=env, name="Main line",
                                      version_mode="draft")
    return agent, env, connector


def _call(workspace, connector, *, fields=None, summary="", success=None, status="done", reason="",
          minutes_ago=5):
    started = timezone.now() - timedelta(minutes=minutes_ago)
    call = CallSession.objects.create(
        call_sid=f"CA{next(_n):032d}", workspace=workspace, connector=connector,
        agent_version=draft_of(connector.agent), environment=connector.environment, from_number="+15125550199",
        to_number="+15125550100", status="completed", stream_token_used_at=started)
    CallSession.objects.filter(pk=call.pk).update(started_at=started, ended_at=started + timedelta(seconds=60))
    CallTurn.objects.create(call_session=call, seq=1, role="caller", text="My order is AB-1. Thanks!")
    if fields is not None:
        CallAnalysis.objects.create(call_session=call, status=status, fields=fields, summary=summary,
                                    success=success, reason=reason, model_used="openai:gpt-test",
                                    definition=DEFINITION, definition_label="Draft",
                                    analysed_at=timezone.now() if status == "done" else None)
    call.refresh_from_db()
    return call


def test_call_page_shows_the_analysis(member_client, workspace, studio):
    _, _, connector = studio
    call = _call(workspace, connector, fields={"order_number": "AB-1", "resolved": True, "sentiment": None},
                 summary="The caller asked about order AB-1.", success=True)
    html = member_client.get(f"/studio/calls/{call.pk}/").content.decode()
    for expected in ('data-testid="call-analysis"', "The caller asked about order AB-1.", "order_number", "AB-1",
                     "resolved", "yes", "The caller got an answer.", "openai:gpt-test"):
        assert expected in html, expected
    assert 'data-testid="analyse-again"' not in html  # members do not re-run it


def test_call_page_shows_a_failed_analysis_with_its_reason(admin_client, workspace, studio):
    _, _, connector = studio
    call = _call(workspace, connector, fields={}, status="failed",
                 reason="The model refused the request (HTTP 401): check the key.")
    html = admin_client.get(f"/studio/calls/{call.pk}/").content.decode()
    assert "The analysis failed" in html and "HTTP 401" in html and 'data-testid="analyse-again"' in html


def test_a_pending_analysis_card_polls_until_done(member_client, other_client, workspace, studio):
    _, _, connector = studio
    call = _call(workspace, connector, fields={}, status="pending")
    html = member_client.get(f"/studio/calls/{call.pk}/").content.decode()
    assert f'hx-get="/studio/calls/{call.pk}/analysis/"' in html and "Analysing" in html
    CallAnalysis.objects.filter(call_session=call).update(status="done", summary="Done now.",
                                                          analysed_at=timezone.now())
    card = member_client.get(f"/studio/calls/{call.pk}/analysis/").content.decode()
    assert "Done now." in card and "hx-get" not in card
    assert other_client.get(f"/studio/calls/{call.pk}/analysis/").status_code == 404


def test_analyse_again_reruns_with_force_for_admins_only(admin_client, member_client, other_client, workspace,
                                                         studio):
    agent, _, connector = studio
    call = _call(workspace, connector, fields={"order_number": "OLD"}, summary="old")
    agent_services.agent_draft_update(draft=draft_of(agent), analysis_fields=FIELDS + [
        {"name": "callback", "type": "boolean", "description": "", "keywords": ["call me back"]}])
    assert member_client.post(f"/studio/calls/{call.pk}/analyse/").status_code == 403
    assert other_client.post(f"/studio/calls/{call.pk}/analyse/").status_code == 404
    assert admin_client.get(f"/studio/calls/{call.pk}/analyse/").status_code == 405
    assert CallAnalysis.objects.get(call_session=call).fields == {"order_number": "OLD"}  # untouched so far
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = admin_client.post(f"/studio/calls/{call.pk}/analyse/")
    assert response.status_code == 302
    analysis = CallAnalysis.objects.get(call_session=call)  # still one row
    assert analysis.status == "done" and analysis.model_used == "rules"  # the draft is scripted
    assert analysis.fields == {"order_number": "AB-1", "resolved": False, "sentiment": None, "callback": False}
    assert CallAnalysis.objects.filter(call_session=call).count() == 1


def test_calls_list_shows_fields_as_columns_and_filters_on_them(member_client, workspace, studio):
    _, _, connector = studio
    happy = _call(workspace, connector, fields={"order_number": "AB-1", "resolved": True, "sentiment": "happy"},
                  success=True, minutes_ago=1)
    angry = _call(workspace, connector, fields={"order_number": "ZZ-9", "resolved": False, "sentiment": "angry"},
                  success=False, minutes_ago=2)
    none = _call(workspace, connector, minutes_ago=3)

    def ids(query):
        response = member_client.get("/studio/calls/" + query)
        assert response.status_code == 200
        return [c.pk for c in response.context["page"]]

    html = member_client.get("/studio/calls/").content.decode()
    assert html.count('data-testid="analysis-column"') == 3
    assert ">order_number</th>" in html and ">sentiment</th>" in html and "ZZ-9" in html
    assert 'href="?field=sentiment%3Dangry"' in html and 'href="?field=resolved%3Dyes"' in html
    assert ids("") == [happy.pk, angry.pk, none.pk]
    assert ids("?field=sentiment%3Dangry") == [angry.pk]
    assert ids("?field=sentiment%3DANGRY") == [angry.pk]  # any case
    assert ids("?field=resolved%3Dyes") == [happy.pk]
    assert ids("?field=resolved%3Dno") == [angry.pk]
    assert ids("?field=resolved%3Dyes,sentiment%3Dangry") == []
    assert ids("?success=yes") == [happy.pk]
    assert ids("?success=no") == [angry.pk]
    assert ids("?success=unknown") == [none.pk]
    bad = member_client.get("/studio/calls/?field=sentiment")
    assert bad.status_code == 200 and "Write name=value" in bad.content.decode()


def test_export_of_the_filtered_list_includes_the_fields(member_client, workspace, studio):
    _, _, connector = studio
    _call(workspace, connector, fields={"order_number": "=cmd()", "resolved": True, "sentiment": "happy"},
          summary="Asked about an order.", success=True, minutes_ago=1)
    _call(workspace, connector, fields={"order_number": "ZZ-9", "resolved": False, "sentiment": "angry"},
          minutes_ago=2)
    response = member_client.get("/studio/calls/export.csv?field=sentiment%3Dhappy")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == 1
    row = rows[0]
    assert row["order_number"] == "'=cmd()"  # a formula stays text in a spreadsheet
    assert row["resolved"] == "yes" and row["sentiment"] == "happy" and row["success"] == "yes"
    assert row["summary"] == "Asked about an order." and row["agent"] == "Ava"

    data = json.loads(member_client.get("/studio/calls/export.json").content)
    assert [c["analysis"]["fields"]["sentiment"] for c in data["calls"]] == ["happy", "angry"]
    assert data["calls"][0]["analysis"]["status"] == "done"
    one = json.loads(member_client.get(f"/studio/calls/{data['calls'][1]['id']}/export.json").content)
    assert one["analysis"]["fields"]["order_number"] == "ZZ-9"


def test_another_workspace_never_sees_the_analysis(other_client, workspace, studio):
    _, _, connector = studio
    call = _call(workspace, connector, fields={"order_number": "PRIVATE-77", "resolved": True, "sentiment": "happy"})
    assert other_client.get(f"/studio/calls/{call.pk}/").status_code == 404
    for url in ("/studio/calls/", "/studio/calls/export.csv", "/studio/calls/export.json",
                "/studio/calls/export.json?field=order_number%3DPRIVATE-77"):
        response = other_client.get(url)
        assert response.status_code == 200 and "PRIVATE-77" not in response.content.decode(), url
    assert list(other_client.get("/studio/calls/?field=order_number%3DPRIVATE-77").context["page"]) == []


def test_calls_list_queries_do_not_grow_with_analyses(member_client, workspace, studio, django_assert_num_queries):
    _, _, connector = studio
    for i in range(3):
        _call(workspace, connector, fields={"order_number": f"A{i}", "resolved": True, "sentiment": "happy"},
              minutes_ago=i + 1)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    member_client.get("/studio/calls/")  # the session's first request loads more (workspace choice)
    with CaptureQueriesContext(connection) as few:
        assert member_client.get("/studio/calls/").status_code == 200
    for i in range(40):
        _call(workspace, connector, fields={"order_number": f"B{i}", "resolved": False, "sentiment": "angry"},
              minutes_ago=i + 10)
    with django_assert_num_queries(len(few.captured_queries)):
        assert member_client.get("/studio/calls/?field=sentiment%3Dangry").status_code == 200
    with django_assert_num_queries(len(few.captured_queries)):
        assert member_client.get("/studio/calls/").status_code == 200
    assert len(few.captured_queries) <= 12


# ---------------------------------------------------------------------------
# The version form: rows, messages next to the field, publish diff


def _form_data(rows, extra=1):
    data = {"caller_name": "Ava", "greeting": "Hi", "instructions": "Help", "language": "en-US", "voice": "",
            "transport": "media_streams", "provider": "scripted", "variables_text": "", "secrets_text": "",
            "scripted_answers_text": "", "handover_rules_text": "", "analysis_summary": "on",
            "analysis_success": "  The caller got an answer.  ",
            "analysis_field-TOTAL_FORMS": str(len(rows) + extra), "analysis_field-INITIAL_FORMS": "0",
            "analysis_field-MIN_NUM_FORMS": "0", "analysis_field-MAX_NUM_FORMS": "30"}
    for i, row in enumerate(rows):
        for key, value in row.items():
            data[f"analysis_field-{i}-{key}"] = value
    return data


def test_version_form_saves_analysis_rows(admin_client, workspace):
    agent = AgentFactory(workspace=workspace)
    url = f"/studio/agents/{agent.pk}/"
    page = admin_client.get(url).content.decode()
    assert 'name="analysis_field-TOTAL_FORMS"' in page and 'data-testid="analysis-add"' in page
    assert "agents/rows.js" in page and "agents/analysis_fields.js" not in page and "<script>" not in page
    assert page.count("agents/rows.js") == 1 and 'data-row-editor="analysis_field"' in page
    response = admin_client.post(url, _form_data([
        {"name": "order_number", "type": "text", "description": "The order", "keywords": "order, reference"},
        {"name": "sentiment", "type": "enum", "values": "happy, angry, happy"},
        {"name": "dropped", "type": "text", "DELETE": "on"},
    ]))
    assert response.status_code == 302, [(k, v) for k, v in response.context["form"].errors.items()] + [
        f.errors for f in response.context["form"].analysis]
    draft = draft_of(agent)
    assert draft.analysis_summary is True and draft.analysis_success == "The caller got an answer."
    assert draft.analysis_fields == [
        {"name": "order_number", "type": "text", "description": "The order", "keywords": ["order", "reference"]},
        {"name": "sentiment", "type": "enum", "description": "", "values": ["happy", "angry"]}]
    page = admin_client.get(url).content.decode()
    assert 'value="order_number"' in page and 'value="happy, angry"' in page

    # A post without the rows' management form (a script) keeps them.
    data = {k: v for k, v in _form_data([]).items() if not k.startswith("analysis_field-")}
    assert admin_client.post(url, data).status_code == 302
    assert len(draft_of(agent).analysis_fields) == 2


def test_version_form_tells_row_errors_next_to_the_field(admin_client, workspace):
    agent = AgentFactory(workspace=workspace)
    response = admin_client.post(f"/studio/agents/{agent.pk}/", _form_data([
        {"name": "Order Number", "type": "text"},
        {"name": "mood", "type": "enum", "values": ""},
        {"name": "flag", "type": "boolean", "values": "a, b"},
        {"name": "dup", "type": "text"}, {"name": "dup", "type": "number"},
        {"name": "", "type": "text", "description": "no name"},
    ]))
    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-testid="error-analysis_field-0-name"' in page and "lowercase letters" in page
    assert 'data-testid="error-analysis_field-1-values"' in page and "List the values" in page
    assert 'data-testid="error-analysis_field-2-values"' in page and "Only an enum field" in page
    assert 'data-testid="error-analysis_field-4-name"' in page and "dup is listed twice" in page
    assert 'data-testid="error-analysis_field-5-name"' in page and "Give the field a name" in page
    assert "Correct the post-call fields below." in page
    assert draft_of(agent).analysis_fields == []  # nothing saved


def test_publish_diff_shows_analysis_changes(admin_client, workspace):
    agent = AgentFactory(workspace=workspace)
    agent_services.agent_publish(agent=agent)
    agent_services.agent_draft_update(draft=draft_of(agent), analysis_fields=FIELDS[:1], analysis_summary=True)
    page = admin_client.get(f"/studio/agents/{agent.pk}/publish/").content.decode()
    assert "Post-call fields" in page and "order_number" in page and "Post-call summary" in page
