"""``ordersync demo``: every sandbox in-process on 127.0.0.1, synced into a local SQLite file.

The sandboxes keep their data in files beside the demo database (``.ordersync-demo/``), generated once from the
seed, so that a second demo finds the same data and shows an incremental run that has nothing new to fetch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from ordersync import api, apis
from ordersync.apis.base import SourceSettings
from ordersync.config import Config, parse_source
from ordersync.progress import Reporter
from ordersync.sandbox.app import SandboxOptions
from ordersync.sandbox.runner import RunningServer, start_in_thread
from ordersync.store import Store


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
def running_sandboxes(db: Path | str, orders: int, seed: int) -> Iterator[dict[str, SourceSettings]]:
    """Start every API's sandbox and yield the source settings that sync from them."""
    folder = destination(str(db))[1]
    folder.mkdir(parents=True, exist_ok=True)
    anchor = _anchor(folder)
    servers: list[RunningServer] = []
    sources: dict[str, SourceSettings] = {}
    try:
        for name, spec in apis.registry().items():
            options = SandboxOptions(orders=orders, seed=seed, data_path=str(folder / f"{name}.sqlite"), anchor=anchor)
            sandbox = spec.load_sandbox(options)
            server = start_in_thread(sandbox.app())
            servers.append(server)
            settings = sandbox.demo_settings(server.base_url)
            sources[name] = parse_source(name, settings)
        yield sources
    finally:
        for server in servers:
            server.stop()


def run_demo(db: Path | str, orders: int, seed: int, progress: Reporter) -> tuple[Store, list[api.StreamResult], float]:
    url, folder = destination(str(db))
    folder.parent.mkdir(parents=True, exist_ok=True)
    store = Store(url)
    with running_sandboxes(db, orders, seed) as sources:
        result = api.sync(Config(None, url, sources), progress=progress)
    return store, result.streams, result.seconds
