"""Benchmark the chain cover index: its upkeep per stored event and the auth-chain queries.

Usage: ``python benchmarks/bench_chain_cover.py [--quick] [--before REV] [--repeat N]
[--only index|queries|sqlite]``.
Writes raw rows to ``benchmarks/results/chain_cover.txt`` and prints them. A script, never a
timed test.

Before and after in the same run: the *before* code is the git revision ``--before`` (default
the last commit before this work, ``db656ad``) of ``eventgraph/protocols.py``,
``eventgraph/chain_cover.py`` and ``eventgraph/graph/auth_chain.py``, loaded from ``git show``
into a private package (``_eg_before``) next to the working tree's ``eventgraph``, so both run
in one interpreter on the same inputs. Timings are CPU time (``time.process_time``), runs of
the two alternate, and rows give the median and the ratio before/after. Every answer of the
new code is compared with the old one's (the same positions, links and reverse links; the same
query answers): the speed-up keeps the index exactly as it was.

Workloads (deterministic):

* **members** (the issue's shape): a room of M members: each joins (auth: create, power
  levels, join rules; one in ten after an invite from the admin, which the join then names);
  every 20 joins a member leaves, every 40 a leaver rejoins; the power levels are replaced
  every 100 events, the topic every 250, the join rules every 1,000. ``index`` rows feed
  ``ChainCoverIndex.add`` alone (no store); M = 10^5 gives about 1.2 x 10^5 events.
* **synth**: the first E events of ``eventgraph.synth.generate_room("11", members=10^5,
  fork_rate=0.01, seed=1)`` (the ingest profile of issue #5), fed to the index alone.
* **queries**: the members room in a ``MemoryStore`` (the before store gets the before index:
  the bench swaps the store's private ``_chain_index`` before adding events), forked in two
  (per side: new power levels and 50 members leaving; and a small fork: one topic change
  against one leave). Timed: ``auth_chain_ids`` of the whole state and of single events,
  ``auth_chain_difference_split`` (what state resolution calls) on both forks,
  ``auth_chain_difference`` of the whole state sets, ``conflicted_subgraph``.
* **sqlite**: two ``SqliteStore`` objects on one file take turns writing 50 events of a
  synthetic room on top of N stored ones; before = the cache rebuilt from every stored event
  whenever the other connection had written (forced on the current code), after = caught up.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

from eventgraph import Event, MemoryStore
from eventgraph import chain_cover as new_cover
from eventgraph.graph import auth_chain as new_ac

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results" / "chain_cover.txt"
BEFORE = "db656ad"
ROOM = "!bench:a.example"
ADMIN = "@admin:a.example"
V = "11"

#: (event ID, type, state key, auth event IDs)
Spec = tuple[str, str, str, tuple[str, ...]]


# -- the before code ------------------------------------------------------------------------------


def load_before(rev: str) -> tuple[ModuleType, ModuleType]:
    """The chain cover module and the auth-chain module at ``rev``, as ``_eg_before.*``."""
    root = Path(tempfile.mkdtemp(prefix="eg_before_"))
    pkg = root / "_eg_before"
    (pkg / "graph").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "graph" / "__init__.py").write_text("")
    for path in ("protocols.py", "chain_cover.py", "graph/auth_chain.py"):
        text = subprocess.run(
            ["git", "show", f"{rev}:eventgraph/{path}"],
            cwd=REPO,
            check=True,
            capture_output=True,
            text=True,
        ).stdout

        def absolute(m: re.Match[str]) -> str:
            name = m.group(2)
            own = name.split(".")[0] in ("protocols", "chain_cover")
            return f"from {'_eg_before' if own else 'eventgraph'}.{name} import"

        (pkg / path).write_text(re.sub(r"from (\.+)([\w.]+) import", absolute, text))
    sys.path.insert(0, str(root))
    try:
        cover = importlib.import_module("_eg_before.chain_cover")
        ac = importlib.import_module("_eg_before.graph.auth_chain")
    finally:
        sys.path.remove(str(root))
    return cover, ac


# -- workloads ----------------------------------------------------------------------------------


def member_room(members: int, seed: int = 1) -> tuple[list[Spec], dict[tuple[str, str], str]]:
    """The members workload: its events (in a valid order) and the final state."""
    rng = random.Random(seed)
    specs: list[Spec] = []
    state: dict[tuple[str, str], str] = {}

    def add(event_id: str, kind: str, key: str, auth: tuple[str, ...]) -> None:
        specs.append((event_id, kind, key, auth))
        state[(kind, key)] = event_id

    add("$create", "m.room.create", "", ())
    add("$admin", "m.room.member", ADMIN, ("$create",))
    add("$pl0", "m.room.power_levels", "", ("$create", "$admin"))
    add("$jr0", "m.room.join_rules", "", ("$create", "$admin", "$pl0"))
    add("$hv", "m.room.history_visibility", "", ("$create", "$admin", "$pl0"))
    n_pl = n_topic = n_jr = 0
    joined: list[str] = []
    left: list[str] = []

    def pl() -> str:
        return state[("m.room.power_levels", "")]

    def jr() -> str:
        return state[("m.room.join_rules", "")]

    def membership(user: str) -> str:
        return state[("m.room.member", user)]

    for u in range(members):
        user = f"@u{u}:a.example"
        if u % 10 == 3:
            add(f"$inv{u}", "m.room.member", user, ("$create", pl(), "$admin"))
            add(f"$join{u}", "m.room.member", user, ("$create", pl(), jr(), f"$inv{u}"))
        else:
            add(f"$join{u}", "m.room.member", user, ("$create", pl(), jr()))
        joined.append(user)
        if u % 20 == 19:
            who = joined.pop(rng.randrange(len(joined)))
            add(f"$leave{u}", "m.room.member", who, ("$create", pl(), membership(who)))
            left.append(who)
        if u % 40 == 39 and left:
            who = left.pop(rng.randrange(len(left)))
            add(f"$rejoin{u}", "m.room.member", who, ("$create", pl(), jr(), membership(who)))
            joined.append(who)
        if len(specs) // 100 > n_pl:
            n_pl += 1
            add(f"$pl{n_pl}", "m.room.power_levels", "", ("$create", pl(), "$admin"))
        if len(specs) // 250 > n_topic:
            n_topic += 1
            add(f"$topic{n_topic}", "m.room.topic", "", ("$create", pl(), "$admin"))
        if len(specs) // 1000 > n_jr:
            n_jr += 1
            add(f"$jr{n_jr}", "m.room.join_rules", "", ("$create", pl(), "$admin"))
    return specs, state


def synth_specs(events: int) -> list[tuple[str, tuple[str, str] | None, tuple[str, ...]]]:
    from eventgraph.synth import generate_room

    stream = generate_room("11", events=events, members=100_000, fork_rate=0.01, seed=1)
    return [(e.event_id, e.state_tuple, e.auth_event_ids) for e in stream]


# -- timing -------------------------------------------------------------------------------------


def cpu(fn: Callable[[], object]) -> float:
    gc.collect()
    t = time.process_time()
    fn()
    return time.process_time() - t


def alternate(
    runs: dict[str, Callable[[], object]], repeat: int, warmup: int = 1
) -> dict[str, float]:
    """Median CPU seconds of each run, the runs alternating (before, after, before, ...)."""
    for fn in runs.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, fn in runs.items():
            times[name].append(cpu(fn))
    return {name: statistics.median(t) for name, t in times.items()}


def index_state(index: Any) -> tuple[Any, ...]:
    """Positions, links and reverse links of an index (old or new) as plain tuples."""
    pos = {e: (p.chain_id, p.sequence) for e, p in index._positions.items()}
    links = sorted(
        (c, x.origin_sequence, x.target_chain_id, x.target_sequence)
        for c, ls in index._links.items()
        for x in ls
    )
    rev = {
        c: [(r.target_sequence, r.origin_chain_id, r.origin_sequence) for r in rs]
        for c, rs in index._reverse.items()
        if rs
    }
    return pos, links, rev


def index_rows(
    label: str,
    feed: Sequence[tuple[str, tuple[str, str] | None, tuple[str, ...]]],
    old_cover: ModuleType,
    repeat: int,
    memory: bool,
) -> list[str]:
    rooms = dict.fromkeys((event_id for event_id, _, _ in feed), ROOM)
    feeds = {
        name: [mod.IndexedEvent(i, ROOM, key, auth) for i, key, auth in feed]
        for name, mod in (("before", old_cover), ("after", new_cover))
    }
    mods = {"before": old_cover, "after": new_cover}
    built: dict[str, Any] = {}

    def run(name: str) -> Callable[[], object]:
        def go() -> None:
            index = mods[name].ChainCoverIndex(rooms.get)
            add = index.add
            for ev in feeds[name]:
                add(ev)
            built[name] = index

        return go

    med = alternate({n: run(n) for n in mods}, repeat)
    same = index_state(built["before"]) == index_state(built["after"])
    assert same, f"{label}: the new index differs from the old one"
    after = built["after"]
    n_links = sum(len(v) for v in after._links.values())
    n_state = sum(1 for _, key, _ in feed if key is not None)
    rows = [
        f"index\t{label}\t{len(feed)}\t{n_state}\t{after._next_chain - 1}\t{n_links}\t"
        f"{med['before'] * 1e6 / len(feed):.2f}\t{med['after'] * 1e6 / len(feed):.2f}\t"
        f"{med['before'] / med['after']:.2f}x\tidentical={same}"
    ]
    if memory:
        held: dict[str, float] = {}
        for name in mods:
            built.clear()
            gc.collect()
            tracemalloc.start()
            run(name)()
            held[name] = tracemalloc.get_traced_memory()[0] / len(feed)
            tracemalloc.stop()
        rows.append(
            f"memory\t{label}\t{len(feed)}\tbytes/event before {held['before']:.0f}, "
            f"after {held['after']:.0f}"
        )
    return rows


# -- queries ------------------------------------------------------------------------------------


def _event(spec: Spec, depth: int, prev: list[str], content: dict[str, Any]) -> Event:
    event_id, kind, key, auth = spec
    pdu: dict[str, Any] = {
        "type": kind,
        "room_id": ROOM,
        "sender": ADMIN,
        "content": content,
        "depth": depth,
        "origin_server_ts": depth,
        "prev_events": prev,
        "auth_events": list(auth),
        "state_key": key,
    }
    return Event.from_trusted_pdu(pdu, V, event_id=event_id)


def _fork(
    events: list[Event],
    state: dict[tuple[str, str], str],
    leavers: list[tuple[str, str]],
    name: str,
    pl_every: int,
) -> dict[tuple[str, str], str]:
    """One side of a fork from the end of ``events``: new power levels, then ``leavers`` leave
    (new power levels again every ``pl_every`` leaves); the side's state."""
    top, depth = events[-1].event_id, events[-1].depth
    side = dict(state)
    pl_key = ("m.room.power_levels", "")
    for k, key in enumerate(leavers):
        if k % pl_every == 0:
            pl = f"$pl_{name}{k}"
            spec = (pl, "m.room.power_levels", "", ("$create", side[pl_key], "$admin"))
            depth += 1
            events.append(_event(spec, depth, [top], {"fork": name, "k": k}))
            side[pl_key] = top = pl
        leave = f"$leave_{name}{k}"
        spec = (leave, "m.room.member", key[1], ("$create", side[pl_key], side[key]))
        depth += 1
        events.append(_event(spec, depth, [top], {"membership": "leave"}))
        side[key] = top = leave
    return side


