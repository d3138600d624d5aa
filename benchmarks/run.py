"""``make bench``: ordersync against the fetch floor and dlt's ``rest_api``, per API, in one run, on the same data.

Every API's records are rendered once from its sandbox and served from memory by ``fastserver.py`` (its own
process), so the server is never the bottleneck. Against that server, each contender runs in its own process:

* the floor: httpx + orjson, sequential, nothing stored (``floor.py``);
* ``ordersync sync`` into every destination of ``harness.DESTINATIONS`` available here (SQLite; PostgreSQL in a
  throwaway server; DuckDB), with the rate limit lifted;
* dlt's ``rest_api`` source configured for the same API from its documentation, into DuckDB (``dlt_run.py``).

Per contender: wall and CPU seconds, orders/s, peak RSS (``wait4``), and the ratios against the floor and dlt of
the same run. Per destination: its sync against its own bare-driver floor (``store_floor.py``: the same rows
written by ``sqlite3``, ``psycopg`` or ``duckdb`` alone, after the fetch floor's time). Then two scenarios: 100 ms
added to every answer (ordersync against the bound its concurrency allows) and Frontcore at its default 5
requests/s against a strict sliding-window limiter (achieved rate, 429s).

    .venv/bin/python benchmarks/run.py              # quick: 5,000 orders per API
    .venv/bin/python benchmarks/run.py --full       # 100,000 orders per API
    .venv/bin/python benchmarks/run.py --profile    # also where ordersync's time goes, per API (py-spy), into SQLite
                                                    # and DuckDB
    .venv/bin/python benchmarks/run.py --only-scenarios --apis eguma  # the scenarios alone (no contender table)
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fastserver import KINDS, render  # noqa: E402
from harness import (  # noqa: E402
    DESTINATIONS,
    HERE,
    SYNC_ENV,
    Measured,
    bench_config,
    count_orders,
    measure,
    reset_postgres,
    sync_argv,
    throwaway_postgres,
)
from targets import APIS, WAITS_BEFORE_DATA, missing_parts  # noqa: E402

CACHE = HERE / ".cache"
UNLIMITED = {"requests_per_second": 10000}  # the highest the settings allow: no limit in practice


def subset(records: Path, orders: int) -> Path:
    """The first ``orders`` records of a rendered file (the same data, fewer orders), kept beside it."""
    if orders >= sum(1 for _ in records.open("rb")):
        return records
    target = records.with_name(f"{records.stem}-first{orders}.jsonl")
    if not target.exists():
        with records.open("rb") as source, target.open("wb") as out:
            for _, line in zip(range(orders), source, strict=False):
                out.write(line)
    return target


@contextlib.contextmanager
def fast_server(api: str, records: Path, *options: str) -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, str(HERE / "fastserver.py"), api, str(records), *options],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        root = proc.stdout.readline().strip()
        if not root.startswith("http"):
            raise SystemExit(f"the fast server for {api} did not start")
        for _ in range(500):
            with contextlib.suppress(httpx.TransportError):
                httpx.get(f"{root}/_fast/stats", timeout=5)
                break
            time.sleep(0.02)
        yield root
    finally:
        proc.terminate()
        proc.wait()


def server_stats(root: str) -> dict[str, Any]:
    return dict(httpx.get(f"{root}/_fast/stats", timeout=10).json())


def served(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Requests a contender made and megabytes it was sent (a client that asks for more pays for it)."""
    return {"requests": after["requests"] - before["requests"], "mb": (after["bytes"] - before["bytes"]) / 1e6}


def rows_of(result: Measured) -> int:
    lines = [line for line in result.stdout.strip().splitlines() if line.startswith("{")]
    return int(json.loads(lines[-1])["rows"]) if lines else -1


def failure(result: Measured) -> str:
    lines = [line for line in (result.stderr + result.stdout).strip().splitlines() if line.strip()]
    return (lines[-1] if lines else f"exit {result.code}")[:160]


Row = dict[str, Any]


