"""dlt's ``rest_api`` source for one API (configured from the vendor's documentation) into DuckDB.

    python benchmarks/dlt_run.py API ROOT_URL WORK_DIR     (prints {"rows": N})
"""

import json
import os
import sys
from pathlib import Path

api, root, work = sys.argv[1], sys.argv[2], sys.argv[3]
os.environ["DLT_DATA_DIR"] = os.path.join(work, "dlt-data")
os.environ["RUNTIME__LOG_LEVEL"] = "WARNING"
sys.path.insert(0, str(Path(__file__).resolve().parent))

import dlt  # noqa: E402
from dlt.sources.rest_api import rest_api_source  # noqa: E402
from targets import dlt_resource  # noqa: E402

pipeline = dlt.pipeline(f"bench_{api}", destination=dlt.destinations.duckdb(os.path.join(work, f"dlt-{api}.duckdb")),
                        pipelines_dir=os.path.join(work, "pipelines"))
pipeline.run(rest_api_source(dlt_resource(api, root)))  # type: ignore[arg-type]
with pipeline.sql_client() as client:
    rows = (client.execute_sql("select count(*) from orders") or [[0]])[0][0]
print(json.dumps({"rows": rows}))
