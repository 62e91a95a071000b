from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from workspaces import services
from workspaces.decorators import workspace_member_required
from workspaces.forms import SwitchWorkspaceForm, WorkspaceCreateForm
from workspaces.middleware import SESSION_KEY
from workspaces.selectors import memberships_for_user


@workspace_member_required
def home(request):
    return render(request, "workspaces/home.html")


@require_GET
def healthz(request):
    return HttpResponse("ok", content_type="text/plain")


@require_POST
@login_required
def switch_workspace(request):
    form = SwitchWorkspaceForm(request.POST)
    if not form.is_valid():
        raise Http404
    membership = memberships_for_user(user=request.user).filter(workspace_id=form.cleaned_data["workspace_id"]).first()
    if membership is None:
        raise Http404("No such workspace.")
    request.session[SESSION_KEY] = membership.workspace_id
    return redirect("home")


@login_required
def workspace_create(request):
    """Staff only: a new workspace with its first admin; the staff user lands in it when they are that admin."""
    if not request.user.is_staff:
        raise PermissionDenied("Only staff can create workspaces.")
    form = WorkspaceCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        workspace = services.workspace_create(name=data["name"], owner=data["admin_username"],
                                              default_country=data["default_country"])
        messages.success(request, f"Workspace {workspace.name} created with {data['admin_username'].get_username()} "
                                  "as its admin.")
        if data["admin_username"].pk == request.user.pk:
            request.session[SESSION_KEY] = workspace.pk
        return redirect("home")
    return render(request, "workspaces/workspace_create.html", {"form": form})
