"""Views Twilio calls: the incoming-call webhook and the post-<Connect> handoff. Never a 500 to Twilio."""
import copy
import logging
from functools import wraps

from django.http import Http404, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from dialer.webhook_security import posted_account_sid, signature_is_valid, twilio_webhook
from workspaces.middleware import resolves_own_workspace

from . import services
from .handover import relay_handoff_twiml
from .selectors import (
    connector_for_webhook,
    webhook_call_cached,
    webhook_call_context,
    webhook_call_forget,
    webhook_call_remember,
    webhook_connection,
)

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


def _resolve_call(request, identifier: str, **kwargs):
    """The incoming call's connector, version, readiness and credentials in one query (`webhook_call_context`)."""
    call = webhook_call_context(identifier=identifier)
    if call is None:
        webhook_call_forget(identifier=identifier)
        return None
    # What was just read is the truth whoever asked, so it is kept before the signature is checked: a forged
    # request then does not leave the connector's genuine calls without the cached path.
    webhook_call_remember(call=call)
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
@csrf_exempt
def twilio_config(request, identifier: str):
    """A new call to a connector read before costs one statement (`_answer_from_cache`); anything else, or
    anything that statement cannot vouch for, takes the careful path (`_twilio_config_checked`)."""
    cached = webhook_call_cached(identifier=identifier)
    if cached is not None:
        response = _answer_from_cache(request, cached)
        if response is not None:
            return response
    return _twilio_config_checked(request, identifier)


def _answer_from_cache(request, cached) -> HttpResponse | None:
    """The signature checked with the kept token, then the guarded INSERT (`inbound_call_answer_cached`).

    None (the entry forgotten) when the signature or AccountSid does not match the kept credentials (a
    rotated token, or a forged request: the careful path re-reads and decides) or when the INSERT wrote
    nothing (something changed, or a known CallSid).
    """
    identifier = cached.connector.identifier
    account_sid = posted_account_sid(request)
    if (account_sid and account_sid != cached.account_sid) or not signature_is_valid(request, cached.auth_token):
        webhook_call_forget(identifier=identifier)
        return None
    try:
        twiml = services.inbound_call_answer_cached(call=cached, params=_params(request))
    except Exception:
        webhook_call_forget(identifier=identifier)
        request.phone_connector = copy.copy(cached.connector)  # never_500 records the alert on it
        raise
    if twiml is None:
        webhook_call_forget(identifier=identifier)
        return None
    return _twiml(twiml)


@twilio_webhook(resolve=_resolve_call)
def _twilio_config_checked(request, identifier: str):
    """Read now (`webhook_call_context`), signature checked with those credentials, then `inbound_call_answer`:
    retries, re-routes, rejections and their alerts."""
    _, twiml = services.inbound_call_answer(connector=request.phone_connector, params=_params(request),
                                            ready_version=request.webhook_call.ready_version)
    return _twiml(twiml)


@never_500
@require_http_methods(["GET", "POST"])
@twilio_webhook(resolve=resolve_connector)
def handoff(request, identifier: str):
    return _twiml(relay_handoff_twiml(connector=request.phone_connector, params=_params(request)))