def run_ordersync(api: str, root: str, work: Path, destination: str, **settings: Any) -> tuple[Measured, int]:
    config = bench_config(work, api, root, destination, **settings)
    result = measure(sync_argv(config), SYNC_ENV)
    rows = count_orders(destination) if result.code == 0 else -1
    return result, rows


def contenders(api: str, orders: int, records: Path, pg: str | None, dlt_orders: int) -> list[Row]:
    results: list[Row] = []
    with fast_server(api, records) as root:
        before = server_stats(root)
        floor = measure([sys.executable, str(HERE / "floor.py"), api, root])
        results.append({"name": "floor (httpx + orjson)", "m": floor, "rows": rows_of(floor),
                        **served(before, server_stats(root))})
        for name, make_url in DESTINATIONS.items():
            with tempfile.TemporaryDirectory(prefix="ordersync-bench-") as tmp:
                url = make_url(Path(tmp), pg)
                if url is None:
                    results.append({"name": f"ordersync -> {name}", "skipped": "no server here"})
                    continue
                if name == "postgresql":
                    reset_postgres(url)
                before = server_stats(root)
                result, rows = run_ordersync(api, root, Path(tmp), url, **UNLIMITED)
                results.append({"name": f"ordersync -> {name}", "m": result, "rows": rows,
                                **served(before, server_stats(root))})
    if dlt_orders:
        with fast_server(api, subset(records, dlt_orders)) as root, \
                tempfile.TemporaryDirectory(prefix="ordersync-bench-dlt-") as tmp:
            result = measure([sys.executable, str(HERE / "dlt_run.py"), api, root, tmp])
            name = "dlt rest_api -> duckdb" + (f" ({dlt_orders:,} orders)" if dlt_orders < orders else "")
            results.append({"name": name, "m": result, "rows": rows_of(result), "orders": dlt_orders,
                            **served({"requests": 0, "bytes": 0}, server_stats(root))})
    return results


def table(api: str, orders: int, results: list[Row]) -> list[str]:
    """Ratios on orders per second (wall) and orders per CPU second, so that dlt may run on fewer orders."""
    def rates(r: Row) -> tuple[float, float]:
        n = r.get("orders", orders)
        return n / r["m"].wall, n / max(r["m"].cpu, 1e-9)

    floor = rates(next(r for r in results if r["name"].startswith("floor")))
    dlt = next((rates(r) for r in results if r["name"].startswith("dlt") and r["m"].code == 0), None)
    out = [f"### {api}: {orders:,} orders", "",
           "| contender | wall s | CPU s | orders/s | peak RSS MB | rows | requests | MB read | of floor | "
           "of floor (CPU) | x dlt | x dlt (CPU) |", "|---|" + "---:|" * 11]
    for r in results:
        if "skipped" in r:
            out.append(f"| {r['name']} | not run: {r['skipped']} |" + " |" * 10)
            continue
        m: Measured = r["m"]
        if m.code != 0:
            out.append(f"| {r['name']} | failed: {failure(m)} |" + " |" * 10)
            continue
        wall_rate, cpu_rate = rates(r)
        vs_dlt = f"{wall_rate / dlt[0]:.1f}x | {cpu_rate / dlt[1]:.1f}x" if dlt else "- | -"
        out.append(f"| {r['name']} | {m.wall:.2f} | {m.cpu:.2f} | {wall_rate:,.0f} | {m.rss_mb:.0f} | "
                   f"{r['rows']:,} | {r['requests']:,} | {r['mb']:,.0f} | {wall_rate / floor[0]:.2f} | "
                   f"{cpu_rate / floor[1]:.2f} | {vs_dlt} |")
    return [*out, ""]


LATENCY = 0.1  # seconds added to every answer in the latency scenario


def first_request(result: Measured, stats: dict[str, Any]) -> float:
    """Seconds from the contender's launch to its first request (start-up: no concurrency can hide it)."""
    return max(0.0, stats["first"] - result.launched) if stats["first"] and result.launched else 0.0


