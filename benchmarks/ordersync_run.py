"""ordersync's orders stream into a fresh SQLite file, with the same settings a user would write."""

import asyncio
import json
import sys

from ordersync.config import parse_source
from ordersync.store import open_store
from ordersync.sync import sync_source

url, key, db = sys.argv[1], sys.argv[2], sys.argv[3]
history = "--no-history" not in sys.argv[4:]  # order_versions on (the default) or off, to show what it costs
settings = parse_source("bench", {"type": "frontcore", "api_key": key, "base_url": f"{url}/v2",
                                  "streams": ["orders"], "requests_per_second": 10000, "concurrency": 4})
store = open_store(f"sqlite:///{db}", history=history)
[result] = asyncio.run(sync_source(store, "bench", settings))
assert result.ok, result.error
print(json.dumps({"rows": store.count("orders")}))
