"""SQLite, PostgreSQL and DuckDB hold the same published rows after the same sync, with native types."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from ordersync.store import open_store
from tests.registry import API_NAMES
from tests.store.helpers import open_all, snapshot
from tests.store.test_write import order
from tests.support import running, sync


@pytest.mark.parametrize("api", API_NAMES)
def test_every_api_gives_the_same_rows_in_every_destination(api: str, tmp_path: Path, pg_url: str) -> None:
    stores = open_all(tmp_path, pg_url)
    with running(api, orders=120, seed=11) as sandbox:
        for store in stores.values():
            results = sync(store, "shop", sandbox.settings())
            assert all(r.ok for r in results), [r.error for r in results]
    seen = {name: snapshot(store) for name, store in stores.items()}
    assert seen["sqlite"]["orders"], "the sandbox gave no orders"
    for table, rows in seen["sqlite"].items():
        assert seen["postgresql"][table] == rows, f"{table}: PostgreSQL differs from SQLite"
        assert seen["duckdb"][table] == rows, f"{table}: DuckDB differs from SQLite"
    for store in stores.values():  # the same again finds nothing new anywhere
        with running(api, orders=120, seed=11) as sandbox:
            results = sync(store, "shop", sandbox.settings(), full_refresh=True)
        assert all(r.orders.new + r.orders.changed + r.customers.new + r.customers.changed == 0 for r in results)
        store.close()


def _types(store_url: str, query: str) -> dict[str, str]:
    engine = sa.create_engine(store_url)
    try:
        with engine.connect() as conn:
            return {name: kind.lower() for name, kind in conn.exec_driver_sql(query).all()}
    finally:
        engine.dispose()


def test_native_types_and_json_queries(tmp_path: Path, pg_url: str) -> None:
    stores = open_all(tmp_path, pg_url)
    with running("frontcore", orders=40, seed=2) as sandbox:
        for store in stores.values():
            assert all(r.ok for r in sync(store, "courses", sandbox.settings(streams=["orders"])))
    query = ("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'orders' "
             "AND column_name IN ('created_at', 'total_minor', 'is_paid', 'raw')")
    pg = _types(pg_url.replace("postgresql://", "postgresql+psycopg://"), query)
    assert pg == {"created_at": "timestamp with time zone", "total_minor": "bigint", "is_paid": "boolean",
                  "raw": "json"}
    stores["duckdb"].close()
    duck = _types(f"duckdb:///{tmp_path / 'orders.duckdb'}", query)
    assert duck == {"created_at": "timestamp with time zone", "total_minor": "bigint", "is_paid": "boolean",
                    "raw": "json"}
    with stores["postgresql"].engine.connect() as conn:  # raw->>'field' works in SQL on PostgreSQL
        ids = conn.exec_driver_sql("SELECT order_id, raw->>'id' FROM orders").all()
    assert ids and all(order_id == raw_id for order_id, raw_id in ids)
    texts = {}
    for kind in ("postgresql", "sqlite"):
        with stores[kind].engine.connect() as conn:
            texts[kind] = dict(conn.exec_driver_sql("SELECT order_id, CAST(raw AS TEXT) FROM orders").all())
    assert texts["postgresql"] == texts["sqlite"]  # the record's text as received (jsonb: its keys and spaces)
    for store in stores.values():
        store.close()


def test_the_schema_setting_holds_every_table_and_its_own_locks(pg_url: str) -> None:
    reports = open_store(pg_url, schema="reports", lock_wait=0)
    plain = open_store(pg_url, lock_wait=0)
    reports.lock("shop")
    plain.lock("shop")  # the same source name in another schema is another source
    reports.write_page("shop", "frontcore", "orders", order("1"), {"c": 1})
    with plain.engine.connect() as conn:
        where = conn.exec_driver_sql("SELECT table_schema, count(*) FROM information_schema.tables WHERE table_name "
                                     "IN ('orders', '_ordersync_rejects') GROUP BY 1 ORDER BY 1").all()
        assert [tuple(r) for r in where] == [("public", 2), ("reports", 2)]
        assert conn.exec_driver_sql("SELECT count(*) FROM reports.orders").scalar() == 1
    assert plain.count("orders") == 0 and reports.count("orders") == 1
    reports.close()
    plain.close()


def test_every_command_on_a_duckdb_destination(tmp_path: Path) -> None:
    def ordersync(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "ordersync", *args], cwd=tmp_path, capture_output=True,
                              text=True, timeout=240, env={**os.environ, "FC_KEY": "duck-key"})

    url = f"duckdb:///{tmp_path / 'orders.duckdb'}"
    with running("frontcore", orders=50, seed=3, api_key="duck-key") as fc:
        (tmp_path / "ordersync.toml").write_text(
            f'[destination]\nurl = "{url}"\n\n[sources.courses]\ntype = "frontcore"\napi_key = "${{FC_KEY}}"\n'
            f'base_url = "{fc.url}/v2"\nrequests_per_second = 1000\nstreams = ["orders"]\n')
        synced = ordersync("sync")
    assert synced.returncode == 0, synced.stderr
    status = ordersync("status")
    assert status.returncode == 0 and "courses" in status.stdout and "50" in status.stdout
    exported = ordersync("export", "orders", "--format", "jsonl")
    assert exported.returncode == 0 and len([json.loads(x) for x in exported.stdout.splitlines()]) == 50
    demo = ordersync("demo", "--orders", "20", "--db", f"duckdb:///{tmp_path / 'demo.duckdb'}")
    assert demo.returncode == 0, demo.stderr
    assert "order lines:" in demo.stdout and "demo.duckdb" in demo.stdout


def test_a_duckdb_file_is_written_with_bounded_memory_and_few_checkpoints(tmp_path: Path) -> None:
    """DuckDB's own defaults held every page of the file it had touched, up to 80% of the machine's memory (1 GB
    at 100,000 orders, growing with the history), and rewrote changed blocks into the file every 16 MB of log. A
    file destination evicts what is in the file past 48 MB and checkpoints every 64 MB; where ordersync writes,
    one thread and long texts in ZSTD (read-only opens keep DuckDB's own); an in-memory database, which has nowhere
    to evict to, keeps DuckDB's defaults."""
    query = ("SELECT current_setting('memory_limit'), current_setting('checkpoint_threshold'), "
             "current_setting('threads'), current_setting('disabled_compression_methods')")
    on_file, in_memory = open_store(f"duckdb:///{tmp_path / 'orders.duckdb'}"), open_store("duckdb:///:memory:")
    try:
        with on_file.engine.connect() as conn:  # 48 and 64 million bytes
            assert conn.exec_driver_sql(query).one() == ("45.7 MiB", "61.0 MiB", 1, "DICT_FSST")
        with in_memory.engine.connect() as conn:
            assert conn.exec_driver_sql(query).one()[0] != "45.7 MiB"
    finally:
        on_file.close()
        in_memory.close()
    reader = open_store(f"duckdb:///{tmp_path / 'orders.duckdb'}", read_only=True)
    try:
        with reader.engine.connect() as conn:
            assert conn.exec_driver_sql(query).one()[0] == "45.7 MiB"
            assert conn.exec_driver_sql(query).one()[3] == ""
    finally:
        reader.close()


def test_a_duckdb_file_keeps_the_keys_that_pay_and_replaces_changed_rows_once(tmp_path: Path) -> None:
    """DuckDB looks nothing up through an index here, so it keeps only the key of ``orders`` and of the
    bookkeeping tables; a changed order, customer, line and version is still stored exactly once."""
    store = open_store(f"duckdb:///{tmp_path / 'orders.duckdb'}")
    try:
        with store.engine.connect() as conn:
            keyed = {r[0] for r in conn.exec_driver_sql(
                "SELECT table_name FROM duckdb_constraints() WHERE constraint_type = 'PRIMARY KEY'")}
            indexes = conn.exec_driver_sql("SELECT count(*) FROM duckdb_indexes()").scalar()
        assert keyed == {"orders", "_ordersync_state", "_ordersync_runs", "_ordersync_rejects"} and indexes == 0
        store.write_page("shop", "frontcore", "orders", order("1"), {"c": 1})
        written = store.write_page("shop", "frontcore", "orders", order("1", status="cancelled"), {"c": 2})
        assert written["orders"].changed == 1 and written["customers"].unchanged == 1
        counts = {table: store.count(table) for table in ("orders", "order_lines", "payments", "customers")}
        assert counts == {"orders": 1, "order_lines": 2, "payments": 1, "customers": 1}
        with store.engine.connect() as conn:
            versions = conn.exec_driver_sql("SELECT version_no, status, valid_to IS NULL, raw IS NULL "
                                            "FROM order_versions ORDER BY version_no").all()
        assert [tuple(v) for v in versions] == [(1, "paid", False, False), (2, "cancelled", True, True)]
        assert snapshot(store)["orders"][0]["status"] == "cancelled"
        renamed = order("1", status="cancelled")
        renamed.customers[0].update(name="Åse Ø.", raw={"id": "c1", "name": "Åse Ø."})
        assert store.write_page("shop", "frontcore", "orders", renamed, {"c": 3})["customers"].changed == 1
        assert [c["name"] for c in snapshot(store)["customers"]] == ["Åse Ø."]
    finally:
        store.close()
