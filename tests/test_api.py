"""The public Python API as a library user calls it: real sandboxes, the real engine, a real database file."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from dagster._utils.schedules import is_valid_cron_string

from ordersync import api, schedule
from ordersync.errors import ConfigError, OrdersyncError, StoreError, SyncError
from ordersync.store import Store, open_store
from tests.support import StopAfterPages, rows, running

KEY = "api-key-7777"


def config(db: Path, **sources: dict[str, object]) -> dict[str, object]:
    return {"destination": {"url": f"sqlite:///{db}"}, "sources": sources}


def test_sync_from_a_dict_or_a_file_returns_plain_results(tmp_path: Path) -> None:
    db = tmp_path / "orders.db"
    with running("frontcore", orders=120, seed=4, api_key=KEY) as fc:
        first = api.sync(config(db, courses=fc.settings()))
        assert first.ok and [(s.source, s.stream) for s in first.streams] == [("courses", "orders"),
                                                                              ("courses", "customers")]
        orders = first.of("courses")[0]
        assert orders.orders == api.Counts(new=120) and orders.requests >= 1 and orders.seconds > 0
        assert first.rows.new == 120 + first.streams[1].customers.new
        (tmp_path / "ordersync.toml").write_text(
            f'[destination]\nurl = "sqlite:///{db}"\n[sources.courses]\ntype = "frontcore"\n'
            f'api_key = "{KEY}"\nbase_url = "{fc.url}/v2"\nrequests_per_second = 1000\n')
        again = api.sync(tmp_path / "ordersync.toml", ["courses"])
        assert again.raise_for_errors() is again and again.rows.new == 0 and again.rows.changed == 0
    assert rows(open_store(f"sqlite:///{db}"), "select count(*) from orders") == [(120,)]


def test_errors_are_exceptions_of_the_published_tree(tmp_path: Path) -> None:
    db = tmp_path / "orders.db"
    with running("frontcore", orders=10, api_key="the-right-key") as fc:
        with pytest.raises(ConfigError, match="unknown source.*nosuch; configured: courses"):
            api.sync(config(db, courses=fc.settings()), ["nosuch"])
        with pytest.raises(ConfigError, match="no configuration file"):
            api.load_config(tmp_path / "missing.toml")
        result = api.sync(config(db, courses=fc.settings(api_key=KEY), other=fc.settings()))
    assert [s.source for s in result.failed] == ["courses"] and result.of("other")[0].ok  # the others go on
    with pytest.raises(SyncError) as caught:
        result.raise_for_errors()
    assert isinstance(caught.value, OrdersyncError) and caught.value.results is result
    message = str(caught.value)
    assert message.startswith("courses/orders: ") and "Wrong API Key" in message
    assert "\n" not in message and KEY not in message


def test_a_set_stop_event_ends_the_stream_after_its_committed_page(tmp_path: Path) -> None:
    """What SIGTERM does in watch mode: the pages being written commit (the writer process holds at most three),
    the run is logged "interrupted", no other stream starts; the next sync resumes from there and ends with exactly
    the API's rows."""
    db = tmp_path / "orders.db"
    stop = threading.Event()

    with running("frontcore", orders=300, seed=5, api_key=KEY) as fc:
        cfg = config(db, courses=fc.settings(limit=50, concurrency=1))
        result = api.sync(cfg, progress=StopAfterPages(1, stop), stop=stop)
        [(stream, stored)] = [(s.stream, s.orders.new) for s in result.streams]  # customers never started
        # pages hold up to 50 orders (slices are sized for about 42): the one that stopped it, and up to two queued
        assert stream == "orders" and 0 < stored <= 150
        store = open_store(f"sqlite:///{db}")
        assert rows(store, "select count(*) from orders") == [(stored,)]
        assert rows(store, "select stream, status from _ordersync_runs") == [("orders", "interrupted")]
        rest = api.sync(cfg).raise_for_errors()
    assert rest.of("courses")[0].orders.new == 300 - stored
    assert rows(store, "select count(*), count(distinct order_id) from orders") == [(300, 300)]


