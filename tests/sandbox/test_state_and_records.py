"""A data file survives restarts on later days; Prio's token endpoint speaks standard OAuth2; records carry
every documented field with consistent totals (issue 12)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ordersync.cli import app as cli
from ordersync.sandbox.app import Sandbox
from tests.registry import API_NAMES
from tests.sandbox.inprocess import InProcess, auth, basic

TOKEN = "/v3.4/distributor/oauth2/token"


@pytest.mark.parametrize("api", API_NAMES)
def test_a_data_file_restarted_on_a_later_day_keeps_its_records_and_changes(
        api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = str(tmp_path / f"{api}.sqlite")
    first = InProcess(api, anchor=None, data_path=data, rate_limit=False)
    changed = first.post("/_sandbox/orders", json={}).json()
    before = first.get("/_sandbox/stats").json()["orders"]
    orders_before = first.sandbox.store.find("orders")
    anchor = first.sandbox.anchor()
    first.sandbox.store.close()

    later = Sandbox.today() + timedelta(days=3)
    monkeypatch.setattr(Sandbox, "today", staticmethod(lambda: later))
    again = InProcess(api, anchor=None, data_path=data, rate_limit=False)
    assert again.sandbox.anchor() == anchor
    assert again.get("/_sandbox/stats").json()["orders"] == before
    assert again.sandbox.store.find("orders") == orders_before
    assert changed in orders_before
    again.sandbox.store.close()

    fresh = InProcess(api, anchor=None, data_path=str(tmp_path / "other.sqlite"), rate_limit=False)
    assert fresh.sandbox.anchor() == later  # a new file is anchored on its own first day


def test_an_explicit_anchor_generates_reproducibly_and_never_overwrites_a_kept_file(tmp_path: Path) -> None:
    one = InProcess("eguma", data_path=str(tmp_path / "a.sqlite"))
    two = InProcess("eguma", data_path=str(tmp_path / "b.sqlite"))
    kept = one.sandbox.store.find("orders")
    assert kept == two.sandbox.store.find("orders")
    earlier = one.sandbox.anchor() - timedelta(days=9)
    with pytest.raises(ValueError, match=r"holds 40 orders of seed 1, anchored at 2026-06-15 .*--anchor 2026-06-06"):
        InProcess("eguma", anchor=earlier, data_path=str(tmp_path / "a.sqlite"))
    assert InProcess("eguma", anchor=None, data_path=str(tmp_path / "a.sqlite")).sandbox.store.find("orders") == kept
    other = InProcess("eguma", anchor=earlier, data_path=str(tmp_path / "c.sqlite"))
    assert other.sandbox.anchor() == earlier
    assert other.sandbox.store.find("orders") != kept  # another anchor, another history


def test_serve_refuses_a_bad_anchor_with_one_line() -> None:
    result = CliRunner().invoke(cli, ["serve", "eguma", "--anchor", "yesterday"])
    assert result.exit_code != 0 and "--anchor 'yesterday' is not a date" in result.output


@pytest.mark.parametrize("style", ["json+basic", "form+basic", "form+post"])
def test_prio_token_endpoint_accepts_the_documented_and_the_standard_oauth2_requests(style: str) -> None:
    prio = InProcess("prio")
    sandbox: Any = prio.sandbox
    secret_basic = {"Authorization": basic(sandbox.client_id, sandbox.client_secret)}
    kwargs: dict[str, Any] = {
        "json+basic": {"json": {"grant_type": "client_credentials"}, "headers": secret_basic},
        "form+basic": {"data": {"grant_type": "client_credentials"}, "headers": secret_basic},
        "form+post": {"data": {"grant_type": "client_credentials", "client_id": sandbox.client_id,
                               "client_secret": sandbox.client_secret}},
    }[style]
    token = prio.post(TOKEN, **kwargs)
    assert token.status_code == 200 and token.json()["token_type"] == "Bearer"
    listing = prio.get("/v3.4/distributor/orders", headers={"Authorization": f"Bearer {token.json()['access_token']}"})
    assert listing.status_code == 200
    wrong = prio.post(TOKEN, data={"grant_type": "client_credentials", "client_id": sandbox.client_id,
                                   "client_secret": "nope"})
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"


def test_prio_ignores_a_malformed_if_modified_since() -> None:
    prio = InProcess("prio")
    headers = {**auth(prio)["headers"], "If-Modified-Since": "last tuesday"}
    assert prio.get("/v3.4/distributor/orders", headers=headers).status_code == 200


def test_frontcore_amounts_are_integers_when_whole_and_customers_vary() -> None:
    fc = InProcess("frontcore", orders=400, rate_limit=False)
    orders = fc.sandbox.store.find("orders")
    amounts = [v for o in orders for line in o["lines"] for k, v in line.items()
               if k.startswith(("price_", "discount_"))] + \
              [v for o in orders for v in o["calculated_totals"].values()]
    assert not [v for v in amounts if isinstance(v, float) and v == int(v)]  # never 0.0, never 1500.0
    statuses = {(c["idStatus"], c["status"]) for c in fc.sandbox.store.find("customers")}
    assert statuses == {("1", "Active"), ("2", "Deactivated")}


def test_prio_records_fill_every_documented_field_and_totals_add_up() -> None:
    prio = InProcess("prio", orders=300)
    orders = prio.sandbox.store.find("orders")
    filled = {key: sum(1 for o in orders if o[key]) for key in (
        "order_partner_id", "order_partner_name", "order_invoices", "order_flags", "order_custom_fields")}
    assert all(count > 0 for count in filled.values()), filled
    with_variations = [o for o in orders if o["order_pricing"]["price_variations"]]
    assert with_variations
    for order in orders:
        pricing = order["order_pricing"]
        extra = sum(Decimal(v["variation_amount"]) for v in pricing["price_variations"])
        assert set(pricing["price_variations"][0]) == {"variation_label", "variation_amount", "variation_type"} \
            if pricing["price_variations"] else True
        total = Decimal(pricing["price_subtotal"]) + extra - Decimal(pricing["price_discount"])
        assert Decimal(pricing["price_total"]) == total
        for invoice in order["order_invoices"]:
            assert invoice["invoice_amount"] == pricing["price_total"]


def test_eguma_payments_add_up_to_the_total_after_lines_are_cancelled() -> None:
    eguma = InProcess("eguma", orders=400)
    orders = eguma.sandbox.store.find("orders")
    trimmed = [o for o in orders if any(p["amount_in_cents"] < 0 for p in o["payments"])]
    assert trimmed  # some generated orders lost a voucher line and were refunded
    for order in orders:
        lines = sum(line["total_price_in_cents"] for line in order["order_lines"])
        assert order["grand_total_in_cents"] == lines - order["discount_in_cents"]
        assert sum(p["amount_in_cents"] for p in order["payments"]) == order["grand_total_in_cents"]
    several = next(o for o in orders if len(o["order_lines"]) > 1 and o["status"] == "completed")
    changed = eguma.request("PATCH", f"/_sandbox/orders/{several['id']}", json={"cancel_line": 0}).json()
    assert sum(p["amount_in_cents"] for p in changed["payments"]) == changed["grand_total_in_cents"]
