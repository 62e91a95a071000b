from dataclasses import dataclass

from django.core.cache import cache
from django.db.models import Q
from django.urls import reverse

from telephony.models import CallerId, NumberPurchase, PhoneNumber, TwilioConnection
from telephony.public_urls import absolute_url

STATUS_CACHE_SECONDS = 300


def status_cache_key(workspace_id: int) -> str:
    return f"phone-system-status:v1:{workspace_id}"


@dataclass(frozen=True)
class PhoneSystemStatus:
    """What the sidebar banner says. `banner` is one of the product document's three titles, or ''."""

    state: str  # not_connected | validating | error | no_number | ready
    banner: str
    detail: str
    fix_label: str
    fix_url: str

    @property
    def ready(self) -> bool:
        return self.state == "ready"


def connection_get(*, workspace) -> TwilioConnection | None:
    return TwilioConnection.objects.select_related("workspace").filter(workspace=workspace).first()


def phone_system_status_compute(*, workspace_id: int) -> PhoneSystemStatus:
    connection = TwilioConnection.objects.filter(workspace_id=workspace_id).only(
        "status", "error_code", "error_message", "account_sid"
    ).first()
    settings_url = reverse("dialer:settings")
    if connection is None or connection.status == TwilioConnection.Status.NOT_CONNECTED:
        return PhoneSystemStatus("not_connected", "Connect your phone system",
                                 "Go to Settings → Dialer and enter your Twilio credentials.",
                                 "Connect Twilio", settings_url)
    if connection.status == TwilioConnection.Status.VALIDATING:
        return PhoneSystemStatus("validating", "", "Checking your Twilio credentials…", "Settings → Dialer",
                                 settings_url)
    if connection.status == TwilioConnection.Status.ERROR:
        message = connection.error_message or "Twilio refused the credentials."
        if connection.error_code:
            message = f"{message} (Twilio error {connection.error_code})"
        return PhoneSystemStatus("error", "Phone system error",
                                 f"{message} Credentials are invalid or expired — re-enter them.",
                                 "Re-enter credentials", settings_url)
    if not PhoneNumber.objects.filter(workspace_id=workspace_id).exists():
        return PhoneSystemStatus("no_number", "Pick a phone number",
                                 "Credentials are valid but no numbers are provisioned — add one.",
                                 "Search numbers", reverse("dialer:number_search"))
    return PhoneSystemStatus("ready", "", "Phone system connected", "Settings → Dialer", settings_url)


def phone_system_status(*, workspace_id: int) -> PhoneSystemStatus:
    """One cache lookup per page; services call `phone_system_status_invalidate` when the state changes."""
    key = status_cache_key(workspace_id)
    status = cache.get(key)
    if status is None:
        status = phone_system_status_compute(workspace_id=workspace_id)
        cache.set(key, status, STATUS_CACHE_SECONDS)
    return status


def phone_system_status_invalidate(*, workspace_id: int) -> None:
    cache.delete(status_cache_key(workspace_id))


# ---------------------------------------------------------------------------
# Settings → Dialer reads


@dataclass(frozen=True)
class DialerSettings:
    local_presence: bool


def dialer_settings(workspace) -> DialerSettings:
    value = TwilioConnection.objects.filter(workspace=workspace).values_list("local_presence", flat=True).first()
    return DialerSettings(local_presence=bool(value))


def outbound_voice_url(workspace) -> str:
    """Where the workspace's TwiML app sends browser-dialer calls (routed by the browser-dialer views)."""
    return absolute_url("dialer:outbound", workspace.pk)


def voice_status_callback_url(workspace) -> str:
    return absolute_url("dialer:status", workspace.pk)


def twiml_app_friendly_name(workspace) -> str:
    return f"Callwell dialer (workspace {workspace.pk})"


def api_key_friendly_name(workspace) -> str:
    return f"Callwell dialer (workspace {workspace.pk})"


def subaccount_friendly_name(workspace) -> str:
    return f"Callwell workspace {workspace.pk} ({workspace.slug})"


def phone_numbers_for_workspace(*, workspace):
    return PhoneNumber.objects.filter(workspace=workspace).order_by("-is_primary", "phone_number")


def phone_number_get(*, workspace, pk) -> PhoneNumber:
    """The workspace's number, or Http404 (another workspace's number is not found)."""
    from django.shortcuts import get_object_or_404

    return get_object_or_404(PhoneNumber, workspace=workspace, pk=pk)


def number_purchases_open(*, workspace):
    return NumberPurchase.objects.filter(workspace=workspace).exclude(state=NumberPurchase.State.COMPLETED)


def caller_ids_for_workspace(*, workspace):
    """Every caller ID of the workspace, pending verifications included (Settings → Caller IDs)."""
    return CallerId.objects.filter(workspace=workspace).select_related("phone_number_ref").order_by(
        "-is_default", "phone_number")


def caller_ids_for_dialer(*, workspace):
    """The "Call from" list: provisioned numbers and verified external numbers, default first."""
    return CallerId.objects.filter(workspace=workspace).filter(
        Q(kind=CallerId.Kind.PROVISIONED) | Q(verified_at__isnull=False)
    ).select_related("phone_number_ref").order_by("-is_default", "phone_number")


def caller_id_get(*, workspace, pk) -> CallerId:
    from django.shortcuts import get_object_or_404

    return get_object_or_404(CallerId, workspace=workspace, pk=pk)


# ---------------------------------------------------------------------------
# Outbound calls: do-not-call list, caller IDs an agent may use, the concurrency limit


def do_not_call_numbers(*, workspace):
    from telephony.models import DoNotCallNumber

    return DoNotCallNumber.objects.filter(workspace=workspace)


def do_not_call_listed(*, workspace, phone_number: str) -> bool:
    """True when `phone_number` (E.164) is on the workspace's do-not-call list (rep and agent calls alike)."""
    from telephony.models import DoNotCallNumber

    workspace_id = getattr(workspace, "pk", workspace)
    return DoNotCallNumber.objects.filter(workspace_id=workspace_id, phone_number=phone_number).exists()


def caller_id_usable(*, workspace, phone_number: str) -> bool:
    """`phone_number` is one of the workspace's own numbers or a verified caller ID."""
    from django.db.models import Q

    return CallerId.objects.filter(workspace=workspace, phone_number=phone_number).filter(
        Q(kind=CallerId.Kind.PROVISIONED) | Q(verified_at__isnull=False)).exists()


def max_concurrent_agent_calls(*, workspace) -> int:
    from telephony.models import OutboundCallPolicy

    workspace_id = getattr(workspace, "pk", workspace)
    value = (OutboundCallPolicy.objects.filter(workspace_id=workspace_id)
             .values_list("max_concurrent_agent_calls", flat=True).first())
    return OutboundCallPolicy.DEFAULT_MAX_CONCURRENT if value is None else value
