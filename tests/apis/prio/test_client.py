"""The client side, through the real engine over real HTTP: what it sends, tokens, 304, paging, filters, secrets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ordersync.apis.prio.client import PrioClient
from ordersync.config import parse_source
from ordersync.errors import ConfigError
from ordersync.store import Store
from tests.apis.prio.helpers import Recorder, fetch_all, refs, run, when
from tests.support import Router, Running, StopAfterPages, in_process, rows

SECRET = "pr10-s3cret-value-xyz"
Order = dict[str, Any]


@pytest.fixture(scope="module")
def r() -> Iterator[Running]:
    with in_process("prio", orders=300, seed=21, api_key=SECRET) as server:
        yield server


@pytest.fixture(scope="module")
def everything(r: Running) -> list[Order]:
    return fetch_all(r)


def stored(store: Store) -> set[str]:
    return {ref for (ref,) in rows(store, "SELECT order_id FROM orders")}


def test_first_run_reads_everything_once_with_explicit_ranges(r: Running, everything: list[Order],
                                                              store: Store) -> None:
    rec = Recorder()
    [result] = run(store, "tix", r.settings(), rec)
    assert result.ok, result.error
    assert stored(store) == refs(everything) and result.records == 300
    sent = rec.orders_requests()
    assert sent
    for request in sent:
        q = request.url.params
        assert q["order_created_from"] and q["order_created_to"]  # never the 3-month default
        assert q["order_sort_by"] == "ORDER_CREATED" and q["order_sort_order"] == "ASC"
        for name in ("order_created_from", "order_created_to"):
            assert q[name].endswith("+00:00") and "Z" not in q[name]
        assert request.headers["authorization"].startswith("Bearer ")
        assert "if-modified-since" not in request.headers  # nothing stored yet
    assert rows(store, "SELECT count(*) FROM customers")[0][0] == len(
        {c["contact_uid"] for o in everything for c in o["order_contacts"]})
    assert rows(store, "SELECT count(*) FROM order_lines")[0][0] == sum(len(o["order_bookings"]) for o in everything)


def test_unchanged_second_run_is_one_304_per_range(r: Running, store: Store) -> None:
    run(store, "tix", r.settings())
    before = rows(store, "SELECT order_id, raw, synced_at FROM orders ORDER BY order_id")
    state = json.loads(rows(store, "SELECT state FROM _ordersync_state")[0][0])
    rec = Recorder()
    [result] = run(store, "tix", r.settings(), rec)
    sent = rec.orders_requests()
    assert len(sent) == len(state["ranges"]) and result.requests == len(sent) + 1  # + the token
    assert all(s == 304 for req, s in zip(rec.requests, rec.statuses, strict=True) if req.url.path.endswith("/orders"))
    assert all(req.headers["if-modified-since"] for req in sent)
    assert all(req.url.params["order_modified"] for req in sent)
    assert result.orders.new == result.orders.changed == 0
    assert rows(store, "SELECT order_id, raw, synced_at FROM orders ORDER BY order_id") == before


def test_changes_are_picked_up_incrementally(store: Store) -> None:
    with in_process("prio", orders=120, seed=4) as r:
        run(store, "tix", r.settings())
        r.control("POST", "clock", {"now": "2026-11-01T10:00:00+00:00"})
        ids = sorted(refs(fetch_all(r)))
        r.control("PATCH", f"orders/{ids[5]}", {"cancel": True})
        r.control("PATCH", f"orders/{ids[50]}", {"order_external_reference": "CHANGED"})
        created = r.control("POST", "orders", {})
        state = json.loads(rows(store, "SELECT state FROM _ordersync_state")[0][0])
        rec = Recorder()
        [result] = run(store, "tix", r.settings(), rec)
        assert result.ok, result.error
        assert (result.orders.new, result.orders.changed) == (1, 2)
        assert {req.url.params["order_modified"] for req in rec.orders_requests()} == {
            when(state["cursor"]).isoformat(timespec="milliseconds")}
        assert rows(store, "SELECT status FROM orders WHERE order_id = ?", ids[5]) == [("ORDER_CANCELLED",)]
        assert created["order_reference"] in stored(store)
        assert 200 in rec.statuses and 304 in rec.statuses  # changed ranges answer, the others are not modified


def test_a_page_size_cap_below_the_size_asked_costs_about_one_request_per_capped_page(
        r: Running, everything: list[Order], store: Store) -> None:
    """The sandbox answers at most 100 orders a page whatever is asked: a full first answer completes its slice up
    to its last order's millisecond, so each request still brings about a page of new orders."""
    rec = Recorder()
    [result] = run(store, "tix", r.settings(items_per_page=500, window_days=3650), rec)
    assert result.ok, result.error
    assert stored(store) == refs(everything)
    assert rows(store, "SELECT count(*) FROM orders") == [(len(everything),)]
    assert len(rec.orders_requests()) <= len(everything) / 100 + 3


