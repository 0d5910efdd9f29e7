"""Benchmark: SqliteStore against MemoryStore, in the same run.

Measures, for rooms of 10^5 and 10^6 events (``--sizes``):

* ingest: ``add_events`` in batches of 1000 (events per second, per batch min/median/max);
* the database's size per event (after a WAL checkpoint);
* batch reads: ``get_facts`` and ``get_events`` of 1000 random stored IDs (``get_events``
  rebuilds each event from its stored bytes through ``Event.from_trusted_pdu``);
* walks: ``backfill`` and ``missing_events`` from random points of the room (warm-up, then
  ``--repeat`` points; min/median/max), with the store round trips each walk made
  (``CountingStore``).

The room is a long linear history with a fork every ~40 events (2-3 branches of 1-6 events,
merged by the next event), trusted room version 10 events with tiny content and three
auth events each (create, join, power levels; 3% of events are membership changes, so the
chain cover index grows too); built once and fed to both stores, then frozen out of the
garbage collector's reach (``gc.freeze``: a server holds its events in the database, not in a
Python list). Raw rows go to ``benchmarks/results/stores.txt``.

Run: ``python benchmarks/bench_stores.py [--sizes 100000 1000000] [--repeat 30]``.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from eventgraph import Event, MemoryStore
from eventgraph.graph.walks import backfill, missing_events
from eventgraph.stores.sqlite import SqliteStore
from eventgraph.testing.counting import CountingStore

ROOM = "!bench:example.org"
BATCH = 1000
RESULTS = Path(__file__).resolve().parent / "results" / "stores.txt"


def build_room(n: int, seed: int = 1) -> list[Event]:
    """``n`` trusted events of one room: linear history with small forks and merges."""
    rng = random.Random(seed)
    events: list[Event] = []
    auth = ["$0:b", "$1:b", "$2:b"]

    def add(
        prev: Sequence[str], depth: int, state_key: str | None = None, kind: str = "m.room.member"
    ) -> str:
        i = len(events)
        pdu: dict[str, Any] = {
            "type": "m.room.message" if state_key is None else kind,
            "room_id": ROOM,
            "sender": "@u:example.org",
            "content": {"b": i},
            "depth": depth,
            "origin_server_ts": i,
            "prev_events": list(prev),
            "auth_events": [a for a in auth if a != f"${i}:b"][: min(i, 3)],
        }
        if state_key is not None:
            pdu["state_key"] = state_key
        event_id = f"${i}:b"
        events.append(Event.from_trusted_pdu(pdu, "10", event_id=event_id, backfilled=True))
        return event_id

    # The auth events every later event names: create, the sender's join, power levels.
    tip = [add([], 1, "", "m.room.create")]
    tip = [add(tip, 2, "@u:example.org")]
    tip = [add(tip, 3, "", "m.room.power_levels")]
    depth = 3
    while len(events) < n:
        if rng.random() < 1 / 40 and n - len(events) > 20:
            branches = []
            for _ in range(rng.choice((2, 3))):
                b, d = tip, depth
                for _ in range(rng.randint(1, 6)):
                    d += 1
                    b = [add(b, d)]
                branches.append((b[0], d))
            depth = max(d for _, d in branches) + 1
            tip = [add(sorted(b for b, _ in branches), depth)]
        else:
            depth += 1
            tip = [add(tip, depth, None if rng.random() < 0.97 else "@u:example.org")]
    return events[:n]


def timed(fn: Callable[..., object], *args: object) -> float:
    """Seconds ``fn(*args)`` takes."""
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def summary(xs: Sequence[float]) -> tuple[float, float, float]:
    return min(xs), statistics.median(xs), max(xs)


class Recorder:
    """Collects raw rows (tab-separated) and prints them as they come."""

    def __init__(self) -> None:
        self.rows: list[str] = []

    def row(self, *fields: object) -> None:
        line = "\t".join(f"{f:.6g}" if isinstance(f, float) else str(f) for f in fields)
        self.rows.append(line)
        print(line, flush=True)


def ingest(store: Any, events: Sequence[Event]) -> list[float]:
    """Per-batch seconds of storing ``events`` in batches of :data:`BATCH`."""
    times = []
    for start in range(0, len(events), BATCH):
        batch = events[start : start + BATCH]
        times.append(timed(store.add_events, batch))
    return times


def walk_points(events: Sequence[Event], repeat: int, rng: random.Random) -> Iterator[Event]:
    """Random starting events, away from the very start of the room."""
    lo = min(len(events) - 1, 2000)
    for _ in range(repeat):
        yield events[rng.randrange(lo, len(events))]


def bench_size(n: int, repeat: int, rec: Recorder, workdir: Path) -> None:
    started = time.perf_counter()
    events = build_room(n)
    print(f"# built {n:,} events in {time.perf_counter() - started:.1f} s", flush=True)
    # The room's events live for the whole run: move them out of the collector's way, so both
    # stores' timings measure the store, not full collections over a million objects.
    gc.collect()
    gc.freeze()
    path = workdir / f"bench{n}.db"
    stores: dict[str, Any] = {"memory": MemoryStore(), "sqlite": SqliteStore(path)}

    # -- ingest --
    for kind, store in stores.items():
        times = ingest(store, events)
        total = sum(times)
        lo, med, hi = summary(
            [len(events[i * BATCH : (i + 1) * BATCH]) / t for i, t in enumerate(times)]
        )
        rec.row("ingest", kind, n, "events/s", n / total, "batch_rate_min_med_max", lo, med, hi)
    sqlite_store: SqliteStore = stores["sqlite"]
    sqlite_store._db().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = path.stat().st_size
    rec.row("db_size", "sqlite", n, "bytes/event", size / n, "file_bytes", size)

    # -- batch reads --
    rng = random.Random(2)
    ids = [events[rng.randrange(n)].event_id for _ in range(1000)]
    for kind, store in stores.items():
        for name, fn in (("get_facts", store.get_facts), ("get_events", store.get_events)):
            fn(ids)  # warm-up
            xs = [timed(fn, ids) * 1e6 / len(ids) for _ in range(5)]
            lo, med, hi = summary(xs)
            rec.row(name, kind, n, "us/id_min_med_max", lo, med, hi)

    # -- walks --
    depth_of = {e.event_id: e.depth for e in events}
    walks: list[tuple[str, Callable[[Any, Event], list[Event]]]] = [
        ("backfill_100", lambda s, e: backfill(s, ROOM, [e.event_id], 100)),
        (
            "backfill_1000",
            lambda s, e: backfill(s, ROOM, [e.event_id], 1000, max_limit=1000),
        ),
        (
            "missing_events_20",
            lambda s, e: missing_events(s, ROOM, [], [e.event_id], 20),
        ),
        (
            "missing_events_1000",
            lambda s, e: missing_events(
                s, ROOM, [], [e.event_id], 1000, depth_of[e.event_id] - 2000, max_limit=1000
            ),
        ),
    ]
    for walk_name, walk in walks:
        points = list(walk_points(events, repeat, random.Random(3)))
        answers: dict[str, list[list[str]]] = {}
        per_kind: dict[str, list[float]] = {}
        for kind, store in stores.items():
            counting = CountingStore(store)
            walk(counting, points[0])  # warm-up
            xs, trips, got = [], [], []
            for point in points:
                counting.reset()
                start = time.perf_counter()
                result = walk(counting, point)
                xs.append((time.perf_counter() - start) * 1e3)
                trips.append(counting.statistics().round_trips)
                got.append([e.event_id for e in result])
            answers[kind] = got
            per_kind[kind] = xs
            lo, med, hi = summary(xs)
            rec.row(
                walk_name,
                kind,
                n,
                "ms_min_med_max",
                lo,
                med,
                hi,
                "round_trips_med",
                statistics.median(trips),
                "events_med",
                statistics.median(len(g) for g in got),
            )
        if answers["memory"] != answers["sqlite"]:
            raise SystemExit(f"{walk_name}: the stores gave different answers")
        ratio = statistics.median(per_kind["sqlite"]) / statistics.median(per_kind["memory"])
        rec.row(walk_name, "ratio_sqlite/memory", n, "median", ratio)
    sqlite_store.close()
    path.unlink()
    gc.unfreeze()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    rec = Recorder()
    rec.row(
        "# machine",
        platform.platform(),
        platform.processor() or platform.machine(),
        f"cpus={os.cpu_count()}",
        f"python={sys.version.split()[0]}",
        f"sqlite={sqlite3.sqlite_version}",
    )
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        for n in args.sizes:
            bench_size(n, args.repeat, rec, Path(tmp))
            gc.collect()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(rec.rows) + "\n")
    print(f"# wrote {args.output}")


if __name__ == "__main__":
    main()
