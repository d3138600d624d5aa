"""Schema 5 on every destination: a database written by the previous version (no ``lifecycle`` or
``adjustment_minor``, Frontcore's lines without VAT and without payments) is upgraded in place to exactly what
this version writes, from the vendor records it keeps; the step changes nothing when run again, and leaves alone an
order whose record today's normalizer refuses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ordersync.apis.eguma.normalize import order_rows as eguma_rows
from ordersync.apis.firespring.normalize import order_rows as firespring_rows
from ordersync.apis.frontcore.normalize import order_rows as frontcore_rows
from ordersync.apis.prio.normalize import order_rows as prio_rows
from ordersync.model import Rows
from ordersync.store import Store, migrations, open_store, tables
from tests.store.helpers import snapshot
from tests.store.test_migrations import layout, version

APIS = Path(__file__).parents[1] / "apis"


def vendor_pages() -> dict[str, tuple[str, Rows]]:
    """Per source: its API and the rows of real vendor records (the documentation's samples), as a sync writes them.
    Frontcore's first order is given 25% VAT on a line, so that its lines and payments are what schema 5 changed."""
    frontcore = json.loads((APIS / "frontcore" / "fixtures" / "orders_sample.json").read_text())
    frontcore[0]["lines"][0]["product"]["vat_percentage"] = 25
    frontcore[0]["calculated_totals"].update(total_amount_of_vat=375, total_amount_incl_discounts_and_vat=1875)
    eguma = json.loads((APIS / "eguma" / "doc_samples.json").read_text(encoding="utf-8"))
    eguma[1]["status"] = "cancelled"
    firespring = json.loads((APIS / "firespring" / "fixtures" / "sample_response.json").read_text())["data"]
    prio = json.loads((APIS / "prio" / "fixtures" / "sample_response.json").read_text())["data"]["items"][:1]
    pages = {}
    for source, api, normalize, records in (("courses", "frontcore", frontcore_rows, frontcore),
                                             ("vouchers", "eguma", eguma_rows, eguma),
                                             ("web", "firespring", firespring_rows, firespring),
                                             ("tickets", "prio", prio_rows, prio)):
        rows = Rows()
        for record in records:
            rows.extend(normalize(record))
        pages[source] = (api, rows)
    return pages


def written(url: str) -> Store:
    store = open_store(url)
    for source, (api, rows) in vendor_pages().items():
        store.write_page(source, api, "orders", rows, {"page": 1})
    store.write_page("courses", "frontcore", "orders", Rows(  # a record today's normalizer refuses (no id)
        orders=[{"order_id": "x1", "api": "frontcore", "total_minor": 5, "raw": {"id": None, "is_paid": True}}],
        order_lines=[{"order_id": "x1", "line_no": 1, "total_minor": 5, "raw": {"n": 1}}],
    ), {"page": 2})
    return store


def as_schema_4(store: Store) -> None:
    """What the previous version wrote: no schema 5 columns, Frontcore's lines without their VAT, no payments."""
    with store.engine.begin() as conn:
        for index in tables.DASHBOARD_INDEXES:  # DuckDB drops no column of an indexed table
            index.drop(conn)
        for column in ("lifecycle", "adjustment_minor"):
            conn.execute(sa.text(f"ALTER TABLE orders DROP COLUMN {column}"))
        for index in tables.DASHBOARD_INDEXES:
            index.create(conn)
        conn.execute(sa.text("UPDATE order_lines SET total_minor = unit_price_minor * quantity "
                             "WHERE source = 'courses' AND order_id <> 'x1'"))
        conn.execute(sa.text("DELETE FROM payments WHERE source = 'courses'"))
        conn.execute(sa.text("UPDATE _ordersync_schema SET version = 4"))


def derived(store: Store) -> list[Any]:
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(
            "SELECT o.source, o.order_id, o.lifecycle, o.adjustment_minor, o.total_minor, "
            "(SELECT sum(l.total_minor) FROM order_lines l WHERE l.source = o.source AND l.order_id = o.order_id), "
            "(SELECT count(*) FROM payments p WHERE p.source = o.source AND p.order_id = o.order_id) "
            "FROM orders o ORDER BY o.source, o.order_id"))]


def test_a_schema_4_database_becomes_what_this_version_writes(dest_url: str) -> None:
    store = written(dest_url)
    fresh_layout, fresh = layout(store), snapshot(store)
    as_schema_4(store)
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT sum(total_minor) FROM order_lines WHERE source = 'courses'")).scalar() \
            == 150000 + 150000 + 5  # without the 375.00 NOK of VAT
    store.close()

    upgraded = open_store(dest_url)
    assert upgraded.found_version == 4 and version(upgraded) == migrations.LATEST
    assert layout(upgraded) == fresh_layout
    assert snapshot(upgraded) == fresh  # every derived column, line and payment as a sync of today writes them
    assert derived(upgraded) == [
        ("courses", "27243", "pending", 0, 150000, 150000, 0),
        ("courses", "27244", "paid", 0, 187500, 187500, 1),  # VAT now in its line; its payment of the total
        ("courses", "x1", None, None, 5, 5, 0),  # a record the normalizer refuses: left as it was
        ("tickets", "ORDRREF123456", "pending", 250, None, None, 2),  # placeholders: no total, no lines
        ("vouchers", "7a7f2b66-feab-43fd-b579-d284af14173e", "cancelled", 0, 50000, 50000, 1),
        ("vouchers", "c004033d-ded1-4b74-958f-76ef47e747d6", "paid", 0, 30000, 30000, 1),
        ("web", "342", "pending", 0, 1995, None, 0),  # read without its items: no lines
        ("web", "4534", "paid", -3990, 15960, None, 0),
        ("web", "5894857", "paid", -266, 5719, None, 0),
    ]
    with upgraded.engine.begin() as conn:  # the step again, on the upgraded database: nothing changes
        migrations.MIGRATIONS[5](conn)
    assert snapshot(upgraded) == fresh
    upgraded.close()
