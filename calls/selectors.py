"""Reads of Calls in Studio: the calls list (filters, transcript search), a call's page, its export, the live view.

Everything is scoped to a workspace; a query never returns another workspace's call.
"""
from __future__ import annotations

from datetime import datetime, time, timedelta

from django.db.models import (
    Avg,
    Count,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    Subquery,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from calls.models import CallAnalysis, CallHandover, CallIntervention, CallRecording, CallSession, CallTurn


def connector_model():
    """The phone connector model, reached through the call session's own foreign key: calls/ never imports
    connectors/ (connectors call into calls/, the arrow runs one way)."""
    return CallSession._meta.get_field("connector").related_model


LIVE_WINDOW = timedelta(hours=4)  # an admitted call still without an end after this is not shown as live


def _base(workspace):
    return (CallSession.objects.filter(workspace=workspace)
            .select_related("connector", "agent_version", "agent_version__agent", "environment", "analysis"))


def analysis_of(call: CallSession) -> CallAnalysis | None:
    """The call's analysis (select_related by every query here), or None."""
    try:
        return call.analysis
    except CallAnalysis.DoesNotExist:
        return None


def _analysis_value_q(name: str, value: str) -> Q:
    """Calls whose analysis field `name` equals `value` as typed: text (any case), number, yes/no."""
    key = f"analysis__fields__{name}"
    q = Q(**{f"{key}__iexact": value})
    low = value.strip().lower()
    if low in ("yes", "true"):
        q |= Q(**{key: True})
    elif low in ("no", "false"):
        q |= Q(**{key: False})
    else:
        try:
            number = float(low)
        except ValueError:
            pass
        else:
            q |= Q(**{key: int(number) if number.is_integer() else number})
    return q


def _count_of(qs):
    return Coalesce(Subquery(qs.filter(call_session=OuterRef("pk")).order_by().values("call_session")
                             .annotate(n=Count("id")).values("n")[:1], output_field=IntegerField()), 0)


def calls_list(*, workspace, status: str = "", connector_id=None, agent_id=None, environment_id=None,
               date_from=None, date_to=None, q: str = "", analysis_fields: dict | None = None, success: str = ""):
    """Newest first. `q` searches the transcript text (case-insensitive), and the caller's number.
    `analysis_fields` {name: value} filters on the post-call analysis; `success` "yes" / "no" / "unknown"."""
    # Correlated subqueries (not joins): counted for the rows of the page only, whatever the transcripts' length.
    qs = _base(workspace).annotate(
        turn_count=_count_of(CallTurn.objects.exclude(role=CallTurn.Role.EVENT)),
        handover_count=_count_of(CallHandover.objects.all()),
    )
    if status:
        qs = qs.filter(status=status)
    if connector_id:
        qs = qs.filter(connector_id=connector_id)
    if agent_id:
        qs = qs.filter(agent_version__agent_id=agent_id)
    if environment_id:
        qs = qs.filter(environment_id=environment_id)
    tz = timezone.get_current_timezone()
    if date_from:
        qs = qs.filter(started_at__gte=timezone.make_aware(datetime.combine(date_from, time.min), tz))
    if date_to:
        qs = qs.filter(started_at__lt=timezone.make_aware(datetime.combine(date_to + timedelta(days=1), time.min), tz))
    if q:
        qs = qs.filter(Q(Exists(CallTurn.objects.filter(call_session=OuterRef("pk"), text__icontains=q)))
                       | Q(from_number__icontains=q))
    for name, value in (analysis_fields or {}).items():
        qs = qs.filter(_analysis_value_q(name, value))
    if success in ("yes", "no"):
        qs = qs.filter(analysis__success=(success == "yes"))
    elif success == "unknown":
        qs = qs.filter(Q(analysis__isnull=True) | Q(analysis__success__isnull=True))
    return qs.order_by("-started_at", "-id")


def analysis_columns(calls) -> list[str]:
    """The analysis field names of these calls, in the order their definitions list them (no query)."""
    names: dict[str, None] = {}
    for call in calls:
        analysis = analysis_of(call)
        if analysis is not None:
            for name, _ in analysis.field_rows:
                names.setdefault(name, None)
    return list(names)


def analysis_export(analysis: CallAnalysis | None) -> dict | None:
    if analysis is None:
        return None
    return {"status": analysis.status, "summary": analysis.summary, "fields": analysis.fields,
            "success": analysis.success, "reason": analysis.reason, "model": analysis.model_used,
            "definition_version": analysis.definition_label,
            "analysed_at": analysis.analysed_at.isoformat() if analysis.analysed_at else None}


def calls_export_rows(calls) -> tuple[list[str], list[dict]]:
    """The filtered list as flat rows (CSV/JSON export) and the analysis columns they have."""
    calls = list(calls)
    columns = analysis_columns(calls)
    rows = []
    for c in calls:
        version = c.agent_version
        analysis = analysis_of(c)
        rows.append({
            "id": c.pk, "call_sid": c.call_sid, "started_at": c.started_at.isoformat() if c.started_at else None,
            "ended_at": c.ended_at.isoformat() if c.ended_at else None, "status": c.status,
            "from": c.from_number, "to": c.to_number, "duration_seconds": c.duration_seconds,
            "agent": version.agent.name if version else None, "agent_version": version.label if version else None,
            "environment": str(c.environment) if c.environment_id else None,
            "connector": (c.connector.name or None) if c.connector_id else None,
            "turns": c.turn_count, "handovers": c.handover_count,
            "direction": c.direction, "answered_by": c.answered_by or None, "outcome": c.outcome or None,
            "analysis": analysis_export(analysis),
        })
    return columns, rows


def call_get(*, workspace, call_id):
    """The call with everything its page shows, in a fixed number of queries; None when not this workspace's."""
    return (_base(workspace)
            .prefetch_related(
                Prefetch("turns", queryset=CallTurn.objects.order_by("seq")),
                Prefetch("handovers", queryset=CallHandover.objects.order_by("requested_at", "id")),
                Prefetch("interventions", queryset=CallIntervention.objects.order_by("created_at", "id")),
                Prefetch("recordings", queryset=CallRecording.objects.order_by("created_at", "id")),
                "action_runs")
            .filter(pk=call_id).first())


def recording_get(*, workspace, call_id, recording_id) -> CallRecording | None:
    return (CallRecording.objects.select_related("call_session")
            .filter(pk=recording_id, call_session_id=call_id, call_session__workspace=workspace).first())


def call_export(*, call: CallSession) -> dict:
    """A call as JSON-ready data (from `call_get`, no further queries). No secrets, no Twilio URLs."""
    def iso(value):
        return value.isoformat() if value else None

    version = call.agent_version
    return {
        "call_sid": call.call_sid,
        "status": call.status,
        "direction": call.direction,
        "from": call.from_number,
        "to": call.to_number,
        "answered_by": call.answered_by or None,
        "outcome": call.outcome or None,
        "variables": call.variables or {},
        "metadata": call.metadata or {},
        "started_at": iso(call.started_at),
        "ended_at": iso(call.ended_at),
        "duration_seconds": call.duration_seconds,
        "rejected_reason": call.rejected_reason,
        "runtime_error": call.runtime_error,
        "agent": version.agent.name if version else None,
        "agent_version": version.label if version else None,
        "transport": version.transport if version else None,
        "environment": str(call.environment) if call.environment_id else None,
        "connector": ({"id": call.connector_id, "name": call.connector.name or None}
                      if call.connector_id else None),
        "transcript": [{"seq": t.seq, "speaker": t.role, "text": t.text, "heard": t.heard,
                        "started_at": iso(t.started_at or t.created_at),
                        **({"latency_ms": t.latency_ms, "recognition_ms": t.recognition_ms,
                            "first_token_ms": t.first_token_ms, "first_byte_ms": t.first_byte_ms}
                           if t.latency_ms is not None else {})} for t in call.turns.all()],
        "handovers": [{"action": h.action_name, "destination": h.destination, "transport": h.transport,
                       "requested_at": iso(h.requested_at), "outcome": h.outcome, "outcome_at": iso(h.outcome_at),
                       "dial_duration": h.dial_duration, "fallback": h.fallback, "kind": h.kind,
                       "destinations": [dict(a) for a in h.attempts]} for h in call.handovers.all()],
        "actions": [{"name": a.name, "parameters": a.parameters, "ok": a.ok, "status_code": a.status_code,
                     "duration_ms": a.duration_ms, "result": a.result, "started_at": iso(a.started_at)}
                    for a in call.action_runs.all()],
        "interventions": [{"by": i.username, "kind": i.kind, "detail": i.detail, "result": i.result,
                           "at": iso(i.created_at)} for i in call.interventions.all()],
        "recordings": [{"recording_sid": r.recording_sid, "status": r.status, "duration": r.duration,
                        "channels": r.channels} for r in call.recordings.all()],
        "analysis": analysis_export(analysis_of(call)),
    }


def live_calls(*, workspace):
    """Calls the agent is on now: admitted, not ended, started recently."""
    return (_base(workspace)
            .filter(ended_at__isnull=True, rejected_reason="", stream_token_used_at__isnull=False,
                    started_at__gte=timezone.now() - LIVE_WINDOW)
            .order_by("-started_at"))


def today_stats(*, workspace) -> list[dict]:
    """Per connector, calls started today (local time): count, average duration of ended calls, handovers, errors."""
    start = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    today = Q(call_sessions__started_at__gte=start)
    duration = ExpressionWrapper(F("call_sessions__ended_at") - F("call_sessions__started_at"),
                                 output_field=DurationField())
    rows = (connector_model().objects.filter(workspace=workspace)
            .select_related("agent", "environment")
            .annotate(calls=Count("call_sessions", filter=today, distinct=True),
                      avg_duration=Avg(duration, filter=today & Q(call_sessions__ended_at__isnull=False)),
                      errors=Count("call_sessions", distinct=True,
                                   filter=today & (~Q(call_sessions__rejected_reason="")
                                                   | ~Q(call_sessions__runtime_error=""))))
            .order_by("name", "id"))
    handovers = dict(CallHandover.objects.filter(call_session__workspace=workspace, call_session__started_at__gte=start)
                     .values_list("call_session__connector_id").annotate(n=Count("id")).values_list(
                         "call_session__connector_id", "n"))
    out = []
    for c in rows:
        avg = c.avg_duration
        out.append({"connector": c, "calls": c.calls, "handovers": handovers.get(c.pk, 0), "errors": c.errors,
                    "avg_duration": int(avg.total_seconds()) if avg is not None else None})
    return out


LATENCY_TURNS = 500  # the newest agent turns with a latency, per version, that the percentiles use


def _percentile(values: list[int], p: float) -> int | None:
    """Nearest-rank percentile of sorted values."""
    if not values:
        return None
    import math

    return values[max(0, math.ceil(p / 100 * len(values)) - 1)]


def version_latency(*, workspace, agent_id: int, limit: int = LATENCY_TURNS) -> list[dict]:
    """p50/p95 of each latency part (ms from the caller's end of turn) per version of the agent, over the newest
    answered turns of its calls (one query; at most `limit` turns per version, 5 x `limit` rows read)."""
    rows = (CallTurn.objects
            .filter(call_session__workspace=workspace, call_session__agent_version__agent_id=agent_id,
                    role=CallTurn.Role.AGENT, latency_ms__isnull=False)
            .order_by("-id")
            .values_list("call_session__agent_version_id", "call_session__agent_version__number",
                         "latency_ms", "recognition_ms", "first_token_ms", "first_byte_ms")[: limit * 5])
    by_version: dict[int, dict] = {}
    for version_id, number, *parts in rows:
        entry = by_version.setdefault(version_id, {"version_id": version_id, "number": number,
                                                   "label": f"v{number}" if number else "Draft",
                                                   "parts": [[], [], [], []]})
        if len(entry["parts"][0]) >= limit:
            continue
        for bucket, value in zip(entry["parts"], parts):
            if value is not None:
                bucket.append(value)
    out = []
    for entry in by_version.values():
        names = ("total", "recognition", "first_token", "first_byte")
        stats = {}
        for name, values in zip(names, entry["parts"]):
            values.sort()
            stats[name] = {"p50": _percentile(values, 50), "p95": _percentile(values, 95)}
        out.append({"version_id": entry["version_id"], "label": entry["label"], "number": entry["number"],
                    "turns": len(entry["parts"][0]), **stats})
    # The draft first, then the newest version.
    return sorted(out, key=lambda e: (e["number"] is None, e["number"] or 0), reverse=True)


def with_transfer_progress(calls) -> list:
    """`calls` (sessions) each with `transfer_progress`: (state, words) of its newest transfer to the dialer's reps,
    or None (the live view's Transfer column)."""
    from calls.models import CallHandover
    from calls.services.rep_transfers import KIND, progress_text

    calls = list(calls)
    newest = {h.call_session_id: h for h in CallHandover.objects.filter(
        call_session_id__in=[c.pk for c in calls], kind=KIND).order_by("pk")}
    for call in calls:
        call.transfer_progress = progress_text(newest[call.pk]) if call.pk in newest else None
    return calls
