"""Calls in Studio: the calls list, a call's page, its JSON export, recording playback, the live view.

Every page is for members of the call's workspace only; another workspace's call (or connector, agent,
environment in a filter) is a 404. Recordings are streamed through this server: the browser never sees
Twilio's media URL or the account's credentials.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import re

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from agents.models import Agent, Environment
from calls import selectors as call_selectors
from calls.models import CallSession
from calls.services.recordings import call_export_record
from telephony import errors, twilio_gateway
from telephony.selectors import connection_get
from workspaces.decorators import workspace_admin_required, workspace_member_required

logger = logging.getLogger("calls")

PAGE_SIZE = 50


class CallFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=200, label="Search transcripts")
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *CallSession.Status.choices])
    agent = forms.ModelChoiceField(required=False, queryset=Agent.objects.none(), empty_label="Any agent")
    connector = forms.ModelChoiceField(required=False, queryset=CallSession.objects.none(),  # set in __init__
                                       empty_label="Any connector")
    environment = forms.ModelChoiceField(required=False, queryset=Environment.objects.none(),
                                         empty_label="Any environment")
    date_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    field = forms.CharField(required=False, max_length=300, label="Analysis field",
                            widget=forms.TextInput(attrs={"placeholder": "resolved=yes"}))
    success = forms.ChoiceField(required=False, label="Outcome", choices=[
        ("", "Any outcome"), ("yes", "Successful"), ("no", "Not successful"), ("unknown", "Not told")])

    SCOPED = ("agent", "connector", "environment")

    def __init__(self, *args, workspace, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["agent"].queryset = Agent.objects.filter(workspace=workspace).order_by("name")
        self.fields["connector"].queryset = (call_selectors.connector_model().objects.filter(workspace=workspace)
                                             .select_related("agent", "environment"))
        self.fields["environment"].queryset = Environment.objects.filter(workspace=workspace)

    def clean_field(self):
        """Post-call fields to match: name=value, several comma-separated (resolved=yes, sentiment=negative)."""
        out = {}
        for part in (p.strip() for p in (self.cleaned_data.get("field") or "").split(",")):
            if not part:
                continue
            name, sep, value = part.partition("=")
            name, value = name.strip(), value.strip()
            if not sep or not value or not re.fullmatch(r"[a-z][a-z0-9_]{1,63}", name):
                raise forms.ValidationError(f"Write name=value, e.g. resolved=yes (not “{part[:40]}”).")
            out[name] = value
        return out


def _filters(request, form) -> dict:
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
            "analysis_fields": data.get("field") or {}, "success": data.get("success") or "",
        }
    return filters


@workspace_member_required
@require_GET
def calls_list(request):
    form = CallFilterForm(request.GET or None, workspace=request.workspace)
    calls = call_selectors.calls_list(workspace=request.workspace, **_filters(request, form))
    page = Paginator(calls, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    columns = call_selectors.analysis_columns(page)
    analyses = [(c, call_selectors.analysis_of(c)) for c in page]
    scope_agent = form.cleaned_data.get("agent") if form.is_bound and form.is_valid() else None
    return render(request, "calls/calls_list.html", {
        "form": form, "page": page, "query": query.urlencode(), "analysis_columns": columns,
        "rows": [(c, a, [(n, (a.fields or {}).get(n) if a else None) for n in columns]) for c, a in analyses],
        "scope_agent": scope_agent,
        "latency": call_selectors.version_latency(workspace=request.workspace, agent_id=scope_agent.pk)
        if scope_agent else [],
        "scope_connector": form.cleaned_data.get("connector") if form.is_bound and form.is_valid() else None,
    })


EXPORT_LIMIT = 10_000
BASE_COLUMNS = ["id", "call_sid", "started_at", "ended_at", "status", "from", "to", "duration_seconds", "agent",
                "agent_version", "environment", "connector", "turns", "handovers", "direction", "answered_by",
                "outcome"]


def _export_rows(request):
    form = CallFilterForm(request.GET or None, workspace=request.workspace)
    calls = call_selectors.calls_list(workspace=request.workspace, **_filters(request, form))[:EXPORT_LIMIT]
    return call_selectors.calls_export_rows(calls)


def _csv_cell(value) -> str:
    if value is None:
        return ""
    if value is True or value is False:
        return "yes" if value else "no"
    text = str(value)
    # A spreadsheet runs a cell starting with = + - @ as a formula: keep it text.
    return "'" + text if isinstance(value, str) and text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@workspace_member_required
@require_GET
def calls_export_csv(request):
    """The filtered list (at most EXPORT_LIMIT calls) with the post-call analysis as columns."""
    columns, rows = _export_rows(request)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*BASE_COLUMNS, "analysis_status", "summary", "success", *columns])
    for row in rows:
        a = row["analysis"] or {}
        fields = a.get("fields") or {}
        writer.writerow([_csv_cell(row[k]) for k in BASE_COLUMNS]
                        + [_csv_cell(a.get("status")), _csv_cell(a.get("summary")), _csv_cell(a.get("success"))]
                        + [_csv_cell(fields.get(n)) for n in columns])
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="calls.csv"'
    return response


@workspace_member_required
@require_GET
def calls_export_json(request):
    _, rows = _export_rows(request)
    response = HttpResponse(json.dumps({"calls": rows}, indent=2, ensure_ascii=False),
                            content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="calls.json"'
    return response


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
        "analysis": call_selectors.analysis_of(call),
    })


@workspace_member_required
@require_GET
def call_analysis_card(request, call_id):
    """The call page's analysis card (htmx polls it while the analysis is pending)."""
    call = _call_or_404(request, call_id)
    return render(request, "calls/_call_analysis.html", {"call": call, "analysis": call_selectors.analysis_of(call)})


