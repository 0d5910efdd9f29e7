"""Benchmark: the ingest pipeline and state at event (issue 5). A script, not a test.

Usage: python benchmarks/bench_ingest.py [--sizes 10000,100000] [--members 100000]
       [--stores memory,sqlite] [--memory-sizes 10000] [--state-size 100000] [--no-state-reads]
       [--gc-freeze]

Rows go to stdout and are appended to benchmarks/results/ingest.txt. Method: a synthetic room
from ``eventgraph.synth`` (room version 11, 1% forks, ``--members`` members) is generated and
serialised to PDUs first, into files of 20,000 PDUs in a temporary directory (``--feed
files``, the default; removed at the end), then fed to ``Room.add`` in batches of 1,000 (the
full pipeline: parse, ID, content hash, signature hook, auth x3, state groups, store); each
file is loaded outside the timed region, so memory stays bounded at any size and the timed
process does nothing between batches but load the next PDUs — as a server receiving them
would. ``--feed stream`` (the method of earlier rounds) generates each batch in the same
process between the timed ``Room.add`` calls: the generator's own work (its room state, its
state resolutions) then shares the process's caches and heap, and the pipeline measures
10–15% slower. Each size is timed once, after a 2,000-event warm-up room, as wall time and as
CPU time of the process (the machines are shared: CPU time is the steadier figure). Also
counted: state resolutions computed (the store's cache), the outcomes and the process's peak
RSS. Memory is the tracemalloc growth of a separate run, divided by the events (retained after
the run, and peak). State reads use a room whose state grows to ``--state-size`` members by
one join per event (one state group per join),
timed as min/median/max of repeated calls.
"""

from __future__ import annotations

import argparse
import gc
import pickle
import platform
import resource
import statistics
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from eventgraph.protocols import RoomStore, StateGroupDraft, StateWrite
from eventgraph.room import NoSignatureChecks, Room
from eventgraph.stores.memory import MemoryStore
from eventgraph.stores.memory_state import MemoryStateGroups
from eventgraph.stores.sqlite import SqliteStore
from eventgraph.synth import generate_room

RESULTS = Path(__file__).resolve().parent / "results" / "ingest.txt"
CHUNK = 1000
PART = 20_000


def _chunks(n: int, members: int) -> Iterator[list[dict[str, object]]]:
    chunk: list[dict[str, object]] = []
    for event in generate_room("11", events=n, members=members, fork_rate=0.01, seed=1):
        chunk.append(event.to_pdu())
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _write_parts(n: int, members: int, directory: Path) -> list[Path]:
    """Generate the room once and write its PDUs to files of ``PART`` PDUs (pickled lists)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []

    def write(part: list[dict[str, object]]) -> None:
        paths.append(directory / f"part{len(paths)}.pkl")
        paths[-1].write_bytes(pickle.dumps(part, protocol=pickle.HIGHEST_PROTOCOL))

    part: list[dict[str, object]] = []
    for chunk in _chunks(n, members):
        part += chunk
        if len(part) >= PART:
            write(part)
            part = []
    if part:
        write(part)
    return paths


def _from_parts(paths: list[Path]) -> Iterator[list[dict[str, object]]]:
    """The batches of the written parts, each part loaded before its first batch."""
    for path in paths:
        part = pickle.loads(path.read_bytes())
        for start in range(0, len(part), CHUNK):
            yield part[start : start + CHUNK]
        del part


def _store(kind: str) -> RoomStore:
    return MemoryStore() if kind == "memory" else SqliteStore(":memory:")


def bench_ingest(
    n: int,
    members: int,
    kind: str,
    rows: list[str] | None,
    gc_freeze: bool = False,
    parts: list[Path] | None = None,
) -> None:
    """Time ingesting the room of ``n`` events, fed from ``parts`` (written by
    :func:`_write_parts`) or, without them, generated batch by batch in between."""
    store = _store(kind)
    room = Room(store, "11", verifier=NoSignatureChecks())
    wall = cpu = 0.0
    outcomes: Counter[str] = Counter()
    if gc_freeze:
        gc.collect()
        gc.freeze()
    for chunk in _chunks(n, members) if parts is None else _from_parts(parts):
        w, c = time.perf_counter(), time.process_time()
        report = room.add(chunk)
        if gc_freeze:
            # A host's choice, not the library's (Synapse freezes its heap at start-up): what
            # was stored is moved out of the cyclic collector's generations, inside the timing.
            gc.freeze()
        wall += time.perf_counter() - w
        cpu += time.process_time() - c
        outcomes.update(o.status.value for o in report.outcomes)
    resolutions = "?"
    if isinstance(store, MemoryStore):
        resolutions = str(store.state_group_stats().resolutions)
    row = (
        f"ingest store={kind} events={n} members={members} "
        f"gc={'frozen' if gc_freeze else 'default'} feed={'stream' if parts is None else 'files'} "
        f"wall_s={wall:.1f} cpu_s={cpu:.1f} "
        f"rate_wall={n / wall:.0f}/s rate_cpu={n / cpu:.0f}/s resolutions={resolutions} "
        + " ".join(f"{k}={v}" for k, v in sorted(outcomes.items()))
        + f" max_rss_mb={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}"
    )
    if rows is not None:
        rows.append(row)
    print(row, flush=True)


def bench_memory(n: int, members: int, rows: list[str]) -> None:
    chunks = list(_chunks(n, members))
    gc.collect()
    tracemalloc.start()
    before, _ = tracemalloc.get_traced_memory()
    store = MemoryStore()
    room = Room(store, "11", verifier=NoSignatureChecks())
    for chunk in chunks:
        room.add(chunk)
    del chunks
    gc.collect()
    after, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # The PDU chunks were allocated before tracing began: ``after`` is the store's growth.
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
    parser.add_argument("--members", type=int, default=100000)
    parser.add_argument("--stores", default="memory")
    parser.add_argument("--memory-sizes", default="10000")
    parser.add_argument("--state-size", type=int, default=100000)
    parser.add_argument("--no-state-reads", action="store_true")
    parser.add_argument(
        "--gc-freeze", action="store_true", help="also time each size with gc.freeze() per batch"
    )
    parser.add_argument(
        "--feed",
        choices=("files", "stream"),
        default="files",
        help="PDUs generated first into temporary files (default), or between batches",
    )
    args = parser.parse_args()
    rows = [
        f"# machine: {platform.platform()} python {platform.python_version()} "
        f"{time.strftime('%Y-%m-%d %H:%M')}"
    ]
    bench_ingest(2000, 200, "memory", None)  # warm-up
    with tempfile.TemporaryDirectory(prefix="bench_ingest_") as tmp:
        for n in (int(x) for x in args.sizes.split(",")):
            parts = None
            if args.feed == "files":
                t = time.perf_counter()
                parts = _write_parts(n, args.members, Path(tmp) / str(n))
                print(f"# generated {n} events in {time.perf_counter() - t:.0f}s", flush=True)
                gc.collect()
            for kind in args.stores.split(","):
                bench_ingest(n, args.members, kind, rows, parts=parts)
                if args.gc_freeze:
                    gc.unfreeze()
                    bench_ingest(n, args.members, kind, rows, gc_freeze=True, parts=parts)
                    gc.unfreeze()
    for n in (int(x) for x in args.memory_sizes.split(",") if x):
        bench_memory(n, args.members, rows)
    if not args.no_state_reads:
        bench_state_reads(args.state_size, rows)
    RESULTS.parent.mkdir(exist_ok=True)
    with RESULTS.open("a") as f:
        f.write("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
