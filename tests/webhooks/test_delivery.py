"""Event webhooks: the outbox and its delivery to a real local receiver.

Deliveries are verified on the receiver's side with the Standard Webhooks package's own `Webhook.verify`; Celery
runs tasks in-process (eager), and `django_capture_on_commit_callbacks(execute=True)` plays the commit.
"""
import json
from datetime import timedelta

import pytest
from django.db import transaction
from django.test import override_settings
from django.utils import timezone
from standardwebhooks import Webhook, WebhookVerificationError

from webhooks import services, tasks
from webhooks.models import EventType, WebhookAttempt, WebhookEndpoint, WebhookEvent

pytestmark = pytest.mark.django_db

DATA = {"call": {"call_id": 7, "call_sid": "CA" + "7" * 32}}


def record(environment, type=EventType.CALL_ENDED, data=DATA):
    return services.event_record(workspace=environment.workspace, environment=environment, type=type, data=data)


def verified(secret, received):
    return Webhook(secret).verify(received.body, received.headers)


def make_due(event):
    """The backoff is over (instead of waiting for it)."""
    WebhookEvent.objects.filter(pk=event.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))


def test_the_receiver_verifies_the_delivery_with_the_standards_own_verifier(hook, environment,
                                                                           django_capture_on_commit_callbacks):
    rx, endpoint, secret = hook
    with django_capture_on_commit_callbacks(execute=True):
        [event] = record(environment)
    [got] = rx.requests
    payload = verified(secret, got)
    assert payload == {"type": "call.ended", "timestamp": event.payload["timestamp"], "data": DATA}
    assert got.headers["webhook-id"] == event.msg_id and got.headers["content-type"] == "application/json"
    assert got.path == "/hooks/callwell"
    with pytest.raises(WebhookVerificationError):  # a receiver with another secret refuses it
        Webhook(services.new_secret()).verify(got.body, got.headers)
    event.refresh_from_db()
    assert event.status == WebhookEvent.Status.DELIVERED and event.attempts == 1 and event.last_status_code == 200
    assert event.last_response == '{"ok":true}'


def test_an_endpoint_that_fails_twice_then_succeeds_gets_the_same_webhook_id(hook, environment,
                                                                            django_capture_on_commit_callbacks):
    rx, endpoint, secret = hook
    rx.answer(500, b"oops")
    rx.answer(503, b"busy" * 200)
    with django_capture_on_commit_callbacks(execute=True):
        [event] = record(environment)
    event.refresh_from_db()
    assert event.status == WebhookEvent.Status.PENDING and event.attempts == 1 and event.last_status_code == 500
    first_wait = event.next_attempt_at - timezone.now()
    assert timedelta(seconds=20) < first_wait <= timedelta(seconds=30)
    assert tasks.webhooks_sweep() == 0  # not due yet: nothing is sent
    assert len(rx.requests) == 1
    make_due(event)
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.webhooks_sweep() == 1
    event.refresh_from_db()
    assert event.attempts == 2 and event.last_status_code == 503 and len(event.last_response) == 500
    assert event.next_attempt_at - timezone.now() > first_wait  # exponential backoff
    make_due(event)
    with django_capture_on_commit_callbacks(execute=True):
        tasks.webhooks_sweep()
    event.refresh_from_db()
    assert event.status == WebhookEvent.Status.DELIVERED and event.attempts == 3
    assert [r.headers["webhook-id"] for r in rx.requests] == [event.msg_id] * 3
    assert all(verified(secret, r)["data"] == DATA for r in rx.requests)
    assert len({r.body for r in rx.requests}) == 1  # the same body each time
    assert [a.status_code for a in WebhookAttempt.objects.filter(event=event).order_by("id")] == [500, 503, 200]
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None and endpoint.enabled


