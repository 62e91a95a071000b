from django.shortcuts import render

from workspaces.decorators import workspace_admin_required

from .selectors import connection_get


@workspace_admin_required
def settings_page(request):
    return render(request, "dialer/settings.html", {"connection": connection_get(workspace=request.workspace)})


@workspace_admin_required
def number_search(request):
    return render(request, "dialer/number_search.html", {})
