"""Small hand-written SVG charts, rendered on the server: no JavaScript, nothing loaded from elsewhere."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 760, 200
LEFT, RIGHT, TOP, BOTTOM = 64, 12, 12, 28
COLORS = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777")


@dataclass
class Series:
    name: str
    values: list[float | None]  # one per label; None leaves a gap


def _fmt(value: float) -> str:
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if abs(value) >= 10_000:
        return f"{value / 1_000:.0f}k"
    return f"{value:,.0f}" if value == int(value) else f"{value:,.1f}"


def _frame(labels: Sequence[str], top: float, title: str) -> list[str]:
    """Axes, three horizontal grid lines with values, the first/middle/last label."""
    inner_h = HEIGHT - TOP - BOTTOM
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" '
             f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>']
    for i in range(4):
        y = TOP + inner_h * i / 3
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
                     f'<text class="axis" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
                     f'{_fmt(top * (3 - i) / 3)}</text>')
    if labels:
        for index in sorted({0, len(labels) // 2, len(labels) - 1}):
            anchor = "start" if index == 0 else "end" if index == len(labels) - 1 else "middle"
            parts.append(f'<text class="axis" x="{_x(index, len(labels)):.1f}" y="{HEIGHT - 8}" '
                         f'text-anchor="{anchor}">{escape(labels[index])}</text>')
    return parts


def _x(index: int, count: int) -> float:
    inner_w = WIDTH - LEFT - RIGHT
    return LEFT + (inner_w * (index + 0.5) / count if count else 0)


def _y(value: float, top: float) -> float:
    return TOP + (HEIGHT - TOP - BOTTOM) * (1 - (value / top if top else 0))


def lines(labels: Sequence[str], series: Sequence[Series], title: str) -> str:
    """One line per series over the labels, with a point (and its value as a tooltip) per label."""
    top = max([v for s in series for v in s.values if v is not None] + [1]) * 1.05
    parts = _frame(labels, top, title)
    for number, s in enumerate(series):
        color = COLORS[number % len(COLORS)]
        points = [(i, v) for i, v in enumerate(s.values) if v is not None]
        path = " ".join(f"{_x(i, len(labels)):.1f},{_y(v, top):.1f}" for i, v in points)
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{path}"/>')
        radius = 2.5 if len(labels) <= 45 else 1.2
        for i, v in points:
            parts.append(f'<circle cx="{_x(i, len(labels)):.1f}" cy="{_y(v, top):.1f}" r="{radius}" fill="{color}">'
                         f'<title>{escape(s.name)} {escape(labels[i])}: {_fmt(v)}</title></circle>')
    parts.append("</svg>")
    return "".join(parts)


def bars(labels: Sequence[str], values: Sequence[float], title: str, tips: Sequence[str] = ()) -> str:
    """One bar per label (a run, a day), each with a tooltip."""
    top = max([*values, 1]) * 1.05
    width = max(1.0, (WIDTH - LEFT - RIGHT) / max(len(values), 1) * 0.8)
    parts = _frame(labels, top, title)
    for i, v in enumerate(values):
        y = _y(v, top)
        tip = tips[i] if i < len(tips) else f"{labels[i]}: {_fmt(v)}"
        parts.append(f'<rect x="{_x(i, len(values)) - width / 2:.1f}" y="{y:.1f}" width="{width:.1f}" '
                     f'height="{HEIGHT - BOTTOM - y:.1f}" fill="{COLORS[0]}"><title>{escape(tip)}</title></rect>')
    parts.append("</svg>")
    return "".join(parts)


def legend(names: Sequence[str]) -> str:
    return "".join(f'<span class="key"><i style="background:{COLORS[n % len(COLORS)]}"></i>{escape(name)}</span>'
                   for n, name in enumerate(names))
