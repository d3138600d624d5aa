"""One bad record never blocks its source: it is rejected (kept in ``_ordersync_rejects``), the others are stored,
the run says how many, and ``ordersync sync`` exits with status 3 so that a scheduler notices."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ordersync.sandbox.runner import start_in_thread
from ordersync.store import open_store
from tests.support import ANCHOR, InProcess, in_process, rows

HUGE = "123456789012345678901234567890"  # 30 digits: Decimal's default precision cannot hold it in minor units


class Tampered:
    """The sandbox's app, with ``edit`` applied to every list of orders it answers (a vendor's bad records).

    ``edit`` may put the string ``"__HUGE__"`` where a raw 30-digit JSON integer should be (orjson cannot write one).
    """

    def __init__(self, app: ASGIApp, edit: Callable[[list[dict[str, Any]]], None]) -> None:
        self.app, self.edit = app, edit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].endswith("/orders"):
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        body = bytearray()

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            else:
                body.extend(message.get("body", b""))

        await self.app(scope, receive, capture)
        content = bytes(body)
        if start.get("status") == 200:
            records = orjson.loads(content)
            self.edit(records)
            content = orjson.dumps(records).replace(b'"__HUGE__"', HUGE.encode())
        headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
        await send({**start, "headers": [*headers, (b"content-length", str(len(content)).encode())]})
        await send({"type": "http.response.body", "body": content})


def _totals(value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda r: r["calculated_totals"].__setitem__("total_amount_incl_discounts_and_vat", value)


BAD: dict[int, Callable[[dict[str, Any]], None]] = {
    3: _totals("1e30"),  # InvalidOperation in Decimal's default context
    5: _totals("__HUGE__"),  # a 30-digit integer
    7: _totals(2**63),  # fits the JSON parser, but 2**65 minor units is beyond 64 bits: rejected, not wrapped
    9: lambda r: r.pop("id"),  # KeyError
    11: lambda r: r.__setitem__("id", None),  # stored as 'None' before, and the three merged into one row
    13: lambda r: r.__setitem__("id", None),
    15: lambda r: r.__setitem__("id", None),
}


def spoiler(fc: InProcess, kinds: tuple[int, ...] = tuple(BAD)) -> tuple[Callable[[list[dict[str, Any]]], None],
                                                                     dict[int, str]]:
    """Seven bad orders among the first page's (every kind the issue found), the same orders whenever read."""
    async def first_page() -> list[int]:
        async with httpx.AsyncClient(transport=fc.transport(), base_url=fc.url) as client:
            answer = await client.get("/v2/orders", params={"limit": 25, "page": 1},
                                      headers={"X-API-Key": fc.settings()["api_key"]})
            return [r["id"] for r in answer.json()]

    ids = asyncio.run(first_page())
    damages = {ids[position]: BAD[position] for position in kinds}

    def spoil(records: list[dict[str, Any]]) -> None:
        for record in records:
            damage = damages.get(record.get("id"))
            if damage is not None:
                damage(record)

    return spoil, {position: str(ids[position]) for position in kinds}


def test_bad_records_are_rejected_and_the_others_stored_with_the_cursor_kept(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'o.db'}")
    with in_process("frontcore", orders=120, seed=4) as fc:
        spoil, bad = spoiler(fc)
        transport = httpx.ASGITransport(app=Tampered(fc.app, spoil))
        settings = fc.settings(limit=25, streams=["orders"])
        first = fc.sync(store, "fc", settings, transport=transport)
        assert [r.error for r in first] == [None]
        assert first[0].rejected == 7 and "7 rejected" in first[0].summary()
        stored = {r[0] for r in rows(store, "SELECT order_id FROM orders WHERE source = 'fc'")}
        assert len(stored) == 113 and "None" not in stored
        assert not set(bad.values()) & stored
        rejected = rows(store, "SELECT record_id, reason, raw FROM _ordersync_rejects WHERE source = 'fc' "
                               "AND stream = 'orders' ORDER BY record_id")
        assert len(rejected) == 7
        reasons = {record_id: reason for record_id, reason, _raw in rejected}
        assert all("outside the signed 64-bit range" in reasons[bad[p]] for p in (3, 5, 7))
        assert sum(1 for r in rejected if r[0] is None) == 4 and all("id" in r[1] for r in rejected if r[0] is None)
        kept = orjson.loads(next(raw for record_id, _reason, raw in rejected if record_id == bad[5]))
        # the 30-digit amount is kept exactly, as its text (ordersync.jsontext.BigNumber: written back as a JSON string)
        assert kept["id"] == int(bad[5]) and kept["calculated_totals"]["total_amount_incl_discounts_and_vat"] == HUGE
        status = {(s["source"], s["stream"]): s for s in store.status()}
        assert status[("fc", "orders")]["rejected"] == 7
        # the cursor passed the rejected records (they are recorded), and no good one was skipped: an incremental
        # run starts after the highest id and finds a new order
        max_id = status[("fc", "orders")]["state"]["max_id"]
        assert max_id == max(int(i) for i in stored)
        # created before the next run's start second (slices end there; one created in that very second is the
        # run after's): the sandbox's clock is set back for it
        fc.control("POST", "clock", {"now": (ANCHOR + timedelta(days=1)).isoformat()})
        created = fc.control("POST", "orders", {})["id"]
        second = fc.sync(store, "fc", settings, transport=transport)
        assert [r.error for r in second] == [None] and second[0].orders.new == 1
        assert str(created) in {r[0] for r in rows(store, "SELECT order_id FROM orders WHERE source = 'fc'")}
    store.close()


