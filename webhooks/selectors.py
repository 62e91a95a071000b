"""Reads of event webhooks (never the signing secret: the manager defers it)."""
from webhooks.models import WebhookAttempt, WebhookEndpoint, WebhookEvent

LOG_SIZE = 50


def endpoints_list(*, environment) -> list[WebhookEndpoint]:
    return list(WebhookEndpoint.objects.filter(workspace_id=environment.workspace_id, environment=environment))


def endpoint_get(*, environment, endpoint_id: int) -> WebhookEndpoint | None:
    return WebhookEndpoint.objects.filter(workspace_id=environment.workspace_id, environment=environment,
                                          pk=endpoint_id).first()


def event_get(*, endpoint, event_id: int) -> WebhookEvent | None:
    return WebhookEvent.objects.filter(workspace_id=endpoint.workspace_id, endpoint=endpoint, pk=event_id).first()


def delivery_log(*, endpoint, limit: int = LOG_SIZE) -> list[WebhookEvent]:
    """The endpoint's latest events, each with its attempts (two queries)."""
    events = list(WebhookEvent.objects.filter(workspace_id=endpoint.workspace_id, endpoint=endpoint)
                  .defer("payload")[:limit])
    attempts: dict[int, list[WebhookAttempt]] = {}
    for attempt in WebhookAttempt.objects.filter(event__in=[e.pk for e in events]):
        attempts.setdefault(attempt.event_id, []).append(attempt)
    for event in events:
        event.attempt_rows = attempts.get(event.pk, [])
    return events
