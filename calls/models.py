"""Live agent calls: the call session, its handovers and transcript turns, recordings and supervisors'
interventions. The tables keep the names they had in `connectors` (moved without touching the schema)."""
from django.conf import settings
from django.db import models

from agents.models import AgentVersion, Environment
from workspaces.models import Workspace


class CallSession(models.Model):
    """One call handed to an agent: inbound (created idempotently on Twilio's CallSid) or placed by the agent
    (`direction` "outbound-api", created before Twilio is asked, `calls.services.outbound`)."""

    OUTBOUND = "outbound-api"

    class Outcome(models.TextChoices):
        """How an outbound agent call ended (empty while it runs, and for inbound calls)."""

        CONVERSATION = "conversation", "Conversation"
        VOICEMAIL_LEFT = "voicemail_left", "Voicemail left"
        MACHINE_HUNG_UP = "machine_hung_up", "Answering machine: hung up"
        BUSY = "busy", "Busy"
        NO_ANSWER = "no_answer", "No answer"
        FAILED = "failed", "Failed"
        CANCELED = "canceled", "Canceled"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RINGING = "ringing", "Ringing"
        IN_PROGRESS = "in-progress", "In progress"
        COMPLETED = "completed", "Completed"
        BUSY = "busy", "Busy"
        FAILED = "failed", "Failed"
        NO_ANSWER = "no-answer", "No answer"
        CANCELED = "canceled", "Canceled"
        REJECTED = "rejected", "Rejected by us"

    call_sid = models.CharField(max_length=64, unique=True)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="call_sessions")
    connector = models.ForeignKey("connectors.PhoneConnector", null=True, on_delete=models.SET_NULL, related_name="call_sessions")
    agent_version = models.ForeignKey(AgentVersion, null=True, blank=True, on_delete=models.SET_NULL,
                                      related_name="call_sessions")
    environment = models.ForeignKey(Environment, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="call_sessions")
    from_number = models.CharField(max_length=64, blank=True)
    to_number = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RINGING)
    direction = models.CharField(max_length=24, blank=True, default="inbound")
    # Why we answered with an apology instead of connecting (empty when connected).
    rejected_reason = models.CharField(max_length=255, blank=True)
    # Twilio parameters of interest (Studio's FlowSid, Digits, CallerName, …).
    params = models.JSONField(default=dict, blank=True)
    stream_token_nonce = models.CharField(max_length=32, blank=True)
    stream_token_used_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    # Why the agent could not go on (provider failure), and why the recording could not start: shown on the call.
    runtime_error = models.CharField(max_length=255, blank=True)
    recording_error = models.CharField(max_length=255, blank=True)
    # Outbound agent calls (calls.services.outbound): Twilio's AnsweredBy (human, machine_end_beep, fax, …),
    # the outcome, this call's variables (in the instructions and greeting) and the caller's metadata.
    answered_by = models.CharField(max_length=24, blank=True)
    outcome = models.CharField(max_length=20, blank=True, choices=Outcome.choices)
    variables = models.JSONField(default=dict, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    placed_by = models.CharField(max_length=150, blank=True, help_text="Who placed an outbound call (user, API key).")

    class Meta:
        ordering = ["-started_at"]
        db_table = "connectors_callsession"
        indexes = [models.Index(fields=["workspace", "-started_at"], name="callsession_ws_started")]

    def __str__(self) -> str:
        return f"{self.call_sid} ({self.status})"

    @property
    def connected(self) -> bool:
        return not self.rejected_reason

    @property
    def duration_seconds(self) -> int | None:
        if self.ended_at is None or self.started_at is None:
            return None
        return max(0, int((self.ended_at - self.started_at).total_seconds()))

    @property
    def is_live(self) -> bool:
        return self.connected and self.ended_at is None

    @property
    def is_outbound(self) -> bool:
        return self.direction == self.OUTBOUND

    @property
    def direction_label(self) -> str:
        return "Outbound" if self.is_outbound else "Inbound"



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
        NOT_TAKEN = "not-taken", "Nobody took the call"  # warm: every destination declined / missed

    class AttemptOutcome(models.TextChoices):
        """One destination of a warm transfer (calls.services.transfers)."""

        RINGING = "ringing", "Ringing"
        BRIEFED = "briefed", "Hearing the brief"
        TAKEN = "taken", "Took the call"
        DECLINED = "declined", "Declined"
        BUSY = "busy", "Busy"
        NO_ANSWER = "no-answer", "No answer"
        MACHINE = "machine", "Answering machine (not answered)"
        FAILED = "failed", "Failed"

    class Transport(models.TextChoices):
        MEDIA_STREAMS = "media_streams", "Media Streams"
        CONVERSATION_RELAY = "conversation_relay", "ConversationRelay"

    call_session = models.ForeignKey("calls.CallSession", on_delete=models.CASCADE, related_name="handovers")
    action_name = models.CharField(max_length=64)
    destination = models.CharField(max_length=20)
    transport = models.CharField(max_length=24, choices=Transport.choices)
    kind = models.CharField(max_length=8, default="cold")  # agents.HandoverAction.Kind
    # Warm: each destination tried, in order: {"destination", "call_sid", "outcome", "at"} (AttemptOutcome).
    attempts = models.JSONField(default=list, blank=True)
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
        db_table = "connectors_callhandover"
        ordering = ["requested_at", "id"]

    def __str__(self) -> str:
        return f"{self.action_name} → {self.destination} ({self.get_outcome_display()})"


class CallTurn(models.Model):
    """A turn of the conversation. `heard=False`: the caller interrupted; `text` is what they actually heard."""

    class Role(models.TextChoices):
        AGENT = "agent", "Agent"
        CALLER = "caller", "Caller"
        EVENT = "event", "Event"  # handovers, hang-ups, supervisor interventions, in line with the words

    call_session = models.ForeignKey("calls.CallSession", on_delete=models.CASCADE, related_name="turns")
    seq = models.PositiveIntegerField()
    role = models.CharField(max_length=8, choices=Role.choices)
    text = models.TextField(blank=True)
    heard = models.BooleanField(default=True)
    # When the turn started (the first words/audio of it); stored as the call goes.
    started_at = models.DateTimeField(null=True, blank=True)
    # An agent turn of a cascaded/offline Media Streams call: ms from the caller's end of turn (voice activity
    # decided it) to the first agent audio sent, and when each stage delivered (all from that end of turn).
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    recognition_ms = models.PositiveIntegerField("recognition final", null=True, blank=True)
    first_token_ms = models.PositiveIntegerField("model first token", null=True, blank=True)
    first_byte_ms = models.PositiveIntegerField("speech first byte", null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "connectors_callturn"
        ordering = ["call_session_id", "seq"]
        constraints = [models.UniqueConstraint(fields=["call_session", "seq"], name="uniq_call_turn_seq")]

    def __str__(self) -> str:
        return f"{self.role}: {self.text[:40]}"


class CallActionRun(models.Model):
    """An API action the agent ran during the call: what it asked, how it went (never a secret or auth header)."""

    call_session = models.ForeignKey("calls.CallSession", on_delete=models.CASCADE, related_name="action_runs")
    name = models.CharField(max_length=64)
    parameters = models.JSONField(default=dict, blank=True)
    ok = models.BooleanField(default=False)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    result = models.TextField(blank=True, help_text="The answer the model got (redacted, truncated) or the error.")
    started_at = models.DateTimeField()

    class Meta:
        ordering = ["started_at", "id"]

    def __str__(self) -> str:
        return f"{self.name}: {'ok' if self.ok else 'failed'} ({self.duration_ms} ms)"

    @property
    def status_label(self) -> str:
        if self.status_code:
            return f"{self.status_code}" + ("" if self.ok else " · failed")
        return "ok" if self.ok else "failed"


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

    call_session = models.ForeignKey("calls.CallSession", on_delete=models.CASCADE, related_name="recordings")
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
        db_table = "connectors_callrecording"
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

    call_session = models.ForeignKey("calls.CallSession", on_delete=models.CASCADE,
                                     related_name="interventions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                             related_name="call_interventions")
    username = models.CharField(max_length=150, help_text="Who, kept if the user is deleted.")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    detail = models.TextField(blank=True, help_text="The action name, the number, or the instruction.")
    result = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "connectors_callintervention"
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.username}: {self.get_kind_display()} {self.detail[:40]}"


class CallAnalysis(models.Model):
    """The post-call analysis of a call (calls.services.analysis): at most one per call, recomputed in place."""

    class Status(models.TextChoices):
        PENDING = "pending", "Analysing"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    call_session = models.OneToOneField("calls.CallSession", on_delete=models.CASCADE, related_name="analysis")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    summary = models.TextField(blank=True)
    fields = models.JSONField(default=dict, blank=True, help_text="{field name: value} as the definition says.")
    success = models.BooleanField(null=True, blank=True, help_text="Empty: no criterion, or it could not be told.")
    reason = models.CharField(max_length=255, blank=True, help_text="Why the analysis failed (plain words).")
    model_used = models.CharField(max_length=120, blank=True, help_text="e.g. openai:gpt-4o-mini, rules.")
    # The definition it was computed with (the version's summary flag, fields, success criterion) and its label.
    definition = models.JSONField(default=dict, blank=True)
    definition_label = models.CharField(max_length=40, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    analysed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["call_session"], name="uniq_call_analysis_per_call")]
        verbose_name_plural = "call analyses"

    def __str__(self) -> str:
        return f"analysis of {self.call_session_id} ({self.status})"

    @property
    def field_rows(self) -> list[tuple[str, object]]:
        """(name, value) in the definition's order (fields no longer defined come last)."""
        names = [f["name"] for f in (self.definition or {}).get("fields", [])]
        names += [n for n in (self.fields or {}) if n not in names]
        return [(n, (self.fields or {}).get(n)) for n in names]


class CallAudio(models.Model):
    """Audio the app renders for one call and Twilio fetches with `<Play>` (a warm transfer's brief, spoken in the
    agent's own voice: calls.services.transfers), at a signed URL valid for minutes. WAV, mono PCM16."""

    class Kind(models.TextChoices):
        BRIEF = "brief", "Warm transfer brief"

    call_session = models.ForeignKey("calls.CallSession", on_delete=models.CASCADE, related_name="audio")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    text = models.TextField(help_text="What the audio says.")
    content_type = models.CharField(max_length=32, default="audio/wav")
    audio = models.BinaryField()
    voice = models.CharField(max_length=120, blank=True, help_text="The text-to-speech stage and voice that spoke it.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
