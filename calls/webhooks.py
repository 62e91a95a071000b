"""What Twilio calls for an agent call we placed (`/v1/calls/outbound/<id>/…`): the answer, the asynchronous
answering-machine result and the status callback. Signature-checked with the workspace's auth token before
anything else; the answer never returns a 500 (a spoken apology instead)."""
import logging

from django.http import HttpResponse
from django.views.decorators.http import require_POST

from calls.services import outbound
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
