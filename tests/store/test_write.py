"""Page writes on every destination: atomic with their state, "unchanged" judged on the normalized row, rejects,
the same order twice in a page, stale runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import hypothesis
import hypothesis.strategies as st
import pytest

from ordersync.errors import StoreError
from ordersync.store import Store, WriteResult, open_store
from tests.store.helpers import published


@dataclass
class Page:
    orders: list[dict[str, Any]] = field(default_factory=list)
    order_lines: list[dict[str, Any]] = field(default_factory=list)
    customers: list[dict[str, Any]] = field(default_factory=list)
    payments: list[dict[str, Any]] = field(default_factory=list)


def order(order_id: str, status: str = "paid", total: int = 1500, lines: int = 2) -> Page:
    raw = {"id": order_id, "state": status, "lines": [{"n": i} for i in range(lines)], "name": "Åse Øberg-Müller"}
    return Page(
        orders=[{"order_id": order_id, "order_number": f"N{order_id}", "status": status, "currency": "NOK",
                 "total_minor": total, "is_paid": status == "paid", "raw": raw}],
        order_lines=[{"order_id": order_id, "line_no": i + 1, "name": f"line {i}", "quantity": 1,
                      "total_minor": total // lines, "currency": "NOK", "raw": raw["lines"][i]} for i in range(lines)],
        payments=[{"order_id": order_id, "payment_no": 1, "amount_minor": total, "currency": "NOK", "raw": {}}],
        customers=[{"customer_id": f"c{order_id}", "name": "Åse", "raw": {"id": f"c{order_id}"}}],
    )


def test_rows_and_state_are_written_together_or_not_at_all(any_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    any_store.write_page("shop", "frontcore", "orders", order("1"), {"cursor": 1})

    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise StoreError("disk full")

    monkeypatch.setattr(any_store, "_save_state", broken)  # the state write fails after the rows were written
    with pytest.raises(StoreError):
        any_store.write_page("shop", "frontcore", "orders", order("2"), {"cursor": 2})
    monkeypatch.undo()
    assert any_store.load_state("shop", "orders") == {"cursor": 1}
    assert [r["order_id"] for r in published(any_store, "orders")] == ["1"]
    assert any_store.count("order_lines") == 2 and any_store.count("payments") == 1


def test_a_normalizer_fix_reaches_stored_rows_with_the_same_raw(any_store: Store) -> None:
    first = any_store.write_page("shop", "frontcore", "orders", order("1"), {})
    assert first["orders"].new == 1
    again = any_store.write_page("shop", "frontcore", "orders", order("1"), {})
    assert (again["orders"].unchanged, again["customers"].unchanged) == (1, 1)
    fixed = order("1")
    fixed.orders[0]["total_minor"] = 150000  # the normalizer now reads the amount right; raw is the same
    fixed.order_lines[1]["name"] = "line one, fixed"
    result = any_store.write_page("shop", "frontcore", "orders", fixed, {})
    assert result["orders"].changed == 1
    [stored] = published(any_store, "orders")
    assert stored["total_minor"] == 150000
    assert [r["name"] for r in published(any_store, "order_lines")] == ["line 0", "line one, fixed"]


def test_the_same_order_twice_in_a_page_is_stored_once(any_store: Store) -> None:
    page = order("7", status="pending")
    later = order("7", status="paid")
    twice = Page(orders=page.orders + later.orders, order_lines=page.order_lines + later.order_lines,
                 payments=page.payments + later.payments, customers=page.customers + later.customers)
    result = any_store.write_page("shop", "frontcore", "orders", twice, {})
    assert result["orders"].new == 1
    assert [r["status"] for r in published(any_store, "orders")] == ["paid"]
    assert any_store.count("order_lines") == 2 and any_store.count("payments") == 1


def test_rejected_records_are_kept_once_and_counted_in_status(any_store: Store) -> None:
    bad = [{"record_id": "9", "reason": "total_minor out of 64-bit range", "raw": {"id": 9, "total": "1e30"}},
           {"record_id": None, "reason": "record without id", "raw": {"total": 1}}]
    any_store.write_page("shop", "frontcore", "orders", order("1"), {"c": 1}, rejects=bad)
    any_store.write_page("shop", "frontcore", "orders", Page(), {"c": 2}, rejects=bad)  # read again: still two
    [row] = any_store.status()
    assert row["rejected"] == 2 and row["rows"]["orders"] == 1
    with any_store.engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT record_id, reason FROM _ordersync_rejects ORDER BY reason").all()
    assert [tuple(r) for r in stored] == [(None, "record without id"), ("9", "total_minor out of 64-bit range")]


def test_a_reject_is_deleted_by_the_page_that_stores_its_record(any_store: Store) -> None:
    """Same source, stream and id: the page storing the record deletes its reject; other sources' rejects, other
    streams' and those kept without an id stay."""
    bad = [{"record_id": "9", "reason": "1e30", "raw": {"id": 9}}, {"record_id": None, "reason": "no id", "raw": {}}]
    any_store.write_page("shop", "frontcore", "orders", order("1"), {"c": 1}, rejects=bad)
    any_store.write_page("other", "frontcore", "orders", Page(), {"c": 1}, rejects=bad)
    any_store.write_page("shop", "frontcore", "customers", Page(), {"c": 1}, rejects=bad)
    any_store.write_page("shop", "frontcore", "orders", order("9"), {"c": 2})
    with any_store.engine.connect() as conn:
        kept = conn.exec_driver_sql("SELECT source, stream, record_id FROM _ordersync_rejects").all()
    assert sorted((tuple(r) for r in kept), key=str) == sorted([("shop", "orders", None), ("other", "orders", "9"),
                                                     ("other", "orders", None), ("shop", "customers", "9"),
                                                     ("shop", "customers", None)], key=str)
    assert any_store.outstanding_rejects(["shop"]) == 3


