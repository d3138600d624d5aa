"""Frontcore API v2 (course administration, Norway): orders and customers."""

from ordersync.apis.base import ApiSpec
from ordersync.apis.frontcore.client import FrontcoreClient, FrontcoreState
from ordersync.apis.frontcore.settings import FrontcoreSettings

CONFIG_EXAMPLE = """\
[sources.courses]                    # the section name is the source's name in every table
type = "frontcore"
api_key = "${FRONTCORE_API_KEY}"     # ${VAR} is read from the environment
# base_url = "https://api.frontcore.com/v2"
# streams = ["orders", "customers"]
# limit = 250                        # records per page, at most 250
# requests_per_second = 5            # Frontcore's limit per account
# include = ["lines.database_relations.course", "lines.database_relations.participants", "campaign"]
# customer_include = ["employees"]
# user_data = true                   # users on each order line (the API's default is false)
# exported = true                    # keep exported orders (the API's default, false, hides them)
# course_id = 22353
# since_id = 1000                    # ignore older orders
# created_at_min = "2024-01-01"      # yyyy-mm-dd or yyyy-mm-dd hh:mm:ss, Oslo time
# updated_at_min / updated_at_max / created_at_max / exported_at_min / exported_at_max likewise
# timezone = "Europe/Oslo"
# sweep_days = 7                     # every order is read again within this many days (0: off)
"""

API = ApiSpec(
    name="frontcore",
    title="Frontcore API v2",
    settings=FrontcoreSettings,
    client=FrontcoreClient,
    state=FrontcoreState,
    config_example=CONFIG_EXAMPLE,
)
