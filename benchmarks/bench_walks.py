"""Benchmark the walks and the auth chain difference (a script, never a timed test).

Usage: ``python benchmarks/bench_walks.py [--quick] [--auth-only]``. Writes raw rows to
``benchmarks/results/walks.txt`` and prints them; ``--auth-only`` runs only the auth-difference
rows and replaces those in the file, keeping the walk rows.

Workloads (built with trusted events, so building is fast and nothing depends on the synthetic
room generator):

* **walks**: a room of N events (10^4, 10^5, 10^6): a linear history with a two-branch fork
  merged every 50 events; ``backfill(limit=100)`` from the forward extremity and from the
  middle, ``missing_events(limit=10)`` for a 10-event gap at the top and in the middle.
  Baseline in the same run: a per-event best-first walk (one store call per event, Synapse's
  shape), for round trips.
* **auth difference**: a room of 10^5 members (invite then join each; the power levels
  replaced every 100 joins), forked into two states that each change the power levels and see
  50 different members leave. ``auth_chain_difference`` with the chain index vs the BFS.
"""

from __future__ import annotations

import argparse
import heapq
import json
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Mapping
from functools import partial
from pathlib import Path
from typing import Any

from eventgraph import Event, MemoryStore
from eventgraph.graph import auth_chain, backfill, missing_events
from eventgraph.protocols import (
    ChainLink,
    ChainPosition,
    ChainReverseLink,
    EventFacts,
    EventReader,
)
from eventgraph.testing import CountingStore

ROOM = "!bench:a.example"
V = "10"


def _ev(
    event_id: str,
    *,
    prev: list[str],
    auth: list[str],
    depth: int,
    kind: str = "m.room.message",
    state_key: str | None = None,
    content: dict[str, object] | None = None,
) -> Event:
    pdu: dict[str, object] = {
        "type": kind,
        "room_id": ROOM,
        "sender": "@admin:a.example",
        "content": content or {},
        "depth": depth,
        "origin_server_ts": depth,
        "prev_events": prev,
        "auth_events": auth,
    }
    if state_key is not None:
        pdu["state_key"] = state_key
    return Event.from_trusted_pdu(pdu, V, event_id=event_id)


def build_walk_room(n: int) -> tuple[MemoryStore, list[str]]:
    """A linear history with a fork/merge every 50 events; returns the store and the spine."""
    store = MemoryStore()
    batch = [_ev("$c", prev=[], auth=[], depth=1, kind="m.room.create", state_key="")]
    spine = ["$c"]
    depth = 1
    i = 0
    while len(store) + len(batch) < n:
        i += 1
        depth += 1
        top = spine[-1]
        if i % 50 == 0:
            a, b = f"$a{i}", f"$b{i}"
            batch.append(_ev(a, prev=[top], auth=["$c"], depth=depth))
            batch.append(_ev(b, prev=[top], auth=["$c"], depth=depth))
            depth += 1
            m = f"$m{i}"
            batch.append(_ev(m, prev=[a, b], auth=["$c"], depth=depth))
            spine.append(m)
        else:
            e = f"$e{i}"
            batch.append(_ev(e, prev=[top], auth=["$c"], depth=depth))
            spine.append(e)
        if len(batch) >= 50_000:
            store.add_events(batch)
            batch = []
    store.add_events(batch)
    return store, spine