def _resolution_inputs(sides: list[dict[tuple[str, str], str]]) -> dict[str, Any]:
    """What state resolution passes for these state sets: the unconflicted values
    (``shared``), each side's conflicted values (``extra``), the conflicted set; and each
    side's whole state (``full``)."""
    keys = set(sides[0]).union(*sides[1:])
    shared = {sides[0][k] for k in keys if all(s.get(k) == sides[0].get(k) for s in sides)}
    extra = [sorted(set(s.values()) - shared) for s in sides]
    return {
        "shared": shared,
        "extra": extra,
        "conflicted": sorted({i for x in extra for i in x}),
        "full": [sorted(s.values()) for s in sides],
    }


def forked_room(members: int) -> tuple[list[Event], dict[str, Any]]:
    """The members room as events, forked three ways from its end; the query inputs.

    Forks (each side forks from the room's last event): *small* (a topic change against a
    leave), *big* (per side, new power levels and 50 leaves), *wide* (per side, 1,000 leaves
    (or a tenth of the members) with new power levels every 100: state resolution's heavy
    case).
    """
    specs, state = member_room(members)
    events = [_event(s, d, [specs[d - 2][0]] if d > 1 else [], {}) for d, s in enumerate(specs, 1)]
    end = len(events)
    users = sorted(k for k in state if k[0] == "m.room.member" and k[1] != ADMIN)
    inputs: dict[str, Any] = {}
    n = len(users)
    wide = min(1000, n // 10)
    spread = [users[k * n // 100] for k in range(100)]
    shapes = {
        "big": (spread[:50], spread[50:], 50),
        "wide": (users[0 : 2 * wide : 2], users[1 : 2 * wide : 2], 100),
    }
    for fork, (left_a, left_b, every) in shapes.items():
        sides = []
        for name, leavers in ((f"{fork}a", left_a), (f"{fork}b", left_b)):
            branch = events[:end]
            sides.append(_fork(branch, state, leavers, name, every))
            events.extend(branch[end:])
        inputs[fork] = _resolution_inputs(sides)
    pl = state[("m.room.power_levels", "")]
    topic_key = ("m.room.topic", "")
    key = users[n // 3]
    topic = ("$small_topic", *topic_key, ("$create", pl, "$admin"))
    leave = ("$small_leave", *key, ("$create", pl, state[key]))
    events.append(_event(topic, end + 1, [specs[-1][0]], {"topic": "x"}))
    events.append(_event(leave, end + 1, [specs[-1][0]], {"membership": "leave"}))
    inputs["small"] = _resolution_inputs([{**state, topic_key: topic[0]}, {**state, key: leave[0]}])
    inputs["state_ids"] = sorted(state.values())
    rng = random.Random(2)
    inputs["singles"] = rng.sample([s[0] for s in specs], 1000)
    return events, inputs


def query_rows(members: int, old_cover: ModuleType, old_ac: ModuleType, repeat: int) -> list[str]:
    events, q = forked_room(members)
    stores: dict[str, MemoryStore] = {}
    for name, cover in (("before", old_cover), ("after", new_cover)):
        store = MemoryStore()
        store._chain_index = cover.ChainCoverIndex(store._room_of)  # the bench's swap (doc)
        store.add_events(events)
        stores[name] = store
    acs = {"before": old_ac, "after": new_ac}

    def split(fork: str) -> Callable[[Any, MemoryStore], object]:
        i = q[fork]
        return lambda ac, s: ac.auth_chain_difference_split(s, i["shared"], i["extra"])

    def subgraph(fork: str) -> Callable[[Any, MemoryStore], object]:
        i = q[fork]
        return lambda ac, s: ac.conflicted_subgraph(s, i["conflicted"])

    cases: list[tuple[str, Callable[[Any, MemoryStore], object]]] = [
        ("auth_chain_ids(whole state)", lambda ac, s: ac.auth_chain_ids(s, q["state_ids"])),
        (
            "auth_chain_ids(1 event) x1000",
            lambda ac, s: [ac.auth_chain_ids(s, [i]) for i in q["singles"]],
        ),
        ("difference_split(small fork: topic vs leave)", split("small")),
        ("difference_split(big fork: PL + 50 leaves/side)", split("big")),
        ("difference_split(wide fork: 1000 leaves/side)", split("wide")),
        (
            "auth_chain_difference(big fork, whole state sets)",
            lambda ac, s: ac.auth_chain_difference(s, q["big"]["full"]),
        ),
        ("conflicted_subgraph(big fork)", subgraph("big")),
        ("conflicted_subgraph(wide fork)", subgraph("wide")),
    ]
    rows = []
    for label, fn in cases:
        answers = {n: fn(acs[n], stores[n]) for n in acs}
        assert answers["before"] == answers["after"], f"{label}: answers differ"
        med = alternate({n: partial(fn, acs[n], stores[n]) for n in acs}, repeat)
        rows.append(
            f"query\t{members}\t{label}\t{med['before'] * 1e3:.3f}\t{med['after'] * 1e3:.3f}\t"
            f"{med['before'] / med['after']:.2f}x"
        )
    return rows


def sqlite_rows(events: int, rounds: int, repeat: int) -> list[str]:
    """Two ``SqliteStore`` objects on one file take turns writing batches of 50 events of a
    synthetic room after a first write of ``events``; CPU time of those turns with the cache
    catching up (after) and with the old rebuild forced whenever the other one had written
    (before: ``ChainCache.update`` forgets its index when the generation moved)."""
    from eventgraph import SqliteStore
    from eventgraph.stores import _sqlite_chain
    from eventgraph.synth import generate_room

    stream = list(generate_room("11", events=events + 50 * rounds, members=1000, seed=3))
    head, rest = stream[:events], stream[events:]
    real_update = _sqlite_chain.ChainCache.update

    def forced(self: Any, conn: Any, new: Any, chunk: int) -> None:
        generation = conn.execute("SELECT generation FROM chain_generation").fetchone()[0]
        if self._generation != generation:
            self.invalidate()  # the code before: rebuild whenever another connection wrote
        real_update(self, conn, new, chunk)

    def run(name: str) -> Callable[[], object]:
        def go() -> None:
            with tempfile.TemporaryDirectory() as d:
                path = Path(d) / "bench.db"
                with SqliteStore(path) as one, SqliteStore(path) as two:
                    one.add_events(head)
                    two.add_events(rest[:1])  # both caches built once
                    one.add_events(rest[1:2])
                    patch = forced if name == "before" else real_update
                    setattr(_sqlite_chain.ChainCache, "update", patch)  # noqa: B010
                    try:
                        t = time.process_time()
                        for k in range(1, rounds):
                            (one if k % 2 else two).add_events(rest[50 * k : 50 * k + 50])
                        spent[name].append(time.process_time() - t)
                    finally:
                        setattr(_sqlite_chain.ChainCache, "update", real_update)  # noqa: B010

        return go

    spent: dict[str, list[float]] = {"before": [], "after": []}
    for _ in range(repeat):
        for name in spent:
            run(name)()
    med = {n: statistics.median(v) for n, v in spent.items()}
    return [
        f"sqlite\t{events} events stored, then {rounds - 1} turns of 50 by two connections\t"
        f"{med['before'] * 1e3 / (rounds - 1):.2f}\t{med['after'] * 1e3 / (rounds - 1):.2f}\t"
        f"{med['before'] / med['after']:.2f}x"
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller rooms, fewer repeats")
    parser.add_argument("--before", default=BEFORE, help="git revision of the before code")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--only", choices=["index", "queries", "sqlite"], help="one part only (print only)"
    )
    args = parser.parse_args()
    old_cover, old_ac = load_before(args.before)
    repeat = 3 if args.quick else args.repeat
    rows: list[str] = [
        f"# bench_chain_cover.py  python {platform.python_version()}  {platform.machine()}  "
        f"before={args.before}  repeat={repeat}  CPU time, medians, runs alternating",
        "# index\tworkload\tevents\tstate_events\tchains\tlinks\tbefore_us/event\t"
        "after_us/event\tratio\tsame index",
    ]

    def emit(new: list[str]) -> None:
        for row in new:
            print(row, flush=True)
        rows.extend(new)

    for row in rows:
        print(row)
    sizes = [10_000] if args.quick else [10_000, 100_000]
    if args.only in ("queries", "sqlite"):
        sizes = []
    for m in sizes:
        specs, _ = member_room(m)
        feed = [(i, (kind, key), auth) for i, kind, key, auth in specs]
        emit(index_rows(f"members {m}", feed, old_cover, repeat, memory=m == sizes[-1]))
    for n in [] if not sizes else [10_000] if args.quick else [10_000, 100_000]:
        emit(index_rows(f"synth {n}", synth_specs(n), old_cover, repeat, memory=False))
    emit(["# query\tmembers\tquery\tbefore_ms\tafter_ms\tratio"])
    rooms = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000]
    for m in [] if args.only in ("index", "sqlite") else rooms:
        emit(query_rows(m, old_cover, old_ac, repeat))
    if args.only in (None, "sqlite"):
        emit(["# sqlite\tworkload\tbefore_ms/turn\tafter_ms/turn\tratio"])
        for n in [2_000] if args.quick else [2_000, 20_000]:
            emit(sqlite_rows(n, 21, repeat))
    if not args.no_write and not args.only:
        RESULTS.write_text("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