def no_latency(api: str, records: Path) -> tuple[Measured, float]:
    """ordersync -> SQLite without latency, and its start-up (seconds to its first request)."""
    with fast_server(api, records) as root, tempfile.TemporaryDirectory(prefix="ordersync-bench-") as tmp:
        result = run_ordersync(api, root, Path(tmp), f"sqlite:///{tmp}/o.db", **UNLIMITED)[0]
        return result, first_request(result, server_stats(root))


def latency_scenario(api: str, records: Path, plain: Measured, startup: float, concurrency: int) -> str:
    """100 ms per answer: ordersync's wall time against the least any client doing the same work could take.

    * CPU-bound: its wall time without latency (same orders), plus the answers it must wait for one after the
      other before it holds any order (nothing can be parsed or stored before the first page arrives);
    * concurrency bound: its start-up (time to its first request, without latency), then its requests in rounds
      of ``concurrency``, one round trip each (requests it chose to make count: a client that asks for more pays
      for it)."""
    label = str(concurrency)
    with fast_server(api, records, "--latency-ms", str(LATENCY * 1000)) as root, \
            tempfile.TemporaryDirectory(prefix="ordersync-bench-") as tmp:
        result, _ = run_ordersync(api, root, Path(tmp), f"sqlite:///{tmp}/o.db", concurrency=concurrency,
                                  **UNLIMITED)
        if result.code != 0 and "concurrency" in failure(result):  # the API's settings allow less: its maximum
            result, _ = run_ordersync(api, root, Path(tmp), f"sqlite:///{tmp}/o2.db", **UNLIMITED)
            concurrency, label = 1, f"{concurrency} refused: 1"
        requests = server_stats(root)["requests"]
    if result.code != 0:
        return f"| {api} | {label} | failed: {failure(result)} | | | | | | |"
    bound = startup + math.ceil(requests / concurrency) * LATENCY
    sequential = startup + requests * LATENCY
    cpu_bound = plain.wall + WAITS_BEFORE_DATA[api] * LATENCY if plain.code == 0 else 0.0
    floor = max(bound, cpu_bound)
    return (f"| {api} | {label} | {requests} | {result.wall:.2f} | {startup:.2f} | {bound:.2f} | {sequential:.2f} | "
            f"{cpu_bound:.2f} | {floor / result.wall:.2f} |")


def rate_scenario(records: Path) -> str:
    """Frontcore at ordersync's default 5 requests/s against a strict limiter over any 1-second window."""
    with fast_server("frontcore", records, "--rate", "5") as root, \
            tempfile.TemporaryDirectory(prefix="ordersync-bench-") as tmp:
        result, rows = run_ordersync("frontcore", root, Path(tmp), f"sqlite:///{tmp}/o.db")
        stats = server_stats(root)
    if result.code != 0:
        return f"| failed: {failure(result)} | | | | | |"
    accepted = stats["requests"] - stats["429"]
    span = (stats["last"] - stats["first"]) or 1e-9
    achieved = (stats["requests"] - 1) / span  # requests per second between the first and the last
    return (f"| {rows:,} | {stats['requests']} | {stats['429']} | {accepted} | {achieved:.2f} | "
            f"{achieved / 5:.0%} | {result.wall:.1f} |")


def help_time() -> float:
    best = math.inf
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "ordersync", "--help"], capture_output=True, check=True)
        best = min(best, time.perf_counter() - started)
    return best


CATEGORIES = (
    ("imports (start-up)", ("importlib", "<frozen")),
    ("waiting (idle pool thread, selector)", ("_worker (concurrent/futures/thread.py:81)", "select (selectors.py")),
    ("JSON parsing", ("json (", "loads (", "/json/")),
    ("normalizing", ("/normalize.py", "ordersync/values.py", "ordersync/cursor.py", "decimal")),
    ("store (SQLAlchemy, SQLite, DuckDB, Arrow)", ("ordersync/store", "sqlalchemy/", "sqlite3", "duckdb", "pyarrow")),
    ("HTTP client", ("httpx/", "httpcore/", "h11/", "anyio/", "ssl.py", "socket.py")),
    ("event loop", ("asyncio/", "selectors.py")),
    ("native code, no Python frame", ("(native code",)),
)


