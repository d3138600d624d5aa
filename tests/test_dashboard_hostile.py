"""Issue 25: the dashboard's fixed cases, run against its Starlette app over a real database (SQLite, PostgreSQL on
the suite's server, DuckDB): the redirect after a token login goes only to a path of this site, an order id
holding ``../`` opens from the list, crafted paging tokens, dates 9999-12-31 / 0001-01-01, a NUL byte in the
search, a non-ASCII ``?token=``; then a hypothesis fuzz of the query parameters. No answer is a 500, none shows a
traceback, every redirect stays on the site."""

from __future__ import annotations

import asyncio
import base64
import html
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import hypothesis
import hypothesis.strategies as st
import orjson
import pytest
from starlette.applications import Starlette

from ordersync.apis.base import Rows
from ordersync.dashboard import create_app
from ordersync.store import WriteResult, open_store

TOKEN = "s3cret-token"
HOSTILE_IDS = ["a/../b", "../../etc/passwd", "..", "x%2F..%2Fy", "q?x=1#frag", "ké ✓ <b>", "back\\slash/..\\"]
FUZZ = hypothesis.settings(max_examples=40, deadline=None, derandomize=True,
                           suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture])


@dataclass
class Dash:
    open: Starlette  # no token (loopback)
    gated: Starlette  # behind TOKEN


@pytest.fixture(params=["sqlite", "postgresql", "duckdb"])
def dash(request: pytest.FixtureRequest, tmp_path: Path) -> Dash:
    """A real database holding orders with hostile ids (and ordinary ones), a failed run, and the two apps."""
    kind = request.param
    url = (str(request.getfixturevalue("pg_url")) if kind == "postgresql"
           else f"{kind}:///{tmp_path / ('orders.db' if kind == 'sqlite' else 'orders.duckdb')}")
    ids = HOSTILE_IDS + [f"o{i:03d}" for i in range(12)]
    rows = [{"order_id": order_id, "order_number": f"N{i}", "status": "paid" if i % 2 else "cancelled",
             "currency": "NOK", "total_minor": 100 * i, "discount_minor": 0, "tax_minor": 0, "is_paid": bool(i % 2),
             "customer_id": "c", "customer_name": "Kari [bold]", "customer_email": f"kari{i}@example.org",
             "created_at": datetime(2026, 9, 1 + i % 28, 8, i, tzinfo=UTC), "updated_at": None,
             "raw": {"id": order_id}} for i, order_id in enumerate(ids)]
    store = open_store(url)
    try:
        store.write_page("shop", "frontcore", "orders", Rows(orders=rows), {"max_id": len(ids)})
        run = store.start_run("shop", "orders")
        store.finish_run(run, "failed", WriteResult(new=len(ids)), 3, error="HTTP 500 from /v2/orders")
    finally:
        store.close()
    return Dash(create_app(url), create_app(url, token=TOKEN))


def fetch(app: Starlette, *paths: str, headers: dict[str, str | bytes] | None = None) -> list[httpx.Response]:
    """GET each path in one client session (cookies kept); an exception in the app is a 500 answer, as a user
    sees it, not an exception here."""
    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1", headers=headers) as c:
            return [await c.get(path) for path in paths]

    return asyncio.run(run())


def sound(response: httpx.Response) -> httpx.Response:
    """No server error, no traceback, and a redirect only to a path of this site (as a browser reads it: tabs
    and line breaks dropped, a backslash read as a slash)."""
    where = f"{response.request.url} -> {response.status_code}"
    assert response.status_code < 500, f"{where}: {response.text[-1500:]}"
    assert "Traceback" not in response.text and 'File "' not in response.text, where
    if 300 <= response.status_code < 400:
        location = response.headers["location"]
        as_read = re.sub(r"[\t\n\r]", "", location).replace("\\", "/")
        parts = urlsplit(as_read)
        assert as_read.startswith("/") and not as_read.startswith("//"), f"{where}: {location!r}"
        assert not parts.scheme and not parts.netloc, f"{where}: {location!r}"
    return response


def get(app: Starlette, path: str, headers: dict[str, str | bytes] | None = None) -> httpx.Response:
    return sound(fetch(app, path, headers=headers)[0])


