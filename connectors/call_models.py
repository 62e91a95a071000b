"""What Studio keeps about a call besides its transcript: recordings and supervisors' interventions.

Imported from `connectors.models` so Django sees these models in the `connectors` app.
"""
from django.conf import settings
from django.db import models


class CallRecording(models.Model):
    """A dual-channel recording Twilio made of a call (started by the runtime; filled in by its status callback)."""

    class Status(models.TextChoices):
        STARTING = "starting", "Starting"
        IN_PROGRESS = "in-progress", "Recording"
        PAUSED = "paused", "Paused"
        STOPPED = "stopped", "Stopped"
        COMPLETED = "completed", "Completed"
        ABSENT = "absent", "Absent (no audio)"
        FAILED = "failed", "Failed"

    # Callbacks can arrive out of order or repeated: a status only ever moves to a higher rank.
    RANK = {"starting": 0, "in-progress": 1, "paused": 1, "stopped": 2, "completed": 3, "absent": 3, "failed": 3}
    FINAL = {"completed", "absent", "failed"}

    call_session = models.ForeignKey("connectors.CallSession", on_delete=models.CASCADE, related_name="recordings")
    recording_sid = models.CharField(max_length=64, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.IN_PROGRESS)
    duration = models.PositiveIntegerField(null=True, blank=True, help_text="Seconds.")
    channels = models.PositiveSmallIntegerField(null=True, blank=True)
    source = models.CharField(max_length=40, blank=True)
    error_code = models.CharField(max_length=16, blank=True)
    recording_started_at = models.DateTimeField(null=True, blank=True)
    callbacks = models.PositiveIntegerField(default=0, help_text="Status callbacks received (retries included).")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["created_at"], name="callrecording_created")]

    def __str__(self) -> str:
        return f"{self.recording_sid} ({self.status})"

    @property
    def playable(self) -> bool:
        return self.status == self.Status.COMPLETED


class CallIntervention(models.Model):
    """A supervisor acted on a live call: who, when, what, and what came of it."""

    class Kind(models.TextChoices):
        TAKEOVER = "takeover", "Took over (handover action)"
        TRANSFER = "transfer", "Transferred to a number"
        INSTRUCTION = "instruction", "Instructed the agent"
        END = "end", "Ended the call"

    call_session = models.ForeignKey("connectors.CallSession", on_delete=models.CASCADE,
                                     related_name="interventions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                             related_name="call_interventions")
    username = models.CharField(max_length=150, help_text="Who, kept if the user is deleted.")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    detail = models.TextField(blank=True, help_text="The action name, the number, or the instruction.")
    result = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.username}: {self.get_kind_display()} {self.detail[:40]}"
