"""docs/lifecycle.md, checked: each API's lifecycle table row by row through its normalizer (the docs are the
specification, parsed here, so the page and the code cannot drift apart), the amounts' one arithmetic
(``total = sum(lines) + adjustment_minor``) on every sandbox's orders synced for real, the documented reasons for
lines that do not add up, Frontcore's VAT per line and its payments."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ordersync.apis.eguma import normalize as eguma
from ordersync.apis.firespring import normalize as firespring
from ordersync.apis.frontcore import normalize as frontcore
from ordersync.apis.prio import normalize as prio
from ordersync.model import LIFECYCLES, Record, Rows
from ordersync.store import Store
from tests.support import in_process

ROOT = Path(__file__).parent
DOC = ROOT.parent / "docs" / "lifecycle.md"
MONEY = {"yes": True, "no": False, "unknown": None}
UNHEARD_OF = "SOMETHING_NEW"  # a status word no API documents


def documented_tables() -> dict[str, list[tuple[str | None, str, str | None]]]:
    """Each API's table of docs/lifecycle.md as rows (status word, money taken, lifecycle), one per word and per
    money state (``any`` expanded): ``None`` for Frontcore's missing status, :data:`UNHEARD_OF` for "any other word"."""
    tables: dict[str, list[tuple[str | None, str, str | None]]] = {}
    for api, body in re.findall(r"<!-- lifecycle-table: (\w+) -->\n((?:\|.*\n)+)", DOC.read_text(encoding="utf-8")):
        rows = tables.setdefault(api, [])
        for line in body.splitlines()[2:]:
            status_cell, money_cell, lifecycle_cell = (c.strip() for c in line.strip("|").split("|"))
            words: list[str | None] = re.findall(r"`([^`]+)`", status_cell) or [
                None if status_cell == "(no status)" else UNHEARD_OF]
            states = list(MONEY) if money_cell == "any" else [money_cell]
            lifecycle = None if lifecycle_cell == "null" else lifecycle_cell.strip("`")
            rows += [(word, state, lifecycle) for word in words for state in states]
    return tables


TABLES = documented_tables()


def frontcore_record(status: str | None, money: str) -> Record:
    record = json.loads((ROOT / "apis" / "frontcore" / "fixtures" / "orders_sample.json").read_text())[0]
    record["is_paid"] = MONEY[money]
    return record


def eguma_record(status: str | None, money: str) -> Record:
    record = json.loads((ROOT / "apis" / "eguma" / "doc_samples.json").read_text(encoding="utf-8"))[0]
    record["status"] = status
    if money == "no":
        record["payments"][0]["amount_in_cents"] = record["grand_total_in_cents"] - 1
    elif money == "unknown":
        del record["payments"]
    return record


def firespring_record(status: str | None, money: str) -> Record:
    record = json.loads((ROOT / "apis" / "firespring" / "fixtures" / "sample_response.json").read_text())["data"][1]
    record["status"] = status
    if money == "no":
        record["amount_paid"] = 0
    elif money == "unknown":
        del record["amount_paid"]
    return record


def prio_record(status: str | None, money: str, **changes: Any) -> Record:
    payments = {"yes": [{"payment_status": "PAYMENT_CAPTURED", "payment_amount": "25.00", "payment_currency": "EUR"}],
                "no": [{"payment_status": "PAYMENT_PENDING", "payment_amount": "25.00", "payment_currency": "EUR"}],
                "unknown": [{"value": "<Error: Too many levels of nesting to fake this schema>"}]}[money]
    return {"order_reference": "170000100001", "order_status": status, "order_created": "2026-01-02T10:00:00Z",
            "order_pricing": {"price_currency": "EUR", "price_subtotal": "27.50", "price_discount": "2.50",
                              "price_tax_amount": "2.06", "price_total": "25.00"},
            "order_bookings": [{"booking_reference": "B1", "booking_pricing": {"price_total": "20.00"}},
                               {"booking_reference": "B2", "booking_pricing": {"price_total": "7.50"}}],
            "order_payments": payments, **changes}


BUILDERS: dict[str, tuple[Callable[[str | None, str], Record], Callable[[Record], Rows], dict[Any, Any]]] = {
    "frontcore": (frontcore_record, frontcore.order_rows, frontcore.STATUSES),
    "eguma": (eguma_record, eguma.order_rows, eguma.STATUSES),
    "firespring": (firespring_record, firespring.order_rows, firespring.STATUSES),
    "prio": (prio_record, prio.order_rows, prio.STATUSES),
}
CASES = [(api, *row) for api, rows in TABLES.items() for row in rows]


