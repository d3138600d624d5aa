"""The status page's charts and totals, from :func:`ordersync.revenue.figures` per day: the orders of each day as
stacked bars per source (cancelled ones apart, in grey, on top), revenue per day as stacked bars per source, one
chart per currency, and the range's totals per source and currency, which are the report's figures for that
range to the cent."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from ordersync.dashboard import charts
from ordersync.revenue import Figures, Period, combine, major
from ordersync.values import exponent


def day_charts(found: list[Figures], periods: list[Period], colors: dict[str, str]) -> dict[str, Any]:
    """The template's ``orders_chart``, ``orders_legend``, ``revenue_charts`` and ``totals``; ``colors``: every
    source's colour (:func:`charts.palette`)."""
    labels = [p.label for p in periods]
    index = {label: i for i, label in enumerate(labels)}
    sources = sorted({f.source for f in found})
    standing = {s: [0.0] * len(labels) for s in sources}
    cancelled = [0.0] * len(labels)
    revenue: dict[str, dict[str, list[float]]] = defaultdict(dict)
    for f in found:
        day = index[f.period]
        standing[f.source][day] += f.orders - f.cancelled
        cancelled[day] += f.cancelled
        currency = f.currency or "-"
        series = revenue[currency].setdefault(f.source, [0.0] * len(labels))
        series[day] += float(major(f.net_minor, f.currency))
    keys = {s: colors[s] for s in sources}
    orders = [charts.Series(s, standing[s], colors[s]) for s in sources]
    orders.append(charts.Series("cancelled", cancelled, charts.CANCELLED, "cancelled"))
    orders_chart = charts.Stack(labels, orders, "orders per day", whole=True, tip=lambda v: f"{v:,.0f} orders")
    return {
        "orders_chart": orders_chart.svg(),
        "orders_legend": charts.legend({**keys, "cancelled": charts.CANCELLED}),
        "revenue_charts": [_revenue_chart(labels, currency, by_source, colors)
                           for currency, by_source in sorted(revenue.items())],
        "totals": combine(found, f"{labels[0]}/{labels[-1]}" if labels else ""),
    }


def _revenue_chart(labels: list[str], currency: str, by_source: dict[str, list[float]],
                   colors: dict[str, str]) -> tuple[str, str, str]:
    """One currency's revenue per day, stacked per source: (currency, chart, legend)."""
    places = exponent(currency)
    series = [charts.Series(s, v, colors[s]) for s, v in sorted(by_source.items())]
    chart = charts.Stack(labels, series, f"revenue per day ({currency})", whole=False,
                         tip=lambda v: f"{v:,.{places}f} {currency}")
    return currency, chart.svg(), charts.legend({s: colors[s] for s in sorted(by_source)})
