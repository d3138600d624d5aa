"""Optional integrations with orchestrators; each needs its extra (``ordersync[dagster]``)."""
