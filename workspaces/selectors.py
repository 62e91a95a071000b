from django.contrib.auth.models import AbstractBaseUser

from .models import Membership, Workspace


def memberships_for_user(*, user: AbstractBaseUser):
    return Membership.objects.select_related("workspace").filter(user=user).order_by("workspace__name")


def membership_get(*, user: AbstractBaseUser, workspace_id: int | None) -> Membership | None:
    """The user's membership in workspace_id, or their first one when workspace_id is None or not theirs."""
    qs = memberships_for_user(user=user)
    if workspace_id is not None:
        found = qs.filter(workspace_id=workspace_id).first()
        if found is not None:
            return found
    return qs.first()


def workspace_members(*, workspace: Workspace):
    return Membership.objects.select_related("user").filter(workspace=workspace).order_by("user__username")