def test_the_page_has_a_table_for_every_api_in_the_vocabulary() -> None:
    assert set(TABLES) == set(BUILDERS)
    assert {lifecycle for rows in TABLES.values() for _, _, lifecycle in rows} == {*LIFECYCLES, None}


@pytest.mark.parametrize(("api", "status", "money", "lifecycle"), CASES, ids=[f"{a}-{s}-{m}" for a, s, m, _ in CASES])
def test_each_documented_mapping_is_what_the_normalizer_gives(api: str, status: str | None, money: str,
                                                              lifecycle: str | None) -> None:
    build, normalize, _ = BUILDERS[api]
    order = normalize(build(status, money)).orders[0]
    assert order["is_paid"] is MONEY[money], "the record built for the row has the row's money state"
    assert (order["status"], order["lifecycle"]) == (status, lifecycle)


@pytest.mark.parametrize("api", sorted(BUILDERS))
def test_the_code_knows_exactly_the_documented_words(api: str) -> None:
    documented = {word for word, _, _ in TABLES[api] if word != UNHEARD_OF}
    assert set(BUILDERS[api][2]) == documented


# --- amounts -----------------------------------------------------------------------------------------------------
def rows(store: Store, sql: str) -> list[tuple[Any, ...]]:
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql(sql)]


RECONCILE = """
    SELECT o.order_id, o.total_minor, o.adjustment_minor, sum(l.total_minor), count(l.line_no), count(l.total_minor)
    FROM orders o LEFT JOIN order_lines l ON l.source = o.source AND l.order_id = o.order_id
    GROUP BY o.order_id, o.total_minor, o.adjustment_minor"""


@pytest.mark.parametrize("api", ["frontcore", "eguma", "firespring", "prio"])
def test_every_sandbox_order_adds_up_with_its_adjustment(api: str, store: Store) -> None:
    """Synced for real from the sandbox: lines + adjustment = total for every order; where the lines alone do not
    add up, the difference is exactly the order-level amount; Frontcore's lines always add up alone."""
    with in_process(api, orders=80, seed=7) as sandbox:
        results = sandbox.sync(store, "shop", sandbox.settings(streams=["orders"]))
    assert all(r.ok for r in results)
    found = rows(store, RECONCILE)
    assert len(found) >= 20 and all(lines == priced > 0 for *_, lines, priced in found)
    assert [o for o, total, adjustment, lines, _, _ in found if total != lines + adjustment] == []
    alone = [adjustment for _, total, adjustment, lines, _, _ in found if total != lines]
    assert 0 not in alone
    if api == "frontcore":
        assert alone == [] and rows(store, "SELECT count(*) FROM orders WHERE tax_minor > 0")[0][0] > 10
    else:
        assert alone, "some orders carry shipping, tax, surcharges or an order discount"
    store.close()


def test_an_eguma_discount_and_an_unlisted_shipping_fee_are_what_the_lines_miss() -> None:
    record = eguma_record("completed", "yes")
    record["discount_in_cents"] = 2500
    record["grand_total_in_cents"] = 30000 - 2500 + 900  # a shipping fee of 9.00 the record does not itemize
    result = eguma.order_rows(record)
    order, lines = result.orders[0], result.order_lines
    assert order["adjustment_minor"] == -2500
    assert order["total_minor"] - sum(line["total_minor"] or 0 for line in lines) - order["adjustment_minor"] == 900


def test_firespring_and_prio_order_level_amounts() -> None:
    sample = firespring_record("new", "yes")  # shipping 500, tax 431, a promo code's 1197 off the items
    assert firespring.order_rows(sample).orders[0]["adjustment_minor"] == 500 + 431 - 1197
    del sample["pricing"]["shipping_discount"]
    assert firespring.order_rows(sample).orders[0]["adjustment_minor"] is None
    surcharged = prio_record("ORDER_CONFIRMED", "yes")
    surcharged["order_pricing"]["price_variations"] = [{"variation_amount": "2.50"}, {"variation_amount": "1.50"}]
    surcharged["order_pricing"]["price_total"] = "29.00"
    result = prio.order_rows(surcharged)
    assert result.orders[0]["adjustment_minor"] == 400 - 250
    assert sum(line["total_minor"] or 0 for line in result.order_lines) + 150 == result.orders[0]["total_minor"]
    surcharged["order_pricing"]["price_variations"] = [{"value": "<Error: Too many levels of nesting>"}]
    assert prio.order_rows(surcharged).orders[0]["adjustment_minor"] is None


