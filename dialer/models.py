"""Browser-dialer calls: one Call per Twilio CallSid of the parent call, its dialed legs, voicemails."""
from django.conf import settings
from django.db import models
from django.utils import timezone

from workspaces.models import Workspace


class Call(models.Model):
    """A call through the workspace's dialer. Status only moves forward (see `Status.rank`): a retried or late
    status callback never moves a final status back."""

    class Direction(models.TextChoices):
        OUTBOUND = "outbound", "Outbound"
        INBOUND = "inbound", "Inbound"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        INITIATED = "initiated", "Initiated"
        RINGING = "ringing", "Ringing"
        IN_PROGRESS = "in-progress", "In progress"
        COMPLETED = "completed", "Completed"
        BUSY = "busy", "Busy"
        NO_ANSWER = "no-answer", "No answer"
        FAILED = "failed", "Failed"
        CANCELED = "canceled", "Canceled"
        REFUSED = "refused", "Refused"

        @classmethod
        def rank(cls, value: str) -> int:
            return {"queued": 0, "initiated": 0, "ringing": 1, "in-progress": 2, "answered": 2}.get(value, 3)

        @classmethod
        def is_final(cls, value: str) -> bool:
            return cls.rank(value) >= 3

    class Refusal(models.TextChoices):
        """Why we did not connect a call (the code is stored; the spoken message is `dialer.services.REFUSAL_SPOKEN`)."""

        NOT_MEMBER = "not_member", "The caller is not a member of this workspace"
        BAD_NUMBER = "bad_number", "The dialed number is not valid"
        CALLER_ID_NOT_USABLE = "caller_id_not_usable", "The caller ID is not owned or verified by the workspace"
        NO_CALLER_ID = "no_caller_id", "The workspace has no usable caller ID"
        UNKNOWN_NUMBER = "unknown_number", "The called number is not the workspace's"
        DO_NOT_CALL = "do_not_call", "The dialed number is on the workspace's do-not-call list"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="calls")
    sid = models.CharField("CallSid", max_length=34, unique=True)
    direction = models.CharField(max_length=10, choices=Direction.choices)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                             related_name="dialer_calls", help_text="The rep who placed or answered the call.")
    from_number = models.CharField(max_length=64, blank=True)
    to_number = models.CharField(max_length=64, blank=True)
    caller_id = models.CharField(max_length=20, blank=True, help_text="The number shown to the callee (outbound).")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.INITIATED)
    refusal_reason = models.CharField(max_length=255, blank=True, choices=Refusal.choices)
    started_at = models.DateTimeField(default=timezone.now)
    answered_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    duration = models.PositiveIntegerField(null=True, blank=True, help_text="Seconds talking (or of the call).")
    # After the call the rep picks a disposition and writes notes (any dialer call; campaigns' calls too).
    disposition = models.ForeignKey("dialer.Disposition", on_delete=models.PROTECT, null=True, blank=True,
                                    related_name="+")
    notes = models.TextField(blank=True)
    voicemail_dropped_at = models.DateTimeField(null=True, blank=True)
    # A caller an agent handed over to the dialer's reps (kind "reps"): the agent's call this rep took.
    agent_call = models.ForeignKey("calls.CallSession", on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="rep_calls", help_text="The agent call handed over to this rep.")
    conference_name = models.CharField(max_length=64, blank=True, help_text=(
        "Set when a supervisor's coaching moved the call into a Twilio conference (dialer/coaching.py)."))
    conference_sid = models.CharField(max_length=34, blank=True)
    # A supervisor's own browser call into another call's conference (dialer/coaching.py): not a call with a
    # customer, so it stays out of the call log, its export and the reps' analytics (see `Call.customer_calls`).
    coached_call = models.ForeignKey("self", on_delete=models.CASCADE, null=True, blank=True,
                                     related_name="coaching_calls",
                                     help_text="Set on a supervisor's coaching call: the call it listened to.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [
            models.Index(fields=["workspace", "-started_at"], name="dialer_call_ws_started"),
            models.Index(fields=["workspace", "status"], name="dialer_call_ws_status"),
            models.Index(fields=["workspace", "user"], name="dialer_call_ws_user"),
        ]

    def __str__(self) -> str:
        return f"{self.get_direction_display()} {self.from_number} → {self.to_number} ({self.get_status_display()})"

    @property
    def is_final(self) -> bool:
        return self.Status.is_final(self.status)

    @classmethod
    def customer_calls(cls):
        """Calls with a customer: every call but supervisors' coaching calls."""
        return cls.objects.filter(coached_call__isnull=True)


