"""What is read back from a destination: a stream's stored state, the status of each source and stream, totals
for the demo's summary, counts, and the published rows streamed for an export.

Reads never take the write lock: they see the last committed pages. (The dashboard and the history command read
with engines of their own: :mod:`ordersync.dashboard.db`, :mod:`ordersync.history`.)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa

from ordersync.errors import StoreError
from ordersync.store.database import Database
from ordersync.store.rows import Row, State
from ordersync.store.tables import PUBLISHED, orders, published_columns, rejects, runs, stream_state


class Reads(Database):
    """The store's reads, through its engine."""

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
