"""The run side: :class:`OrdersyncResource` reads the configuration (and its secrets) in the run worker, syncs
what the run selected and reports it to Dagster, like dagster-dlt's ``DagsterDltResource.run``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg
import sqlalchemy as sa
from pydantic import Field

from ordersync import api, status
from ordersync.errors import OrdersyncError
from ordersync.integrations.dagster import _plan
from ordersync.integrations.dagster.translator import SOURCE_KEY, TABLE_KEY, column_schema

REJECTS_CHECK = "rejected_records"


class OrdersyncRunConfig(dg.Config):
    """What a run may change from the launchpad (``ops: sync_<source>: config:``)."""

    full_refresh: bool = Field(default=False,
                               description="read everything again instead of what changed since the cursor")


class OrdersyncResource(dg.ConfigurableResource):  # type: ignore[misc]
    """Where ordersync reads its configuration and writes, resolved when a run starts (never when the definitions
    load): ``config_path`` (an ``ordersync.toml``) or ``config`` (a dict shaped like it); ``destination``
    overrides its ``[destination] url``; ``env`` gives values to its ``${VAR}`` (use ``dg.EnvVar`` for secrets:
    Dagster reads them in the run worker and never shows them)."""

    config_path: str | None = Field(
        default=None, description="path of the ordersync.toml (default: ORDERSYNC_CONFIG or ./ordersync.toml)")
    config: dict[str, Any] | None = Field(default=None, description="the configuration as a dict, instead of a file")
    destination: str | None = Field(
        default=None, description="destination URL, instead of the file's [destination] url")
    env: dict[str, str] = Field(
        default_factory=dict, description="values of the configuration's ${VAR}, before the environment's")

    def load(self) -> api.Config:
        """The configuration with its secrets (raises ``ConfigError`` naming a missing variable)."""
        return _plan.load(self.config_path, self.config, values=self.env, destination=self.destination)

    def sync(self, context: dg.AssetExecutionContext, run_config: OrdersyncRunConfig | None = None,
             ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        """Sync the source of the ``@ordersync_assets`` being run, only the streams its selected tables need, and
        yield a materialization for each selected table (and its selected checks). A failed stream raises
        ``dg.Failure`` with ordersync's one-line message, which a retry policy may retry."""
        source, tables = _selection(context)
        try:
            cfg = self.load()
            streams = _plan.streams_writing(cfg.sources[source], tables.values())
            result = api.sync(_plan.narrowed(cfg, source, streams), [source],
                              full_refresh=bool(run_config and run_config.full_refresh)) if streams \
                else api.SyncResult([], 0.0)  # its checks alone: nothing to read
        except OrdersyncError as exc:  # the configuration or the destination: one line, no traceback to read
            raise dg.Failure(description=str(exc)) from None
        synced = {s.stream for s in result.streams if s.ok}
        written = _plan.tables_by_stream(cfg.sources[source])
        report = _Report(cfg, source, result)
        try:
            for key, table in tables.items():
                if {s for s in streams if table in written[s]} <= synced:  # every stream that writes it
                    yield dg.MaterializeResult(asset_key=key, metadata=report.table(table, written))
            for check in context.selected_asset_check_keys:
                if check.name == REJECTS_CHECK:
                    yield report.rejects_check(check)
        finally:
            report.close()
        if result.failed:
            raise dg.Failure(description="; ".join(f"{s.source}/{s.stream}: {s.error}" for s in result.failed))
        context.log.info(f"ordersync {source}: {result.rows.new:,} new, {result.rows.changed:,} changed rows, "
                         f"{result.requests:,} requests in {result.seconds:.1f}s")


def _selection(context: dg.AssetExecutionContext) -> tuple[str, dict[dg.AssetKey, str]]:
    """The source of the running multi-asset and its selected tables (from the metadata the factory set); a run
    of its checks alone selects no table."""
    specs = context.assets_def.specs_by_key
    tables = {key: _text(specs[key].metadata[TABLE_KEY]) for key in context.selected_asset_keys}
    sources = {_text(spec.metadata[SOURCE_KEY]) for spec in specs.values()}
    if len(sources) != 1:
        raise dg.Failure(description="an ordersync multi-asset syncs one source; build it with @ordersync_assets")
    return sources.pop(), tables


