"""PostgreSQL's write path: what keeps a page's cost flat as the tables grow, and two pages in flight (the
writer process's) that commit one after the other, in order, as if written one at a time."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

import orjson
import psycopg
import pytest

from ordersync.errors import StoreError
from ordersync.store import Store, WriteResult, open_store
from ordersync.store.postgres_copy import existing_hashes_sql
from ordersync.store.rows import prepare_page as _prepare
from tests.pg_server import PgServer
from tests.store.test_write import Page, order


@pytest.mark.parametrize(("table", "key"), [("orders", "order_id"), ("customers", "customer_id")])
def test_stored_hashes_are_looked_up_by_key_while_statistics_are_stale(pg_url: str, table: str, key: str) -> None:
    """A first load writes thousands of rows before autovacuum's first ANALYZE: the lookup must still probe the
    primary key per key of the page, not scan every row of the source (a page's cost grew with the table)."""
    store = open_store(pg_url)
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


# The server writes its log to disk at most every 10 s unless a commit waits for it: a commit that did not
# wait is still in the server's memory when it is killed just after.
_SLOW_LOG_WRITER = "-c wal_writer_delay=10000"


def test_a_finished_sync_survives_a_crash_of_the_server() -> None:
    """Once a sync has ended, a crash of the PostgreSQL server loses none of it: pages commit without waiting for
    the disk, but the run's end does wait, and its commit carries every page before it to the disk."""
    with PgServer.start(durable=True, settings=_SLOW_LOG_WRITER) as server:
        url = server.new_database()
        store = open_store(url)
        try:
            store.start_writer()  # as a sync writes: pages in the writer process, two in flight
            run = store.start_run("shop", "orders")
            for n in range(1, 4):
                store.write_page("shop", "frontcore", "orders", order(str(n)), {"page": n})
            store.finish_run(run, "ok", WriteResult(new=3), requests=3)
        finally:
            store.close()
        server.crash_and_restart()  # at once: whatever waits for the log writer is lost
        assert _committed(url) == (["1", "2", "3"], {"page": 3})
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT status, new_rows FROM _ordersync_runs").fetchall() == [("ok", 3)]


def test_a_crash_of_the_server_during_a_sync_rolls_back_whole_pages_with_their_state() -> None:
    """A crash of the server while a sync runs may take the last pages with it, but each whole and with the
    state that covers it: the next run reads exactly those again, so no order is lost or stored twice."""
    with PgServer.start(durable=True, settings=_SLOW_LOG_WRITER) as server:
        url = server.new_database()
        store = open_store(url)
        try:
            store.start_run("shop", "orders")
            for n in range(1, 4):
                store.write_page("shop", "frontcore", "orders", order(str(n)), {"page": n})
        finally:
            store.close()
        server.crash_and_restart()
        ids, state = _committed(url)
        assert ids == [str(n) for n in range(1, (state or {"page": 0})["page"] + 1)], (ids, state)


class _Signalling(threading.Event):
    """A page's "ended" event that tells the test when another page starts waiting for it."""

    def __init__(self, waited: threading.Event) -> None:
        super().__init__()
        self.waited = waited

    def wait(self, timeout: float | None = None) -> bool:
        self.waited.set()
        return super().wait(timeout)


def _pages(*pages: Page) -> Page:
    merged = Page()
    for page in pages:
        for name in ("orders", "order_lines", "customers", "payments"):
            getattr(merged, name).extend(getattr(page, name))
    return merged


def _start(store: Store, n: int, page: Page, sequence: str = "sync-1") -> Future[dict[str, WriteResult]]:
    return store.start_in_sequence(sequence, "shop", "frontcore", "orders", _prepare(page), {"page": n})


def _committed(pg_url: str) -> tuple[list[str], Any]:
    with psycopg.connect(pg_url) as conn:
        ids = [row[0] for row in conn.execute("SELECT order_id FROM orders ORDER BY order_id")]
        state = conn.execute("SELECT state FROM _ordersync_state").fetchone()
    return ids, state and orjson.loads(state[0])


@pytest.fixture
def held_store(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Store, threading.Event, list[str]]]:
    """A store whose page 1 stops before its state (then commit) until the test sets the event it yields;
    page 1 then fails instead when the list it yields holds "fail"."""
    store = open_store(pg_url)
    release = threading.Event()
    fail: list[str] = []
    save_state = store._save_state

    def held(conn: Any, source: str, api: str, stream: str, state: Any, at: Any) -> None:
        if state["page"] == 1:
            assert release.wait(60)
            if fail:
                raise StoreError("disk full")
        save_state(conn, source, api, stream, state, at)

    monkeypatch.setattr(store, "_save_state", held)
    yield store, release, fail
    release.set()
    store.close()


def test_a_page_in_flight_commits_only_after_the_page_before(pg_url: str, held_store: Any) -> None:
    store, release, _fail = held_store
    first = _start(store, 1, order("1"))
    waited = threading.Event()
    store._last_flight.ended = _Signalling(waited)  # page 2 reaching its wait for page 1 sets it
    second = _start(store, 2, order("2"))
    assert waited.wait(30), "page 2 never waited for page 1"
    assert _committed(pg_url) == ([], None)  # page 2's rows are written, not committed: page 1 is still open
    release.set()
    assert first.result(30)["orders"].new == 1 and second.result(30)["orders"].new == 1
    assert _committed(pg_url) == (["1", "2"], {"page": 2})


