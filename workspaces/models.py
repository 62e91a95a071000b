from django.conf import settings
from django.db import models


class Workspace(models.Model):
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)
    default_country = models.CharField(
        max_length=2, default="US", help_text="ISO country used to read phone numbers typed without a country code."
    )
    require_two_factor = models.BooleanField(
        default=False, help_text="Every member must sign in with a second factor (an authenticator app)."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        ADMIN = "admin", "Admin"
        MEMBER = "member", "Member"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "user"], name="uniq_membership")]
        ordering = ["workspace__name", "user__username"]

    def __str__(self) -> str:
        return f"{self.user} in {self.workspace} ({self.role})"

    @property
    def is_admin(self) -> bool:
        return self.role == self.Role.ADMIN


class WorkerHeartbeat(models.Model):
    """The last time a Celery worker ran the heartbeat task (queued by beat every minute).

    Ops read it in the admin: a stale `last_seen_at` means no worker is consuming
    the queue, or beat is not running.
    """

    hostname = models.CharField(max_length=200, unique=True)
    last_seen_at = models.DateTimeField()
    beats = models.PositiveIntegerField(default=0)
    last_source = models.CharField(max_length=40, blank=True)

    class Meta:
        ordering = ["-last_seen_at"]

    def __str__(self) -> str:
        return f"{self.hostname} @ {self.last_seen_at:%Y-%m-%d %H:%M:%S}"