def test_a_worker_killed_mid_delivery_leaves_the_event_to_be_delivered_again(hook, environment):
    rx, endpoint, secret = hook
    [event] = record(environment)  # not committed: no task ran
    assert services.event_claim(event_id=event.pk)  # a worker took it... and was killed before sending
    assert tasks.webhooks_sweep() == 0  # its lease still holds: nobody else sends it
    assert tasks.webhook_deliver(event.pk) == "skipped" and rx.requests == []
    WebhookEvent.objects.filter(pk=event.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert services.events_due() == [event.pk]
    assert tasks.webhooks_sweep() == 1
    event.refresh_from_db()
    assert event.status == WebhookEvent.Status.DELIVERED and event.attempts == 2
    assert len(rx.requests) == 1 and rx.requests[0].headers["webhook-id"] == event.msg_id


def test_duplicate_task_runs_deliver_once(hook, environment):
    rx, endpoint, secret = hook
    [event] = record(environment)
    assert [tasks.webhook_deliver(event.pk), tasks.webhook_deliver(event.pk)] == ["delivered", "skipped"]
    assert services.event_claim(event_id=event.pk) is False  # delivered: nobody can claim it again
    assert len(rx.requests) == 1 and WebhookAttempt.objects.filter(event=event).count() == 1


def test_two_workers_never_hold_the_same_event(hook, environment):
    rx, endpoint, secret = hook
    [event] = record(environment)
    assert [services.event_claim(event_id=event.pk), services.event_claim(event_id=event.pk)] == [True, False]


def test_the_outbox_row_is_rolled_back_with_the_change_that_caused_it(hook, environment,
                                                                     django_capture_on_commit_callbacks):
    rx, endpoint, secret = hook
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            record(environment)
            assert WebhookEvent.objects.count() == 1
            raise RuntimeError("the change failed")
    assert WebhookEvent.objects.count() == 0 and callbacks == [] and rx.requests == []


@override_settings(OUTBOUND_ALLOW_PRIVATE_TARGETS=False)
def test_a_private_target_is_refused_and_recorded_as_a_failure_in_plain_words(hook, environment):
    rx, endpoint, secret = hook
    [event] = record(environment)
    assert tasks.webhook_deliver(event.pk) == "retry"
    event.refresh_from_db()
    assert rx.requests == []
    assert event.last_error == "Not sent: Requests to 127.0.0.1 are refused: it is a loopback address."
    assert event.last_status_code is None and event.status == WebhookEvent.Status.PENDING
    endpoint.refresh_from_db()
    assert endpoint.failing_since is not None


@override_settings(OUTBOUND_ALLOW_PRIVATE_TARGETS=False)
def test_a_private_target_is_refused_when_the_endpoint_is_added(environment):
    with pytest.raises(services.WebhookError, match="loopback"):
        services.endpoint_create(environment=environment, url="http://127.0.0.1:9/x", events=["call.ended"])
    with pytest.raises(services.WebhookError, match="link-local"):
        services.endpoint_create(environment=environment, url="http://169.254.169.254/latest", events=["call.ended"])
    assert not WebhookEndpoint.objects.exists()


def test_redirects_are_not_followed(hook, environment, receiver):
    rx, endpoint, secret = hook
    elsewhere = receiver()
    rx.answer(307, b"", {"Location": elsewhere.url})
    [event] = record(environment)
    assert tasks.webhook_deliver(event.pk) == "retry"
    event.refresh_from_db()
    assert len(rx.requests) == 1 and elsewhere.requests == []
    assert event.last_status_code == 307 and "redirects are not followed" in event.last_error


def test_an_endpoint_failing_for_24_hours_is_disabled(hook, environment):
    rx, endpoint, secret = hook
    for _ in range(3):
        rx.answer(500)
    [event] = record(environment)
    assert tasks.webhook_deliver(event.pk) == "retry"
    endpoint.refresh_from_db()
    assert endpoint.enabled and endpoint.failing_since is not None
    # 24 hours (and a minute) of failures later:
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=timezone.now() - timedelta(hours=24, minutes=1))
    make_due(event)
    assert tasks.webhook_deliver(event.pk) == "retry"
    endpoint.refresh_from_db()
    assert not endpoint.enabled and endpoint.disabled_at is not None
    assert endpoint.disabled_reason.startswith("Disabled automatically: every delivery failed for 24 hours")
    assert "500" in endpoint.disabled_reason
    # A disabled endpoint gets nothing: no new events, and pending ones wait (they are not lost).
    assert record(environment) == []
    make_due(event)
    assert tasks.webhooks_sweep() == 0 and tasks.webhook_deliver(event.pk) == "skipped"
    assert len(rx.requests) == 2
    # Enabling it again sends what was waiting.
    services.endpoint_enable(endpoint=endpoint)
    assert tasks.webhooks_sweep() == 1
    event.refresh_from_db()
    assert event.status == WebhookEvent.Status.PENDING and len(rx.requests) == 3  # the third answer was a 500
    make_due(event)
    tasks.webhooks_sweep()
    event.refresh_from_db()
    assert event.status == WebhookEvent.Status.DELIVERED


