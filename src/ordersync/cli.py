"""The command line: parses, calls, prints. No logic of its own.

Every import beyond typer and rich happens inside the command that needs it, so ``ordersync --help`` stays fast
and ``ordersync sync`` never loads a sandbox (Starlette, Faker, uvicorn).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from ordersync.errors import EXIT_FAILED, EXIT_REJECTED, EXIT_USAGE, OrdersyncError
from ordersync.shutdown import exit_quickly

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ordersync.api import Counts, StreamResult, Tick, WatchSummary
    from ordersync.revenue import Figures

class Boundary(TyperGroup):
    """The one place where a command's exception becomes what a user reads: one line naming what to check, and the
    documented exit status of its class (``ordersync.errors.EXIT_*``); the traceback only with ``-v``. Whatever a
    command forgets to catch ends here, so no input can end in a traceback."""

    def invoke(self, ctx: Any) -> Any:  # typer's own click Context (vendored: typer._click)
        try:
            return super().invoke(ctx)
        except Exception as exc:  # noqa: BLE001 - the boundary: every other exception becomes one line
            if _is_command_line_exit(exc):
                raise
            raise failed(exc) from None


def _is_command_line_exit(exc: BaseException) -> bool:
    """Whether ``exc`` is the command-line library's own (an exit, a usage error with its message, an abort):
    those end the command as the library decides (usage errors: status 2)."""
    return any(cls.__module__.split(".")[0] in ("typer", "click") for cls in type(exc).__mro__)


app = typer.Typer(cls=Boundary, add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
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


def fail(message: str, code: int = EXIT_FAILED) -> typer.Exit:
    """Print ``message`` as the one error line (never a secret, never Rich markup) and return the exit to raise."""
    from ordersync.explain import redact  # a destination URL's password never reaches the terminal

    err.print(f"[red]error:[/red] {escape(redact(message))}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def check_live(live: float) -> None:
    """``--live``: a finite rate (typer takes ``inf`` and ``nan`` as floats)."""
    if not 0 <= live < float("inf"):
        raise fail(f"--live is a number of events per minute (0: off), not {live}", EXIT_USAGE)


@contextlib.contextmanager
def extra_needed(extra: str, command: str) -> Iterator[None]:
    """The imports in this block come from the ``extra`` extra (``ordersync.extras``): one of its libraries missing is
    one line naming the extra to install (exit status 1, as for a missing destination extra), not a traceback."""
    from ordersync.extras import missing_extra

    try:
        yield
    except ImportError as exc:
        message = missing_extra(exc, extra, command)
        if message is None:
            raise
        raise fail(message, EXIT_FAILED) from None


def failed(exc: BaseException) -> typer.Exit:
    """:func:`fail` for an exception: its sentence and its class's exit status; its traceback first with ``-v``."""
    from ordersync import explain

    if state["verbose"]:
        traceback.print_exception(exc, file=sys.stderr)
    return fail(explain.line(exc), explain.status(exc))


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
    live: Annotated[float, typer.Option(help="the sandboxes keep selling while the demo syncs: orders created, "
                                             "paid, changed and cancelled, this many events per minute (0: off)",
                                        min=0)] = 0.0,
) -> None:
    """Start every sandbox on 127.0.0.1 and sync all of them into a local SQLite file (or --db URL). Offline."""
    from ordersync.progress import reporter

    with extra_needed("sandbox", "demo"):
        from ordersync.demo import run_demo, summary
        from ordersync.sandbox import registry

        registry()  # imports every vendor's sandbox now (Faker among others): a missing library is said first

    check_live(live)
    progress = reporter(err)
    try:
        store, results, seconds = run_demo(db, orders, seed, progress, live)
    except OrdersyncError as exc:
        raise failed(exc) from None
    finally:
        progress.close()
    print_results(results, seconds)
    out.print(revenue_table(f"{store.describe()}: orders by lifecycle", summary(store)))
    out.print(f"order lines: {store.count('order_lines'):,}  customers: {store.count('customers'):,}  "
              f"payments: {store.count('payments'):,}")
    if not report_failures(results):
        raise typer.Exit(1)
    from ordersync.store.urls import redact

    shown = redact(db)  # a password in --db is never printed: the user types it (or uses PGPASSWORD / .pgpass)
    out.print(f"See it in the dashboard: ordersync dashboard --db {shown}  (then open http://127.0.0.1:8050/)",
              highlight=False, soft_wrap=True)


