"""The engine: for each stream, pages from the API client -> normalized rows -> one transaction per page.

The engine knows nothing about any API: the client decides what to ask (and how to resume from the stored
state); the engine stores each page with the state that covers it, keeps the run log and counts what changed.
Sources run concurrently; a failing source does not stop the others.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field

import httpx

from ordersync import apis
from ordersync.apis.base import SourceSettings
from ordersync.errors import OrdersyncError
from ordersync.progress import Reporter, Silent
from ordersync.store import Store, WriteResult


@dataclass
class StreamResult:
    source: str
    stream: str
    orders: WriteResult = field(default_factory=WriteResult)
    customers: WriteResult = field(default_factory=WriteResult)
    records: int = 0
    requests: int = 0
    seconds: float = 0.0
    error: str | None = None
    exception: BaseException | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.error is None

    def summary(self) -> str:
        if self.error:
            return f"failed: {self.error}"
        parts = []
        for name, result in (("orders", self.orders), ("customers", self.customers)):
            if result.new or result.changed or result.unchanged:
                parts.append(f"{result.new:,} new, {result.changed:,} changed, {result.unchanged:,} unchanged {name}")
        what = "; ".join(parts) if parts else "nothing new"
        return f"{what} ({self.requests:,} requests, {self.seconds:.1f}s)"


async def sync_source(
    store: Store,
    source: str,
    settings: SourceSettings,
    *,
    full_refresh: bool = False,
    progress: Reporter | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    stop: threading.Event | None = None,
) -> list[StreamResult]:
    """Sync every configured stream of one source; errors end up in the results, never raised.

    When ``stop`` is set, the running stream ends after its committed page (run logged "interrupted") and no
    other stream starts."""
    progress = progress or Silent()
    spec = apis.get(settings.type)
    client = spec.client(source, settings, transport)
    streams = list(getattr(settings, "streams", client.streams))
    results: list[StreamResult] = []
    try:
        for stream in streams:
            if stop is not None and stop.is_set():
                break
            result = StreamResult(source, stream)
            results.append(result)
            await _sync_stream(store, client, spec.name, stream, full_refresh, progress, result, stop)
            if not result.ok:
                break
    finally:
        await client.aclose()
    return results


async def _sync_stream(store: Store, client: apis.base.SourceClient, api: str, stream: str, full_refresh: bool,
                       progress: Reporter, result: StreamResult, stop: threading.Event | None = None) -> None:
    source = result.source
    started = time.monotonic()
    requests_before = client.http.requests_sent
    run_id = await asyncio.to_thread(store.start_run, source, stream)
    progress.started(source, stream)
    status = "interrupted"
    try:
        state = None if full_refresh else await asyncio.to_thread(store.load_state, source, stream)
        async for page in client.read(stream, state, full_refresh):
            rows = client.normalize(stream, page.records)
            written = await asyncio.to_thread(store.write_page, source, api, stream, rows, page.state)
            result.orders.add(written["orders"])
            result.customers.add(written["customers"])
            result.records += len(page.records)
            progress.advanced(source, stream, len(page.records))
            if stop is not None and stop.is_set():
                break
        else:
            status = "ok"
    except OrdersyncError as exc:
        status, result.error = "failed", client.http.redact(str(exc))
    except Exception as exc:  # a bug: record it (without secrets); --verbose shows the traceback
        status, result.error = "failed", client.http.redact(f"internal error {type(exc).__name__}: {exc}")
        result.exception = exc
    finally:
        result.seconds = time.monotonic() - started
        result.requests = client.http.requests_sent - requests_before
        total = WriteResult()
        total.add(result.orders)
        total.add(result.customers)
        await asyncio.to_thread(store.finish_run, run_id, status, total, result.requests, result.error)
        progress.finished(source, stream, result.summary())


async def sync_all(
    store: Store,
    sources: dict[str, SourceSettings],
    *,
    full_refresh: bool = False,
    progress: Reporter | None = None,
    stop: threading.Event | None = None,
) -> list[StreamResult]:
    tasks = [sync_source(store, name, s, full_refresh=full_refresh, progress=progress, stop=stop)
             for name, s in sources.items()]
    results: list[StreamResult] = []
    for source_results in await asyncio.gather(*tasks):
        results.extend(source_results)
    return results
