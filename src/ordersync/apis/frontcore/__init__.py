"""Frontcore API v2 (course administration, Norway): orders and customers."""

from ordersync.apis.base import ApiSpec
from ordersync.apis.frontcore.client import FrontcoreClient, FrontcoreState
from ordersync.apis.frontcore.settings import FrontcoreSettings

API = ApiSpec(
    name="frontcore",
    title="Frontcore API v2",
    settings=FrontcoreSettings,
    client=FrontcoreClient,
    state=FrontcoreState,
)
