"""``@ordersync_assets``: one multi-asset per source, one asset per published table, in the style of
dagster-dlt's ``@dlt_assets``::

    @ordersync_assets(config="ordersync.toml", source="courses", translator=MyTranslator())
    def courses(context: dg.AssetExecutionContext, ordersync: OrdersyncResource, config: OrdersyncRunConfig):
        yield from ordersync.sync(context, config)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dagster as dg

from ordersync import api
from ordersync.errors import ConfigError
from ordersync.integrations.dagster import _plan
from ordersync.integrations.dagster.resource import REJECTS_CHECK
from ordersync.integrations.dagster.translator import (
    SOURCE_KEY,
    TABLE_KEY,
    OrdersyncTableData,
    OrdersyncTranslator,
)


def table_data(config: api.Config, source: str) -> list[OrdersyncTableData]:
    """What the translator is given for each table a source writes."""
    settings = config.sources[source]
    written = _plan.tables_by_stream(settings)
    scheme = config.destination.split("://", 1)[0].split("+", 1)[0]
    kind = {"postgres": "postgresql", "unknown": ""}.get(scheme, scheme) or None
    return [OrdersyncTableData(source, table, settings, tuple(s for s, t in written.items() if table in t), kind,
                               config.schema)
            for table in _plan.tables_of(settings)]


def build_ordersync_asset_specs(config: api.ConfigLike, source: str,
                                translator: OrdersyncTranslator | None = None) -> list[dg.AssetSpec]:
    """The asset specs of one source's tables, as the translator names them. The source and table are kept in
    metadata (``ordersync/source``, ``ordersync/table``): the run reads them to know what was selected."""
    translator = translator or OrdersyncTranslator()
    return [translator.get_asset_spec(data).merge_attributes(metadata={SOURCE_KEY: data.source,
                                                                        TABLE_KEY: data.table})
            for data in table_data(_plan.plan(config), source)]


def rejects_check_spec(specs: list[dg.AssetSpec]) -> dg.AssetCheckSpec:
    """The check of a source's rejected records, on its orders asset (else its first)."""
    orders = [s for s in specs if _meta(s, TABLE_KEY) == "orders"]
    target = (orders or specs)[0]
    return dg.AssetCheckSpec(REJECTS_CHECK, asset=target.key,
                             description="warns while records of this source wait in _ordersync_rejects (the other "
                                         "records were stored; see ordersync status)")


def ordersync_assets(*, config: api.ConfigLike, source: str, name: str | None = None,
                     translator: OrdersyncTranslator | None = None, pool: str | None = None,
                     op_tags: dict[str, Any] | None = None, retry_policy: dg.RetryPolicy | None = None,
                     ) -> Callable[[Callable[..., Any]], dg.AssetsDefinition]:
    """A multi-asset for one source of a configuration (read here without its secrets): one asset per published
    table it writes, subsettable (a run syncs only the streams its selected tables need), in the source's pool
    (so that two runs never share an account's rate limit), with the check of its rejected records. The
    decorated function receives the context and an :class:`OrdersyncResource` and yields from its ``sync``."""
    cfg = _plan.plan(config)
    if source not in cfg.sources:
        raise ConfigError(f"unknown source {source}; configured: {', '.join(cfg.sources)}")
    specs = build_ordersync_asset_specs(cfg, source, translator)
    return dg.multi_asset(
        name=name or _plan.op_name(source), specs=specs, check_specs=[rejects_check_spec(specs)], can_subset=True,
        pool=pool or _plan.pool_name(source), op_tags=op_tags, retry_policy=retry_policy,
        description=f"sync of the {cfg.sources[source].type} source '{source}'")


def _meta(spec: dg.AssetSpec, key: str) -> str:
    value = spec.metadata.get(key)
    return str(getattr(value, "value", value))
