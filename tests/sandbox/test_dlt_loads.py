"""A third-party client as the judge: dlt's stock ``rest_api`` source, configured only from each vendor's
documentation (auth, paths, paging, where the records are), loads every order of each sandbox into DuckDB."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.registry import API_NAMES
from tests.support import Running, running

ORDERS = 120


@pytest.fixture(autouse=True)
def _quiet_dlt(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.setenv("RUNTIME__DLTHUB_TELEMETRY", "false")
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))
    yield


def documented_config(api: str, r: Running) -> tuple[dict[str, Any], int]:
    """The rest_api configuration a user writes from the vendor's documentation, and the orders to expect."""
    store = r.sandbox.store
    key = r.sandbox.options.api_key
    if api == "frontcore":  # X-API-Key header; a plain array; pages until a short/empty page; exported=true for all
        return {"client": {"base_url": f"{r.url}/v2", "auth": {"type": "api_key", "name": "X-API-Key",
                                                               "api_key": key, "location": "header"}},
                "resources": [{"name": "orders", "endpoint": {
                    "path": "orders", "params": {"limit": 250, "exported": "true"}, "data_selector": "$",
                    "paginator": {"type": "page_number", "base_page": 1, "page_param": "page", "total_path": None,
                                  "stop_after_empty_page": True}}}]}, store.count("orders")
    if api == "eguma":  # apikey in the query string; no pagination
        return {"client": {"base_url": f"{r.url}/v1", "auth": {"type": "api_key", "name": "apikey", "api_key": key,
                                                               "location": "query"}},
                "resources": [{"name": "orders", "endpoint": {
                    "path": "vouchers/orders.json", "data_selector": "$", "paginator": "single_page"}}]}, \
            store.count("orders")
    if api == "firespring":  # HTTP Basic, key as user name; data + meta.pagination.total_pages
        return {"client": {"base_url": r.url, "auth": {"type": "http_basic", "username": key, "password": ""}},
                "resources": [{"name": "orders", "endpoint": {
                    "path": "websites/4/orders", "params": {"count": 100}, "data_selector": "data",
                    "paginator": {"type": "page_number", "base_page": 1, "page_param": "page",
                                  "total_path": "meta.pagination.total_pages"}}}]}, \
            store.count("orders", ["website = ?"], [4])
    if api != "prio":
        pytest.fail(f"no dlt configuration written from the documentation of the API '{api}': add one here")
    from dlt.sources.helpers.rest_client.auth import OAuth2ClientCredentials

    base = f"{r.url}/v3.4/distributor"  # stock OAuth2 client credentials; explicit creation range; data.items
    auth = OAuth2ClientCredentials(access_token_url=f"{base}/oauth2/token", client_id=r.sandbox.client_id,
                                   client_secret=r.sandbox.client_secret)
    return {"client": {"base_url": base, "auth": auth},
            "resources": [{"name": "orders", "endpoint": {
                "path": "orders", "params": {"order_created_from": "2020-01-01T00:00:00+00:00",
                                             "order_created_to": "2030-01-01T00:00:00+00:00", "items_per_page": 100},
                "data_selector": "data.items",
                "paginator": {"type": "page_number", "base_page": 1, "page_param": "page",
                              "total_path": "data.total_pages"}}}]}, store.count("orders")


@pytest.mark.parametrize("api", API_NAMES)
def test_dlt_rest_api_loads_every_order(api: str, tmp_path: Path) -> None:
    import dlt
    from dlt.sources.rest_api import rest_api_source

    # Frontcore keeps its documented 5 requests per second: the few requests here stay under it.
    with running(api, orders=ORDERS, rate_limit=True) as r:
        config, expected = documented_config(api, r)
        pipeline = dlt.pipeline(pipeline_name=f"judge_{api}", pipelines_dir=str(tmp_path / "pipelines"),
                                destination=dlt.destinations.duckdb(str(tmp_path / f"{api}.duckdb")),
                                dataset_name="judge")
        pipeline.run(rest_api_source(config))
    with pipeline.sql_client() as client:
        loaded = client.execute_sql("SELECT count(*) FROM orders")[0][0]
    assert expected > 0 and loaded == expected
