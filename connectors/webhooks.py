"""Views Twilio calls: the incoming-call webhook and the post-<Connect> handoff. Never a 500 to Twilio."""
import logging
from functools import wraps

from django.http import Http404, HttpResponse
from django.views.decorators.http import require_http_methods

from dialer.webhook_security import twilio_webhook
from workspaces.middleware import resolves_own_workspace

from . import services
from .handover import relay_handoff_twiml
from .selectors import connector_for_webhook, webhook_call_context, webhook_connection

logger = logging.getLogger(__name__)


def _twiml(body: str, status: int = 200) -> HttpResponse:
    return HttpResponse(body, content_type="text/xml; charset=utf-8", status=status)


def _resolve(request, identifier: str, **kwargs):
    connector = connector_for_webhook(identifier=identifier)
    if connector is None:
        return None
    request.phone_connector = connector
    return webhook_connection(connector=connector)


def _resolve_call(request, identifier: str, **kwargs):
    """The incoming call's connector, version, readiness and credentials in one query (`webhook_call_context`)."""
    call = webhook_call_context(identifier=identifier)
    if call is None:
        return None
    request.phone_connector = call.connector
    request.webhook_call = call
    return call.connection


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


@resolves_own_workspace  # Twilio has no session: skip the user and workspace lookup
@never_500
@require_http_methods(["GET", "POST"])
@twilio_webhook(resolve=_resolve_call)
def twilio_config(request, identifier: str):
    _, twiml = services.inbound_call_answer(connector=request.phone_connector, params=_params(request),
                                            ready_version=request.webhook_call.ready_version)
    return _twiml(twiml)


@never_500
@require_http_methods(["GET", "POST"])
@twilio_webhook(resolve=_resolve)
def handoff(request, identifier: str):
    return _twiml(relay_handoff_twiml(connector=request.phone_connector, params=_params(request)))
