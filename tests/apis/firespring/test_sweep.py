"""The rolling sweep (issue 10): Firespring has no "modified since" filter, so each incremental run also re-reads
one slice of the creation days older than the look-back window; a change to an old order arrives within
``sweep_days``, in the run whose slice holds its day and not before."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from ordersync import paging, status
from ordersync.apis.firespring.client import FirespringClient, FirespringOrders
from ordersync.config import parse_source
from ordersync.store import Store
from tests.apis.firespring.conftest import Recorder, fetch_all, sync_recorded
from tests.support import ANCHOR, in_process, rows, sync

T0 = ANCHOR + timedelta(hours=1)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> dict[str, datetime]:
    """The engine's clock, moved by the test (the sweep is paced by the time between runs)."""
    now = {"now": T0}
    monkeypatch.setattr(paging.stream, "utc_now", lambda: now["now"])
    return now


def state_of(store: Store) -> dict[str, Any]:
    return dict(json.loads(rows(store, "SELECT state FROM _ordersync_state")[0][0]))


def lookback_start(store: Store, settings: dict[str, Any]) -> str:
    """The first day of the look-back window the next run reads (from the stored cursor): the sweep reads below."""
    start = FirespringOrders(FirespringClient("web", parse_source("web", settings))).window_start(
        datetime.fromisoformat(state_of(store)["cursor"]))
    assert start is not None
    return start


def in_sweep(lookback: str) -> Callable[[dict[str, str]], bool]:
    """Whether a request is one of the sweep's: its days all lie before the look-back window."""
    return lambda params: "date_end" in params and params["date_end"] <= lookback


def swept(recorder: Recorder, lookback: str) -> set[tuple[str, str]]:
    """The creation days the sweep requests of a run cover, as merged spans (a sweep may take several slices)."""
    spans: list[tuple[str, str]] = []
    for lo, hi in sorted((p["date_start"], p["date_end"]) for p in recorder.params() if in_sweep(lookback)(p)):
        if spans and lo <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], hi))
        else:
            spans.append((lo, hi))
    return set(spans)


def test_a_change_to_an_old_order_arrives_within_the_period_in_its_slice(store: Store,
                                                                         clock: dict[str, datetime]) -> None:
    with in_process("firespring", orders=300, seed=5) as r:
        everything = fetch_all(r)
        settings = r.settings(lookback_days=30, sweep_days=7, count=20)
        [first] = sync(store, "web", settings)
        assert first.ok and first.orders.new == len(everything)
        origin = state_of(store)["sweep"]["origin"]
        assert origin == (datetime.fromisoformat(everything[0]["date_created"]).date() - timedelta(days=1)).isoformat()

        old = next(x for x in everything if x["date_created"] >= "2025-01-01" and x["status"] != "denied")
        day = old["date_created"][:10]
        r.control("PATCH", f"orders/{old['id']}", {"status": "denied"})

        arrived, slices = None, []
        for run in range(1, 15):  # two runs a day for seven days
            clock["now"] = T0 + timedelta(hours=12 * run)
            recorder, lookback = Recorder(), lookback_start(store, settings)
            [result] = sync_recorded(store, "web", settings, recorder)
            assert result.ok, result.error
            cut = swept(recorder, lookback)
            assert len(cut) == 1  # one slice of the days per run (read as one or more slices)
            slices += cut
            covered = any(lo <= day < hi for lo, hi in cut)
            stored = dict(rows(store, "SELECT order_id, status FROM orders"))[str(old["id"])]
            if arrived is None:
                assert (stored == "denied") == covered, (run, cut, day)  # not before its slice, and in it
                arrived = run if covered else None
        assert arrived is not None  # within the seven days
        horizon = state_of(store)["sweep"]["next"]
        assert slices[0][0] == origin and all(a[1] == b[0] for a, b in zip(slices, slices[1:], strict=False))
        assert any(hi == horizon for _, hi in slices)  # one whole lap over the older history, in order
        span = (datetime.fromisoformat(horizon) - datetime.fromisoformat(origin)).days
        for lo, hi in slices:  # bounded cost: each run re-reads about 12 hours' share of the history
            days = (datetime.fromisoformat(hi) - datetime.fromisoformat(lo)).days
            assert days <= span * 12 // (7 * 24) + 1

        shown = status.describe(parse_source("web", settings), "orders", state_of(store))
        assert shown["next sweep day"] == state_of(store)["sweep"]["next"]


def test_a_run_killed_in_its_sweep_resumes_the_same_slice(store: Store, clock: dict[str, datetime]) -> None:
    with in_process("firespring", orders=300, seed=5) as r:
        total = len(fetch_all(r))
        settings = r.settings(lookback_days=30, sweep_days=7, count=3, concurrency=1)
        sync(store, "web", settings)
        clock["now"] = T0 + timedelta(days=2)

        lookback = lookback_start(store, settings)
        broken = Recorder(fail_nth=3, counting=in_sweep(lookback))  # the third request of the sweep fails
        [failed] = sync_recorded(store, "web", {**settings, "max_retries": 0}, broken)
        assert not failed.ok and "crash" in (failed.error or "")
        run = state_of(store)["run"]
        assert run["passes"][run["index"]] == "sweep"
        sweep = (run["sweep"]["start"], run["sweep"]["end"])
        done = [(date.fromordinal(lo).isoformat(), date.fromordinal(hi).isoformat()) for lo, hi in run["done"]]
        assert done and all(sweep[0] <= lo < hi <= sweep[1] for lo, hi in done)

        clock["now"] = T0 + timedelta(days=3)  # later: a new plan would cut a longer slice
        resumed = Recorder()
        [ok] = sync_recorded(store, "web", settings, resumed)
        assert ok.ok, ok.error
        asked = [(p["date_start"], p["date_end"]) for p in resumed.params() if in_sweep(lookback)(p)]
        assert asked and all(sweep[0] <= lo < hi <= sweep[1] for lo, hi in asked)  # the same slice of days
        assert not [(a, d) for a in asked for d in done if a[0] < d[1] and d[0] < a[1]]  # not its complete days
        assert state_of(store)["sweep"]["next"] == sweep[1]
        assert rows(store, "SELECT count(*) FROM orders") == [(total,)]


def test_sweep_days_0_turns_it_off(store: Store, clock: dict[str, datetime]) -> None:
    with in_process("firespring", orders=100, seed=5) as r:
        settings = r.settings(sweep_days=0)
        sync(store, "web", settings)
        clock["now"] = T0 + timedelta(days=30)
        recorder, lookback = Recorder(), lookback_start(store, settings)
        [result] = sync_recorded(store, "web", settings, recorder)
        assert result.ok and swept(recorder, lookback) == set()
        assert state_of(store)["sweep"] is None  # and status shows no sweep