def frontcore_order(lines: list[tuple[Any, int, Any, Any]], vat: Any, total: Any, paid: bool = True) -> Record:
    """A Frontcore order from (unit price ex VAT, quantity, discount, VAT %) per line and the order's totals."""
    record = frontcore_record(None, "yes" if paid else "no")
    template = record["lines"][0]
    record["lines"] = []
    for number, (price, quantity, discount, rate) in enumerate(lines):
        line = copy.deepcopy(template)
        line.update(id=number, price_at_order_per_item_vat_excluded=price, quantity=quantity,
                    discount_calculated_at_order=discount)
        line["product"]["vat_percentage"] = rate
        record["lines"].append(line)
    record["calculated_totals"].update(total_amount_of_vat=vat, total_amount_incl_discounts_and_vat=total)
    return record


def test_frontcore_lines_hold_their_vat_rounded_as_the_order_rounds_it() -> None:
    halves = frontcore.order_rows(frontcore_order([(0.5, 1, 0, 25), (0.5, 1, 0, 25)], vat=0.25, total=1.25))
    assert [line["total_minor"] for line in halves.order_lines] == [63, 62]  # 12.5 øre VAT each: 25 in all
    assert [line["unit_price_minor"] for line in halves.order_lines] == [50, 50]  # the vendor's price, ex VAT
    # the demo's order 28097: its total and its VAT figure were rounded each on its own; the lines follow the total
    demo = frontcore.order_rows(frontcore_order([(1500, 5, 750, 0), (3990.5, 1, 399.05, 0), (12500.75, 2, 0, 25)],
                                                vat=6250.38, total=41593.32))
    assert sum(line["total_minor"] or 0 for line in demo.order_lines) == demo.orders[0]["total_minor"] == 4159332
    # a VAT figure and a total that disagree with the rates by more than rounding: each line rounded on its own
    off = frontcore.order_rows(frontcore_order([(0.5, 1, 0, 25), (0.5, 1, 0, 25)], vat=0.5, total=1.5))
    assert [line["total_minor"] for line in off.order_lines] == [63, 63]


def test_frontcore_vat_rates_and_their_absence() -> None:
    assert frontcore.vat_rate("12.5") == Decimal("12.5") and frontcore.vat_rate(None) is None
    for bad in ("lots", 101, -1, True, float("nan")):
        with pytest.raises(ValueError, match="not a percentage"):
            frontcore.vat_rate(bad)
    unknown = frontcore.order_rows(frontcore_order([(10, 1, 0, None), (10, 1, 0, 25)], vat=2.5, total=22.5))
    assert [line["total_minor"] for line in unknown.order_lines] == [None, 1250]


def test_a_paid_frontcore_order_has_one_payment_of_its_total() -> None:
    paid = frontcore_record(None, "yes")
    paid["payment_method"] = "vipps"
    result = frontcore.order_rows(paid)
    assert [(p["payment_no"], p["method"], p["amount_minor"], p["currency"]) for p in result.payments] == [
        (1, "vipps", 150000, "NOK")]
    assert result.payments[0]["raw"] == {"is_paid": True, "payment_method": "vipps"}
    assert frontcore.order_rows(frontcore_record(None, "no")).payments == []


def test_the_pages_queries_answer_as_they_say(store: Store) -> None:
    """The SQL of docs/lifecycle.md on e-guma's orders (cancelled ones, discounts): cancelled orders are a group of
    their own and out of paid revenue; no order is listed as not adding up."""
    with in_process("eguma", orders=80, seed=7) as sandbox:
        assert all(r.ok for r in sandbox.sync(store, "shop", sandbox.settings()))
    statements = [sql for block in re.findall(r"```sql\n(.*?)```", DOC.read_text(), re.S)
                  for sql in block.split(";") if sql.strip()]
    by_lifecycle, revenue, not_adding_up = (rows(store, sql) for sql in statements)
    cancelled = rows(store, "SELECT count(*), sum(total_minor) FROM orders WHERE status = 'cancelled'")[0]
    assert cancelled[0] > 0 and ("shop", "CHF", "cancelled", cancelled[0], cancelled[1] / 100) in by_lifecycle
    assert revenue == rows(store, "SELECT 'shop', 'CHF', sum(total_minor) FROM orders WHERE status = 'completed' "
                                  "AND is_paid")
    assert not_adding_up == []
    store.close()
