"""Studio pages for phone connectors (thin: form → service → render)."""
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from agents.services import environments_ensure
from connectors import selectors, services
from connectors.forms import AttachNumberForm, PhoneConnectorForm
from telephony import errors as twilio_errors
from telephony.public_urls import public_base_problem
from telephony.selectors import connection_get
from telephony.services import sandbox_active
from workspaces.decorators import workspace_admin_required, workspace_member_required
from workspaces.forms import apply_validation_error


def _connector_or_404(request, connector_id):
    connector = selectors.connector_get(workspace=request.workspace, connector_id=connector_id)
    if connector is None:
        raise Http404("No such connector.")
    return connector


@workspace_member_required
def connector_list(request):
    return render(request, "connectors/connector_list.html",
                  {"connectors": selectors.connectors_list(workspace=request.workspace)})


@workspace_admin_required
def connector_create(request):
    environments_ensure(workspace=request.workspace)
    form = PhoneConnectorForm(request.POST or None, workspace=request.workspace)
    if request.method == "POST" and form.is_valid():
        try:
            connector = services.connector_create(workspace=request.workspace, type=form.cleaned_data["type"],
                                                  actor=request.user, **form.service_kwargs())
        except ValidationError as exc:
            apply_validation_error(form, exc)
        else:
            if connector.enabled:
                messages.success(request, "Connector saved and enabled. Point your Twilio number at its webhook URL.")
            else:
                messages.error(request, "Connector saved but not enabled yet: see what it is missing below.")
            return redirect("connectors:detail", connector_id=connector.pk)
    return render(request, "connectors/connector_form.html", {"form": form, "connector": None})


@workspace_admin_required
def connector_edit(request, connector_id):
    connector = _connector_or_404(request, connector_id)
    initial = {"type": connector.type, "agent": connector.agent, "environment": connector.environment,
               "version_mode": connector.version_mode, "pinned_version": connector.pinned_version,
               "name": connector.name}
    form = PhoneConnectorForm(request.POST or None, workspace=request.workspace, initial=initial)
    if request.method == "POST" and form.is_valid():
        was_enabled = connector.enabled
        try:
            services.connector_update(connector=connector, actor=request.user, **form.service_kwargs())
        except ValidationError as exc:
            apply_validation_error(form, exc)
        else:
            if was_enabled and not connector.enabled:
                messages.error(request, "Connector saved and disabled: it cannot take calls with this setup "
                                        "(see below).")
            else:
                messages.success(request, "Connector saved.")
            return redirect("connectors:detail", connector_id=connector.pk)
    return render(request, "connectors/connector_form.html", {"form": form, "connector": connector})


@workspace_admin_required
@require_POST
def connector_pin(request, connector_id):
    """From an agent's Versions page: pin the connector to one of the agent's published versions."""
    from agents.models import AgentVersion

    connector = _connector_or_404(request, connector_id)
    version = AgentVersion.objects.filter(pk=request.POST.get("version_id") or 0, agent_id=connector.agent_id,
                                          agent__workspace=request.workspace).first()
    if version is None:
        raise Http404("No such version of this agent.")
    was_enabled = connector.enabled
    try:
        services.connector_pin(connector=connector, version=version)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        label = connector.name or "The connector"
        if was_enabled and not connector.enabled:
            messages.error(request, f"{label} is pinned to {version.label} and disabled: it cannot take calls with "
                                    "that version here (see the connector).")
        else:
            messages.success(request, f"{label} now answers with {version.label}.")
    return redirect("agents:versions", agent_id=connector.agent_id)


@workspace_member_required
def connector_detail(request, connector_id):
    connector = _connector_or_404(request, connector_id)
    version, completeness, problem = selectors.connector_readiness(connector=connector)
    connection = connection_get(workspace=request.workspace)
    return render(request, "connectors/connector_detail.html", {
        "connector": connector,
        "version": version,
        "completeness": completeness,
        "problem": problem,
        "links": list(connector.numbers.all()),
        "attach_form": AttachNumberForm(workspace=request.workspace),
        "twilio_ready": bool(connection and connection.has_credentials),
        "sessions": selectors.call_sessions_for_connector(connector=connector),
        "public_url_problem": "" if sandbox_active() else public_base_problem(),
    })


@workspace_admin_required
@require_POST
def connector_enable(request, connector_id):
    connector = _connector_or_404(request, connector_id)
    try:
        services.connector_enable(connector=connector)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "Connector enabled: calls are answered by the agent.")
    return redirect("connectors:detail", connector_id=connector.pk)


@workspace_admin_required
@require_POST
def connector_disable(request, connector_id):
    connector = _connector_or_404(request, connector_id)
    services.connector_disable(connector=connector)
    messages.success(request, "Connector disabled: callers hear a short apology.")
    return redirect("connectors:detail", connector_id=connector.pk)


@workspace_admin_required
@require_POST
def connector_alert_clear(request, connector_id):
    connector = _connector_or_404(request, connector_id)
    services.connector_alert_clear(connector=connector)
    return redirect("connectors:detail", connector_id=connector.pk)


@workspace_admin_required
@require_POST
def connector_attach(request, connector_id):
    connector = _connector_or_404(request, connector_id)
    form = AttachNumberForm(request.POST, workspace=request.workspace)
    if not form.is_valid():
        # A number of another workspace is simply not a choice here.
        raise Http404("No such number.")
    number = form.cleaned_data["phone_number"]
    try:
        services.connector_number_attach(connector=connector, phone_number=number, actor=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    except twilio_errors.TwilioError as exc:
        hint = " Try again." if exc.transient else ""
        messages.error(request, f"Twilio did not update {number}: {exc.display()}.{hint}")
    else:
        messages.success(request, f"{number} now sends its calls to this connector (HTTP GET).")
        if not selectors.dialer_numbers_exist(workspace=request.workspace):
            messages.warning(request, f"{number} was the dialer's only number: calls to the dialer cannot come in "
                                      "until another number rings it (Phone numbers → \"Ring the dialer\", or buy "
                                      "one). Calls out from the dialer still work.")
    return redirect("connectors:detail", connector_id=connector.pk)


@workspace_admin_required
@require_POST
def connector_detach(request, connector_id, link_id):
    connector = _connector_or_404(request, connector_id)
    link = selectors.connector_number_get(connector=connector, link_id=link_id)
    if link is None:
        raise Http404("No such number on this connector.")
    try:
        services.connector_number_detach(link=link, actor=request.user)
    except (ValidationError, twilio_errors.TwilioError) as exc:
        text = exc.display() if isinstance(exc, twilio_errors.TwilioError) else " ".join(exc.messages)
        messages.error(request, f"Could not detach {link.phone_number}: {text}")
    else:
        messages.success(request, f"{link.phone_number} detached.")
    return redirect("connectors:detail", connector_id=connector.pk)


@workspace_admin_required
@require_POST
def connector_check(request, connector_id):
    connector = _connector_or_404(request, connector_id)
    counts = services.connector_numbers_check(workspace_id=request.workspace.pk)
    messages.success(request, f"Checked {counts['checked']} number(s): {counts['drifted']} no longer point here"
                              + (f", {counts['errors']} could not be checked." if counts["errors"] else "."))
    return redirect("connectors:detail", connector_id=connector.pk)
