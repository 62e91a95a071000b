"""Studio pages for event webhooks (workspace admins only; thin: form → service → render)."""
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from agents import selectors as agent_selectors
from agents import services as agent_services
from agents.models import Environment
from webhooks import selectors, services
from webhooks.forms import EndpointForm
from webhooks.models import TEST_EVENT, EventType
from workspaces.decorators import workspace_admin_required


def _environment_or_404(request, kind):
    if kind not in Environment.Kind.values:
        raise Http404("No such environment.")
    agent_services.environments_ensure(workspace=request.workspace)
    return agent_selectors.environment_get(workspace=request.workspace, kind=kind)


def _endpoint_or_404(request, kind, endpoint_id):
    environment = _environment_or_404(request, kind)
    endpoint = selectors.endpoint_get(environment=environment, endpoint_id=endpoint_id)
    if endpoint is None:
        raise Http404("No such endpoint.")
    return environment, endpoint


def _list_page(request, environment, *, form=None, new_secret=None, new_endpoint=None, status=200):
    return render(request, "webhooks/endpoint_list.html", {
        "environment": environment,
        "environments": agent_selectors.environments_list(workspace=request.workspace),
        "endpoints": selectors.endpoints_list(environment=environment),
        "form": form or EndpointForm(prefix="endpoint"),
        "new_secret": new_secret, "new_endpoint": new_endpoint,
    }, status=status)


@workspace_admin_required
def endpoint_list(request, kind):
    environment = _environment_or_404(request, kind)
    if request.method != "POST":
        return _list_page(request, environment)
    form = EndpointForm(request.POST, prefix="endpoint")
    if not form.is_valid():
        return _list_page(request, environment, form=form, status=400)
    try:
        endpoint, secret = services.endpoint_create(environment=environment, **form.cleaned_data)
    except services.WebhookError as exc:
        form.add_error(None, str(exc))
        return _list_page(request, environment, form=form, status=400)
    # The secret is shown on this answer only (no redirect, no session, no message store).
    response = _list_page(request, environment, new_secret=secret, new_endpoint=endpoint)
    response["Cache-Control"] = "no-store"
    return response


@workspace_admin_required
def endpoint_detail(request, kind, endpoint_id):
    environment, endpoint = _endpoint_or_404(request, kind, endpoint_id)
    template = "webhooks/_delivery_log.html" if request.headers.get("HX-Request") else "webhooks/endpoint_detail.html"
    return render(request, template, {
        "environment": environment, "endpoint": endpoint, "log": selectors.delivery_log(endpoint=endpoint)})


@workspace_admin_required
def reference(request):
    """What a receiver needs: the event types, the headers, how to verify, the order guarantees."""
    events = [(value, label.split(": ", 1)[-1]) for value, label in EventType.choices]
    return render(request, "webhooks/reference.html", {"events": events, "test_event": TEST_EVENT})


@workspace_admin_required
@require_POST
def endpoint_enable(request, kind, endpoint_id):
    _, endpoint = _endpoint_or_404(request, kind, endpoint_id)
    services.endpoint_enable(endpoint=endpoint)
    messages.success(request, "Endpoint enabled.")
    return redirect("webhooks:detail", kind=kind, endpoint_id=endpoint.pk)


@workspace_admin_required
@require_POST
def endpoint_disable(request, kind, endpoint_id):
    _, endpoint = _endpoint_or_404(request, kind, endpoint_id)
    services.endpoint_disable(endpoint=endpoint, reason=f"Disabled by {request.user.get_username()}.")
    messages.success(request, "Endpoint disabled: it receives nothing until you enable it again.")
    return redirect("webhooks:detail", kind=kind, endpoint_id=endpoint.pk)


@workspace_admin_required
@require_POST
def endpoint_delete(request, kind, endpoint_id):
    _, endpoint = _endpoint_or_404(request, kind, endpoint_id)
    services.endpoint_delete(endpoint=endpoint)
    messages.success(request, f"Endpoint {endpoint.display_url} deleted.")
    return redirect("webhooks:list", kind=kind)


@workspace_admin_required
@require_POST
def endpoint_test(request, kind, endpoint_id):
    _, endpoint = _endpoint_or_404(request, kind, endpoint_id)
    try:
        services.event_send_test(endpoint=endpoint)
    except services.WebhookError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Test event queued: its delivery appears in the log below.")
    return redirect("webhooks:detail", kind=kind, endpoint_id=endpoint.pk)


@workspace_admin_required
@require_POST
def event_redeliver(request, kind, endpoint_id, event_id):
    _, endpoint = _endpoint_or_404(request, kind, endpoint_id)
    event = selectors.event_get(endpoint=endpoint, event_id=event_id)
    if event is None:
        raise Http404("No such event.")
    try:
        services.event_redeliver(event=event)
    except services.WebhookError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Event {event.msg_id} queued for redelivery (same webhook-id).")
    return redirect("webhooks:detail", kind=kind, endpoint_id=endpoint.pk)
