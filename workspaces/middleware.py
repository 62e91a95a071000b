from workspaces.selectors import membership_for_request

SESSION_KEY = "workspace_id"


class CurrentWorkspaceMiddleware:
    """Sets request.workspace and request.membership from the session (None when logged out or no membership).

    The membership comes from a per-user cache entry that every Membership/Workspace change
    invalidates (`workspaces.selectors.memberships_cached`, `workspaces.signals`).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.workspace = None
        request.membership = None
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            membership = membership_for_request(user=user, workspace_id=request.session.get(SESSION_KEY))
            if membership is not None:
                request.membership = membership
                request.workspace = membership.workspace
                if request.session.get(SESSION_KEY) != membership.workspace_id:
                    request.session[SESSION_KEY] = membership.workspace_id
        return self.get_response(request)


# Set at login (workspaces.signals) to whether the user has a confirmed second-factor device, so the check
# below costs no query per request; enrolment sets it too.
TWO_FACTOR_HAS_DEVICE_KEY = "two_factor_has_device"
# Pages a session that still owes its second factor may open. Not "/v1/": it holds session views (the voice
# token, caller IDs, number normalisation) as well as Twilio's webhooks; the webhooks are exempted one by one
# by their view's SIGNED_WEBHOOK_ATTRIBUTE (set by telephony.webhook_security.twilio_webhook).
TWO_FACTOR_EXEMPT_PREFIXES = ("/login/", "/logout/", "/account/two-factor/", "/admin/logout/", "/healthz")
SIGNED_WEBHOOK_ATTRIBUTE = "signed_webhook"


def two_factor_verified(request) -> bool:
    from django_otp import DEVICE_ID_SESSION_KEY

    return bool(request.session.get(DEVICE_ID_SESSION_KEY))


def is_signed_webhook(path: str) -> bool:
    """True when `path` routes to a view that checks its own request signature (Twilio's webhooks): such a
    view authenticates the request itself and never uses the session."""
    from django.urls import Resolver404, resolve

    try:
        match = resolve(path)
    except Resolver404:
        return False
    return bool(getattr(match.func, SIGNED_WEBHOOK_ATTRIBUTE, False))


class TwoFactorMiddleware:
    """After the password step: a user with a device must enter a code (/login/verify/) before anything else;
    a user without one is sent to enrolment when their current workspace requires two-factor sign-in, or
    for /admin/ when they are staff and OTP_REQUIRED_FOR_STAFF is on (production).

    Sets `request.second_factor_pending` (True while the session owes its code step or enrolment), which the
    context processor reads to leave the workspace's chrome (sidebar, dialer, voice token) off the pages such a
    session may open."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from django.conf import settings
        from django.urls import reverse
        from django.utils.http import urlencode

        request.second_factor_pending = False
        path = request.path_info
        user = getattr(request, "user", None)
        if (user is None or not user.is_authenticated
                or path.startswith("/" + settings.STATIC_URL.lstrip("/")) or two_factor_verified(request)):
            return self.get_response(request)
        has_device = bool(request.session.get(TWO_FACTOR_HAS_DEVICE_KEY))
        workspace = getattr(request, "workspace", None)
        required = bool(workspace is not None and workspace.require_two_factor)
        if not required and path.startswith("/admin/") and user.is_staff:
            required = bool(getattr(settings, "OTP_REQUIRED_FOR_STAFF", False))
        if not (has_device or required):
            return self.get_response(request)
        request.second_factor_pending = True
        if path.startswith(TWO_FACTOR_EXEMPT_PREFIXES) or is_signed_webhook(path):
            return self.get_response(request)
        query = "?" + urlencode({"next": request.get_full_path()})
        if has_device:
            return self._send_to(request, reverse("two_factor_verify") + query)
        return self._send_to(request, reverse("two_factor_setup") + query)

    @staticmethod
    def _send_to(request, url: str):
        from django.http import HttpResponse
        from django.shortcuts import redirect

        if request.headers.get("HX-Request"):
            # An htmx fragment request: have htmx load the whole page, not swap it into a fragment.
            response = HttpResponse(status=204)
            response["HX-Redirect"] = url
            return response
        return redirect(url)


class AuditContextMiddleware:
    """Makes the client's IP (as django-axes sees it: REMOTE_ADDR, or X-Forwarded-For behind a configured
    proxy) available to `workspaces.services.audit_record` while the request is handled."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from axes.helpers import get_client_ip_address

        from workspaces.services import audit_ip_reset, audit_ip_set

        token = audit_ip_set(get_client_ip_address(request))
        try:
            return self.get_response(request)
        finally:
            audit_ip_reset(token)


def second_factor_pending(*, user, session) -> bool:
    """True when this logged-in session has not passed the second factor it needs: the user has a device
    (known at login) and has not entered a code, or the session's workspace requires two-factor sign-in and
    the user has none yet. For sockets, where TwoFactorMiddleware does not run."""
    from django_otp import DEVICE_ID_SESSION_KEY

    if user is None or not user.is_authenticated or session is None or session.get(DEVICE_ID_SESSION_KEY):
        return False
    if session.get(TWO_FACTOR_HAS_DEVICE_KEY):
        return True
    membership = membership_for_request(user=user, workspace_id=session.get(SESSION_KEY))
    return bool(membership is not None and membership.workspace.require_two_factor)


class TwoFactorSocketMiddleware:
    """ASGI middleware for browser websockets, inside channels' AuthMiddlewareStack: a session that still owes
    its second factor is treated as logged out (the consumer then refuses it as it refuses any stranger)."""

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        from asgiref.sync import sync_to_async
        from django.contrib.auth.models import AnonymousUser

        pending = await sync_to_async(second_factor_pending, thread_sensitive=True)(
            user=scope.get("user"), session=scope.get("session"))
        if pending:
            scope = dict(scope, user=AnonymousUser())
        return await self.inner(scope, receive, send)
