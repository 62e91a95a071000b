def workspace(request):
    membership = getattr(request, "membership", None)
    # The top bar's switcher: the user's workspaces, loaded with the middleware's lookup (no extra query).
    memberships = getattr(membership, "all_memberships", None) or []
    # A session that still owes its second factor sees no workspace chrome: no sidebar, no dialer (whose script
    # would fetch a voice token).
    pending = bool(getattr(request, "second_factor_pending", False))
    return {
        "current_workspace": None if pending else getattr(request, "workspace", None),
        "current_membership": membership,
        "is_workspace_admin": bool(membership and membership.is_admin),
        "user_memberships": memberships if len(memberships) > 1 else [],
    }
