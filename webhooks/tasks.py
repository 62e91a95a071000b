"""Webhook delivery tasks: thin wrappers around webhooks.services.

`webhook_deliver` makes one attempt (the service claims the event with a lease, so a duplicate run or a second
worker does nothing); `webhooks_sweep` (Celery beat, every minute) hands out events that are due again and events
left "delivering" by a worker that died.
"""
from celery import shared_task

from webhooks import services
from webhooks.models import WebhookEvent


@shared_task(acks_late=True)
def webhook_deliver(event_id: int) -> str:
    try:
        return services.event_deliver(event_id=event_id)
    except WebhookEvent.DoesNotExist:  # the endpoint (and its events) was deleted meanwhile
        return "skipped"


@shared_task
def webhooks_sweep() -> int:
    ids = services.events_due()
    for event_id in ids:
        webhook_deliver.delay(event_id)
    return len(ids)
