"""The Frontcore client over real HTTP: what it sends, what it stores, and how it resumes."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from ordersync.config import parse_source
from ordersync.errors import ConfigError
from ordersync.store import Store, open_store
from tests.apis.frontcore.conftest import KEY
from tests.support import Recording, in_process, rows, running, sync


def test_settings_are_validated_before_any_request() -> None:
    base = {"type": "frontcore", "api_key": "k"}
    cases = [
        ({"limit": 300}, "limit", "250"),
        ({"include": ["lines.users"]}, "include", "campaign"),
        ({"created_at_min": "01.02.2024"}, "created_at_min", "yyyy-mm-dd"),
        ({"updated_at_max": "2024-02-30"}, "updated_at_max", "yyyy-mm-dd"),
        ({"customer_include": ["staff"]}, "customer_include", "employees"),
        ({"limt": 10}, "limt", "limit"),
        ({"streams": ["invoices"]}, "streams", "orders"),
        ({"timezone": "Mars/Olympus"}, "timezone", "Europe/Oslo"),
    ]
    for extra, setting, hint in cases:
        with pytest.raises(ConfigError) as err:
            parse_source("courses", {**base, **extra})
        message = str(err.value)
        assert "[sources.courses]" in message and setting in message and hint in message, message


def test_the_client_sends_the_documented_parameters() -> None:
    with in_process("frontcore", orders=300, seed=2, api_key=KEY) as fc:
        recorder = Recording()
        store = open_store("sqlite://")
        settings = fc.settings(limit=100, course_id=22354, created_at_min="2024-01-01",
                               updated_at_max="2026-12-31 23:59:59", include=["campaign"],
                               customer_include=["employees"])
        [orders, customers] = sync(store, "courses", settings, transport=recorder)
        assert orders.ok and customers.ok
        first = recorder.requests[0]
        assert first.headers["X-API-Key"] == KEY and first.headers["Accept"] == "application/json"
        params = first.url.params
        assert params["limit"] == "100" and params["page"] == "1" and params["course_id"] == "22354"
        # the configured bound is where the lowest slice starts, in whole seconds of local time
        assert params["created_at_min"] == "2024-01-01 00:00:00" and params["updated_at_max"] == "2026-12-31 23:59:59"
        assert params.get_list("include[]") == ["campaign"]
        assert params["user_data"] == "true" and params["exported"] == "true"
        customer_params = [r.url.params for r in recorder.requests if r.url.path.endswith("/customers")]
        assert customer_params[0].get_list("include[]") == ["employees"] and "course_id" not in customer_params[0]
        stored = rows(store, "select raw from orders")
        assert stored and all('"course_id":22354' in raw for (raw,) in stored)


def test_a_history_larger_than_a_page_is_read_in_creation_slices_that_each_fit_in_one_page() -> None:
    with in_process("frontcore", orders=250, seed=3, api_key=KEY) as fc:
        recorder = Recording()
        store = open_store("sqlite://")
        [orders] = sync(store, "c", fc.settings(limit=100, streams=["orders"], concurrency=1), transport=recorder)
        asked = recorder.params("/orders")
        assert orders.ok and rows(store, "select count(*), count(distinct order_id) from orders") == [(250, 250)]
        assert all(p["page"] == "1" and "created_at_max" in p for p in asked)
        assert len(asked) <= 8, "a first answer, about three slices, and the stretches above and below the history"


def test_first_run_gets_every_order_including_exported_ones_and_lines_add_up(store: Store) -> None:
    with in_process("frontcore", orders=700, seed=4, api_key=KEY) as fc:
        [orders, customers] = sync(store, "courses", fc.settings())
        assert orders.ok and orders.orders.new == 700
        assert customers.customers.new == 175
        assert rows(store, "select count(*), count(distinct order_id) from orders") == [(700, 700)]
        exported = rows(store, "select count(*) from orders where json_extract(raw, '$.exported_at') is not null")
        assert exported[0][0] > 0
        mismatched = rows(store, """
            select o.order_id from orders o join order_lines l using (source, order_id)
            where o.tax_minor = 0 group by o.order_id having sum(l.total_minor) != max(o.total_minor)""")
        assert mismatched == []
        never_updated = rows(store, "select count(*) from orders where updated_at is null")[0][0]
        assert never_updated > 0


def test_incremental_run_catches_new_orders_with_null_updated_at_and_updated_ones(store: Store) -> None:
    with in_process("frontcore", orders=400, seed=6, api_key=KEY) as fc:
        settings = fc.settings()
        sync(store, "courses", settings)
        new = fc.control("POST", "orders", {"is_paid": False})
        old_id = rows(store, "select min(cast(order_id as integer)) from orders")[0][0]
        fc.control("PATCH", f"orders/{old_id}", {"your_reference": "PO-77"})
        customer_id = rows(store, "select min(cast(customer_id as integer)) from customers")[0][0]
        fc.control("PATCH", f"customers/{customer_id}", {"phone": "22 33 44 55"})
        recorder = Recording()
        [orders, customers] = sync(store, "courses", settings, transport=recorder)
        assert (orders.orders.new, orders.orders.changed) == (1, 1)
        assert (customers.customers.new, customers.customers.changed) == (0, 1)
        assert new["updated_at"] is None
        assert rows(store, "select count(*) from orders") == [(401,)]
        assert rows(store, "select json_extract(raw, '$.your_reference') from orders where order_id = ?",
                    str(old_id)) == [("PO-77",)]
        assert rows(store, "select phone from customers where customer_id = ?", str(customer_id)) == [("22 33 44 55",)]
        order_requests = recorder.params("/orders")
        assert any("since_id" in p for p in order_requests) and any("updated_at_min" in p for p in order_requests)
        assert len(recorder.requests) <= 8, "an incremental run must not read everything again"

        [again, _] = sync(store, "courses", settings)
        assert (again.orders.new, again.orders.changed) == (0, 0)


def test_full_refresh_reads_everything_again(store: Store) -> None:
    with in_process("frontcore", orders=300, seed=8, api_key=KEY) as fc:
        sync(store, "courses", fc.settings())
        [orders, _] = sync(store, "courses", fc.settings(), full_refresh=True)
        assert orders.orders.unchanged == 300 and orders.orders.new == 0
        assert rows(store, "select count(*) from orders") == [(300,)]


def test_rate_limit_of_five_requests_per_second_is_respected_without_429s() -> None:
    # 100 orders and their customers are 12 requests (2.4 s at 5 per second): without the limit, or at 8 per second,
    # concurrency 4 puts more than 6 into some second, and the sandbox answers 429.
    with running("frontcore", orders=100, seed=1, api_key=KEY, faults="rate:6,retry_after:5") as fc:
        recorder = Recording()
        settings = {**fc.settings(limit=50, concurrency=4), "requests_per_second": 5}
        [orders, customers] = sync(open_store("sqlite://"), "c", settings, transport=recorder)
        assert orders.ok and customers.ok and orders.records == 100
        # The sandbox counts the requests of each second itself and answers 429 above 6 (headroom for jitter).
        assert len(recorder.requests) >= 10 and 429 not in recorder.statuses


def test_retries_survive_429_5xx_resets_and_truncated_bodies(store: Store) -> None:
    faults = "429:0.15,500:0.1,503:0.05,reset:0.05,truncate:0.05,retry_after:0.01,seed:4"
    with running("frontcore", orders=500, seed=12, api_key=KEY, faults=faults) as fc:
        recorder = Recording()
        [orders, customers] = sync(store, "courses", fc.settings(limit=25, max_retries=10), transport=recorder)
        assert orders.ok and customers.ok, (orders.error, customers.error)
        assert rows(store, "select count(*), count(distinct order_id) from orders") == [(500, 500)]
        assert rows(store, "select count(*) from customers") == [(125,)]
        assert len(recorder.requests) > 20 + 5 + 1  # some requests were retried


def test_wrong_key_is_one_clear_error_and_nothing_is_written(store: Store) -> None:
    with in_process("frontcore", orders=50, api_key=KEY) as fc:
        [orders] = sync(store, "courses", fc.settings(api_key="wrong-key-123"))
        assert not orders.ok
        assert "Wrong API Key" in (orders.error or "") and "api_key" in (orders.error or "")
        assert "wrong-key-123" not in (orders.error or "")
        assert rows(store, "select count(*) from orders") == [(0,)]
        assert rows(store, "select status from _ordersync_runs") == [("failed",)]


def test_unreachable_host_is_a_clear_error(store: Store) -> None:
    settings = {"type": "frontcore", "api_key": "k", "base_url": "http://127.0.0.1:9/v2", "max_retries": 1}
    [orders] = sync(store, "courses", settings)
    error = orders.error or ""
    assert not orders.ok and "\n" not in error
    assert "nothing listens at 127.0.0.1:9 (connection refused, 2 attempts)" in error
    assert error.endswith("check base_url in [sources.courses]")


def test_the_key_never_reaches_logs_errors_state_or_database(store: Store, caplog: Any) -> None:
    secret = "s3cr3t-KEY-987"
    caplog.set_level(logging.DEBUG)
    with running("frontcore", orders=120, api_key=secret, faults="500:0.2,retry_after:0,seed:2") as fc:
        [orders, customers] = sync(store, "courses", fc.settings(max_retries=8))
        [failed] = sync(store, "other", fc.settings(api_key=secret + "x", max_retries=0))
    assert orders.ok and customers.ok
    assert secret not in caplog.text and secret not in (failed.error or "")
    with store.engine.connect() as conn:
        for table in ("orders", "order_lines", "customers", "_ordersync_state", "_ordersync_runs"):
            dump = str(conn.exec_driver_sql(f"select * from {table}").all())
            assert secret not in dump, table