def category(frames: list[str]) -> str:
    """The category of a sample: start-up imports anywhere in the stack, else the frame nearest the leaf."""
    if any("importlib" in frame for frame in frames):
        return CATEGORIES[0][0]
    for frame in reversed(frames):
        for name, marks in CATEGORIES[1:]:
            if any(mark in frame for mark in marks):
                return name
    return "other"


def profile(api: str, records: Path, destination: str = "sqlite", top: int = 8) -> list[str]:
    """Where ordersync's time goes for one API into a file destination (py-spy samples of every thread and
    process, idle excluded)."""
    orders = sum(1 for _ in records.open("rb"))
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    with fast_server(api, records) as root, tempfile.TemporaryDirectory(prefix="ordersync-bench-") as tmp:
        url = DESTINATIONS[destination](Path(tmp), None)
        if url is None:
            return [f"### profile of {api} into {destination}: not available here", ""]
        config = bench_config(Path(tmp), api, root, url, **UNLIMITED)
        raw = Path(tmp) / "spy.txt"
        subprocess.run([spy, "record", "--format", "raw", "-r", "250", "--subprocesses", "-o", str(raw), "--",
                        *sync_argv(config)],
                       capture_output=True, env={**os.environ, **SYNC_ENV}, check=False)
        stacks = [line.rsplit(" ", 1) for line in raw.read_text().splitlines() if line.strip()] \
            if raw.exists() else []
    if not stacks:
        return [f"### profile of {api} into {destination}: py-spy recorded nothing", ""]
    total = sum(int(n) for _, n in stacks)
    by_category: collections.Counter[str] = collections.Counter()
    by_leaf: collections.Counter[str] = collections.Counter()
    for stack, n in stacks:
        frames = [f for f in stack.strip().split(";") if f] or ["(native code, no Python frame)"]
        by_leaf[frames[-1]] += int(n)
        by_category[category(frames)] += int(n)
    out = [f"### profile of {api} into {destination}, {orders:,} orders ({total:,} samples at 250 Hz, every thread "
           "and process, idle excluded)", "",
           "| where | share |", "|---|---:|"]
    out += [f"| {name} | {n / total:.0%} |" for name, n in by_category.most_common()]
    out += ["", "| hottest functions (self time) | share |", "|---|---:|"]
    out += [f"| `{leaf[:110]}` | {n / total:.1%} |" for leaf, n in by_leaf.most_common(top)]
    return [*out, ""]


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in subprocess.run(
        ["lscpu"], capture_output=True, text=True).stdout.splitlines() if line.startswith("Model name")), "?")
    import dlt

    return (f"{model}, nproc {os.cpu_count()}, Python {platform.python_version()}, dlt {dlt.__version__}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="100,000 orders per API (default: 5,000)")
    parser.add_argument("--orders", type=int, help="orders per API (overrides --full)")
    parser.add_argument("--apis", default=",".join(APIS), help="comma-separated subset of " + ", ".join(APIS))
    parser.add_argument("--skip-dlt", action="store_true", help="leave dlt out")
    parser.add_argument("--dlt-orders", type=int, help="orders dlt reads (default: all; --full: 20,000, as dlt "
                        "needs several GB per 10,000 orders); its ratios are on orders per second")
    parser.add_argument("--scenario-orders", type=int, help="orders of the latency scenario (default: all; "
                        "--full: 20,000)")
    parser.add_argument("--no-scenarios", action="store_true", help="leave out the latency and rate scenarios")
    parser.add_argument("--only-scenarios", action="store_true", help="leave out the contender tables (and dlt): "
                        "the latency and rate scenarios alone")
    parser.add_argument("--no-floors", action="store_true", help="leave out each destination's bare-driver floor "
                        "(store_floor.py: the same rows written by sqlite3, psycopg, duckdb alone)")
    parser.add_argument("--profile", action="store_true", help="also profile ordersync per API with py-spy")
    parser.add_argument("--profile-destinations", default="sqlite,duckdb", help="the destinations --profile syncs "
                        "into (default: sqlite,duckdb)")
    args = parser.parse_args()
    orders = args.orders or (100_000 if args.full else 5_000)
    chosen = [a.strip() for a in args.apis.split(",") if a.strip()]
    gaps = [f"{api} (no {', '.join(parts)})" for api in chosen if (parts := missing_parts(api, ("KINDS", KINDS)))]
    if gaps:  # a new API in the registry: benchmarked once its contenders are written
        parser.error("no contenders yet in benchmarks/targets.py and fastserver.py for " + "; ".join(gaps))
    print(f"`{' '.join(['benchmarks/run.py', *sys.argv[1:]])}` on {machine()}", flush=True)
    print(f"`ordersync --help`: {help_time():.2f} s\n", flush=True)
    records = {}
    for api in chosen:
        started = time.perf_counter()
        records[api] = render(api, orders, CACHE)
        print(f"{api}: records rendered from the sandbox in {time.perf_counter() - started:.1f} s "
              f"(cached in {records[api].relative_to(HERE.parent)})", flush=True)
    print()
    dlt_orders = 0 if args.skip_dlt else min(orders, args.dlt_orders or (20_000 if args.full else orders))
    with contextlib.nullcontext(None) if args.only_scenarios else throwaway_postgres() as pg:
        for api in chosen if not args.only_scenarios else ():
            results = contenders(api, orders, records[api], pg, dlt_orders)
            print("\n".join(table(api, orders, results)), flush=True)
            if not args.no_floors:
                from store_floor import floor_table  # it imports this module

                print("\n".join(floor_table(api, records[api], results, pg)), flush=True)
    if not args.no_scenarios:
        size = min(orders, args.scenario_orders or (20_000 if args.full else orders))
        print(f"### 100 ms per answer (ordersync -> SQLite, {size:,} orders)\n")
        print("start-up = seconds to the first request (without latency); concurrency bound = start-up + "
              "ceil(requests / concurrency) x 0.1 s; CPU-bound = ordersync's wall time without latency (same "
              "orders) + 0.1 s per answer awaited before any order is held (1; Prio 2: its token, then a page); "
              "target: (max of both) / wall >= 0.9\n")
        print("| API | concurrency | requests | wall s | start-up s | concurrency bound s | sequential bound s | "
              "CPU-bound s | max / wall |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|", flush=True)
        plain: dict[str, Measured] = {}
        for api in chosen:
            plain[api], startup = no_latency(api, subset(records[api], size))
            for concurrency in (4, 16):
                print(latency_scenario(api, subset(records[api], size), plain[api], startup, concurrency),
                      flush=True)
        if size < orders:
            print(f"\nPeak RSS of ordersync -> SQLite at {size:,} orders (no latency): " + ", ".join(
                f"{api} {m.rss_mb:.0f} MB" for api, m in plain.items()) + " (compare with the tables above)")
        if "frontcore" in chosen:
            print("\n### Frontcore at 5 requests/s (ordersync's default) against a strict 1-second sliding window\n")
            print("| orders | requests | 429s | accepted | achieved req/s | of the limit | wall s |")
            print("|---:|---:|---:|---:|---:|---:|---:|", flush=True)
            print(rate_scenario(subset(records["frontcore"], 10_000)), flush=True)
    if args.profile:
        print()
        size = min(orders, args.scenario_orders or (20_000 if args.full else orders))
        for api in chosen:
            for destination in args.profile_destinations.split(","):
                print("\n".join(profile(api, subset(records[api], size), destination)), flush=True)


if __name__ == "__main__":
    main()