def build_member_room(members: int) -> tuple[MemoryStore, list[str], list[str]]:
    """10^5-member room and two forked state sets (event IDs)."""
    events: list[Event] = []
    add = events.append
    add(_ev("$create", prev=[], auth=[], depth=1, kind="m.room.create", state_key=""))
    add(
        _ev(
            "$admin",
            prev=["$create"],
            auth=["$create"],
            depth=2,
            kind="m.room.member",
            state_key="@admin:a.example",
        )
    )
    pl, pl_n = "$pl0", 0
    add(
        _ev(
            pl,
            prev=["$admin"],
            auth=["$create", "$admin"],
            depth=3,
            kind="m.room.power_levels",
            state_key="",
        )
    )
    add(
        _ev(
            "$jr",
            prev=[pl],
            auth=["$create", "$admin", pl],
            depth=4,
            kind="m.room.join_rules",
            state_key="",
        )
    )
    top, depth = "$jr", 4
    joins: list[str] = []
    for u in range(members):
        user = f"@u{u}:a.example"
        depth += 1
        inv = f"$inv{u}"
        add(
            _ev(
                inv,
                prev=[top],
                auth=["$create", pl, "$admin", "$jr"],
                depth=depth,
                kind="m.room.member",
                state_key=user,
            )
        )
        depth += 1
        join = f"$join{u}"
        add(
            _ev(
                join,
                prev=[inv],
                auth=["$create", pl, "$jr", inv],
                depth=depth,
                kind="m.room.member",
                state_key=user,
            )
        )
        joins.append(join)
        top = join
        if u % 100 == 99:
            depth += 1
            pl_n += 1
            new_pl = f"$pl{pl_n}"
            add(
                _ev(
                    new_pl,
                    prev=[top],
                    auth=["$create", pl, "$admin"],
                    depth=depth,
                    kind="m.room.power_levels",
                    state_key="",
                    content={"n": pl_n},
                )
            )
            pl, top = new_pl, new_pl
    base = ["$create", "$admin", "$jr", *joins]
    forks: list[list[str]] = []
    for side in ("a", "b"):
        d = depth
        side_pl = f"$pl_{side}"
        add(
            _ev(
                side_pl,
                prev=[top],
                auth=["$create", pl, "$admin"],
                depth=d + 1,
                kind="m.room.power_levels",
                state_key="",
                content={"side": side},
            )
        )
        leaves: dict[str, str] = {}
        offset = 0 if side == "a" else 50
        for k in range(50):
            u = (k + offset) * (members // 100)
            leave = f"$leave_{side}{u}"
            add(
                _ev(
                    leave,
                    prev=[side_pl],
                    auth=["$create", side_pl, f"$join{u}"],
                    depth=d + 2,
                    kind="m.room.member",
                    state_key=f"@u{u}:a.example",
                    content={"membership": "leave"},
                )
            )
            leaves[f"$join{u}"] = leave
        forks.append([leaves.get(i, i) for i in base] + [side_pl])
    store = MemoryStore()
    store.add_events(events)
    return store, forks[0], forks[1]


class _CountingReads:
    """A MemoryStore seen through counters: store calls (round trips), IDs asked about, and
    rows returned (facts, chain members and links). Offers exactly what the store offers."""

    def __init__(self, inner: MemoryStore) -> None:
        self.inner = inner
        self.calls = self.ids = self.rows = 0

    def _n(self, asked: int, got: Mapping[Any, Any], per: bool = False) -> None:
        self.calls += 1
        self.ids += asked
        self.rows += sum(map(len, got.values())) if per else len(got)

    def get_events(self, ids: Collection[str], /) -> Mapping[str, Event]:
        got = self.inner.get_events(ids)
        self._n(len(ids), got)
        return got

    def get_facts(self, ids: Collection[str], /) -> Mapping[str, EventFacts]:
        got = self.inner.get_facts(ids)
        self._n(len(ids), got)
        return got

    def get_chain_positions(self, ids: Collection[str], /) -> Mapping[str, ChainPosition]:
        got = self.inner.get_chain_positions(ids)
        self._n(len(ids), got)
        return got

    def get_chain_links(self, chains: Collection[int], /) -> Mapping[int, tuple[ChainLink, ...]]:
        got = self.inner.get_chain_links(chains)
        self._n(0, got, per=True)
        return got

    def get_chain_members(
        self, ranges: Mapping[int, tuple[int, int]], /
    ) -> Mapping[int, tuple[str, ...]]:
        got = self.inner.get_chain_members(ranges)
        self._n(0, got, per=True)
        return got

    def get_chain_reverse_links(
        self, ranges: Mapping[int, tuple[int, int]], /
    ) -> Mapping[int, tuple[ChainReverseLink, ...]]:
        got = self.inner.get_chain_reverse_links(ranges)
        self._n(0, got, per=True)
        return got

    def get_unindexed(self, ids: Collection[str], /) -> Collection[str]:
        got = self.inner.get_unindexed(ids)
        self.calls += 1
        self.ids += len(ids)
        self.rows += len(got)
        return got


def timeit(fn: Callable[[], object], reps: int, warmup: int = 3) -> tuple[float, float, float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times), statistics.median(times), max(times)


def per_event_backfill(store: EventReader, seed: str, limit: int) -> int:
    """Baseline: best-first with one store call per event taken (round trips only)."""
    heap = [(-store.get_facts([seed])[seed].depth, seed)]
    seen = {seed}
    taken = 0
    while heap and taken < limit:
        _, i = heapq.heappop(heap)
        taken += 1
        facts = store.get_facts([i])[i]
        got = store.get_facts(list(facts.prev_event_ids))
        for p, f in got.items():
            if p not in seen:
                seen.add(p)
                heapq.heappush(heap, (-f.depth, p))
    return taken


def _no_baseline(store: EventReader) -> int:
    """No per-event baseline (missing_events is already level by level in Synapse)."""
    return 0


def rounds(store: MemoryStore, fn: Callable[[EventReader], object]) -> int:
    counting = CountingStore(store)
    fn(counting)
    return counting.statistics().round_trips


def walk_rows(n: int, reps: int) -> list[tuple[str, float, float, float, int, int]]:
    """The walk rows of one room size: (case, min, median, max, round trips, baseline's)."""
    rows: list[tuple[str, float, float, float, int, int]] = []
    t0 = time.perf_counter()
    store, spine = build_walk_room(n)
    print(f"built {len(store)} events in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    # The middle point is a merge event, so every size walks the same shape.
    mid_i = next(i for i in range(len(spine) // 2, len(spine)) if spine[i].startswith("$m"))
    tip, mid = spine[-1], spine[mid_i]
    cases: list[tuple[str, Callable[[EventReader], object], Callable[[EventReader], object]]]
    cases = [
        (
            "backfill(limit=100) top",
            partial(backfill, room_id=ROOM, from_event_ids=[tip], limit=100),
            partial(per_event_backfill, seed=tip, limit=100),
        ),
        (
            "backfill(limit=100) middle",
            partial(backfill, room_id=ROOM, from_event_ids=[mid], limit=100),
            partial(per_event_backfill, seed=mid, limit=100),
        ),
        (
            "missing_events(limit=10) top",
            partial(
                missing_events,
                room_id=ROOM,
                earliest_event_ids=[spine[-12]],
                latest_event_ids=[tip],
                limit=10,
            ),
            _no_baseline,
        ),
        (
            "missing_events(limit=10) middle",
            partial(
                missing_events,
                room_id=ROOM,
                earliest_event_ids=[spine[mid_i - 12]],
                latest_event_ids=[mid],
                limit=10,
            ),
            _no_baseline,
        ),
    ]
    for name, fn, baseline in cases:
        lo, med, hi = timeit(partial(fn, store), reps)
        rt = rounds(store, fn)
        brt = rounds(store, baseline)
        rows.append((name, lo, med, hi, rt, brt))
    del store
    return rows


def _walk_rows_in_fresh_process(n: int, reps: int) -> list[list[Any]]:
    # Each size runs in its own interpreter, so one size's heap (a 10^6-event room leaves a large,
    # fragmented one) does not slow the next: every row measures the walk, not the process history.
    cmd = [sys.executable, __file__, "--one-size", str(n), "--reps", str(reps)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    sys.stderr.write(done.stderr)
    rows: list[list[Any]] = json.loads(done.stdout)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="10^4 and 10^5 only, fewer reps")
    parser.add_argument("--auth-only", action="store_true", help="only the auth difference")
    parser.add_argument("--one-size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--reps", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_size:
        print(json.dumps(walk_rows(args.one_size, args.reps or 300)))
        return
    sizes = [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000]
    reps = 50 if args.quick else 300
    rows: list[str] = []
    header = (
        f"# bench_walks  python {platform.python_version()}  {platform.machine()}  "
        f"{platform.platform()}  reps={reps}"
    )
    rows.append(header)
    rows.append("op\tsize\tmin_ms\tmedian_ms\tmax_ms\tround_trips\tbaseline_round_trips")
    medians: dict[tuple[str, int], float] = {}
    out = Path(__file__).parent / "results" / "walks.txt"
    if args.auth_only:
        sizes = []
        kept = out.read_text().splitlines() if out.exists() else []
        auth_rows = ("auth_chain_difference", "speedup", "# auth difference")
        rows = [r for r in kept if not r.startswith(auth_rows)]
    for n in sizes:
        for name, lo, med, hi, rt, brt in _walk_rows_in_fresh_process(n, reps):
            medians[(name, n)] = med
            rows.append(
                f"{name}\t{n}\t{lo * 1e3:.4f}\t{med * 1e3:.4f}\t{hi * 1e3:.4f}\t{rt}\t{brt}"
            )
            print(rows[-1], file=sys.stderr)
    for name in sorted({k[0] for k in medians}) if sizes else ():
        ratio = medians[(name, sizes[-1])] / medians[(name, sizes[0])]
        rows.append(f"ratio {sizes[-1]}/{sizes[0]}\t{name}\t{ratio:.2f}")
        print(rows[-1], file=sys.stderr)

    members = 100_000
    t0 = time.perf_counter()
    store, a, b = build_member_room(members)
    print(
        f"built member room ({len(store)} events) in {time.perf_counter() - t0:.1f}s",
        file=sys.stderr,
    )
    common = set(a) & set(b)
    only_a = [i for i in a if i not in common]
    only_b = [i for i in b if i not in common]
    diff_reps = 5 if args.quick else 10
    rows.append(
        f"# auth difference rows: python {platform.python_version()}, reps={diff_reps}, "
        "index = chain cover with the upward search (MemoryStore reads it both ways)"
    )
    diff_cases: list[tuple[str, list[list[str]], bool]] = [
        ("full state sets", [a, b], False),
        ("full state sets, inclusive", [a, b], True),
        ("conflicted events only", [only_a, only_b], False),
    ]
    for label, sets, inclusive in diff_cases:
        indexed = auth_chain.auth_chain_difference(store, sets, inclusive=inclusive)
        plain = auth_chain.bfs_auth_chain_difference(store, sets, inclusive=inclusive)
        assert indexed == plain, "index != BFS"
        meds: dict[str, float] = {}
        diff_fns: list[tuple[str, Callable[..., frozenset[str]]]] = [
            ("index", auth_chain.auth_chain_difference),
            ("bfs", auth_chain.bfs_auth_chain_difference),
        ]
        for kind, diff_fn in diff_fns:
            run = partial(diff_fn, store, sets, inclusive=inclusive)
            lo, med, hi = timeit(run, diff_reps, warmup=1)
            meds[kind] = med
            counting = _CountingReads(store)
            diff_fn(counting, sets, inclusive=inclusive)
            rows.append(
                f"auth_chain_difference {kind} ({label}: {len(sets[0])}+{len(sets[1])} ids)"
                f"\t{members}\t{lo * 1e3:.2f}\t{med * 1e3:.2f}\t{hi * 1e3:.2f}\t"
                f"{counting.calls}\t-\tids asked {counting.ids}, rows {counting.rows}"
            )
            print(rows[-1], file=sys.stderr)
        rows.append(
            f"speedup index/bfs\t{label}\t{meds['bfs'] / meds['index']:.1f}x\t|diff|={len(indexed)}"
        )
        print(rows[-1], file=sys.stderr)
    out.write_text("\n".join(rows) + "\n")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
