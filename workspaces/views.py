from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from workspaces.decorators import workspace_member_required
from workspaces.forms import SwitchWorkspaceForm
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
