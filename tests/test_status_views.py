"""What each API's state says to an operator (``describe(zone)``), read from a real state after a real sync of its
sandbox (in-process), and the words ``ordersync status`` makes of it: never the stored JSON, a dict or an HTTP
date."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ordersync import status
from ordersync.config import parse_source
from ordersync.stateview import StateView
from ordersync.store import Store, WriteResult
from tests.support import in_process

KEY = "status-key-123"
INTERNALS = re.compile(r"[{}\[\]'\"]|version=|GMT|filters|max_id|ranges")


def synced(store: Store, api: str, **options: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Sync ``api``'s sandbox (20 orders) into ``store`` as source ``s``; its settings and stored orders state."""
    sandbox = in_process(api, orders=20, seed=2, **options)
    settings = sandbox.settings(streams=["orders"]) if api == "frontcore" else sandbox.settings()
    results = sandbox.sync(store, "s", settings)
    assert results and all(r.ok for r in results), [r.error for r in results]
    stored = store.load_state("s", "orders")
    assert stored is not None
    return settings, stored


def shown_for(settings: dict[str, Any], stored: dict[str, Any]) -> StateView:
    return status.view(None, parse_source("s", settings), stored)


def words(shown: StateView) -> str:
    return "; ".join(f"{k} {v}" for k, v in status.describe_view(shown).items())


def test_frontcore_data_reaches_its_cursor_in_oslo_time_and_sweeps(store: Store) -> None:
    settings, stored = synced(store, "frontcore", api_key=KEY)
    shown = shown_for(settings, stored)
    cursor = datetime.fromisoformat(stored["cursor"])
    assert shown.reach is not None and shown.reach.what == "changes" and shown.reach.zone == "Europe/Oslo"
    assert shown.reach.utc == cursor and shown.reach.vendor_time.utcoffset() == cursor.astimezone(
        ZoneInfo("Europe/Oslo")).utcoffset()
    assert shown.next_sweep_day == date.fromisoformat(stored["sweep"]["next"]) and shown.unfinished is None
    local = cursor.astimezone(ZoneInfo("Europe/Oslo"))
    assert f"data up to {local:%Y-%m-%d %H:%M} Europe/Oslo ({cursor:%H:%M} UTC)" in words(shown)
    assert f"next sweep day {stored['sweep']['next']}" in words(shown)


def test_frontcore_in_another_configured_zone(store: Store) -> None:
    settings, stored = synced(store, "frontcore", api_key=KEY)
    shown = shown_for({**settings, "timezone": "America/New_York"}, stored)
    assert shown.reach is not None and shown.reach.zone == "America/New_York"
    assert shown.reach.utc == datetime.fromisoformat(stored["cursor"])


def test_eguma_local_cursor_is_read_in_zurich_time(store: Store) -> None:
    settings, stored = synced(store, "eguma")
    shown = shown_for(settings, stored)
    naive = datetime.fromisoformat(stored["cursor"])
    assert naive.tzinfo is None  # e-guma's axis: Zurich wall-clock time without a zone
    assert shown.reach is not None and shown.reach.zone == "Europe/Zurich" and shown.reach.what == "changes"
    assert shown.reach.vendor_time.replace(tzinfo=None) == naive
    assert shown.reach.utc == naive.replace(tzinfo=ZoneInfo("Europe/Zurich")).astimezone(UTC)
    assert shown.reach.utc != naive.replace(tzinfo=UTC)  # the offset is applied, not dropped
    assert shown.next_sweep_day is None  # e-guma's windows see every change: no sweep
    assert f"data up to {naive:%Y-%m-%d %H:%M} Europe/Zurich" in words(shown)


def test_firespring_reaches_its_newest_order_created_in_utc(store: Store) -> None:
    settings, stored = synced(store, "firespring")
    shown = shown_for(settings, stored)
    assert shown.reach is not None and shown.reach.what == "orders created" and shown.reach.zone == "UTC"
    assert shown.reach.utc == datetime.fromisoformat(stored["cursor"])
    assert shown.next_sweep_day == date.fromisoformat(stored["sweep"]["next"])
    assert f"orders created up to {shown.reach.utc:%Y-%m-%d %H:%M} UTC" in words(shown)


def test_prio_reaches_its_modified_cursor_in_utc_and_never_shows_its_windows(store: Store) -> None:
    settings, stored = synced(store, "prio")
    assert stored["ranges"]  # the windows' Last-Modified HTTP dates are stored ...
    shown = shown_for(settings, stored)
    assert shown.reach is not None and shown.reach.zone == "UTC" and shown.reach.what == "changes"
    assert shown.reach.utc == datetime.fromisoformat(stored["cursor"]) and shown.next_sweep_day is None
    assert not INTERNALS.search(words(shown))  # ... and never shown


@pytest.mark.parametrize("api", ["frontcore", "eguma", "firespring", "prio"])
def test_an_unfinished_run_is_told_in_words(store: Store, api: str) -> None:
    settings, stored = synced(store, api, **({"api_key": KEY} if api == "frontcore" else {}))
    midway = {**stored, "run": {"passes": ["new", "updated"], "index": 1, "done": [[10, 20], [30, 40]],
                                "started": "2026-06-01T00:00:00Z", "planned": "2026-06-01T00:05:00Z"}}
    shown = shown_for(settings, midway)
    assert shown.unfinished is not None and shown.unfinished.current == "updated"
    said = words(shown)
    assert "unfinished run of 2026-06-01 00:05 UTC: pass 2 of 2 (changed records), 2 stretches stored" in said
    assert not INTERNALS.search(said), said


def test_a_state_of_another_version_or_unreadable_is_said_not_guessed(store: Store) -> None:
    settings, stored = synced(store, "frontcore", api_key=KEY)
    other = shown_for(settings, {**stored, "version": 99})
    assert other.reach is None and other.note == status.OTHER_VERSION
    broken = shown_for(settings, {**stored, "cursor": "yesterday"})
    assert broken.reach is None and broken.note == status.UNREADABLE


def test_a_run_in_progress_changes_nothing_and_an_interrupted_one_is_not_healthy(store: Store) -> None:
    settings, _stored = synced(store, "prio")
    sources = {"s": parse_source("s", settings)}

    def orders_status(now: datetime) -> Any:
        [source] = status.report(store.stream_records(), sources, "db", now).sources
        return source.streams[0]

    done = orders_status(datetime.now(UTC))
    assert done.healthy and done.last_success is not None
    later = orders_status(done.last_success + timedelta(hours=2, minutes=3, seconds=10))
    assert later.line.startswith(f"last success {done.last_success:%Y-%m-%d %H:%M} UTC (2 h 3 min ago), took ")
    run = store.start_run("s", "orders")
    running = orders_status(datetime.now(UTC))
    assert running.healthy and running.last_run is not None and running.last_run.status == "running"
    assert "; running since " in running.line and running.last_run.duration_ms is None
    store.finish_run(run, "interrupted", WriteResult(), 0)
    stopped = orders_status(datetime.now(UTC))
    assert not stopped.healthy and "; last run interrupted " in stopped.line
    assert stopped.last_success == done.last_success  # the last success is still the one before
