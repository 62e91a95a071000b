"""Browser dialer: the voice token endpoint, Twilio's voice webhooks (TwiML), the call log, Troubleshoot Calls.

Every view Twilio calls is `twilio_webhook`-checked (signature always, AccountSid
of the workspace's connection) and resolves the connection from the workspace id
in the URL. TwiML is built with `twilio.twiml.voice_response.VoiceResponse`.
"""
from __future__ import annotations

import logging
from email.utils import parsedate_to_datetime

from django.conf import settings
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from twilio.twiml.voice_response import VoiceResponse

from workspaces.decorators import api_member_required, workspace_member_required

from . import call_services, errors, numbering, twilio_gateway
from .call_forms import CallLogFilterForm
from .call_selectors import (call_get, call_log_members, calls_for_workspace, connection_for_token,
                             connection_for_webhook, voicemail_get)
from .models import Call
from .selectors import caller_ids_for_dialer, connection_get, dialer_settings, phone_system_status
from .voice import VoiceTokenUnavailable, voice_token_issue, voice_token_rate_limited
from .webhook_security import twilio_webhook

logger = logging.getLogger(__name__)

CALLS_PER_PAGE = 25
INBOUND_RING_SECONDS = 20
VOICEMAIL_MAX_SECONDS = 120
VOICEMAIL_GREETING = "Sorry, nobody can take your call right now. Please leave a message after the tone."
LEG_EVENTS = "initiated ringing answered completed"


# ---------------------------------------------------------------------------
# Voice token


@never_cache
@require_GET
@api_member_required
def voice_token(request):
    retry_after = voice_token_rate_limited(user_id=request.user.pk)
    if retry_after:
        response = JsonResponse({"error": "rate_limited", "message": "Too many token requests; try again shortly.",
                                 "retry_after": retry_after}, status=429)
        response["Retry-After"] = str(retry_after)
        return response
    status = phone_system_status(workspace_id=request.workspace.pk)
    if not status.ready:
        return JsonResponse({"error": status.state, "banner": status.banner or status.detail,
                             "message": status.detail, "fix_url": status.fix_url}, status=409)
    connection = connection_for_token(workspace=request.workspace)
    try:
        if connection is None:
            raise VoiceTokenUnavailable("Connect your phone system: no Twilio account is connected.",
                                        code="not_connected")
        token = voice_token_issue(connection=connection, user=request.user)
    except VoiceTokenUnavailable as exc:
        return JsonResponse({"error": exc.code, "banner": "Phone system error", "message": exc.message,
                             "fix_url": reverse("dialer:settings")}, status=409)
    return JsonResponse(token.as_json())


@never_cache
@require_GET
@api_member_required
def number_normalize(request):
    """The dialer's server-side check: E.164 of a number typed in the workspace's local format."""
    try:
        e164 = numbering.to_e164(request.GET.get("number", ""), default_country=request.workspace.default_country)
    except numbering.InvalidNumber as exc:
        return JsonResponse({"error": "invalid_number", "message": str(exc)}, status=400)
    return JsonResponse({"e164": e164})


@require_GET
@workspace_member_required
def caller_id_options(request):
    """The "Call from" <option>s (loaded by the panel when it first opens)."""
    return render(request, "dialer/call_from_options.html", {
        "caller_ids": caller_ids_for_dialer(workspace=request.workspace),
        "local_presence": dialer_settings(request.workspace).local_presence,
    })


# ---------------------------------------------------------------------------
# Twilio webhooks (TwiML)


def _resolve(request, workspace_id: int, **kwargs):
    return connection_for_webhook(workspace_id=workspace_id)


def _public(name: str, workspace_id: int) -> str:
    base = getattr(settings, "PUBLIC_BASE_URL", "").rstrip("/")
    return f"{base}{reverse(name, args=[workspace_id])}"


def _twiml(response: VoiceResponse) -> HttpResponse:
    return HttpResponse(str(response), content_type="text/xml; charset=utf-8")


def _when(request):
    raw = request.POST.get("Timestamp", "")
    if raw:
        try:
            return parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            pass
    return timezone.now()


def _int_param(request, name: str) -> int | None:
    try:
        return int(request.POST.get(name, ""))
    except ValueError:
        return None


def _method_not_allowed(request):
    if request.method != "POST":
        return HttpResponse(status=405, headers={"Allow": "POST"})
    return None


def _refuse(message: str) -> HttpResponse:
    response = VoiceResponse()
    response.say(message)
    response.hangup()
    return _twiml(response)


