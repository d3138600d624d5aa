"""The rolling sweep (issue 10): Firespring has no "modified since" filter, so each incremental run also re-reads
one slice of the creation days older than the look-back window; a change to an old order arrives within
``sweep_days``, in the run whose slice holds its day and not before."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from ordersync import paging, status
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


def swept(recorder: Recorder) -> set[tuple[str, str]]:
    """The creation days of the sweep requests of a run (only the sweep sends ``date_end``)."""
    return {(p["date_start"], p["date_end"]) for p in recorder.params() if "date_end" in p}


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
            recorder = Recorder()
            [result] = sync_recorded(store, "web", settings, recorder)
            assert result.ok, result.error
            cut = swept(recorder)
            assert len(cut) == 1  # one slice per run
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
        assert shown["oldest unswept day"] == state_of(store)["sweep"]["next"]


def test_a_run_killed_in_its_sweep_resumes_the_same_slice(store: Store, clock: dict[str, datetime]) -> None:
    with in_process("firespring", orders=300, seed=5) as r:
        total = len(fetch_all(r))
        settings = r.settings(lookback_days=30, sweep_days=7, count=3, concurrency=1)
        sync(store, "web", settings)
        clock["now"] = T0 + timedelta(days=2)

        class FailInSweep(Recorder):
            async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
                if "date_end" in request.url.params and request.url.params["page"] == "3":
                    self.requests.append(request)
                    return httpx.Response(500, json={"errors": [{"code": "x", "source": "", "detail": "crash"}]})
                return await super().handle_async_request(request)

        broken = FailInSweep()
        [failed] = sync_recorded(store, "web", {**settings, "max_retries": 0}, broken)
        assert not failed.ok and "crash" in (failed.error or "")
        cut = swept(broken)
        assert len(cut) == 1
        position = state_of(store)["run"]
        assert position["passes"][position["index"]] == "sweep" and position["position"]["page"] == 3

        clock["now"] = T0 + timedelta(days=3)  # later: a new plan would cut a longer slice
        resumed = Recorder()
        [ok] = sync_recorded(store, "web", settings, resumed)
        assert ok.ok, ok.error
        assert swept(resumed) == cut and int(resumed.params()[0]["page"]) == 3
        assert state_of(store)["sweep"]["next"] == next(iter(cut))[1]
        assert rows(store, "SELECT count(*) FROM orders") == [(total,)]


def test_sweep_days_0_turns_it_off(store: Store, clock: dict[str, datetime]) -> None:
    with in_process("firespring", orders=100, seed=5) as r:
        settings = r.settings(sweep_days=0)
        sync(store, "web", settings)
        clock["now"] = T0 + timedelta(days=30)
        recorder = Recorder()
        [result] = sync_recorded(store, "web", settings, recorder)
        assert result.ok and swept(recorder) == set()
        assert state_of(store)["sweep"] is None  # and status shows no sweep
