"""Login throttling (django-axes, docs/security.md): the account guessed at is locked, not the office it is
guessed from.

- A **username** is locked after `AXES_FAILURE_LIMIT` failed logins (from any addresses).
- An **address** is locked only when failed logins for `AXES_ADDRESS_USERNAME_LIMIT` *different* usernames (much
  higher) came from it within the cool-off: a password spray, not a colleague's typos (a successful login clears
  that user's failures).
- A login refused because of a lock is not counted (`AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False`): a
  correct password never adds a failure, and the lock does not grow while the owner tries.
- The lockout page names what is locked: the account, or the network address.
"""
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username, get_cool_off, get_failure_limit
from axes.models import AccessAttempt
from django.conf import settings
from django.shortcuts import render
from django.utils import timezone

LOCKED_ACCOUNT = "account"
LOCKED_ADDRESS = "address"


def address_username_limit() -> int:
    return int(getattr(settings, "AXES_ADDRESS_USERNAME_LIMIT", 20))


def failed_usernames_from(*, ip_address: str) -> int:
    """How many different usernames have failed logins from this address within the cool-off."""
    if not ip_address:
        return 0
    attempts = AccessAttempt.objects.filter(ip_address=ip_address, failures_since_start__gt=0)
    cool_off = get_cool_off()
    if cool_off:
        attempts = attempts.filter(attempt_time__gte=timezone.now() - cool_off)
    return attempts.values("username").distinct().count()


class LoginThrottleHandler(AxesDatabaseHandler):
    """AxesDatabaseHandler counting failures per username (AXES_LOCKOUT_PARAMETERS = ["username"]), plus the
    address lock on distinct usernames. Records on the request what is locked, for the lockout page."""

    def is_locked(self, request, credentials=None) -> bool:
        if super().is_locked(request, credentials):
            request.axes_lock_kind = LOCKED_ACCOUNT
            return True
        if failed_usernames_from(ip_address=getattr(request, "axes_ip_address", "")) >= address_username_limit():
            request.axes_lock_kind = LOCKED_ADDRESS
            return True
        return False


def lockout_response(request, original_response=None, credentials=None):
    """AXES_LOCKOUT_CALLABLE: the lockout page (HTTP 429) saying whether the account or the address is locked."""
    kind = getattr(request, "axes_lock_kind", LOCKED_ACCOUNT)
    context = {
        "locked": kind,
        "failure_limit": get_failure_limit(request, credentials),
        "address_limit": address_username_limit(),
        "username": get_client_username(request, credentials) or "",
        "ip_address": getattr(request, "axes_ip_address", ""),
        "cooloff_timedelta": get_cool_off(request),
        "cooloff_text": duration_words(get_cool_off(request)),
    }
    return render(request, settings.AXES_LOCKOUT_TEMPLATE, context, status=settings.AXES_HTTP_RESPONSE_CODE)


def duration_words(value) -> str:
    """A lock's length in words: "1 hour", "1 hour 30 minutes", "45 minutes", "30 seconds" (empty: no length)."""
    if not value:
        return ""
    seconds = int(value.total_seconds()) if hasattr(value, "total_seconds") else int(float(value) * 3600)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(hours, "hour"), (minutes, "minute")] + ([(secs, "second")] if not hours and not minutes else [])
    return " ".join(f"{n} {unit}{'s' if n != 1 else ''}" for n, unit in parts if n)