def test_watch_retries_a_failing_source_with_backoff_and_keeps_syncing_the_others(tmp_path: Path) -> None:
    db = tmp_path / "orders.db"
    stop = threading.Event()
    ticks: list[api.Tick] = []

    def on_tick(tick: api.Tick) -> None:
        ticks.append(tick)
        if tick.number == 6:
            stop.set()

    with running("frontcore", orders=40, api_key=KEY) as fc:
        cfg = config(db, good=fc.settings(streams=["orders"]), bad=fc.settings(api_key="wrong", streams=["orders"]))
        api.watch(cfg, every=0, stop=stop, on_tick=on_tick)
    ran = [sorted({s.source for s in t.result.streams}) for t in ticks]
    assert ran == [["bad", "good"], ["bad", "good"], ["good"], ["bad", "good"], ["good"], ["good"]]
    assert [t.backoff for t in ticks] == [{"bad": 1}, {"bad": 2}, {"bad": 1}, {"bad": 4}, {"bad": 3}, {"bad": 2}]
    assert ticks[0].result.of("good")[0].orders.new == 40 and all(t.result.of("good")[0].ok for t in ticks)
    assert all(t.next_at is not None and t.next_at >= t.started_at for t in ticks)


@pytest.mark.parametrize("text, expected", [
    ("15m", "*/15 * * * *"), ("1m", "* * * * *"), ("1h", "0 * * * *"), ("6h", "0 */6 * * *"), ("1d", "0 0 * * *"),
    ("*/5  9-17 * * mon-fri", "*/5 9-17 * * mon-fri"), ("0 3 1,15 jan,jul *", "0 3 1,15 jan,jul *"),
    ("@hourly", "0 * * * *"),
])
def test_schedules_become_cron_expressions_dagster_accepts(text: str, expected: str) -> None:
    assert schedule.cron(text) == expected and is_valid_cron_string(expected)


@pytest.mark.parametrize("text, says", [
    ("7m", "does not divide an hour or a day"), ("61 * * * *", "'61' is not a minute (0-59)"),
    ("* * *", "five fields"), ("every day", "five fields"), ("*/0 * * * *", "step '/0'"),
    ("0 0 * foo *", "'foo' is not a month"),
])
def test_a_bad_schedule_is_one_clear_line_when_the_config_is_read(text: str, says: str, tmp_path: Path) -> None:
    cfg = config(tmp_path / "o.db", shop={"type": "frontcore", "api_key": "k", "base_url": "http://x/v2",
                                          "schedule": text})
    with pytest.raises(ConfigError) as caught:
        api.load_config(cfg)
    assert str(caught.value).startswith("[sources.shop] schedule: ") and says in str(caught.value)
    assert "\n" not in str(caught.value)


def test_watch_goes_on_when_the_destination_fails_for_a_round(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stop = threading.Event()
    ticks: list[api.Tick] = []
    start_run = Store.start_run

    def flaky(self: Store, source: str, stream: str) -> int:
        if len(ticks) == 1:  # the second round
            raise StoreError("cannot write to the destination: disk I/O error")
        return start_run(self, source, stream)

    def on_tick(tick: api.Tick) -> None:
        ticks.append(tick)
        if tick.number == 3:
            stop.set()

    monkeypatch.setattr(Store, "start_run", flaky)
    with running("frontcore", orders=20, api_key=KEY) as fc:
        api.watch(config(tmp_path / "orders.db", shop=fc.settings(streams=["orders"])), every=0, stop=stop,
                  on_tick=on_tick)
    # the failed write is the source's failure in that round (it backs off one round), and the watch goes on
    assert [(t.backoff, [s.error for s in t.result.streams]) for t in ticks] == [
        ({}, [None]), ({"shop": 1}, ["cannot write to the destination: disk I/O error"]), ({}, [None])]