def test_small_pages_resume_with_the_slices_not_complete(r: Running, everything: list[Order], store: Store) -> None:
    """Stopped after three pages, the next run reads the slices the stopped run did not complete, none of those it
    completed (``run.done``, milliseconds of creation time), and completes the set."""
    import asyncio
    import threading
    from datetime import datetime

    from ordersync.apis.prio.client import millis
    from ordersync.sync import sync_source

    settings = parse_source("tix", r.settings(items_per_page=7, window_days=3650))
    stop = threading.Event()

    [stopped] = asyncio.run(sync_source(store, "tix", settings, progress=StopAfterPages(3, stop), stop=stop,
                                        transport=Router()))
    assert stopped.ok and stopped.interrupted
    first = stored(store)
    assert first and first < refs(everything)
    done = [tuple(span) for span in json.loads(rows(store, "SELECT state FROM _ordersync_state")[0][0])["run"]["done"]]
    assert done
    rec = Recorder()
    [result] = run(store, "tix", r.settings(items_per_page=7, window_days=3650), rec)
    assert result.ok and stored(store) == refs(everything)
    assert rows(store, "SELECT count(*) FROM orders") == [(len(everything),)]
    asked = [(millis(datetime.fromisoformat(q.url.params["order_created_from"])),
              millis(datetime.fromisoformat(q.url.params["order_created_to"])) + 1)
             for q in rec.orders_requests() if not q.url.params.get("order_modified")]
    assert asked and not [(q, d) for q in asked for d in done if q[0] < d[1] and d[0] < q[1]]
    assert result.orders.new == len(everything) - len(first)


