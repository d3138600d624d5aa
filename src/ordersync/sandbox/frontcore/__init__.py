"""The Frontcore API v2 sandbox: the routes and rules in ``app.py``, the generated shop in ``fake.py``."""

from ordersync.sandbox.frontcore.app import FrontcoreSandbox

SANDBOX = FrontcoreSandbox
