"""Reads for the analytics pages: every figure is aggregated in the database, a small fixed number of queries per
page whatever the number of calls (asserted in tests/analytics; bench.analytics_page times 100,000 calls).

Days are UTC days of the call's start. Percentiles are nearest-rank (the value at rank ceil(p·n) in each day's
sorted turns), computed with window functions that SQLite and PostgreSQL both run.

Every Studio figure is per version and day, so a settled day (`SETTLED_DAYS` old: its calls have ended and been
analysed) is kept in the cache once computed (`DAY_CACHE_SECONDS`; a re-analysis of an old call shows within
that) and the queries run over the days not cached: on a warm cache, the last two days' calls instead of the
whole period's (bench.analytics_page). A cache that fails is skipped: the page computes everything.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from datetime import timezone as dt_timezone

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection
from django.db.models import Avg, Count, DurationField, Exists, ExpressionWrapper, F, OuterRef, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from agents.models import Agent, AgentVersion
from calls.models import CallActionRun, CallHandover, CallSession, CallTurn
from dialer.models import Call

ANSWERED = (CallSession.Status.IN_PROGRESS, CallSession.Status.COMPLETED)
STAGES = (("latency_ms", "End of turn → first audio"), ("recognition_ms", "→ recognition final"),
          ("first_token_ms", "→ model first token"), ("first_byte_ms", "→ speech first byte"))


@dataclass
class Period:
    since: date
    until: date  # inclusive

    @property
    def days(self) -> list[date]:
        return [self.since + timedelta(days=i) for i in range((self.until - self.since).days + 1)]

    @property
    def start(self) -> datetime:
        return datetime.combine(self.since, time.min, tzinfo=dt_timezone.utc)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.until + timedelta(days=1), time.min, tzinfo=dt_timezone.utc)


@dataclass
class VersionStats:
    """One version's figures, each a {day: value} dict (absent day: no call that day)."""

    version: AgentVersion
    calls: dict = field(default_factory=dict)
    answered: dict = field(default_factory=dict)
    success: dict = field(default_factory=dict)  # calls judged successful
    judged: dict = field(default_factory=dict)  # calls whose analysis said yes or no
    handed_over: dict = field(default_factory=dict)
    avg_duration: dict = field(default_factory=dict)  # seconds
    interruptions: dict = field(default_factory=dict)
    action_runs: dict = field(default_factory=dict)
    action_failures: dict = field(default_factory=dict)
    latency: dict = field(default_factory=dict)  # stage → {day: (p50, p90)}
    outcomes_by_day: dict = field(default_factory=dict)  # day → {outcome: count}

    @property
    def handover_outcomes(self) -> dict:
        """outcome → count over the period."""
        total: dict = {}
        for outcomes in self.outcomes_by_day.values():
            for outcome, n in outcomes.items():
                total[outcome] = total.get(outcome, 0) + n
        return total


DAY_FIGURES = ("calls", "answered", "success", "judged", "handed_over", "avg_duration", "interruptions",
               "action_runs", "action_failures", "outcomes_by_day")
SETTLED_DAYS = 2  # a day at least this old (UTC) no longer changes: its calls have ended and been analysed
DAY_CACHE_SECONDS = 3600


def _day_key(version: AgentVersion, day: date) -> str:
    # The version's creation instant too: a primary key can come back (SQLite after a rollback), an instant not.
    return f"analytics:version-day:{version.pk}:{version.created_at.timestamp():.6f}:{day.isoformat()}"


def _day_figures(stats: VersionStats, day: date) -> dict:
    figures = {name: getattr(stats, name)[day] for name in DAY_FIGURES if day in getattr(stats, name)}
    figures["latency"] = {stage: by_day[day] for stage, by_day in stats.latency.items() if day in by_day}
    return figures


def _day_apply(stats: VersionStats, day: date, figures: dict) -> None:
    for name in DAY_FIGURES:
        if name in figures:
            getattr(stats, name)[day] = figures[name]
    for stage, p50_p90 in figures.get("latency", {}).items():
        stats.latency.setdefault(stage, {})[day] = tuple(p50_p90)


def _cached(keys: list[str]) -> dict:
    try:
        return cache.get_many(keys) if keys else {}
    except Exception:  # noqa: BLE001 - a dead cache costs the page its speed, never its figures
        return {}


def _cache(values: dict) -> None:
    try:
        if values:
            cache.set_many(values, DAY_CACHE_SECONDS)
    except Exception:  # noqa: BLE001
        pass