def _voicemail(workspace_id: int) -> VoiceResponse:
    response = VoiceResponse()
    response.say(VOICEMAIL_GREETING)
    response.record(
        max_length=VOICEMAIL_MAX_SECONDS, play_beep=True, timeout=5,
        action=_public("voice:voicemail_done", workspace_id), method="POST",
        recording_status_callback=_public("voice:recording_status", workspace_id),
        recording_status_callback_method="POST",
        recording_status_callback_event="in-progress completed absent",
    )
    response.hangup()
    return response


def _outbound(request, workspace):
    decision = call_services.call_outbound_start(
        workspace=workspace, call_sid=request.POST.get("CallSid", ""), from_identity=request.POST.get("From", ""),
        to=request.POST.get("To", ""), requested_caller_id=request.POST.get("CallerId", ""),
        local_presence=request.twilio_connection.local_presence,
    )
    if not decision.allowed:
        return _refuse(decision.message)
    response = VoiceResponse()
    dial = response.dial(caller_id=decision.caller_id, answer_on_bridge=True,
                         action=_public("voice:dial_done", workspace.pk), method="POST")
    dial.number(decision.to_number, status_callback=_public("voice:leg_status", workspace.pk),
                status_callback_event=LEG_EVENTS, status_callback_method="POST")
    return _twiml(response)


def _inbound(request, workspace):
    call_sid = request.POST.get("CallSid", "")
    decision = call_services.call_inbound_start(workspace=workspace, call_sid=call_sid,
                                                from_number=request.POST.get("From", ""),
                                                to_number=request.POST.get("To", ""))
    if not decision.known_number:
        return _refuse(call_services.INBOUND_UNKNOWN_NUMBER)
    if not decision.identities:
        call_services.call_dial_finished(workspace=workspace, call_sid=call_sid, dial_status="no-answer",
                                         dial_duration=0)
        return _twiml(_voicemail(workspace.pk))
    response = VoiceResponse()
    dial = response.dial(timeout=INBOUND_RING_SECONDS, answer_on_bridge=True,
                         action=_public("voice:dial_done", workspace.pk), method="POST")
    for identity in decision.identities:
        dial.client(identity, status_callback=_public("voice:leg_status", workspace.pk),
                    status_callback_event=LEG_EVENTS, status_callback_method="POST")
    return _twiml(response)


@twilio_webhook(resolve=_resolve)
def voice_outbound(request, workspace_id: int):
    """The TwiML app's voice URL: browser calls (From=client:…) go out; calls to our numbers ring the browsers."""
    if (refused := _method_not_allowed(request)) is not None:
        return refused
    workspace = request.twilio_connection.workspace
    if request.POST.get("From", "").startswith("client:"):
        return _outbound(request, workspace)
    return _inbound(request, workspace)


@twilio_webhook(resolve=_resolve)
def voice_inbound(request, workspace_id: int):
    """A number's own voice URL (when it is not pointed at the TwiML app)."""
    if (refused := _method_not_allowed(request)) is not None:
        return refused
    return _inbound(request, request.twilio_connection.workspace)


@twilio_webhook(resolve=_resolve)
def voice_dial_done(request, workspace_id: int):
    """`<Dial action>`: record the outcome; unanswered inbound calls go to voicemail."""
    if (refused := _method_not_allowed(request)) is not None:
        return refused
    workspace = request.twilio_connection.workspace
    dial_status = request.POST.get("DialCallStatus", "")
    call = call_services.call_dial_finished(workspace=workspace, call_sid=request.POST.get("CallSid", ""),
                                            dial_status=dial_status,
                                            dial_duration=_int_param(request, "DialCallDuration"),
                                            when=timezone.now())
    if (call is not None and call.direction == Call.Direction.INBOUND
            and dial_status in ("no-answer", "busy", "failed")):
        return _twiml(_voicemail(workspace.pk))
    response = VoiceResponse()
    response.hangup()
    return _twiml(response)


@twilio_webhook(resolve=_resolve)
def voice_status(request, workspace_id: int):
    """The TwiML app's status callback for the parent call."""
    if (refused := _method_not_allowed(request)) is not None:
        return refused
    call_services.call_status_apply(
        workspace=request.twilio_connection.workspace, call_sid=request.POST.get("CallSid", ""),
        status=request.POST.get("CallStatus", ""), duration=_int_param(request, "CallDuration"),
        when=_when(request), from_number=request.POST.get("From", ""), to_number=request.POST.get("To", ""),
    )
    return HttpResponse(status=204)


