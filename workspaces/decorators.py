"""Access rules: every workspace page needs a membership; settings pages need the admin role."""
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse


def workspace_member_required(view):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if request.workspace is None:
            raise PermissionDenied("You are not a member of any workspace.")
        return view(request, *args, **kwargs)

    return wrapper


def workspace_admin_required(view):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if request.membership is None or not request.membership.is_admin:
            raise PermissionDenied("Only workspace admins can change settings.")
        return view(request, *args, **kwargs)

    return wrapper


def api_member_required(view):
    """JSON endpoints: 401 JSON when logged out, 403 JSON without a workspace."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return JsonResponse({"error": "not_authenticated", "message": "Log in first."}, status=401)
        if request.workspace is None:
            return JsonResponse({"error": "no_workspace", "message": "You are not a member of any workspace."}, status=403)
        return view(request, *args, **kwargs)

    return wrapper