def test_retries_stop_24_hours_after_the_event(hook, environment):
    rx, endpoint, secret = hook
    rx.answer(500)
    [event] = record(environment)
    WebhookEvent.objects.filter(pk=event.pk).update(retry_until=timezone.now() - timedelta(seconds=1))
    assert tasks.webhook_deliver(event.pk) == "failed"
    event.refresh_from_db()
    assert event.status == WebhookEvent.Status.FAILED and event.next_attempt_at is None
    assert tasks.webhooks_sweep() == 0
    # "Redeliver" sends it again, with the same webhook-id and a new 24-hour window.
    services.event_redeliver(event=event)
    assert tasks.webhook_deliver(event.pk) == "delivered"
    assert [r.headers["webhook-id"] for r in rx.requests] == [event.msg_id] * 2


def test_the_backoff_doubles_up_to_an_hour_and_covers_a_day():
    waits = [services.backoff(n) for n in range(1, 60)]
    assert waits[:4] == [30, 60, 120, 240] and max(waits) == 3600
    assert sum(waits) > 24 * 3600


def test_only_subscribed_enabled_endpoints_of_the_environment_get_the_event(environment, receiver, workspace):
    from agents.models import Environment
    from tests.agents.factories import EnvironmentFactory

    wants, other_events, disabled = receiver(), receiver(), receiver()
    services.endpoint_create(environment=environment, url=wants.url, events=["call.ended"])
    services.endpoint_create(environment=environment, url=other_events.url, events=["call.started"])
    off, _ = services.endpoint_create(environment=environment, url=disabled.url, events=["call.ended"])
    services.endpoint_disable(endpoint=off)
    staging = EnvironmentFactory(workspace=workspace, kind=Environment.Kind.STAGING)
    services.endpoint_create(environment=staging, url=receiver().url, events=["call.ended"])
    events = record(environment)
    assert [e.endpoint.url for e in events] == [wants.url]


def test_nobody_listening_costs_one_query(environment, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert record(environment) == []
    assert services.event_record(workspace=environment.workspace, environment=None, type="call.ended", data={}) == []


def test_payloads_are_json_with_type_timestamp_and_data(hook, environment):
    rx, endpoint, secret = hook
    [event] = record(environment, type=EventType.HANDOVER_STARTED, data={"x": "ü"})
    tasks.webhook_deliver(event.pk)
    body = json.loads(rx.requests[0].body)
    assert set(body) == {"type", "timestamp", "data"} and body["data"] == {"x": "ü"}
    assert body["timestamp"].endswith("Z")
    with pytest.raises(services.WebhookError):
        record(environment, type="call.exploded")


def test_a_broker_that_is_down_does_not_fail_the_change_and_the_sweeper_sends_later(
        hook, environment, django_capture_on_commit_callbacks, monkeypatch):
    rx, endpoint, secret = hook

    def broker_down(*args, **kwargs):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(tasks.webhook_deliver, "delay", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        [event] = record(environment)  # no exception reaches the caller
    assert rx.requests == []
    monkeypatch.undo()
    assert tasks.webhooks_sweep() == 1
    event.refresh_from_db()
    assert event.status == WebhookEvent.Status.DELIVERED and len(rx.requests) == 1


def test_the_claim_is_one_conditional_update_of_the_events_own_row(hook, environment):
    """Two workers racing: the UPDATE's WHERE names only the event's own columns, which the database re-checks on
    a row another transaction just claimed (a join would become `id IN (subquery)`, not re-checked)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    rx, endpoint, secret = hook
    [event] = record(environment)
    with CaptureQueriesContext(connection) as queries:
        assert services.event_claim(event_id=event.pk)
    [update] = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
    assert "SELECT" not in update and "JOIN" not in update and '"lease_until"' in update
