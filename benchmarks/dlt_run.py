"""dlt's rest_api source on the same endpoint (page-number paging, stop on an empty page) into DuckDB."""

import json
import os
import sys

url, key, work = sys.argv[1], sys.argv[2], sys.argv[3]
os.environ["DLT_DATA_DIR"] = os.path.join(work, "dlt-data")
os.environ["RUNTIME__LOG_LEVEL"] = "WARNING"

import dlt  # noqa: E402
from dlt.sources.rest_api import rest_api_source  # noqa: E402

source = rest_api_source({
    "client": {"base_url": f"{url}/v2/", "headers": {"X-API-Key": key}},
    "resources": [{
        "name": "orders",
        "endpoint": {
            "path": "orders",
            "params": {"limit": 250, "exported": "true", "user_data": "true"},
            "paginator": {"type": "page_number", "base_page": 1, "page_param": "page", "total_path": None,
                          "stop_after_empty_page": True},
        },
        "primary_key": "id",
        "write_disposition": "merge",
    }],
})
pipeline = dlt.pipeline("bench", destination=dlt.destinations.duckdb(os.path.join(work, "dlt.duckdb")),
                        pipelines_dir=os.path.join(work, "pipelines"))
pipeline.run(source)
with pipeline.sql_client() as client:
    rows = client.execute_sql("select count(*) from orders")[0][0]
print(json.dumps({"rows": rows}))
