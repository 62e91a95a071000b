"""The dialer's Twilio voice webhooks (TwiML): browser calls out, calls to our numbers ring the browsers,
dial outcomes, status callbacks, voicemail.

Every view is `twilio_webhook`-checked (signature always, AccountSid of the workspace's connection) and
resolves the connection from the workspace id in the URL. TwiML is built with
`twilio.twiml.voice_response.VoiceResponse`.
"""
from __future__ import annotations

import logging
from email.utils import parsedate_to_datetime

from django.http import Http404, HttpResponse
from django.utils import timezone
from twilio.twiml.voice_response import VoiceResponse

from dialer import coaching
from dialer import services as call_services
from dialer.models import Call
from dialer.selectors import (
    connection_for_webhook,
)
from telephony.public_urls import absolute_url
from telephony.webhook_security import never_500, twilio_webhook

logger = logging.getLogger(__name__)

INBOUND_RING_SECONDS = 20
VOICEMAIL_MAX_SECONDS = 120
VOICEMAIL_GREETING = "Sorry, nobody can take your call right now. Please leave a message after the tone."
LEG_EVENTS = "initiated ringing answered completed"
APOLOGY = "Sorry, we could not connect your call because of a problem on our side. Please try again later."


def _apology() -> str:
    response = VoiceResponse()
    response.say(APOLOGY)
    response.hangup()
    return str(response)


# Every webhook here: an unexpected error is a spoken apology (logged), never a 500 read out by Twilio.
_never_500 = never_500(apology=_apology)


# ---------------------------------------------------------------------------
# Twilio webhooks (TwiML)


def _resolve(request, workspace_id: int, **kwargs):
    return connection_for_webhook(workspace_id=workspace_id)


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
        action=absolute_url("dialer:voicemail_done", workspace_id), method="POST",
        recording_status_callback=absolute_url("dialer:recording_status", workspace_id),
        recording_status_callback_method="POST",
        recording_status_callback_event="in-progress completed absent",
    )
    response.hangup()
    return response


def _outbound(request, workspace):
    if request.POST.get("Coaching"):  # a supervisor's browser joins a call's conference (dialer/coaching.py)
        twiml = coaching.coaching_answer(workspace=workspace, coaching_id=request.POST["Coaching"],
                                         from_identity=request.POST.get("From", ""),
                                         call_sid=request.POST.get("CallSid", ""))
        if twiml is None:
            return _refuse("Sorry, you cannot join that call.")
        return HttpResponse(twiml, content_type="text/xml; charset=utf-8")
    decision = call_services.call_outbound_start(
        workspace=workspace, call_sid=request.POST.get("CallSid", ""), from_identity=request.POST.get("From", ""),
        to=request.POST.get("To", ""), requested_caller_id=request.POST.get("CallerId", ""),
        local_presence=request.twilio_connection.local_presence,
    )
    if not decision.allowed:
        return _refuse(decision.message)
    response = VoiceResponse()
    dial = response.dial(caller_id=decision.caller_id, answer_on_bridge=True,
                         action=absolute_url("dialer:dial_done", workspace.pk), method="POST")
    dial.number(decision.to_number, status_callback=absolute_url("dialer:leg_status", workspace.pk),
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
                         action=absolute_url("dialer:dial_done", workspace.pk), method="POST")
    for identity in decision.identities:
        dial.client(identity, status_callback=absolute_url("dialer:leg_status", workspace.pk),
                    status_callback_event=LEG_EVENTS, status_callback_method="POST")
    return _twiml(response)


@_never_500
@twilio_webhook(resolve=_resolve)
def voice_outbound(request, workspace_id: int):
    """The TwiML app's voice URL: browser calls (From=client:…) go out; calls to our numbers ring the browsers."""
    if (refused := _method_not_allowed(request)) is not None:
        return refused
    workspace = request.twilio_connection.workspace
    if request.POST.get("From", "").startswith("client:"):
        return _outbound(request, workspace)
    return _inbound(request, workspace)


@_never_500
@twilio_webhook(resolve=_resolve)
def voice_inbound(request, workspace_id: int):
    """A number's own voice URL (when it is not pointed at the TwiML app)."""
    if (refused := _method_not_allowed(request)) is not None:
        return refused
    return _inbound(request, request.twilio_connection.workspace)


@_never_500
@twilio_webhook(resolve=_resolve)
def voice_dial_done(request, workspace_id: int):
    """`<Dial action>`: record the outcome; unanswered inbound calls go to voicemail."""
    if (refused := _method_not_allowed(request)) is not None:
        return refused
    workspace = request.twilio_connection.workspace
    dial_status = request.POST.get("DialCallStatus", "")
    moved = coaching.moved_call_twiml(workspace=workspace, call_sid=request.POST.get("CallSid", ""),
                                      dial_status=dial_status)
    if moved is not None:  # the other leg went into the call's conference (a supervisor joined): this one too
        return HttpResponse(moved, content_type="text/xml; charset=utf-8")
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


@_never_500
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


@_never_500
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


@_never_500
@twilio_webhook(resolve=_resolve)
def voice_voicemail_done(request, workspace_id: int):
    """`<Record action>`: the caller finished the message."""
    if (refused := _method_not_allowed(request)) is not None:
        return refused
    response = VoiceResponse()
    response.say("Thank you. Goodbye.")
    response.hangup()
    return _twiml(response)


@_never_500
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


@_never_500
@twilio_webhook(resolve=_resolve)
def voice_conference_status(request, workspace_id: int):
    """`<Conference statusCallback>` of a coached call's conference: its SID, supervisors joining and leaving."""
    if (refused := _method_not_allowed(request)) is not None:
        return refused
    coaching.coaching_conference_event(
        workspace=request.twilio_connection.workspace, conference_sid=request.POST.get("ConferenceSid", ""),
        friendly_name=request.POST.get("FriendlyName", ""), call_sid=request.POST.get("CallSid", ""),
        event=request.POST.get("StatusCallbackEvent", ""))
    return HttpResponse(status=204)
