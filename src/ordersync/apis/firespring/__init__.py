"""Firespring API (nonprofit websites, USA): orders of one website, with their users, items and payments."""

from ordersync.apis.base import ApiSpec
from ordersync.apis.firespring.client import FirespringClient, FirespringState
from ordersync.apis.firespring.settings import FirespringSettings

CONFIG_EXAMPLE = """\
[sources.website]                    # the section name is the source's name in every table
type = "firespring"
api_key = "${FIRESPRING_API_KEY}"    # sent as the HTTP Basic user name, with an empty password
website_id = 4                       # required: the website whose orders are read
# base_url = "https://api.firespring.com"
# api_version = 1                    # Firespring-Api-Version header: 1 or 2
# lookback_days = 30                 # creation days re-read each run, to see status changes of recent orders
# sweep_days = 7                     # older orders are read again within this many days (0: off)
# count = 100                        # orders per page, at most 100
# status = "shipped"                 # or pending_approval, new, denied, processing, canceled, backordered, completed
# search = "xyzcorp"                 # message tracking number or user name contains this
# date_start = "2024-01-01"          # created on or after this day (YYYY-MM-DD)
# date_end = "2025-01-01"            # created before this day
# sort = "date_created"              # or message.message_tracking_number, user.username
# direction = "asc"                  # asc keeps pages stable while new orders arrive
# includes = ["notes", "shipments.shipping_carrier"]   # extra includes, kept in raw
"""

API = ApiSpec(
    name="firespring",
    title="Firespring API",
    settings=FirespringSettings,
    client=FirespringClient,
    state=FirespringState,
    config_example=CONFIG_EXAMPLE,
)
