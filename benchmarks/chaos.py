"""``make chaos``: every API under faults, data changing while paging, and ``ordersync sync`` SIGKILLed at random
moments; then the database is compared with the sandbox's own data.

Per API (all four at once, each with its own sandbox process and database):

1. ``chaos_server.py`` runs the sandbox with the sandbox's fault injection (429 + Retry-After, 500/502/503, resets,
   truncated bodies, orders created or changed just before a list answer) plus slow answers (the server waits,
   then reads) and held ones (it reads at once and sends later, so answers arrive in another order than they were
   computed), counted by kind;
2. a mutator creates and changes orders through the sandbox's control endpoints all along;
3. ``ordersync sync`` (default settings, or ``--concurrency N`` slices in flight; the API's own rate limit) runs
   again and again as a
   subprocess, SIGKILLed after a random delay, sometimes with ``--full-refresh``, until it was killed K times;
4. the data stops changing (faults go on) and one more run must succeed (repeated only if faults exhaust its
   retries): it must bring every change the sandbox held when it started;
5. every order of the sandbox (listed without faults) is compared with the database: ``lost`` (in the sandbox, not
   in the database), ``dup`` (an order stored more than once), ``unknown`` (stored, but not in the sandbox),
   ``stale`` (stored with another change time, total or number of lines than the sandbox holds);
6. one more run, and the comparison again (``+1 run``): what the final run missed but a later run repairs, as
   opposed to what stays wrong.

Firespring has no "modified since" filter, so an order older than its look-back window that changed is stale until
a full refresh: those are counted apart (``stale, older``) and do not fail the run. Exit status 0 when every other
figure is zero.

    .venv/bin/python benchmarks/chaos.py --quick     # bounded (runs in make test)
    .venv/bin/python benchmarks/chaos.py             # 25,000 orders per API, 10 kills per API
    .venv/bin/python benchmarks/chaos.py --quick --destinations sqlite,duckdb --postgres   # every destination
    .venv/bin/python benchmarks/chaos.py --hostile   # hostile answers instead (a minute; see below)

``--hostile`` (issue 24) runs, per API (``--apis``), one short ``ordersync sync`` against a tiny hostile server on
127.0.0.1 (a random port) instead of the sandbox (:mod:`hostile`): a gzip-of-gzip bomb (256 MB of zeros in a few
hundred bytes) must fail with one line, the sync's peak memory (``ru_maxrss``) under 256 MB; an answer dripped
one byte per 50 ms to a source with ``timeout = 1`` must fail with one line within 20 s; and (Frontcore,
Firespring) a page holding a ``null`` element, a lone surrogate escape and a ``1e400`` amount must store the good
orders and keep each bad one in ``_ordersync_rejects``. Exit status 0 when every case held.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import HERE, SYNC_ENV, reset_postgres, sync_argv, throwaway_postgres, write_config  # noqa: E402
from targets import APIS, FIELDS, LISTINGS, ordersync_source  # noqa: E402

FAULTS = "429:0.02,500:0.01,502:0.01,503:0.01,reset:0.01,truncate:0.01,retry_after:1"
SLOW = 0.01
DRIFT = 0.03
HELD = 0.1  # answers computed at once and sent up to half a second later: computed in one order, arriving in another
FIRESPRING_LOOKBACK_DAYS = 30  # ordersync's default lookback_days


@dataclass
class Diff:
    """The database against the sandbox, after one run."""

    lost: list[str] = field(default_factory=list)
    dup: int = 0
    unknown: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    stale_older: list[str] = field(default_factory=list)  # Firespring, older than its look-back: expected
    recent: dict[str, int] = field(default_factory=dict)  # lost / stale that changed in the 5 minutes before

    @property
    def ok(self) -> bool:
        return not (self.lost or self.dup or self.unknown or self.stale)


@dataclass
class Outcome:
    api: str
    destination: str
    orders: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    changes: int = 0
    kills: int = 0
    runs: int = 0
    final: Diff = field(default_factory=Diff)  # after the first run that succeeded once the data stopped changing
    again: Diff = field(default_factory=Diff)  # after one more run
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.final.ok and self.again.ok


@contextlib.contextmanager
def chaos_server(api: str, orders: int, data: Path, seed: int) -> Iterator[str]:
    generate = orders * 2 if api == "firespring" else orders  # Firespring's orders spread over three websites
    proc = subprocess.Popen([sys.executable, str(HERE / "chaos_server.py"), api, "--orders", str(generate),
                             "--data", str(data), "--faults", f"{FAULTS},seed:{seed}", "--slow", str(SLOW),
                             "--drift", str(DRIFT), "--held", str(HELD)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        root = proc.stdout.readline().strip()
        if not root.startswith("http"):
            raise RuntimeError(f"the {api} chaos sandbox did not start")
        yield root
    finally:
        proc.terminate()
        proc.wait()


class Mutator(threading.Thread):
    """Creates and changes orders through the sandbox's control endpoints until stopped."""

    def __init__(self, root: str, data: Path, rng: random.Random, pause: float) -> None:
        super().__init__(daemon=True)
        self.root, self.rng, self.pause = root, rng, pause
        with contextlib.closing(sqlite3.connect(data)) as conn:  # the sandbox's own document store
            self.ids = [str(i) for (i,) in conn.execute("SELECT id FROM orders")]
        self.stopped = threading.Event()
        self.changes = 0

    def run(self) -> None:
        with httpx.Client(base_url=self.root, timeout=30) as client:
            while not self.stopped.wait(self.pause):
                with contextlib.suppress(httpx.HTTPError):
                    if self.rng.random() < 0.4 or not self.ids:
                        response = client.post("/_sandbox/orders", json={})
                    else:
                        response = client.patch(f"/_sandbox/orders/{self.rng.choice(self.ids)}", json={})
                    if response.status_code < 300:
                        self.changes += 1


