"""Contact lists and the campaigns that work them (docs/campaigns.md).

A `Contact` belongs to one `ContactList` (one row per E.164 number: an import merges duplicates). A `Campaign`
works one list; each contact of the list gets one `CampaignContact` (its state in this campaign, its attempts, the
scheduler's lease) and one `CampaignAttempt` per call placed (unique per contact and attempt number).
"""
from __future__ import annotations

from django.conf import settings
from django.db import models

from workspaces.models import Workspace


class ContactList(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="contact_lists")
    name = models.CharField(max_length=120)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Contact(models.Model):
    contact_list = models.ForeignKey(ContactList, on_delete=models.CASCADE, related_name="contacts")
    phone_number = models.CharField(max_length=20, help_text="E.164")
    name = models.CharField(max_length=200, blank=True)
    # Custom fields from the CSV's other columns: the agent's call variables ({first_name} …).
    fields = models.JSONField(default=dict, blank=True)
    time_zone = models.CharField(max_length=64, blank=True, help_text="IANA time zone of the number.")
    do_not_call = models.BooleanField(default=False, help_text="On the workspace's do-not-call list when imported.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["pk"]
        constraints = [models.UniqueConstraint(fields=["contact_list", "phone_number"], name="uniq_list_contact_number")]

    def __str__(self) -> str:
        return f"{self.name or self.phone_number}"


class Campaign(models.Model):
    class WorkedBy(models.TextChoices):
        AGENT = "agent", "An agent"
        REPS = "reps", "The workspace's reps (power dialer)"

    class CallerIdRule(models.TextChoices):
        FIXED = "fixed", "A fixed number"
        LOCAL_PRESENCE = "local_presence", "Local presence (a number near the contact)"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused"
        CANCELLED = "cancelled", "Cancelled"
        COMPLETED = "completed", "Completed"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="campaigns")
    name = models.CharField(max_length=120)
    contact_list = models.ForeignKey(ContactList, on_delete=models.PROTECT, related_name="campaigns")
    worked_by = models.CharField(max_length=10, choices=WorkedBy.choices, default=WorkedBy.AGENT)
    agent = models.ForeignKey("agents.Agent", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    environment = models.ForeignKey("agents.Environment", on_delete=models.PROTECT, null=True, blank=True,
                                    related_name="+")
    # Reps (worked by reps): the team that works it in the power dialer; empty: every member of the workspace.
    reps = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    version_mode = models.CharField(max_length=10, default="published",
                                    choices=[("published", "Published"), ("draft", "Draft")])
    # Agent → rep: the reps (user ids of members) whose browser dialer rings when the agent hands a qualified contact
    # over with a "dialer reps" handover; empty: the handover action's own team (or every rep online).
    handover_reps = models.JSONField("reps who take qualified contacts live", default=list, blank=True)
    caller_id_rule = models.CharField(max_length=20, choices=CallerIdRule.choices, default=CallerIdRule.FIXED)
    caller_id = models.CharField(max_length=20, blank=True, help_text="E.164, with the fixed rule.")
    # The calling window, in each contact's local time: ISO weekdays (1 = Monday) and [start, end) hours.
    window_days = models.JSONField(default=list)
    window_start = models.TimeField()
    window_end = models.TimeField()
    # The time zones of the campaign's contacts, set when it starts (its contacts are fixed then): the scheduler
    # asks which of them are inside the window without reading the contacts.
    time_zones = models.JSONField(default=list, blank=True)
    max_concurrent = models.PositiveIntegerField(default=1)
    max_attempts = models.PositiveIntegerField(default=3)
    # Minutes to wait before the next attempt, per outcome; None: that outcome is not retried.
    retry_no_answer_minutes = models.PositiveIntegerField(null=True, blank=True, default=60)
    retry_busy_minutes = models.PositiveIntegerField(null=True, blank=True, default=15)
    retry_voicemail_minutes = models.PositiveIntegerField(null=True, blank=True)
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    # The scheduler's last pass over this campaign (its clock) and how many passes it made.
    ticked_at = models.DateTimeField(null=True, blank=True)
    tick_count = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["status"], name="campaign_status_idx")]

    def __str__(self) -> str:
        return self.name


class CampaignContact(models.Model):
    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        CALLING = "calling", "Calling"
        ANSWERED = "answered", "Answered"
        VOICEMAIL = "voicemail", "Voicemail"
        NO_ANSWER = "no_answer", "No answer"
        BUSY = "busy", "Busy"
        FAILED = "failed", "Failed"
        DONE = "done", "Done (not called further)"
        DNC = "dnc", "Do not call"

    # States a contact waits in for its next attempt (when `finished_at` is empty).
    WAITING = (State.QUEUED, State.NO_ANSWER, State.BUSY, State.VOICEMAIL)

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="contacts")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+")
    time_zone = models.CharField(max_length=64, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # The scheduler's claim: whoever set `claim` owns the contact until `lease_until` (a killed worker's claim runs out).
    claim = models.CharField(max_length=32, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True, help_text="Set once: the contact's final state.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["pk"]
        constraints = [models.UniqueConstraint(fields=["campaign", "contact"], name="uniq_campaign_contact")]
        indexes = [models.Index(fields=["campaign", "state", "next_attempt_at"], name="campaign_contact_due_idx")]

    def __str__(self) -> str:
        return f"{self.contact} in {self.campaign_id}: {self.state}"


class CampaignAttempt(models.Model):
    class Outcome(models.TextChoices):
        PENDING = "", "In progress"
        ANSWERED = "answered", "Answered"
        VOICEMAIL = "voicemail", "Voicemail"
        NO_ANSWER = "no_answer", "No answer"
        BUSY = "busy", "Busy"
        FAILED = "failed", "Failed"
        REFUSED = "refused", "Not placed"

    campaign_contact = models.ForeignKey(CampaignContact, on_delete=models.CASCADE, related_name="call_attempts")
    number = models.PositiveIntegerField()
    call_session = models.ForeignKey("calls.CallSession", on_delete=models.SET_NULL, null=True, blank=True,
                                     related_name="+")
    from_number = models.CharField(max_length=20, blank=True)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=12, choices=Outcome.choices, blank=True, default="")
    answered_by = models.CharField(max_length=24, blank=True)
    detail = models.CharField(max_length=255, blank=True)
    # Worked by a rep (power dialer): the rep, the browser call, and what the rep said of it afterwards.
    rep = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                            related_name="+")
    dialer_call = models.ForeignKey("dialer.Call", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    disposition = models.CharField(max_length=60, blank=True)
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["pk"]
        constraints = [models.UniqueConstraint(fields=["campaign_contact", "number"], name="uniq_attempt_number")]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.campaign_contact_id}: {self.outcome or 'in progress'}"
