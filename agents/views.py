"""Studio pages for agents and environments (thin: form → service → render)."""
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from agents import selectors, services
from agents.forms import (
    AgentCreateForm,
    AgentVersionForm,
    ApiActionForm,
    ApiActionTryForm,
    AuthConnectorForm,
    HandoverActionForm,
    RecordingForm,
    SecretForm,
    TestRunForm,
    TestScenarioForm,
    VariableForm,
    VoicemailRecordingForm,
)
from agents.models import (
    ApiAction,
    AuthConnector,
    Environment,
    EnvironmentSecret,
    EnvironmentVariable,
    HandoverAction,
)
from workspaces.decorators import workspace_admin_required, workspace_member_required
from workspaces.forms import apply_validation_error


def _agent_or_404(request, agent_id):
    agent = selectors.agent_get(workspace=request.workspace, agent_id=agent_id)
    if agent is None:
        raise Http404("No such agent.")
    return agent


ACTION_ADDED = "Action {name} added to the draft."


@workspace_member_required
def agent_list(request):
    form = AgentCreateForm(request.POST or None)
    if request.method == "POST":
        if not request.membership.is_admin:
            raise PermissionDenied("Only workspace admins can change Studio.")
        if form.is_valid():
            agent = services.agent_create(workspace=request.workspace, name=form.cleaned_data["name"])
            messages.success(request, f"Agent {agent} created. Edit its draft, then publish.")
            return redirect("agents:detail", agent_id=agent.pk)
    return render(request, "agents/agent_list.html",
                  {"agents": selectors.agents_list(workspace=request.workspace), "form": form})


def _tabs_context(agent, tab):
    return {"agent": agent, "tab": tab}


def _form_saved(request, form, save, message: str) -> bool:
    """Saves a valid form with `save()` and shows `message` ({name} and the like: the form's cleaned data);
    a ValidationError the service raises is put next to its field. False when the form is to be shown again."""
    if not form.is_valid():
        return False
    try:
        save()
    except ValidationError as exc:
        apply_validation_error(form, exc)
        return False
    messages.success(request, message.format_map(form.cleaned_data))
    return True


@workspace_member_required
def agent_detail(request, agent_id):
    """The draft's settings (the Settings tab)."""
    agent = _agent_or_404(request, agent_id)
    draft = services.agent_draft_ensure(agent=agent)
    form = AgentVersionForm(request.POST or None, instance=draft)
    if request.method == "POST":
        if not request.membership.is_admin:
            raise PermissionDenied("Only workspace admins can change Studio.")
        if _form_saved(request, form, lambda: services.agent_draft_update(draft=draft, **form.content()),
                       "Draft saved."):
            return redirect("agents:detail", agent_id=agent.pk)
    return _detail_page(request, agent, draft, form)


def _detail_page(request, agent, draft, form, voicemail_form=None):
    from agents import voicemail

    latest = selectors.latest_published_get(agent_id=agent.pk)
    return render(request, "agents/agent_detail.html",
                  {**_tabs_context(agent, "settings"), "draft": draft, "form": form, "latest": latest,
                   "voicemail_recording": voicemail.recording_of(draft),
                   "voicemail_form": voicemail_form or VoicemailRecordingForm()})


@workspace_admin_required
@require_POST
def agent_voicemail_upload(request, agent_id):
    """The draft's voicemail recording: stored when it is MP3/WAV within the size limit; else the reason shown
    next to the field (the old recording kept)."""
    from agents import voicemail

    agent = _agent_or_404(request, agent_id)
    draft = services.agent_draft_ensure(agent=agent)
    form = VoicemailRecordingForm(request.POST, request.FILES)
    if form.is_valid():
        upload = form.cleaned_data["audio"]
        if upload.size > voicemail.max_bytes():  # refused before reading it into memory
            form.add_error("audio", voicemail.RecordingRefused(
                f"“{upload.name}” is {upload.size / 1048576:.1f} MB; a voicemail recording may be at most "
                f"{voicemail.max_bytes() // 1048576} MB (a minute of MP3 is about 1 MB)."))
        else:
            try:
                recording = voicemail.voicemail_recording_set(draft=draft, filename=upload.name, data=upload.read())
            except voicemail.RecordingRefused as exc:
                form.add_error("audio", str(exc))
            else:
                messages.success(request, f"Voicemail recording {recording.filename} saved to the draft.")
                return redirect("agents:detail", agent_id=agent.pk)
    return _detail_page(request, agent, draft, AgentVersionForm(instance=draft), voicemail_form=form)


