"""What Twilio calls for an agent call we placed (`/v1/calls/outbound/<id>/…`): the answer, the asynchronous
answering-machine result, the status callback and the call's handovers (cold `dial-result`, ConversationRelay's
`handover`, the warm transfer's `transfer-*`: the services an incoming call's connector URLs reach, scoped to
this call session, since a placed call has no connector). Signature-checked with the workspace's auth token before
anything else; the answer never returns a 500 (a spoken apology instead)."""
import logging

from django.http import Http404, HttpResponse
from django.views.decorators.http import require_http_methods, require_POST

from calls.services import handovers, outbound, transfers
from calls.services.admission import apology_twiml
from telephony import webhook_security
from telephony.webhook_security import twilio_webhook

logger = logging.getLogger(__name__)


def resolve_outbound(request, session_id: int, **kwargs):
    session, connection = outbound.outbound_session_for_webhook(session_id=session_id)
    if session is None or connection is None or not connection.has_credentials:
        return None
    request.call_session = session
    return connection


never_500 = webhook_security.never_500(apology=lambda: apology_twiml())


@never_500
@require_POST
@twilio_webhook(resolve=resolve_outbound)
def outbound_answer(request, session_id: int):
    twiml = outbound.outbound_answer_twiml(session=request.call_session, params=request.POST.dict())
    return HttpResponse(twiml, content_type="text/xml; charset=utf-8")


@require_POST
@twilio_webhook(resolve=resolve_outbound)
def outbound_amd(request, session_id: int):
    try:
        outbound.amd_result_record(session=request.call_session, params=request.POST.dict())
    except Exception:
        logger.exception("AMD callback failed", extra={"call_session_id": session_id})
        return HttpResponse(status=500)  # Twilio retries; the result is stored once
    return HttpResponse(status=204)


@require_POST
@twilio_webhook(resolve=resolve_outbound)
def outbound_status(request, session_id: int):
    try:
        outbound.outbound_status_record(session=request.call_session, params=request.POST.dict())
    except Exception:
        logger.exception("outbound status callback failed", extra={"call_session_id": session_id})
        return HttpResponse(status=500)
    return HttpResponse(status=204)


@require_POST
@twilio_webhook(resolve=resolve_outbound)
def outbound_recording_status(request, session_id: int):
    try:
        outbound.outbound_recording_record(session=request.call_session, params=request.POST.dict())
    except Exception:
        logger.exception("outbound recording callback failed", extra={"call_session_id": session_id})
        return HttpResponse(status=500)
    return HttpResponse(status=204)


# ---------------------------------------------------------------------------
# Handovers of a call an agent placed


def _twiml(body: str) -> HttpResponse:
    return HttpResponse(body, content_type="text/xml; charset=utf-8")


def _params(request) -> dict:
    params = request.GET.dict()
    if request.method == "POST":
        params.update(request.POST.dict())
    return params


@never_500
@require_http_methods(["GET", "POST"])
@twilio_webhook(resolve=resolve_outbound)
def outbound_relay_handover(request, session_id: int):
    """ConversationRelay's `<Connect action>` of a placed call: the recorded handover, the fallback, or hang up."""
    return _twiml(handovers.relay_handover_twiml(call_session=request.call_session, params=_params(request)))


@require_http_methods(["GET", "POST"])
@twilio_webhook(resolve=resolve_outbound)
def outbound_dial_result(request, session_id: int):
    """`<Dial action>` of a cold handover of a placed call."""
    try:
        return _twiml(handovers.dial_result_record(call_session=request.call_session,
                                                   handover_id=request.GET.get("handover"), params=_params(request)))
    except Exception:
        logger.exception("dial result callback failed", extra={"call_session_id": session_id})
        return _twiml(handovers.fallback_hangup_twiml())


@require_POST
@twilio_webhook(resolve=resolve_outbound)
def outbound_transfer_status(request, session_id: int):
    transfers.participant_status_record(call_session=request.call_session, handover_id=request.GET.get("handover"),
                                        attempt=request.GET.get("attempt"), params=request.POST.dict())
    return HttpResponse(status=204)


@require_POST
@twilio_webhook(resolve=resolve_outbound)
def outbound_rep_transfer_status(request, session_id: int):
    """A transfer to the dialer's reps on a call an agent placed: one rep's browser leg."""
    from calls.services import rep_transfers

    rep_transfers.rep_status_record(call_session=request.call_session, handover_id=request.GET.get("handover"),
                                    attempt=request.GET.get("attempt"), params=request.POST.dict())
    return HttpResponse(status=204)


@require_POST
@twilio_webhook(resolve=resolve_outbound)
def outbound_transfer_amd(request, session_id: int):
    transfers.participant_amd_record(call_session=request.call_session, handover_id=request.GET.get("handover"),
                                     attempt=request.GET.get("attempt"), params=request.POST.dict())
    return HttpResponse(status=204)


@never_500
@require_POST
@twilio_webhook(resolve=resolve_outbound)
def outbound_transfer_answer(request, session_id: int):
    return _twiml(transfers.answer_record(call_session=request.call_session, handover_id=request.GET.get("handover"),
                                          attempt=request.GET.get("attempt"), params=request.POST.dict()))


@never_500
@require_POST
@twilio_webhook(resolve=resolve_outbound)
def outbound_transfer_result(request, session_id: int):
    return _twiml(transfers.caller_result_record(call_session=request.call_session,
                                                 handover_id=request.GET.get("handover"), params=request.POST.dict()))


# ---------------------------------------------------------------------------
# Audio Twilio fetches for <Play>: signed, short-lived URLs (no session, no signature header on media fetches)


@require_http_methods(["GET", "HEAD"])
def voicemail_audio(request, token: str):
    """A version's voicemail recording, for the `<Play>` after the beep (agents.voicemail.audio_token)."""
    from agents import voicemail

    recording = voicemail.audio_for_token(token)
    if recording is None:
        raise Http404("This link has expired.")
    response = HttpResponse(bytes(recording.audio), content_type=recording.content_type)
    response["Cache-Control"] = "private, max-age=60"
    return response


@require_http_methods(["GET", "HEAD"])
def brief_audio(request, token: str):
    """A warm transfer's brief in the agent's own voice, for the `<Play>` in the person's `<Gather>`."""
    from calls.services import transfers

    audio = transfers.audio_for_token(token)
    if audio is None:
        raise Http404("This link has expired.")
    response = HttpResponse(bytes(audio.audio), content_type=audio.content_type)
    response["Cache-Control"] = "private, max-age=60"
    return response
