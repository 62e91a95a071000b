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
# A call's handover callbacks (a connector's calls and a placed call's: one set of views)


def _twiml(body: str) -> HttpResponse:
    return HttpResponse(body, content_type="text/xml; charset=utf-8")


def _params(request) -> dict:
    params = request.GET.dict()
    if request.method == "POST":
        params.update(request.POST.dict())
    return params


def _ids(request) -> dict:
    return {"handover_id": request.GET.get("handover"), "attempt": request.GET.get("attempt"),
            "params": request.POST.dict()}


def handover_webhooks(*, resolve, never_500, owner) -> dict:
    """The callbacks of a call's handovers, by the last part of their URL (`handovers.callback_base` + name):
    ConversationRelay's `handover` (`<Connect action>`), a cold handover's `dial-result`, a warm transfer's
    `transfer-*` (calls.services.transfers) and a rep's leg of a transfer to the dialer reps. One set of views for
    the connector's URLs (`/v1/agents/<identifier>/…`, connectors/urls.py) and a placed call's
    (`/v1/calls/outbound/<id>/…`): `resolve` checks the signature and finds the owner, `owner(request)` is the
    scope every service keeps a callback to ({"connector": …} or {"call_session": …})."""
    from calls.services import rep_transfers

    signed = twilio_webhook(resolve=resolve)
    get_or_post, post = require_http_methods(["GET", "POST"]), require_POST

    def relay_handover(request, **_):
        """ConversationRelay's `<Connect action>`: the recorded handover is dialled, anything else hangs up."""
        return _twiml(handovers.relay_handover_twiml(**owner(request), params=_params(request)))

    def dial_result(request, **_):
        """`<Dial action>` of a handover: record answered / busy / no answer / failed once; say what's next."""
        try:
            return _twiml(handovers.dial_result_record(**owner(request), handover_id=request.GET.get("handover"),
                                                       params=_params(request)))
        except Http404:
            raise
        except Exception:
            logger.exception("dial result callback failed", extra={"path": request.path})
            return _twiml(handovers.fallback_hangup_twiml())

    def transfer_status(request, **_):
        """A warm transfer's person leg (participant status callback): ringing, busy, no answer, failed, completed."""
        transfers.participant_status_record(**owner(request), **_ids(request))
        return HttpResponse(status=204)

    def transfer_amd(request, **_):
        """Answering-machine detection on a warm transfer's person leg: a person hears the brief, a machine is
        hung up."""
        transfers.participant_amd_record(**owner(request), **_ids(request))
        return HttpResponse(status=204)

    def transfer_answer(request, **_):
        """The brief's `<Gather>`: 1 takes the call (joins the caller's conference), anything else declines."""
        return _twiml(transfers.answer_record(**owner(request), **_ids(request)))

    def transfer_result(request, **_):
        """The caller's `<Dial><Conference>` of a warm transfer ended (after the call, or the caller left the hold)."""
        ids = _ids(request)
        return _twiml(transfers.caller_result_record(**owner(request), handover_id=ids["handover_id"],
                                                     params=ids["params"]))

    def rep_transfer_status(request, **_):
        """A transfer to the dialer's reps: one rep's browser leg (participant status callback)."""
        rep_transfers.rep_status_record(**owner(request), **_ids(request))
        return HttpResponse(status=204)

    return {
        "handover": never_500(get_or_post(signed(relay_handover))),
        "dial-result": get_or_post(signed(dial_result)),
        "transfer-status": post(signed(transfer_status)),
        "transfer-amd": post(signed(transfer_amd)),
        "transfer-answer": never_500(post(signed(transfer_answer))),
        "transfer-result": never_500(post(signed(transfer_result))),
        "rep-transfer-status": post(signed(rep_transfer_status)),
    }


OUTBOUND_HANDOVERS = handover_webhooks(resolve=resolve_outbound, never_500=never_500,
                                       owner=lambda request: {"call_session": request.call_session})


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