@require_POST
@workspace_admin_required
def call_analyse(request, call_id):
    """"Analyse again": recompute the call's post-call analysis with the agent's newest definition."""
    from calls.services import analysis

    call = _call_or_404(request, call_id)
    if call.agent_version_id is None or call.is_live:
        messages.error(request, "Only a finished call of an agent can be analysed.")
    else:
        analysis.call_analysis_request(call=call)
        messages.success(request, "Analysing the call again.")
    return redirect("calls:detail", call_id=call.pk)


@workspace_member_required
@require_GET
def call_export(request, call_id):
    call = _call_or_404(request, call_id)
    body = json.dumps(call_selectors.call_export(call=call), indent=2, ensure_ascii=False)
    call_export_record(call_session=call, actor=request.user)
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
        "calls": call_selectors.with_transfer_progress(call_selectors.live_calls(workspace=request.workspace)),
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


@workspace_member_required
def call_place(request):
    """Studio's "Call a number": one agent call placed now (calls.services.outbound.agent_call_place)."""
    from calls.forms import CallPlaceForm
    from calls.services.outbound import OutboundRefused, agent_call_place

    form = CallPlaceForm(request.POST or None, workspace=request.workspace,
                         initial={"agent": request.GET.get("agent")})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            session = agent_call_place(
                workspace=request.workspace, agent=data["agent"], environment=data["environment"], to=data["to"],
                from_number=data["from_number"], version_mode=data["version_mode"],
                pinned_version=data["pinned_version"], variables=data["variables"],
                placed_by=request.user.get_username(), actor=request.user)
        except OutboundRefused as exc:
            form.add_error(exc.field if exc.field in ("to", "agent", "environment", "variables") else None,
                           exc.message)
        else:
            messages.success(request, f"Calling {session.to_number} from {session.from_number}.")
            return redirect("calls:detail", call_id=session.pk)
    return render(request, "calls/call_place.html", {"form": form})


# ---------------------------------------------------------------------------
# A transfer to the dialer's reps: the rep's ringing card, accept, decline (static/dialer/transfer.js)


def _json(data: dict, status: int = 200) -> HttpResponse:
    return HttpResponse(json.dumps(data), status=status, content_type="application/json")


@workspace_member_required
@require_GET
def rep_transfer_offer(request):
    """The ringing card of the transfer ringing this rep on leg `call_sid` (404: an ordinary incoming call)."""
    from calls.services import rep_transfers

    offer = rep_transfers.offer_for(user_id=request.user.pk, workspace_id=request.workspace.pk,
                                    call_sid=(request.GET.get("call_sid") or "")[:64])
    if offer is None:
        return _json({"message": "Not a transfer."}, status=404)
    return _json(offer)


def _offer_ids(request) -> tuple[int, int] | None:
    try:
        return int(request.POST.get("handover", "")), int(request.POST.get("attempt", ""))
    except ValueError:
        return None


@workspace_member_required
@require_POST
def rep_transfer_accept(request):
    """The rep takes the caller if no other rep did first (409 with the reason otherwise)."""
    from calls.services import rep_transfers

    ids = _offer_ids(request)
    if ids is None:
        return _json({"ok": False, "message": "Which transfer?"}, status=400)
    ok, message = rep_transfers.offer_accept(user_id=request.user.pk, workspace_id=request.workspace.pk,
                                             handover_id=ids[0], attempt=ids[1])
    return _json({"ok": ok, "message": message}, status=200 if ok else 409)


@workspace_member_required
@require_POST
def rep_transfer_decline(request):
    from calls.services import rep_transfers

    ids = _offer_ids(request)
    if ids is None:
        return _json({"ok": False, "message": "Which transfer?"}, status=400)
    ok = rep_transfers.offer_decline(user_id=request.user.pk, workspace_id=request.workspace.pk,
                                     handover_id=ids[0], attempt=ids[1])
    return _json({"ok": ok})
