"""The command line: parses, calls, prints. No logic of its own.

Every import beyond typer and rich happens inside the command that needs it, so ``ordersync --help`` stays fast
and ``ordersync sync`` never loads a sandbox (Starlette, Faker, uvicorn).
"""

from __future__ import annotations

import logging
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ordersync.errors import OrdersyncError

if TYPE_CHECKING:
    from ordersync.sync import StreamResult

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Download orders and customers from Frontcore, e-guma, Firespring and Prio into one database.")
out = Console(width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True)
state = {"verbose": False}

ConfigOption = Annotated[str | None, typer.Option("--config", help="configuration file (default ./ordersync.toml "
                                                                   "or $ORDERSYNC_CONFIG)")]


@app.callback()
def _main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="tracebacks and debug logs")] = False) -> None:
    state["verbose"] = verbose
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(name)s: %(message)s")


EXIT_REJECTED = 3
"""``ordersync sync``'s exit status when every source synced but some records were rejected."""


def fail(message: str, code: int = 1) -> typer.Exit:
    from ordersync.store.urls import redact  # a destination URL's password never reaches the terminal

    err.print(f"[red]error:[/red] {escape(redact(message))}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def fewer_collections() -> None:
    """Tune the garbage collector for a sync: pages bring hundreds of thousands of short-lived objects (parsed JSON,
    rows), which made Python's cyclic collector walk every object imported or kept, again and again (about a
    fifth of a sync's CPU). Freeze what exists at start, and collect the young generation less often; peak
    memory stays the same (a sync's objects hold no reference cycles to speak of)."""
    import gc

    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


def report_failures(results: list[StreamResult]) -> bool:
    for r in results:
        for note in r.notes:
            err.print(f"[yellow]note:[/yellow] {escape(f'{r.source}/{r.stream}: {note}')}", highlight=False,
                      soft_wrap=True)
    failed = [r for r in results if not r.ok]
    for r in failed:
        if state["verbose"] and r.exception is not None:
            traceback.print_exception(r.exception, file=sys.stderr)
        err.print(f"[red]error:[/red] {escape(f'{r.source}/{r.stream}: {r.error}')}", highlight=False, soft_wrap=True)
    return not failed


def print_results(results: list[StreamResult], seconds: float) -> None:
    table = Table(title=f"ordersync: {len(results)} stream(s) in {seconds:.1f}s", title_justify="left")
    numbers = ("new", "changed", "unchanged", "customers new/changed", "rejected", "requests", "seconds")
    for column in ("source", "stream", *numbers, "result"):
        table.add_column(column, justify="right" if column in numbers else "left")
    for r in results:
        main = r.orders if r.stream == "orders" else r.customers
        side = f"{r.customers.new:,}/{r.customers.changed:,}" if r.stream == "orders" and r.customers.new + \
            r.customers.changed + r.customers.unchanged else "-"
        table.add_row(escape(r.source), r.stream, f"{main.new:,}", f"{main.changed:,}", f"{main.unchanged:,}", side,
                      f"{r.rejected:,}" if r.rejected else "-", f"{r.requests:,}", f"{r.seconds:.1f}",
                      "ok" if r.ok else "[red]failed[/red]")
    out.print(table)
    changed = sum(r.orders.new + r.orders.changed + r.customers.new + r.customers.changed for r in results)
    if all(r.ok for r in results) and changed == 0:
        out.print("Nothing new since the last run.")


@app.command()
def demo(
    orders: Annotated[int, typer.Option(help="orders per sandbox", min=1)] = 2000,
    db: Annotated[str, typer.Option(help="SQLite file, or any destination URL (postgresql://..., duckdb:///...)"
                                    )] = "ordersync-demo.db",
    seed: Annotated[int, typer.Option(help="seed of the generated data")] = 7,
) -> None:
    """Start every sandbox on 127.0.0.1 and sync all of them into a local SQLite file (or --db URL). Offline."""
    from ordersync.demo import run_demo
    from ordersync.progress import reporter

    progress = reporter(err)
    try:
        store, results, seconds = run_demo(db, orders, seed, progress)
    except OrdersyncError as exc:
        raise fail(str(exc)) from None
    finally:
        progress.close()
    print_results(results, seconds)
    totals = Table(title=escape(store.describe()), title_justify="left")
    for column in ("source", "api", "currency", "orders", "total"):
        totals.add_column(column, justify="right" if column in ("orders", "total") else "left")
    for row in store.totals():
        total = (row["total_minor"] or 0) / 100
        totals.add_row(row["source"], row["api"], row["currency"] or "-", f"{row['orders']:,}", f"{total:,.2f}")
    out.print(totals)
    out.print(f"order lines: {store.count('order_lines'):,}  customers: {store.count('customers'):,}  "
              f"payments: {store.count('payments'):,}")
    if not report_failures(results):
        raise typer.Exit(1)


@app.command()
def init(path: Annotated[Path, typer.Argument(help="where to write the template")] = Path("ordersync.toml")) -> None:
    """Write a commented ordersync.toml template."""
    from ordersync import config

    if path.exists():
        raise fail(f"{path} exists already; remove it or name another file")
    path.write_text(config.template(), encoding="utf-8")
    out.print(f"wrote {path}: fill in your sources, export their keys, then run 'ordersync sync'")


@app.command()
def sync(
    sources: Annotated[list[str] | None, typer.Argument(help="sources to sync (default: all)")] = None,
    config_path: ConfigOption = None,
    full_refresh: Annotated[bool, typer.Option("--full-refresh", help="read everything again")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress output")] = False,
) -> None:
    """Incremental sync of the named sources (all when none are named)."""
    import asyncio

    from ordersync import config
    from ordersync.progress import reporter
    from ordersync.store import Store
    from ordersync.sync import sync_all

    try:
        cfg = config.load(config_path)
        chosen = cfg.sources
        if sources:
            unknown = [s for s in sources if s not in cfg.sources]
            if unknown:
                raise fail(f"unknown source(s) {', '.join(unknown)}; configured: {', '.join(cfg.sources)}")
            chosen = {name: cfg.sources[name] for name in sources}
        from ordersync.store import LockBusy

        store = Store(cfg.destination, **cfg.store_options())
        busy: list[str] = []
        locked: list[str] = []
        try:
            for name in chosen:  # one sync per source at a time, across processes and machines
                try:
                    store.lock(name)
                    locked.append(name)
                except LockBusy as exc:
                    busy.append(str(exc))
            progress = reporter(err, quiet)
            started = time.monotonic()
            try:
                runnable = {name: chosen[name] for name in locked}
                fewer_collections()
                results = asyncio.run(sync_all(store, runnable, full_refresh=full_refresh, progress=progress))
            finally:
                progress.close()
        finally:
            store.close()
    except OrdersyncError as exc:
        raise fail(str(exc)) from None
    if results:
        print_results(results, time.monotonic() - started)
    ok = report_failures(results)
    for line in busy:
        err.print(f"[red]error:[/red] {escape(line)}", highlight=False, soft_wrap=True)
    if busy or not ok:
        raise typer.Exit(1)
    rejected = sum(r.rejected for r in results)
    if rejected:  # everything else is stored; a scheduler should still notice
        err.print(f"[yellow]warning:[/yellow] {rejected:,} record(s) could not be stored and were rejected: see "
                  "'ordersync status' and the _ordersync_rejects table", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_REJECTED)


@app.command()
def status(config_path: ConfigOption = None) -> None:
    """Per source and stream: last run, cursor, row counts, last error."""
    from ordersync import config
    from ordersync.status import describe
    from ordersync.store import Store

    try:
        cfg = config.load(config_path)
        store = Store(cfg.destination, **cfg.store_options(), create=False)
        try:
            rows = store.status()
        finally:
            store.close()
    except OrdersyncError as exc:
        raise fail(str(exc)) from None
    from ordersync.store.urls import redact

    table = Table()
    for column in ("source", "stream", "last run", "result", "cursor", "orders", "lines", "customers", "payments",
                   "rejected", "last error"):
        table.add_column(column)
    for row in rows:
        cursor = describe(cfg.sources.get(row["source"]), row["stream"], row["state"])
        counts = row["rows"]
        table.add_row(row["source"], row["stream"], f"{row['last_run']:%Y-%m-%d %H:%M:%S}Z" if row["last_run"] else "-",
                      row["last_status"] or "-", escape(", ".join(f"{k}={v}" for k, v in cursor.items()) or "-"),
                      str(counts["orders"]), str(counts["order_lines"]), str(counts["customers"]),
                      str(counts["payments"]), str(row["rejected"]), escape(redact(row["last_error"] or "")))
    out.print(table if rows else "No sync has run yet.")


@app.command()
def export(
    table: Annotated[str, typer.Argument(help="orders, order_lines, customers or payments")],
    fmt: Annotated[str, typer.Option("--format", help="csv, jsonl or parquet")] = "csv",
    out_path: Annotated[Path | None, typer.Option("--out", help="file to write (default: standard output)")] = None,
    source: Annotated[str | None, typer.Option(help="only this source")] = None,
    config_path: ConfigOption = None,
    db: Annotated[str | None, typer.Option(help="a SQLite file or a destination URL instead of the configured "
                                                "destination")] = None,
) -> None:
    """Write one published table to a file, from any destination."""
    from ordersync import config
    from ordersync.export import export as run_export
    from ordersync.store import Store

    try:
        if db:
            url, options = (db if "://" in db else f"sqlite:///{Path(db).expanduser().resolve()}"), {}
        else:
            cfg = config.load(config_path)
            url, options = cfg.destination, cfg.store_options()
        store = Store(url, **options, create=False)  # a missing file is an error, never a new empty database
        try:
            count = run_export(store, table, fmt, out_path, source)
        finally:
            store.close()
    except OrdersyncError as exc:
        raise fail(str(exc)) from None
    if out_path:
        err.print(f"wrote {count:,} rows of {table} to {out_path}")


@app.command()
def serve(
    api: Annotated[str, typer.Argument(help="frontcore, eguma, firespring or prio")],
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    orders: Annotated[int, typer.Option(help="orders to generate", min=0)] = 2000,
    seed: Annotated[int, typer.Option(help="seed of the generated data")] = 1,
    api_key: Annotated[str, typer.Option(help="the key clients must present")] = "sandbox-key",
    faults: Annotated[str | None, typer.Option(help="fault injection, e.g. '429:0.1,500:0.05,latency:20'")] = None,
    data: Annotated[str, typer.Option(help="SQLite file for the data (default: in memory)")] = ":memory:",
    option: Annotated[list[str] | None, typer.Option("--option", "-o", help="API-specific NAME=VALUE")] = None,
    anchor: Annotated[str | None, typer.Option(help="end of the generated history, YYYY-MM-DD (default: the one "
                                                    "kept in --data, else today)")] = None,
    rate_limit: Annotated[bool, typer.Option(help="enforce the vendor's documented rate limit "
                                                  "(--no-rate-limit lifts it, for benchmarks)")] = True,
) -> None:
    """Run one sandbox until interrupted."""
    from ordersync import apis
    from ordersync.sandbox.app import SandboxOptions
    from ordersync.sandbox.runner import serve_forever

    if api not in apis.registry():
        raise fail(f"unknown API '{api}'; use one of: {', '.join(apis.registry())}")
    extra: dict[str, str] = {}
    for item in option or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise fail(f"--option {item!r} must look like NAME=VALUE")
        extra[name] = value
    try:
        moment = datetime.fromisoformat(anchor) if anchor else None
    except ValueError:
        raise fail(f"--anchor {anchor!r} is not a date; use YYYY-MM-DD (or an ISO 8601 date-time)") from None
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        sandbox = apis.get(api).load_sandbox(SandboxOptions(orders=orders, seed=seed, api_key=api_key, faults=faults,
                                                            data_path=data, extra=extra, anchor=moment,
                                                            rate_limit=rate_limit))
    except ValueError as exc:
        raise fail(str(exc)) from None
    err.print(f"{sandbox.title} sandbox: {orders:,} orders (seed {seed}) on http://{host}:{port}  "
              f"OpenAPI: http://{host}:{port}/openapi.json", highlight=False)
    serve_forever(sandbox.app(), host, port)


def main() -> None:
    app()

