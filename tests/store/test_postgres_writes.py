"""PostgreSQL's write path: what keeps a page's cost flat as the tables grow."""

from __future__ import annotations

import psycopg
import pytest

from ordersync.store import Store
from ordersync.store.postgres import existing_hashes_sql
from tests.store.test_write import Page, order


@pytest.mark.parametrize(("table", "key"), [("orders", "order_id"), ("customers", "customer_id")])
def test_stored_hashes_are_looked_up_by_key_while_statistics_are_stale(pg_url: str, table: str, key: str) -> None:
    """A first load writes thousands of rows before autovacuum's first ANALYZE: the lookup must still probe the
    primary key per key of the page, not scan every row of the source (a page's cost grew with the table)."""
    store = Store(pg_url)
    try:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = off)")  # statistics stay those of empty
        page = Page()
        for n in range(3000):
            one = order(str(n), lines=1)
            for name in ("orders", "order_lines", "customers", "payments"):
                getattr(page, name).extend(getattr(one, name))
        store.write_page("shop", "frontcore", "orders", page, {})
        keys = [str(n) if table == "orders" else f"c{n}" for n in range(2990, 3010)]
        with psycopg.connect(pg_url) as conn:
            conn.execute("SET plan_cache_mode = force_generic_plan")  # as a statement psycopg has prepared
            plan = "\n".join(row[0] for row in conn.execute(
                "EXPLAIN " + existing_hashes_sql(table, key), (keys, "shop"), prepare=True))
            found = dict(conn.execute(existing_hashes_sql(table, key), (keys, "shop")).fetchall())
    finally:
        store.close()
    assert f"Index Scan using {table}_pkey" in plan and "Nested Loop" in plan, plan
    assert "Hash Join" not in plan and "Seq Scan on" not in plan and "Bitmap Heap Scan" not in plan, plan
    assert sorted(found) == sorted(keys[:10])  # the keys stored, each with its hash
    assert all(found.values())
