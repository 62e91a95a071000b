"""Writes of event webhooks: endpoints, the outbox, delivery.

- `event_record` writes one outbox row per enabled endpoint of the environment that wants the event type, in the
  caller's transaction (a rolled-back change leaves no event), and enqueues delivery on commit.
- `event_deliver` claims the row with a lease (a conditional UPDATE: two workers never send the same event at
  once), signs it (Standard Webhooks, the `standardwebhooks` package), sends it through the outbound guard
  without following redirects, and records the attempt. A 2xx answer is a delivery; anything else is retried with
  exponential backoff, with the same `webhook-id`, until 24 hours after the event. An endpoint failing for
  24 hours is disabled with a visible reason.
- A worker killed mid-delivery leaves the row "delivering" with a lease that runs out; `events_due` (the
  periodic sweeper) hands it out again.

Payloads carry ids, numbers, times and outcomes of the call, never a secret (see docs/webhooks.md).
"""
from __future__ import annotations

import base64
import json
import logging
import secrets as secrets_lib
import time
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import httpx
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from standardwebhooks import Webhook

from webhooks.models import TEST_EVENT, EventSequence, EventType, WebhookAttempt, WebhookEndpoint, WebhookEvent
from workspaces import outbound

logger = logging.getLogger("webhooks")

TIMEOUT = 10.0
# The longest one attempt can hold its claim: connect, send, the first byte of the answer (each at most TIMEOUT),
# then reading the start of the body (a TIMEOUT deadline, plus at most one more read of TIMEOUT).
ATTEMPT_LIMIT = timedelta(seconds=5 * TIMEOUT)
# Twice that (docs/webhooks.md): a slow but live worker is never overtaken (the outbound guard's name lookup
# fits in the margin), and a killed worker's event goes out again within the lease plus one sweep (3 minutes).
LEASE = timedelta(minutes=2)
RETRY_WINDOW = timedelta(hours=24)
DISABLE_AFTER = timedelta(hours=24)
FIRST_RETRY = 30  # seconds; then doubling, at most an hour apart
MAX_BACKOFF = 3600
RESPONSE_BYTES = 500
SWEEP_BATCH = 500
USER_AGENT = "Callwell-Webhooks/1"


class WebhookError(Exception):
    """Bad input to a webhook service (message in plain words)."""


def _id(value) -> int | None:
    return getattr(value, "pk", value)


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets_lib.token_bytes(24)).decode()


def new_msg_id() -> str:
    return "msg_" + secrets_lib.token_urlsafe(18)


def backoff(attempts: int) -> int:
    """Seconds before the next attempt after `attempts` failures: 30 s, 1 min, 2 min … at most an hour."""
    return min(MAX_BACKOFF, FIRST_RETRY * 2 ** max(0, attempts - 1))


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(dt_timezone.utc).isoformat().replace("+00:00", "Z") if value else None


def body_of(event: WebhookEvent) -> str:
    """The request body: the same bytes on every attempt."""
    return json.dumps(event.payload, separators=(",", ":"), ensure_ascii=False)


# ---------------------------------------------------------------------------
# Event data (built from the callers' rows by attribute; this app does not import calls or connectors)


def call_data(session) -> dict:
    version = getattr(session, "agent_version", None) if session.agent_version_id else None
    started, ended = session.started_at, session.ended_at
    return {
        "call_id": session.pk,
        "call_sid": session.call_sid,
        "direction": session.direction,
        "from": session.from_number,
        "to": session.to_number,
        "status": session.status,
        # Outbound agent calls: who answered (Twilio's AnsweredBy) and how the call ended (e.g. voicemail_left).
        "answered_by": getattr(session, "answered_by", "") or None,
        "outcome": getattr(session, "outcome", "") or None,
        "agent_id": version.agent_id if version else None,
        "agent_version": version.number if version else None,
        "connector_id": session.connector_id,
        "started_at": _iso(started),
        "ended_at": _iso(ended),
        "duration_seconds": int((ended - started).total_seconds()) if started and ended else None,
    }


def handover_data(handover) -> dict:
    return {
        "handover_id": handover.pk,
        "action": handover.action_name,
        "destination": handover.destination,
        "transport": handover.transport,
        "kind": handover.kind,
        "destinations": [dict(a) for a in handover.attempts] if handover.attempts else [
            {"destination": handover.destination, "outcome": handover.outcome}],
        "requested_at": _iso(handover.requested_at),
        "outcome": handover.outcome,
        "outcome_at": _iso(handover.outcome_at),
        "dial_duration_seconds": handover.dial_duration,
        "fallback": handover.fallback,
    }


