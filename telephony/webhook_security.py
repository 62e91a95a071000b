"""The one check every view Twilio calls goes through: `X-Twilio-Signature`, always (DEBUG too).

    @twilio_webhook(resolve=lambda request, **kw: <TwilioConnection or None>)
    def view(request, ...): request.twilio_connection is the verified connection

The URL Twilio signed is rebuilt from PUBLIC_BASE_URL (or, when
TWILIO_TRUST_PROXY_HEADERS is on, from X-Forwarded-Proto/Host), so validation
works behind a TLS-terminating proxy. The posted AccountSid must be the
connection's account. Failures answer 403 and are logged without secrets.

The body is read and parsed once, before the signature is checked and outside any view's error handling: a body
that cannot be read (malformed multipart, over DATA_UPLOAD_MAX_MEMORY_SIZE, too many fields, not UTF-8 where it
is signed as text) is answered 400 at once, and nothing is written (no apology, no alert).
"""
import logging
from functools import wraps
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import BadRequest, SuspiciousOperation
from django.http import Http404, HttpResponse, HttpResponseBadRequest, HttpResponseForbidden
from django.http.multipartparser import MultiPartParserError
from django.views.decorators.csrf import csrf_exempt
from twilio.request_validator import RequestValidator

logger = logging.getLogger(__name__)


def public_url(request) -> str:
    """The absolute URL Twilio requested, as Twilio saw it."""
    path = request.get_full_path()
    if getattr(settings, "TWILIO_TRUST_PROXY_HEADERS", False) and request.META.get("HTTP_X_FORWARDED_HOST"):
        proto = request.META.get("HTTP_X_FORWARDED_PROTO", "https").split(",")[0].strip()
        host = request.META["HTTP_X_FORWARDED_HOST"].split(",")[0].strip()
        return f"{proto}://{host}{path}"
    base = getattr(settings, "PUBLIC_BASE_URL", "")
    if base:
        parts = urlsplit(base)
        return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}{path}"
    return request.build_absolute_uri(path)


def signature_is_valid(request, auth_token: str) -> bool:
    signature = request.META.get("HTTP_X_TWILIO_SIGNATURE", "")
    if not signature or not auth_token:
        return False
    url = public_url(request)
    validator = RequestValidator(auth_token)
    if request.method == "POST":
        content_type = request.META.get("CONTENT_TYPE", "")
        if "bodySHA256" in request.GET and not content_type.startswith("application/x-www-form-urlencoded"):
            params = request.body.decode("utf-8")
        else:
            params = request.POST
    else:
        params = {}
    return validator.validate(url, params, signature)


# What reading a hostile body raises: Django's parse errors and its size/field limits (SuspiciousOperation).
UNREADABLE_BODY = (MultiPartParserError, SuspiciousOperation, BadRequest, UnicodeDecodeError)


def body_is_readable(request) -> bool:
    """Read and parse the body now (Django caches both), so nothing later meets a parse error."""
    if request.method != "POST":
        return True
    try:
        body = request.body
        if "bodySHA256" in request.GET and not request.META.get("CONTENT_TYPE", "").startswith(
                "application/x-www-form-urlencoded"):
            body.decode("utf-8")
        else:
            request.POST  # noqa: B018 - parses (and caches) the form
    except UNREADABLE_BODY as exc:
        logger.warning("twilio webhook rejected: unreadable body",
                       extra={"path": request.path, "error": type(exc).__name__})
        return False
    return True


def posted_account_sid(request) -> str:
    return request.POST.get("AccountSid") or request.GET.get("AccountSid") or ""


def twilio_webhook(resolve):
    """`resolve(request, **kwargs)` returns the TwilioConnection whose token signs this URL, or None (404)."""

    def decorator(view):
        @csrf_exempt
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            connection = resolve(request, *args, **kwargs)
            if connection is None:
                raise Http404("Unknown webhook.")
            if not body_is_readable(request):
                return HttpResponseBadRequest("The request body could not be read.")
            if not signature_is_valid(request, connection.auth_token):
                logger.warning(
                    "twilio webhook rejected: bad or missing signature",
                    extra={"path": request.path, "workspace_id": connection.workspace_id,
                           "has_signature": bool(request.META.get("HTTP_X_TWILIO_SIGNATURE"))},
                )
                return HttpResponseForbidden("Invalid Twilio signature.")
            account_sid = posted_account_sid(request)
            if account_sid and account_sid != connection.account_sid:
                logger.warning(
                    "twilio webhook rejected: AccountSid of another account",
                    extra={"path": request.path, "workspace_id": connection.workspace_id, "posted_account": account_sid},
                )
                return HttpResponseForbidden("This webhook belongs to another Twilio account.")
            request.twilio_connection = connection
            _drain_outage_spool()  # the database answers again: record the calls noted while it was down
            return view(request, *args, **kwargs)

        # workspaces.middleware.TwoFactorMiddleware exempts exactly the views marked so (functools.wraps
        # carries the mark through the decorators outside this one).
        wrapper.signed_webhook = True
        return wrapper

    return decorator


def _drain_outage_spool() -> None:
    from telephony import spool

    if not spool.spool_pending():
        return
    try:
        spool.spool_drain()
    except Exception:
        logger.exception("could not record the calls noted during a database outage")


def never_500(*, apology, on_error=None):
    """Unexpected errors in a webhook become a spoken apology (and one logged exception), never a 500: Twilio
    would read its own error message to the caller.

    While PostgreSQL is down the call is noted in the local spool instead (`telephony.spool`) and recorded as a
    MissedCall by the first correctly signed webhook once the database is back.

    `apology()` returns the TwiML; `on_error(request)` may record the failure where people will see it (its own
    failure is logged, not raised). A 404 stays a 404; the signature check's 403 and a bad request's 400 are answers, not errors.
    """
    def decorate(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            try:
                return view(request, *args, **kwargs)
            except Http404:
                raise
            except (MultiPartParserError, SuspiciousOperation, BadRequest):
                # Defence in depth: a body nobody could read is the sender's fault: 400, no apology, no alert.
                return HttpResponseBadRequest("The request body could not be read.")
            except Exception as exc:
                from workspaces.outages import DATABASE, outage_kind

                logger.exception("twilio webhook failed", extra={"path": request.path})
                if outage_kind(exc) == DATABASE:
                    # Nothing can be written now: note the call locally; recorded once the database is back.
                    from telephony.spool import spool_append

                    spool_append(request)
                    return HttpResponse(apology(), content_type="text/xml; charset=utf-8")
                if on_error is not None:
                    try:
                        on_error(request)
                    except Exception:
                        logger.exception("could not record the webhook failure", extra={"path": request.path})
                return HttpResponse(apology(), content_type="text/xml; charset=utf-8")

        return wrapper

    return decorate