class Clock:
    """Seconds that pass only when the test moves them: the client's and the sandbox's clock of token lifetimes."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Slow(Recorder):
    """Each orders request reaches the sandbox ``seconds`` later on ``clock`` than the client sent it."""

    def __init__(self, clock: Clock, seconds: float) -> None:
        super().__init__()
        self.clock, self.seconds = clock, seconds

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/orders"):
            self.clock.now += self.seconds
        return await super().handle_async_request(request)


def test_token_is_reused_and_renewed_before_expiry(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    # A 3 s token renewed 0.3 s before expiry; 31 pages at 150 ms each, one at a time, outlive it. The 150 ms pass
    # on a clock that the client and the sandbox share and the transport moves: nothing waits for real time.
    clock = Clock()
    monkeypatch.setattr(PrioClient, "clock", staticmethod(clock))
    with in_process("prio", orders=300, seed=3, extra={"token_ttl": "3"}) as r:
        r.sandbox.clock = clock  # type: ignore[attr-defined]
        rec = Slow(clock, 0.15)
        [result] = run(store, "tix", r.settings(items_per_page=10, window_days=3650, concurrency=1), rec)
        assert result.ok, result.error
        tokens = [req for req in rec.requests if req.url.path.endswith("/oauth2/token")]
        assert 2 <= len(tokens) < len(rec.orders_requests())  # renewed, but reused between renewals
        assert 401 not in rec.statuses  # renewed a little before expiry, never after
        assert len(stored(store)) == 300


class Expiring(Recorder):
    """Expires (or revokes) every token in the sandbox after the n-th orders request."""

    def __init__(self, r: Running, after: int, action: str) -> None:
        super().__init__()
        self.r, self.after, self.action = r, after, action

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        if len(self.orders_requests()) == self.after and request.url.path.endswith("/orders"):
            for info in self.r.sandbox.tokens.values():  # type: ignore[attr-defined]
                info["expires" if self.action == "expire" else "revoked"] = 0.0 if self.action == "expire" else True
        return response


def test_401_renews_once_and_retries(store: Store) -> None:
    with in_process("prio", orders=100, seed=3) as r:
        rec = Expiring(r, after=2, action="expire")
        [result] = run(store, "tix", r.settings(items_per_page=10, window_days=3650), rec)
        assert result.ok, result.error
        # every request in flight when the token expired (concurrency 4) hears 401 once; one renewal serves them
        assert 1 <= rec.statuses.count(401) <= 4
        assert sum(1 for q in rec.requests if q.url.path.endswith("/oauth2/token")) == 2
        assert len(stored(store)) == 100


def test_401_after_renewal_fails_clearly(store: Store) -> None:
    with in_process("prio", orders=10, seed=3, api_key=SECRET, extra={"token_ttl": "0"}) as r:
        rec = Recorder()
        [result] = run(store, "tix", r.settings(), rec)
        assert not result.ok and result.error is not None
        assert "401" in result.error and "expired" in result.error and "\n" not in result.error
        assert sum(1 for q in rec.requests if q.url.path.endswith("/oauth2/token")) == 2  # renewed exactly once
        assert SECRET not in result.error
        for tok in r.sandbox.tokens:  # type: ignore[attr-defined]
            assert tok not in result.error


def test_403_revoked_is_a_clear_error(store: Store) -> None:
    with in_process("prio", orders=50, seed=3) as r:
        rec = Expiring(r, after=1, action="revoke")
        [result] = run(store, "tix", r.settings(items_per_page=10, window_days=3650), rec)
        assert not result.ok and result.error is not None
        assert "403" in result.error and "revoked" in result.error and "new credentials" in result.error
        assert sum(1 for q in rec.requests if q.url.path.endswith("/oauth2/token")) == 1  # no renewal on 403
        assert rows(store, "SELECT state FROM _ordersync_state")  # the first page was kept


def test_wrong_secret_names_the_settings(r: Running, store: Store) -> None:
    [result] = run(store, "tix", r.settings(client_secret="wrong-secret-123"))
    assert result.error is not None and "client_id and client_secret" in result.error
    assert "Client authentication failed" in result.error and "wrong-secret-123" not in result.error


def test_secrets_and_tokens_never_reach_the_database(r: Running, store: Store, capsys: pytest.CaptureFixture[str],
                                                     caplog: pytest.LogCaptureFixture) -> None:
    import base64
    import logging

    caplog.set_level(logging.DEBUG)
    run(store, "tix", r.settings())
    [failed] = run(store, "tix", r.settings(base_url=r.url + "/nowhere"))
    dump = "\n".join(str(row) for table in ("orders", "order_lines", "customers", "payments", "_ordersync_state",
                                            "_ordersync_runs") for row in rows(store, f"SELECT * FROM {table}"))
    basic = base64.b64encode(f"sandbox-client:{SECRET}".encode()).decode()
    texts = [dump, failed.error or "", capsys.readouterr().err, caplog.text]
    for text in texts:
        assert SECRET not in text and basic not in text
        for tok in r.sandbox.tokens:  # type: ignore[attr-defined]
            assert tok not in text


@pytest.mark.parametrize("changes, message", [
    ({"order_status": "DONE"}, "ORDER_CONFIRMED"),
    ({"order_created_from": "2024-01-01T00:00:00"}, "offset"),
    ({"order_modified": "yesterday"}, "RFC 3339"),
    ({"order_search_query": "smith"}, "cache = true"),
    ({"order_created_from": "2024-01-01T00:00:00+00:00", "order_created_to": "2023-01-01T00:00:00+00:00"}, "before"),
    ({"items_per_page": 0}, "items_per_page"),
    ({"order_view_type": "ME"}, "DISTRIBUTOR"),
    ({"reseller_id": "abc"}, "reseller_id"),
    ({"colour": "red"}, "unknown setting"),
])
def test_settings_are_validated_before_any_request(changes: dict[str, Any], message: str) -> None:
    base = {"type": "prio", "client_id": "id", "client_secret": "shh-secret"}
    with pytest.raises(ConfigError) as caught:
        parse_source("tix", {**base, **changes})
    assert message in str(caught.value) and "shh-secret" not in str(caught.value)


def test_z_in_settings_is_sent_as_offset(r: Running, store: Store) -> None:
    rec = Recorder()
    run(store, "tix", r.settings(order_created_from="2024-01-01T00:00:00Z", window_days=3650), rec)
    assert rec.orders_requests()[0].url.params["order_created_from"] == "2024-01-01T00:00:00.000+00:00"


CLIENT_FILTERS: list[tuple[str, Any, str, Any]] = [
    # setting, how to pick a value from an order, the rule of the documentation
    ("reseller_id", lambda o: int(o["order_reseller_id"]), "eq", "order_reseller_id"),
    ("distributor_id", lambda o: int(o["order_distributor_id"]), "eq", "order_distributor_id"),
    ("market_admin_id", lambda o: int(o["order_market_admin_id"]), "eq", "order_market_admin_id"),
    ("supplier_id", lambda o: int(o["order_bookings"][0]["product_supplier_id"]), "booking", "product_supplier_id"),
    ("order_status", lambda o: "ORDER_CANCELLED", "eq", "order_status"),
    ("order_reference", lambda o: o["order_reference"], "eq", "order_reference"),
    ("order_contact_email", lambda o: o["order_contacts"][0]["contact_email"], "contact", "contact_email"),
    ("order_contact_uid", lambda o: o["order_contacts"][0]["contact_uid"], "contact", "contact_uid"),
    ("order_contact_name", lambda o: o["order_contacts"][0]["contact_name_last"], "name", None),
    ("product_id", lambda o: o["order_bookings"][0]["product_id"], "booking", "product_id"),
    ("booking_reference", lambda o: o["order_bookings"][0]["booking_reference"], "booking", "booking_reference"),
    ("product_availability_id", lambda o: o["order_bookings"][0]["product_availability_id"], "booking",
     "product_availability_id"),
    ("product_type_code", lambda o: o["order_bookings"][0]["product_type_details"][0]["product_type_code"], "type",
     "product_type_code"),
    ("order_created_email", lambda o: o["order_created_email"], "eq", "order_created_email"),
]


def matches(o: Order, kind: str, field: Any, value: Any) -> bool:
    if kind == "eq":
        return str(o[field]).lower() == str(value).lower() if "email" in str(field) else str(o[field]) == str(value)
    if kind == "booking":
        return any(str(b[field]) == str(value) for b in o["order_bookings"])
    if kind == "type":
        return any(t[field] == value for b in o["order_bookings"] for t in b["product_type_details"])
    if kind == "contact":
        return any(str(c[field]).lower() == str(value).lower() for c in o["order_contacts"])
    return any(str(value).lower() in (c["contact_name_first"].lower(), c["contact_name_last"].lower())
               for c in o["order_contacts"])


@pytest.mark.parametrize("setting, choose, kind, field", CLIENT_FILTERS, ids=[f[0] for f in CLIENT_FILTERS])
def test_filter_setting(r: Running, everything: list[Order], store: Store, setting: str, choose: Any, kind: str,
                        field: Any) -> None:
    value = choose(everything[17])
    rec = Recorder()
    [result] = run(store, "tix", r.settings(window_days=3650, **{setting: value}), rec)
    assert result.ok, result.error
    assert {req.url.params[setting] for req in rec.orders_requests()} == {str(value)}
    expected = {o["order_reference"] for o in everything if matches(o, kind, field, value)}
    assert expected and stored(store) == expected


def test_filter_bookings_and_search_settings_are_sent(r: Running, everything: list[Order], store: Store) -> None:
    product = everything[3]["order_bookings"][0]["product_id"]
    rec = Recorder()
    run(store, "tix", r.settings(window_days=3650, product_id=product, filter_bookings=True), rec)
    assert rec.orders_requests()[0].url.params["filter_bookings"] == "true"
    lines = rows(store, "SELECT DISTINCT product_id FROM order_lines")
    assert lines == [(product,)]
    rec = Recorder()
    name = everything[3]["order_contacts"][0]["contact_name_last"]
    run(store, "tix", r.settings(window_days=3650, order_search_query=name, cache=True), rec)
    params = rec.orders_requests()[0].url.params
    assert params["order_search_query"] == name and params["cache"] == "true"
    assert everything[3]["order_reference"] in stored(store)


def test_order_modified_setting(r: Running, everything: list[Order], store: Store) -> None:
    mark = sorted(when(o["order_modified"]) for o in everything)[250]
    run(store, "tix", r.settings(window_days=3650, order_modified=mark.isoformat()))
    assert stored(store) == {o["order_reference"] for o in everything if when(o["order_modified"]) > mark}