def recording_data(recording) -> dict:
    return {
        "recording_id": recording.pk,
        "recording_sid": recording.recording_sid,
        "status": recording.status,
        "duration_seconds": recording.duration,
        "channels": recording.channels,
    }


def call_event_record(*, session, type: str, **sections) -> list[WebhookEvent]:
    """`event_record` for a call session: nothing when the call went through no environment. `data` is
    {"call": {...}} plus the given sections (e.g. handover=handover_data(h)); the body's `sequence` numbers the
    call's events in the order they happened."""
    if not session.environment_id:
        return []
    call = call_data(session)
    if type == EventType.CALL_STARTED and call["status"] in ("", "queued", "ringing"):
        # Twilio asks for the answer while the call still rings; by the time the event is sent, the agent has
        # answered it.
        call["status"] = "in-progress"
    return event_record(workspace=session.workspace_id, environment=session.environment_id, type=type,
                        data={"call": call, **sections}, call_sid=session.call_sid or "")


def _call_sequence_next(*, workspace_id: int, call_sid: str) -> int:
    """The next number of the call's events, in the caller's transaction: the UPDATE holds the row until it
    commits, so two events of one call recorded at once get 1 and 2, never the same number."""
    key = {"workspace_id": workspace_id, "call_sid": call_sid}
    if not EventSequence.objects.filter(**key).update(last=F("last") + 1):
        try:
            with transaction.atomic():
                EventSequence.objects.create(**key, last=1)
            return 1
        except IntegrityError:  # another transaction made the row first
            EventSequence.objects.filter(**key).update(last=F("last") + 1)
    return EventSequence.objects.filter(**key).values_list("last", flat=True).get()


# ---------------------------------------------------------------------------
# The outbox


def _enqueue_on_commit(event_ids: list[int]) -> None:
    if not event_ids:
        return
    from webhooks import tasks

    # robust: a broker that is down must not fail the change that was just committed (the call, the handover);
    # the sweeper sends the events later.
    transaction.on_commit(lambda: [tasks.webhook_deliver.delay(pk) for pk in event_ids], robust=True)


def _event_row(*, endpoint_id: int, workspace_id: int, type: str, payload: dict, now) -> WebhookEvent:
    return WebhookEvent(workspace_id=workspace_id, endpoint_id=endpoint_id, type=type, msg_id=new_msg_id(),
                        payload=payload, retry_until=now + RETRY_WINDOW)


def event_record(*, workspace, environment, type: str, data: dict, call_sid: str = "") -> list[WebhookEvent]:
    """One outbox row per enabled endpoint of `environment` subscribed to `type`, written in the caller's
    transaction; delivery is enqueued when it commits. One query when nobody listens, two otherwise (plus the
    call's sequence number when `call_sid` is given: the body's `sequence`)."""
    if type not in EventType.values:
        raise WebhookError(f"{type} is not an event type.")
    environment_id, workspace_id = _id(environment), _id(workspace)
    if environment_id is None:
        return []
    endpoints = WebhookEndpoint.objects.filter(workspace_id=workspace_id, environment_id=environment_id,
                                               enabled=True).values_list("pk", "events")
    wanted = [pk for pk, events in endpoints if type in (events or [])]
    if not wanted:
        return []
    now = timezone.now()
    payload = {"type": type, "timestamp": _iso(now), "data": data}
    if call_sid:
        payload["sequence"] = _call_sequence_next(workspace_id=workspace_id, call_sid=call_sid)
    rows = WebhookEvent.objects.bulk_create([
        _event_row(endpoint_id=pk, workspace_id=workspace_id, type=type, payload=payload, now=now) for pk in wanted])
    ids = [row.pk for row in rows]
    if None in ids:  # a backend that does not return ids from bulk_create
        ids = list(WebhookEvent.objects.filter(msg_id__in=[r.msg_id for r in rows]).values_list("pk", flat=True))
    _enqueue_on_commit(ids)
    return rows


@transaction.atomic
def event_send_test(*, endpoint: WebhookEndpoint) -> WebhookEvent:
    """A `webhook.test` event to this endpoint alone (whatever it subscribes to)."""
    if not endpoint.enabled:
        raise WebhookError("Enable the endpoint first: a disabled endpoint receives nothing.")
    now = timezone.now()
    payload = {"type": TEST_EVENT, "timestamp": _iso(now),
               "data": {"message": "A test event from Callwell Studio.", "environment": endpoint.environment.kind,
                        "endpoint_id": endpoint.pk}}
    event = _event_row(endpoint_id=endpoint.pk, workspace_id=endpoint.workspace_id, type=TEST_EVENT,
                       payload=payload, now=now)
    event.save()
    _enqueue_on_commit([event.pk])
    return event