@workspace_admin_required
@require_POST
def agent_voicemail_remove(request, agent_id):
    from agents import voicemail

    agent = _agent_or_404(request, agent_id)
    draft = services.agent_draft_ensure(agent=agent)
    if voicemail.voicemail_recording_remove(draft=draft):
        messages.success(request, "Voicemail recording removed from the draft.")
    return redirect("agents:detail", agent_id=agent.pk)


@workspace_member_required
def agent_actions(request, agent_id):
    """The Actions tab: the draft's handover actions and API request actions."""
    agent = _agent_or_404(request, agent_id)
    draft = services.agent_draft_ensure(agent=agent)
    posted_api = request.method == "POST" and request.POST.get("kind") == "api"
    form = HandoverActionForm(request.POST if request.method == "POST" and not posted_api else None, version=draft)
    api_form = ApiActionForm(request.POST if posted_api else None, version=draft, prefix="api",
                             auth_names=selectors.auth_connector_names(workspace=request.workspace))
    if request.method == "POST":
        if not request.membership.is_admin:
            raise PermissionDenied("Only workspace admins can change Studio.")
        if posted_api:
            saved = _form_saved(request, api_form, lambda: services.api_action_save(
                draft=draft, name=api_form.cleaned_data["name"], **api_form.content()), ACTION_ADDED)
        else:
            saved = _form_saved(request, form, lambda: services.handover_action_create(
                draft=draft, **form.cleaned_data), ACTION_ADDED)
        if saved:
            return redirect("agents:actions", agent_id=agent.pk)
    return render(request, "agents/agent_actions.html",
                  {**_tabs_context(agent, "actions"), "draft": draft, "form": form, "api_form": api_form,
                   "actions": selectors.actions_list(version=draft),
                   "api_actions": selectors.api_actions_list(version=draft),
                   "try_form": ApiActionTryForm(auto_id=False,
                                               environments=selectors.environments_list(workspace=request.workspace))})


def _draft_action_or_404(model, agent, action_id):
    """A handover action (model HandoverAction) or an API action (ApiAction) of the agent's draft."""
    return get_object_or_404(model, pk=action_id, version__agent=agent, version__state="draft")


def _draft_action_remove(request, agent_id, action_id, model, delete):
    agent = _agent_or_404(request, agent_id)
    action = _draft_action_or_404(model, agent, action_id)
    delete(action=action)
    messages.success(request, f"Action {action.name} removed from the draft.")
    return redirect("agents:actions", agent_id=agent.pk)


@workspace_admin_required
def agent_api_action_edit(request, agent_id, action_id):
    agent = _agent_or_404(request, agent_id)
    action = _draft_action_or_404(ApiAction, agent, action_id)
    form = ApiActionForm(request.POST or None, instance=action, version=action.version, prefix="api",
                         auth_names=selectors.auth_connector_names(workspace=request.workspace))
    if request.method == "POST" and _form_saved(request, form, lambda: services.api_action_save(
            draft=action.version, action=action, name=form.cleaned_data["name"], **form.content()), "Action saved."):
        return redirect("agents:actions", agent_id=agent.pk)
    return render(request, "agents/action_edit.html", {**_tabs_context(agent, "actions"), "form": form,
                                                        "action": action,
                                                        "fields_template": "agents/_api_action_fields.html"})


@workspace_admin_required
@require_POST
def agent_api_action_delete(request, agent_id, action_id):
    return _draft_action_remove(request, agent_id, action_id, ApiAction, services.api_action_delete)