def kill_loop(config: Path, kills: int, rng: random.Random, max_delay: float, log: Path) -> tuple[int, int]:
    """Start ``ordersync sync`` again and again, SIGKILL it after a random delay; (kills, runs)."""
    done = runs = 0
    while done < kills and runs < kills * 4:
        argv = sync_argv(config) + (["--full-refresh"] if rng.random() < 0.25 else [])
        with log.open("ab") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=out, env={**os.environ, **SYNC_ENV})
            runs += 1
            try:
                proc.wait(rng.uniform(0.8, max_delay))
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                done += 1
    return done, runs


def final_sync(config: Path, log: Path, attempts: int = 6) -> tuple[bool, int]:
    """Runs until one succeeds (faults may exhaust a run's retries); (succeeded, runs)."""
    for attempt in range(1, attempts + 1):
        with log.open("ab") as out:
            code = subprocess.run(sync_argv(config), stdout=out, stderr=out, env={**os.environ, **SYNC_ENV}).returncode
        if code == 0:
            return True, attempt
    return False, attempts


def truth(api: str, root: str) -> dict[str, Any]:
    """Every order the sandbox holds now, listed without faults: id -> record."""
    fields = FIELDS[api]
    return {fields.id(r): r for page in LISTINGS[api](f"{root}/_clean") for r in page}


