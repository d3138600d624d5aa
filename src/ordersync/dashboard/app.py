"""The dashboard's Starlette app: server-rendered pages over a read-only engine, optionally behind a token."""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import jinja2
import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ordersync import revenue
from ordersync.dashboard import charts, db, overview
from ordersync.errors import StoreError

if TYPE_CHECKING:
    from ordersync.apis.base import SourceSettings

COOKIE = "ordersync_dashboard"
_templates = jinja2.Environment(loader=jinja2.PackageLoader("ordersync.dashboard", "templates"),
                                autoescape=True, undefined=jinja2.StrictUndefined)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


money = revenue.shown  # the template's filter: 1,250.50 in the currency's decimals, "-" for none


def when(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S") + "Z"
    return str(value)


def segment(value: Any) -> str:
    """A value as one URL path segment: ``/`` and ``.`` encoded too, so that an order id such as ``a/../b`` is not
    resolved by the browser into another path before it reaches the server."""
    return quote(str(value), safe="").replace(".", "%2E")


def same_site(path: str) -> str:
    """A path of this site to redirect to: ``//evil.example`` (or ``/\\evil.example``, which browsers read alike)
    would leave it."""
    return "/" + path.lstrip("/\\")


def same_token(given: str, token: str) -> bool:
    """A constant-time comparison that takes any text (``compare_digest`` refuses non-ASCII ``str``)."""
    return secrets.compare_digest(given.encode("utf-8", "surrogatepass"), token.encode("utf-8", "surrogatepass"))


_templates.filters.update(money=money, when=when, number=lambda n: "-" if n is None else f"{n:,}", segment=segment)


class TokenGate(BaseHTTPMiddleware):
    """Bound to another interface than loopback, every request needs the token: ``?token=`` once (then a
    cookie), or ``Authorization: Bearer``."""

    def __init__(self, app: Any, token: str) -> None:
        super().__init__(app)
        self.token = token

    async def dispatch(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        given = request.query_params.get("token")
        if given is not None and same_token(given, self.token):
            rest = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "token"])
            response = RedirectResponse(same_site(request.url.path) + (f"?{rest}" if rest else ""), status_code=303)
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="strict")
            return response
        presented = request.cookies.get(COOKIE) or request.headers.get("authorization", "").removeprefix("Bearer ")
        if presented and same_token(presented, self.token):
            return await call_next(request)
        return HTMLResponse("<h1>401</h1><p>This dashboard needs its token: open it with ?token=...</p>",
                            status_code=401)