@workspace_admin_required
@require_POST
def agent_api_action_try(request, agent_id, action_id):
    """Studio's "Try": runs the action once with sample parameters in a chosen environment (htmx partial)."""
    from asgiref.sync import async_to_sync

    from agents.action_requests import ApiActionSpec, action_perform

    agent = _agent_or_404(request, agent_id)
    action = get_object_or_404(ApiAction, pk=action_id, version__agent=agent)
    form = ApiActionTryForm(request.POST, environments=selectors.environments_list(workspace=request.workspace))
    outcome = None
    if form.is_valid():
        env = selectors.action_environment_values(environment=form.cleaned_data["environment"],
                                                  auth_connector=action.auth_connector)
        outcome = async_to_sync(action_perform)(
            action=ApiActionSpec.from_model(action), arguments=form.cleaned_data["arguments"],
            secrets=env["secrets"], variables=env["variables"], auth_connectors=env["auth_connectors"],
            token_cache={})
    # htmx swaps the partial in; without JavaScript the same answer comes as a page of its own.
    template = "agents/_action_try.html" if request.headers.get("HX-Request") else "agents/action_try_page.html"
    return render(request, template, {**_tabs_context(agent, "actions"), "action": action, "form": form,
                                      "outcome": outcome})


@workspace_admin_required
def agent_action_edit(request, agent_id, action_id):
    agent = _agent_or_404(request, agent_id)
    action = _draft_action_or_404(HandoverAction, agent, action_id)
    form = HandoverActionForm(request.POST or None, instance=action, version=action.version)
    if request.method == "POST" and _form_saved(request, form, lambda: services.handover_action_update(
            action=action, name=form.cleaned_data["name"], destination=form.cleaned_data["destination"],
            description=form.cleaned_data["description"], kind=form.cleaned_data["kind"],
            more_destinations=form.cleaned_data["more_destinations"], hold_message=form.cleaned_data["hold_message"],
            reps=form.cleaned_data["reps"],
            **{f: form.cleaned_data[f] for f in ("target_agent", "target_version_number", "target_environment")}),
            "Action saved."):
        return redirect("agents:actions", agent_id=agent.pk)
    return render(request, "agents/action_edit.html", {**_tabs_context(agent, "actions"), "form": form,
                                                        "action": action})


@workspace_admin_required
@require_POST
def agent_action_delete(request, agent_id, action_id):
    return _draft_action_remove(request, agent_id, action_id, HandoverAction, services.handover_action_delete)


@workspace_member_required
def agent_versions(request, agent_id):
    agent = _agent_or_404(request, agent_id)
    return render(request, "agents/agent_versions.html",
                  {**_tabs_context(agent, "versions"), "versions": selectors.versions_list(agent=agent),
                   "draft": selectors.draft_get(agent=agent)})


@workspace_member_required
def agent_version_detail(request, agent_id, version_id):
    agent = _agent_or_404(request, agent_id)
    version = selectors.version_get(agent=agent, version_id=version_id)
    if version is None:
        raise Http404("No such version.")
    from agents import voicemail

    return render(request, "agents/version_detail.html", {**_tabs_context(agent, "versions"), "version": version,
                                                          "groups": selectors.version_option_groups(version=version),
                                                          "voicemail_recording": voicemail.recording_of(version)})


@workspace_admin_required
def agent_publish(request, agent_id):
    """GET: the difference against the latest published version; POST: publish."""
    agent = _agent_or_404(request, agent_id)
    draft = services.agent_draft_ensure(agent=agent)
    if request.method == "POST":
        try:
            version = services.agent_publish(agent=agent, user=request.user)
        except services.NothingToPublish as exc:
            messages.error(request, str(exc))
            return redirect("agents:publish", agent_id=agent.pk)
        messages.success(request, f"Published {version.label}.")
        return redirect("agents:versions", agent_id=agent.pk)
    latest = selectors.latest_published_get(agent_id=agent.pk)
    diff = selectors.version_diff(draft=draft, base=latest)
    draft_run = selectors.test_run_last(agent=agent, version=draft)
    published_run = selectors.test_run_last(agent=agent, version=latest)
    return render(request, "agents/publish_confirm.html",
                  {**_tabs_context(agent, "publish"), "draft": draft, "latest": latest, "diff": diff,
                   "next_number": (latest.number if latest else 0) + 1, "draft_run": draft_run,
                   "published_run": published_run,
                   "test_changes": selectors.test_run_compare(draft_run=draft_run, published_run=published_run)})


@workspace_admin_required
@require_POST
def agent_version_restore(request, agent_id, version_id):
    agent = _agent_or_404(request, agent_id)
    version = selectors.version_get(agent=agent, version_id=version_id)
    if version is None or not version.is_published:
        raise Http404("No such published version.")
    services.agent_version_restore(version=version)
    messages.success(request, f"{version.label} restored into the draft. Publish to make it live.")
    return redirect("agents:detail", agent_id=agent.pk)


