"""Invalidate the middleware's cached memberships whenever a Membership or Workspace changes.

Every save and delete made through the ORM (services, admin, shell; cascades included)
replaces the generation of each affected user at once and again when the transaction
commits (the second one covers a request that read the old rows while the change was
still uncommitted). Bulk `QuerySet.update()` / `bulk_create()` on these models send no
signals: code doing that must call `membership_cache_invalidate` itself.
"""
from django.contrib.auth.signals import user_logged_in
from django.db import transaction
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver

from workspaces.models import Membership, Workspace
from workspaces.selectors import membership_cache_bump


def membership_cache_invalidate(*, user_ids) -> None:
    user_ids = sorted({uid for uid in user_ids if uid is not None})
    if not user_ids:
        return

    def bump():
        for uid in user_ids:
            membership_cache_bump(user_id=uid)

    bump()
    transaction.on_commit(bump, robust=True)


@receiver(pre_save, sender=Membership, dispatch_uid="workspaces.membership_pre_save_cache")
def _membership_pre_save(sender, instance, raw=False, update_fields=None, **kwargs):
    # A membership moved to another user: the previous user loses it too.
    if raw or instance.pk is None or (update_fields is not None and "user" not in update_fields):
        return
    previous = Membership.objects.filter(pk=instance.pk).values_list("user_id", flat=True).first()
    if previous is not None and previous != instance.user_id:
        membership_cache_invalidate(user_ids=[previous])


@receiver(post_save, sender=Membership, dispatch_uid="workspaces.membership_saved_cache")
@receiver(post_delete, sender=Membership, dispatch_uid="workspaces.membership_deleted_cache")
def _membership_changed(sender, instance, **kwargs):
    membership_cache_invalidate(user_ids=[instance.user_id])


@receiver(post_save, sender=Workspace, dispatch_uid="workspaces.workspace_saved_cache")
@receiver(post_delete, sender=Workspace, dispatch_uid="workspaces.workspace_deleted_cache")
def _workspace_changed(sender, instance, created=False, **kwargs):
    if created:
        return  # no members yet; a membership created later invalidates its user
    membership_cache_invalidate(
        user_ids=Membership.objects.filter(workspace_id=instance.pk).values_list("user_id", flat=True)
    )


@receiver(user_logged_in, dispatch_uid="workspaces.two_factor_state_on_login")
def _two_factor_state_on_login(sender, request, user, **kwargs):
    """Remember in the session whether this user has a second factor to enter (TwoFactorMiddleware)."""
    from django_otp import user_has_device

    from workspaces.middleware import TWO_FACTOR_HAS_DEVICE_KEY

    if request is not None and hasattr(request, "session"):
        request.session[TWO_FACTOR_HAS_DEVICE_KEY] = user_has_device(user)
