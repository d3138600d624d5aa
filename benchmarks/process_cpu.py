"""Which process a sync spends its CPU in: the sync process, its writer, the fast server (and PostgreSQL).

``run.py`` gives a contender's wall and CPU seconds summed over its processes. A sync is two processes (the sync
process reads, parses and normalizes; the writer stores), so its wall time is set by the busier one. This
script runs ``ordersync sync`` into SQLite (or, with ``--postgres``, a throwaway PostgreSQL server) against the
fast server, as ``run.py`` does, and splits the CPU with ``getrusage``: the sync process's own, its children's
(the writer), the fast server's and PostgreSQL's (every ``postgres`` process and its ended children, from
``/proc``; Linux).

    .venv/bin/python benchmarks/process_cpu.py firespring --orders 100000 --runs 2 [--postgres]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fastserver import render  # noqa: E402
from harness import SYNC_ENV, bench_config, reset_postgres, sync_argv, throwaway_postgres  # noqa: E402
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


def postgres_cpu() -> float:
    """CPU seconds of every ``postgres`` process so far, with the ended children each has waited for."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            head, rest = entry.joinpath("stat").read_text().rsplit(")", 1)
            if head.endswith("(postgres"):
                fields = rest.split()
                total += sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("api", choices=APIS)
    parser.add_argument("--orders", type=int, default=100000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--postgres", action="store_true", help="into a throwaway PostgreSQL server, not SQLite")
    args = parser.parse_args()
    records = subset(render(args.api, 100000, CACHE), args.orders)
    server = subprocess.Popen([sys.executable, str(HERE / "fastserver.py"), args.api, str(records)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        root = server.stdout.readline().strip()
        time.sleep(2)  # the server renders its pages before it answers: not the sync's time
        print("| API | destination | orders | wall s | sync process CPU s | writer CPU s | server CPU s | "
              "PostgreSQL CPU s |")
        print("|---|---|---:|---:|---:|---:|---:|---:|")
        with throwaway_postgres() if args.postgres else contextlib.nullcontext(None) as pg:
            if args.postgres and pg is None:
                raise SystemExit("no PostgreSQL server here (see harness.throwaway_postgres)")
            for _ in range(args.runs):
                with tempfile.TemporaryDirectory(prefix="ordersync-bench-") as tmp:
                    if pg is not None:
                        reset_postgres(pg)
                    url = pg or f"sqlite:///{tmp}/o.db"
                    config = bench_config(Path(tmp), args.api, root, url, **UNLIMITED)
                    argv = sync_argv(config)
                    before, pg_before = process_cpu(server.pid), postgres_cpu()
                    done = subprocess.run([argv[0], "-c", SPLIT, *argv[argv.index("sync"):]], capture_output=True,
                                          text=True, env={**os.environ, **SYNC_ENV})
                    served, database = process_cpu(server.pid) - before, postgres_cpu() - pg_before
                    split = json.loads(done.stderr.strip().splitlines()[-1])
                    if split["code"] not in (0, None):
                        raise SystemExit(f"the sync failed: {done.stderr.strip()[-300:]}")
                    database_cpu = f"{database:.2f}" if pg else "-"
                    print(f"| {args.api} | {'postgresql' if pg else 'sqlite'} | {args.orders:,} | "
                          f"{split['wall']:.2f} | {split['sync']:.2f} | {split['writer']:.2f} | {served:.2f} | "
                          f"{database_cpu} |", flush=True)
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
