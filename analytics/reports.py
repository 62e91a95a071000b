"""The charts of each analytics page, declared once: the page's SVG, its table of numbers and its CSV all come from
the same `Chart` rows (a chart is a title, a unit and one series per version or rep, a value per day)."""
from __future__ import annotations

from dataclasses import dataclass

from analytics.charts import Series
from analytics.selectors import STAGES, Period, RepStats, VersionStats


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    unit: str
    days: list[str]
    series: list[Series]
    help: str = ""

    def rows(self) -> list[list]:
        """[day, value of each series …] per day: the table and the CSV."""
        return [[day, *(s.values[i] for s in self.series)] for i, day in enumerate(self.days)]

    @property
    def header(self) -> list[str]:
        return ["Day (UTC)", *(f"{s.label} ({self.unit})" if self.unit else s.label for s in self.series)]


def _ratio(num: dict, den: dict, day, scale: float = 100.0):
    d = den.get(day) or 0
    return round(scale * (num.get(day) or 0) / d, 1) if d else None


def studio_charts(stats: list[VersionStats], period: Period) -> list[Chart]:
    days = period.days
    labels = [d.isoformat() for d in days]

    def per_version(fn):
        return [Series(s.version.label, [fn(s, d) for d in days]) for s in stats]

    charts = [
        Chart("calls", "Calls per day", "", labels, per_version(lambda s, d: s.calls.get(d, 0))),
        Chart("answered", "Answered", "%", labels, per_version(lambda s, d: _ratio(s.answered, s.calls, d)),
              "Calls the agent answered and talked on, of all its calls."),
        Chart("success", "Success rate", "%", labels, per_version(lambda s, d: _ratio(s.success, s.judged, d)),
              "Of the calls whose analysis could tell (its success criterion said yes or no)."),
        Chart("handovers", "Handover rate", "%", labels,
              per_version(lambda s, d: _ratio(s.handed_over, s.calls, d)), "Calls handed to a person."),
        Chart("duration", "Average duration", "s", labels,
              per_version(lambda s, d: round(s.avg_duration[d]) if d in s.avg_duration else None),
              "Of answered calls that have ended."),
        Chart("interruptions", "Interruptions per call", "", labels,
              per_version(lambda s, d: _ratio(s.interruptions, s.calls, d, scale=1.0)),
              "The caller cut the agent off (barge-in)."),
        Chart("action_failures", "Failed API actions", "", labels,
              per_version(lambda s, d: s.action_failures.get(d, 0) if d in s.calls else None)),
    ]
    for column, label in STAGES:
        series = []
        for s in stats:
            by_day = s.latency.get(column, {})
            series.append(Series(f"{s.version.label} p50", [by_day.get(d, (None, None))[0] for d in days]))
            series.append(Series(f"{s.version.label} p90", [by_day.get(d, (None, None))[1] for d in days],
                                 dashed=True))
        charts.append(Chart(f"latency_{column}", f"Turn latency: {label}", "ms", labels, series,
                            "From the caller's end of turn (the voice pipeline's turns), p50 solid and p90 dashed."))
    return charts


def dialer_charts(reps: list[RepStats], period: Period) -> list[Chart]:
    days = period.days
    labels = [d.isoformat() for d in days]

    def per_rep(fn):
        return [Series(r.name, [fn(r, d) for d in days]) for r in reps]

    return [
        Chart("calls", "Calls per rep per day", "", labels, per_rep(lambda r, d: r.calls.get(d, 0))),
        Chart("connect_rate", "Connect rate", "%", labels, per_rep(lambda r, d: _ratio(r.connected, r.calls, d)),
              "Calls answered (by the callee, or by the rep for calls in), of all calls."),
        Chart("talk_time", "Talk time", "min", labels,
              per_rep(lambda r, d: round(r.talk_seconds.get(d, 0) / 60, 1) if d in r.calls else None)),
    ]
