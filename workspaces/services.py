from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.text import slugify

from workspaces.models import Membership, WorkerHeartbeat, Workspace


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
