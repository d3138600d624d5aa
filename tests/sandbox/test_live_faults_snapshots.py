"""Issue 30, items 8 to 10: a shop that keeps selling (``--live``), scripted faults, and snapshots of the state.

The live shop is driven by the sandbox's own clock, which the tests move: no sleeping, no wall-clock assertions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ordersync.cli import app as cli
from ordersync.store import Store
from tests.registry import API_NAMES
from tests.sandbox.inprocess import LIST_PATHS, InProcess, auth
from tests.support import in_process, rows


def stored_ids(store: Store, source: str) -> set[str]:
    return {str(order_id) for (order_id,) in rows(store, "select order_id from orders where source = ?", source)}


@pytest.mark.parametrize("api", API_NAMES)
def test_repeated_syncs_of_a_live_shop_store_every_order_it_made(api: str, store: Store) -> None:
    """A watch in miniature: sync, let the shop sell for five minutes of its clock, sync again, six rounds."""
    # The shop sells from 50 minutes ago to 20 minutes ago: a client trusts that the vendor's clock is not ahead of
    # its own (e-guma's windows end at its now) and that changes are not backdated beyond its look-back (an hour).
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=50)
    shop = in_process(api, orders=30, seed=7, live=6.0, anchor=start)  # the history ends before the shop opens
    shop.control("POST", "clock", {"now": start.isoformat()})
    settings = shop.settings(concurrency=1, **({"lookback_days": 1} if api == "firespring" else
                                               {"lookback_seconds": 3600}))
    for _ in range(6):
        results = shop.sync(store, api, settings)
        assert all(r.ok for r in results), [r.error for r in results if not r.ok]
        shop.control("POST", "clock", {"advance_seconds": 300})
    live = shop.control("GET", "live")
    results = shop.sync(store, api, settings)
    assert all(r.ok for r in results)
    assert live["events"]["create"] >= 10 and sum(live["events"].values()) == 6 * 5 * 6  # rounds, minutes, rate
    assert set(live["created"]) <= stored_ids(store, api)
    synced = [d for d in shop.sandbox.store.find("orders") if api != "firespring" or d["content_catalog"] == 10119035]
    assert stored_ids(store, api) == {str(shop.sandbox.order_id_of(d)) for d in synced}  # (Firespring: website 4)


def test_live_events_follow_each_vendors_rules() -> None:
    fc = in_process("frontcore", orders=10, live=60.0)
    fc.control("POST", "clock", {"now": "2026-06-15T10:00:00+00:00"})
    fc.control("POST", "clock", {"advance_seconds": 600})
    made = [int(i) for i in fc.control("GET", "live")["created"]]
    assert made == sorted(made) and len(made) > 100  # Frontcore ids rise
    created = [fc.sandbox.store.get("orders", i)["created_at"] for i in made]
    assert created == sorted(created) and created[0] > "2026-06-15T12:00:00+02:00"  # each at its own moment
    prio = in_process("prio", orders=10, live=60.0)
    prio.control("POST", "clock", {"now": "2026-06-15T10:00:00+00:00"})
    prio.control("POST", "clock", {"advance_seconds": 1200})
    assert prio.control("GET", "live")["events"]["change"] > 0
    assert max(d["order_version"] for d in prio.sandbox.store.find("orders")) > 1  # revisions
    eg = in_process("eguma", orders=10, live=60.0)
    eg.control("POST", "clock", {"now": "2026-06-15T10:00:00+00:00"})
    eg.control("POST", "clock", {"advance_seconds": 1200})
    cancelled = [d for d in eg.sandbox.store.find("orders") if d["status"] == "cancelled"]
    assert cancelled and all(d["updated_at"] > d["created_at"] for d in cancelled if d["created_at"] >= "2026-06-15")


def test_serve_refuses_a_negative_live_rate() -> None:
    result = CliRunner().invoke(cli, ["serve", "frontcore", "--live", "-1"])
    assert result.exit_code != 0


@pytest.mark.parametrize("api", list(LIST_PATHS))
def test_the_next_three_requests_answer_503_then_the_api_recovers(api: str) -> None:
    sandbox = InProcess(api, orders=10, rate_limit=False)
    credentials = auth(sandbox)
    path = LIST_PATHS[api]
    added = sandbox.post("/_sandbox/faults", json={"path": path, "status": 503, "times": 3, "retry_after": 7})
    assert added.status_code == 201 and added.json()["pending"][0]["times"] == 3
    answers = [sandbox.get(path, **credentials) for _ in range(4)]
    assert [a.status_code for a in answers] == [503, 503, 503, 200]
    assert answers[0].headers["retry-after"] == "7"
    assert sandbox.get("/_sandbox/faults").json() == {"pending": [], "fired": 3}


def test_page_4_is_slow_and_only_page_4() -> None:
    fc = InProcess("frontcore", orders=40, rate_limit=False)
    fc.post("/_sandbox/faults", json={"path": "/v2/orders", "query": {"page": "4"}, "latency_ms": 1})
    assert fc.get("/v2/orders", params={"page": "3", "limit": 5}, **auth(fc)).status_code == 200
    assert fc.get("/_sandbox/faults").json()["fired"] == 0
    assert fc.get("/v2/orders", params={"page": "4", "limit": 5}, **auth(fc)).status_code == 200
    assert fc.get("/_sandbox/faults").json() == {"pending": [], "fired": 1}


def test_the_token_expires_now_and_bad_rules_are_refused() -> None:
    prio = InProcess("prio", orders=5, rate_limit=False)
    credentials = auth(prio)
    assert prio.get(LIST_PATHS["prio"], **credentials).status_code == 200
    assert prio.post("/_sandbox/faults", json={"expire_tokens": True}).json() == {"expired": 1}
    expired = prio.get(LIST_PATHS["prio"], **credentials)
    assert expired.status_code == 401 and "expired" in expired.json()["error_description"]
    fc = InProcess("frontcore", orders=5)
    assert fc.post("/_sandbox/faults", json={"expire_tokens": True}).status_code == 404
    bad = fc.post("/_sandbox/faults", json={"path": "/v2/orders", "status": "soon"})
    assert bad.status_code == 422 and bad.json()["field"] == "status"
    assert fc.post("/_sandbox/faults", json={"path": "/v2/orders"}).status_code == 422  # no action
    fc.post("/_sandbox/faults", json={"status": 500, "times": 9})
    fc.request("DELETE", "/_sandbox/faults")
    assert fc.get("/v2/orders", **auth(fc)).status_code == 200


@pytest.mark.parametrize("api", list(LIST_PATHS))
def test_a_snapshot_is_one_portable_file_served_again_elsewhere(api: str, tmp_path: Path) -> None:
    first = InProcess(api, orders=20, rate_limit=False)
    first.post("/_sandbox/clock", json={"now": "2026-06-14T08:00:00+00:00"})
    first.post("/_sandbox/orders", json={})
    taken = first.get("/_sandbox/snapshot")
    assert taken.status_code == 200 and taken.content.startswith(b"SQLite format 3\x00")
    file = tmp_path / "bug.sqlite"
    file.write_bytes(taken.content)
    served = InProcess(api, orders=None, anchor=None, data_path=str(file), rate_limit=False)
    assert served.sandbox.store.find("orders") == first.sandbox.store.find("orders")
    loaded = InProcess(api, orders=5, seed=9, rate_limit=False)
    answer = loaded.request("PUT", "/_sandbox/snapshot", content=taken.content)
    assert answer.status_code == 200 and answer.json()["now"] == "2026-06-14T08:00:00+00:00"
    assert loaded.sandbox.store.find("orders") == first.sandbox.store.find("orders")
    assert loaded.get(LIST_PATHS[api], **auth(loaded)).status_code == 200


def test_a_snapshot_of_another_api_or_not_a_snapshot_is_refused() -> None:
    fc = InProcess("frontcore", orders=5)
    eg = InProcess("eguma", orders=5)
    other = fc.request("PUT", "/_sandbox/snapshot", content=eg.get("/_sandbox/snapshot").content)
    assert other.status_code == 400 and "eguma" in other.json()["error"]
    assert fc.request("PUT", "/_sandbox/snapshot", content=b"not a database").status_code == 400
    assert fc.sandbox.store.count("orders") == 5
