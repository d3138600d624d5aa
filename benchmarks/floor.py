"""The floor: fetch every page and parse it, store nothing. No tool can be faster than this on the same server."""

import json
import sys

import httpx
import orjson

url, key = sys.argv[1], sys.argv[2]
rows = 0
page = 1
with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=60) as client:
    while True:
        batch = orjson.loads(client.get("/v2/orders", params={"limit": 250, "page": page, "exported": "true",
                                                            "user_data": "true"}).content)
        rows += len(batch)
        if len(batch) < 250:
            break
        page += 1
print(json.dumps({"rows": rows}))
