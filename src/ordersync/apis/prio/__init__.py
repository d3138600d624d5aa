"""Prio (Prioticket) Distributor API v3: orders (with their contacts and payments), OAuth2, conditional requests."""

from ordersync.apis.base import ApiSpec
from ordersync.apis.prio.client import PrioClient, PrioState
from ordersync.apis.prio.settings import PrioSettings

API = ApiSpec(
    name="prio",
    title="Prio Distributor API v3",
    settings=PrioSettings,
    client=PrioClient,
    state=PrioState,
)