@transaction.atomic
def event_redeliver(*, event: WebhookEvent) -> WebhookEvent:
    """Send the event again (same `webhook-id`, so a receiver that has it already can drop it), with a new
    24-hour retry window."""
    if not WebhookEndpoint.objects.filter(pk=event.endpoint_id, enabled=True).exists():
        raise WebhookError("Enable the endpoint first: a disabled endpoint receives nothing.")
    now = timezone.now()
    WebhookEvent.objects.filter(pk=event.pk).exclude(status=WebhookEvent.Status.DELIVERING).update(
        status=WebhookEvent.Status.PENDING, next_attempt_at=None, lease_until=None, retry_until=now + RETRY_WINDOW,
        updated_at=now)
    _enqueue_on_commit([event.pk])
    event.refresh_from_db()
    return event


# ---------------------------------------------------------------------------
# Endpoints


@transaction.atomic
def endpoint_create(*, environment, url: str, events: list[str], description: str = "") -> tuple[WebhookEndpoint, str]:
    """The new endpoint and its signing secret (the only time the secret is handed out in clear)."""
    reason = outbound.url_refusal(url)
    if reason:
        raise WebhookError(reason)
    unknown = [e for e in events if e not in EventType.values]
    if unknown or not events:
        raise WebhookError("Choose at least one event." if not events else f"Unknown events: {', '.join(unknown)}.")
    secret = new_secret()
    endpoint = WebhookEndpoint.objects.create(
        workspace_id=environment.workspace_id, environment=environment, url=url, description=description[:120],
        events=[e for e in EventType.values if e in events], secret=secret)
    logger.info("webhook endpoint created", extra={"endpoint_id": endpoint.pk, "environment_id": environment.pk})
    return endpoint, secret


@transaction.atomic
def endpoint_enable(*, endpoint: WebhookEndpoint) -> None:
    """Enable (again): the failure clock restarts and events still pending are sent."""
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(enabled=True, disabled_at=None, disabled_reason="",
                                                          failing_since=None)
    pending = list(WebhookEvent.objects.filter(endpoint_id=endpoint.pk, status__in=[
        WebhookEvent.Status.PENDING, WebhookEvent.Status.DELIVERING]).values_list("pk", flat=True))
    _enqueue_on_commit(pending)


def endpoint_disable(*, endpoint: WebhookEndpoint, reason: str = "") -> None:
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(enabled=False, disabled_at=timezone.now(),
                                                          disabled_reason=reason[:255])


def endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    WebhookEndpoint.objects.filter(pk=endpoint.pk).delete()


# ---------------------------------------------------------------------------
# Delivery


def event_claim(*, event_id: int, now=None) -> bool:
    """Take the event for one attempt: a single conditional UPDATE, so of two workers exactly one wins. A claim
    whose lease ran out (its worker died) can be taken again."""
    now = now or timezone.now()
    if not WebhookEvent.objects.filter(pk=event_id, endpoint__enabled=True).exists():
        return False
    # Conditions on the event's own row only: the UPDATE re-checks them on the row a concurrent claim just
    # changed (a join would turn it into `id IN (subquery)`, which PostgreSQL does not re-check).
    claimed = (WebhookEvent.objects
               .filter(pk=event_id, status__in=[WebhookEvent.Status.PENDING, WebhookEvent.Status.DELIVERING])
               .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
               .filter(Q(lease_until__isnull=True) | Q(lease_until__lte=now))
               .update(status=WebhookEvent.Status.DELIVERING, lease_until=now + LEASE, attempts=F("attempts") + 1,
                       updated_at=now))
    return claimed == 1


def _read_start(response: httpx.Response) -> str:
    """The first 500 bytes of the answer, read for at most TIMEOUT seconds (a receiver trickling bytes does not
    hold the worker)."""
    chunk, deadline = b"", time.monotonic() + TIMEOUT
    for part in response.iter_bytes():
        chunk += part
        if len(chunk) >= RESPONSE_BYTES or time.monotonic() > deadline:
            break
    return chunk[:RESPONSE_BYTES].decode("utf-8", errors="replace")[:RESPONSE_BYTES]


