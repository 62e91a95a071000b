"""Campaigns pages (members of the workspace): contact lists (import with a preview, search, export) and
campaigns (create, start, pause, resume, cancel, the live progress page, the CSV of outcomes). Thin."""
from __future__ import annotations

import csv

from django.contrib import messages
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from analytics.charts import Series, line_chart
from campaigns import power, selectors, services
from campaigns.forms import CampaignForm, ContactListForm, ImportForm
from campaigns.models import Campaign, ContactList
from workspaces.decorators import api_member_required, workspace_member_required


class _Echo:
    def write(self, value):
        return value


def _csv_response(rows, filename: str) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse((writer.writerow(row) for row in rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@workspace_member_required
def index(request):
    if request.method == "POST":
        form = ContactListForm(request.POST)
        if form.is_valid():
            contact_list = services.contact_list_create(workspace=request.workspace, name=form.cleaned_data["name"])
            return redirect("campaigns:list_detail", contact_list.pk)
    else:
        form = ContactListForm()
    return render(request, "campaigns/index.html", {
        "lists": list(selectors.contact_lists(workspace=request.workspace)),
        "campaigns": list(selectors.campaigns_of(workspace=request.workspace)), "form": form})


@workspace_member_required
def list_detail(request, list_id: int):
    contact_list = get_object_or_404(ContactList, pk=list_id, workspace=request.workspace)
    q = request.GET.get("q", "")
    contacts = selectors.contacts_search(contact_list=contact_list, q=q)
    if request.GET.get("format") == "csv":
        fields = sorted({k for c in contacts.only("fields") for k in (c.fields or {})})
        rows = ([c.phone_number, c.name, c.time_zone, "yes" if c.do_not_call else "",
                 *[(c.fields or {}).get(f, "") for f in fields]] for c in contacts.iterator(chunk_size=2000))
        return _csv_response([["phone", "name", "time_zone", "do_not_call", *fields], *rows],
                             f"contacts-{contact_list.pk}.csv")
    report = None
    form = ImportForm()
    if request.method == "POST":
        form = ImportForm(request.POST, request.FILES)
        if form.is_valid():
            text = form.cleaned_data["text"]
            if request.POST.get("confirm"):
                report = services.contacts_import(contact_list=contact_list, text=text)
                if not report.error:
                    counts = report.counts
                    messages.success(request, f"Imported: {counts['added']} added, {counts['merged']} merged, "
                                              f"{counts['dnc']} on the do-not-call list, {counts['invalid']} invalid.")
            else:
                report = services.contacts_import_preview(contact_list=contact_list, text=text)
                form = ImportForm(initial={"text": text})
    total = contacts.count()
    return render(request, "campaigns/list_detail.html", {
        "contact_list": contact_list, "contacts": list(contacts[:100]), "total": total, "q": q, "form": form,
        "report": report, "confirmed": bool(request.POST.get("confirm"))})


@workspace_member_required
def campaign_new(request):
    form = CampaignForm(request.POST or None, workspace=request.workspace)
    if request.method == "POST" and form.is_valid():
        campaign = form.save(commit=False)
        campaign.workspace = request.workspace
        campaign.save()
        return redirect("campaigns:detail", campaign.pk)
    return render(request, "campaigns/campaign_new.html", {"form": form})


@workspace_member_required
def campaign_detail(request, campaign_id: int):
    campaign = get_object_or_404(Campaign.objects.select_related("contact_list", "agent", "environment"),
                                 pk=campaign_id, workspace=request.workspace)
    now = timezone.now()
    counts = selectors.state_counts(campaign=campaign)
    labels, series = selectors.attempts_over_time(campaign=campaign, now=now)
    chart = mark_safe(line_chart(labels, [Series(k or "in progress", v) for k, v in sorted(series.items())],
                                 title="Calls ended per hour, by outcome")) if series else ""
    state = request.GET.get("state", "")
    rows = list(selectors.campaign_contacts(campaign=campaign, state=state))
    history = selectors.attempts_by_contact(campaign_contact_ids=[r.pk for r in rows])
    context = {"campaign": campaign, "counts": counts, "chart": chart, "rows": [(r, history.get(r.pk, [])) for r in rows],
               "state": state, "limit": services.concurrency_of(campaign),
               "rep_results": selectors.rep_results(campaign=campaign)
               if campaign.worked_by == Campaign.WorkedBy.REPS else []}
    if request.headers.get("HX-Request"):
        return render(request, "campaigns/_progress.html", context)
    return render(request, "campaigns/campaign_detail.html", context)


@workspace_member_required
def campaign_export(request, campaign_id: int):
    campaign = get_object_or_404(Campaign, pk=campaign_id, workspace=request.workspace)
    header = ["phone", "name", "state", "attempts", "attempt", "started_at", "ended_at", "outcome", "answered_by",
              "from", "call_session", "summary", "success", "analysis_fields", "rep", "disposition", "notes"]

    def rows():
        yield header
        for cc, attempt, analysis in selectors.export_rows(campaign=campaign):
            yield [cc.contact.phone_number, cc.contact.name, cc.state, cc.attempts,
                   attempt.number if attempt else "", attempt.started_at.isoformat() if attempt else "",
                   attempt.ended_at.isoformat() if attempt and attempt.ended_at else "",
                   attempt.outcome if attempt else "", attempt.answered_by if attempt else "",
                   attempt.from_number if attempt else "", attempt.call_session_id or "" if attempt else "",
                   analysis.summary if analysis else "", "" if not analysis or analysis.success is None
                   else str(analysis.success).lower(), _json(analysis.fields) if analysis else "",
                   attempt.rep.username if attempt and attempt.rep else "", attempt.disposition if attempt else "",
                   attempt.notes if attempt else ""]
    return _csv_response(rows(), f"campaign-{campaign.pk}.csv")


def _json(value) -> str:
    import json

    return json.dumps(value, sort_keys=True) if value else ""


_ACTIONS = {"start": services.campaign_start, "pause": services.campaign_pause, "resume": services.campaign_resume,
            "cancel": services.campaign_cancel}


@require_POST
@workspace_member_required
def campaign_action(request, campaign_id: int, action: str):
    campaign = get_object_or_404(Campaign, pk=campaign_id, workspace=request.workspace)
    act = _ACTIONS.get(action)
    if act is None:
        return HttpResponse(status=404)
    try:
        act(campaign=campaign)
    except services.CampaignError as exc:
        messages.error(request, str(exc))
    return redirect("campaigns:detail", campaign.pk)




# ---------------------------------------------------------------------------
# The power dialer (campaigns.power): JSON for static/dialer/power.js


def _power_error(exc: Exception, status: int = 409) -> JsonResponse:
    return JsonResponse({"error": "refused", "message": str(exc)}, status=status)


@never_cache
@require_GET
@api_member_required
def power_campaigns(request):
    campaigns = power.campaigns_for_rep(workspace=request.workspace, user=request.user)
    return JsonResponse({"campaigns": [{"id": c.pk, "name": c.name} for c in campaigns]})


@require_POST
@api_member_required
def power_next(request, campaign_id: int):
    try:
        card = power.power_next(workspace=request.workspace, user=request.user, campaign_id=campaign_id)
    except services.CampaignError as exc:
        return _power_error(exc)
    if card is None:
        return JsonResponse({"done": True, "message": "Nobody is due in this campaign right now (calling window, "
                                                      "retry delays, or every contact is finished)."})
    return JsonResponse(card.as_json())


@require_POST
@api_member_required
def power_dialled(request, attempt_id: int):
    try:
        power.power_dialled(workspace=request.workspace, user=request.user, attempt_id=attempt_id,
                            call_sid=request.POST.get("call_sid", ""))
    except services.CampaignError as exc:
        return _power_error(exc)
    return JsonResponse({"ok": True})


@require_POST
@api_member_required
def power_finish(request, attempt_id: int):
    try:
        disposition_id = int(request.POST.get("disposition") or 0)
    except ValueError:
        disposition_id = 0
    try:
        attempt = power.power_finish(workspace=request.workspace, user=request.user, attempt_id=attempt_id,
                                     disposition_id=disposition_id, notes=request.POST.get("notes", ""),
                                     call_sid=request.POST.get("call_sid", ""))
    except power.CallNeverPlaced as exc:  # not an error of the rep's: the contact is back in the queue
        return JsonResponse({"released": True, "message": str(exc)})
    except services.CampaignError as exc:
        return _power_error(exc, status=400)
    return JsonResponse({"attempt": attempt.pk, "outcome": attempt.outcome, "disposition": attempt.disposition})


@require_POST
@api_member_required
def power_release(request, attempt_id: int):
    try:
        released = power.power_release(workspace=request.workspace, user=request.user, attempt_id=attempt_id)
    except services.CampaignError as exc:
        return _power_error(exc)
    return JsonResponse({"released": released})
