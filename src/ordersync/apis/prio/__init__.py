"""Prio (Prioticket) Distributor API v3: orders (with their contacts and payments), OAuth2, conditional requests."""

from ordersync.apis.base import ApiSpec
from ordersync.apis.prio.client import PrioClient, PrioState
from ordersync.apis.prio.settings import PrioSettings

CONFIG_EXAMPLE = """\
[sources.tickets]                    # the section name is the source's name in every table
type = "prio"
client_id = "${PRIO_CLIENT_ID}"      # ${VAR} is read from the environment
client_secret = "${PRIO_CLIENT_SECRET}"
# base_url = "https://sandbox-distributor-api.prioticket.com/v3.4/distributor"
# scope = "..."                      # OAuth2 scope, if your credentials need one
# order_created_from = "2015-01-01T00:00:00+00:00"   # start of the first run (RFC 3339 with an offset)
# order_created_to = "2030-01-01T00:00:00+00:00"
# window_days = 365                  # creation days per request range
# items_per_page = 100               # asked for; the server may answer with fewer
# order_status = "ORDER_CONFIRMED"   # ORDER_PENDING, ORDER_CANCELLED, ORDER_PARTIALLY_CANCELLED, ORDER_BLOCKED
# reseller_id / distributor_id / market_admin_id / supplier_id = 1300
# product_id = "40100"               # also booking_reference, product_type_code, product_availability_id, ...
# filter_bookings = true             # keep only the bookings that match the filters
# order_search_query = "smith*"      # needs cache = true
# cache = true
"""

API = ApiSpec(
    name="prio",
    title="Prio Distributor API v3",
    settings=PrioSettings,
    client=PrioClient,
    state=PrioState,
    config_example=CONFIG_EXAMPLE,
)