def send(*, url: str, secret: str, msg_id: str, body: str) -> tuple[int | None, str, str]:
    """POST the signed body once. (status code or None, first 500 bytes of the answer, error in plain words)."""
    now = datetime.now(dt_timezone.utc)
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, now, body),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }
    try:
        with outbound.client(timeout=TIMEOUT, follow_redirects=False) as http:
            with http.stream("POST", url, content=body.encode("utf-8"), headers=headers) as response:
                code, text = response.status_code, _read_start(response)
    except outbound.OutboundRefused as exc:
        return None, "", f"Not sent: {exc}"
    except httpx.TimeoutException:
        return None, "", f"No answer within {TIMEOUT:g} seconds."
    except httpx.HTTPError as exc:
        return None, "", f"Could not connect: {exc or type(exc).__name__}."[:255]
    if 300 <= code < 400:
        return code, text, (f"The endpoint answered with a redirect ({code}); redirects are not followed: "
                            "use the final URL.")
    if not 200 <= code < 300:
        return code, text, f"The endpoint answered {code}."
    return code, text, ""


def event_deliver(*, event_id: int) -> str:
    """One delivery attempt, if the event is due and nobody else holds it. Returns what happened:
    "delivered", "retry", "failed" or "skipped"."""
    if not event_claim(event_id=event_id):
        return "skipped"
    event = WebhookEvent.objects.select_related("endpoint").get(pk=event_id)
    endpoint = event.endpoint
    started = time.monotonic()
    code, text, error = send(url=endpoint.url, secret=endpoint.secret, msg_id=event.msg_id, body=body_of(event))
    del endpoint.secret  # not kept beyond the attempt
    duration_ms = int((time.monotonic() - started) * 1000)
    outcome = attempt_record(event_id=event_id, status_code=code, response=text, error=error,
                             duration_ms=duration_ms)
    log = logger.info if outcome == "delivered" else logger.warning
    log("webhook attempt", extra={"event_id": event_id, "endpoint_id": event.endpoint_id, "type": event.type,
                                  "outcome": outcome, "status_code": code, "error": error})
    return outcome


@transaction.atomic
def attempt_record(*, event_id: int, status_code: int | None, response: str, error: str,
                   duration_ms: int = 0, now=None) -> str:
    """Record an attempt's result on the event and its endpoint."""
    now = now or timezone.now()
    event = WebhookEvent.objects.select_for_update().get(pk=event_id)
    WebhookAttempt.objects.create(event_id=event_id, status_code=status_code, response=response[:RESPONSE_BYTES],
                                  error=error[:255], duration_ms=duration_ms)
    event.last_status_code, event.last_response, event.last_error = status_code, response[:RESPONSE_BYTES], error[:255]
    event.lease_until = None
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=event.endpoint_id)
    if not error:
        event.status, event.delivered_at, event.next_attempt_at = WebhookEvent.Status.DELIVERED, now, None
        outcome = "delivered"
        if endpoint.failing_since is not None:
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=None)
    else:
        if now >= event.retry_until:
            event.status, event.next_attempt_at = WebhookEvent.Status.FAILED, None
            outcome = "failed"
        else:
            event.status = WebhookEvent.Status.PENDING
            event.next_attempt_at = now + timedelta(seconds=backoff(event.attempts))
            outcome = "retry"
        failing_since = endpoint.failing_since or now
        if endpoint.failing_since is None:
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=now)
        if endpoint.enabled and now - failing_since >= DISABLE_AFTER:
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
                enabled=False, disabled_at=now,
                disabled_reason=(f"Disabled automatically: every delivery failed for 24 hours "
                                 f"(last: {error})")[:255])
            logger.warning("webhook endpoint disabled", extra={"endpoint_id": endpoint.pk})
    event.save(update_fields=["status", "delivered_at", "next_attempt_at", "lease_until", "last_status_code",
                              "last_response", "last_error", "updated_at"])
    if outcome == "retry":
        from webhooks import tasks

        delay = backoff(event.attempts)
        transaction.on_commit(lambda: tasks.webhook_deliver.apply_async((event_id,), countdown=delay), robust=True)
    return outcome


def events_due(*, now=None, limit: int = SWEEP_BATCH) -> list[int]:
    """Events a worker should attempt now: pending and due, or claimed by a worker whose lease ran out."""
    now = now or timezone.now()
    return list(WebhookEvent.objects
                .filter(endpoint__enabled=True,
                        status__in=[WebhookEvent.Status.PENDING, WebhookEvent.Status.DELIVERING])
                .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
                .filter(Q(lease_until__isnull=True) | Q(lease_until__lte=now))
                .order_by("next_attempt_at", "id").values_list("pk", flat=True)[:limit])
