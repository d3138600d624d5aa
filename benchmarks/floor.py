"""The floor: fetch every page of one API and parse it, sequentially, storing nothing (httpx + orjson).

    python benchmarks/floor.py API ROOT_URL     (prints {"rows": N})
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from targets import LISTINGS  # noqa: E402

api, root = sys.argv[1], sys.argv[2]
print(json.dumps({"rows": sum(len(page) for page in LISTINGS[api](root))}))
