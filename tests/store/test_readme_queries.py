"""The README's SQL examples, run against a real PostgreSQL holding all four sandboxes' data, checked in Python."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest

from ordersync.store import Store, open_store
from tests.pg_server import PgServer
from tests.registry import API_NAMES
from tests.store.helpers import published
from tests.support import running, sync

README = Path(__file__).resolve().parents[2] / "docs" / "destinations.md"  # its SQL examples
CENT = Decimal("0.01")  # PostgreSQL rounds halves away from zero
RATES = {"EUR": Decimal("1.0"), "CHF": Decimal("1.05"), "NOK": Decimal("0.085"), "USD": Decimal("0.92")}


def readme_queries() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Useful queries (PostgreSQL)", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sql\n(.*?)```", section, flags=re.S)


@pytest.fixture(scope="module")
def filled(pg_server: PgServer) -> Iterator[Store]:
    store = open_store(pg_server.new_database())
    for api in API_NAMES:
        with running(api, orders=80, seed=4) as sandbox:
            assert all(r.ok for r in sync(store, api, sandbox.settings()))
    yield store
    store.close()


def run(store: Store, sql: str) -> list[tuple[Any, ...]]:
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql(sql.replace("%", "%%")).all()]


def test_the_readme_has_the_queries() -> None:
    assert len(readme_queries()) == 4


def test_revenue_per_day_and_source_in_one_currency(filled: Store) -> None:
    expected: dict[tuple[Any, str], list[Any]] = defaultdict(lambda: [Decimal(0), 0])
    orders = published(filled, "orders")
    assert {o["currency"] for o in orders} <= set(RATES) and len({o["api"] for o in orders}) == 4
    for o in orders:
        cell = expected[(o["created_at"].date(), o["source"])]
        cell[0] += o["total_minor"] * RATES[o["currency"]]
        cell[1] += 1
    want = [(day, source, (total / 100).quantize(CENT, ROUND_HALF_UP), n)
            for (day, source), (total, n) in sorted(expected.items())]
    assert run(filled, readme_queries()[0]) == want


def test_unpaid_orders(filled: Store) -> None:
    unpaid = sorted((o for o in published(filled, "orders") if o["is_paid"] is not True),
                    key=lambda o: (o["created_at"], o["source"], o["order_id"]))
    got = run(filled, readme_queries()[1])
    assert unpaid and [(r[0], r[1]) for r in got] == [(o["source"], o["order_id"]) for o in unpaid]


def test_customers_with_the_most_orders_across_all_apis(filled: Store) -> None:
    orders = [o for o in published(filled, "orders") if o["customer_email"] is not None]
    counts = Counter(o["customer_email"].lower() for o in orders)
    apis: dict[str, set[str]] = defaultdict(set)
    for o in orders:
        apis[o["customer_email"].lower()].add(o["api"])
    want = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:10]
    got = run(filled, readme_queries()[2])
    assert [(r[0], r[1]) for r in got] == want
    assert all(r[2] == len(apis[r[0]]) and r[3] == ", ".join(sorted(apis[r[0]])) for r in got)
    assert len({o["api"] for o in orders}) == 4  # every API contributes customers' addresses


def test_raw_fields_in_sql(filled: Store) -> None:
    got = run(filled, readme_queries()[3])
    lines = Counter((r["source"], r["order_id"]) for r in published(filled, "order_lines"))
    assert len(got) == 5
    for source, order_id, created_at, vendor_created_at, vendor_lines in got:
        assert created_at is not None and vendor_created_at  # local time without zone, as Frontcore sends it
        assert vendor_lines == lines[(source, order_id)]
