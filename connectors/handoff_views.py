"""Twilio callbacks of handovers made by the live-call runtime (signature-checked, never a 500)."""
import logging

from django.http import Http404, HttpResponse
from django.views.decorators.http import require_http_methods

from dialer.webhook_security import twilio_webhook

from . import handover
from .selectors import connector_for_webhook

logger = logging.getLogger(__name__)


def _resolve(request, identifier: str, **kwargs):
    connector = connector_for_webhook(identifier=identifier)
    if connector is None:
        return None
    request.phone_connector = connector
    connection = getattr(connector.workspace, "twilio_connection", None)
    if connection is None or not connection.has_credentials:
        return None
    return connection


def _twiml(body: str) -> HttpResponse:
    return HttpResponse(body, content_type="text/xml; charset=utf-8")


def _params(request) -> dict:
    params = request.GET.dict()
    if request.method == "POST":
        params.update(request.POST.dict())
    return params


@require_http_methods(["GET", "POST"])
@twilio_webhook(resolve=_resolve)
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
