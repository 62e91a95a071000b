"""Every `/v1/agents/<identifier>/…` webhook Twilio calls: the incoming call (`twilio-config`), the
ConversationRelay handover after `<Connect>`, a handover's `<Dial>` result, a warm transfer's conference callbacks
(`transfer-*`: calls.services.transfers) and the recording status callback.

All signature-checked with the workspace's auth token (`resolve_connector`); the TwiML ones never answer 500.
"""
import logging

from django.http import HttpResponse
from django.views.decorators.http import require_http_methods

from calls.services import recordings
from calls.webhooks import handover_webhooks
from connectors import services
from connectors.selectors import connector_for_webhook, webhook_connection
from telephony import webhook_security
from telephony.webhook_security import twilio_webhook

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


def _alert_on_failure(request) -> None:
    connector = getattr(request, "phone_connector", None)
    if connector is not None:
        services.connector_alert_set(connector=connector,
                                     text="A call failed with an internal error; it heard an apology.")


never_500 = webhook_security.never_500(apology=lambda: services.apology_twiml(), on_error=_alert_on_failure)


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


# The handover callbacks: the same views as a placed call's (calls.webhooks.handover_webhooks), kept to the
# connector's calls.
HANDOVERS = handover_webhooks(resolve=resolve_connector, never_500=never_500,
                              owner=lambda request: {"connector": request.phone_connector})


@require_http_methods(["POST"])
@twilio_webhook(resolve=resolve_connector)
def recording_status(request, identifier: str):
    """Signed; idempotent (Twilio retries, and events can arrive out of order). Always 204 once verified."""
    try:
        recordings.recording_callback_record(connector=request.phone_connector, params=request.POST.dict())
    except Exception:
        logger.exception("recording status callback failed", extra={"path": request.path})
        return HttpResponse(status=500)  # Twilio retries; nothing half-written (transaction)
    return HttpResponse(status=204)