def revenue_table(title: str, found: list[Figures]) -> Table:
    """Per source and currency: orders by lifecycle, revenue and the money paid back (docs/report.md)."""
    from ordersync.revenue import shown

    table = Table(title=escape(title), title_justify="left", caption_justify="left",
                  caption="revenue: paid orders, never cancelled ones; refunds: paid back on them (docs/report.md)")
    counts = ("orders", "pending", "paid", "part. cancelled", "cancelled")
    for column in ("source", "currency", *counts, "revenue", "refunds"):
        table.add_column(column, justify="left" if column in ("source", "currency") else "right")
    for f in found:
        table.add_row(escape(f.source), escape(f.currency or "-"),
                      *(f"{n:,}" for n in (f.orders, f.pending, f.paid, f.partially_cancelled, f.cancelled)),
                      shown(f.net_minor, f.currency), shown(f.refunds_minor, f.currency))
    return table


@app.command()
def init(path: Annotated[Path, typer.Argument(help="where to write the template")] = Path("ordersync.toml")) -> None:
    """Write a commented ordersync.toml template."""
    from ordersync.settings_docs import init_template

    if path.exists():
        raise fail(f"{path} exists already; remove it or name another file")
    if not path.parent.is_dir():
        raise fail(f"the folder {path.parent} does not exist; create it first or name another path")
    try:
        path.write_text(init_template(), encoding="utf-8")
    except OSError as exc:
        raise fail(f"{path} could not be written: {exc.strerror or exc}") from None
    out.print(f"wrote {path}: fill in your sources, export their keys, then run 'ordersync sync'")


