"""Issue 22 point 11: the delivery lease in the code is the one docs/webhooks.md states, and it outlasts the
longest attempt (so a slow live worker is never overtaken) without delaying a crashed worker's event for long."""
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from webhooks import services, tasks
from webhooks.models import WebhookEvent

DOCS = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


def test_the_documented_lease_is_the_codes_lease():
    stated = re.search(r"\*\*(\d+)-minute lease\*\*", DOCS.read_text())
    assert stated, "docs/webhooks.md states the lease as '**N-minute lease**'"
    assert timedelta(minutes=int(stated.group(1))) == services.LEASE


def test_the_lease_outlasts_twice_the_longest_attempt_and_recovery_stays_within_minutes():
    assert services.ATTEMPT_LIMIT >= timedelta(seconds=5 * services.TIMEOUT)
    assert services.LEASE >= 2 * services.ATTEMPT_LIMIT
    assert services.LEASE <= timedelta(minutes=2)  # + one sweep a minute: a crashed worker's event is retried in 3


@pytest.mark.django_db
def test_a_claim_holds_exactly_the_lease_then_the_sweeper_takes_the_event_again(hook, environment):
    from tests.webhooks.test_delivery import record

    rx, endpoint, secret = hook
    [event] = record(environment)
    now = timezone.now()
    assert services.event_claim(event_id=event.pk, now=now)  # a worker took it... and was killed
    event.refresh_from_db()
    assert event.lease_until == now + services.LEASE
    assert event.pk not in services.events_due(now=now + services.LEASE - timedelta(seconds=1))
    assert event.pk in services.events_due(now=now + services.LEASE)
    assert tasks.webhooks_sweep() == 0  # the real clock is still inside the lease: nobody else sends it
    event.refresh_from_db()
    assert event.status == WebhookEvent.Status.DELIVERING