# ---------------------------------------------------------------------------
# Environments


@workspace_member_required
def environment_list(request):
    environments = services.environments_ensure(workspace=request.workspace)
    return render(request, "agents/environment_list.html", {"environments": environments})


def _environment_or_404(request, kind):
    if kind not in Environment.Kind.values:
        raise Http404("No such environment.")
    services.environments_ensure(workspace=request.workspace)
    return selectors.environment_get(workspace=request.workspace, kind=kind)


def _environment_page(request, environment, *, secret_form=None, variable_form=None, auth_form=None,
                      recording_form=None, status=200):
    return render(request, "agents/environment_detail.html", {
        "environment": environment,
        "environments": selectors.environments_list(workspace=request.workspace),
        "secrets": selectors.environment_secrets(environment=environment),
        "variables": selectors.environment_variables(environment=environment),
        "auth_connectors": selectors.environment_auth_connectors(environment=environment),
        "secret_form": secret_form or SecretForm(prefix="secret"),
        "variable_form": variable_form or VariableForm(prefix="variable"),
        "auth_form": auth_form or AuthConnectorForm(prefix="auth"),
        "recording_form": recording_form or RecordingForm(prefix="recording", initial={
            "recording_enabled": environment.recording_enabled,
            "recording_retention_days": environment.recording_retention_days}),
    }, status=status)


@workspace_member_required
def environment_detail(request, kind):
    return _environment_page(request, _environment_or_404(request, kind))


@workspace_admin_required
@require_POST
def environment_secret_set(request, kind):
    environment = _environment_or_404(request, kind)
    form = SecretForm(request.POST, prefix="secret")
    if not form.is_valid():
        return _environment_page(request, environment, secret_form=form, status=400)
    services.environment_secret_set(environment=environment, actor=request.user, **form.cleaned_data)
    messages.success(request, f"Secret {form.cleaned_data['name']} saved.")
    return redirect("agents:environment", kind=kind)


@workspace_admin_required
@require_POST
def environment_secret_delete(request, kind, secret_id):
    environment = _environment_or_404(request, kind)
    secret = get_object_or_404(EnvironmentSecret, environment=environment, pk=secret_id)
    services.environment_secret_delete(secret=secret, actor=request.user)
    messages.success(request, f"Secret {secret.name} deleted.")
    return redirect("agents:environment", kind=kind)


@workspace_admin_required
@require_POST
def environment_recording_set(request, kind):
    environment = _environment_or_404(request, kind)
    form = RecordingForm(request.POST, prefix="recording")
    if not form.is_valid():
        return _environment_page(request, environment, recording_form=form, status=400)
    services.environment_recording_set(environment=environment, **form.cleaned_data)
    messages.success(request, "Recording settings saved." if environment.recording_enabled
                     else "Recording settings saved: calls are not recorded.")
    return redirect("agents:environment", kind=kind)


@workspace_admin_required
@require_POST
def environment_variable_set(request, kind):
    environment = _environment_or_404(request, kind)
    form = VariableForm(request.POST, prefix="variable")
    if not form.is_valid():
        return _environment_page(request, environment, variable_form=form, status=400)
    services.environment_variable_set(environment=environment, **form.cleaned_data)
    messages.success(request, f"Variable {form.cleaned_data['name']} saved.")
    return redirect("agents:environment", kind=kind)


@workspace_admin_required
@require_POST
def environment_variable_delete(request, kind, variable_id):
    environment = _environment_or_404(request, kind)
    variable = get_object_or_404(EnvironmentVariable, environment=environment, pk=variable_id)
    services.environment_variable_delete(variable=variable)
    messages.success(request, f"Variable {variable.name} deleted.")
    return redirect("agents:environment", kind=kind)


def _auth_save(request, environment, form, instance=None):
    data = form.cleaned_data
    try:
        services.auth_connector_save(environment=environment, actor=request.user, name=data["name"], kind=data["kind"],
                                     config=form.config(), secret=data.get("secret") or "", instance=instance)
    except (ValidationError, IntegrityError) as exc:
        if isinstance(exc, IntegrityError):
            form.add_error("name", "An auth connector with this name already exists here.")
        else:
            apply_validation_error(form, exc)
        return False
    return True


