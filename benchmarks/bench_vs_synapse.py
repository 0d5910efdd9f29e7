"""Benchmark: state resolution against Synapse itself, in the same run, on the same rooms.

``bench_stateres.py`` compares with the medians research/synapse-bench.md recorded on another
day. This machine's speed drifts between days by 20% and more, and within a minute by as much
(a shared host), so that ratio moves with the weather. Here the baseline is measured beside
our code: for each room shape of ``bench_stateres.py`` (the same builder, so the same events),
Synapse's ``resolve_events_with_store`` runs in a worker process (``synapse_worker.py``, under
an interpreter that has ``matrix-synapse`` installed) and eventgraph's ``resolve_state`` in
this one, in alternating rounds, so that both sides see the same slow and fast spells. Each
round starts with one untimed resolution on each side (the other process has just run, and
rooms of 10^4 events and more no longer sit in the shared caches), then ``--repeat`` timed ones.
Each side's figures are the median and the minimum CPU time (``time.process_time``) of all its
timed resolutions, and the ratios are Synapse's over ours. On this shared host the median of
a side moves by up to 2x from one minute to the next (seen: our 10^3/10 row 0.24 ms in a
quiet spell and 0.37 in a busy one, Synapse's 1.08 and 1.82), so the minimum — the cost
without interference, for both sides alike — is the steadier ratio; both are reported.

Synapse's store computes the auth chain difference by a plain walk, as the store of
research/synapse-bench.md did (about 30 ms of its 10^5-event figures); its production store
reads a chain cover index from the database instead. So each row also gives Synapse's time
without that walk, and the ratio to it: a baseline that costs Synapse nothing for what our
index does, the stricter comparison.

Set up the baseline once (not a dependency of eventgraph; nothing of it is copied here)::

    python -m venv /tmp/synapse-venv
    /tmp/synapse-venv/bin/pip install matrix-synapse==1.163.2

Run: ``python benchmarks/bench_vs_synapse.py --synapse-python /tmp/synapse-venv/bin/python
[--quick] [--version 11|12] [--rounds K] [--repeat N] [--cpu C]``. Rows are appended to
``benchmarks/results/vs_synapse.txt``.

Both processes run on one CPU (``--cpu``; by default the last this process may use). They never
run at once (each waits for the other's answer), so pinning costs neither side anything, and it
makes them share one core's conditions: on this shared 2-core host the two cores are not equally
loaded, and unpinned the ratio of medians of the 10^3/10 row moved between 3.5x and 6.0x from one
run to the next (pinned: 4.8x–6.1x, and 5.2x–6.4x by minima, in four runs).

Each row also says whether the two answers are equal. Synapse's event IDs are reference hashes,
so the worker maps IDs (see its docstring); where two events tie on power level and timestamp
the order falls to the IDs, and the answers may then legitimately differ.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import bench_stateres as bench

from eventgraph import MemoryStore, StateKey
from eventgraph.events.room_versions import RoomVersion, room_version
from eventgraph.state.resolution import _resolve, _Stats

RESULTS = Path(__file__).resolve().parent / "results" / "vs_synapse.txt"
WORKER = Path(__file__).resolve().parent / "synapse_worker.py"


def add_cpu_option(parser: argparse.ArgumentParser) -> None:
    """The ``--cpu`` option of the benchmarks that run Synapse beside us (see
    :func:`pin_to_one_cpu`)."""
    parser.add_argument(
        "--cpu", type=int, default=None, help="the CPU both sides run on (-1: not pinned)"
    )


def pin_to_one_cpu(cpu: int | None) -> str:
    """Run this process, and the worker it starts next, on one CPU (``None``: the last this
    process may use; a negative number: not pinned). Says what was done, for the header."""
    if cpu is not None and cpu < 0:
        return "not pinned"
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity here)"
    chosen = max(os.sched_getaffinity(0)) if cpu is None else cpu
    os.sched_setaffinity(0, {chosen})  # (inherited by the worker process)
    return f"pinned to CPU {chosen}"


class Synapse:
    """The worker process running Synapse's state resolution."""

    def __init__(self, python: str) -> None:
        self.process = subprocess.Popen(
            [python, str(WORKER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=tempfile.gettempdir(),  # (not a directory whose modules shadow Synapse's)
        )

    def ask(self, request: dict[str, Any]) -> Any:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the Synapse worker stopped")
        return json.loads(line)

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait()


def write_room(
    path: Path, store: MemoryStore, order: list[str], sets: list[dict[StateKey, str]]
) -> None:
    events = store.get_events(order)
    with path.open("w", encoding="utf-8") as f:
        for event_id in order:
            pdu = events[event_id].to_pdu()
            pdu["event_id"] = event_id
            f.write(json.dumps(pdu) + "\n")
        f.write(json.dumps({"state_sets": [[[t, k, e] for (t, k), e in s.items()] for s in sets]}))
        f.write("\n")


def row(
    rv: RoomVersion,
    synapse: Synapse,
    base: bench.RoomBuilder,
    changes: int,
    members: int,
    rounds: int,
    repeat: int,
) -> tuple[list[float], list[float], list[float], bool, _Stats]:
    store, s1, s2 = bench.build_fork(rv, base, changes, members)
    order = _topological(store, base.room_id)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "room.jsonl"
        write_room(path, store, order, [s1, s2])
        synapse.ask({"op": "load", "version": rv.identifier, "path": str(path)})
    stats = _Stats()
    ours_answer = _resolve(rv, [s1, s2], store, stats)  # (warm-up)
    ours: list[float] = []
    theirs: list[float] = []
    algorithm: list[float] = []
    same = True
    for _ in range(rounds):
        _resolve(rv, [s1, s2], store, _Stats())  # (untimed: caches warm again, as Synapse's)
        for _ in range(repeat):
            c0 = time.process_time()
            _resolve(rv, [s1, s2], store, _Stats())
            ours.append((time.process_time() - c0) * 1000)
        reply = synapse.ask({"op": "time", "repeat": repeat})
        theirs.extend(reply["cpu_ms"])
        algorithm.extend(t - w for t, w in zip(reply["cpu_ms"], reply["walk_ms"], strict=True))
        answer = {(t, k): e for t, k, e in reply["answer"]}
        same = same and answer == ours_answer
    return ours, theirs, algorithm, same, stats


def _topological(store: MemoryStore, room_id: str) -> list[str]:
    """Every event of the room, each after its prev and auth events (the builder gives each
    event a depth above those of the events it names)."""
    depth: dict[str, int] = {}
    frontier = set(store.forward_extremities(room_id))
    while frontier:
        facts = store.get_facts(frontier)
        depth.update((e, f.depth) for e, f in facts.items())
        frontier = {p for f in facts.values() for p in f.prev_event_ids if p not in depth}
    return sorted(depth, key=lambda e: (depth[e], e))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--synapse-python", required=True, help="a Python with matrix-synapse")
    parser.add_argument("--quick", action="store_true", help="prefixes of 1,000 events only")
    parser.add_argument("--version", default="11", help="room version (11: v2, 12: v2.1)")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=20)
    add_cpu_option(parser)
    parser.add_argument("--no-write", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    pinned = pin_to_one_cpu(args.cpu)
    rv = room_version(args.version)
    shapes = [(1_000, 100)] if args.quick else [(1_000, 100), (10_000, 1_000), (100_000, 10_000)]
    header = (
        f"# bench_vs_synapse.py  room version {rv.identifier}  python "
        f"{platform.python_version()}  {platform.machine()}  rounds {args.rounds} x repeat "
        f"{args.repeat}  {pinned}\n# prefix members changes auth_checks eventgraph_median_ms "
        "synapse_median_ms ratio synapse_without_walk_median_ms ratio eventgraph_min_ms "
        "synapse_min_ms ratio "
        "synapse_without_walk_min_ms ratio same_answer"
    )
    print(header, flush=True)
    lines = [header]
    synapse = Synapse(args.synapse_python)
    try:
        for prefix, members in shapes:
            base = bench.build_prefix(rv, prefix, members)
            for changes in (10, 100, 1_000):
                rounds, repeat = args.rounds, args.repeat
                if changes >= 1_000:  # (Synapse takes up to a second and more per resolution)
                    rounds, repeat = max(2, rounds // 3), max(3, repeat // 4)
                ours, theirs, algorithm, same, st = row(
                    rv, synapse, base, changes, members, rounds, repeat
                )
                om, tm = statistics.median(ours), statistics.median(theirs)
                am = statistics.median(algorithm)
                omin, tmin, amin = min(ours), min(theirs), min(algorithm)
                line = (
                    f"{prefix} {members} {changes} {st.auth_checks} {om:.2f} {tm:.2f} "
                    f"{tm / om:.1f}x {am:.2f} {am / om:.1f}x {omin:.2f} {tmin:.2f} "
                    f"{tmin / omin:.1f}x {amin:.2f} {amin / omin:.1f}x {'yes' if same else 'no'}"
                )
                print(line, flush=True)
                lines.append(line)
    finally:
        synapse.close()
    if not args.no_write:
        append_rows(RESULTS, lines)


def append_rows(path: Path, lines: list[str]) -> None:
    """Append a run's rows to a results file (made if missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
