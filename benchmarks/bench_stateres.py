"""Benchmark: state resolution of a forked room (the shapes of research/synapse-bench.md).

A room is built with its own small builder (not ``eventgraph.synth``): a linear prefix of
``prefix`` events (the creator, ``members`` joins, a few moderators, messages), then a fork into
two concurrent branches, each with ``changes`` *accepted* state changes — power-level promotions,
demotions and threshold changes, bans, kicks, joins, leaves, display names, topics, names and
custom state on a small key space. Every event is checked with ``check_auth`` against the branch's
state while it is built (rejected candidates are dropped and redrawn), so both branch states are
real states. Then the two branch tips' states are resolved.

For each row: warm-up once, then ``--repeat`` timed runs (wall clock min / median / max, and
the median CPU time of the process, which leaves out time spent waiting for a core), the number
of authorization checks, the conflicted keys, the auth difference, the full conflicted set and
the power events (with their auth ancestors in it), and the ratio to Synapse's median from
research/synapse-bench.md (of the wall-clock median and of the CPU median); then the median CPU
time with ``trusted=True`` (the type check of every input entry skipped, as for a store's
states; timed alternately with the default runs) and its ratio, and the median CPU time spent in
:mod:`eventgraph.graph.auth_chain` (auth difference, conflicted subgraph, auth chains; further
runs with those calls wrapped in timers). A least-squares fit of log(CPU time) against
log(changes per branch) gives the growth exponent per prefix size.

Run: ``python benchmarks/bench_stateres.py [--quick] [--version 11|12] [--repeat N]
[--processes K]``; with ``--processes K`` the whole benchmark runs in K fresh processes in turn
and each row is summarised by the median and range of their CPU medians (the spread between
processes on a shared machine is as large as within one).
Raw rows are appended to ``benchmarks/results/stateres.txt`` (the file holds the history of
every round; ``--overwrite`` replaces it).
"""

from __future__ import annotations

import argparse
import math
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from eventgraph import AuthError, Event, MemoryStore, StateKey
from eventgraph.events.auth_selection import auth_types_for_event
from eventgraph.events.canonical_json import JsonValue
from eventgraph.events.room_versions import RoomVersion, room_version
from eventgraph.state import resolution
from eventgraph.state.authz import check_auth
from eventgraph.state.resolution import _resolve, _Stats
from eventgraph.testing import make_event

RESULTS = Path(__file__).resolve().parent / "results" / "stateres.txt"

#: Synapse 1.163.2 medians (research/synapse-bench.md), ms, room version 11 and 12.
SYNAPSE_MS: dict[str, dict[tuple[int, int], float]] = {
    "11": {
        (1_000, 10): 1.2, (1_000, 100): 8.3, (1_000, 1_000): 208.0,
        (10_000, 10): 3.0, (10_000, 100): 10.0, (10_000, 1_000): 436.0,
        (100_000, 10): 44.0, (100_000, 100): 44.0, (100_000, 1_000): 483.0,
    },
    "12": {
        (1_000, 10): 1.2, (1_000, 100): 8.2, (1_000, 1_000): 200.0,
        (100_000, 10): 53.0, (100_000, 100): 75.0, (100_000, 1_000): 493.0,
    },
}  # fmt: skip

PL: StateKey = ("m.room.power_levels", "")
MEMBER = "m.room.member"


class RoomBuilder:
    """Builds one linear run of accepted events on top of a state (one branch or the prefix)."""

    def __init__(
        self,
        rv: RoomVersion,
        room_id: str,
        events: dict[str, Event],
        state: dict[StateKey, str],
        tip: str | None,
        depth: int,
        ts: int,
        prefix: str,
    ) -> None:
        self.rv = rv
        self.room_id = room_id
        self.events = events
        self.state = dict(state)
        self.tip = tip
        self.depth = depth
        self.ts = ts
        self.prefix = prefix
        self.count = 0
        self.new: list[Event] = []

    def fork(self, prefix: str) -> RoomBuilder:
        return RoomBuilder(
            self.rv,
            self.room_id,
            self.events,
            self.state,
            self.tip,
            self.depth,
            self.ts,
            prefix,
        )

    def send(
        self,
        etype: str,
        sender: str,
        content: Mapping[str, JsonValue],
        state_key: str | None = None,
        *,
        event_id: str | None = None,
    ) -> bool:
        """Build the event on the tip; keep it if it passes auth against the state."""
        keys = list(auth_types_for_event(self.rv, etype, sender, state_key, content))
        auth_ids = [self.state[k] for k in keys if k in self.state]
        if event_id is None:
            event_id = f"${self.prefix}{self.count}"
        ev = make_event(
            event_id,
            room_id=self.room_id,
            version=self.rv,
            prev=[] if self.tip is None else [self.tip],
            auth=auth_ids,
            depth=self.depth + 1,
            type=etype,
            state_key=state_key,
            sender=sender,
            content=content,
            origin_server_ts=self.ts + 1,
        )
        auth = [self.events[i] for i in ev.auth_event_ids if i in self.events]
        try:
            check_auth(self.rv, ev, auth)
        except AuthError:
            return False
        self.count += 1
        self.depth += 1
        self.ts += 1
        self.tip = ev.event_id
        self.events[ev.event_id] = ev
        self.new.append(ev)
        if state_key is not None:
            self.state[(etype, state_key)] = ev.event_id
        return True

    # -- views of the state --------------------------------------------------------------------

    def membership(self, user: str) -> JsonValue:
        eid = self.state.get((MEMBER, user))
        return None if eid is None else self.events[eid].content.get("membership")

    def power_levels(self) -> dict[str, JsonValue]:
        return dict(self.events[self.state[PL]].content)


