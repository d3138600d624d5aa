"""Runs one command and writes its wall time, CPU time and peak RSS as JSON (``launch.py OUT.json CMD ...``).

Linux counts in a child's ``ru_maxrss`` the memory of the process it was forked from (the high-water mark of the
copied address space is kept across ``exec``), so a harness that has imported dlt or SQLAlchemy would inflate every
contender's figure. This launcher is started with ``python -S`` (about 8 MB) and forks the contender itself.

A contender may run in several processes (ordersync's writer process): ``rss_mb`` is then the sum of each
process's own peak (``VmHWM``, read from ``/proc`` four times a second while it runs), at least the ``wait4`` one.
"""

import json
import os
import sys
import threading
import time

out, argv = sys.argv[1], sys.argv[2:]
started = time.perf_counter()
launched = time.monotonic()  # on the clock the fast server stamps requests with
pid = os.fork()
if pid == 0:
    try:
        os.execvp(argv[0], argv)
    finally:
        os._exit(127)


def tree(root):
    """``root`` and its descendants now: pid -> parent pid, from /proc."""
    parents = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    parents[int(name)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                pass
    found, frontier = {root}, [root]
    while frontier:
        frontier = [p for p, parent in parents.items() if parent in frontier and p not in found]
        found.update(frontier)
    return found


def peak_kb(proc):
    try:
        with open(f"/proc/{proc}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


peaks: dict[int, int] = {}


def sample():
    while True:
        for proc in tree(pid):
            peaks[proc] = max(peaks.get(proc, 0), peak_kb(proc))
        time.sleep(0.25)


threading.Thread(target=sample, daemon=True).start()
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - started
code = os.waitstatus_to_exitcode(status)
rss_kb = max(usage.ru_maxrss, sum(list(peaks.values())))
with open(out, "w") as f:
    json.dump({"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_mb": rss_kb / 1024, "code": code,
               "launched": launched}, f)
sys.exit(code if code >= 0 else 128 - code)
