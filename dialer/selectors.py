"""Reads for browser-dialer calls. Everything is scoped to a workspace; another workspace's rows are not found."""
from __future__ import annotations

from django.db.models import Prefetch
from django.shortcuts import get_object_or_404

from dialer.models import Call, CallCoaching, CallLeg, Voicemail
from telephony.models import TwilioConnection
from workspaces.models import Membership


def connection_for_webhook(*, workspace_id: int) -> TwilioConnection | None:
    """The TwilioConnection whose auth token signs /v1/voice/*/<workspace_id> requests."""
    return (TwilioConnection.objects.select_related("workspace").filter(workspace_id=workspace_id)
            .only("id", "workspace_id", "account_sid", "auth_token", "status", "local_presence",
                  "workspace__id", "workspace__name", "workspace__default_country", "workspace__slug").first())


def connection_for_token(*, workspace) -> TwilioConnection | None:
    return (TwilioConnection.objects.filter(workspace=workspace)
            .only("id", "workspace_id", "account_sid", "api_key_sid", "api_key_secret", "twiml_app_sid", "status")
            .first())


def calls_for_workspace(*, workspace, user_id: int | None = None, direction: str = "", status: str = ""):
    """The call log: newest first, with the rep and the voicemail count (supervisors' coaching calls are not in
    it: they show on the coached call's page)."""
    qs = (Call.customer_calls().filter(workspace=workspace).select_related("user", "disposition")
          .prefetch_related(Prefetch("voicemails", queryset=Voicemail.objects.only("id", "call_id", "status")))
          .order_by("-started_at", "-id"))
    if user_id:
        qs = qs.filter(user_id=user_id)
    if direction:
        qs = qs.filter(direction=direction)
    if status:
        qs = qs.filter(status=status)
    return qs


def call_get(*, workspace, pk: int) -> Call:
    """One call of the workspace with its legs, voicemails and who coached on it, or Http404."""
    qs = Call.objects.filter(workspace=workspace).select_related("user", "disposition").prefetch_related(
        Prefetch("legs", queryset=CallLeg.objects.select_related("user").order_by("started_at", "id")),
        Prefetch("voicemails", queryset=Voicemail.objects.order_by("created_at")),
        Prefetch("coachings", queryset=CallCoaching.objects.select_related("supervisor").order_by("created_at", "id")),
    )
    return get_object_or_404(qs, pk=pk)


def voicemail_get(*, workspace, call_pk: int, pk: int) -> Voicemail:
    return get_object_or_404(Voicemail.objects.select_related("call"), workspace=workspace, call_id=call_pk, pk=pk)


def call_log_members(*, workspace):
    """Members offered in the call log's user filter (and the only valid values)."""
    return Membership.objects.filter(workspace=workspace).select_related("user").order_by("user__username")


def recent_voicemails(*, workspace, limit: int = 10):
    return (Voicemail.objects.filter(workspace=workspace).select_related("call", "call__user")
            .order_by("-created_at")[:limit])


def number_destinations(*, numbers, connection) -> dict[int, dict]:
    """Where each number's incoming calls go, keyed by number pk: {"kind": dialer | connector | elsewhere |
    missing | unknown, "text": …, "connector_id": …}. Numbers attached to a Studio connector say so from our own
    rows (annotate `studio_connector`/`studio_connector_id`); the others are read from Twilio (one request)."""
    from telephony import errors, twilio_gateway

    out, remote, failed = {}, None, ""
    ours = [n for n in numbers if getattr(n, "studio_connector_id", None) is None]
    if ours and connection is not None and connection.has_credentials:
        try:
            remote = {r.phone_number: r for r in twilio_gateway.incoming_numbers_list(creds=connection.credentials())}
        except errors.TwilioError as exc:
            failed = exc.display()
    for n in numbers:
        if getattr(n, "studio_connector_id", None) is not None:
            out[n.pk] = {"kind": "connector", "text": f"Studio connector {n.studio_connector or '(unnamed)'}",
                         "connector_id": n.studio_connector_id}
            continue
        found = remote.get(n.phone_number) if remote is not None else None
        if remote is None:
            out[n.pk] = {"kind": "unknown", "text": f"Unknown: Twilio did not answer ({failed})" if failed
                         else "Unknown: not connected to Twilio"}
        elif found is None:
            out[n.pk] = {"kind": "missing", "text": "Not on the Twilio account any more"}
        elif connection.twiml_app_sid and found.voice_application_sid == connection.twiml_app_sid:
            out[n.pk] = {"kind": "dialer", "text": "Browser dialer"}
        else:
            target = found.voice_url or found.voice_application_sid or "nowhere (no voice configuration)"
            out[n.pk] = {"kind": "elsewhere", "text": f"Elsewhere: {target}"}
    return out