def test_a_page_in_flight_after_a_failed_page_is_not_committed(pg_url: str, held_store: Any) -> None:
    store, release, fail = held_store
    first = _start(store, 1, order("1"))
    waited = threading.Event()
    store._last_flight.ended = _Signalling(waited)
    second = _start(store, 2, order("2"))
    assert waited.wait(30), "page 2 never waited for page 1"
    fail.append("fail")
    release.set()
    with pytest.raises(StoreError, match="disk full"):
        first.result(30)
    with pytest.raises(StoreError, match="an earlier page of this sync of shop failed"):
        second.result(30)
    assert _committed(pg_url) == ([], None)
    third = _start(store, 3, order("3"))  # and every later page of that sync is refused
    with pytest.raises(StoreError, match="an earlier page"):
        third.result(30)
    assert _start(store, 4, order("4"), sequence="sync-2").result(30)["orders"].new == 1  # another sync goes on


@pytest.mark.parametrize("shared", ["orders", "customers"])
def test_adjacent_pages_in_flight_sharing_a_key_count_as_written_one_after_the_other(
        pg_url: str, held_store: Any, shared: str) -> None:
    """Page 2 changes an order page 1 writes, or has its customer: it must see page 1's rows, not collide with
    them; counts, rows and history are those of the two pages written one after the other."""
    store, release, _fail = held_store
    later = order("1", status="refunded") if shared == "orders" else order("3")
    later.customers = order("1").customers
    first = _start(store, 1, _pages(order("1"), order("2")))
    progressed = threading.Event()
    store._last_flight.ended = _Signalling(progressed)
    lookup = store._existing_hashes

    def signalled(conn: Any, table: Any, *args: Any) -> Any:
        try:
            return lookup(conn, table, *args)
        finally:
            if table.name == shared:
                progressed.set()

    store._existing_hashes = signalled  # type: ignore[method-assign]
    second = _start(store, 2, _pages(later, order("4")))
    assert progressed.wait(30), "page 2 neither waited for page 1 nor looked up its keys"
    release.set()  # page 1 commits once page 2 waits for it or (were it not to wait) has looked its keys up
    one, two = first.result(30), second.result(30)
    assert (one["orders"].new, one["customers"].new) == (2, 2)
    assert (two["orders"].new, two["orders"].changed) == ((1, 1) if shared == "orders" else (2, 0))
    assert (two["customers"].new, two["customers"].unchanged) == (1, 1)
    ids = ["1", "2", "4"] if shared == "orders" else ["1", "2", "3", "4"]
    assert _committed(pg_url) == (ids, {"page": 2})
    with psycopg.connect(pg_url) as conn:
        versions = conn.execute("SELECT order_id, version_no, status FROM order_versions ORDER BY 1, 2").fetchall()
    assert [v for v in versions if v[0] == "1"] == (
        [("1", 1, "paid"), ("1", 2, "refunded")] if shared == "orders" else [("1", 1, "paid")])


# A vendor's records as their APIs may send them: keys out of order, a key twice, numbers written their own way,
# escapes, spaces. jsonb would sort the keys, keep the last duplicate, and print 100 for 1.0e2 and "Å" for \u00c5.
FIRST = b'{"zeta":1,"id":"1","total":1.0e2,"zeta":2,"name":"\\u00c5se","lines":[{"n":0}]}'
SECOND = b'{ "zeta" : 3, "id":"1", "total":1.50E+2, "zeta":4, "lines":[{"n":0,"n":1}] }'


def _vendor_page(raw: bytes, total: int) -> Page:
    page = order("1", total=total, lines=1)
    page.orders[0]["raw"] = raw
    page.order_lines[0]["raw"] = raw[raw.index(b"[") + 1:raw.rindex(b"]")]
    page.customers[0]["raw"] = raw.replace(b'"id":"1"', b'"id":"c1"')
    page.payments[0]["raw"] = raw.replace(b'"total"', b'"paid"')
    return page


def test_raw_is_stored_as_the_exact_text_received(pg_url: str) -> None:
    """``raw`` is the vendor's record exactly as received: a new order (bulk COPY), the same order changed (the
    staged upsert), its lines, payments and customer, and the record the change replaced (kept in the order's
    history) all come back byte for byte, in SQL (``raw::text``) and through ordersync."""
    store = open_store(pg_url)
    try:
        assert store.write_page("shop", "frontcore", "orders", _vendor_page(FIRST, 10000), {})["orders"].new == 1
        assert store.write_page("shop", "frontcore", "orders", _vendor_page(SECOND, 15000), {})["orders"].changed == 1
        expected = _vendor_page(SECOND, 15000)
        with psycopg.connect(pg_url) as conn:
            stored = {table: conn.execute(f"SELECT raw::text FROM {table}").fetchall()
                      for table in ("orders", "order_lines", "payments", "customers")}
            replaced = conn.execute("SELECT raw::text FROM order_versions WHERE raw IS NOT NULL").fetchall()
            total = conn.execute("SELECT raw->>'total', raw::jsonb @> '{\"zeta\": 4}' FROM orders").fetchone()
        assert stored == {table: [(getattr(expected, table)[0]["raw"].decode(),)]
                          for table in ("orders", "order_lines", "payments", "customers")}
        assert replaced == [(FIRST.decode(),)]
        assert total == ("1.50E+2", True)  # SQL reads it as JSON, the vendor's spelling kept; jsonb operators by cast
        assert [row["raw"] for batch in store.iter_rows("orders") for row in batch] == [SECOND.decode()]
    finally:
        store.close()
