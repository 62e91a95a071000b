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