@app.command()
def sync(
    sources: Annotated[list[str] | None, typer.Argument(help="sources to sync (default: all)")] = None,
    config_path: ConfigOption = None,
    full_refresh: Annotated[bool, typer.Option("--full-refresh", help="read everything again")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress output")] = False,
    every: Annotated[str | None, typer.Option("--every", metavar="INTERVAL",
                                              help="keep running: sync again every INTERVAL (30s, 5m, 1h) until "
                                                   "SIGTERM or Ctrl-C")] = None,
    rounds: Annotated[int | None, typer.Option("--rounds", metavar="N", min=1,
                                               help="with --every: stop after N rounds")] = None,
) -> None:
    """Incremental sync of the named sources (all when none are named)."""
    from ordersync import api
    from ordersync.progress import reporter

    if every is not None:
        watch(sources, config_path, every, quiet, full_refresh, rounds)
        return
    if rounds is not None:
        raise fail("--rounds goes with --every (a sync without --every is one round)", EXIT_USAGE)
    progress = reporter(err, quiet)
    try:
        fewer_collections()
        result = api.sync(config_path, sources, full_refresh=full_refresh, progress=progress)
    except OrdersyncError as exc:
        raise failed(exc) from None
    finally:
        progress.close()
    print_results(result.streams, result.seconds)
    if not report_failures(result.streams):
        raise typer.Exit(1)
    rejected = sum(r.rejected for r in result.streams)
    outstanding = max(result.outstanding_rejects, rejected)
    if outstanding:  # everything else is stored; a scheduler should notice on every run until they are resolved
        now = f"{rejected:,} record(s) could not be stored and were rejected; " if rejected else ""
        err.print(f"[yellow]warning:[/yellow] {now}{outstanding:,} rejected record(s) are still not stored: see "
                  "'ordersync status' and the _ordersync_rejects table (exit status 3 until they are resolved, "
                  "see docs/operations.md)", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_REJECTED)


def watch(sources: list[str] | None, config_path: str | None, every: str, quiet: bool, full_refresh: bool,
          rounds: int | None = None) -> None:
    """``sync --every``: one summary line per round on standard output; SIGTERM or Ctrl-C ends it after the
    running page is committed, with exit status 0 (a second signal quits at once), as does the end of its
    ``--rounds``. Then a closing line on standard error sums up the whole watch (standard output keeps one line
    per round, for whatever reads it)."""
    from ordersync import api, schedule
    from ordersync.progress import Bars, Reporter

    if full_refresh:
        raise fail("--full-refresh reads everything again; run it once without --every, then start watching",
                   EXIT_USAGE)
    try:
        schedule.interval_seconds(every)
    except ValueError as exc:
        raise fail(f"--every: {exc}", EXIT_USAGE) from None
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        err.print(f"{signal.Signals(signum).name}: stopping after the page being written "
                  "(send it again to quit at once)", highlight=False)

    def progress() -> Reporter:
        return Bars(err)

    def on_tick(tick: Tick) -> None:
        out.print(tick_line(tick), highlight=False, soft_wrap=True)
        report_failures(tick.result.streams)
        if tick.error:
            err.print(f"[red]error:[/red] {escape(tick.error)}", highlight=False, soft_wrap=True)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        summary = api.watch(config_path, sources, every=every, stop=stop, on_tick=on_tick, rounds=rounds,
                            progress=progress if err.is_terminal and not quiet else None)
    except OrdersyncError as exc:
        raise failed(exc) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    err.print(closing_line(summary, datetime.now(UTC)), highlight=False, soft_wrap=True)


def tick_line(tick: Tick) -> str:
    """One line per watch round: when, what it synced, what failed, when the next round starts."""
    result = tick.result
    done = len({s.source for s in result.streams})
    line = (f"{tick.started_at:%Y-%m-%d %H:%M:%S}Z round {tick.number}: {done} source(s), "
            f"{_written(result.orders, result.customers)}, {result.requests:,} requests, {result.seconds:.1f}s")
    failed = sorted({s.source for s in result.failed})
    if tick.error:
        line += "; failed: the destination (see the error)"
    elif failed:
        line += f"; failed: {', '.join(failed)}"
    if tick.backoff:
        line += "; waiting: " + ", ".join(f"{name} (retry in {n} round{'s' if n > 1 else ''})"
                                          for name, n in sorted(tick.backoff.items()))
    return line + (f"; next at {tick.next_at:%H:%M:%S}Z" if tick.next_at else "; stopped")


def closing_line(summary: WatchSummary, now: datetime) -> str:
    """The watch's last line, in the words of its round lines: how many rounds in how long, what they wrote, and
    which sources failed in how many rounds."""
    failed = [f"the destination ({_rounds(summary.destination_failures)})"] if summary.destination_failures else []
    failed += [f"{name} ({_rounds(n)})" for name, n in sorted(summary.failed_rounds.items())]
    return (f"{now:%Y-%m-%d %H:%M:%S}Z stopped after {_rounds(summary.rounds)} in {_duration(summary.seconds)}: "
            f"{_written(summary.orders, summary.customers)}, {summary.requests:,} requests; "
            + (f"failed: {', '.join(failed)}" if failed else "no failures"))


def _written(orders: Counts, customers: Counts) -> str:
    """``orders 30 new 0 changed 0 unchanged, customers 7 new 0 changed``."""
    return (f"orders {orders.new:,} new {orders.changed:,} changed {orders.unchanged:,} unchanged, "
            f"customers {customers.new:,} new {customers.changed:,} changed")


def _rounds(n: int) -> str:
    return f"{n:,} round{'' if n == 1 else 's'}"


def _duration(seconds: float) -> str:
    """``12.3s``, ``4m 05s``, ``2h 03m``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m {rest:02d}s" if minutes < 60 else f"{minutes // 60}h {minutes % 60:02d}m"


@app.command()
def status(
    config_path: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="the versioned JSON for monitoring (docs/operations.md)")]
    = False,
) -> None:
    """Per source and stream, one line: last success, how far the data reaches, rows, rejects, the next sweep day."""
    from ordersync import config
    from ordersync.status import collect, lines

    try:
        cfg = config.load(config_path, secrets=False)  # status calls no API: no key needed
        shown = collect(cfg)
    except OrdersyncError as exc:
        raise failed(exc) from None
    if as_json:
        sys.stdout.write(shown.model_dump_json(indent=2) + "\n")
        return
    for text in lines(shown):
        out.print(text, markup=False, highlight=False, soft_wrap=True)


@app.command()
def export(
    table: Annotated[str, typer.Argument(help="orders, order_lines, customers or payments")],
    fmt: Annotated[str, typer.Option("--format", help="csv, jsonl, parquet or xlsx (an Excel workbook)")] = "csv",
    out_path: Annotated[Path | None, typer.Option("--out", help="file to write (default: standard output)")] = None,
    source: Annotated[str | None, typer.Option(help="only this source")] = None,
    amounts: Annotated[str, typer.Option(help="minor: whole minor units as stored (1250 is 12.50); decimal: exact "
                                              "amounts in major units (12.50), columns named without _minor")
                       ] = "minor",
    since: Annotated[str | None, typer.Option(help="from this date or time on, included (2026-09-01, "
                                                   "2026-09-01T08:00, 2026-09-01T08:00+02:00)")] = None,
    until: Annotated[str | None, typer.Option(help="up to this date or time, not included")] = None,
    on: Annotated[str, typer.Option(help="the time --since and --until apply to: created, or updated (the last "
                                         "change); lines and payments take their order's")] = "created",
    tz: Annotated[str | None, typer.Option(help="write times in this zone with their offset (Europe/Oslo); dates "
                                                "and times without an offset in --since and --until are read in "
                                                "it (default: UTC)")] = None,
    config_path: ConfigOption = None,
    db: Annotated[str | None, typer.Option(help="a SQLite file or a destination URL instead of the configured "
                                                "destination")] = None,
    schema: SchemaOption = None,
) -> None:
    """Write one published table to a file, from any destination (docs/exports.md)."""
    from ordersync.export import ExportOptions
    from ordersync.export import export as run_export
    from ordersync.store import open_store
    from ordersync.timerange import time_range, zone

    try:
        local = zone(tz)
        chosen = ExportOptions(source, amounts, time_range(since, until, local), on, local)
        chosen.check()
    except ValueError as exc:
        raise fail(str(exc), EXIT_USAGE) from None
    try:
        url, options = _destination(db, config_path, schema)
        store = open_store(url, **options, read_only=True)  # never a new empty database, never a lock file
        try:
            count = run_export(store, table, fmt, out_path, options=chosen)
        finally:
            store.close()
    except OrdersyncError as exc:
        raise failed(exc) from None
    if out_path:
        err.print(f"wrote {count:,} rows of {table} to {out_path}")


@app.command()
def report(
    month: Annotated[str | None, typer.Option(help="the month, YYYY-MM (default: the last complete month)")] = None,
    since: Annotated[str | None, typer.Option(help="instead of --month: from this date or time on, included")] = None,
    until: Annotated[str | None, typer.Option(help="instead of --month: up to this date or time, not included")
                     ] = None,
    tz: Annotated[str | None, typer.Option(help="the zone whose days and months orders belong to (Europe/Oslo; "
                                                "default: UTC)")] = None,
    source: Annotated[str | None, typer.Option(help="only this source")] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv, or xlsx (a workbook: the summary and the orders)")
                   ] = "csv",
    out_path: Annotated[Path | None, typer.Option("--output", "--out", "-o", help="file to write (CSV: default "
                                                                                  "standard output)")] = None,
    config_path: ConfigOption = None,
    db: DbOption = None,
    schema: SchemaOption = None,
) -> None:
    """An accountant's month per source and currency: orders, cancellations, refunds, gross and net revenue
    (docs/report.md)."""
    from ordersync.report import FORMATS, ReportOptions, choose_period, write_report
    from ordersync.store import open_store
    from ordersync.timerange import zone

    try:
        if fmt not in FORMATS:
            raise ValueError(f"--format '{fmt}' is not known; use csv or xlsx")
        local = zone(tz)
        chosen = ReportOptions(choose_period(month, since, until, local), local, source)
    except ValueError as exc:
        raise fail(str(exc), EXIT_USAGE) from None
    try:
        url, options = _destination(db, config_path, schema)
        store = open_store(url, **options, read_only=True)  # never a new empty database, never a lock file
        try:
            found = write_report(store, chosen, fmt, out_path)
        finally:
            store.close()
    except OrdersyncError as exc:
        raise failed(exc) from None
    counted, sources = sum(f.orders for f in found), len({f.source for f in found})
    err.print(f"report {chosen.period.label} ({chosen.zone_name}): {counted:,} orders of {sources} source(s)"
              f"{f', written to {out_path}' if out_path else ''}", highlight=False, soft_wrap=True)


@app.command()
def serve(
    api: Annotated[str, typer.Argument(help="frontcore, eguma, firespring or prio")],
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    orders: Annotated[int | None, typer.Option(help="orders to generate (default: the --data file's, else 2000)",
                                               min=0)] = None,
    seed: Annotated[int | None, typer.Option(help="seed of the generated data (default: the --data file's, else 1)")
                    ] = None,
    api_key: Annotated[str, typer.Option(help="the key clients must present")] = "sandbox-key",
    faults: Annotated[str | None, typer.Option(help="fault injection, e.g. '429:0.1,500:0.05,latency:20'")] = None,
    data: Annotated[str, typer.Option(help="SQLite file for the data (default: in memory)")] = ":memory:",
    option: Annotated[list[str] | None, typer.Option("--option", "-o", help="API-specific NAME=VALUE")] = None,
    anchor: Annotated[str | None, typer.Option(help="end of the generated history, YYYY-MM-DD (default: the one "
                                                    "kept in --data, else today)")] = None,
    rate_limit: Annotated[bool, typer.Option(help="enforce the vendor's documented rate limit "
                                                  "(--no-rate-limit lifts it, for benchmarks)")] = True,
    live: Annotated[float, typer.Option(help="a shop that keeps selling: orders created, paid, changed and "
                                             "cancelled, this many events per minute (0: off)", min=0)] = 0.0,
) -> None:
    """Run one sandbox until interrupted."""
    with extra_needed("sandbox", "serve"):
        from ordersync.sandbox import load_sandbox, registry
        from ordersync.sandbox.app import SandboxOptions
        from ordersync.sandbox.runner import listen, serve_forever

        known = registry()  # imports every vendor's sandbox (Faker among others)
    if api not in known:
        raise fail(f"unknown API '{api}'; use one of: {', '.join(known)}", EXIT_USAGE)
    check_live(live)
    extra: dict[str, str] = {}
    for item in option or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise fail(f"--option {item!r} must look like NAME=VALUE", EXIT_USAGE)
        extra[name] = value
    try:
        moment = datetime.fromisoformat(anchor) if anchor else None
    except ValueError:
        raise fail(f"--anchor {anchor!r} is not a date; use YYYY-MM-DD (or an ISO 8601 date-time)",
                   EXIT_USAGE) from None
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        sock = listen(host, port)  # first: a port in use is said before thousands of orders are generated
    except OrdersyncError as exc:
        raise failed(exc) from None
    try:
        sandbox = load_sandbox(api, SandboxOptions(orders=orders, seed=seed, api_key=api_key, faults=faults,
                                                   data_path=data, extra=extra, anchor=moment,
                                                   rate_limit=rate_limit, live=live))
    except ValueError as exc:
        raise fail(str(exc), EXIT_USAGE) from None
    port = sock.getsockname()[1]
    err.print(f"{sandbox.title} sandbox: {sandbox.orders:,} orders (seed {sandbox.seed}) on http://{host}:{port}  "
              f"OpenAPI: http://{host}:{port}/openapi.json", highlight=False)
    err.print(sandbox_block(sandbox.demo_settings(f"http://{_url_host(host)}:{port}")), highlight=False, markup=False,
              soft_wrap=True)
    serve_forever(sandbox.app(), host, port, sock)


def _url_host(host: str) -> str:
    """``host`` as it is written in a URL: an IPv6 address in brackets; a wildcard address as loopback."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"[{host}]" if ":" in host else host


def sandbox_block(settings: dict[str, Any]) -> str:
    """The ``base_url`` a source syncs this sandbox from, and a ``[sources.*]`` section to paste (the sandbox's
    own test credentials, which it prints anyway)."""
    import json

    lines = [f"[sources.{settings['type']}]"]
    for key, value in settings.items():
        lines.append(f"{key} = {json.dumps(value) if isinstance(value, str) else value}")
    return (f"base_url to paste into a source: {settings['base_url']}\n"
            "a ready section for ordersync.toml:\n" + "\n".join(lines))


# --- order history and dashboard (issue 14) -----------------------------------------------------------------
DbOption = Annotated[str | None, typer.Option("--db", help="a SQLite file or a destination URL instead of the "
                                                          "configured destination")]


SchemaOption = Annotated[str | None, typer.Option("--schema", help="with a postgresql:// --db: the schema that "
                                                                   "holds the tables (default: public)")]


def _destination(db: Path | str | None, config_path: str | None,
                 schema: str | None = None) -> tuple[str, dict[str, Any]]:
    """The database URL and every Store option (schema, lock wait) that ``--db`` (a file or a URL, with
    ``--schema``) or the configuration's whole [destination] names. Reading needs no API key: the sources'
    secrets are not resolved here."""
    from ordersync import config
    from ordersync.store.urls import destination_problem, scheme_of

    if db is None:
        if schema is not None:
            raise fail("--schema goes with --db; with --config, set schema in [destination]", EXIT_USAGE)
        cfg = config.load(config_path, secrets=False)
        return cfg.destination, cfg.store_options()
    url = str(db) if "://" in str(db) else f"sqlite:///{Path(db).expanduser().resolve()}"
    problem = destination_problem(url)
    if problem:
        raise fail(f"--db {problem}", EXIT_USAGE)
    if schema is not None and (scheme_of(url) not in ("postgresql", "postgres") or not config.SCHEMA.match(schema)):
        raise fail("--schema takes a plain name (letters, digits, _) and goes with a postgresql:// --db", EXIT_USAGE)
    return url, {"schema": schema}


@app.command()
def history(
    source: Annotated[str, typer.Argument(help="the source's name")],
    order_id: Annotated[str, typer.Argument(help="the order's id at that source")],
    fmt: Annotated[str, typer.Option("--format", help="table or jsonl")] = "table",
    config_path: ConfigOption = None,
    db: DbOption = None,
    schema: SchemaOption = None,
) -> None:
    """Every version of one order and what changed between them."""
    from ordersync.history import render_changes, versions_jsonl, versions_of
    from ordersync.store import open_store, order_versions, orders

    if fmt not in ("table", "jsonl"):
        raise fail(f"--format: unknown format '{fmt}'; use table or jsonl", EXIT_USAGE)
    try:
        url, options = _destination(db, config_path, schema)
        store = open_store(url, **options, read_only=True)
        try:
            with store.engine.connect() as conn:
                versions = versions_of(conn, order_versions, orders, source, order_id)
        finally:
            store.close()
    except OrdersyncError as exc:
        raise failed(exc) from None
    if not versions:
        raise fail(f"no order '{order_id}' of source '{source}' in the database; check both with 'ordersync status'")
    if fmt == "jsonl":
        sys.stdout.write(versions_jsonl(versions))
        return
    table = Table(title=escape(f"{source}/{order_id}: {len(versions)} version(s)"), title_justify="left")
    for column in ("version", "valid from", "valid to", "status", "paid", "total", "changes"):
        table.add_column(column, justify="right" if column in ("version", "total") else "left",
                         no_wrap=column != "changes", ratio=1 if column == "changes" else None,
                         overflow="fold" if column == "changes" else "ellipsis")  # a long value wraps, whole
    for v in versions:
        table.add_row(str(v["version_no"]), f"{v['valid_from']:%Y-%m-%d %H:%M:%S}Z",
                      f"{v['valid_to']:%Y-%m-%d %H:%M:%S}Z" if v["valid_to"] else "current", escape(v["status"] or "-"),
                      "-" if v["is_paid"] is None else ("yes" if v["is_paid"] else "no"),
                      "-" if v["total_minor"] is None else f"{v['total_minor'] / 100:,.2f} {v['currency'] or ''}",
                      escape(render_changes(v["changes"], "\n")) if v["version_no"] > 1 else "first seen")
    out.print(table)


@app.command()
def dashboard(
    config_path: ConfigOption = None,
    db: Annotated[str | None, typer.Option("--db", help="database URL or SQLite file (default: the configured one)")]
    = None,
    host: Annotated[str, typer.Option(help="address to bind; other than loopback needs --token")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8050,
    token: Annotated[str | None, typer.Option(envvar="ORDERSYNC_DASHBOARD_TOKEN",
                                              help="required to open the page when not bound to loopback")] = None,
    schema: SchemaOption = None,
) -> None:
    """A read-only local web page: sync health, orders and revenue per day, orders, their history, runs."""
    with extra_needed("dashboard", "dashboard"):
        from ordersync.dashboard import create_app, is_loopback
        from ordersync.sandbox.runner import listen
        from ordersync.sandbox.runner import serve_forever as serve_app

    if not is_loopback(host) and not token:
        raise fail(f"binding {host} shows your orders to the network: pass --token (or set "
                   "ORDERSYNC_DASHBOARD_TOKEN), or keep the default --host 127.0.0.1")
    try:
        url, options = _destination(db, config_path, schema)
        from ordersync import config  # the sources' time zones, for the status lines (none with --db)

        sources = config.load(config_path, secrets=False).sources if db is None else None
        web = create_app(url, token=token, schema=options.get("schema"), sources=sources)
        sock = listen(host, port)
    except OrdersyncError as exc:
        raise failed(exc) from None
    port = sock.getsockname()[1]
    err.print(f"ordersync dashboard on http://{host}:{port}/ (read-only; Ctrl+C stops it)", highlight=False)
    serve_app(web, host, port, sock)
# --- end of order history and dashboard ---------------------------------------------------------------------


def main() -> None:
    try:
        app()
    finally:
        exit_quickly()