@twilio_webhook(resolve=_resolve)
def voice_leg_status(request, workspace_id: int):
    """Status callbacks of the dialed legs (`<Number>` / `<Client>`)."""
    if (refused := _method_not_allowed(request)) is not None:
        return refused
    call_services.call_leg_status_apply(
        workspace=request.twilio_connection.workspace, parent_sid=request.POST.get("ParentCallSid", ""),
        leg_sid=request.POST.get("CallSid", ""), status=request.POST.get("CallStatus", ""),
        to_number=request.POST.get("To", ""), from_number=request.POST.get("From", ""),
        duration=_int_param(request, "CallDuration"), when=_when(request),
    )
    return HttpResponse(status=204)


@twilio_webhook(resolve=_resolve)
def voice_voicemail_done(request, workspace_id: int):
    """`<Record action>`: the caller finished the message."""
    if (refused := _method_not_allowed(request)) is not None:
        return refused
    response = VoiceResponse()
    response.say("Thank you. Goodbye.")
    response.hangup()
    return _twiml(response)


@twilio_webhook(resolve=_resolve)
def voice_recording_status(request, workspace_id: int):
    """`recordingStatusCallback` of a voicemail."""
    if (refused := _method_not_allowed(request)) is not None:
        return refused
    recording_sid = request.POST.get("RecordingSid", "")
    if not recording_sid:
        return HttpResponse("RecordingSid missing.", status=400)
    try:
        call_services.voicemail_recording_apply(
            workspace=request.twilio_connection.workspace, recording_sid=recording_sid,
            call_sid=request.POST.get("CallSid", ""), status=request.POST.get("RecordingStatus", ""),
            duration=_int_param(request, "RecordingDuration"),
        )
    except PermissionError:
        raise Http404("Unknown recording.") from None
    return HttpResponse(status=204)


# ---------------------------------------------------------------------------
# Call log


@require_GET
@workspace_member_required
def call_log(request):
    members = list(call_log_members(workspace=request.workspace))
    form = CallLogFilterForm(request.GET or None, members=members)
    filters = {}
    if form.is_bound:
        if form.foreign_user():
            raise Http404("No such member.")
        if form.is_valid():
            filters = {"user_id": form.cleaned_data["user"], "direction": form.cleaned_data["direction"],
                       "status": form.cleaned_data["status"]}
    calls = calls_for_workspace(workspace=request.workspace, **filters) if not form.errors else Call.objects.none()
    page = Paginator(calls, CALLS_PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    template = "dialer/call_log_rows.html" if request.headers.get("HX-Request") else "dialer/call_log.html"
    return render(request, template, {"form": form, "page": page, "query": query.urlencode()})


@require_GET
@workspace_member_required
def call_detail(request, pk: int):
    return render(request, "dialer/call_detail.html", {"call": call_get(workspace=request.workspace, pk=pk)})


@require_GET
@workspace_member_required
def voicemail_audio(request, pk: int, voicemail_pk: int):
    """Twilio's media URL needs our credentials, so the audio is proxied."""
    voicemail = voicemail_get(workspace=request.workspace, call_pk=pk, pk=voicemail_pk)
    connection = connection_get(workspace=request.workspace)
    if connection is None or not connection.has_credentials:
        raise Http404("The phone system is not connected.")
    try:
        upstream = twilio_gateway.recording_media(creds=connection.credentials(),
                                                  recording_sid=voicemail.recording_sid)
    except errors.TwilioNotFound:
        raise Http404("The recording is not at Twilio any more.") from None
    except errors.TwilioError as exc:
        return HttpResponse(f"Twilio could not serve the recording: {exc.display()}", status=502,
                            content_type="text/plain")
    response = StreamingHttpResponse(upstream.iter_content(chunk_size=32 * 1024), content_type="audio/mpeg")
    response["Cache-Control"] = "private, no-store"
    return response


# ---------------------------------------------------------------------------
# Troubleshoot Calls


@require_GET
@workspace_member_required
def troubleshoot(request):
    return render(request, "dialer/troubleshoot.html", {})


@never_cache
@require_GET
@workspace_member_required
def troubleshoot_checks(request):
    from .troubleshoot import troubleshoot_run

    checks, alerts = troubleshoot_run(workspace=request.workspace, user=request.user)
    return render(request, "dialer/troubleshoot_checks.html", {"checks": checks, "alerts": alerts})