class CallLeg(models.Model):
    """A leg Twilio dialed for a Call (`<Dial><Number>` or `<Dial><Client>`), with its own CallSid."""

    class Kind(models.TextChoices):
        NUMBER = "number", "Number"
        CLIENT = "client", "Browser dialer"

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="legs")
    sid = models.CharField("CallSid", max_length=34, unique=True)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    from_number = models.CharField(max_length=64, blank=True)
    to_number = models.CharField(max_length=64, blank=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                             related_name="+")
    status = models.CharField(max_length=12, choices=Call.Status.choices, default=Call.Status.INITIATED)
    started_at = models.DateTimeField(default=timezone.now)
    answered_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    duration = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["started_at", "id"]

    def __str__(self) -> str:
        return f"{self.sid} → {self.to_number} ({self.get_status_display()})"


class Voicemail(models.Model):
    """A recording left on an unanswered inbound call."""

    class Status(models.TextChoices):
        IN_PROGRESS = "in-progress", "Recording"
        COMPLETED = "completed", "Completed"
        ABSENT = "absent", "Absent (silence)"
        FAILED = "failed", "Failed"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="voicemails")
    call = models.ForeignKey(Call, on_delete=models.CASCADE, null=True, blank=True, related_name="voicemails")
    recording_sid = models.CharField(max_length=34, unique=True)
    call_sid = models.CharField(max_length=34, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.IN_PROGRESS)
    duration = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Voicemail {self.recording_sid} ({self.get_status_display()})"


class Disposition(models.Model):
    """What came of a call, picked by the rep after it (a workspace list, Settings → Dialer). `outcome` is what a
    campaign counts it as (its retry rules apply: no answer, busy and voicemail may be retried)."""

    class Outcome(models.TextChoices):
        ANSWERED = "answered", "Answered (finished)"
        VOICEMAIL = "voicemail", "Voicemail (retry rule for voicemail)"
        NO_ANSWER = "no_answer", "No answer (retry rule for no answer)"
        BUSY = "busy", "Busy (retry rule for busy)"
        FAILED = "failed", "Failed (finished, not called again)"

    # The seeded list: (key, name, outcome). `key` names the ones the app itself sets (voicemail drop).
    DEFAULTS = (
        ("connected", "Connected", Outcome.ANSWERED),
        ("no_answer", "No answer", Outcome.NO_ANSWER),
        ("left_voicemail", "Left voicemail", Outcome.VOICEMAIL),
        ("busy", "Busy", Outcome.BUSY),
        ("wrong_number", "Wrong number", Outcome.FAILED),
        ("not_interested", "Not interested", Outcome.ANSWERED),
        ("meeting_booked", "Meeting booked", Outcome.ANSWERED),
    )

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="dispositions")
    name = models.CharField(max_length=60)
    key = models.CharField(max_length=30, blank=True, help_text="Set on the seeded ones.")
    outcome = models.CharField(max_length=12, choices=Outcome.choices, default=Outcome.ANSWERED)
    position = models.PositiveIntegerField(default=0)
    archived = models.BooleanField(default=False, help_text="Hidden from the list; past calls keep it.")

    class Meta:
        ordering = ["position", "pk"]
        constraints = [models.UniqueConstraint(fields=["workspace", "name"], name="uniq_disposition_name")]

    def __str__(self) -> str:
        return self.name


class VoicemailDropMessage(models.Model):
    """The workspace's one recorded message that "Drop voicemail" plays to an answering machine."""

    MAX_BYTES = 2 * 1024 * 1024
    CONTENT_TYPES = {"audio/mpeg": "mp3", "audio/mp3": "mp3", "audio/wav": "wav", "audio/x-wav": "wav",
                     "audio/wave": "wav"}

    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, related_name="voicemail_drop")
    audio = models.BinaryField()
    content_type = models.CharField(max_length=40)
    file_name = models.CharField(max_length=200, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Voicemail drop of {self.workspace_id}"
class CallCoaching(models.Model):
    """A supervisor listening to, whispering to the rep on, or barging into a live dialer call (Conference
    coaching). One row per supervisor's join; `mode` is the current one (each change is audited)."""

    class Mode(models.TextChoices):
        LISTEN = "listen", "listening"
        WHISPER = "whisper", "whispering"
        BARGE = "barge", "in the call"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="coachings")
    supervisor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.LISTEN)
    participant_sid = models.CharField("the supervisor's CallSid", max_length=34, blank=True)
    coached_sid = models.CharField("the rep's CallSid in the conference", max_length=34, blank=True)
    joined_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.supervisor} {self.get_mode_display()} on {self.call.sid}"