def _text(value: Any) -> str:
    return str(getattr(value, "value", value))


class _Report:
    """What the UI shows after a sync, read from the destination: one open connection for all of it."""

    def __init__(self, cfg: api.Config, source: str, result: api.SyncResult) -> None:
        from ordersync.store import open_store

        self.cfg, self.source, self.result = cfg, source, result
        self.store = open_store(cfg.destination, **cfg.store_options())

    def close(self) -> None:
        self.store.close()

    def table(self, table: str, written: Mapping[str, tuple[str, ...]]) -> dict[str, Any]:
        """Metadata of one table's materialization: its rows for this source, name, columns, the run's counts and
        the cursor of each stream that wrote it."""
        streams = [s for s in self.result.streams if table in written.get(s.stream, ())]
        values: dict[str, Any] = {
            "dagster/row_count": self.row_count(table),  # Dagster's table metadata keys (TableMetadataSet)
            "dagster/table_name": f"{self.cfg.schema}.{table}" if self.cfg.schema else table,
            "dagster/column_schema": column_schema(table),
            "destination": self.store.describe(),
            **_counts(table, streams),
            "records": sum(s.records for s in streams),
            "requests": sum(s.requests for s in streams),
            "seconds": dg.MetadataValue.float(round(float(sum(s.seconds for s in streams)), 3)),
            "rejected": sum(s.rejected for s in streams),
            "cursor": self.cursor([s.stream for s in streams]),
        }
        notes = [note for s in streams for note in s.notes]
        if notes:
            values["notes"] = "; ".join(notes)
        return values

    def row_count(self, table: str) -> int:
        from ordersync.store import PUBLISHED, order_versions

        t = PUBLISHED.get(table, order_versions)
        with self.store.engine.connect() as conn:
            query = sa.select(sa.func.count()).select_from(t).where(t.c.source == self.source)
            return int(conn.execute(query).scalar() or 0)

    def cursor(self, streams: list[str]) -> str:
        """Each stream's state as ``ordersync status`` words it: ``orders stream: data up to 2026-11-25 10:55
        Europe/Oslo (09:55 UTC), next sweep day 2026-10-01``."""
        settings = self.cfg.sources[self.source]
        parts = []
        for stream in streams:
            words = status.state_words(settings, self.store.load_state(self.source, stream))
            parts.append(f"{stream} stream: {words or 'nothing stored yet'}")
        return "; ".join(parts)

    def rejects_check(self, check: dg.AssetCheckKey) -> dg.AssetCheckResult:
        """Records of this source that could not be stored and were not read fine since: a warning, not a
        failure (the others were stored; fix them at the vendor or accept them)."""
        from ordersync.store import rejects

        query = sa.select(rejects.c.stream, rejects.c.reason).where(rejects.c.source == self.source)
        with self.store.engine.connect() as conn:
            found = conn.execute(query.order_by(rejects.c.stream, rejects.c.reject_key)).all()
        reasons = sorted({f"{row.stream}: {row.reason}" for row in found})
        metadata: dict[str, Any] = {"rejected records": len(found)}
        if reasons:
            metadata["reasons"] = "; ".join(reasons[:5]) + (f"; and {len(reasons) - 5} more" if len(reasons) > 5
                                                             else "")
        return dg.AssetCheckResult(asset_key=check.asset_key, check_name=check.name, passed=not found,
                                   severity=dg.AssetCheckSeverity.WARN, metadata=metadata,
                                   description=f"{len(found)} record(s) of {self.source} are in _ordersync_rejects "
                                               "(see ordersync status)" if found else "no rejected records")


def _counts(table: str, streams: list[api.StreamResult]) -> dict[str, int]:
    """The run's counts that belong to a table: its own rows for orders and customers, its orders' for the
    tables replaced with an order (order_lines, payments, order_versions)."""
    if table == "customers":
        counts = sum((s.customers for s in streams), api.Counts())
        return {"new": counts.new, "changed": counts.changed, "unchanged": counts.unchanged}
    counts = sum((s.orders for s in streams), api.Counts())
    if table == "orders":
        return {"new": counts.new, "changed": counts.changed, "unchanged": counts.unchanged}
    return {"orders new": counts.new, "orders changed": counts.changed, "orders unchanged": counts.unchanged}