@workspace_admin_required
@require_POST
def auth_connector_create(request, kind):
    environment = _environment_or_404(request, kind)
    form = AuthConnectorForm(request.POST, prefix="auth")
    if form.is_valid() and _auth_save(request, environment, form):
        messages.success(request, f"Auth connector {form.cleaned_data['name']} saved.")
        return redirect("agents:environment", kind=kind)
    return _environment_page(request, environment, auth_form=form, status=400)


@workspace_admin_required
def auth_connector_edit(request, kind, auth_id):
    environment = _environment_or_404(request, kind)
    instance = get_object_or_404(AuthConnector, environment=environment, pk=auth_id)
    form = AuthConnectorForm(request.POST or None, instance=instance, prefix="auth")
    if request.method == "POST" and form.is_valid() and _auth_save(request, environment, form, instance):
        messages.success(request, f"Auth connector {instance.name} saved.")
        return redirect("agents:environment", kind=kind)
    return render(request, "agents/auth_connector_edit.html",
                  {"environment": environment, "form": form, "auth_connector": instance})


@workspace_admin_required
@require_POST
def auth_connector_delete(request, kind, auth_id):
    environment = _environment_or_404(request, kind)
    instance = get_object_or_404(AuthConnector, environment=environment, pk=auth_id)
    services.auth_connector_delete(auth_connector=instance)
    messages.success(request, f"Auth connector {instance.name} deleted.")
    return redirect("agents:environment", kind=kind)


# ---------------------------------------------------------------------------
# Test suites: scenarios (here) and their runs (started by `calls.views.test_run_start`)


def _tests_context(request, agent, **extra):
    versions = selectors.versions_list(agent=agent)
    draft = selectors.draft_get(agent=agent)
    choices = ([draft] if draft is not None else []) + list(versions)
    return {**_tabs_context(agent, "tests"), "scenarios": selectors.test_scenarios_list(agent=agent),
            "runs": selectors.test_runs_recent(agent=agent),
            "run_form": TestRunForm(versions=choices,
                                    environments=selectors.environments_list(workspace=request.workspace)),
            **extra}


@workspace_member_required
def agent_tests(request, agent_id):
    agent = _agent_or_404(request, agent_id)
    return render(request, "agents/agent_tests.html", _tests_context(request, agent))


@workspace_admin_required
def test_scenario_edit(request, agent_id, scenario_id=None):
    """GET/POST a new scenario (scenario_id None) or an existing one."""
    agent = _agent_or_404(request, agent_id)
    scenario = None
    if scenario_id is not None:
        scenario = selectors.test_scenario_get(agent=agent, scenario_id=scenario_id)
        if scenario is None:
            raise Http404("No such scenario.")
    form = TestScenarioForm(request.POST or None, scenario=scenario)
    if request.method == "POST" and form.is_valid():
        try:
            services.test_scenario_save(agent=agent, scenario=scenario, name=form.cleaned_data["name"],
                                        caller_turns=form.cleaned_data["caller_turns"],
                                        expectations=form.expectations())
        except services.ScenarioNameTaken as exc:
            form.add_error("name", str(exc))
        else:
            messages.success(request, f"Scenario {form.cleaned_data['name']} saved.")
            return redirect("agents:tests", agent_id=agent.pk)
    return render(request, "agents/test_scenario_edit.html",
                  {**_tabs_context(agent, "tests"), "form": form, "scenario": scenario})


@require_POST
@workspace_admin_required
def test_scenario_delete(request, agent_id, scenario_id):
    agent = _agent_or_404(request, agent_id)
    scenario = selectors.test_scenario_get(agent=agent, scenario_id=scenario_id)
    if scenario is None:
        raise Http404("No such scenario.")
    services.test_scenario_delete(scenario=scenario)
    messages.success(request, f"Scenario {scenario.name} deleted.")
    return redirect("agents:tests", agent_id=agent.pk)


@workspace_member_required
def test_run_detail(request, agent_id, run_id):
    """A run's results with each scenario's conversation; polls (htmx) while it runs."""
    agent = _agent_or_404(request, agent_id)
    run = selectors.test_run_get(agent=agent, run_id=run_id)
    if run is None:
        raise Http404("No such run.")
    template = "agents/_test_run.html" if request.headers.get("HX-Request") else "agents/test_run.html"
    return render(request, template, {**_tabs_context(agent, "tests"), "run": run,
                                      "results": list(run.results.all())})
