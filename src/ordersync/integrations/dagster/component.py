"""``OrdersyncComponent``: ordersync in a ``dg`` project, the way dagster-dlt and dagster-sling ship theirs.

    # src/<project>/defs/ordersync/defs.yaml
    type: ordersync.integrations.dagster.OrdersyncComponent
    attributes:
      config_path: ordersync.toml          # beside this file
      translation:
        group_name: sales
        key: "raw/{{ source }}/{{ table }}"
"""


from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import dagster as dg
from dagster.components.utils.translation import TranslationFn, TranslationFnResolver

from ordersync.integrations.dagster.definitions import definitions
from ordersync.integrations.dagster.resource import OrdersyncResource
from ordersync.integrations.dagster.translator import OrdersyncTableData, OrdersyncTranslator


@dataclass
class OrdersyncComponent(dg.Component, dg.Resolvable):
    """Every source of an ``ordersync.toml`` as assets: one multi-asset per source, one asset per published table,
    a schedule per source with a ``schedule`` setting (stopped until turned on) and the ``ordersync`` resource.
    The file's secrets (``${VAR}``) are read in the run, not when the project loads."""

    config_path: str = "ordersync.toml"
    sources: list[str] | None = None
    key_prefix: str = "ordersync"
    group_name: str = "ordersync"
    schedules_running: bool = False
    translation: Annotated[
        TranslationFn[OrdersyncTableData],
        TranslationFnResolver[OrdersyncTableData](
            lambda data: {"source": data.source, "table": data.table, "api": data.api, "data": data}),
    ] | None = None

    def get_asset_spec(self, data: OrdersyncTableData) -> dg.AssetSpec:
        """The asset of one table of one source: the default translator's, then ``translation``. Override in a
        subclass to change it in Python."""
        spec = OrdersyncTranslator(key_prefix=self.key_prefix, group_name=self.group_name).get_asset_spec(data)
        return self.translation(spec, data) if self.translation else spec

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        path = Path(self.config_path)
        path = path if path.is_absolute() else (context.path / path)
        return definitions(str(path), translator=_ComponentTranslator(self), sources=self.sources,
                           schedules_running=self.schedules_running,
                           resource=OrdersyncResource(config_path=str(path.absolute())))


class _ComponentTranslator(OrdersyncTranslator):
    """The component's :meth:`OrdersyncComponent.get_asset_spec` as a translator."""

    def __init__(self, component: OrdersyncComponent) -> None:
        super().__init__()
        self.component = component

    def get_asset_spec(self, data: OrdersyncTableData) -> dg.AssetSpec:
        return self.component.get_asset_spec(data)
