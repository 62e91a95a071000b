"""Analytics pages (members of the workspace): Studio per agent and version, the dialer per rep. Thin: the form
picks the period and versions, `selectors` aggregates, `reports` declares the charts; `?chart=<key>&format=csv`
returns one chart's numbers."""
from __future__ import annotations

import csv
import io
from datetime import timedelta

from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.safestring import mark_safe

from agents.models import Agent
from analytics import reports, selectors
from analytics.charts import line_chart
from analytics.forms import PeriodForm, StudioFilterForm
from workspaces.decorators import workspace_member_required


def _period(days: int) -> selectors.Period:
    today = timezone.now().date()
    return selectors.Period(since=today - timedelta(days=days - 1), until=today)


def _render(request, template: str, context: dict, charts: list[reports.Chart]):
    key = request.GET.get("chart")
    if request.GET.get("format") == "csv":
        chart = next((c for c in charts if c.key == key), None)
        if chart is None:
            raise Http404("No such chart.")
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(chart.header)
        writer.writerows([["" if v is None else v for v in row] for row in chart.rows()])
        response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{chart.key}.csv"'
        return response
    drawn = [(c, mark_safe(line_chart(c.days, c.series, unit=c.unit, title=c.title))) for c in charts]
    query = request.GET.copy()
    query.pop("chart", None)
    query.pop("format", None)
    return render(request, template, {**context, "charts": drawn, "query": query.urlencode()})


@workspace_member_required
def studio(request):
    workspace = request.workspace
    agents = Agent.objects.filter(workspace=workspace).order_by("name")
    wanted = request.GET.get("agent", "")
    agent = agents.filter(pk=int(wanted)).first() if wanted.isdigit() else agents.first()
    if wanted and agent is None:
        raise Http404("No such agent.")
    data = request.GET.copy()
    data.setdefault("agent", str(agent.pk) if agent else "")
    data.setdefault("days", "30")
    form = StudioFilterForm(data, workspace=workspace, agent=agent)
    days = form.cleaned_data["days"] if form.is_valid() else 30
    period = _period(days)
    versions = []
    if agent is not None:
        chosen = [form.cleaned_data.get(k) for k in ("a", "b")] if form.is_valid() else [None, None]
        versions = [v for v in chosen if v]
        if len(versions) < 2:
            versions += [v for v in selectors.versions_with_calls(agent=agent, period=period, limit=3)
                         if v not in versions][:2 - len(versions)]
        versions = list(dict.fromkeys(versions))
    stats = selectors.agent_stats(workspace=workspace, versions=versions, period=period)
    charts = reports.studio_charts(stats, period)
    outcomes = sorted({o for s in stats for o in s.handover_outcomes})
    return _render(request, "analytics/studio.html", {
        "form": form, "agent": agent, "stats": stats, "period": period,
        "outcomes": [(o, [s.handover_outcomes.get(o, 0) for s in stats]) for o in outcomes],
    }, charts)


@workspace_member_required
def dialer(request):
    data = request.GET.copy()
    data.setdefault("days", "30")
    form = PeriodForm(data)
    period = _period(form.cleaned_data["days"] if form.is_valid() else 30)
    reps = selectors.dialer_stats(workspace=request.workspace, period=period)
    return _render(request, "analytics/dialer.html", {"form": form, "reps": reps, "period": period},
                   reports.dialer_charts(reps, period))
