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


def demo_folder(db: Path) -> Path:
    return db.expanduser().resolve().parent / ".ordersync-demo"


def _anchor(folder: Path) -> datetime:
    """The demo's "now" of generated history, fixed at its first run so that later runs see the same data."""
    marker = folder / "anchor"
    if marker.is_file():
        return datetime.fromisoformat(marker.read_text().strip())
    anchor = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    marker.write_text(anchor.isoformat())
    return anchor


@contextlib.contextmanager
def running_sandboxes(db: Path, orders: int, seed: int) -> Iterator[dict[str, SourceSettings]]:
    """Start every API's sandbox and yield the source settings that sync from them."""
    folder = demo_folder(db)
    folder.mkdir(parents=True, exist_ok=True)
    anchor = _anchor(folder)
    servers: list[RunningServer] = []
    sources: dict[str, SourceSettings] = {}
    try:
        for name, spec in apis.registry().items():
            options = SandboxOptions(orders=orders, seed=seed, data_path=str(folder / f"{name}.sqlite"), anchor=anchor)
            sandbox = spec.sandbox(options)
            server = start_in_thread(sandbox.app())
            servers.append(server)
            settings = sandbox.demo_settings(server.base_url)
            sources[name] = parse_source(name, settings)
        yield sources
    finally:
        for server in servers:
            server.stop()


def run_demo(db: Path, orders: int, seed: int, progress: Reporter) -> tuple[Store, list[api.StreamResult], float]:
    db.expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{db}"
    store = Store(url)
    with running_sandboxes(db, orders, seed) as sources:
        result = api.sync(Config(None, url, sources), progress=progress)
    return store, result.streams, result.seconds
