"""Browser dialer: the voice token endpoint, Twilio's voice webhooks (TwiML), the call log, Troubleshoot Calls.

Every view Twilio calls is `twilio_webhook`-checked (signature always, AccountSid
of the workspace's connection) and resolves the connection from the workspace id
in the URL. TwiML is built with `twilio.twiml.voice_response.VoiceResponse`.
"""
from __future__ import annotations

import functools
import logging
import time
from email.utils import parsedate_to_datetime

from django.conf import settings
from django.core.cache import cache
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import get_script_prefix, reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET
from twilio.twiml.voice_response import VoiceResponse

from workspaces.decorators import api_member_required, workspace_member_required
from workspaces.middleware import SESSION_KEY as WORKSPACE_SESSION_KEY
from workspaces.middleware import resolves_own_workspace, workspace_resolve
from workspaces.selectors import session_user_claim, session_user_verified

from . import call_services, errors, numbering, twilio_gateway
from .call_forms import CallLogFilterForm
from .call_selectors import (call_get, call_log_members, calls_for_workspace, connection_for_token,
                             connection_for_webhook, token_context_cached, token_context_keep, token_session_cached,
                             token_session_keep, voice_token_context,
                             voicemail_get, webhook_credentials_cached, webhook_credentials_forget)
from .models import Call
from .selectors import caller_ids_for_dialer, connection_get, dialer_settings, phone_system_status
from .voice import (VoiceTokenUnavailable, identity_parse, presence_mark, voice_context_generations, voice_token_admit,
                    voice_token_issuable, voice_token_issue, voice_token_rate_limited, voice_token_ttl)
from .webhook_security import posted_account_sid, signature_is_valid, twilio_webhook

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
@resolves_own_workspace
def voice_token(request):
    """The browser dialer's token. The common case (a logged-in member of a ready workspace) is answered from
    the session, one SQL query and one Redis round trip (`_voice_token_fast`); every other case goes through
    Django's auth and the workspace middleware's rules (`_voice_token_checked`) and answers as they decide."""
    response = _voice_token_fast(request)
    if response is None:
        workspace_resolve(request)
        response = _voice_token_checked(request)
    return response


def _voice_token_fast(request):
    """None when this request is not the common case; the answer otherwise.

    Warm (this process has answered this session before): one Redis round trip — the script counts the
    request, checks that the session's stored bytes and the user's and workspace's generations are exactly
    what the cached context was verified against, and marks the rep online — then the JWT. No session load,
    no SQL.

    Otherwise the session is loaded by Django, the context comes from this process's cache (if its
    generations are current) or from one SQL query read after the generations (a change committing
    meanwhile leaves the new entry stale, never the other way round), and both are kept for next time.
    """
    session_key = request.COOKIES.get(settings.SESSION_COOKIE_NAME, "")
    session_cache_key = _session_cache_key(session_key)
    issued_at = int(time.time())
    until = issued_at + voice_token_ttl()
    counted = None
    known = token_session_cached(session_key=session_key) if session_cache_key else None
    if known is not None:
        user_id, workspace_id, session_raw = known
        cached = token_context_cached(user_id=user_id, workspace_id=workspace_id)
        if cached is not None:
            counted = voice_token_admit(workspace_id=workspace_id, user_id=user_id, until=until, now=issued_at,
                                        stamp=cached[1], session_cache_key=session_cache_key,
                                        session_raw=session_raw)
            if counted.presence_marked:
                return _token_response(request, cached[0], issued_at)
    session = request.session
    user_id = session_user_claim(session)
    workspace_id = session.get(WORKSPACE_SESSION_KEY)
    if user_id is None or not isinstance(workspace_id, int):
        return None
    if counted is not None and known[0] != user_id:
        return None  # not the session this process knew: Django's rules decide
    cached = token_context_cached(user_id=user_id, workspace_id=workspace_id)
    if cached is not None and not _context_serves(cached[0], session):
        cached = None
    admission = counted or voice_token_admit(workspace_id=workspace_id, user_id=user_id, until=until,
                                             now=issued_at, stamp=cached[1] if cached is not None else None,
                                             session_cache_key=session_cache_key)
    if admission.presence_marked and cached is not None:
        context = cached[0]
    else:
        if admission.retry_after:
            current = cached is not None and admission.generations == tuple(cached[1])
            return _rate_limited(admission.retry_after) if current else None  # else Django's rules decide first
        if cached is not None and admission.generations == tuple(cached[1]):
            context = cached[0]
        else:
            stamp = admission.generations or voice_context_generations(user_id=user_id, workspace_id=workspace_id)
            context = voice_token_context(user_id=user_id, workspace_id=workspace_id)
            if context is None or not _context_serves(context, session):
                return None
            if stamp is not None:
                token_context_keep(user_id=user_id, workspace_id=workspace_id, context=context, stamp=stamp)
        presence_mark(workspace_id=workspace_id, user_id=user_id, until=until)
    if admission.session_raw is not None and cache.loads_raw(admission.session_raw) == dict(session.items()):
        token_session_keep(session_key=session_key, user_id=user_id, workspace_id=workspace_id,
                           session_raw=admission.session_raw)
    return _token_response(request, context, issued_at)


