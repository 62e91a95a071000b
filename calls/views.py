"""Calls in Studio: the calls list, a call's page, its JSON export, recording playback, the live view.

Every page is for members of the call's workspace only; another workspace's call (or connector, agent,
environment in a filter) is a 404. Recordings are streamed through this server: the browser never sees
Twilio's media URL or the account's credentials.
"""
from __future__ import annotations

import json
import logging

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from agents.models import Agent, Environment
from calls import selectors as call_selectors
from calls.models import CallSession
from connectors.models import PhoneConnector
from telephony import errors, twilio_gateway
from telephony.selectors import connection_get
from workspaces.decorators import workspace_admin_required, workspace_member_required

logger = logging.getLogger("calls")

PAGE_SIZE = 50


class CallFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=200, label="Search transcripts")
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *CallSession.Status.choices])
    agent = forms.ModelChoiceField(required=False, queryset=Agent.objects.none(), empty_label="Any agent")
    connector = forms.ModelChoiceField(required=False, queryset=PhoneConnector.objects.none(),
                                       empty_label="Any connector")
    environment = forms.ModelChoiceField(required=False, queryset=Environment.objects.none(),
                                         empty_label="Any environment")
    date_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))

    SCOPED = ("agent", "connector", "environment")

    def __init__(self, *args, workspace, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["agent"].queryset = Agent.objects.filter(workspace=workspace).order_by("name")
        self.fields["connector"].queryset = (PhoneConnector.objects.filter(workspace=workspace)
                                             .select_related("agent", "environment"))
        self.fields["environment"].queryset = Environment.objects.filter(workspace=workspace)


@workspace_member_required
@require_GET
def calls_list(request):
    form = CallFilterForm(request.GET or None, workspace=request.workspace)
    filters = {}
    if request.GET:
        if not form.is_valid():
            # An id of another workspace's agent/connector/environment: not found, like any other object of theirs.
            if any(name in form.errors for name in form.SCOPED):
                raise Http404("No such agent, connector or environment.")
        data = form.cleaned_data if form.is_bound else {}
        filters = {
            "q": (data.get("q") or "").strip(), "status": data.get("status") or "",
            "agent_id": data["agent"].pk if data.get("agent") else None,
            "connector_id": data["connector"].pk if data.get("connector") else None,
            "environment_id": data["environment"].pk if data.get("environment") else None,
            "date_from": data.get("date_from"), "date_to": data.get("date_to"),
        }
    calls = call_selectors.calls_list(workspace=request.workspace, **filters)
    page = Paginator(calls, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    scope_agent = form.cleaned_data.get("agent") if form.is_bound and form.is_valid() else None
    return render(request, "calls/calls_list.html", {
        "form": form, "page": page, "query": query.urlencode(),
        "scope_agent": scope_agent,
        "latency": call_selectors.version_latency(workspace=request.workspace, agent_id=scope_agent.pk)
        if scope_agent else [],
        "scope_connector": form.cleaned_data.get("connector") if form.is_bound and form.is_valid() else None,
    })


def _call_or_404(request, call_id) -> CallSession:
    call = call_selectors.call_get(workspace=request.workspace, call_id=call_id)
    if call is None:
        raise Http404("No such call.")
    return call


@workspace_member_required
@require_GET
def call_detail(request, call_id):
    call = _call_or_404(request, call_id)
    actions = []
    if call.is_live and call.agent_version_id:
        actions = list(call.agent_version.actions.values_list("name", "destination"))
    return render(request, "calls/call_detail.html", {
        "call": call, "turns": call.turns.all(), "handovers": call.handovers.all(),
        "interventions": call.interventions.all(), "recordings": call.recordings.all(), "actions": actions,
    })


@workspace_member_required
@require_GET
def call_export(request, call_id):
    call = _call_or_404(request, call_id)
    body = json.dumps(call_selectors.call_export(call=call), indent=2, ensure_ascii=False)
    response = HttpResponse(body, content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="call-{call.call_sid}.json"'
    return response


@workspace_member_required
@require_GET
def recording_audio(request, call_id, recording_id):
    """Stream the recording from Twilio (with the workspace's credentials) to the member's browser."""
    recording = call_selectors.recording_get(workspace=request.workspace, call_id=call_id, recording_id=recording_id)
    if recording is None:
        raise Http404("No such recording.")
    connection = connection_get(workspace=request.workspace)
    if connection is None or not connection.has_credentials:
        return HttpResponse("The Twilio connection is gone: the recording cannot be fetched.", status=409,
                            content_type="text/plain")
    try:
        upstream = twilio_gateway.recording_media(creds=connection.credentials(), recording_sid=recording.recording_sid)
    except errors.TwilioNotFound:
        return HttpResponse("This recording is no longer available at Twilio.", status=404, content_type="text/plain")
    except errors.TwilioError as exc:
        logger.warning("recording playback failed", extra={"recording_sid": recording.recording_sid,
                                                            "code": exc.code, "status": exc.status})
        return HttpResponse("Twilio could not serve the recording now; try again shortly.", status=502,
                            content_type="text/plain")

    def chunks():
        try:
            yield from upstream.iter_content(chunk_size=16384)
        finally:
            upstream.close()

    response = StreamingHttpResponse(chunks(), content_type=upstream.headers.get("Content-Type") or "audio/mpeg")
    if upstream.headers.get("Content-Length"):
        response["Content-Length"] = upstream.headers["Content-Length"]
    response["Cache-Control"] = "private, no-store"
    response["Content-Disposition"] = f'inline; filename="{recording.recording_sid}.mp3"'
    return response


@workspace_member_required
@require_GET
def live_view(request):
    return render(request, "calls/calls_live.html", {
        "calls": call_selectors.live_calls(workspace=request.workspace),
        "stats": call_selectors.today_stats(workspace=request.workspace),
    })


@workspace_member_required
@require_GET
def live_stats(request):
    return render(request, "calls/_live_stats.html",
                  {"stats": call_selectors.today_stats(workspace=request.workspace)})


# ---------------------------------------------------------------------------
# Test suites: start a run (the scenarios and results pages are Studio's agent pages)


@require_POST
@workspace_admin_required
def test_run_start(request, agent_id: int):
    from agents.forms import TestRunForm
    from agents.selectors import agent_get, draft_get, environments_list, versions_list
    from calls.services import test_runs

    agent = agent_get(workspace=request.workspace, agent_id=agent_id)
    if agent is None:
        raise Http404("No such agent.")
    draft = draft_get(agent=agent)
    versions = ([draft] if draft is not None else []) + list(versions_list(agent=agent))
    environments = list(environments_list(workspace=request.workspace))
    form = TestRunForm(request.POST, versions=versions, environments=environments)
    if not form.is_valid():
        messages.error(request, "Choose a version and an environment.")
        return redirect("agents:tests", agent_id=agent.pk)
    version = next(v for v in versions if str(v.pk) == form.cleaned_data["version"])
    environment = next(e for e in environments if str(e.pk) == form.cleaned_data["environment"])
    try:
        run = test_runs.test_run_start(agent=agent, version=version, environment=environment, user=request.user)
    except test_runs.TestRunRefused as exc:
        messages.error(request, exc.message)
        return redirect("agents:tests", agent_id=agent.pk)
    return redirect("agents:test_run", agent_id=agent.pk, run_id=run.pk)
