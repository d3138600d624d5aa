"""Runs one command and writes its wall time, CPU time and peak RSS as JSON (``launch.py OUT.json CMD ...``).

Linux counts in a child's ``ru_maxrss`` the memory of the process it was forked from (the high-water mark of the
copied address space is kept across ``exec``), so a harness that has imported dlt or SQLAlchemy would inflate every
contender's figure. This launcher is started with ``python -S`` (about 8 MB) and forks the contender itself.
"""

import json
import os
import sys
import time

out, argv = sys.argv[1], sys.argv[2:]
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(argv[0], argv)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - started
code = os.waitstatus_to_exitcode(status)
with open(out, "w") as f:
    json.dump({"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_mb": usage.ru_maxrss / 1024,
               "code": code}, f)
sys.exit(code if code >= 0 else 128 - code)
