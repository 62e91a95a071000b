"""Twilio callbacks of handovers made by the live-call runtime (signature-checked, never a 500)."""
import logging

from django.http import Http404, HttpResponse
from django.views.decorators.http import require_http_methods

from dialer.webhook_security import twilio_webhook

from . import handover
from .webhooks import resolve_connector

logger = logging.getLogger(__name__)


def _twiml(body: str) -> HttpResponse:
    return HttpResponse(body, content_type="text/xml; charset=utf-8")


def _params(request) -> dict:
    params = request.GET.dict()
    if request.method == "POST":
        params.update(request.POST.dict())
    return params


@require_http_methods(["GET", "POST"])
@twilio_webhook(resolve=resolve_connector)
def dial_result(request, identifier: str):
    """`<Dial action>` of a handover: record answered / busy / no answer / failed once; say what's next."""
    try:
        return _twiml(handover.dial_result_record(connector=request.phone_connector,
                                                  handover_id=request.GET.get("handover"), params=_params(request)))
    except Http404:
        raise
    except Exception:
        logger.exception("dial result callback failed", extra={"path": request.path})
        return _twiml(handover.fallback_hangup_twiml())
