"""The e-guma REST API v1 sandbox: the routes and rules in ``app.py``, the generated shop in ``fake.py``, its
wall-clock time in ``localtime.py``."""

from ordersync.sandbox.eguma.app import EgumaSandbox

SANDBOX = EgumaSandbox
