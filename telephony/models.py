"""The workspace's Twilio account, shared by the dialer and Studio: connection, numbers, caller IDs, purchases."""
from django.db import models

from workspaces.fields import EncryptedCharField, mask_secret
from workspaces.models import Workspace

# The tables keep the names they had when these models lived in `dialer` (moved without touching the schema).


class TwilioConnection(models.Model):
    """A workspace's one Twilio account, shared by the dialer and Studio's phone connectors."""

    class Mode(models.TextChoices):
        HOSTED = "hosted", "Hosted"
        BYOK = "byok", "BYOK (Bring Your Own Key)"

    class Status(models.TextChoices):
        NOT_CONNECTED = "not_connected", "Not connected"
        VALIDATING = "validating", "Validating"
        CONNECTED = "connected", "Connected"
        ERROR = "error", "Error"

    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, related_name="twilio_connection")
    mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.BYOK)
    account_sid = models.CharField(max_length=34, blank=True, db_index=True)
    auth_token = EncryptedCharField(max_length=64, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.NOT_CONNECTED)
    error_code = models.IntegerField(null=True, blank=True)
    error_message = models.TextField(blank=True)
    # What the browser dialer needs, created once on the account and reused.
    api_key_sid = models.CharField(max_length=34, blank=True)
    api_key_secret = EncryptedCharField(max_length=64, blank=True)
    twiml_app_sid = models.CharField(max_length=34, blank=True)
    validated_at = models.DateTimeField(null=True, blank=True)
    # While a transient Twilio failure is being retried: what went wrong (shown as "retrying…").
    retry_message = models.CharField(max_length=255, blank=True)
    # Local presence: show the caller ID closest to the callee (area code, then state), else the default.
    local_presence = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "dialer_twilioconnection"

    def __str__(self) -> str:
        return f"{self.workspace} · {self.get_mode_display()} · {self.account_sid or '-'} · {self.get_status_display()}"

    @property
    def masked_auth_token(self) -> str:
        return mask_secret(self.auth_token)

    @property
    def has_credentials(self) -> bool:
        return bool(self.account_sid and self.auth_token)

    # Every validation attempt (and retry) saves the row; "validating" without a save for this long means the
    # check never ran: no background worker is consuming the queue.
    VALIDATION_STALL_SECONDS = 180

    @property
    def validation_stalled(self) -> bool:
        from django.utils import timezone

        return (self.status == self.Status.VALIDATING and self.updated_at is not None
                and (timezone.now() - self.updated_at).total_seconds() > self.VALIDATION_STALL_SECONDS)

    def credentials(self):
        from telephony.twilio_gateway import Credentials

        return Credentials(account_sid=self.account_sid, auth_token=self.auth_token)