def user(i: int) -> str:
    return f"@u{i}:example.com"


ADMIN = "@admin:example.com"


def build_prefix(rv: RoomVersion, prefix: int, members: int) -> RoomBuilder:
    v12 = rv.room_id_is_create_event_id
    room_id = "!create" if v12 else "!bench:example.com"
    b = RoomBuilder(rv, room_id, {}, {}, None, 0, 0, "p")
    create: dict[str, JsonValue] = {"room_version": rv.identifier}
    if not rv.implicit_room_creator:
        create["creator"] = ADMIN
    b.send("m.room.create", ADMIN, create, "", event_id="$create" if v12 else None)
    b.send(MEMBER, ADMIN, {"membership": "join"}, ADMIN)
    mods = {user(i): 50 for i in range(0, members, max(1, members // 10))}
    users: dict[str, JsonValue] = {} if v12 else {ADMIN: 100}
    users.update(mods)
    b.send("m.room.power_levels", ADMIN, {"users": users, "state_default": 50, "ban": 50}, "")
    b.send("m.room.join_rules", ADMIN, {"join_rule": "public"}, "")
    b.send("m.room.topic", ADMIN, {"topic": "benchmark"}, "")
    rng = random.Random(1)
    joined = 0
    while b.count < prefix:
        # Joins spread evenly over the prefix, messages in between.
        if joined < members and (b.count * members) // prefix >= joined:
            u = user(joined)
            b.send(MEMBER, u, {"membership": "join", "displayname": f"u{joined}"}, u)
            joined += 1
        else:
            sender = user(rng.randrange(joined)) if joined else ADMIN
            b.send("m.room.message", sender, {"body": "hello"})
    while joined < members:
        u = user(joined)
        b.send(MEMBER, u, {"membership": "join"}, u)
        joined += 1
    return b


def one_change(b: RoomBuilder, rng: random.Random, members: int, branch: str) -> bool:
    """Try one random state change on branch ``b``; True if it was accepted."""
    kind = rng.choice(
        ["pl", "pl", "ban", "kick", "join", "join", "leave", "topic", "name", "custom", "dname"]
    )
    pls = b.power_levels()
    raw_users = pls.get("users")
    levels: dict[str, JsonValue] = dict(raw_users) if isinstance(raw_users, Mapping) else {}
    mods = sorted(u for u, v in levels.items() if isinstance(v, int) and v >= 50)
    powerful = [ADMIN, *mods]
    sender = rng.choice(powerful)
    if b.membership(sender) != "join":
        sender = ADMIN
    target = user(rng.randrange(members * 2))  # half are newcomers
    if kind == "pl":
        new = dict(pls)
        if rng.random() < 0.7:
            new_users = dict(levels)
            t = user(rng.randrange(members))
            if new_users.get(t) == 50:
                new_users.pop(t)
            else:
                new_users[t] = 50
            new["users"] = new_users
        else:
            new["events"] = {"m.room.topic": rng.choice([0, 50])}
        return b.send("m.room.power_levels", ADMIN, new, "")
    if kind in ("ban", "kick"):
        membership = "ban" if kind == "ban" else "leave"
        return b.send(MEMBER, sender, {"membership": membership}, target)
    if kind == "join":
        return b.send(MEMBER, target, {"membership": "join"}, target)
    if kind == "leave":
        return b.send(MEMBER, target, {"membership": "leave"}, target)
    if kind == "dname":
        return b.send(MEMBER, target, {"membership": "join", "displayname": branch}, target)
    if kind == "topic":
        return b.send("m.room.topic", sender, {"topic": f"{branch}{b.count}"}, "")
    if kind == "name":
        return b.send("m.room.name", sender, {"name": f"{branch}{b.count}"}, "")
    key = f"k{rng.randrange(8)}"
    return b.send("org.example.custom", sender, {"v": b.count}, key)


def build_fork(
    rv: RoomVersion, base: RoomBuilder, changes: int, members: int
) -> tuple[MemoryStore, dict[StateKey, str], dict[StateKey, str]]:
    branches = []
    for name, seed in (("a", 11), ("b", 22)):
        br = base.fork(name)
        rng = random.Random(seed * 1_000_003 + changes)
        accepted = 0
        while accepted < changes:
            if one_change(br, rng, members, name):
                accepted += 1
        branches.append(br)
    store = MemoryStore()
    store.add_events(base.new)
    for br in branches:
        store.add_events(br.new)
    return store, branches[0].state, branches[1].state


def timed(
    rv: RoomVersion, sets: list[dict[StateKey, str]], store: MemoryStore, repeat: int
) -> tuple[list[float], list[float], list[float], _Stats, dict[StateKey, str]]:
    """Wall-clock and CPU times (ms) of ``repeat`` resolutions after a warm-up, and the CPU
    times of ``repeat`` resolutions with ``trusted=True`` (the entry check skipped, as for a
    store's states), alternating with the others.

    The CPU time of the process (``time.process_time``) is reported beside the wall clock: on a
    shared, loaded machine the wall clock also counts the time spent waiting for a core.
    """
    stats = _Stats()
    answer = _resolve(rv, sets, store, stats)  # warm-up
    assert _resolve(rv, sets, store, _Stats(), trusted=True) == answer
    times = []
    cpu = []
    cpu_trusted = []
    for _ in range(repeat):
        c0 = time.process_time()
        t0 = time.perf_counter()
        _resolve(rv, sets, store, _Stats())
        times.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
        c0 = time.process_time()
        _resolve(rv, sets, store, _Stats(), trusted=True)
        cpu_trusted.append((time.process_time() - c0) * 1000)
    return times, cpu, cpu_trusted, stats, answer


#: The functions of :mod:`eventgraph.graph.auth_chain` state resolution calls (by the names it
#: imports them under): the auth difference, v2.1's conflicted subgraph, auth chain tests.
AUTH_CHAIN_CALLS = ("auth_chain_difference_split", "conflicted_subgraph", "auth_chains_hold")


def auth_chain_cpu(
    rv: RoomVersion, sets: list[dict[StateKey, str]], store: MemoryStore, repeat: int
) -> float:
    """The median CPU time (ms) one resolution spends in :mod:`eventgraph.graph.auth_chain`,
    over ``repeat`` further runs with those calls wrapped in timers (runs apart from the timed
    ones, so the wrappers cost them nothing)."""
    spent = [0.0]
    saved = {name: getattr(resolution, name) for name in AUTH_CHAIN_CALLS}

    def timer(f: Callable[..., Any]) -> Callable[..., Any]:
        def timed_call(*args: Any, **kwargs: Any) -> Any:
            c0 = time.process_time()
            try:
                return f(*args, **kwargs)
            finally:
                spent[0] += time.process_time() - c0

        return timed_call

    runs = []
    try:
        for name, f in saved.items():
            setattr(resolution, name, timer(f))
        for _ in range(repeat):
            spent[0] = 0.0
            _resolve(rv, sets, store, _Stats())
            runs.append(spent[0] * 1000)
    finally:
        for name, f in saved.items():
            setattr(resolution, name, f)
    return statistics.median(runs)


def fit_exponent(points: list[tuple[float, float]]) -> float:
    xs = [math.log(x) for x, _ in points]
    ys = [math.log(y) for _, y in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="prefixes of 1,000 events only")
    parser.add_argument("--version", default="11", help="room version (11: v2, 12: v2.1)")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--big", action="store_true", help="also 10,000 changes per branch")
    parser.add_argument(
        "--append", action="store_true", help="(the default; kept for old command lines)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace the results file")
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="run the whole benchmark in this many fresh processes, one after another, and "
        "report per row the median (and range) of their CPU medians",
    )
    parser.add_argument("--no-write", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.processes > 1:
        across_processes(args)
        return
    rv = room_version(args.version)
    shapes = [(1_000, 100)] if args.quick else [(1_000, 100), (10_000, 1_000), (100_000, 10_000)]
    change_counts = [10, 100, 1_000] + ([10_000] if args.big else [])
    header = (
        f"# bench_stateres.py  room version {rv.identifier}  python {platform.python_version()}"
        f"  {platform.machine()}  repeat {args.repeat}\n"
        "# prefix members changes conflicted_keys auth_diff full_conflicted power_events "
        "auth_checks min_ms median_ms max_ms cpu_median_ms synapse_ms ratio cpu_ratio "
        "trusted_cpu_median_ms trusted_cpu_ratio auth_chain_cpu_ms"
    )
    lines = [header]
    print(header)
    for prefix, members in shapes:
        t0 = time.perf_counter()
        base = build_prefix(rv, prefix, members)
        built = time.perf_counter() - t0
        print(f"# built prefix {prefix} ({len(base.new)} events) in {built:.1f}s", file=sys.stderr)
        points: list[tuple[float, float]] = []
        for changes in change_counts:
            store, s1, s2 = build_fork(rv, base, changes, members)
            repeat = args.repeat if changes < 10_000 else 3
            times, cpu, cpu_trusted, st, _ = timed(rv, [s1, s2], store, repeat)
            med = statistics.median(times)
            cpu_med = statistics.median(cpu)
            trusted_med = statistics.median(cpu_trusted)
            chains = auth_chain_cpu(rv, [s1, s2], store, repeat)
            points.append((changes, cpu_med))
            syn = SYNAPSE_MS.get(rv.identifier, {}).get((prefix, changes))
            ratio = f"{syn / med:.1f}x" if syn else "-"
            cpu_ratio = f"{syn / cpu_med:.1f}x" if syn else "-"
            trusted_ratio = f"{syn / trusted_med:.1f}x" if syn else "-"
            row = (
                f"{prefix} {members} {changes} {st.conflicted_keys} {st.auth_difference} "
                f"{st.full_conflicted} {st.power_events} {st.auth_checks} {min(times):.2f} "
                f"{med:.2f} {max(times):.2f} {cpu_med:.2f} {syn if syn else '-'} {ratio} "
                f"{cpu_ratio} {trusted_med:.2f} {trusted_ratio} {chains:.2f}"
            )
            print(row, flush=True)
            lines.append(row)
        lines.append(
            f"# prefix {prefix}: fitted exponent cpu time ~ changes^{fit_exponent(points):.2f}"
        )
        print(lines[-1])
    if not args.no_write:
        write_results(lines, overwrite=args.overwrite)


def write_results(lines: list[str], *, overwrite: bool) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("w" if overwrite else "a") as f:
        f.write("\n".join(lines) + "\n")


def across_processes(args: argparse.Namespace) -> None:
    """Run the benchmark in ``args.processes`` fresh processes in turn and summarise each row
    by the median, minimum and maximum of the processes' CPU medians (default and trusted).

    On a shared machine the spread between processes running the same code (memory layout,
    neighbours) is as large as the spread within one: a median over processes is the steadier
    figure. Only the summary is appended to the results file.
    """
    command = [sys.executable, __file__, "--version", args.version, "--repeat", str(args.repeat)]
    command.append("--no-write")
    command += ["--quick"] * args.quick + ["--big"] * args.big
    cpu: dict[tuple[int, int, int], list[float]] = {}
    trusted: dict[tuple[int, int, int], list[float]] = {}
    for _ in range(args.processes):
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            fields = line.split()
            row = (int(fields[0]), int(fields[1]), int(fields[2]))
            cpu.setdefault(row, []).append(float(fields[11]))
            trusted.setdefault(row, []).append(float(fields[15]))
    lines = [
        f"# bench_stateres.py --processes {args.processes}  room version {args.version}  "
        f"repeat {args.repeat}: per row, the median [min-max] of the processes' CPU medians\n"
        "# prefix members changes cpu_median_ms cpu_min_ms cpu_max_ms synapse_ms cpu_ratio "
        "trusted_cpu_median_ms trusted_ratio"
    ]
    for row in sorted(cpu):
        med, low, high = statistics.median(cpu[row]), min(cpu[row]), max(cpu[row])
        tmed = statistics.median(trusted[row])
        syn = SYNAPSE_MS.get(args.version, {}).get((row[0], row[2]))
        ratio = f"{syn / med:.1f}x" if syn else "-"
        tratio = f"{syn / tmed:.1f}x" if syn else "-"
        lines.append(
            f"{row[0]} {row[1]} {row[2]} {med:.2f} {low:.2f} {high:.2f} "
            f"{syn if syn else '-'} {ratio} {tmed:.2f} {tratio}"
        )
    print("\n".join(lines))
    if not args.no_write:
        write_results(lines, overwrite=False)


if __name__ == "__main__":
    main()
