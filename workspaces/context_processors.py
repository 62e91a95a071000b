def workspace(request):
    membership = getattr(request, "membership", None)
    return {
        "current_workspace": getattr(request, "workspace", None),
        "current_membership": membership,
        "is_workspace_admin": bool(membership and membership.is_admin),
    }
