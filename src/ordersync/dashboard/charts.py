"""Small hand-written SVG charts, rendered on the server: no JavaScript, nothing loaded from elsewhere.

Bars stand on an axis whose ticks are round numbers (1, 2, 2.5 or 5 times a power of ten; counts only whole
ones), so that a reader never sees 12.6 orders or 3,187.2 kroner on an axis. A source keeps its colour in every
chart (:func:`palette`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from html import escape

WIDTH, HEIGHT = 760, 200
LEFT, RIGHT, TOP, BOTTOM = 64, 12, 12, 28
COLORS = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777")
CANCELLED = "#9ca3af"  # grey: what was not sold, whatever its source


def palette(names: Sequence[str]) -> dict[str, str]:
    """A colour per name by its place among all of them (sorted), so that a source keeps its colour in every chart
    and on every range, whichever sources a chart shows."""
    return {name: COLORS[n % len(COLORS)] for n, name in enumerate(sorted(set(names)))}


@dataclass
class Series:
    name: str
    values: list[float]  # one per label
    color: str = COLORS[0]
    css: str = ""  # a class for the series' group (``cancelled``)


@dataclass(frozen=True)
class Scale:
    """The axis: ticks from 0 to ``top`` every ``step``."""

    step: Decimal
    ticks: int

    @property
    def top(self) -> float:
        return float(self.step * self.ticks)

    def label(self, value: Decimal) -> str:
        """A tick's text: 0, 1,500, 12.5k, 2.5M, with the decimals its step needs and no more."""
        if not value:
            return "0"
        top = self.step * self.ticks
        unit, suffix = (Decimal(1_000_000), "M") if top >= 1_000_000 else (Decimal(1000), "k") if top >= 10_000 \
            else (Decimal(1), "")
        places = max(0, -(self.step / unit).normalize().as_tuple().exponent)  # type: ignore[operator]
        return f"{value / unit:,.{places}f}{suffix}"


def scale(largest: float, whole: bool) -> Scale:
    """Round ticks, two to four above zero, the last at or above ``largest``; ``whole``: counts (steps of 1 or
    more)."""
    largest = max(largest, 1.0)
    rough = Decimal(repr(largest / 4))
    power = Decimal(10) ** rough.adjusted()
    for factor in ("1", "2", "2.5", "5", "10"):
        step = Decimal(factor) * power
        if step >= rough and not (whole and step != step.to_integral_value()):
            break
    if whole:
        step = max(step, Decimal(1))
    return Scale(step, max(1, math.ceil(Decimal(repr(largest)) / step)))


def _frame(labels: Sequence[str], axis: Scale, title: str) -> list[str]:
    """Axes, a grid line with its value per tick, the first/middle/last label."""
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" '
             f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>']
    for i in range(axis.ticks + 1):
        value = axis.step * i
        y = _y(float(value), axis.top)
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
                     f'<text class="axis tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
                     f'{axis.label(value)}</text>')
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


def _bar(index: int, count: int, low: float, high: float, top: float, tip: str, fill: str = "") -> str:
    width = max(1.0, (WIDTH - LEFT - RIGHT) / max(count, 1) * 0.8)
    y = _y(high, top)
    color = f' fill="{fill}"' if fill else ""
    return (f'<rect x="{_x(index, count) - width / 2:.1f}" y="{y:.1f}" width="{width:.1f}" '
            f'height="{_y(low, top) - y:.1f}"{color}><title>{escape(tip)}</title></rect>')


@dataclass
class Stack:
    """Stacked bars: one bar per label, one segment per series, each with a tooltip ``tip(value)``."""

    labels: Sequence[str]
    series: Sequence[Series]
    title: str
    whole: bool
    tip: Callable[[float], str] = field(default=lambda v: f"{v:,}")

    def svg(self) -> str:
        heights = [sum(s.values[i] for s in self.series) for i in range(len(self.labels))]
        axis = scale(max(heights, default=0), self.whole)
        parts = _frame(self.labels, axis, self.title)
        base = [0.0] * len(self.labels)
        for s in self.series:
            parts.append(f'<g class="series {s.css}" data-name="{escape(s.name)}" fill="{s.color}">')
            for i, value in enumerate(s.values):
                if value:
                    tip = f"{s.name} {self.labels[i]}: {self.tip(value)}"
                    parts.append(_bar(i, len(self.labels), base[i], base[i] + value, axis.top, tip))
                    base[i] += value
            parts.append("</g>")
        parts.append("</svg>")
        return "".join(parts)


def bars(labels: Sequence[str], values: Sequence[float], title: str, tips: Sequence[str] = (),
         whole: bool = False) -> str:
    """One bar per label (a run), each with a tooltip, every one drawn (a zero is a bar of no height)."""
    axis = scale(max(values, default=0), whole)
    parts = _frame(labels, axis, title)
    for i, v in enumerate(values):
        tip = tips[i] if i < len(tips) else f"{labels[i]}: {v:,}"
        parts.append(_bar(i, len(values), 0, v, axis.top, tip, COLORS[0]))
    parts.append("</svg>")
    return "".join(parts)


def legend(colors: dict[str, str]) -> str:
    """A key per name, in the given order, in its colour."""
    return "".join(f'<span class="key"><i style="background:{color}"></i>{escape(name)}</span>'
                   for name, color in colors.items())
