"""Event webhooks: the company's endpoints per environment, and the outbox of events to deliver to them.

An event is written (one `WebhookEvent` row per subscribed endpoint) in the same transaction as the change that
caused it; a Celery task delivers it, signed per the Standard Webhooks specification, and retries it with the same
`webhook-id` for 24 hours. `WebhookAttempt` rows are the delivery log Studio shows.
"""
from urllib.parse import urlsplit, urlunsplit

from django.db import models

from agents.models import Environment
from workspaces.fields import EncryptedTextField
from workspaces.models import Workspace


class EventType(models.TextChoices):
    CALL_STARTED = "call.started", "call.started: an agent answered a call"
    CALL_ENDED = "call.ended", "call.ended: the agent's part of the call is over"
    CALL_ANALYZED = "call.analyzed", "call.analyzed: the post-call analysis is ready"
    HANDOVER_STARTED = "handover.started", "handover.started: the agent hands the call over"
    HANDOVER_COMPLETED = "handover.completed", "handover.completed: the handover's outcome is known"
    HANDOVER_ATTEMPTED = "handover.attempted", ("handover.attempted: a warm transfer's destination rang, heard the "
                                                "brief, took, declined or missed the call")
    RECORDING_READY = "recording.ready", "recording.ready: the call's recording is complete"
    CAMPAIGN_STARTED = "campaign.started", "campaign.started: a campaign started dialling its list"
    CAMPAIGN_PAUSED = "campaign.paused", "campaign.paused: a campaign was paused"
    CAMPAIGN_RESUMED = "campaign.resumed", "campaign.resumed: a paused campaign goes on"
    CAMPAIGN_CANCELLED = "campaign.cancelled", "campaign.cancelled: a campaign was cancelled"
    CAMPAIGN_COMPLETED = "campaign.completed", "campaign.completed: every contact of a campaign is finished"
    CAMPAIGN_CONTACT_FINISHED = "campaign.contact_finished", "campaign.contact_finished: a contact's final outcome"


TEST_EVENT = "webhook.test"


class EndpointManager(models.Manager):
    """The signing secret is loaded (and decrypted) only when code reads `endpoint.secret`: pages listing
    endpoints never hold it."""

    def get_queryset(self):
        return super().get_queryset().defer("secret")


class WebhookEndpoint(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="webhook_endpoints")
    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=500)
    description = models.CharField(max_length=120, blank=True)
    events = models.JSONField(default=list, help_text="Event types this endpoint receives.")
    enabled = models.BooleanField(default=True)
    # `whsec_` + base64 of 24 random bytes; shown once, when the endpoint is created.
    secret = EncryptedTextField()
    # The first failure since the last success; 24 hours of failures disable the endpoint.
    failing_since = models.DateTimeField(null=True, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = EndpointManager()

    class Meta:
        ordering = ["created_at", "id"]
        base_manager_name = "objects"

    def __str__(self) -> str:
        return self.display_url

    @property
    def display_url(self) -> str:
        """The URL as pages show it: credentials typed into it (https://user:password@host/, https://token@host/)
        are masked."""
        try:
            parts = urlsplit(self.url)
            port = parts.port
        except ValueError:
            return self.url
        if parts.username is None and parts.password is None:
            return self.url
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host
        userinfo = "••••" if parts.password is None else f"{parts.username}:••••"
        netloc = f"{userinfo}@{host}" + (f":{port}" if port else "")
        return urlunsplit(parts._replace(netloc=netloc))

    def event_labels(self) -> list[str]:
        return [e for e in EventType.values if e in self.events]


class WebhookEvent(models.Model):
    """One event for one endpoint (the outbox row). `msg_id` is the `webhook-id` header, the same on every
    attempt, so receivers can drop duplicates."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERING = "delivering", "Delivering"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    type = models.CharField(max_length=40)
    msg_id = models.CharField(max_length=40, unique=True)
    payload = models.JSONField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # A worker that claimed the event holds it until then; a worker killed mid-delivery leaves it to the sweeper.
    lease_until = models.DateTimeField(null=True, blank=True)
    retry_until = models.DateTimeField()
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_response = models.CharField(max_length=500, blank=True, help_text="The first 500 bytes of the answer.")
    last_error = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="webhookevent_due"),
                   models.Index(fields=["endpoint", "-created_at"], name="webhookevent_endpoint_log")]

    def __str__(self) -> str:
        return f"{self.type} {self.msg_id}"


class EventSequence(models.Model):
    """The last sequence number given to the events of one call (per workspace): `call.sequence` in each event's
    body counts 1, 2, 3 … in the order the events happened, so a receiver can put events that arrive out of order
    (deliveries run in parallel and retry) back in order."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    call_sid = models.CharField(max_length=64)
    last = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "call_sid"], name="eventsequence_one_per_call")]

    def __str__(self) -> str:
        return f"{self.call_sid} #{self.last}"


class WebhookAttempt(models.Model):
    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="attempt_log")
    attempted_at = models.DateTimeField(auto_now_add=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response = models.CharField(max_length=500, blank=True)
    error = models.CharField(max_length=255, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-attempted_at", "-id"]

    def __str__(self) -> str:
        return f"{self.event_id} {self.status_code or self.error}"

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300
