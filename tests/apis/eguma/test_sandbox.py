"""The sandbox side: every documented filter, the key, errors, the record shape and the documented events.

Expected sets are computed here from the documentation's rules over records fetched unfiltered (or created
through the control endpoints), never by the sandbox's own filter code.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.apis.eguma.helpers import local
from tests.support import Running, get, running

KEY = "sandbox-key"
ORDER_FIELDS = ["id", "created_at", "updated_at", "order_number", "status", "currency", "language", "location",
                "discount_in_cents", "grand_total_in_cents", "customer", "order_lines", "payments"]
CUSTOMER_FIELDS = ["id", "title", "first_name", "last_name", "company", "street", "zip", "city", "country", "email",
                   "accepts_marketing", "double_opt_in_confirmed_at", "phone"]
LINE_FIELDS = ["product_id", "name", "unit_price_in_cents", "quantity", "total_price_in_cents"]
PAYMENT_FIELDS = ["payment_id", "name", "amount_in_cents", "is_complimentary"]


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Running]:
    with running("eguma", orders=300, seed=7) as r:
        yield r


def orders(r: Running, **params: str) -> httpx.Response:
    return get(f"{r.url}/v1/vouchers/orders.json", params={"apikey": KEY, **params})


def everything(r: Running) -> list[dict[str, Any]]:
    response = orders(r)
    assert response.status_code == 200
    return response.json()


def test_every_documented_field_in_the_documented_order(sandbox: Running) -> None:
    records = everything(sandbox)
    assert len(records) == 300
    numbers = [int(o["order_number"].removeprefix("GI")) for o in records]
    assert numbers == sorted(numbers) and len(set(numbers)) == 300
    for o in records:
        assert list(o) == ORDER_FIELDS
        assert list(o["customer"]) == CUSTOMER_FIELDS
        assert all(list(line) == LINE_FIELDS for line in o["order_lines"])
        assert all(list(p) == PAYMENT_FIELDS for p in o["payments"])
        assert o["status"] in ("completed", "cancelled") and o["currency"] == "CHF"
        assert o["location"] in ("web", "local", "import") and o["language"] in ("de", "fr", "it", "en")
        assert o["customer"]["title"] in ("Mr", "Mrs", "Company")
        local(o["created_at"]), local(o["updated_at"])  # zone-less, documented format
        assert o["updated_at"] >= o["created_at"]
        for line in o["order_lines"]:
            assert line["total_price_in_cents"] == line["quantity"] * line["unit_price_in_cents"]
        lines_total = sum(line["total_price_in_cents"] for line in o["order_lines"])
        assert o["grand_total_in_cents"] == lines_total - o["discount_in_cents"]
        c = o["customer"]
        assert (c["double_opt_in_confirmed_at"] is not None) == c["accepts_marketing"]
    assert {o["language"] for o in records} > {"de"}
    assert any(o["status"] == "cancelled" for o in records)
    assert any(o["updated_at"] > o["created_at"] for o in records)


@pytest.mark.parametrize("name", ["created_at_after", "created_at_before", "updated_at_after", "updated_at_before"])
def test_each_date_filter(sandbox: Running, name: str) -> None:
    records = everything(sandbox)
    field = name.rsplit("_", 1)[0]
    values = sorted(o[field] for o in records)
    for boundary in (values[0], values[len(values) // 3], values[-1], "2000-01-01T00:00:00", "2099-01-01T00:00:00"):
        if name.endswith("_after"):  # documentation: "at or after"
            expected = {o["id"] for o in records if local(o[field]) >= local(boundary)}
        else:  # documentation: "before"
            expected = {o["id"] for o in records if local(o[field]) < local(boundary)}
        answer = orders(sandbox, **{name: boundary})
        assert answer.status_code == 200
        assert {o["id"] for o in answer.json()} == expected, (name, boundary)


def test_filters_combine(sandbox: Running) -> None:
    records = everything(sandbox)
    created = sorted(o["created_at"] for o in records)
    updated = sorted(o["updated_at"] for o in records)
    params = {"created_at_after": created[50], "created_at_before": created[250],
              "updated_at_after": updated[100], "updated_at_before": updated[280]}
    expected = {o["id"] for o in records
                if local(params["created_at_after"]) <= local(o["created_at"]) < local(params["created_at_before"])
                and local(params["updated_at_after"]) <= local(o["updated_at"]) < local(params["updated_at_before"])}
    assert expected
    assert {o["id"] for o in orders(sandbox, **params).json()} == expected


@pytest.mark.parametrize("value", ["2019-06-04", "2019-06-04 23:15:14", "2019-06-04T23:15:14Z", "2019-13-04T23:15:14",
                                   "2019-06-04T23:15", "yesterday", ""])
def test_malformed_date_is_400_plain_text(sandbox: Running, value: str) -> None:
    answer = orders(sandbox, updated_at_after=value)
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("text/plain")
    assert "updated_at_after" in answer.text and "2019-06-04T23:15:14" in answer.text


def test_key_is_required(sandbox: Running) -> None:
    """As documented: a missing parameter is 400, a key that is not valid 401; both plain text."""
    for params, status in (({}, 400), ({"apikey": ""}, 400), ({"apikey": "wrong"}, 401)):
        answer = get(f"{sandbox.url}/v1/vouchers/orders.json", params=params)
        assert answer.status_code == status
        assert answer.headers["content-type"].startswith("text/plain") and answer.text
        assert ("apikey" in answer.text) == (status == 400)
    one = everything(sandbox)[0]
    assert get(f"{sandbox.url}/v1/vouchers/orders/{one['id']}.json", params={"apikey": "x"}).status_code == 401


def test_single_order(sandbox: Running) -> None:
    one = everything(sandbox)[17]
    answer = get(f"{sandbox.url}/v1/vouchers/orders/{one['id']}.json", params={"apikey": KEY})
    assert answer.status_code == 200 and answer.json() == one
    missing = get(f"{sandbox.url}/v1/vouchers/orders/00000000-0000-4000-8000-000000000000.json",
                  params={"apikey": KEY})
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/plain")


def test_openapi_describes_both_endpoints(sandbox: Running) -> None:
    doc = get(f"{sandbox.url}/openapi.json")
    assert "$ref" not in doc.text  # the document has no components: every schema is inline
    paths = doc.json()["paths"]
    assert set(paths) == {"/v1/vouchers/orders.json", "/v1/vouchers/orders/{id}.json"}
    names = [p["name"] for p in paths["/v1/vouchers/orders.json"]["get"]["parameters"]]
    assert names == ["created_at_after", "created_at_before", "updated_at_after", "updated_at_before"]
    scheme = doc.json()["components"]["securitySchemes"]["apikey"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "query", "apikey")
    schema = paths["/v1/vouchers/orders.json"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert list(schema["items"]["properties"]) == ORDER_FIELDS


def test_reproducible_from_the_seed() -> None:
    with running("eguma", orders=40, seed=11) as a, running("eguma", orders=40, seed=11) as b:
        first = everything(a)
        assert first == everything(b)
    with running("eguma", orders=40, seed=12) as c:
        assert everything(c) != first


def test_documented_events_move_updated_at_and_others_do_not() -> None:
    with running("eguma", orders=0, seed=3) as r:
        r.control("POST", "clock", {"now": "2026-01-10T09:00:00+00:00"})  # 10:00 in Zurich (winter)
        new = r.control("POST", "orders", {
            "order_lines": [{"unit_price_in_cents": 5000, "quantity": 2}, {"unit_price_in_cents": 3000}],
            "discount_in_cents": 1000, "customer": {"email": "anna@example.ch"},
        })
        assert new["created_at"] == new["updated_at"] == "2026-01-10T10:00:00"
        assert new["grand_total_in_cents"] == 10000 + 3000 - 1000
        second = r.control("POST", "orders", {"customer": {"id": new["customer"]["id"]}})
        assert second["customer"]["id"] == new["customer"]["id"]

        r.control("POST", "clock", {"now": "2026-01-10T10:00:00+00:00"})
        unchanged = r.control("PATCH", f"orders/{new['id']}", {"language": "fr"})
        assert unchanged["updated_at"] == "2026-01-10T10:00:00"

        trimmed = r.control("PATCH", f"orders/{new['id']}", {"cancel_line": 1})
        assert trimmed["updated_at"] == "2026-01-10T11:00:00"
        assert len(trimmed["order_lines"]) == 1 and trimmed["grand_total_in_cents"] == 10000 - 1000

        r.control("POST", "clock", {"now": "2026-07-10T10:00:00+00:00"})  # 12:00 in Zurich (summer)
        r.control("PATCH", f"orders/{new['id']}", {"customer": {"email": "anna.neu@example.ch"}})
        both = {o["id"]: o for o in everything(r)}
        for order in both.values():  # every order of the customer shows the change and moved
            assert order["customer"]["email"] == "anna.neu@example.ch"
            assert order["updated_at"] == "2026-07-10T12:00:00"

        r.control("POST", "clock", {"now": "2026-07-11T10:00:00+00:00"})
        cancelled = r.control("PATCH", f"orders/{second['id']}", {"cancel": True})
        assert cancelled["status"] == "cancelled" and cancelled["updated_at"] == "2026-07-11T12:00:00"
        again = r.control("PATCH", f"orders/{new['id']}", {})
        assert again["updated_at"] == "2026-07-11T12:00:00"  # an empty body applies some documented event
        r.control("POST", "clock", {"now": "2026-07-12T10:00:00+00:00"})
        assert r.control("PATCH", f"orders/{second['id']}", {"cancel": True})["updated_at"] == "2026-07-11T12:00:00"


def test_opt_in_follows_marketing_consent() -> None:
    with running("eguma", orders=0, seed=3) as r:
        r.control("POST", "clock", {"now": "2026-02-01T08:00:00+00:00"})
        order = r.control("POST", "orders", {"customer": {"accepts_marketing": False,
                                                          "double_opt_in_confirmed_at": None}})
        r.control("PATCH", f"orders/{order['id']}", {"customer": {"accepts_marketing": True}})
        customer = everything(r)[0]["customer"]
        assert customer["accepts_marketing"] is True and customer["double_opt_in_confirmed_at"] == "2026-02-01T09:00:00"


def test_slow_answers_grow_with_their_size() -> None:
    with running("eguma", orders=20, seed=3, extra={"ms_per_order": "25"}) as r:
        slow = httpx.get(f"{r.url}/v1/vouchers/orders.json", params={"apikey": KEY}, timeout=30)
        assert slow.elapsed.total_seconds() >= 0.45
        fast = httpx.get(f"{r.url}/v1/vouchers/orders.json", params={"apikey": KEY,
                                                                     "updated_at_after": "2099-01-01T00:00:00"})
        assert fast.elapsed < slow.elapsed and fast.json() == []  # relative: a busy machine slows both
