"""e-guma REST API v1 (gift vouchers, Switzerland): orders, with their customers and payments."""

from ordersync.apis.base import ApiSpec
from ordersync.apis.eguma.client import EgumaClient, EgumaState
from ordersync.apis.eguma.settings import EgumaSettings

CONFIG_EXAMPLE = """\
[sources.vouchers]                   # the section name is the source's name in every table
type = "eguma"
api_key = "${EGUMA_API_KEY}"         # sent as ?apikey=...; never logged, printed or stored
# base_url = "https://api.e-guma.ch/v1"
# timezone = "Europe/Zurich"         # the zone of the API's zone-less timestamps
# start_date = "2015-01-01T00:00:00" # first run: orders modified at or after this local time
# window_days = 30                   # first date window; then sized by the density of orders seen
# max_window_days = 366
# split_threshold = 1000             # windows aim at half this many orders; a fuller answer is kept, in parts
# timeout = 60                       # seconds; a slower answer is split, not failed
# lookback_seconds = 300             # each run re-reads this much before the last one's end
# created_at_after = "2024-01-01T00:00:00"   # the documented filters, local time, format 2019-06-04T23:15:14
# created_at_before / updated_at_after / updated_at_before likewise
"""

API = ApiSpec(
    name="eguma",
    title="e-guma REST API v1",
    settings=EgumaSettings,
    client=EgumaClient,
    state=EgumaState,
    config_example=CONFIG_EXAMPLE,
)
