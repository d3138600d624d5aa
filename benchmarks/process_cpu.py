"""Which process a sync spends its CPU in: the sync process, its writer, and the fast server beside them.

``run.py`` gives a contender's wall and CPU seconds summed over its processes. A sync is two processes (the sync
process reads, parses and normalizes; the writer stores), so its wall time is set by the busier one. This
script runs ``ordersync sync`` into SQLite against the fast server, as ``run.py`` does, and splits the CPU with
``getrusage``: the sync process's own, its children's (the writer), and the server's (from ``/proc``, Linux).

    .venv/bin/python benchmarks/process_cpu.py firespring --orders 100000 --runs 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from harness import SYNC_ENV, bench_config, sync_argv  # noqa: E402
from run import APIS, CACHE, UNLIMITED, subset  # noqa: E402

# the sync as `ordersync sync` runs it, then its own CPU and its children's (the writer process)
SPLIT = """import json, resource, sys, time
sys.argv = ["ordersync", *sys.argv[1:]]
from ordersync.cli import main
started = time.perf_counter()
try:
    main()
except SystemExit as end:
    code = end.code
else:
    code = 0
own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"wall": time.perf_counter() - started, "code": code,
                  "sync": own.ru_utime + own.ru_stime, "writer": children.ru_utime + children.ru_stime}),
      file=sys.stderr)
"""


def process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("api", choices=APIS)
    parser.add_argument("--orders", type=int, default=100000)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    records = subset(CACHE / f"{args.api}-100000-1-20261125.jsonl", args.orders)
    server = subprocess.Popen([sys.executable, str(HERE / "fastserver.py"), args.api, str(records)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        root = server.stdout.readline().strip()
        time.sleep(2)  # the server renders its pages before it answers: not the sync's time
        print("| API | orders | wall s | sync process CPU s | writer CPU s | server CPU s |")
        print("|---|---:|---:|---:|---:|---:|")
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory(prefix="ordersync-bench-") as tmp:
                config = bench_config(Path(tmp), args.api, root, f"sqlite:///{tmp}/o.db", **UNLIMITED)
                argv = sync_argv(config)
                before = process_cpu(server.pid)
                done = subprocess.run([argv[0], "-c", SPLIT, *argv[argv.index("sync"):]], capture_output=True,
                                      text=True, env={**os.environ, **SYNC_ENV})
                served = process_cpu(server.pid) - before
                split = json.loads(done.stderr.strip().splitlines()[-1])
                if split["code"] not in (0, None):
                    raise SystemExit(f"the sync failed: {done.stderr.strip()[-300:]}")
                print(f"| {args.api} | {args.orders:,} | {split['wall']:.2f} | {split['sync']:.2f} | "
                      f"{split['writer']:.2f} | {served:.2f} |", flush=True)
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
