"""A call's page and export show each API action the agent ran: name, parameters, status, time, answer."""
import json

import pytest
from django.utils import timezone

from calls.models import CallActionRun
from calls.services.handovers import action_run_record

from .test_pages import _call, studio  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db


def test_the_call_page_and_export_list_the_action_runs(member_client, workspace, studio):  # noqa: F811
    _, _, connector = studio
    call = _call(workspace, connector, turns=[("caller", "where is my order"), ("event", "Action order_status: 200, 87 ms")])
    action_run_record(call_session_id=call.pk, run={"name": "order_status", "parameters": {"order_id": "42"},
                                                    "ok": True, "status_code": 200, "duration_ms": 87,
                                                    "result": "shipped", "started": timezone.now().timestamp()})
    CallActionRun.objects.create(call_session=call, name="book", parameters={}, ok=False, duration_ms=5000,
                                 result="The API did not answer within 5 seconds.", started_at=timezone.now())
    page = member_client.get(f"/studio/calls/{call.pk}/").content.decode()
    assert 'data-testid="call-action-runs"' in page
    assert "order_status" in page and "order_id=42" in page and "87 ms" in page and "shipped" in page
    assert "The API did not answer within 5 seconds." in page and "failed" in page
    data = json.loads(member_client.get(f"/studio/calls/{call.pk}/export.json").content)
    assert [(a["name"], a["ok"], a["status_code"]) for a in data["actions"]] == [
        ("order_status", True, 200), ("book", False, None)]
