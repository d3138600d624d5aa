"""Order history (order_versions): versions open and close with the page, are never rewritten, and answer the
README's questions."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import ordersync.store.pages as store_module
from ordersync.apis.base import Rows
from ordersync.errors import StoreError
from ordersync.history import versions_of
from ordersync.store import Store, open_store, order_versions, orders

README = Path(__file__).resolve().parents[1] / "docs" / "history.md"  # its SQL examples


def order(order_id: str, status: str = "paid", total: int = 1000, paid: bool = True, currency: str = "NOK",
          created: str = "2026-09-10T08:00:00Z", **raw: Any) -> dict[str, Any]:
    return {
        "order_id": order_id, "order_number": f"N-{order_id}", "status": status, "currency": currency,
        "total_minor": total, "discount_minor": 0, "tax_minor": 0, "is_paid": paid, "customer_id": "c1",
        "customer_name": "Kari", "customer_email": "kari@example.org", "created_at": _at(created),
        "updated_at": None, "raw": {"id": order_id, "status": status, "total": total, "paid": paid, **raw},
    }


def line(order_id: str, name: str) -> dict[str, Any]:
    return {"order_id": order_id, "line_no": 1, "line_id": "l1", "product_id": "p1", "name": name, "quantity": 1,
            "unit_price_minor": 1000, "total_minor": 1000, "currency": "NOK", "raw": {"name": name}}


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class Clock:
    """The store's clock, set by the test: each page's ``synced_at`` is the moment a version opens or closes."""

    def __init__(self) -> None:
        self.now = _at("2026-09-10T09:00:00Z")

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(store_module, "now_utc", c)
    return c


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 'orders.db'}")
    yield s
    s.close()


def write(store: Store, clock: Clock, when: str, *orders: dict[str, Any], lines: list[dict[str, Any]] | None = None,
          source: str = "shop") -> None:
    clock.now = _at(when)
    store.write_page(source, "frontcore", "orders", Rows(orders=list(orders), order_lines=lines or []), {"c": when})


def versions(store: Store, order_id: str) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(
            sa.select(order_versions).where(order_versions.c.order_id == order_id)
            .order_by(order_versions.c.version_no))]


def test_a_changed_order_closes_its_version_and_opens_the_next_at_the_same_moment(db: Store, clock: Clock) -> None:
    write(db, clock, "2026-09-10T09:00:00Z", order("1", status="paid"))
    write(db, clock, "2026-09-12T10:00:00Z", order("1", status="paid"))  # unchanged: no version
    write(db, clock, "2026-09-20T11:00:00Z", order("1", status="cancelled", paid=False, total=0))
    v = versions(db, "1")
    assert [(x["version_no"], x["status"], x["is_paid"], x["total_minor"]) for x in v] == [
        (1, "paid", True, 1000), (2, "cancelled", False, 0)]
    assert v[0]["valid_from"].replace(tzinfo=UTC) == _at("2026-09-10T09:00:00Z")
    assert v[0]["valid_to"] == v[1]["valid_from"]
    assert v[1]["valid_from"].replace(tzinfo=UTC) == _at("2026-09-20T11:00:00Z") and v[1]["valid_to"] is None
    assert json.loads(v[0]["raw"])["status"] == "paid"  # the record it replaced, kept when it closed
    assert v[1]["raw"] is None  # the current version's record is the order's own
    with db.engine.connect() as conn:
        full = versions_of(conn, order_versions, orders, "shop", "1")
    assert [json.loads(x["raw"])["status"] for x in full] == ["paid", "cancelled"]


def test_versions_are_only_closed_and_appended_never_rewritten(db: Store, clock: Clock) -> None:
    write(db, clock, "2026-09-10T09:00:00Z", order("1"), order("2"))
    first = versions(db, "1")[0]
    for day, status in ((11, "shipped"), (12, "refunded"), (13, "closed")):
        write(db, clock, f"2026-09-{day}T09:00:00Z", order("1", status=status), order("2"))
    later = versions(db, "1")
    assert [x["version_no"] for x in later] == [1, 2, 3, 4]
    closing = ("valid_to", "raw")  # what closing a version writes, once
    def kept(version: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in version.items() if k not in closing}

    assert kept(later[0]) == kept(first)
    assert json.loads(later[0]["raw"])["status"] == "paid" and json.loads(later[2]["raw"])["status"] == "refunded"
    assert sum(x["valid_to"] is None for x in later) == 1 and len(versions(db, "2")) == 1


def test_a_page_that_fails_leaves_the_history_as_it_was(db: Store, clock: Clock,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    write(db, clock, "2026-09-10T09:00:00Z", order("1"))

    def broken(*_args: Any) -> None:
        raise StoreError("disk full")

    monkeypatch.setattr(db, "_save_state", broken)  # fails after the versions were written, same transaction
    with pytest.raises(StoreError):
        write(db, clock, "2026-09-11T09:00:00Z", order("1", status="cancelled"))
    [only] = versions(db, "1")
    assert only["status"] == "paid" and only["valid_to"] is None


def test_history_can_be_switched_off(tmp_path: Path, clock: Clock) -> None:
    off = open_store(f"sqlite:///{tmp_path / 'off.db'}", history=False)
    write(off, clock, "2026-09-10T09:00:00Z", order("1"))
    assert versions(off, "1") == [] and off.count("orders") == 1


def test_a_database_from_before_history_gets_a_first_version_per_order(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "old.db"
    old = open_store(f"sqlite:///{path}")
    write(old, clock, "2026-09-10T09:00:00Z", order("1"), order("2"))
    old.close()
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE order_versions")  # what the release before history (schema 2) wrote
        for index in ("orders_by_created", "orders_by_email", "orders_by_number"):
            conn.execute(f"DROP INDEX {index}")
        conn.execute("UPDATE _ordersync_schema SET version = 2")
    reopened = open_store(f"sqlite:///{path}")
    with reopened.engine.connect() as conn:
        assert "orders_by_created" in {i["name"] for i in sa.inspect(conn).get_indexes("orders")}
    assert [(v["version_no"], v["status"], v["valid_to"]) for v in versions(reopened, "1")] == [(1, "paid", None)]
    write(reopened, clock, "2026-09-11T09:00:00Z", order("1", status="cancelled"))
    assert [v["status"] for v in versions(reopened, "1")] == ["paid", "cancelled"]


def _readme_sql(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(rf"<!-- sql: {title} -->\s*```sql\n(.*?)```", text, re.S)
    assert match, f"README has no SQL example marked '{title}'"
    return match.group(1)


def test_readme_example_paid_then_cancelled_last_month(db: Store, clock: Clock) -> None:
    write(db, clock, "2026-09-05T09:00:00Z", order("a", status="paid"), order("b", status="paid"),
          order("c", status="pending", paid=False), order("d", status="paid"))
    write(db, clock, "2026-10-03T09:00:00Z", order("a", status="cancelled", paid=False),  # in October: listed
          order("c", status="cancelled", paid=False))  # never paid: not listed
    write(db, clock, "2026-10-20T09:00:00Z", order("b", status="refunded"))
    write(db, clock, "2026-10-25T09:00:00Z", order("b", status="cancelled"))  # refunded in between: not listed
    write(db, clock, "2026-11-02T09:00:00Z", order("d", status="cancelled"))  # November: not listed
    with db.engine.connect() as conn:
        rows = conn.execute(sa.text(_readme_sql("paid then cancelled"))).all()
    assert [(r.source, r.order_id) for r in rows] == [("shop", "a")]
    assert str(rows[0].cancelled_at).startswith("2026-10-03")


def test_readme_example_revenue_as_known_at_the_end_of_a_month(db: Store, clock: Clock) -> None:
    write(db, clock, "2026-09-10T09:00:00Z", order("a", total=1000), order("b", total=2500),
          order("c", total=700, paid=False, status="pending"), order("old", total=9999, created="2026-08-30T10:00:00Z"))
    write(db, clock, "2026-09-25T09:00:00Z", order("c", total=700, status="paid"))  # paid before the month ended
    write(db, clock, "2026-10-04T09:00:00Z", order("b", total=0, paid=False, status="refunded"))  # after: still in
    write(db, clock, "2026-10-05T09:00:00Z", order("e", total=400, created="2026-09-30T22:00:00Z"))  # seen late
    with db.engine.connect() as conn:
        rows = conn.execute(sa.text(_readme_sql("revenue as of"))).all()
        today = conn.execute(sa.text(
            "SELECT SUM(total_minor) FROM orders WHERE is_paid AND created_at >= '2026-09-01T00:00:00Z' "
            "AND created_at < '2026-10-01T00:00:00Z'")).scalar()
    assert [(r.source, r.currency, r.orders, r.revenue_minor) for r in rows] == [("shop", "NOK", 3, 4200)]
    assert today == 1000 + 700 + 400  # what the orders table says now differs: the refund, and the late order


def test_line_changes_are_derivable_from_the_versioned_raw(db: Store, clock: Clock) -> None:
    write(db, clock, "2026-09-10T09:00:00Z", order("1", lines=[{"name": "Course A"}]), lines=[line("1", "Course A")])
    write(db, clock, "2026-09-11T09:00:00Z", order("1", lines=[{"name": "Course B"}]), lines=[line("1", "Course B")])
    with db.engine.connect() as conn:
        v = versions_of(conn, order_versions, orders, "shop", "1")
    assert [json.loads(x["raw"])["lines"][0]["name"] for x in v] == ["Course A", "Course B"]


def ordersync(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ordersync", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60)


def test_history_command_prints_versions_and_changes(db: Store, clock: Clock, tmp_path: Path) -> None:
    write(db, clock, "2026-09-10T09:00:00Z", order("7", status="paid", note="x"))
    write(db, clock, "2026-09-20T11:00:00Z", order("7", status="cancelled", paid=False, total=0, note="y"))
    db_path = str(tmp_path / "orders.db")
    table = ordersync("history", "shop", "7", "--db", db_path, cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert "2 version(s)" in table.stdout and "status: paid -> cancelled" in table.stdout
    assert "raw.note: x -> y" in table.stdout and "2026-09-20 11:00:00Z" in table.stdout
    jsonl = ordersync("history", "shop", "7", "--db", db_path, "--format", "jsonl", cwd=tmp_path)
    first, second = (json.loads(x) for x in jsonl.stdout.splitlines())
    assert first["changes"] == {} and first["valid_to"] == second["valid_from"] == "2026-09-20T11:00:00Z"
    assert second["changes"]["status"] == ["paid", "cancelled"] and second["changes"]["total_minor"] == [1000, 0]
    assert second["raw"]["note"] == "y" and second["valid_to"] is None
    missing = ordersync("history", "shop", "404", "--db", db_path, cwd=tmp_path)
    assert missing.returncode == 1 and "no order '404' of source 'shop'" in missing.stderr
