"""Benchmark: the ingest pipeline and state at event (issue 5). A script, not a test.

Usage: python benchmarks/bench_ingest.py [--sizes 10000,100000] [--state-size 100000]

Rows go to stdout and benchmarks/results/ingest.txt. Method: synthetic rooms from
``eventgraph.synth`` (1% forks), PDUs serialised first, then the full pipeline (parse, ID,
content hash, auth x3, state groups, store) timed once per size after a 2,000-event warm-up
room; memory is the tracemalloc peak of a separate run, divided by the events. State reads use a
room whose state grows to ``--state-size`` members by one join per event (one state group per
join), timed as min/median/max of repeated calls.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
import tracemalloc
from pathlib import Path

from eventgraph.protocols import StateGroupDraft, StateWrite
from eventgraph.room import NoSignatureChecks, Room
from eventgraph.stores.memory_state import MemoryStateGroups
from eventgraph.synth import generate_room
from eventgraph.testing.rooms import room_memory_store

RESULTS = Path(__file__).resolve().parent / "results" / "ingest.txt"


def _pdus(n: int, members: int) -> list[dict[str, object]]:
    events = generate_room("11", events=n, members=members, fork_rate=0.01, seed=1)
    return [e.to_pdu() for e in events]


def bench_ingest(n: int, members: int, rows: list[str]) -> None:
    pdus = _pdus(n, members)
    store = room_memory_store()
    room = Room(store, "11", verifier=NoSignatureChecks())
    start = time.perf_counter()
    for i in range(0, len(pdus), 1000):
        room.add(pdus[i : i + 1000])
    took = time.perf_counter() - start
    stats = store.state_group_stats()
    rows.append(
        f"ingest events={n} members={members} seconds={took:.2f} rate={n / took:.0f}/s "
        f"groups={stats.groups} snapshots={stats.snapshots} compactions={stats.compactions} "
        f"entries={stats.entries}"
    )
    print(rows[-1], flush=True)


def bench_memory(n: int, members: int, rows: list[str]) -> None:
    pdus = _pdus(n, members)
    tracemalloc.start()
    base = tracemalloc.take_snapshot()
    del base
    before, _ = tracemalloc.get_traced_memory()
    store = room_memory_store()
    Room(store, "11", verifier=NoSignatureChecks()).add(pdus)
    after, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rows.append(
        f"memory events={n} members={members} retained_bytes_per_event={(after - before) / n:.0f} "
        f"peak_bytes_per_event={(peak - before) / n:.0f}"
    )
    print(rows[-1], flush=True)


def _time(fn: object, repeat: int) -> tuple[float, float, float]:
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        samples.append(time.perf_counter() - t)
    return min(samples), statistics.median(samples), max(samples)


def bench_state_reads(size: int, rows: list[str]) -> None:
    groups = MemoryStateGroups()
    prev: int | None = None
    ids: list[int] = []
    t = time.perf_counter()
    for i in range(size):
        write = StateWrite(
            groups=(StateGroupDraft(-1, "!r:x", prev, {("m.room.member", f"@u{i}:x"): f"$j{i}"}),)
        )
        prev = groups.apply(groups.prepare(write, connected=lambda _e: True))[-1]
        ids.append(prev)
    build = time.perf_counter() - t
    s = groups.stats()
    rows.append(
        f"state-build joins={size} seconds={build:.2f} groups={s.groups} snapshots={s.snapshots} "
        f"compactions={s.compactions} entries={s.entries} entries_per_change={s.entries / size:.1f}"
    )
    print(rows[-1], flush=True)
    last = ids[-1]
    lo, med, hi = _time(lambda: groups.get_state([last]), 11)
    rows.append(
        f"state_ids_before entries={size} min_ms={lo * 1e3:.2f} median_ms={med * 1e3:.2f} "
        f"max_ms={hi * 1e3:.2f}"
    )
    print(rows[-1], flush=True)
    for depth in (10, 1000, size // 2, size):
        g = ids[depth - 1]
        key = [("m.room.member", "@u0:x")]
        lo, med, hi = _time(lambda g=g, key=key: groups.get_state([g], key), 2001)
        rows.append(
            f"state_id_before depth={depth} min_us={lo * 1e6:.1f} median_us={med * 1e6:.1f} "
            f"max_us={hi * 1e6:.1f}"
        )
        print(rows[-1], flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--state-size", type=int, default=100000)
    args = parser.parse_args()
    rows = [f"# machine: {platform.platform()} python {platform.python_version()}"]
    bench_ingest(2000, 200, [])  # warm-up
    for n in (int(x) for x in args.sizes.split(",")):
        bench_ingest(n, args.members, rows)
    bench_memory(10000, args.members, rows)
    bench_state_reads(args.state_size, rows)
    RESULTS.parent.mkdir(exist_ok=True)
    with RESULTS.open("a") as f:
        f.write("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
