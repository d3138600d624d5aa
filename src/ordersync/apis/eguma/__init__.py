"""e-guma REST API v1 (gift vouchers, Switzerland): orders, with their customers and payments."""

from ordersync.apis.base import ApiSpec
from ordersync.apis.eguma.client import EgumaClient, EgumaState
from ordersync.apis.eguma.settings import EgumaSettings

API = ApiSpec(
    name="eguma",
    title="e-guma REST API v1",
    settings=EgumaSettings,
    client=EgumaClient,
    state=EgumaState,
)
