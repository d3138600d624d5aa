"""The Firespring API sandbox: the routes and rules in ``app.py``, the generated shop in ``fake.py``."""

from ordersync.sandbox.firespring.app import FirespringSandbox

SANDBOX = FirespringSandbox
