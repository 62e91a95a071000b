def workspace(request):
    membership = getattr(request, "membership", None)
    # The top bar's switcher: the user's workspaces, loaded with the middleware's lookup (no extra query).
    memberships = getattr(membership, "all_memberships", None) or []
    return {
        "current_workspace": getattr(request, "workspace", None),
        "current_membership": membership,
        "is_workspace_admin": bool(membership and membership.is_admin),
        "user_memberships": memberships if len(memberships) > 1 else [],
    }