def token(value: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode()


def test_the_login_redirect_stays_on_this_site(dash: Dash) -> None:
    for path in ("//evil.example/?token=T", "/\\evil.example/?token=T", "/%2F%2Fevil.example?token=T",
                 "/%5Cevil.example?token=T", "/%09/evil.example?token=T", "/orders?token=T&next=//evil.example",
                 "/orders?next=https://evil.example&token=T", "///evil.example/orders?token=T"):
        assert get(dash.gated, path.replace("T", TOKEN)).status_code == 303, path  # sound(): a local path
    opened, later = fetch(dash.gated, f"/orders?token={TOKEN}&source=shop", "/orders?source=shop")
    assert sound(opened).headers["location"] == "/orders?source=shop" and sound(later).status_code == 200


def test_a_non_ascii_token_is_refused_not_an_error(dash: Dash) -> None:
    for path in ("/?token=k%C3%A9", "/?token=%E2%9C%93" + TOKEN, "/?token=%00", "/?token=%FF%FE",
                 f"/?token={quote(TOKEN + 'é')}"):
        assert get(dash.gated, path).status_code == 401, path
        assert get(dash.open, path).status_code == 200, path
    assert get(dash.gated, "/", headers={"Authorization": "Bearer ké".encode()}).status_code == 401


def test_an_order_id_holding_dot_dot_opens_from_the_list(dash: Dash) -> None:
    listed = get(dash.open, "/orders?source=shop").text
    links = {html.unescape(h) for h in re.findall(r'href="(/orders/shop/[^"]+)"', listed)}
    assert len(links) == len(HOSTILE_IDS) + 12
    opened = set()
    for link in links:
        page = get(dash.open, link)
        assert page.status_code == 200, link
        opened.update(i for i in HOSTILE_IDS if html.escape(i) in page.text or html.escape(i, quote=False)
                      in page.text)
    assert opened == set(HOSTILE_IDS)


def test_crafted_paging_tokens_dates_and_nul_bytes(dash: Dash) -> None:
    crafted = [token(["9999-12-31T23:59:59+00:00", "shop", "x"]), token(["0001-01-01T00:00:00", "shop", "x"]),
               token(["0001-01-01T00:00:00+14:00", "\x00", "a\x00b"]), token([1, 2, 3]), token({}), token("x"),
               token(["not a date", "a", "b"]), token(["2026-09-05", "a"]), token([None, None, None]),
               base64.urlsafe_b64encode(b"\xff\xfe[").decode(), "%%%", "=" * 9, "A" * 5000]
    paths = [f"/orders?{side}={quote(value)}" for value in crafted for side in ("after", "before")]
    paths += ["/?from=9999-12-31&to=9999-12-31", "/?from=0001-01-01", "/?to=0001-01-01", "/?to=9999-12-31",
              "/?from=0001-01-01&to=9999-12-31", "/?from=2026-09-10&to=2026-09-01", "/?from=9000-12-31",
              "/orders?from=9999-12-31", "/orders?to=0001-01-01", "/orders?from=0001-01-01&to=9999-12-31",
              "/orders?q=%00", "/orders?q=a%00b", "/orders?source=%00&status=%00", "/?from=%00&to=%00",
              "/orders?from=2026-09-01%00", "/orders/shop/a%00b", "/orders/%00/x", "/orders?lifecycle=%00",
              "/orders.csv?q=%00&lifecycle=paid%00", "/orders.csv?from=9999-12-31", "/orders?q=%25_%5C"]
    for path in paths:
        get(dash.open, path)
    assert "9000" in get(dash.open, "/orders?from=9999-12-31").text  # the refusal names the years allowed


PARAMS = ["from", "to", "q", "source", "status", "lifecycle", "after", "before", "token", "next"]
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=24)
VALUES = st.one_of(TEXT, st.sampled_from(["9999-12-31", "0001-01-01", "2026-09-05", "\x00", "//evil.example", "ké",
                                          token(["9999-12-31T23:59:59+00:00", "shop", "x"])]))


@FUZZ
@hypothesis.given(page=st.sampled_from(["/", "/orders", "/orders.csv", "/runs", "/orders/shop/"]), order_id=TEXT,
                  params=st.lists(st.tuples(st.sampled_from(PARAMS), VALUES), max_size=4), gated=st.booleans())
def test_fuzz_the_query_parameters(dash: Dash, page: str, order_id: str, params: list[tuple[str, str]],
                                   gated: bool) -> None:
    path = page + quote(order_id, safe="") if page.endswith("/") and page != "/" else page
    query = "&".join(f"{quote(k)}={quote(v, safe='')}" for k, v in params)
    if gated:
        query += f"&token={TOKEN}"
    get(dash.gated if gated else dash.open, f"{path}?{query}" if query else path)
