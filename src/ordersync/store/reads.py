"""What is read back from a destination: a stream's stored state, the status of each source and stream, totals
for the demo's summary, counts, and the published rows streamed for an export.

Reads never take the write lock: they see the last committed pages. (The dashboard and the history command read
with engines of their own: :mod:`ordersync.dashboard.db`, :mod:`ordersync.history`.)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ordersync.errors import StoreError
from ordersync.store.database import Database
from ordersync.store.rows import Row, State
from ordersync.store.tables import PUBLISHED, orders, published_columns, rejects, runs, stream_state


@dataclass(frozen=True)
class StoredRun:
    """One run as ``_ordersync_runs`` logs it. ``orders`` and ``customers``: (new, changed, unchanged), or None
    for a run logged before schema 6 counted them apart."""

    status: str
    started_at: datetime
    finished_at: datetime | None
    duration_ms: int | None
    requests: int
    orders: tuple[int, int, int] | None
    customers: tuple[int, int, int] | None
    error: str | None


@dataclass(frozen=True)
class StoredStream:
    """What the destination holds of one stream of one source, for ``ordersync status``: its stored state, its
    latest run, the status of the latest run that ended, when the latest successful run ended, the rows of the
    table named as the stream (``rows_of``; None: no such table) and its rejected records."""

    source: str
    stream: str
    api: str | None
    state: State | None
    last_run: StoredRun | None
    last_ended: str | None
    last_success: datetime | None
    rows: int
    rows_of: str | None
    rejected: int


def stream_records(conn: Connection) -> list[StoredStream]:
    """Every stream any table of the destination knows of (a state, a run or a reject), read on ``conn`` (the
    store's engine, or the dashboard's read-only one): a few grouped queries, whatever the number of runs."""
    states = {(r.source, r.stream): r for r in conn.execute(sa.select(stream_state))}
    ended = sa.case((runs.c.status != "running", runs.c.run_id))
    succeeded = sa.case((runs.c.status == "ok", runs.c.run_id))
    ids = {(r.source, r.stream): r for r in conn.execute(
        sa.select(runs.c.source, runs.c.stream, sa.func.max(runs.c.run_id).label("last"),
                  sa.func.max(ended).label("ended"), sa.func.max(succeeded).label("ok"))
        .group_by(runs.c.source, runs.c.stream))}
    wanted = {i for r in ids.values() for i in (r.last, r.ended, r.ok) if i is not None}
    logged = {r.run_id: r for r in conn.execute(sa.select(runs).where(runs.c.run_id.in_(sorted(wanted))))} \
        if wanted else {}
    streams = {stream for _source, stream in {*states, *ids}}
    counts: dict[str, dict[str, int]] = {
        name: dict(conn.execute(sa.select(t.c.source, sa.func.count()).group_by(t.c.source)).all())
        for name, t in PUBLISHED.items() if name in streams}
    rejected = {(r[0], r[1]): int(r[2]) for r in conn.execute(
        sa.select(rejects.c.source, rejects.c.stream, sa.func.count()).group_by(rejects.c.source, rejects.c.stream))}
    result = []
    for source, stream in sorted({*states, *ids, *rejected}):
        state, run_ids = states.get((source, stream)), ids.get((source, stream))
        last = logged.get(run_ids.last) if run_ids else None
        ended_run = logged.get(run_ids.ended) if run_ids and run_ids.ended is not None else None
        ok_run = logged.get(run_ids.ok) if run_ids and run_ids.ok is not None else None
        result.append(StoredStream(
            source=source, stream=stream, api=state.api if state else None,
            state=orjson.loads(state.state) if state else None,
            last_run=_run(last) if last is not None else None,
            last_ended=ended_run.status if ended_run is not None else None,
            last_success=_utc(ok_run.finished_at or ok_run.started_at) if ok_run is not None else None,
            rows=int(counts.get(stream, {}).get(source, 0)), rows_of=stream if stream in PUBLISHED else None,
            rejected=rejected.get((source, stream), 0),
        ))
    return result


def _run(row: Any) -> StoredRun:
    def apart(kind: str) -> tuple[int, int, int] | None:
        values = tuple(getattr(row, f"{kind}_{n}") for n in ("new", "changed", "unchanged"))
        return None if any(v is None for v in values) else (int(values[0]), int(values[1]), int(values[2]))

    return StoredRun(status=row.status, started_at=_utc(row.started_at), finished_at=_utc(row.finished_at),
                     duration_ms=None if row.duration_ms is None else int(row.duration_ms),
                     requests=int(row.requests or 0), orders=apart("orders"), customers=apart("customers"),
                     error=row.error)


class Reads(Database):
    """The store's reads, through its engine."""

    def stream_records(self) -> list[StoredStream]:
        """Per source and stream, what ``ordersync status`` shows (:func:`stream_records`)."""
        try:
            with self.engine.connect() as conn:
                return stream_records(conn)
        except self._errors() as exc:
            raise StoreError(f"cannot read the status from {self.describe()}: {self._reason(exc)}") from None

    def load_state(self, source: str, stream: str) -> State | None:
        """The state the last committed page of ``source``'s ``stream`` left: where its next run resumes."""
        with self.engine.connect() as conn:
            raw = conn.execute(
                sa.select(stream_state.c.state).where(stream_state.c.source == source, stream_state.c.stream == stream)
            ).scalar()
        return orjson.loads(raw) if raw else None

    def status(self) -> list[dict[str, Any]]:
        """Per source and stream: the last run, the stored state, how many rows the source has, rejected records."""
        with self.engine.connect() as conn:
            states = {(r.source, r.stream): r for r in conn.execute(sa.select(stream_state))}
            last = sa.select(runs.c.source, runs.c.stream, sa.func.max(runs.c.run_id).label("run_id")).group_by(
                runs.c.source, runs.c.stream).subquery()
            last_runs = {(r.source, r.stream): r for r in conn.execute(
                sa.select(runs).join(last, runs.c.run_id == last.c.run_id))}
            counts: dict[str, dict[str, int]] = {
                name: dict(conn.execute(sa.select(t.c.source, sa.func.count()).group_by(t.c.source)).all())
                for name, t in PUBLISHED.items()
            }
            rejected = {(r[0], r[1]): int(r[2]) for r in conn.execute(
                sa.select(rejects.c.source, rejects.c.stream, sa.func.count()).group_by(rejects.c.source,
                                                                                         rejects.c.stream))}
        result = []
        for source, stream in sorted(set(states) | set(last_runs) | set(rejected)):
            state, run = states.get((source, stream)), last_runs.get((source, stream))
            result.append({
                "source": source,
                "stream": stream,
                "last_run": run.started_at if run else None,
                "last_status": run.status if run else None,
                "last_error": run.error if run else None,
                "state": orjson.loads(state.state) if state else None,
                "rows": {name: c.get(source, 0) for name, c in counts.items()},
                "rejected": rejected.get((source, stream), 0),
            })
        return result

    def outstanding_rejects(self, sources: Sequence[str]) -> int:
        """Records of ``sources`` kept in ``_ordersync_rejects``: not stored, so every sync says so (exit 3)."""
        if not sources:
            return 0
        try:
            with self.engine.connect() as conn:
                return int(conn.execute(sa.select(sa.func.count()).select_from(rejects)
                                        .where(rejects.c.source.in_(list(sources)))).scalar() or 0)
        except self._errors() as exc:
            raise StoreError(f"cannot read the rejected records in {self.describe()}: {self._reason(exc)}") from None

    def totals(self, sources: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Orders, lines, customers and the order total per source and currency, for the demo's summary."""
        query = sa.select(
            orders.c.source, orders.c.api, orders.c.currency, sa.func.count().label("orders"),
            sa.func.sum(orders.c.total_minor).label("total_minor"),
        ).group_by(orders.c.source, orders.c.api, orders.c.currency).order_by(orders.c.source, orders.c.currency)
        if sources:
            query = query.where(orders.c.source.in_(list(sources)))
        with self.engine.connect() as conn:
            return [{**r._mapping, "total_minor": None if r.total_minor is None else int(r.total_minor)}
                    for r in conn.execute(query)]

    def count(self, table: str, source: str | None = None) -> int:
        t = PUBLISHED[table]
        query = sa.select(sa.func.count()).select_from(t)
        if source:
            query = query.where(t.c.source == source)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)

    def iter_rows(self, table: str, source: str | None = None, batch: int = 5000) -> Iterator[list[Row]]:
        """The published columns of ``table`` in key order, streamed in batches (``raw`` as JSON text, times UTC)."""
        t = PUBLISHED[table]
        columns = [sa.cast(c, sa.Text).label(c.name) if c.name == "raw" else c for c in published_columns(t)]
        query = sa.select(*columns).order_by(*t.primary_key.columns)
        if source:
            query = query.where(t.c.source == source)
        with self.engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=batch).execute(query)
            while chunk := result.fetchmany(batch):
                yield [{str(k): _utc(v) for k, v in row._mapping.items()} for row in chunk]


def _utc(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value
