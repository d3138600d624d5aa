"""The rolling sweep for Frontcore: the documentation does not say which changes move ``updated_at`` (the sandbox
assumes exporting an order does not), so every order is read again within ``sweep_days``, one creation slice per
incremental run."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ordersync import paging
from ordersync.store import Store
from tests.support import ANCHOR, Recording, in_process, rows

T0 = ANCHOR + timedelta(hours=1)


def test_an_export_that_does_not_move_updated_at_arrives_within_the_period(store: Store,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    clock = {"now": T0}
    monkeypatch.setattr(paging.stream, "utc_now", lambda: clock["now"])
    fc = in_process("frontcore", orders=200, seed=3)
    with fc:
        fc.control("POST", "clock", {"now": T0.isoformat()})
        settings = fc.settings(streams=["orders"], sweep_days=7)
        [first] = fc.sync(store, "c", settings)
        assert first.ok, first.error
        stored = {r[0]: json.loads(r[1]) for r in rows(store, "SELECT order_id, raw FROM orders")}
        old = next(o for o in sorted(stored.values(), key=lambda o: o["id"])
                   if o["exported_at"] is None and o["created_at"] < "2025-06-01")
        day = datetime.fromisoformat(old["created_at"]).astimezone(ZoneInfo("Europe/Oslo")).date().isoformat()
        fc.control("PATCH", f"orders/{old['id']}", {"exported": True})

        arrived = None
        for run in range(1, 15):  # two runs a day for seven days
            clock["now"] = T0 + timedelta(hours=12 * run)
            recorder = Recording()
            recorder.inner = fc.transport()  # type: ignore[assignment]
            [result] = fc.sync(store, "c", settings, transport=recorder)
            assert result.ok, result.error
            swept = [p for p in recorder.params() if "since_id" not in p and "updated_at_min" not in p]
            cut = {(p["created_at_min"][:10], p["created_at_max"][:10]) for p in swept}  # slices of whole days
            assert cut
            covered = any(lo <= day < hi for lo, hi in cut)
            exported = json.loads(rows(store, "SELECT raw FROM orders WHERE order_id = ?", str(old["id"]))[0][0])
            if arrived is None:
                assert (exported["exported_at"] is not None) == covered, (run, cut, day)
                arrived = run if covered else None
        assert arrived is not None
