"""``ordersync demo``: every sandbox in-process on 127.0.0.1, synced into a local SQLite file.

The sandboxes keep their data in files beside the demo database (``.ordersync-demo/``), generated once from the
seed, so that a second demo finds the same data and shows an incremental run that has nothing new to fetch.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from ordersync import api, apis, revenue
from ordersync.apis.base import SourceSettings
from ordersync.config import Config, parse_source
from ordersync.errors import StoreError
from ordersync.progress import Reporter
from ordersync.sandbox import load_sandbox
from ordersync.sandbox.app import Sandbox, SandboxOptions
from ordersync.sandbox.runner import RunningServer, start_in_thread
from ordersync.store import Store, open_store
from ordersync.store.urls import destination_problem


def destination(db: str) -> tuple[str, Path]:
    """The demo's destination URL and the folder for the sandboxes' data: ``--db`` is a SQLite file or any URL."""
    if "://" in db:
        path = db.split(":///", 1)[1] if db.startswith(("sqlite:", "duckdb:")) and ":///" in db else ""
        return db, (Path(path).expanduser().resolve().parent if path else Path.cwd()) / ".ordersync-demo"
    file = Path(db).expanduser().resolve()
    return f"sqlite:///{file}", file.parent / ".ordersync-demo"


def _anchor(folder: Path) -> datetime:
    """The demo's "now" of generated history, fixed at its first run so that later runs see the same data."""
    marker = folder / "anchor"
    if marker.is_file():
        return datetime.fromisoformat(marker.read_text().strip())
    anchor = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    marker.write_text(anchor.isoformat())
    return anchor


@contextlib.contextmanager
def running_sandboxes(db: Path | str, orders: int, seed: int, started: dict[str, Sandbox] | None = None,
                      live: float = 0.0) -> Iterator[dict[str, SourceSettings]]:
    """Start every API's sandbox and yield the source settings that sync from them (``started`` gets the
    sandboxes themselves); ``live``: each is a shop that keeps selling, this many events per minute (``serve
    --live``)."""
    folder = destination(str(db))[1]
    folder.mkdir(parents=True, exist_ok=True)
    anchor = _anchor(folder)
    servers: list[RunningServer] = []
    sources: dict[str, SourceSettings] = {}
    try:
        for name in apis.registry():
            options = SandboxOptions(orders=orders, seed=seed, data_path=str(folder / f"{name}.sqlite"), anchor=anchor,
                                     live=live)
            sandbox = load_sandbox(name, options)
            server = start_in_thread(sandbox.app())
            servers.append(server)
            settings = sandbox.demo_settings(server.base_url)
            sources[name] = parse_source(name, settings)
            if started is not None:
                started[name] = sandbox
        yield sources
    finally:
        for server in servers:
            server.stop()


def change_some_orders(sandboxes: dict[str, Sandbox], seed: int, share: float = 0.03) -> int:
    """Change a few orders in each sandbox (paid, cancelled, refunded, ... as each API does), so that the next
    sync records a second version of them: the demo's order history. Returns how many were changed."""
    rng = random.Random(seed)
    changed = 0
    for sandbox in sandboxes.values():
        ids = sandbox.order_ids()
        for order_id in rng.sample(ids, max(1, int(len(ids) * share))) if ids else []:
            with sandbox.store.lock:
                changed += sandbox.update_order(order_id, {}) is not None
    return changed


def run_demo(db: Path | str, orders: int, seed: int, progress: Reporter,
             live: float = 0.0) -> tuple[Store, list[api.StreamResult], float]:
    """Sync every sandbox; the first time, then change a few orders and sync again (their history). ``live``:
    the sandboxes keep selling meanwhile (events per minute)."""
    url, folder = destination(str(db))
    problem = destination_problem(url)
    if problem:
        raise StoreError(f"--db {problem}")
    if not folder.parent.is_dir():  # never a folder made up from a typo
        raise StoreError(f"--db: the folder {folder.parent} does not exist; create it first, or name a file in a "
                         "folder that exists")
    store = open_store(url)
    fresh = store.count("orders") == 0
    sandboxes: dict[str, Sandbox] = {}
    with running_sandboxes(db, orders, seed, sandboxes, live=live) as sources:
        config = Config(None, url, sources)
        result = api.sync(config, progress=progress)
        streams, seconds = list(result.streams), result.seconds
        if fresh and result.ok and change_some_orders(sandboxes, seed):
            again = api.sync(config, progress=progress)
            streams += again.streams
            seconds += again.seconds
    return store, streams, seconds


def summary(store: Store) -> list[revenue.Figures]:
    """The demo's closing table: every order it synced, counted by lifecycle, and revenue, per source and currency
    (:func:`ordersync.revenue.figures`, the query behind the dashboard and ``ordersync report`` too)."""
    with store.engine.connect() as conn:
        return revenue.figures(conn, [revenue.Period("all")])
