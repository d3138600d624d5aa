"""Firespring API (nonprofit websites, USA): orders of one website, with their users, items and payments."""

from ordersync.apis.base import ApiSpec
from ordersync.apis.firespring.client import FirespringClient, FirespringState
from ordersync.apis.firespring.settings import FirespringSettings

API = ApiSpec(
    name="firespring",
    title="Firespring API",
    settings=FirespringSettings,
    client=FirespringClient,
    state=FirespringState,
)
