"""Order history and the dashboard's queries are portable SQLAlchemy Core: the same code and the README's SQL on
DuckDB (the store itself writes SQLite for now; PostgreSQL was checked the same way by hand, see the README)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ordersync import history, revenue
from ordersync.dashboard import db as dash
from ordersync.store import metadata, order_lines, order_versions, orders, payments, stream_state

README = Path(__file__).resolve().parents[1] / "docs" / "history.md"  # its SQL examples
TABLES = [orders, order_versions, order_lines, payments, stream_state]


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = sa.create_engine(f"duckdb:///{tmp_path / 'orders.duckdb'}")
    with engine.begin() as conn:
        metadata.create_all(conn, tables=TABLES)
    yield engine
    engine.dispose()


def order(order_id: str, status: str = "paid", paid: bool = True, total: int = 1000) -> dict[str, Any]:
    return {"source": "shop", "order_id": order_id, "api": "frontcore", "order_number": f"N{order_id}",
            "status": status, "currency": "NOK", "total_minor": total, "is_paid": paid,
            "lifecycle": "cancelled" if status == "cancelled" else "paid" if paid else "pending",
            "customer_email": "kari@example.org", "created_at": _at("2026-09-10T08:00:00Z"),
            "raw": json.dumps({"id": order_id, "status": status})}


def page(conn: Connection, when: str, *rows: dict[str, Any]) -> None:
    """What the store does for one page: upsert the changed orders, then record their history."""
    existing = dict(conn.execute(sa.select(orders.c.order_id, orders.c.raw)
                                 .where(orders.c.order_id.in_([r["order_id"] for r in rows]))).all())
    previous = {r["order_id"]: existing[r["order_id"]] for r in rows if r["order_id"] in existing}
    for row in rows:
        values = {**row, "synced_at": _at(when)}
        if row["order_id"] in existing:
            conn.execute(orders.update().where(orders.c.order_id == row["order_id"]).values(**values))
        else:
            conn.execute(orders.insert().values(**values))
    history.record(conn, order_versions, "shop", list(rows), previous, _at(when))


def test_history_and_the_readme_examples_on_duckdb(engine: Engine) -> None:
    with engine.begin() as conn:
        page(conn, "2026-09-05T09:00:00Z", order("a"), order("b"), order("c", "pending", paid=False))
    with engine.begin() as conn:
        page(conn, "2026-10-03T09:00:00Z", order("a", "cancelled", paid=False))
    with engine.begin() as conn:
        page(conn, "2026-10-04T09:00:00Z", order("b", "refunded", paid=False, total=0))
    readme = README.read_text(encoding="utf-8")
    sql = {title: re.search(rf"<!-- sql: {title} -->\s*```sql\n(.*?)```", readme, re.S).group(1)  # type: ignore[union-attr]
           for title in ("paid then cancelled", "revenue as of")}
    with engine.connect() as conn:
        assert [r.order_id for r in conn.execute(sa.text(sql["paid then cancelled"]))] == ["a"]
        assert [(r.orders, int(r.revenue_minor)) for r in conn.execute(sa.text(sql["revenue as of"]))] == [(2, 2000)]
        versions = history.versions_of(conn, order_versions, orders, "shop", "a")
    assert [(v["version_no"], json.loads(v["raw"])["status"]) for v in versions] == [(1, "paid"), (2, "cancelled")]
    assert versions[0]["valid_to"] == versions[1]["valid_from"] and versions[1]["valid_to"] is None
    assert versions[1]["changes"]["status"] == ("paid", "cancelled")


def test_dashboard_queries_on_duckdb(engine: Engine) -> None:
    with engine.begin() as conn:
        page(conn, "2026-09-05T09:00:00Z", *(order(str(i), paid=i % 2 == 0) for i in range(60)))
    with engine.connect() as conn:
        [day] = revenue.figures(conn, revenue.days(date(2026, 9, 1), date(2026, 9, 30)))
        assert (day.period, day.orders, day.paid, day.net_minor) == ("2026-09-10", 60, 30, 30 * 1000)
        rows, next_token, prev_token = dash.order_page(conn, dash.OrderQuery())
        assert len(rows) == dash.PAGE_SIZE and next_token and prev_token is None
        rest, _, back = dash.order_page(conn, dash.OrderQuery(after=next_token))
        assert len(rest) == 10 and back and not {r["order_id"] for r in rows} & {r["order_id"] for r in rest}
        assert dash.order_page(conn, dash.OrderQuery(q="kari@"))[0][0]["customer_email"] == "kari@example.org"
        detail = dash.order_detail(conn, "shop", "7")
        assert detail is not None and detail["order"]["order_number"] == "N7" and len(detail["versions"]) == 1
        assert dash.chart_range(conn, None, None)[1] == date(2026, 9, 10)
