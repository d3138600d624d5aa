"""The Prio Distributor API v3 sandbox: the routes and rules in ``app.py``, the generated shop in ``fake.py``."""

from ordersync.sandbox.prio.app import PrioSandbox

SANDBOX = PrioSandbox
