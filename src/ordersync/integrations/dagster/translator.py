"""How an ordersync table becomes a Dagster asset: :class:`OrdersyncTranslator`, in the pattern of dagster-dlt's
``DagsterDltTranslator`` (override :meth:`OrdersyncTranslator.get_asset_spec`, or set its fields)."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
import sqlalchemy as sa

from ordersync import schedule
from ordersync.apis.base import SourceSettings
from ordersync.integrations.dagster._plan import shortest_gap, tag_value
from ordersync.store import PUBLISHED, order_versions, published_columns

_DESCRIPTIONS = {
    "orders": "Orders",
    "order_lines": "Order lines (replaced with their order)",
    "customers": "Customers",
    "payments": "Payments (replaced with their order)",
    "order_versions": "Every version of each order (one row per change ordersync saw)",
}
_TABLES: dict[str, sa.Table] = {**PUBLISHED, "order_versions": order_versions}
SOURCE_KEY = "ordersync/source"
TABLE_KEY = "ordersync/table"


@dataclass(frozen=True)
class OrdersyncTableData:
    """What the translator knows of one asset: a published table as one source writes it."""

    source: str
    table: str
    settings: SourceSettings
    streams: tuple[str, ...]  # the source's streams that write this table
    storage_kind: str | None = None  # postgresql, sqlite, duckdb: the destination's kind
    schema: str | None = None  # the PostgreSQL schema of the tables, if one is set

    @property
    def api(self) -> str:
        return self.settings.type

    @property
    def table_name(self) -> str:
        """The table's name in the destination, schema-qualified when a schema is set."""
        return f"{self.schema}.{self.table}" if self.schema else self.table


@dataclass
class OrdersyncTranslator:
    """Asset key, group, description, tags, metadata, owners and kinds of each (source, table). The defaults:
    key ``<key_prefix>/<source>/<table>``, group ``group_name``, the table's column schema and name as metadata."""

    key_prefix: tuple[str, ...] | str = "ordersync"
    group_name: str | None = "ordersync"
    owners: list[str] = field(default_factory=list)

    def get_asset_spec(self, data: OrdersyncTableData) -> dg.AssetSpec:
        """The asset of one table of one source; override to change any attribute."""
        prefix = [self.key_prefix] if isinstance(self.key_prefix, str) else list(self.key_prefix)
        metadata: dict[str, Any] = {
            "dagster/table_name": data.table_name,
            "dagster/column_schema": column_schema(data.table),
            **({"dagster/storage_kind": data.storage_kind} if data.storage_kind else {}),
            "ordersync/written by": ", ".join(f"the {s} stream" for s in data.streams),
        }
        return dg.AssetSpec(
            key=dg.AssetKey([*prefix, data.source, data.table]),
            group_name=self.group_name,
            description=f"{_DESCRIPTIONS[data.table]} of the {data.api} source '{data.source}': the rows of the "
                        f"published table {data.table_name} whose source is '{data.source}'.",
            tags={SOURCE_KEY: tag_value(data.source), TABLE_KEY: data.table},
            kinds={"ordersync", data.api, *([data.storage_kind] if data.storage_kind else [])},
            metadata=metadata,
            owners=list(self.owners),
            freshness_policy=freshness_policy(data.settings.schedule),
        )


@functools.cache  # Dagster walks a thousand ticks to build one: 10 ms, once per distinct schedule
def freshness_policy(when: str | None) -> dg.FreshnessPolicy | None:
    """A source synced on a schedule is fresh when, at each tick, its last sync ended after the previous tick
    (Dagster allows at most the shortest time between two ticks; a cron with longer gaps, such as weekdays only,
    shows stale after a long gap until that tick's run ends). Dagster evaluates it; none without a schedule."""
    if not when:
        return None
    cron = schedule.cron(when)
    return dg.FreshnessPolicy.cron(deadline_cron=cron, lower_bound_delta=shortest_gap(cron), timezone="UTC")


def column_schema(table: str) -> dg.TableSchema:
    """The published columns of a table with their types (bookkeeping columns left out), and its key."""
    t = _TABLES[table]
    key = [c.name for c in t.primary_key.columns]
    columns = [dg.TableColumn(c.name, _type_name(c.type), constraints=dg.TableColumnConstraints(
        nullable=bool(c.nullable) and not c.primary_key)) for c in published_columns(t)]
    return dg.TableSchema(columns=columns, constraints=dg.TableConstraints(other=[f"primary key ({', '.join(key)})"]))


def _type_name(type_: Any) -> str:
    """The column type as a user reads it (PostgreSQL's names; SQLite stores times as ISO text)."""
    if isinstance(type_, sa.Boolean):
        return "boolean"
    if isinstance(type_, sa.BigInteger):
        return "bigint"
    if isinstance(type_, sa.Integer):
        return "integer"
    if isinstance(type_, sa.DateTime):
        return "timestamp with time zone"
    if type(type_).__name__ == "RawJson":
        return "json"
    return "text"