def test_sync_exits_with_status_3_when_records_were_rejected_and_nothing_failed(tmp_path: Path) -> None:
    with in_process("frontcore", orders=40, seed=4, api_key="cli-key") as fc:
        server = start_in_thread(Tampered(fc.app, spoiler(fc)[0]))
        try:
            config = tmp_path / "ordersync.toml"
            config.write_text(f'[destination]\nurl = "sqlite:///{tmp_path / "o.db"}"\n\n[sources.courses]\n'
                              f'type = "frontcore"\napi_key = "${{FC_KEY}}"\nbase_url = "{server.base_url}/v2"\n'
                              'streams = ["orders"]\nrequests_per_second = 1000\n', encoding="utf-8")
            done = subprocess.run([sys.executable, "-m", "ordersync", "sync", "--config", str(config), "-q"],
                                  capture_output=True, text=True, timeout=120, env={**os.environ, "FC_KEY": "cli-key"})
        finally:
            server.stop()
    assert done.returncode == 3, done.stderr
    assert "7 record(s) could not be stored" in done.stderr and "Traceback" not in done.stderr
    assert "rejected" in done.stdout


@pytest.mark.parametrize("kinds", [(3,), (5,), (7,), (9,), (11, 13, 15)],
                         ids=["1e30", "30 digits", "beyond 64 bits", "no id", "three null ids"])
def test_each_kind_of_bad_record_alone_is_rejected_not_fatal(tmp_path: Path, kinds: tuple[int, ...]) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'o.db'}")
    with in_process("frontcore", orders=30, seed=4) as fc:
        spoil, bad = spoiler(fc, kinds)
        results = fc.sync(store, "fc", fc.settings(streams=["orders"]),
                          transport=httpx.ASGITransport(app=Tampered(fc.app, spoil)))
    assert [r.error for r in results] == [None] and results[0].rejected == len(kinds)
    stored = {r[0] for r in rows(store, "SELECT order_id FROM orders")}
    assert len(stored) == 30 - len(kinds) and "None" not in stored and not set(bad.values()) & stored
    store.close()


def test_a_page_is_normalized_with_pauses_in_which_answers_and_requests_move() -> None:
    """Normalizing a page is the longest stretch of work in the sync process. Answers arriving meanwhile must be
    read, and the requests after them sent, in its pauses (every ``TURN_EVERY`` records), not after it: each would
    otherwise wait on top of its round trip. The rows are those of ``normalize_page``."""
    from ordersync.model import Rows
    from ordersync.rejects import TURN_EVERY, normalize_page, normalize_page_turning

    records = [{"id": n, "total": n * 100} for n in range(4 * TURN_EVERY)]
    turns_seen: list[int] = []  # records normalized so far, at each turn of the event loop

    def normalize(record: dict[str, Any]) -> Rows:
        normalized.append(record["id"])
        return Rows(orders=[{"order_id": str(record["id"]), "total_minor": record["total"], "raw": record}])

    async def other_work() -> None:  # what the event loop runs beside it: reading answers, sending requests
        while len(normalized) < len(records):
            turns_seen.append(len(normalized))
            await asyncio.sleep(0)

    async def main() -> tuple[Rows, list[Any]]:
        watcher = asyncio.ensure_future(other_work())
        await asyncio.sleep(0)
        page = await normalize_page_turning(normalize, records)
        await watcher
        return page

    normalized: list[int] = []
    rows, rejected = asyncio.run(main())
    assert {0, TURN_EVERY, 2 * TURN_EVERY, 3 * TURN_EVERY} <= set(turns_seen)  # the loop turned between spans
    normalized.clear()
    assert (rows, rejected) == normalize_page(normalize, records)


def test_a_reject_is_cleared_when_a_later_run_stores_the_record(tmp_path: Path) -> None:
    """Issue 25: run 1 rejects two orders (exit 3); the vendor fixes them (their ``updated_at`` moves); run 2
    stores them, deletes their rejects in the page's transaction, and exits 0 with no outstanding reject."""
    with in_process("frontcore", orders=40, seed=4, api_key="cli-key") as fc:
        spoil, bad = spoiler(fc, (3, 7))
        fixed: set[str] = set()
        server = start_in_thread(Tampered(fc.app, lambda records: spoil([r for r in records
                                                                         if str(r.get("id")) not in fixed])))
        try:
            config = tmp_path / "ordersync.toml"
            config.write_text(f'[destination]\nurl = "sqlite:///{tmp_path / "o.db"}"\n\n[sources.courses]\n'
                              f'type = "frontcore"\napi_key = "${{FC_KEY}}"\nbase_url = "{server.base_url}/v2"\n'
                              'streams = ["orders"]\nrequests_per_second = 1000\n', encoding="utf-8")

            def ordersync(*args: str) -> subprocess.CompletedProcess[str]:
                return subprocess.run([sys.executable, "-m", "ordersync", *args, "--config", str(config)],
                                      capture_output=True, text=True, timeout=120,
                                      env={**os.environ, "FC_KEY": "cli-key"})

            first = ordersync("sync", "-q")
            assert first.returncode == 3 and "2 record(s) could not be stored" in first.stderr, first.stderr
            fixed.update(bad.values())
            for order_id in bad.values():
                fc.control("PATCH", f"orders/{order_id}", {})
            second = ordersync("sync", "-q")
            status = ordersync("status")
        finally:
            server.stop()
    assert second.returncode == 0, second.stderr
    assert "rejected record(s) are still not stored" not in second.stderr
    store = open_store(f"sqlite:///{tmp_path / 'o.db'}")
    try:
        assert set(bad.values()) <= {r[0] for r in rows(store, "SELECT order_id FROM orders")}
        assert rows(store, "SELECT count(*) FROM _ordersync_rejects") == [(0,)]
        assert store.outstanding_rejects(["courses"]) == 0
        assert {s["rejected"] for s in store.status()} == {0}
    finally:
        store.close()
    assert status.returncode == 0, status.stderr
