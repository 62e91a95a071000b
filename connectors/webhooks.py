"""Views Twilio calls: the incoming-call webhook and the post-<Connect> handoff. Never a 500 to Twilio."""
import logging
from functools import wraps

from django.http import Http404, HttpResponse
from django.views.decorators.http import require_http_methods

from dialer.webhook_security import twilio_webhook

from . import services
from .handover import relay_handoff_twiml
from .selectors import connector_for_webhook, webhook_connection

logger = logging.getLogger(__name__)


def _twiml(body: str, status: int = 200) -> HttpResponse:
    return HttpResponse(body, content_type="text/xml; charset=utf-8", status=status)


def resolve_connector(request, identifier: str, **kwargs):
    """`twilio_webhook`'s resolver for every `/v1/agents/<identifier>/…` callback: the connector (kept on the
    request) and its workspace's Twilio credentials, one query; None (404) for an unknown connector or a
    workspace without credentials."""
    connector = connector_for_webhook(identifier=identifier)
    if connector is None:
        return None
    request.phone_connector = connector
    return webhook_connection(connector=connector)


def never_500(view):
    """Unexpected errors become a spoken apology (and a logged exception), not a 500 Twilio would read out."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except Http404:
            raise
        except Exception:
            logger.exception("twilio webhook failed", extra={"path": request.path})
            connector = getattr(request, "phone_connector", None)
            if connector is not None:
                try:
                    services.connector_alert_set(connector=connector,
                                                 text="A call failed with an internal error; it heard an apology.")
                except Exception:
                    logger.exception("could not record the connector alert")
            return _twiml(services.apology_twiml())

    return wrapper


def _params(request) -> dict:
    params = request.GET.dict()
    if request.method == "POST":
        params.update(request.POST.dict())
    return params


@never_500
@require_http_methods(["GET", "POST"])
@twilio_webhook(resolve=resolve_connector)
def twilio_config(request, identifier: str):
    _, twiml = services.inbound_call_answer(connector=request.phone_connector, params=_params(request))
    return _twiml(twiml)


@never_500
@require_http_methods(["GET", "POST"])
@twilio_webhook(resolve=resolve_connector)
def handoff(request, identifier: str):
    return _twiml(relay_handoff_twiml(connector=request.phone_connector, params=_params(request)))