def compare(api: str, url: str, source: str, expected: dict[str, Any], started: datetime) -> Diff:
    fields = FIELDS[api]
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            stored = conn.execute(sa.text("SELECT order_id, raw FROM orders WHERE source = :s"), {"s": source}).all()
            lines: dict[Any, int] = {order_id: int(n) for order_id, n in conn.execute(sa.text(
                "SELECT order_id, count(*) FROM order_lines WHERE source = :s GROUP BY order_id"), {"s": source})}
    finally:
        engine.dispose()
    diff = Diff()
    counts = collections.Counter(str(order_id) for order_id, _ in stored)
    diff.dup = sum(n - 1 for n in counts.values())
    diff.lost = sorted(set(expected) - set(counts))
    diff.unknown = sorted(set(counts) - set(expected))
    newest = max((r.get("date_created") or "" for r in expected.values()), default="")
    horizon = (datetime.fromisoformat(newest) - timedelta(days=FIRESPRING_LOOKBACK_DAYS + 1)).isoformat() \
        if api == "firespring" and newest else ""
    for order_id, raw in stored:
        record = expected.get(str(order_id))
        if record is None:
            continue
        mine = orjson.loads(raw) if isinstance(raw, str | bytes) else raw
        want = fields.fingerprint(record)
        if fields.fingerprint(mine) != want or int(lines.get(order_id, 0)) != want[2]:
            older = api == "firespring" and str(record.get("date_created") or "") < horizon
            (diff.stale_older if older else diff.stale).append(str(order_id))
    diff.recent = recent_changes(api, expected, diff, started)
    return diff


def changed_at(api: str, record: dict[str, Any]) -> datetime | None:
    value = FIELDS[api].fingerprint(record)[0] if api != "firespring" else record.get("date_created")
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo("Europe/Zurich"))  # e-guma: Zurich time


def recent_changes(api: str, expected: dict[str, Any], diff: Diff, started: datetime) -> dict[str, int]:
    """How many lost / stale orders changed in the 5 minutes before the final run started (a look-back symptom)."""
    horizon = started - timedelta(seconds=300)
    result = {}
    for name in ("lost", "stale"):
        moments = [changed_at(api, expected[i]) for i in getattr(diff, name)]
        result[name] = sum(1 for m in moments if m is not None and m >= horizon)
    return result


def chaos_api(api: str, destination: str, url: str, orders: int, kills: int, max_delay: float, seed: int,
              work: Path, concurrency: int | None = None) -> Outcome:
    outcome = Outcome(api, destination)
    rng = random.Random(f"{seed}:{api}")
    data = work / f"{api}-sandbox.sqlite"
    log = work / f"{api}-{destination}.log"
    try:
        with chaos_server(api, orders, data, seed) as root:
            source = f"chaos_{api}"
            config = write_config(work / f"{api}-{destination}.toml", url,
                                  {source: {**ordersync_source(api, root),
                                            **({"concurrency": concurrency} if concurrency else {})}})
            mutator = Mutator(root, data, rng, pause=0.05)
            mutator.start()
            try:
                outcome.kills, outcome.runs = kill_loop(config, kills, rng, max_delay, log)
            finally:
                mutator.stopped.set()
                mutator.join()
            outcome.changes = mutator.changes
            httpx.post(f"{root}/_chaos/calm", timeout=30)
            expected: dict[str, Any] | None = None  # the data no longer changes: listed once
            for name in ("final", "again"):
                started = datetime.now(UTC)
                ok, runs = final_sync(config, log)
                outcome.runs += runs
                if not ok:
                    tail = [line for line in log.read_text(errors="replace").splitlines() if line.strip()][-1:]
                    outcome.error = f"the {name} sync failed {runs} times: {tail[0] if tail else '?'}"
                    break
                expected = expected or truth(api, root)
                setattr(outcome, name, compare(api, url, source, expected, started))
            outcome.orders = len(expected or {})
            outcome.faults = httpx.get(f"{root}/_chaos/stats", timeout=30).json()
    except Exception as exc:  # noqa: BLE001 - one API's failure is reported in its row, the others still run
        outcome.error = f"{type(exc).__name__}: {exc}"[:300]
    return outcome


