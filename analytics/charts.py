"""Server-rendered SVG line charts: no script, no style attribute (the CSP stays self-only), numbers in <title>s.

`line_chart(days, series, unit=...)` draws one line per series over the days (a gap where a day has no value) with
axes, four grid lines, a legend and a tooltip on each point. The numbers themselves are on the page too (the
chart's table) and in its CSV.
"""
from __future__ import annotations

from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 12, 28
PALETTE = ("#3b5bdb", "#e8590c", "#2b8a3e", "#ae3ec9", "#0b7285", "#c92a2a")


@dataclass(frozen=True)
class Series:
    label: str
    values: list  # one per day: a number or None
    dashed: bool = False


def _nice_top(value: float) -> float:
    if value <= 0:
        return 1.0
    step = 10 ** len(str(int(value))) / 10 if value >= 1 else 0.1
    for factor in (1, 2, 4, 8, 10):  # a quarter of each is a round tick
        if value <= step * factor:
            return step * factor
    return value


def _fmt(value: float, unit: str) -> str:
    text = f"{value:.0f}" if unit != "%" and (value >= 10 or value == int(value)) else f"{value:.1f}"
    return f"{text}{' ' + unit if unit and unit != '%' else unit}"


def line_chart(days: list[str], series: list[Series], *, unit: str = "", title: str = "") -> str:
    """SVG markup (safe to mark safe: every text is escaped)."""
    values = [v for s in series for v in s.values if v is not None]
    top = _nice_top(max(values)) if values else 1.0
    if unit == "%":
        top = 100.0 if not values or max(values) > 50 else _nice_top(max(values))
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    n = max(len(days), 1)

    def x(i):
        return LEFT + (inner_w * (i + 0.5) / n)

    def y(v):
        return TOP + inner_h - inner_h * (v / top)

    out = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT + 18 * ((len(series) + 2) // 3)}" role="img" '
           f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">']
    for k in range(5):  # grid and y labels
        v = top * k / 4
        out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#e4e7ec"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end" font-size="11" fill="#667085">'
                   f'{escape(_fmt(v, unit))}</text>')
    every = max(1, n // 8)
    for i, day in enumerate(days):  # x labels: at most about eight
        if i % every == 0 or i == n - 1:
            out.append(f'<text x="{x(i):.1f}" y="{HEIGHT - 8}" text-anchor="middle" font-size="11" fill="#667085">'
                       f'{escape(day[5:])}</text>')
    for idx, s in enumerate(series):
        color = PALETTE[idx % len(PALETTE)]
        dash = ' stroke-dasharray="5 4"' if s.dashed else ""
        run: list[str] = []
        for i, v in enumerate(s.values + [None]):
            if v is None:
                if len(run) > 1:
                    out.append(f'<polyline fill="none" stroke="{color}" stroke-width="2"{dash} '
                               f'points="{" ".join(run)}"/>')
                run = []
                continue
            run.append(f"{x(i):.1f},{y(v):.1f}")
        for i, v in enumerate(s.values):
            if v is not None:
                out.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3" fill="{color}"><title>'
                           f'{escape(s.label)} · {escape(days[i])}: {escape(_fmt(v, unit))}</title></circle>')
        lx, ly = LEFT + (idx % 3) * 200, HEIGHT + 6 + 18 * (idx // 3)
        out.append(f'<line x1="{lx}" x2="{lx + 18}" y1="{ly}" y2="{ly}" stroke="{color}" stroke-width="3"{dash}/>'
                   f'<text x="{lx + 24}" y="{ly + 4}" font-size="12" fill="#1d2330">{escape(s.label)}</text>')
    if not values:
        out.append(f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" font-size="13" fill="#667085">'
                   'No data in this period</text>')
    out.append("</svg>")
    return "".join(out)