class PhoneNumber(models.Model):
    """A Twilio number on the workspace's account."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="phone_numbers")
    sid = models.CharField(max_length=34, unique=True)
    phone_number = models.CharField(max_length=20)
    friendly_name = models.CharField(max_length=64, blank=True)
    locality = models.CharField(max_length=64, blank=True)
    region = models.CharField(max_length=64, blank=True)
    iso_country = models.CharField(max_length=2, blank=True)
    capabilities = models.JSONField(default=dict, blank=True)
    is_primary = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "dialer_phonenumber"
        ordering = ["-is_primary", "phone_number"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "phone_number"], name="uniq_workspace_phone_number"),
        ]

    def __str__(self) -> str:
        return self.phone_number

    @property
    def capability_names(self) -> str:
        return " · ".join(name for name, on in (self.capabilities or {}).items() if on)

    @property
    def location(self) -> str:
        place = ", ".join(part for part in (self.locality, self.region) if part)
        return f"{place} {self.iso_country}".strip()


class CallerId(models.Model):
    """A number the workspace may show as caller ID: one of its provisioned numbers, or an external number
    verified through Twilio's caller-ID validation. Only usable ones (provisioned, or verified) reach the dialer."""

    class Kind(models.TextChoices):
        PROVISIONED = "provisioned", "Provisioned number"
        VERIFIED = "verified", "Verified external number"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="caller_ids")
    phone_number = models.CharField(max_length=20, help_text="E.164")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    phone_number_ref = models.ForeignKey(PhoneNumber, on_delete=models.CASCADE, null=True, blank=True,
                                         related_name="caller_ids")
    friendly_name = models.CharField(max_length=64, blank=True)
    is_default = models.BooleanField(default=False)
    # Where the number is from, for local presence: ISO country and state/province code ("US", "TX").
    country = models.CharField(max_length=2, blank=True)
    region = models.CharField(max_length=8, blank=True)
    # External numbers: Twilio's OutgoingCallerId SID once verified, the code shown while Twilio calls.
    outgoing_caller_id_sid = models.CharField(max_length=34, blank=True)
    validation_code = models.CharField(max_length=16, blank=True)
    validation_requested_at = models.DateTimeField(null=True, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "dialer_callerid"
        ordering = ["-is_default", "phone_number"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "phone_number"], name="uniq_workspace_caller_id"),
        ]

    def __str__(self) -> str:
        return f"{self.phone_number} ({self.get_kind_display()})"

    @property
    def is_usable(self) -> bool:
        return self.kind == self.Kind.PROVISIONED or self.verified_at is not None

    @property
    def is_pending(self) -> bool:
        return not self.is_usable

    @property
    def area_code(self) -> str:
        from telephony.numbering import area_code

        return area_code(self.phone_number)

    @property
    def label(self) -> str:
        # The number first: the "Call from" dropdown is narrow and the number is what the callee sees.
        return f"{self.phone_number} · {self.friendly_name}" if self.friendly_name else self.phone_number


class NumberPurchase(models.Model):
    """The intent to buy one number: one row per (workspace, number), so a double click or a retried task
    cannot buy twice. State changes happen under a row lock (services.number_provision)."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        PURCHASING = "purchasing", "Purchasing"  # a request went to Twilio; its outcome may be unknown
        COMPLETED = "completed", "Completed"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="number_purchases")
    phone_number = models.CharField(max_length=20)
    state = models.CharField(max_length=12, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    lease_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    number = models.ForeignKey(PhoneNumber, on_delete=models.SET_NULL, null=True, blank=True,
                               related_name="purchases")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "dialer_numberpurchase"
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "phone_number"], name="uniq_workspace_number_purchase"),
        ]

    def __str__(self) -> str:
        return f"{self.phone_number} · {self.get_state_display()}"


class DoNotCallNumber(models.Model):
    """A number no one in the workspace may call: no agent (Studio, API) and no rep (browser dialer)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="do_not_call_numbers")
    phone_number = models.CharField(max_length=20, help_text="E.164")
    reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["phone_number"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "phone_number"], name="uniq_workspace_do_not_call"),
        ]

    def __str__(self) -> str:
        return f"{self.phone_number} (do not call)"


class OutboundCallPolicy(models.Model):
    """The workspace's limits on calls its agents place (one row per workspace; none means the defaults)."""

    DEFAULT_MAX_CONCURRENT = 5

    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, related_name="outbound_call_policy")
    max_concurrent_agent_calls = models.PositiveIntegerField(
        default=DEFAULT_MAX_CONCURRENT, help_text="Agent calls placed by this workspace that may be live at once.")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.workspace}: at most {self.max_concurrent_agent_calls} agent calls at once"
class MissedCall(models.Model):
    """A Twilio webhook that arrived while PostgreSQL was down (issue 22.10): the caller heard the apology, the
    request was noted in the local spool (`telephony.spool`) and recorded here once the database answered again.
    Unverified: without the database the signature could not be checked (`signature_checked` is False)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, null=True, blank=True,
                                  related_name="missed_calls")
    received_at = models.DateTimeField()
    path = models.CharField(max_length=255)
    call_sid = models.CharField(max_length=64, blank=True)
    account_sid = models.CharField(max_length=64, blank=True)
    from_number = models.CharField(max_length=64, blank=True)
    to_number = models.CharField(max_length=64, blank=True)
    signature_checked = models.BooleanField(default=False)
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.call_sid or 'call'} from {self.from_number or '?'} at {self.received_at:%Y-%m-%d %H:%M:%S}"
