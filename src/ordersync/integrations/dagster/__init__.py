"""ordersync in Dagster (``pip install 'ordersync[dagster]'``), three ways, as dagster-dlt and dagster-sling do
it (see docs/dagster.md):

* one call: ``defs = definitions("ordersync.toml")``;
* a decorator and a translator: ``@ordersync_assets(config=..., source=..., translator=...)`` with an
  :class:`OrdersyncResource`;
* a component for ``dg`` projects: :class:`OrdersyncComponent` (``type: ordersync.integrations.dagster.
  OrdersyncComponent`` in a ``defs.yaml``).

Each source is one multi-asset with one asset per published table it writes (``ordersync/<source>/orders``,
``.../order_lines``, ``.../customers``, ``.../payments``, ``.../order_versions``), subsettable, in the concurrency
pool named after the source. The definitions load without any secret: the run reads them.
"""

from ordersync.integrations.dagster._plan import TABLES, op_name, pool_name, schedule_name
from ordersync.integrations.dagster.assets import build_ordersync_asset_specs, ordersync_assets
from ordersync.integrations.dagster.component import OrdersyncComponent
from ordersync.integrations.dagster.definitions import JOB, definitions
from ordersync.integrations.dagster.resource import REJECTS_CHECK, OrdersyncResource, OrdersyncRunConfig
from ordersync.integrations.dagster.translator import OrdersyncTableData, OrdersyncTranslator, column_schema

__all__ = [
    "JOB", "REJECTS_CHECK", "TABLES", "OrdersyncComponent", "OrdersyncResource", "OrdersyncRunConfig",
    "OrdersyncTableData", "OrdersyncTranslator", "build_ordersync_asset_specs", "column_schema", "definitions",
    "op_name", "ordersync_assets", "pool_name", "schedule_name",
]
