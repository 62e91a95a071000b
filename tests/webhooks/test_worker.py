"""A real Celery worker killed (SIGKILL) in the middle of a delivery: the event stays "delivering" under its lease,
and once the lease is over the sweeper hands it to another worker, which delivers it with the same webhook-id."""
import os
import signal
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from standardwebhooks import Webhook

from tests.fixtures_celery import wait_for
from webhooks import services, tasks
from webhooks.models import EventType, WebhookEvent


@pytest.mark.worker
def test_a_worker_killed_mid_delivery_leaves_the_event_to_another_worker(celery_worker, environment, receiver):
    rx = receiver()
    rx.answer(0)  # the first request hangs: the worker is killed while it waits for the answer
    endpoint, secret = services.endpoint_create(environment=environment, url=rx.url, events=EventType.values)
    first = celery_worker()
    with transaction.atomic():
        [event] = services.event_record(workspace=environment.workspace, environment=environment,
                                        type=EventType.CALL_ENDED, data={"call": {"call_id": 1}})
    assert rx.arrived.wait(30), first.log()
    os.killpg(first.popen.pid, signal.SIGKILL)
    first.popen.wait(10)
    event.refresh_from_db()
    assert event.status == WebhookEvent.Status.DELIVERING and event.attempts == 1
    assert event.lease_until > timezone.now()
    rx.release.set()
    # The lease runs out (instead of waiting its two minutes); beat's sweeper hands the event to a new worker.
    WebhookEvent.objects.filter(pk=event.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    second = celery_worker()
    tasks.webhooks_sweep()
    wait_for(lambda: WebhookEvent.objects.get(pk=event.pk).status == WebhookEvent.Status.DELIVERED,
             message="the redelivery", timeout=30)
    ids = [r.headers["webhook-id"] for r in rx.requests]
    assert ids == [event.msg_id, event.msg_id], second.log()
    assert Webhook(secret).verify(rx.requests[1].body, rx.requests[1].headers)["type"] == "call.ended"
