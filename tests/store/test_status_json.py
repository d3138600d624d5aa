"""``ordersync status --json`` from the Python API (``ordersync.api.status``) on SQLite, PostgreSQL and DuckDB, after
a real sync of Frontcore's sandbox (in-process): the documented model validates it, and its values are the
stream's own (orders for orders, customers for customers, the run's counts apart, its duration to the
millisecond, how far the data reaches in Oslo time and UTC). A failed run and a rejected record make a stream
unhealthy and are said in its line."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from ordersync import api
from ordersync.errors import StoreError
from ordersync.model import Rows
from ordersync.status_model import StatusReport
from ordersync.store import WriteResult, migrations, open_store, tables
from tests.store.test_migrations import layout
from tests.support import in_process

KEY = "status-json-key-1"


def test_status_json_after_a_real_sync_on_every_destination(dest_url: str) -> None:
    sandbox = in_process("frontcore", orders=30, seed=3, api_key=KEY)
    settings = sandbox.settings()
    store = open_store(dest_url)
    try:
        results = {r.stream: r for r in sandbox.sync(store, "courses", settings)}
        assert all(r.ok for r in results.values())
        cursor = datetime.fromisoformat(store.load_state("courses", "orders")["cursor"])  # type: ignore[index]
        sweep = store.load_state("courses", "orders")["sweep"]["next"]  # type: ignore[index]
        counted = {table: store.count(table, "courses") for table in ("orders", "customers")}
        run = store.start_run("old-shop", "orders")  # a source no longer configured, whose last run failed
        store.finish_run(run, "failed", WriteResult(), 2, error="HTTP 500 from /v2/orders\nsecond line")
        store.write_page("old-shop", "frontcore", "orders", Rows(), {"version": 1},
                         rejects=[{"record_id": "7", "reason": "no total", "raw": {"id": "7"}}])
    finally:
        store.close()

    shown = api.status({"destination": {"url": dest_url}, "sources": {"courses": settings}})
    report = StatusReport.model_validate(shown)  # the documented model, field by field (extra keys refused)
    assert StatusReport.model_validate_json(json.dumps(shown)) == report  # and as the JSON text monitoring reads
    password = make_url(dest_url).password
    assert shown["version"] == 1 and not report.healthy and (not password or password not in json.dumps(shown))
    courses, old = report.sources
    assert (courses.source, courses.api, courses.configured, courses.healthy) == ("courses", "frontcore", True, True)
    orders, customers = sorted(courses.streams, key=lambda s: s.stream != "orders")
    assert (orders.rows, orders.rows_of, customers.rows, customers.rows_of) == (
        counted["orders"], "orders", counted["customers"], "customers")
    assert orders.last_run is not None and customers.last_run is not None
    assert orders.last_run.orders is not None and orders.last_run.customers is not None
    assert (orders.last_run.orders.new, orders.last_run.customers.new) == (results["orders"].orders.new, 0) == (30, 0)
    assert customers.last_run.customers is not None
    assert customers.last_run.customers.new == results["customers"].customers.new == counted["customers"] > 0
    assert isinstance(orders.last_run.duration_ms, int) and orders.last_run.duration_ms >= 0
    assert orders.last_run.status == "ok" and orders.last_success == orders.last_run.finished_at
    assert orders.data_until is not None and orders.data_until.zone == "Europe/Oslo"
    assert orders.data_until.utc == cursor and orders.data_until.vendor_time == cursor
    assert orders.data_until.vendor_time.utcoffset() == cursor.astimezone(ZoneInfo("Europe/Oslo")).utcoffset()
    assert orders.next_sweep_day == date.fromisoformat(sweep) and orders.healthy and orders.rejects_outstanding == 0
    assert f"{counted['orders']:,} orders" in orders.line and f"{counted['customers']:,} customers" in customers.line

    assert (old.source, old.api, old.configured, old.healthy) == ("old-shop", "frontcore", False, False)
    [broken] = old.streams
    assert broken.rejects_outstanding == 1 and broken.last_success is None and not broken.healthy
    assert broken.last_run is not None and broken.last_run.error == "HTTP 500 from /v2/orders"
    assert broken.last_run.orders is None  # a run logged without its counts apart: not recorded, not zero
    assert "no successful run yet" in broken.line and "last run failed" in broken.line
    assert "1 reject outstanding" in broken.line and "second line" not in broken.line



def shop(url: str) -> dict[str, Any]:
    """A configuration with the one source the run log below names."""
    return {"destination": {"url": url},
            "sources": {"shop": {"type": "frontcore", "api_key": KEY, "base_url": "http://127.0.0.1:9/v2"}}}


def as_schema_5(url: str) -> None:
    """A destination as the previous version left it: a run log without schema 6's columns, and one run in it."""
    store = open_store(url)
    with store.engine.begin() as conn:
        for name in (*tables.RUN_COUNTS, "duration_ms"):
            conn.execute(sa.text(f"ALTER TABLE _ordersync_runs DROP COLUMN {name}"))
        conn.execute(sa.text("UPDATE _ordersync_schema SET version = 5"))
        conn.execute(sa.insert(tables.runs).values(
            source="shop", stream="orders", started_at=datetime(2026, 6, 1, 8, tzinfo=UTC),
            finished_at=datetime(2026, 6, 1, 8, 1, tzinfo=UTC), status="ok", new_rows=5, changed_rows=1,
            unchanged_rows=0, requests=3))
    store.close()


def test_a_run_log_of_the_previous_version_is_upgraded_and_its_runs_kept(dest_url: str) -> None:
    fresh = open_store(dest_url)
    expected = layout(fresh)
    fresh.close()
    as_schema_5(dest_url)
    with pytest.raises(StoreError, match="older ordersync"):  # status reads; it upgrades nothing
        api.status(shop(dest_url))
    store = open_store(dest_url)
    assert store.found_version == 5 and layout(store) == expected
    with store.engine.begin() as conn:
        migrations.MIGRATIONS[6](conn)  # safe to run again
    store.close()  # (DuckDB: one process opens a file either read-only or not)
    [old] = api.status(shop(dest_url))["sources"][0]["streams"]
    assert old["last_run"]["orders"] is None and old["last_run"]["duration_ms"] is None  # not recorded, not zero
    assert old["last_success"] == "2026-06-01T08:01:00Z" and old["last_run"]["requests"] == 3
    store = open_store(dest_url)
    run = store.start_run("shop", "orders")
    store.finish_run(run, "ok", WriteResult(new=2, changed=1), 4, orders=WriteResult(new=2),
                     customers=WriteResult(changed=1))
    store.close()
    [new] = api.status(shop(dest_url))["sources"][0]["streams"]
    assert new["last_run"]["orders"] == {"new": 2, "changed": 0, "unchanged": 0}
    assert new["last_run"]["customers"] == {"new": 0, "changed": 1, "unchanged": 0}
    assert isinstance(new["last_run"]["duration_ms"], int)