class Dashboard:
    def __init__(self, engine: Engine, label: str, sources: Mapping[str, SourceSettings] | None = None) -> None:
        self.engine = engine
        self.label = label
        self.sources = sources or {}  # the configuration's, when started from one: each API's time zone setting

    def render(self, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        html = _templates.get_template(name).render(database=self.label, **context)
        return HTMLResponse(html, status_code=status_code)

    def home(self, request: Request) -> Response:
        params = request.query_params
        start, end = (params.get(name, "").replace("\x00", "") for name in ("from", "to"))
        with self.engine.connect() as conn:
            streams = db.stream_status(conn, self.sources)
            first, last = db.chart_range(conn, start, end)
            periods = revenue.days(first, last)
            found = revenue.figures(conn, periods, refunds=False)  # the report has them
            colors = charts.palette([*db.known_sources(conn), *(f.source for f in found)])
        return self.render("home.html", page="home", streams=streams, first=first, last=last,
                           range_errors=db.range_problems(start, end), **overview.day_charts(found, periods, colors))

    def orders(self, request: Request) -> Response:
        query = _order_query(request)
        with self.engine.connect() as conn:
            rows, next_token, prev_token = db.order_page(conn, query)
            menus = db.distinct_values(conn)
        base = query.filters()
        return self.render(
            "orders.html", page="orders", rows=rows, query=query, menus=menus,
            csv_url=f"/orders.csv?{urlencode(base)}" if base else "/orders.csv",
            next_url=f"/orders?{urlencode({**base, 'after': next_token})}" if next_token else None,
            prev_url=f"/orders?{urlencode({**base, 'before': prev_token})}" if prev_token else None,
        )

    def orders_csv(self, request: Request) -> Response:
        """Every order the list's filters find, newest first, as a CSV file (not only the page shown); a filter
        that cannot be read is a 400 saying so, never a file that ignored it."""
        query = _order_query(request)
        with self.engine.connect() as conn:
            select = db.filtered(conn, query)
        if query.errors:
            return PlainTextResponse("\n".join(query.errors) + "\n", status_code=400)
        return StreamingResponse(db.orders_csv(self.engine, select), media_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition": 'attachment; filename="orders.csv"'})

    def order(self, request: Request) -> Response:
        source, order_id = request.path_params["source"], request.path_params["order_id"]
        with self.engine.connect() as conn:
            detail = db.order_detail(conn, source, order_id)
        if detail is None:
            return self.render("missing.html", status_code=404, page="orders", source=source, order_id=order_id)
        raw = orjson.loads(detail["order"]["raw"])
        for version in detail["versions"]:
            version["changed_fields"] = {name.split(".")[0] for name in version["changes"]}
        counted = revenue.in_revenue(detail["order"]["lifecycle"], detail["order"]["is_paid"])
        return self.render("order.html", page="orders", raw=orjson.dumps(raw, option=orjson.OPT_INDENT_2).decode(),
                           in_revenue=counted, **detail)

    def runs(self, request: Request) -> Response:
        with self.engine.connect() as conn:
            recent = db.recent_runs(conn)
        labels = [f"#{r['run_id']} {r['source']}/{r['stream']}" for r in recent]
        pairs = list(zip(labels, recent, strict=True))
        durations = charts.bars(labels, [r["seconds"] or 0 for r in recent], "run duration (seconds)",
                                [f"{label}: {r['seconds'] or 0:.0f} s" for label, r in pairs])
        rows = charts.bars(labels, [r["rows"] for r in recent], "rows read per run",
                           [f"{label}: {r['rows']:,} rows" for label, r in pairs], whole=True)
        return self.render("runs.html", page="runs", runs=list(reversed(recent)), duration_chart=durations,
                           rows_chart=rows)


def _order_query(request: Request) -> db.OrderQuery:
    p = request.query_params
    return db.OrderQuery(source=p.get("source", ""), status=p.get("status", ""), q=p.get("q", ""),
                         start=p.get("from", ""), end=p.get("to", ""), after=p.get("after", ""),
                         before=p.get("before", ""), lifecycle=p.get("lifecycle", ""))


def create_app(url: str, token: str | None = None, schema: str | None = None,
               sources: Mapping[str, SourceSettings] | None = None) -> Starlette:
    """The dashboard over the database at ``url`` (PostgreSQL: in ``schema``), read-only; with ``token``, every
    request must present it. ``sources``: the configuration's, so that the status lines read each source's time
    zone setting as ``ordersync status`` does."""
    engine = db.open_readonly(url, schema)
    try:  # fail now, with one clear line, if this is not an ordersync database
        with engine.connect() as conn:
            db.latest_order_day(conn)
    except sa.exc.DBAPIError as exc:
        raise StoreError(f"cannot read {db.safe_url(url)} as an ordersync database: {exc.orig}") from None
    dash = Dashboard(engine, db.safe_url(url), sources)
    middleware = [Middleware(TokenGate, token=token)] if token else []
    routes = [
        Route("/", dash.home),
        Route("/orders", dash.orders),
        Route("/orders.csv", dash.orders_csv),
        Route("/orders/{source}/{order_id:path}", dash.order),
        Route("/runs", dash.runs),
        Mount("/static", StaticFiles(packages=[("ordersync.dashboard", "static")]), name="static"),
    ]
    return Starlette(routes=routes, middleware=middleware)

