"""What the live-call runtime records on a call session: handovers (with their outcome) and transcript turns.

Imported from `connectors.models` so Django sees these models in the `connectors` app.
"""
from django.db import models


class CallHandover(models.Model):
    """One handover the agent made on a call: action, destination, time, outcome."""

    class Outcome(models.TextChoices):
        PENDING = "pending", "Dialling"
        ANSWERED = "answered", "Answered"
        BUSY = "busy", "Busy"
        NO_ANSWER = "no-answer", "No answer"
        FAILED = "failed", "Failed"
        CALLER_GONE = "caller-gone", "Caller had hung up"
        NOT_REDIRECTED = "not-redirected", "Could not redirect the call"

    class Transport(models.TextChoices):
        MEDIA_STREAMS = "media_streams", "Media Streams"
        CONVERSATION_RELAY = "conversation_relay", "ConversationRelay"

    call_session = models.ForeignKey("connectors.CallSession", on_delete=models.CASCADE, related_name="handovers")
    action_name = models.CharField(max_length=64)
    destination = models.CharField(max_length=20)
    transport = models.CharField(max_length=24, choices=Transport.choices)
    requested_at = models.DateTimeField(auto_now_add=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.PENDING)
    outcome_at = models.DateTimeField(null=True, blank=True)
    dial_call_sid = models.CharField(max_length=64, blank=True)
    dial_duration = models.PositiveIntegerField(null=True, blank=True)
    # What happened after a failed dial ("hangup", "agent", "action:<name>"), and the TwiML we answered the
    # Dial's action callback with: a retried callback gets the same answer and changes nothing.
    fallback = models.CharField(max_length=80, blank=True)
    answer_twiml = models.TextField(blank=True)
    detail = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["requested_at", "id"]

    def __str__(self) -> str:
        return f"{self.action_name} → {self.destination} ({self.get_outcome_display()})"


class CallTurn(models.Model):
    """A turn of the conversation. `heard=False`: the caller interrupted; `text` is what they actually heard."""

    class Role(models.TextChoices):
        AGENT = "agent", "Agent"
        CALLER = "caller", "Caller"
        EVENT = "event", "Event"  # handovers, hang-ups, supervisor interventions, in line with the words

    call_session = models.ForeignKey("connectors.CallSession", on_delete=models.CASCADE, related_name="turns")
    seq = models.PositiveIntegerField()
    role = models.CharField(max_length=8, choices=Role.choices)
    text = models.TextField(blank=True)
    heard = models.BooleanField(default=True)
    # When the turn started (the first words/audio of it); stored as the call goes.
    started_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["call_session_id", "seq"]
        constraints = [models.UniqueConstraint(fields=["call_session", "seq"], name="uniq_call_turn_seq")]

    def __str__(self) -> str:
        return f"{self.role}: {self.text[:40]}"
