"""Charts as inline SVG made on the server: no JavaScript, nothing fetched, and every label escaped.

People would rather look than read, but a chart is also read by screen readers: each SVG has a title and a
description, and the page shows the same numbers in a table next to it.  ``ident`` names a chart's title and
description elements, so several charts on one page keep their own labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 240
PAD_L, PAD_R, PAD_T, PAD_B = 48, 16, 16, 40
COLOURS = ("#1f5fbf", "#2e8540", "#a4161a", "#8a6d00")


def _scale(value: float, top: float, span: float) -> float:
    return PAD_T + span - (value / top) * span if top else PAD_T + span


def line_chart(title: str, days: Sequence[date], series: dict[str, Sequence[int]], ident: str = "chart") -> Markup:
    """Step lines over days (counts change at events, not smoothly between them)."""
    ident = str(escape(ident))
    inner_w, inner_h = WIDTH - PAD_L - PAD_R, HEIGHT - PAD_T - PAD_B
    top = max((max(values, default=0) for values in series.values()), default=0) or 1
    n = len(days)

    def x(i: int) -> float:
        return PAD_L + (inner_w * i / (n - 1) if n > 1 else inner_w / 2)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{ident}-t {ident}-d" class="chart"><title id="{ident}-t">{escape(title)}</title>',
        f'<desc id="{ident}-d">{escape(_describe(days, series))}</desc>',
        f'<line x1="{PAD_L}" y1="{PAD_T + inner_h}" x2="{WIDTH - PAD_R}" y2="{PAD_T + inner_h}" stroke="#999"/>',
        f'<text x="{PAD_L - 6}" y="{PAD_T + 4}" text-anchor="end" font-size="11">{top}</text>',
        f'<text x="{PAD_L - 6}" y="{PAD_T + inner_h}" text-anchor="end" font-size="11">0</text>',
    ]
    if n:
        parts.append(f'<text x="{x(0):.1f}" y="{HEIGHT - 20}" font-size="11">{days[0].isoformat()}</text>')
        if n > 1:
            parts.append(f'<text x="{x(n - 1):.1f}" y="{HEIGHT - 20}" font-size="11" text-anchor="end">'
                         f'{days[-1].isoformat()}</text>')
    for k, (name, values) in enumerate(series.items()):
        colour = COLOURS[k % len(COLOURS)]
        points: list[str] = []
        for i, value in enumerate(values):
            y = _scale(value, top, inner_h)
            if points:
                points.append(f"{x(i):.1f},{float(points[-1].split(',')[1]):.1f}")
            points.append(f"{x(i):.1f},{y:.1f}")
        if points:
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(points)}"/>')
        parts.append(f'<rect x="{PAD_L + 130 * k}" y="{HEIGHT - 12}" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{PAD_L + 130 * k + 14}" y="{HEIGHT - 3}" font-size="11">{escape(name)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_chart(title: str, bars: Sequence[tuple[str, float]], unit: str = "", ident: str = "bars") -> Markup:
    """Horizontal bars, one per label (long labels are cut; the table next to the chart has them whole)."""
    ident = str(escape(ident))
    row = 26
    height = PAD_T + row * max(len(bars), 1) + 8
    top = max((v for _, v in bars), default=0) or 1
    label_w = 170
    span = WIDTH - label_w - PAD_R - 60
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-labelledby="{ident}-t {ident}-d" class="chart"><title id="{ident}-t">{escape(title)}</title>',
        f'<desc id="{ident}-d">'
        f"{escape('; '.join(f'{label}: {value:g}{unit}' for label, value in bars) or 'no data yet')}</desc>",
    ]
    for i, (label, value) in enumerate(bars):
        y = PAD_T + i * row
        w = span * value / top
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end" font-size="12">{escape(_cut(label))}</text>'
        )
        parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="16" fill="{COLOURS[0]}"/>')
        parts.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 15}" font-size="12">{value:g}{escape(unit)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _cut(label: str, width: int = 24) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


def _describe(days: Sequence[date], series: dict[str, Sequence[int]]) -> str:
    if not days:
        return "no data yet"
    latest = ", ".join(f"{name}: {values[-1]}" for name, values in series.items() if values)
    return f"from {days[0].isoformat()} to {days[-1].isoformat()}; latest {latest}"