def test_runs_left_running_by_a_dead_process_become_interrupted(dest_url: str) -> None:
    dead = open_store(dest_url)
    killed = dead.start_run("shop", "orders")
    dead.close()  # as a killed process: the run stays "running", its lock is gone
    store = open_store(dest_url)
    run_id = store.start_run("shop", "orders")
    other = store.start_run("elsewhere", "orders")
    with store.engine.connect() as conn:
        statuses = dict(conn.exec_driver_sql("SELECT run_id, status FROM _ordersync_runs").all())
    assert statuses == {killed: "interrupted", run_id: "running", other: "running"}
    store.finish_run(run_id, "ok", WriteResult(), 3)
    store.close()


@hypothesis.given(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31),
                               timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30))])))
def test_sqlite_times_are_the_text_sqlalchemy_would_store(moment: datetime) -> None:
    """The SQLite insert formats times itself (a third of SQLAlchemy's cost): byte for byte the same text, or
    reading, sorting and comparing stored times would break."""
    from sqlalchemy.dialects import sqlite

    from ordersync.store.sqlite import _utc_text
    from ordersync.store.tables import orders

    processor = orders.c.created_at.type.dialect_impl(sqlite.dialect()).bind_processor(sqlite.dialect())
    assert _utc_text(moment) == processor(moment)


@hypothesis.given(st.lists(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                                        timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30))])),
                           min_size=1, max_size=6))
def test_sqlite_rows_keep_each_time_s_own_text(moments: list[datetime]) -> None:
    """A page's insert reuses the text of a UTC time it has formatted already; the same instant in another zone
    (equal to it in Python) still gets its own text, the one SQLAlchemy would store."""
    from sqlalchemy.dialects import sqlite

    from ordersync.store.sqlite import _insert_plan
    from ordersync.store.tables import orders

    dialect = sqlite.dialect()
    processor = orders.c.created_at.type.dialect_impl(dialect).bind_processor(dialect)
    same_instants = [m.astimezone(UTC) for m in moments] + [m.astimezone(timezone(timedelta(hours=5, minutes=30)))
                                                            for m in moments]
    _sql, build = _insert_plan(orders, dialect)
    names = [c.name for c in orders.columns]
    stored = build([{"created_at": m, "updated_at": m} for m in same_instants], {})
    assert [row[names.index("created_at")] for row in stored] == [processor(m) for m in same_instants]


def test_sqlite_stores_each_raw_as_the_text_of_the_record(tmp_path: Any) -> None:
    """``raw`` is bound as JSON bytes and cast to TEXT by SQLite: stored as TEXT (never a BLOB, which ``->>`` and
    text comparisons would not read), byte for byte the record's JSON, on first insert and on update alike."""
    import orjson

    store = open_store(f"sqlite:///{tmp_path / 'orders.db'}")
    try:
        def changed() -> Page:
            page = order("1", status="cancelled")  # the order and its customer are updated, not inserted
            page.customers[0]["raw"] = {"id": "c1", "name": "Åse Øberg"}
            return page

        store.write_page("shop", "frontcore", "orders", order("1"), {})
        store.write_page("shop", "frontcore", "orders", changed(), {})
        after = changed()
        expected = {
            "orders": [after.orders[0]["raw"]], "order_lines": [line["raw"] for line in after.order_lines],
            "payments": [{}], "customers": [after.customers[0]["raw"]],
            "order_versions": [order("1").orders[0]["raw"]],  # the replaced record, kept by its closed version
        }
        with store.engine.connect() as conn:
            for table, records in expected.items():
                stored = conn.exec_driver_sql(f"SELECT typeof(raw), raw FROM {table} WHERE raw IS NOT NULL").all()
                assert stored == [("text", orjson.dumps(record).decode()) for record in records], table
    finally:
        store.close()


def test_times_are_stored_in_whole_seconds_everywhere(any_store: Store) -> None:
    """The vendor's exact time stays in ``raw``; the columns hold whole seconds on every destination, for new
    and changed rows and for the order's history (each destination's bulk path truncates them itself)."""
    exact = datetime(2026, 5, 1, 10, 0, 0, 987654, tzinfo=UTC)
    page = order("1")
    page.orders[0].update(created_at=exact, updated_at=exact)
    page.customers[0].update(created_at=exact)
    any_store.write_page("shop", "frontcore", "orders", page, {})
    page.orders[0]["status"] = "refunded"  # changed: written by the other bulk path (an upsert)
    page.customers[0]["name"] = "Åse Berg"
    any_store.write_page("shop", "frontcore", "orders", page, {})
    whole = exact.replace(microsecond=0)
    [stored] = published(any_store, "orders")
    [customer] = published(any_store, "customers")
    assert (stored["created_at"], stored["updated_at"], customer["created_at"]) == (whole, whole, whole)
    with any_store.engine.connect() as conn:
        versions = conn.exec_driver_sql("SELECT updated_at FROM order_versions").scalars().all()
    assert len(versions) == 2 and all(_as_utc(v) == whole for v in versions)


def _as_utc(value: Any) -> datetime:
    """A time as each database returns it from plain SQL (SQLite: its ISO text)."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