def _day(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def agent_versions(*, agent: Agent) -> list[AgentVersion]:
    return list(AgentVersion.objects.filter(agent=agent, number__isnull=False).order_by("-number"))


def versions_with_calls(*, agent: Agent, period: Period, limit: int = 2) -> list[AgentVersion]:
    """The newest versions that took calls in the period (the default comparison: the latest two)."""
    ids = (CallSession.objects.filter(workspace_id=agent.workspace_id, agent_version__agent=agent,
                                      started_at__gte=period.start, started_at__lt=period.end)
           .values_list("agent_version_id", flat=True).distinct())
    return list(AgentVersion.objects.filter(pk__in=ids).order_by("-number")[:limit])


def agent_stats(*, workspace, versions: list[AgentVersion], period: Period, today: date | None = None
                ) -> list[VersionStats]:
    """Settled days from the cache; the days from the first one not cached to the period's end from the database,
    in five queries whatever their number or the number of calls (none when every day is cached)."""
    by_id = {v.pk: VersionStats(version=v) for v in versions}
    if not by_id:
        return []
    today = today or timezone.now().date()
    settled = [day for day in period.days if day <= today - timedelta(days=SETTLED_DAYS)]
    keys = {(v.pk, day): _day_key(v, day) for v in versions for day in settled}
    cached = _cached(list(keys.values()))
    missing = [day for day in settled if any(keys[(vid, day)] not in cached for vid in by_id)]
    since = missing[0] if missing else (settled[-1] + timedelta(days=1) if settled else period.since)
    for (vid, day), key in keys.items():
        if day < since:
            _day_apply(by_id[vid], day, cached[key])
    if since <= period.until:
        _stats_from_database(workspace, by_id, Period(since=since, until=period.until))
        _cache({keys[(vid, day)]: _day_figures(by_id[vid], day) for vid in by_id for day in settled if day >= since})
    return [by_id[v.pk] for v in versions]


def _stats_from_database(workspace, by_id: dict[int, VersionStats], period: Period) -> None:
    sessions = CallSession.objects.filter(workspace=workspace, agent_version_id__in=list(by_id),
                                          started_at__gte=period.start, started_at__lt=period.end)
    duration = ExpressionWrapper(F("ended_at") - F("started_at"), output_field=DurationField())
    rows = (sessions.annotate(day=TruncDate("started_at", tzinfo=dt_timezone.utc)).values("day", "agent_version_id")
            .annotate(calls=Count("id"),
                      answered=Count("id", filter=Q(status__in=ANSWERED)),
                      success=Count("id", filter=Q(analysis__success=True)),
                      judged=Count("id", filter=Q(analysis__success__isnull=False)),
                      handed_over=Count("id", filter=Q(Exists(CallHandover.objects.filter(call_session=OuterRef("pk"))))),
                      avg_duration=Avg(duration, filter=Q(ended_at__isnull=False, status__in=ANSWERED))))
    for row in rows:
        stats, day = by_id[row["agent_version_id"]], _day(row["day"])
        for name in ("calls", "answered", "success", "judged", "handed_over"):
            getattr(stats, name)[day] = row[name]
        if row["avg_duration"] is not None:
            stats.avg_duration[day] = row["avg_duration"].total_seconds()
    session_day = TruncDate("call_session__started_at", tzinfo=dt_timezone.utc)
    for row in (CallTurn.objects.filter(call_session__in=sessions, role=CallTurn.Role.AGENT, heard=False)
                .annotate(day=session_day).values("day", "call_session__agent_version_id").annotate(n=Count("id"))):
        by_id[row["call_session__agent_version_id"]].interruptions[_day(row["day"])] = row["n"]
    for row in (CallActionRun.objects.filter(call_session__in=sessions).annotate(day=session_day)
                .values("day", "call_session__agent_version_id")
                .annotate(runs=Count("id"), failed=Count("id", filter=Q(ok=False)))):
        stats, day = by_id[row["call_session__agent_version_id"]], _day(row["day"])
        stats.action_runs[day], stats.action_failures[day] = row["runs"], row["failed"]
    for row in (CallHandover.objects.filter(call_session__in=sessions).annotate(day=session_day)
                .values("day", "call_session__agent_version_id", "outcome").annotate(n=Count("id"))):
        outcomes = by_id[row["call_session__agent_version_id"]].outcomes_by_day.setdefault(_day(row["day"]), {})
        outcomes[row["outcome"]] = row["n"]
    for (day, version_id), figures in _latency_percentiles(workspace=workspace, version_ids=list(by_id),
                                                           period=period).items():
        for stage, p50_p90 in figures.items():
            by_id[version_id].latency.setdefault(stage, {})[day] = p50_p90


def _latency_percentiles(*, workspace, version_ids: list[int], period: Period) -> dict:
    """{(day, version_id): {stage: (p50, p90)}} in one query. PostgreSQL: ordered-set aggregates
    (`percentile_disc`, one sort per group); SQLite: each stage ranked within its day and version by window
    functions, the rank ceil(p·n) picked. Both are nearest-rank."""
    turn, session = CallTurn._meta.db_table, CallSession._meta.db_table
    day_sql, day_params = connection.ops.datetime_cast_date_sql("s.started_at", (), "UTC")
    columns = [column for column, _ in STAGES]
    placeholders = ", ".join(["%s"] * len(version_ids))
    rows = (f" FROM {turn} t JOIN {session} s ON s.id = t.call_session_id"
            f" WHERE s.workspace_id = %s AND s.agent_version_id IN ({placeholders})"
            f"  AND s.started_at >= %s AND s.started_at < %s AND t.latency_ms IS NOT NULL")
    if connection.vendor == "postgresql":
        picks = [f"percentile_disc({p}) WITHIN GROUP (ORDER BY t.{c})" for c in columns for p in (0.5, 0.9)]
        sql = f"SELECT {day_sql} AS day, s.agent_version_id AS vid, {', '.join(picks)}{rows} GROUP BY 1, 2"
    else:
        ranked = [f"ROW_NUMBER() OVER (PARTITION BY day, vid ORDER BY CASE WHEN {c} IS NULL THEN 1 ELSE 0 END, {c})"
                  f" AS rn_{c}, COUNT({c}) OVER (PARTITION BY day, vid) AS n_{c}" for c in columns]
        picks = [f"MIN(CASE WHEN {c} IS NOT NULL AND rn_{c} >= {p} * n_{c} THEN {c} END)"
                 for c in columns for p in (0.5, 0.9)]
        sql = (f"SELECT day, vid, {', '.join(picks)} FROM ("
               f" SELECT day, vid, {', '.join(columns)}, {', '.join(ranked)} FROM ("
               f"  SELECT {day_sql} AS day, s.agent_version_id AS vid, {', '.join('t.' + c for c in columns)}{rows}"
               f" ) base) ranked GROUP BY day, vid")
    params = [*day_params, workspace.pk, *version_ids, period.start, period.end]
    out = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for row in cursor.fetchall():
            day, vid, values = _day(row[0]), row[1], row[2:]
            out[(day, vid)] = {column: (values[2 * i], values[2 * i + 1]) for i, (column, _) in enumerate(STAGES)}
    return out


@dataclass
class RepStats:
    user_id: int | None
    name: str
    calls: dict = field(default_factory=dict)  # day → calls placed or taken
    connected: dict = field(default_factory=dict)  # day → answered
    talk_seconds: dict = field(default_factory=dict)
    outbound: dict = field(default_factory=dict)


def dialer_stats(*, workspace, period: Period) -> list[RepStats]:
    """Per rep per day, two queries: calls, connected (answered), talk time, outbound calls (a supervisor's
    coaching call is not a call of theirs)."""
    rows = list(Call.customer_calls().filter(workspace=workspace, started_at__gte=period.start, started_at__lt=period.end)
                .annotate(day=TruncDate("started_at", tzinfo=dt_timezone.utc)).values("day", "user_id")
                .annotate(calls=Count("id"), outbound=Count("id", filter=Q(direction=Call.Direction.OUTBOUND)),
                          connected=Count("id", filter=Q(answered_at__isnull=False)),
                          talk=Sum("duration", filter=Q(answered_at__isnull=False))))
    user_ids = {r["user_id"] for r in rows if r["user_id"]}
    names = {u.pk: u.get_full_name() or u.get_username()
             for u in get_user_model().objects.filter(pk__in=user_ids)} if user_ids else {}
    reps: dict = {}
    for row in rows:
        uid = row["user_id"]
        rep = reps.setdefault(uid, RepStats(user_id=uid, name=names.get(uid, "No rep (missed or refused)")))
        day = _day(row["day"])
        rep.calls[day], rep.outbound[day] = row["calls"], row["outbound"]
        rep.connected[day], rep.talk_seconds[day] = row["connected"], row["talk"] or 0
    return sorted(reps.values(), key=lambda r: (r.user_id is None, r.name.lower()))
