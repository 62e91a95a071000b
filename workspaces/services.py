import contextvars
import re

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.text import slugify

from workspaces.models import AuditEntry, Membership, WorkerHeartbeat, Workspace


@transaction.atomic
def workspace_create(*, name: str, owner=None, default_country: str = "US") -> Workspace:
    base = slugify(name)[:50] or "workspace"
    slug, n = base, 1
    while Workspace.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    workspace = Workspace.objects.create(name=name, slug=slug, default_country=default_country)
    if owner is not None:
        membership_create(workspace=workspace, user=owner, role=Membership.Role.ADMIN)
    return workspace


@transaction.atomic
def membership_create(*, workspace: Workspace, user, role: str = Membership.Role.MEMBER) -> Membership:
    membership, created = Membership.objects.get_or_create(workspace=workspace, user=user, defaults={"role": role})
    if not created and membership.role != role:
        membership.role = role
        membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def demo_workspace_ensure(*, username: str, password: str, email: str = "") -> tuple[Workspace, bool]:
    """The demo workspace with an admin user who is also a Django superuser (for /admin/)."""
    User = get_user_model()
    user, created = User.objects.get_or_create(username=username, defaults={"email": email})
    if created:
        user.set_password(password)
        user.is_staff = True
        user.is_superuser = True
        user.save()
    workspace = Workspace.objects.filter(slug="demo").first()
    if workspace is None:
        workspace = Workspace.objects.create(name="Demo workspace", slug="demo")
    membership_create(workspace=workspace, user=user, role=Membership.Role.ADMIN)
    return workspace, created


@transaction.atomic
def worker_heartbeat_record(*, hostname: str, source: str = "") -> WorkerHeartbeat:
    now = timezone.now()
    heartbeat, created = WorkerHeartbeat.objects.get_or_create(
        hostname=hostname[:200], defaults={"last_seen_at": now, "beats": 1, "last_source": source[:40]}
    )
    if not created:
        WorkerHeartbeat.objects.filter(pk=heartbeat.pk).update(last_seen_at=now, beats=F("beats") + 1,
                                                               last_source=source[:40])
        heartbeat.refresh_from_db()
    return heartbeat


# ---------------------------------------------------------------------------
# Two-factor sign-in (django-otp): one TOTP device (an authenticator app) per user, plus static recovery codes.

RECOVERY_CODE_COUNT = 10
TOTP_DEVICE_NAME = "Authenticator app"
RECOVERY_DEVICE_NAME = "Recovery codes"


@transaction.atomic
def two_factor_enrolment_start(*, user):
    """The user's unconfirmed TOTP device (created on first call, the same secret on reload until confirmed); its
    key is stored encrypted (`AuthenticatorDevice`)."""
    from workspaces.models import AuthenticatorDevice

    device = AuthenticatorDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()
    if device is None:
        device = AuthenticatorDevice.objects.create(user=user, name=TOTP_DEVICE_NAME, confirmed=False)
    return device


@transaction.atomic
def two_factor_enrolment_confirm(*, user, device_id: int, token: str) -> tuple[object, list[str]] | None:
    """Confirm the pending TOTP device with a code from the app; returns (device, recovery codes) or None.

    Other TOTP devices of the user are removed (one authenticator per user) and a fresh set of
    recovery codes replaces any earlier one. The codes are returned once, to be shown once.
    """
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from workspaces.models import AuthenticatorDevice

    device = AuthenticatorDevice.objects.select_for_update().filter(user=user, pk=device_id, confirmed=False).first()
    if device is None or not device.verify_token((token or "").strip().replace(" ", "")):
        return None
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    AuthenticatorDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
    TOTPDevice.objects.filter(user=user).delete()  # a device from before keys were encrypted
    return device, recovery_codes_regenerate(user=user)


@transaction.atomic
def recovery_codes_regenerate(*, user) -> list[str]:
    """A new set of single-use recovery codes (the old ones stop working); returned once, never stored in clear
    anywhere else."""
    from django_otp.plugins.otp_static.models import StaticDevice, StaticToken

    device, _ = StaticDevice.objects.get_or_create(user=user, name=RECOVERY_DEVICE_NAME, defaults={"confirmed": True})
    device.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in codes])
    return codes


@transaction.atomic
def two_factor_verify(*, user, token: str):
    """The confirmed device (TOTP, or a recovery code, which is then used up) that accepts token, or None."""
    from django_otp import match_token

    token = (token or "").strip().replace(" ", "").lower()
    if not token:
        return None
    return match_token(user, token)


@transaction.atomic
def workspace_security_update(*, workspace: Workspace, require_two_factor: bool, actor=None) -> Workspace:
    before = workspace.require_two_factor
    workspace.require_two_factor = bool(require_two_factor)
    workspace.save(update_fields=["require_two_factor"])
    if before != workspace.require_two_factor:
        audit_record(workspace=workspace, actor=actor, action=AuditEntry.Action.SECURITY_CHANGED, target=workspace,
                     details={"require_two_factor": workspace.require_two_factor})
    return workspace


# ---------------------------------------------------------------------------
# Audit log: explicit business events (who, what, on which object), written by the service that did it,
# inside its transaction. Details are plain facts chosen by the caller; any key that names a secret is
# dropped here as a second line of defence (docs/security.md).

_SECRET_KEY = re.compile(r"(secret|token|password|passwd|api_?key|auth|credential|value)", re.I)
_current_ip: contextvars.ContextVar[str | None] = contextvars.ContextVar("audit_ip", default=None)


def audit_ip_set(ip: str | None):
    """The client IP of the request being handled (AuditContextMiddleware); returns a reset token."""
    return _current_ip.set(ip or None)


def audit_ip_reset(token) -> None:
    _current_ip.reset(token)


def _clean_details(details) -> dict:
    def clean(value, depth=0):
        if isinstance(value, dict) and depth < 3:
            return {str(k)[:60]: clean(v, depth + 1) for k, v in value.items() if not _SECRET_KEY.search(str(k))}
        if isinstance(value, (list, tuple)) and depth < 3:
            return [clean(v, depth + 1) for v in list(value)[:50]]
        if value is None or isinstance(value, (bool, int, float)):
            return value
        return str(value)[:500]

    return clean(dict(details or {}))


def audit_record(*, workspace, actor, action: str, target=None, details: dict | None = None,
                 ip: str | None = None) -> AuditEntry:
    """One audit row. `target` is the model instance acted on (type, id and label are stored, never its
    fields); `actor` a user or None (the system, e.g. a resumed task); `ip` defaults to the current request's.
    One INSERT, in the caller's transaction (so the row commits or rolls back with the change itself)."""
    user = actor if (actor is not None and getattr(actor, "is_authenticated", False)) else None
    return AuditEntry.objects.create(
        workspace_id=getattr(workspace, "pk", workspace),
        actor=user,
        actor_label=user.get_username()[:150] if user is not None else "",
        action=str(action),
        object_type=target._meta.label if target is not None else "",
        object_id=str(target.pk) if target is not None and target.pk is not None else "",
        object_label=str(target)[:200] if target is not None else "",
        details=_clean_details(details),
        ip_address=ip or _current_ip.get(),
    )
