"""Schema versions: a first-release database is upgraded in place without losing rows; a newer one is refused;
an upgraded database is the same as a fresh one; a failed step leaves the database as it was."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ordersync.errors import StoreError
from ordersync.store import SCHEMA_VERSION, Store, migrations, open_store, tables
from tests.store.helpers import snapshot
from tests.store.test_write import order

FIXTURES = Path(__file__).parent / "fixtures"


def first_release_db(path: Path) -> str:
    """A SQLite file exactly as ordersync 0.1 (schema 1) left it, with one order, its line, a customer, a state."""
    with sqlite3.connect(path) as conn:
        conn.executescript((FIXTURES / "schema_v1.sql").read_text(encoding="utf-8"))
    return f"sqlite:///{path}"


def version(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT version FROM _ordersync_schema")).scalar_one())


def layout(store: Store) -> dict[str, Any]:
    """Tables, columns (name, type, nullable, in order) and primary keys, as the database reports them."""
    if store.engine.dialect.name == "sqlite":
        inspector = sa.inspect(store.engine)
        return {
            table: ([(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)],
                    inspector.get_pk_constraint(table)["constrained_columns"])
            for table in sorted(inspector.get_table_names())
        }
    query = ("SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns "
             "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position")
    keys = ("SELECT c.table_name, k.column_name FROM information_schema.table_constraints c JOIN "
            "information_schema.key_column_usage k ON k.constraint_name = c.constraint_name AND k.table_name = "
            "c.table_name WHERE c.constraint_type = 'PRIMARY KEY' AND c.table_schema = current_schema() "
            "ORDER BY c.table_name, k.ordinal_position")
    found: dict[str, Any] = {}
    with store.engine.connect() as conn:
        for table, column, kind, nullable in conn.exec_driver_sql(query):
            found.setdefault(table, ([], []))[0].append((column, kind, nullable))
        for table, column in conn.exec_driver_sql(keys):
            found[table][1].append(column)
    return found


def test_a_first_release_database_is_upgraded_in_place(tmp_path: Path) -> None:
    url = first_release_db(tmp_path / "old.db")
    store = open_store(url)
    assert store.found_version == 1 and version(store) == SCHEMA_VERSION
    rows = snapshot(store)
    assert [(o["order_id"], o["customer_name"], o["total_minor"], o["raw"]["name"]) for o in rows["orders"]] == [
        ("1001", "Åse Øberg", 150000, "Åse Øberg")]
    assert len(rows["order_lines"]) == 1 and len(rows["customers"]) == 1
    assert store.load_state("courses", "orders") == {"max_id": 1001, "pending": None}
    assert [r["last_status"] for r in store.status()] == ["ok"]
    written = store.write_page("courses", "frontcore", "orders", order("1002"), {"max_id": 1002})
    assert written["orders"].new == 1 and store.count("orders") == 2
    fresh = open_store(f"sqlite:///{tmp_path / 'fresh.db'}")
    assert layout(store) == layout(fresh)
    store.close()
    fresh.close()


RAW_TABLES = ("orders", "order_lines", "customers", "payments", "_ordersync_rejects", "order_versions")


def _raw_as_jsonb(conn: Connection) -> None:
    """PostgreSQL's ``raw`` columns as schemas 1 to 3 had them: ``jsonb``."""
    for table in RAW_TABLES:
        conn.execute(sa.text(f"ALTER TABLE {table} ALTER COLUMN raw TYPE jsonb USING raw::jsonb"))


def _downgrade_to_first(store: Store) -> None:
    """Turn a fresh database of this release back into schema 1 (what 0.1 would have created on it)."""
    with store.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            _raw_as_jsonb(conn)
        conn.execute(sa.text("DROP TABLE order_versions"))
        for index in ("orders_by_created", "orders_by_email", "orders_by_number"):
            conn.execute(sa.text(f"DROP INDEX IF EXISTS {index}"))  # none on DuckDB (tables.py)
        conn.execute(sa.text("DROP TABLE _ordersync_rejects"))
        for column in ("lifecycle", "adjustment_minor"):  # schema 5
            conn.execute(sa.text(f"ALTER TABLE orders DROP COLUMN {column}"))
        for column in (*tables.RUN_COUNTS, "duration_ms"):  # schema 6
            conn.execute(sa.text(f"ALTER TABLE _ordersync_runs DROP COLUMN {column}"))
        for table in ("orders", "customers"):
            conn.execute(sa.text(f"ALTER TABLE {table} DROP COLUMN row_hash"))
        conn.execute(sa.text("UPDATE _ordersync_schema SET version = 1"))