def report(outcomes: list[Outcome]) -> list[str]:
    kinds = ("429", "5xx", "reset", "truncated", "slow", "held", "drift")
    out = ["| API | destination | orders | requests | faulted | " + " | ".join(kinds) +
           " | changes | kills | runs | lost | dup | unknown | stale | stale, older | lost +1 run | stale +1 run |",
           "|---|---|" + "---:|" * (len(kinds) + 13)]
    for o in outcomes:
        requests = o.faults.get("requests", 0)
        faulted = sum(o.faults.get(k, 0) for k in kinds if k != "drift")
        share = f"{faulted:,} ({faulted / requests:.1%})" if requests else "0"
        f, a = o.final, o.again
        cells = [o.api, o.destination, f"{o.orders:,}", f"{requests:,}", share,
                 *(f"{o.faults.get(k, 0):,}" for k in kinds), f"{o.changes:,}", str(o.kills), str(o.runs),
                 str(len(f.lost)), str(f.dup), str(len(f.unknown)), str(len(f.stale)), str(len(f.stale_older)),
                 str(len(a.lost)), str(len(a.stale))]
        out.append("| " + " | ".join(cells) + " |")
    for o in outcomes:
        if o.error:
            out.append(f"\n{o.api} -> {o.destination}: {o.error}")
        for when, diff in (("after the final run", o.final), ("after one more run", o.again)):
            for name in ("lost", "unknown", "stale"):
                ids = getattr(diff, name)
                if ids:
                    recent = diff.recent.get(name)
                    note = f", {recent} of them changed in the 5 minutes before the run" if recent is not None else ""
                    out.append(f"\n{o.api} -> {o.destination}, {when}: {name} {len(ids)}{note}; "
                               f"e.g. {', '.join(ids[:3])}")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="bounded: 3,000 orders and 5 kills per API")
    parser.add_argument("--orders", type=int, help="orders per API (default 25,000; quick 3,000)")
    parser.add_argument("--kills", type=int, help="SIGKILLs per API (default 10; quick 5)")
    parser.add_argument("--apis", default=",".join(APIS))
    parser.add_argument("--seed", type=int, default=int(time.time()) % 100000)
    parser.add_argument("--postgres", action="store_true", help="also into PostgreSQL (a throwaway server)")
    parser.add_argument("--destinations", default="sqlite", help="comma-separated: sqlite, duckdb (--postgres adds "
                        "postgresql)")
    parser.add_argument("--keep", type=Path, help="keep the databases, sandboxes and sync logs in this folder")
    parser.add_argument("--concurrency", type=int, help="slices in flight (default: each API's own default)")
    parser.add_argument("--hostile", action="store_true", help="hostile answers (bomb, drip, bad records) instead")
    args = parser.parse_args()
    if args.hostile:
        import hostile

        return hostile.main([a.strip() for a in args.apis.split(",") if a.strip()])
    orders = args.orders or (3_000 if args.quick else 25_000)
    kills = args.kills or (5 if args.quick else 10)
    max_delay = 3.0 if args.quick else 6.0
    chosen = [a.strip() for a in args.apis.split(",") if a.strip()]
    print(f"chaos: {orders:,} orders per API, {kills} kills per API, faults {FAULTS} + slow:{SLOW} + "
          f"drift:{DRIFT} + held:{HELD}, concurrency {args.concurrency or 'default'}, seed {args.seed}", flush=True)
    started = time.monotonic()
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="ordersync-chaos-") as tmp, \
            (throwaway_postgres() if args.postgres else contextlib.nullcontext()) as pg:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        files = {"sqlite": lambda api: f"sqlite:///{work / f'{api}.db'}",
                 "duckdb": lambda api: f"duckdb:///{work / f'{api}.duckdb'}"}
        destinations = {name: files[name] for name in args.destinations.split(",") if name in files}
        if args.postgres:
            if pg is None:
                print("no PostgreSQL server could be started here: left out", flush=True)
            else:
                reset_postgres(pg)
                destinations["postgresql"] = lambda api: pg
        for destination, make_url in destinations.items():
            with ThreadPoolExecutor(len(chosen)) as pool:  # the four APIs at once, each in its own processes
                futures = [pool.submit(chaos_api, api, destination, make_url(api), orders, kills, max_delay,
                                       args.seed, work, args.concurrency) for api in chosen]
                outcomes += [future.result() for future in futures]
    print("\n".join(report(outcomes)))
    print(f"\n{time.monotonic() - started:.0f} s")
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