def _session_cache_key(session_key: str) -> str:
    """Where the session lives in Redis, when sessions are `cached_db` on the default (Redis) cache; else ''."""
    from django.contrib.sessions.backends import cached_db

    if (not session_key or settings.SESSION_ENGINE != "django.contrib.sessions.backends.cached_db"
            or settings.SESSION_CACHE_ALIAS != "default" or not hasattr(cache, "loads_raw")):
        return ""
    try:
        return cache.make_and_validate_key(cached_db.KEY_PREFIX + session_key)
    except Exception:  # a cookie that is not a valid cache key: let Django's session code deal with it
        return ""


def _token_response(request, context, issued_at: int) -> JsonResponse:
    request.user = context.user
    token = voice_token_issue(connection=context.connection, user=context.user, now=issued_at, mark_presence=False)
    response = JsonResponse(token.as_json())
    patch_vary_headers(response, ("Cookie",))
    return response


def _context_serves(context, session) -> bool:
    """The common case, by Django's rules: an active member of a ready workspace whose session is still valid."""
    return (context.is_member and context.ready and voice_token_issuable(connection=context.connection)
            and session_user_verified(session, user=context.user))


def _rate_limited(retry_after: int) -> JsonResponse:
    response = JsonResponse({"error": "rate_limited", "message": "Too many token requests; try again shortly.",
                             "retry_after": retry_after}, status=429)
    response["Retry-After"] = str(retry_after)
    return response


@api_member_required
def _voice_token_checked(request):
    retry_after = voice_token_rate_limited(user_id=request.user.pk)
    if retry_after:
        return _rate_limited(retry_after)
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
    connection, _ = connection_for_webhook(workspace_id=workspace_id)
    return connection


def _resolve_outbound(request, workspace_id: int, **kwargs):
    """The connection, plus the outbound call's member and caller-ID checks read in the same query (used by
    `call_outbound_start` only if they match what it decides to check; nothing is trusted before the
    signature is)."""
    user_id, caller_id = None, ""
    if request.method == "POST" and request.POST.get("From", "").startswith("client:"):
        parsed = identity_parse(request.POST["From"])
        if parsed is not None and parsed[0] == workspace_id:
            user_id = parsed[1]
        requested = request.POST.get("CallerId", "").strip()
        if requested.startswith("+"):  # E.164 from the "Call from" list: no country needed to parse it
            try:
                caller_id = numbering.to_e164(requested)
            except numbering.InvalidNumber:
                caller_id = ""
    connection, request.outbound_checks = connection_for_webhook(workspace_id=workspace_id, user_id=user_id,
                                                                 caller_id_e164=caller_id)
    return connection


def _public(name: str, workspace_id: int) -> str:
    base = getattr(settings, "PUBLIC_BASE_URL", "").rstrip("/")
    return f"{base}{_voice_path(name, workspace_id, get_script_prefix())}"


@functools.lru_cache(maxsize=4096)
def _voice_path(name: str, workspace_id: int, script_prefix: str) -> str:
    """`reverse()` of a voice webhook, cached: every TwiML answer names two or three of them."""
    return reverse(name, args=[workspace_id])


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
        local_presence=request.twilio_connection.local_presence, checks=getattr(request, "outbound_checks", None),
    )
    if not decision.allowed:
        return _refuse(decision.message)
    return _dial_twiml(workspace.pk, caller_id=decision.caller_id, to_number=decision.to_number)


def _dial_twiml(workspace_id: int, *, caller_id: str, to_number: str) -> HttpResponse:
    response = VoiceResponse()
    dial = response.dial(caller_id=caller_id, answer_on_bridge=True,
                         action=_public("voice:dial_done", workspace_id), method="POST")
    dial.number(to_number, status_callback=_public("voice:leg_status", workspace_id),
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


@csrf_exempt
def voice_outbound(request, workspace_id: int):
    """The TwiML app's voice URL: browser calls (From=client:…) go out; calls to our numbers ring the browsers.

    A browser call with an E.164 caller ID, signed with credentials this process knows, is answered with one
    guarded INSERT (`_outbound_fast`); everything else, and anything that guard refuses, goes the checked way.
    """
    response = _outbound_fast(request, workspace_id)
    if response is None:
        response = _voice_outbound_checked(request, workspace_id=workspace_id)
    return response


def _outbound_fast(request, workspace_id: int):
    if request.method != "POST":
        return None
    post = request.POST
    parsed = identity_parse(post.get("From", ""))
    requested = post.get("CallerId", "").strip()
    call_sid = post.get("CallSid", "")
    if (not post.get("From", "").startswith("client:") or parsed is None or parsed[0] != workspace_id
            or not requested.startswith("+") or not call_sid):
        return None
    credentials = webhook_credentials_cached(workspace_id=workspace_id)
    if credentials is None:
        return None
    account_sid = posted_account_sid(request)
    if not signature_is_valid(request, credentials.auth_token) or (account_sid and
                                                                   account_sid != credentials.account_sid):
        webhook_credentials_forget(workspace_id=workspace_id)  # rotated? the checked path reads them again
        return None
    try:
        caller_id = numbering.to_e164(requested)
        to_number = numbering.to_e164(post.get("To", ""), default_country=credentials.default_country)
    except numbering.InvalidNumber:
        return None
    call = call_services.call_outbound_record(credentials=credentials, call_sid=call_sid[:34], user_id=parsed[1],
                                              to_number=to_number, caller_id=caller_id)
    if call is None:
        return None
    return _dial_twiml(workspace_id, caller_id=call.caller_id, to_number=call.to_number)


@twilio_webhook(resolve=_resolve_outbound)
def _voice_outbound_checked(request, workspace_id: int):
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