def test_every_destination_upgrades_in_place_and_matches_a_fresh_one(dest_url: str) -> None:
    store = open_store(dest_url)
    fresh_layout = layout(store)
    assert "row_hash" in str(fresh_layout["orders"]) and fresh_layout["orders"][1] == ["source", "order_id"]
    store.write_page("shop", "frontcore", "orders", order("1"), {"c": 1})
    before = snapshot(store)
    _downgrade_to_first(store)
    store.close()
    with ThreadPoolExecutor(2) as pool:  # two processes opening the old database at once: one upgrades it
        opened = list(pool.map(lambda _: open_store(dest_url), range(2)))
    found = sorted(s.found_version for s in opened)  # the other opener saw the schema before or between steps
    assert found[0] == 1 and 1 <= found[1] <= SCHEMA_VERSION
    upgraded = opened[0]
    assert version(upgraded) == SCHEMA_VERSION and layout(upgraded) == fresh_layout
    # schema 5 derives the order's lifecycle from its record (Frontcore's, with no is_paid: pending; every amount in
    # a line); its lines and payments were not made from the record, so they stay as they were
    before["orders"][0].update(lifecycle="pending", adjustment_minor=0)
    assert snapshot(upgraded) == before
    for s in opened:
        s.close()


def test_a_schema_3_postgresql_database_keeps_its_raw_records_as_json(pg_url: str) -> None:
    """Schema 4 turns PostgreSQL's ``jsonb`` raw columns into ``json``: every stored record is still there, the
    same JSON, and the columns are those of a fresh database."""
    store = open_store(pg_url)
    fresh_layout = layout(store)
    store.write_page("shop", "frontcore", "orders", order("1"), {"c": 1})
    store.write_page("shop", "frontcore", "orders", order("1", status="refunded"), {"c": 2})  # a closed version
    store.write_page("shop", "frontcore", "orders", order("2"), {"c": 3},
                     rejects=[{"record_id": "3", "reason": "no total", "raw": {"id": "3", "b": [1, 2]}}])
    with store.engine.begin() as conn:
        _raw_as_jsonb(conn)
        conn.execute(sa.text("UPDATE _ordersync_schema SET version = 3"))
        before = {t: sorted(conn.execute(sa.text(f"SELECT raw::text FROM {t} WHERE raw IS NOT NULL")).scalars())
                  for t in RAW_TABLES}
    store.close()
    assert all(before.values())  # every table holds a raw record to convert
    upgraded = open_store(pg_url)
    assert upgraded.found_version == 3 and version(upgraded) == SCHEMA_VERSION
    assert layout(upgraded) == fresh_layout
    with upgraded.engine.connect() as conn:
        kinds = set(conn.execute(sa.text("SELECT data_type FROM information_schema.columns WHERE column_name = "
                                         "'raw' AND table_schema = current_schema()")).scalars())
        after = {t: sorted(conn.execute(sa.text(f"SELECT raw::text FROM {t} WHERE raw IS NOT NULL")).scalars())
                 for t in RAW_TABLES}
    assert kinds == {"json"}
    assert after == before  # the same records: jsonb's text of each, now kept as it is
    assert [orjson.loads(o["raw"])["state"] for b in upgraded.iter_rows("orders") for o in b] == ["refunded", "paid"]
    upgraded.close()


def test_a_failed_step_leaves_the_old_schema_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = first_release_db(tmp_path / "old.db")

    def half_done(conn: Connection) -> None:
        conn.execute(sa.text("ALTER TABLE orders ADD COLUMN row_hash TEXT"))
        raise RuntimeError("power cut")

    monkeypatch.setitem(migrations.MIGRATIONS, 2, half_done)
    with pytest.raises(RuntimeError):
        open_store(url)
    with sqlite3.connect(tmp_path / "old.db") as conn:
        columns = [r[1] for r in conn.execute("PRAGMA table_info(orders)")]
        assert "row_hash" not in columns
        assert conn.execute("SELECT version FROM _ordersync_schema").fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM orders").fetchone() == (1,)
    monkeypatch.undo()
    assert open_store(url).found_version == 1  # the real step then runs


def test_a_newer_database_is_refused_with_one_clear_line(dest_url: str) -> None:
    store = open_store(dest_url)
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE _ordersync_schema SET version = 99"))
    store.close()
    with pytest.raises(StoreError, match=r"written by a newer ordersync \(schema 99; this one knows up to \d+\): "
                                         r"upgrade ordersync"):
        open_store(dest_url)
