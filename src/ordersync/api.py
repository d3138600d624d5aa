"""The public Python API: the command line, the Dagster integration, Airflow tasks and Prefect flows all call it.

    from ordersync import api

    result = api.sync("ordersync.toml", ["shop"]).raise_for_errors()
    for stream in result.streams:
        print(stream.source, stream.stream, stream.orders.new, stream.requests)

Nothing here prints or exits. A bad configuration raises :class:`~ordersync.errors.ConfigError`, an unusable
destination :class:`~ordersync.errors.StoreError` (both :class:`~ordersync.errors.OrdersyncError`); a source that
fails does not stop the others and is reported in its :class:`StreamResult` (``error``), and
:meth:`SyncResult.raise_for_errors` turns failures into one :class:`~ordersync.errors.SyncError`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ordersync import config as _config
from ordersync.apis.base import SourceSettings
from ordersync.config import Config
from ordersync.errors import ConfigError, StoreError, SyncError
from ordersync.schedule import interval_seconds

if TYPE_CHECKING:
    from ordersync import sync as _engine
    from ordersync.progress import Reporter
    from ordersync.store import Store

__all__ = ["Config", "Counts", "StreamResult", "SyncResult", "Tick", "WatchSummary", "load_config", "select", "status",
           "sync", "sync_async", "watch"]

ConfigLike = Config | str | Path | Mapping[str, Any] | None
"""A :class:`Config`, a path to an ``ordersync.toml``, a dict shaped like that file, or None (the default file)."""

T = TypeVar("T")


@dataclass(frozen=True)
class Counts:
    """Rows of one kind a sync wrote: new ones, changed ones, and ones read again unchanged."""

    new: int = 0
    changed: int = 0
    unchanged: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.new + other.new, self.changed + other.changed, self.unchanged + other.unchanged)


@dataclass(frozen=True)
class StreamResult:
    """What one stream of one source did in one sync. ``error`` is the one-line message when it failed."""

    source: str
    stream: str
    orders: Counts = Counts()
    customers: Counts = Counts()
    records: int = 0
    requests: int = 0
    seconds: float = 0.0
    error: str | None = None
    exception: BaseException | None = field(default=None, repr=False, compare=False)  # for tracebacks only
    notes: tuple[str, ...] = ()  # what the user should know although nothing failed (e.g. the filters changed)
    interrupted: bool = False  # stopped on request after a committed page
    rejected: int = 0  # records that could not be stored (kept in _ordersync_rejects); the others were

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def rows(self) -> Counts:
        """Orders and customers together."""
        return self.orders + self.customers


@dataclass(frozen=True)
class SyncResult:
    """Every stream of one sync, in configuration order, and how long the whole sync took."""

    streams: list[StreamResult]
    seconds: float
    outstanding_rejects: int = 0  # records of the synced sources in _ordersync_rejects (this run's and earlier)

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.streams)

    @property
    def failed(self) -> list[StreamResult]:
        return [s for s in self.streams if not s.ok]

    @property
    def orders(self) -> Counts:
        return sum((s.orders for s in self.streams), Counts())

    @property
    def customers(self) -> Counts:
        return sum((s.customers for s in self.streams), Counts())

    @property
    def rows(self) -> Counts:
        """Orders and customers together."""
        return self.orders + self.customers

    @property
    def requests(self) -> int:
        return sum(s.requests for s in self.streams)

    def of(self, source: str) -> list[StreamResult]:
        """The streams of one source."""
        return [s for s in self.streams if s.source == source]

    def raise_for_errors(self) -> SyncResult:
        """Raise :class:`~ordersync.errors.SyncError` naming every failed stream; return self when all went well."""
        if self.failed:
            raise SyncError("; ".join(f"{s.source}/{s.stream}: {s.error}" for s in self.failed), self)
        return self


def load_config(source: ConfigLike = None) -> Config:
    """Read and validate a configuration: from a file (None: ``./ordersync.toml`` or ``$ORDERSYNC_CONFIG``) or
    from a dict shaped like the file (``{"destination": {"url": ...}, "sources": {"shop": {...}}}``).
    ``${VAR}`` values are read from the environment. Raises :class:`~ordersync.errors.ConfigError`."""
    if isinstance(source, Config):
        return source
    if isinstance(source, Mapping):
        return _config.parse(dict(source))
    return _config.load(str(source) if source is not None else None)


def status(config: ConfigLike = None) -> dict[str, Any]:
    """What ``ordersync status --json`` prints, as a dict: every source and stream of the configured destination
    (last success, last run, how far the data reaches, rows, rejects, the next sweep day, ``healthy``), in the
    versioned shape of :class:`ordersync.status_model.StatusReport` (docs/operations.md, "Monitoring: status
    --json"). Read-only: needs no API key, and creates, upgrades and locks nothing. Raises
    :class:`~ordersync.errors.ConfigError` or :class:`~ordersync.errors.StoreError`."""
    from ordersync.status import collect

    if isinstance(config, Config):
        cfg = config
    elif isinstance(config, Mapping):
        cfg = _config.parse(dict(config), secrets=False)
    else:
        cfg = _config.load(str(config) if config is not None else None, secrets=False)
    return collect(cfg).model_dump(mode="json")


def select(config: Config, sources: Iterable[str] | None = None) -> dict[str, SourceSettings]:
    """The named sources of a configuration (all when None or empty), or a ConfigError naming the unknown ones."""
    names = list(sources or [])
    if not names:
        return dict(config.sources)
    unknown = [s for s in names if s not in config.sources]
    if unknown:
        raise ConfigError(f"unknown source(s) {', '.join(unknown)}; configured: {', '.join(config.sources)}")
    return {name: config.sources[name] for name in names}


async def sync_async(
    config: ConfigLike = None,
    sources: Iterable[str] | None = None,
    *,
    full_refresh: bool = False,
    progress: Reporter | None = None,
    stop: threading.Event | None = None,
) -> SyncResult:
    """:func:`sync` for callers that already run an event loop (async Prefect flows, notebooks)."""
    from ordersync.store import open_store

    cfg = load_config(config)
    chosen = select(cfg, sources)
    store = open_store(cfg.destination, **cfg.store_options())
    try:
        store.start_writer()  # pages are written by a second process where the database allows it: both cores work
        return await _sync_into(store, chosen, full_refresh=full_refresh, progress=progress, stop=stop)
    finally:
        store.close()


def sync(
    config: ConfigLike = None,
    sources: Iterable[str] | None = None,
    *,
    full_refresh: bool = False,
    progress: Reporter | None = None,
    stop: threading.Event | None = None,
) -> SyncResult:
    """Sync the named sources (all when None) of a configuration into its destination, incrementally.

    Sources run concurrently; one that fails does not stop the others, and its streams carry the error.
    ``stop``: when set (from a signal handler, another thread), each running stream ends once the pages being
    written (at most three) are committed, and nothing more starts. ``progress`` receives start/advance/finish
    events (see ``ordersync.progress``).
    """
    return _run(sync_async(config, sources, full_refresh=full_refresh, progress=progress, stop=stop))


@dataclass(frozen=True)
class Tick:
    """One round of :func:`watch`: its number (from 1), when it started, what it synced, which sources wait out a
    backoff after failing (source -> rounds until they are tried again), when the next round starts, and the
    error that failed the round as a whole (the destination could not be written), if any."""

    number: int
    started_at: datetime
    result: SyncResult
    backoff: dict[str, int]
    next_at: datetime | None
    error: str | None = None


@dataclass(frozen=True)
class WatchSummary:
    """What a whole :func:`watch` did, from its first round to its last: the rounds it ran, the orders and
    customers they wrote, their requests, how long the watch ran, and per source the number of rounds it failed
    in (``failed_rounds``); rounds whose destination could not be written count in ``destination_failures``."""

    rounds: int = 0
    orders: Counts = Counts()
    customers: Counts = Counts()
    requests: int = 0
    seconds: float = 0.0
    failed_rounds: dict[str, int] = field(default_factory=dict)
    destination_failures: int = 0

    def add(self, tick: Tick) -> WatchSummary:
        """This summary and one more round."""
        failed = dict(self.failed_rounds)
        for source in sorted({s.source for s in tick.result.failed}):
            failed[source] = failed.get(source, 0) + 1
        return replace(self, rounds=self.rounds + 1, orders=self.orders + tick.result.orders,
                       customers=self.customers + tick.result.customers,
                       requests=self.requests + tick.result.requests, failed_rounds=failed,
                       destination_failures=self.destination_failures + (tick.error is not None))


def watch(
    config: ConfigLike = None,
    sources: Iterable[str] | None = None,
    *,
    every: float | str,
    stop: threading.Event,
    on_tick: Callable[[Tick], None] | None = None,
    progress: Callable[[], Reporter] | None = None,
    max_backoff: float = 3600.0,
    rounds: int | None = None,
) -> WatchSummary:
    """Sync, wait, sync again, until ``stop`` is set (then the running page commits and this returns) or, when
    ``rounds`` is given, until that many rounds have run. Returns what the whole watch did (:class:`WatchSummary`).

    A round starts every ``every`` (seconds, or an interval such as ``"5m"``) from the start of the previous one,
    at once when a round took longer. A source that failed is tried again at the next round, then after 2, 4, ...
    rounds (at most ``max_backoff`` seconds) while it keeps failing; the others go on. A round whose destination
    cannot be written counts as a failure of each of its sources. ``on_tick`` receives each round's :class:`Tick`;
    ``progress`` makes a fresh reporter per round.
    """
    from ordersync.store import open_store

    seconds = float(interval_seconds(every)) if isinstance(every, str) else float(every)
    if seconds < 0:
        raise ConfigError(f"the watch interval must not be negative (got {every})")
    if rounds is not None and rounds < 1:
        raise ConfigError(f"a watch runs at least one round (got rounds={rounds})")
    cfg = load_config(config)
    chosen = select(cfg, sources)
    longest = max(1, int(max_backoff // seconds) if seconds else 64)
    failures: dict[str, int] = {}
    due = dict.fromkeys(chosen, 1)  # source -> first round it runs in
    store = open_store(cfg.destination, **cfg.store_options())
    number, summary, began = 0, WatchSummary(), time.monotonic()
    try:
        next_start = time.monotonic()
        while not stop.is_set() and (rounds is None or number < rounds):
            number += 1
            started_at = datetime.now(UTC)
            running = {name: settings for name, settings in chosen.items() if due[name] <= number}
            reporter = progress() if progress else None
            error = None
            try:
                store.start_writer()  # a new writer process if the last one died (an OOM kill): the watch heals
                result = _run(_sync_into(store, running, progress=reporter, stop=stop))
            except StoreError as exc:  # the destination is down: every source of the round waits, the watch goes on
                result, error = SyncResult([], 0.0), str(exc)
            finally:
                if reporter:
                    reporter.close()
            for name in running:
                if error is None and all(s.ok for s in result.of(name)):
                    failures.pop(name, None)
                    due[name] = number + 1
                else:
                    failures[name] = failures.get(name, 0) + 1
                    due[name] = number + min(2 ** (failures[name] - 1), longest)
            next_start = max(next_start + seconds, time.monotonic())
            interrupted = stop.is_set() or number == rounds  # the last round: no next one to announce
            wait = max(0.0, next_start - time.monotonic())
            next_at = None if interrupted else datetime.now(UTC) + timedelta(seconds=wait)
            tick = Tick(number, started_at, result, {n: due[n] - number for n in failures}, next_at, error)
            summary = summary.add(tick)
            if on_tick:
                on_tick(tick)
            if not interrupted:
                stop.wait(max(0.0, next_start - time.monotonic()))
    finally:
        store.close()
    return replace(summary, seconds=time.monotonic() - began)


async def _sync_into(store: Store, sources: dict[str, SourceSettings], *, full_refresh: bool = False,
                     progress: Reporter | None = None, stop: threading.Event | None = None) -> SyncResult:
    """Sync ``sources`` while holding each one's lock: a source that another process is syncing is reported as
    failed (with the holder) after ``lock_wait`` seconds, and the others go on."""
    from ordersync.store import LockBusy
    from ordersync.sync import sync_all

    started = time.monotonic()
    busy: list[StreamResult] = []
    locked: dict[str, SourceSettings] = {}

    async def take(name: str) -> None:  # all at once: a busy source's wait does not delay the others' locks
        try:
            await asyncio.to_thread(store.lock, name)
            locked[name] = sources[name]
        except LockBusy as exc:
            busy.append(StreamResult(name, "-", error=str(exc)))

    try:
        failures = [e for e in await asyncio.gather(*(take(name) for name in sources), return_exceptions=True) if e]
        if failures:  # every take has ended, so the locks taken are all in ``locked`` for the release below
            raise failures[0]
        locked = {name: sources[name] for name in sources if name in locked}  # configuration order
        results = await sync_all(store, locked, full_refresh=full_refresh, progress=progress, stop=stop)
        try:
            outstanding = await asyncio.to_thread(store.outstanding_rejects, list(locked))
        except StoreError:  # the database failed the run too: its results say so, in one line each
            outstanding = 0
    finally:
        for name in locked:
            store.unlock(name)
    return SyncResult([_public(r) for r in results] + busy, time.monotonic() - started, outstanding)


def _public(r: _engine.StreamResult) -> StreamResult:
    return StreamResult(r.source, r.stream, Counts(r.orders.new, r.orders.changed, r.orders.unchanged),
                        Counts(r.customers.new, r.customers.changed, r.customers.unchanged), r.records, r.requests,
                        r.seconds, r.error, r.exception, tuple(r.notes), r.interrupted, r.rejected)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to the end, also from a thread whose event loop is already running (a notebook)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
