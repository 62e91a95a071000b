"""The order of a call's events: each body carries `sequence` (1, 2, 3 … per call, in the order the events were
recorded), so a receiver can reorder events that arrive out of order; `call.started` says the call is answered."""
import pytest

from calls.models import CallSession
from webhooks import services
from webhooks.models import EventType, WebhookEvent

pytestmark = pytest.mark.django_db


def _session(workspace, environment, call_sid, status="ringing"):
    return CallSession.objects.create(workspace=workspace, environment=environment, call_sid=call_sid,
                                      from_number="+15125550100", to_number="+15125550199", status=status)


def test_each_call_numbers_its_events_in_the_order_they_happened(hook, workspace, environment):
    first = _session(workspace, environment, "CA" + "1" * 32)
    second = _session(workspace, environment, "CA" + "2" * 32)
    services.call_event_record(session=first, type=EventType.CALL_STARTED)
    services.call_event_record(session=second, type=EventType.CALL_STARTED)
    services.call_event_record(session=first, type=EventType.HANDOVER_STARTED)
    services.call_event_record(session=first, type=EventType.CALL_ENDED)
    by_call = {}
    for event in WebhookEvent.objects.order_by("id"):
        by_call.setdefault(event.payload["data"]["call"]["call_sid"], []).append(
            (event.payload["type"], event.payload["sequence"]))
    assert by_call[first.call_sid] == [("call.started", 1), ("handover.started", 2), ("call.ended", 3)]
    assert by_call[second.call_sid] == [("call.started", 1)]


def test_every_endpoint_gets_the_same_number_for_one_event(hook, receiver, workspace, environment):
    services.endpoint_create(environment=environment, url=receiver().url, events=EventType.values)
    session = _session(workspace, environment, "CA" + "3" * 32)
    services.call_event_record(session=session, type=EventType.CALL_STARTED)
    assert sorted(e.payload["sequence"] for e in WebhookEvent.objects.all()) == [1, 1]


def test_call_started_says_the_call_is_in_progress_not_ringing(hook, workspace, environment):
    session = _session(workspace, environment, "CA" + "4" * 32, status="ringing")
    services.call_event_record(session=session, type=EventType.CALL_STARTED)
    [event] = WebhookEvent.objects.all()
    assert event.payload["data"]["call"]["status"] == "in-progress"


def test_a_call_nobody_listens_to_costs_one_query_and_no_number(workspace, environment,
                                                                django_assert_num_queries):
    session = _session(workspace, environment, "CA" + "5" * 32)
    with django_assert_num_queries(1):
        services.call_event_record(session=session, type=EventType.CALL_STARTED)


def test_the_endpoints_page_links_to_a_reference_a_receiver_can_follow(admin_client, environment):
    page = admin_client.get(f"/studio/environments/{environment.kind}/webhooks/")
    assert b'href="/studio/webhooks/reference/"' in page.content
    reference = admin_client.get("/studio/webhooks/reference/").content.decode()
    for value in EventType.values:
        assert f"<code>{value}</code>" in reference
    assert "sequence" in reference and "webhook-id" in reference


def test_the_delivery_log_refreshes_itself(admin_client, hook, environment):
    rx, endpoint, _ = hook
    url = f"/studio/environments/{environment.kind}/webhooks/{endpoint.pk}/"
    page = admin_client.get(url).content.decode()
    assert 'hx-trigger="every 5s"' in page and f'hx-get="{url}"' in page
    services.event_send_test(endpoint=endpoint)
    part = admin_client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert part.lstrip().startswith("{#") is False and 'id="delivery-log"' in part and "webhook.test" in part
    assert "<html" not in part
