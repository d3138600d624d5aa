"""DuckDB writes a sync's pages several per transaction (ordersync.store.duckdb_pages): each batch commits whole
with the state of its last page, a failed batch stores none of its pages and refuses the stream's next ones, and
what is counted new, changed or unchanged is what page-by-page writing counts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ordersync.errors import StoreError
from ordersync.store import Store, WriteResult, duckdb_pages, open_store
from tests.store.helpers import published
from tests.store.test_write import Page, order


@pytest.fixture
def duck(tmp_path: Path) -> Iterator[Store]:
    store = open_store(f"duckdb:///{tmp_path / 'orders.duckdb'}")
    yield store
    store.close()


def versions(store: Store) -> list[tuple[Any, ...]]:
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql(
            "SELECT order_id, version_no, status, valid_to IS NULL FROM order_versions ORDER BY 1, 2").all()]


def test_a_pass_commits_its_pages_together_with_the_last_state(duck: Store) -> None:
    duck.open_batch("shop", "orders")
    first = duck.write_page("shop", "frontcore", "orders", order("1"), {"page": 1})
    second = duck.write_page("shop", "frontcore", "orders", order("2"), {"page": 2})
    assert (first["orders"].new, second["orders"].new) == (1, 1)
    assert duck.count("orders") == 0 and duck.load_state("shop", "orders") is None  # held, not yet committed
    duck.close_batch("shop", "orders")
    assert duck.count("orders") == 2 and duck.count("order_lines") == 4
    assert duck.load_state("shop", "orders") == {"page": 2}


def test_pages_of_a_batch_count_and_store_what_page_by_page_writing_does(duck: Store) -> None:
    duck.write_page("shop", "frontcore", "orders", order("1"), {"page": 0})  # stored before the pass
    duck.open_batch("shop", "orders")
    changed = duck.write_page("shop", "frontcore", "orders", order("1", status="cancelled"), {"page": 1})
    shared = order("2")
    shared.customers = order("1").customers  # a customer the page before holds, unchanged
    again = duck.write_page("shop", "frontcore", "orders", shared, {"page": 2})
    renamed = order("3")
    renamed.customers = [{**order("1").customers[0], "name": "Åse Ø."}]  # the held customer, changed
    third = duck.write_page("shop", "frontcore", "orders", renamed, {"page": 3})
    twice = duck.write_page("shop", "frontcore", "orders", order("1", status="refunded"), {"page": 4})
    duck.close_batch("shop", "orders")
    assert changed["orders"].changed == 1 and changed["customers"].unchanged == 1
    assert again["orders"].new == 1 and again["customers"].unchanged == 1
    assert third["customers"].changed == 1 and twice["orders"].changed == 1
    assert duck.count("orders") == 3 and duck.count("customers") == 1 and duck.count("order_lines") == 6
    assert versions(duck) == [("1", 1, "paid", False), ("1", 2, "cancelled", False), ("1", 3, "refunded", True),
                              ("2", 1, "paid", True), ("3", 1, "paid", True)]
    assert duck.load_state("shop", "orders") == {"page": 4}


def test_a_batch_that_fails_stores_none_of_its_pages_and_refuses_the_next(duck: Store,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    duck.write_page("shop", "frontcore", "orders", order("1"), {"page": 1})
    duck.open_batch("shop", "orders")
    duck.write_page("shop", "frontcore", "orders", order("2"), {"page": 2})
    duck.write_page("shop", "frontcore", "orders", order("3"), {"page": 3})

    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise StoreError("disk full")

    monkeypatch.setattr(duck, "_save_state", broken)
    with pytest.raises(StoreError, match="disk full.*2 pages of shop/orders"):
        duck.write_page("shop", "frontcore", "orders", order("2", status="cancelled"), {"page": 4})  # order 2 again
    monkeypatch.undo()
    with pytest.raises(StoreError, match="not written"):
        duck.write_page("shop", "frontcore", "orders", order("4"), {"page": 5})
    with pytest.raises(StoreError, match="disk full"):  # the pass's end says so too
        duck.close_batch("shop", "orders")
    assert [o["order_id"] for o in published(duck, "orders")] == ["1"]
    assert duck.load_state("shop", "orders") == {"page": 1}
    duck.open_batch("shop", "orders")  # the next pass starts afresh
    duck.write_page("shop", "frontcore", "orders", order("2"), {"page": 2})
    duck.close_batch("shop", "orders")
    assert duck.count("orders") == 2


def test_a_batch_is_committed_when_its_first_page_is_old_enough(duck: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(duckdb_pages, "BATCH_SECONDS", 0.05)
    duck.open_batch("shop", "orders")
    duck.write_page("shop", "frontcore", "orders", order("1"), {"page": 1})
    deadline = time.monotonic() + 30
    while duck.count("orders") == 0 and time.monotonic() < deadline:  # no further page: the timer commits it
        time.sleep(0.01)
    assert duck.count("orders") == 1 and duck.load_state("shop", "orders") == {"page": 1}
    duck.close_batch("shop", "orders")


def test_another_streams_page_commits_the_batch_first_and_a_run_s_end_too(duck: Store) -> None:
    run = duck.start_run("shop", "orders")
    duck.open_batch("shop", "orders")
    duck.write_page("shop", "frontcore", "orders", order("1"), {"page": 1})
    duck.write_page("other", "frontcore", "orders", Page(), {"page": 7})  # outside a pass: its own transaction
    assert duck.count("orders") == 1 and duck.load_state("other", "orders") == {"page": 7}
    duck.write_page("shop", "frontcore", "orders", order("2"), {"page": 2})
    duck.finish_run(run, "ok", WriteResult(), 1)
    assert duck.count("orders") == 2 and duck.load_state("shop", "orders") == {"page": 2}
    duck.close_batch("shop", "orders")


@pytest.mark.parametrize("known_keys", [200_000, 0])
def test_a_first_pass_compares_with_the_keys_it_wrote_and_counts_as_page_by_page(
        duck: Store, monkeypatch: pytest.MonkeyPatch, known_keys: int) -> None:
    """Into an empty table a pass keeps the keys it writes instead of reading the table for each page (with a
    bound: past it, it reads the table); either way an order read again is changed or unchanged, not new."""
    monkeypatch.setattr(duckdb_pages, "BATCH_BYTES", 1)  # each page its own batch: the next one reads it back
    monkeypatch.setattr(duckdb_pages, "KNOWN_KEYS", known_keys)
    duck.open_batch("shop", "orders")
    first = duck.write_page("shop", "frontcore", "orders", order("1"), {"page": 1})
    second = duck.write_page("shop", "frontcore", "orders", order("1", status="cancelled"), {"page": 2})
    third = duck.write_page("shop", "frontcore", "orders", order("1", status="cancelled"), {"page": 3})
    duck.close_batch("shop", "orders")
    assert (first["orders"].new, second["orders"].changed, third["orders"].unchanged) == (1, 1, 1)
    assert (first["customers"].new, second["customers"].unchanged, third["customers"].unchanged) == (1, 1, 1)
    assert duck.count("orders") == 1 and duck.count("customers") == 1 and duck.count("order_lines") == 2
    assert versions(duck) == [("1", 1, "paid", False), ("1", 2, "cancelled", True)]


@pytest.mark.parametrize("known_keys", [200_000, 0])
def test_a_repeat_customer_of_a_first_pass_is_compared_with_what_the_pass_wrote(
        duck: Store, monkeypatch: pytest.MonkeyPatch, known_keys: int) -> None:
    """A customer of several orders (Firespring's repeat customers) in a first pass: compared with the row the pass
    wrote, not read from the table (each read a scan); past the bound, read. Counted and stored either way as page
    by page: new once, then unchanged, then changed, one row holding the latest."""
    from ordersync.store import duckdb_staging

    monkeypatch.setattr(duckdb_pages, "BATCH_BYTES", 1)  # each page its own batch: the next one reads it back
    monkeypatch.setattr(duckdb_pages, "KNOWN_KEYS", known_keys)
    reads: list[str] = []
    real = duckdb_staging.select_by_keys
    monkeypatch.setattr(duckdb_staging, "select_by_keys",
                        lambda conn, table, *args: reads.append(table.name) or real(conn, table, *args))

    def bought(order_id: str, name: str) -> Page:
        page = order(order_id)
        page.customers = [{"customer_id": "c-7", "name": name, "raw": {"id": "c-7", "name": name}}]
        return page

    duck.open_batch("shop", "orders")
    results = [duck.write_page("shop", "firespring", "orders", bought(str(n), name), {"page": n})["customers"]
               for n, name in enumerate(["Åse", "Åse", "Åse Berg"], start=1)]
    duck.close_batch("shop", "orders")
    assert (results[0].new, results[1].unchanged, results[2].changed) == (1, 1, 1)
    assert [(c["customer_id"], c["name"]) for c in published(duck, "customers")] == [("c-7", "Åse Berg")]
    assert ("customers" in reads) == (known_keys == 0)


def merged(*pages: Page) -> Page:
    return Page(**{name: [row for page in pages for row in getattr(page, name)] for name in
                   ("orders", "order_lines", "customers", "payments")})


def test_a_file_is_written_in_small_row_groups_and_shared_by_the_stores_of_one_process(tmp_path: Path) -> None:
    """A checkpoint rewrites each table's open row group: DuckDB's default of 122,880 rows made every checkpoint of
    a sync rewrite the whole table (ordersync.store.duckdb.ROW_GROUP_ROWS). The file is attached with small row
    groups, and a second store of the same process (the demo's views, a notebook) shares it rather than failing."""
    from ordersync.store.duckdb import ROW_GROUP_ROWS

    path = tmp_path / "orders.duckdb"
    writer = open_store(f"duckdb:///{path}")
    page = merged(*(order(str(n), lines=1) for n in range(ROW_GROUP_ROWS + 500)))
    assert writer.write_page("shop", "frontcore", "orders", page, {"page": 1})["orders"].new == ROW_GROUP_ROWS + 500
    reader = open_store(f"duckdb:///{path}", read_only=True)
    assert reader.count("orders") == ROW_GROUP_ROWS + 500
    reader.close()
    with writer.engine.connect() as conn:
        conn.exec_driver_sql("CHECKPOINT")
        groups = conn.exec_driver_sql("SELECT count(DISTINCT row_group_id), max(count) FROM "
                                      "pragma_storage_info('orders')").one()
    writer.close()
    assert tuple(groups) == (2, ROW_GROUP_ROWS)
    again = open_store(f"duckdb:///{path}")  # closed and opened again: the file is free, its rows whole
    assert again.count("orders") == ROW_GROUP_ROWS + 500
    again.close()


def test_a_store_that_writes_is_refused_in_one_line_where_the_process_holds_the_file_read_only(tmp_path: Path) -> None:
    """DuckDB lets a process open a file once: a writing store cannot share a read-only one's connection (its first
    write would fail deep inside a sync). It is told so before it writes, and once the reader closes, it opens."""
    path = tmp_path / "orders.duckdb"
    open_store(f"duckdb:///{path}").close()
    reader = open_store(f"duckdb:///{path}", read_only=True)
    with pytest.raises(StoreError, match="open read-only in this process") as refused:
        open_store(f"duckdb:///{path}")
    assert "\n" not in str(refused.value)
    reader.close()
    writer = open_store(f"duckdb:///{path}")
    assert writer.write_page("shop", "frontcore", "orders", order("1"), {"page": 1})["orders"].new == 1
    writer.close()
