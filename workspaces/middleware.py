from .selectors import membership_for_request

SESSION_KEY = "workspace_id"


def workspace_resolve(request) -> None:
    """Set request.workspace and request.membership from the session (None when logged out or no membership).

    The membership comes from a per-user cache entry that every Membership/Workspace change
    invalidates (`workspaces.selectors.memberships_cached`, `workspaces.signals`).
    """
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


def resolves_own_workspace(view):
    """Mark a view that resolves the user and workspace itself (a hot JSON endpoint doing it in one query).

    `CurrentWorkspaceMiddleware` then leaves `request.workspace` / `request.membership` as None and does not
    touch `request.user`; the view must call `workspace_resolve(request)` before it relies on them.
    """
    view.resolves_own_workspace = True
    return view


class CurrentWorkspaceMiddleware:
    """Sets request.workspace and request.membership before the view runs (see `workspace_resolve`).

    Done in `process_view`, once the URL is resolved, so that views marked `resolves_own_workspace`
    pay for nothing they do not use. Requests that resolve to no view (404) have no workspace.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.workspace = None
        request.membership = None
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if not getattr(view_func, "resolves_own_workspace", False):
            workspace_resolve(request)
        return None
