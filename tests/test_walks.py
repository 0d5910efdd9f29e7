"""backfill and missing_events: spec references, interop hand cases, round trips, bad input."""

from __future__ import annotations

from collections.abc import Collection, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventgraph import Event, InvalidRequestError, MemoryStore
from eventgraph.graph import backfill, missing_events
from eventgraph.testing import CountingStore, RoomDag, make_event, room_dags

from .stores import StoreFactory

ROOM = "!room:a.example"


def _ids(events: Sequence[Event]) -> list[str]:
    return [e.event_id for e in events]


def _linear(n: int, *, room_id: str = ROOM, version: str = "10", start: int = 1) -> list[Event]:
    """Events $1..$n (numbered from ``start``), each citing the one before, depth = number."""
    return [
        make_event(
            f"${i}",
            room_id=room_id,
            version=version,
            prev=[f"${i - 1}"] if i > start else [],
            depth=i,
        )
        for i in range(start, start + n)
    ]


def _store(events: Sequence[Event]) -> MemoryStore:
    store = MemoryStore()
    store.add_events(events)
    return store


# -- slow references, written from the spec text and the documented rules ------------------------


class _Flags:
    def __init__(self, dag: RoomDag) -> None:
        self.events = {e.event_id: e for e in dag.events}
        self.outliers = dag.outliers
        self.rejected = dag.rejected


def _walkable(flags: _Flags, event_id: str, room_id: str) -> bool:
    ev = flags.events.get(event_id)
    return ev is not None and ev.room_id == room_id and event_id not in flags.outliers


def ref_backfill(
    flags: _Flags, room_id: str, seeds: Collection[str], limit: int, max_limit: int = 100
) -> list[str]:
    """Take the deepest reached event (ties: smallest ID), add it, reach its prev_events."""
    budget = min(limit, max_limit)
    reached = {s for s in seeds if _walkable(flags, s, room_id)}
    taken: list[str] = []
    while reached and len(taken) < budget:
        best = min(reached, key=lambda i: (-flags.events[i].depth, i))
        reached.discard(best)
        taken.append(best)
        for p in flags.events[best].prev_event_ids:
            if p not in taken and _walkable(flags, p, room_id):
                reached.add(p)
    kept = [i for i in taken if i not in flags.rejected]
    return sorted(kept, key=lambda i: (-flags.events[i].depth, i))


def ref_missing_events(
    flags: _Flags,
    room_id: str,
    earliest: Collection[str],
    latest: Collection[str],
    limit: int = 10,
    min_depth: int = 0,
    max_limit: int = 20,
) -> list[str]:
    """Breadth-first over prev_events from latest; earliest and shallow events block the walk.

    Distances are computed for the whole reachable graph first, then the nearest are kept.
    """
    budget = min(limit, max_limit)
    distance: dict[str, int] = {}
    visited: set[str] = set(earliest)
    level = sorted({i for i in latest if _walkable(flags, i, room_id) and i not in visited})
    d = 0
    while level:
        d += 1
        nxt: set[str] = set()
        for i in level:
            for p in flags.events[i].prev_event_ids:
                if p in visited:
                    continue
                visited.add(p)
                if _walkable(flags, p, room_id) and flags.events[p].depth >= min_depth:
                    distance[p] = d
                    nxt.add(p)
        level = sorted(nxt)
    ranked = sorted(distance, key=lambda i: (distance[i], -flags.events[i].depth, i))
    kept = [i for i in ranked[:budget] if i not in flags.rejected]
    return sorted(kept, key=lambda i: (flags.events[i].depth, i))


# -- property tests ------------------------------------------------------------------------------


@st.composite
def _dag_and_ids(draw: st.DrawFn) -> tuple[RoomDag, list[str], list[str]]:
    dag = draw(room_dags())
    pool = sorted([*dag.event_ids, *dag.missing_ids, "$unknown"])
    a = draw(st.lists(st.sampled_from(pool), max_size=4))
    b = draw(st.lists(st.sampled_from(pool), max_size=4))
    return dag, a, b


@given(_dag_and_ids(), st.integers(0, 30), st.integers(0, 40))
def test_backfill_matches_reference(
    store_factory: StoreFactory,
    case: tuple[RoomDag, list[str], list[str]],
    limit: int,
    max_limit: int,
) -> None:
    """backfill equals the spec-text reference on generated DAGs, on every store."""
    dag, seeds, _ = case
    store = store_factory()
    dag.store_into(store)
    expected = ref_backfill(_Flags(dag), dag.room_id, seeds, limit, max_limit)
    assert expected == _ids(backfill(store, dag.room_id, seeds, limit, max_limit=max_limit))


@given(_dag_and_ids(), st.integers(0, 25), st.integers(-1, 6))
def test_missing_events_matches_reference(
    store_factory: StoreFactory,
    case: tuple[RoomDag, list[str], list[str]],
    limit: int,
    min_depth: int,
) -> None:
    """missing_events equals the spec-text BFS reference on generated DAGs, on every store."""
    dag, latest, earliest = case
    store = store_factory()
    dag.store_into(store)
    expected = ref_missing_events(_Flags(dag), dag.room_id, earliest, latest, limit, min_depth)
    got = missing_events(store, dag.room_id, earliest, latest, limit, min_depth)
    assert expected == _ids(got)


@st.composite
def _shuffled(draw: st.DrawFn) -> tuple[RoomDag, list[int], list[str], list[str]]:
    dag, a, b = draw(_dag_and_ids())
    return dag, draw(st.permutations(range(len(dag.events)))), a, b


@given(_shuffled(), st.integers(1, 25))
def test_insertion_order_never_changes_the_answer(
    store_factory: StoreFactory, case: tuple[RoomDag, list[int], list[str], list[str]], limit: int
) -> None:
    """Storing the same DAG in a shuffled order gives the same walks, on every store."""
    dag, order, a, b = case
    first, second = MemoryStore(), store_factory()
    dag.store_into(first)
    dag.store_into(second, order)
    check = getattr(second, "check_invariants", None)
    assert check is not None  # every bundled store checks its own indexes
    check()
    for room in (dag.room_id, dag.other_room_id):
        assert backfill(first, room, a, limit) == backfill(second, room, a, limit)
        assert missing_events(first, room, b, a, limit) == missing_events(second, room, b, a, limit)


# -- interop hand cases (research/peers.md §4) ---------------------------------------------------


def test_backfill_is_inclusive_and_newest_first() -> None:
    """sytest "Inbound federation can backfill events": the first PDU is the ``v`` event."""
    store = _store(_linear(10))
    assert _ids(backfill(store, ROOM, ["$10"], 3)) == ["$10", "$9", "$8"]


def test_backfill_caps_the_limit() -> None:
    """Servers cap ``limit`` (Synapse: 100); a bigger cap can be chosen."""
    store = _store(_linear(300))
    assert len(backfill(store, ROOM, ["$300"], 150)) == 100
    assert len(backfill(store, ROOM, ["$300"], 150, max_limit=1000)) == 150
    assert len(backfill(store, ROOM, ["$300"], 2**70, max_limit=2**80)) == 300


def test_backfill_refuses_events_of_another_room() -> None:
    """sytest "Backfill checks the events requested belong to the room": empty answer."""
    store = _store([*_linear(3), *_linear(3, room_id="!other:a.example", start=11)])
    assert backfill(store, ROOM, ["$13"], 10) == []
    assert _ids(backfill(store, ROOM, ["$13", "$3"], 10)) == ["$3", "$2", "$1"]


def test_backfill_does_not_cross_into_another_room() -> None:
    """sytest: "Backfilled events whose prev_events are in a different room do not allow
    cross-room back-pagination"."""
    other = _linear(3, room_id="!other:a.example")
    mine = make_event("$mine", prev=["$3"], depth=4)
    store = _store([*other, mine])
    assert _ids(backfill(store, ROOM, ["$mine"], 10)) == ["$mine"]


def test_backfill_skips_outliers_and_rejected_events() -> None:
    """Outliers are never entered; rejected events are walked through but not returned."""
    events = _linear(5)
    store = MemoryStore()
    store.add_events(events, outliers=["$2"], rejected={"$4": "bad"})
    assert _ids(backfill(store, ROOM, ["$5"], 10)) == ["$5", "$3"]
    assert _ids(backfill(store, ROOM, ["$2"], 10)) == []


def test_backfill_on_a_partition_follows_the_branch() -> None:
    """Complement TestNetworkPartitionOrdering: from a branch tip the branch comes first."""
    events = [
        make_event("$1", depth=1),
        make_event("$2", prev=["$1"], depth=2),
        make_event("$3", prev=["$2"], depth=3),
        make_event("$4", prev=["$3"], depth=4),
        make_event("$x", prev=["$1"], depth=2),
        make_event("$y", prev=["$x"], depth=3),
    ]
    store = _store(events)
    assert _ids(backfill(store, ROOM, ["$4"], 10)) == ["$4", "$3", "$2", "$1"]


def test_backfill_drains_a_fork_by_depth_then_event_id() -> None:
    """The answer to "DFS? BFS?": best-first by depth, ties by event ID, on both branches."""
    events = [
        make_event("$root", depth=1),
        make_event("$b1", prev=["$root"], depth=2),
        make_event("$b2", prev=["$b1"], depth=3),
        make_event("$b3", prev=["$b2"], depth=4),
        make_event("$a1", prev=["$root"], depth=2),
        make_event("$m", prev=["$b3", "$a1"], depth=5),
    ]
    store = _store(events)
    assert _ids(backfill(store, ROOM, ["$m"], 4)) == ["$m", "$b3", "$b2", "$a1"]


def test_missing_events_complement_inbound_shape() -> None:
    """Complement TestInboundCanReturnMissingEvents: the history between earliest and latest,
    oldest first, without earliest or latest."""
    kinds = [
        ("$create", "m.room.create", ""),
        ("$join", "m.room.member", "@u:a.example"),
        ("$pl", "m.room.power_levels", ""),
        ("$jr", "m.room.join_rules", ""),
        ("$hv", "m.room.history_visibility", ""),
        ("$msg", "m.room.message", None),
        ("$new", "m.room.message", None),
    ]
    events = []
    for n, (event_id, kind, sk) in enumerate(kinds):
        prev = [kinds[n - 1][0]] if n else []
        events.append(make_event(event_id, prev=prev, depth=n + 1, type=kind, state_key=sk))
    store = _store(events)
    got = missing_events(store, ROOM, ["$create"], ["$new"], limit=10)
    assert _ids(got) == ["$join", "$pl", "$jr", "$hv", "$msg"]


def test_missing_events_fills_a_linear_gap() -> None:
    """Complement TestGetMissingEventsGapFilling: a gap of 5 events comes back whole."""
    store = _store(_linear(8))
    assert _ids(missing_events(store, ROOM, ["$2"], ["$8"])) == ["$3", "$4", "$5", "$6", "$7"]


def test_missing_events_truncation_keeps_the_nearest() -> None:
    """Synapse #4045: a cut walk keeps the events next to latest, not the oldest ones."""
    store = _store(_linear(30))
    assert _ids(missing_events(store, ROOM, [], ["$30"], limit=3)) == ["$27", "$28", "$29"]


def test_missing_events_cut_level_keeps_newest() -> None:
    """Within the level the limit cuts, the deepest events are kept, then the smaller IDs."""
    events = [
        make_event("$root", depth=1),
        make_event("$c", prev=["$root"], depth=2),
        make_event("$b", prev=["$root"], depth=3),
        make_event("$a", prev=["$root"], depth=2),
        make_event("$top", prev=["$a", "$b", "$c"], depth=4),
    ]
    store = _store(events)
    assert _ids(missing_events(store, ROOM, [], ["$top"], limit=2)) == ["$a", "$b"]


def test_missing_events_earliest_is_a_stop_set() -> None:
    """earliest_events are neither returned nor walked through (not even by another path)."""
    events = [
        make_event("$1", depth=1),
        make_event("$2", prev=["$1"], depth=2),
        make_event("$3", prev=["$2"], depth=3),
        make_event("$4", prev=["$3"], depth=4),
    ]
    store = _store(events)
    assert _ids(missing_events(store, ROOM, ["$2"], ["$4"])) == ["$3"]


def test_missing_events_returns_latest_reached_from_another_latest() -> None:
    """A latest event is returned when another latest event has it as an ancestor."""
    store = _store(_linear(4))
    assert _ids(missing_events(store, ROOM, [], ["$4", "$3"])) == ["$1", "$2", "$3"]


def test_missing_events_honours_min_depth() -> None:
    """min_depth: shallower events are neither returned nor walked (Synapse ignores it)."""
    store = _store(_linear(8))
    assert _ids(missing_events(store, ROOM, [], ["$8"], min_depth=5)) == ["$5", "$6", "$7"]


def test_missing_events_caps_the_limit() -> None:
    """Servers cap the limit (Synapse 20, Rust servers 50)."""
    store = _store(_linear(100))
    assert len(missing_events(store, ROOM, [], ["$100"], limit=100)) == 20
    assert len(missing_events(store, ROOM, [], ["$100"], limit=100, max_limit=50)) == 50


# -- round trips ---------------------------------------------------------------------------------


def _wide_fork(width: int, length: int) -> list[Event]:
    """``width`` parallel chains of ``length`` events from one root, merged at ``$top``."""
    events = [make_event("$root", depth=1)]
    for w in range(width):
        for n in range(length):
            prev = f"$w{w}-{n - 1}" if n else "$root"
            events.append(make_event(f"$w{w}-{n}", prev=[prev], depth=n + 2))
    tips = [f"$w{w}-{length - 1}" for w in range(width)]
    events.append(make_event("$top", prev=tips, depth=length + 2))
    return events


@pytest.mark.parametrize(("width", "length"), [(1, 60), (10, 12), (20, 6), (50, 3)])
def test_round_trips_follow_depth_not_events(width: int, length: int) -> None:
    """A walk of k events over d levels makes O(d) round trips: about d + 3, whatever k."""
    store = CountingStore(_store(_wide_fork(width, length)))
    got = backfill(store, ROOM, ["$top"], 100)
    stats = store.statistics()
    levels = length + 2
    assert len(got) == min(100, width * length + 2)
    assert stats.round_trips <= levels + 3
    store.reset()
    got = missing_events(store, ROOM, [], ["$top"], limit=20, max_limit=20)
    assert len(got) == min(20, width * length + 1)
    assert store.statistics().round_trips <= min(levels, 20 // width + 2) + 3


# -- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [-1, -(2**70), 1.5, "10", None, True])
def test_bad_limits_are_refused(limit: object) -> None:
    """Negative or non-integer limits raise InvalidRequestError (M_INVALID_PARAM, 400)."""
    store = _store(_linear(3))
    with pytest.raises(InvalidRequestError) as info:
        backfill(store, ROOM, ["$3"], limit)  # type: ignore[arg-type]
    assert (info.value.errcode, info.value.http_status) == ("M_INVALID_PARAM", 400)
    with pytest.raises(InvalidRequestError):
        missing_events(store, ROOM, [], ["$3"], limit)  # type: ignore[arg-type]


@pytest.mark.parametrize("ids", ["$3", b"$3", 3, ["$3", 3], None])
def test_bad_id_lists_are_refused(ids: object) -> None:
    """A bare string, bytes or non-string IDs are refused rather than iterated."""
    store = _store(_linear(3))
    with pytest.raises(InvalidRequestError):
        backfill(store, ROOM, ids, 5)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError):
        missing_events(store, ROOM, [], ids)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError):
        missing_events(store, ROOM, ids, ["$3"])  # type: ignore[arg-type]


def test_empty_unknown_and_duplicate_inputs() -> None:
    """Empty lists and limit 0 give []; unknown IDs are skipped; duplicates count once."""
    store = _store(_linear(5))
    assert backfill(store, ROOM, [], 10) == []
    assert backfill(store, ROOM, ["$5"], 0) == []
    assert backfill(store, ROOM, ["$nope"], 10) == []
    assert missing_events(store, ROOM, [], []) == []
    assert missing_events(store, ROOM, [], ["$nope"]) == []
    assert missing_events(store, "!unknown:room", [], ["$5"]) == []
    assert _ids(backfill(store, ROOM, ["$5", "$5", "$nope"], 2)) == ["$5", "$4"]
    assert _ids(missing_events(store, ROOM, ["$2", "$2"], ["$5", "$5"])) == ["$3", "$4"]


def test_forged_cycles_terminate() -> None:
    """Room versions 1–2 allow any ID, so a prev_events cycle can be forged: walks end."""
    events = [
        make_event("$a:x", version="1", prev=["$c:x"], depth=3),
        make_event("$b:x", version="1", prev=["$a:x"], depth=2),
        make_event("$c:x", version="1", prev=["$b:x"], depth=1),
    ]
    store = _store(events)
    assert _ids(backfill(store, ROOM, ["$a:x"], 10)) == ["$a:x", "$b:x", "$c:x"]
    got = missing_events(store, ROOM, [], ["$a:x"], limit=10)
    assert _ids(got) == ["$c:x", "$b:x", "$a:x"]


def test_extreme_depths() -> None:
    """Depths at 2^63-1 (room versions 1–5) order like any other."""
    top = 2**63 - 1
    events = [
        make_event("$low", version="5", depth=0),
        make_event("$high", version="5", prev=["$low"], depth=top),
        make_event("$mid", version="5", prev=["$high"], depth=top - 1),
    ]
    store = _store(events)
    assert _ids(backfill(store, ROOM, ["$mid"], 10)) == ["$high", "$mid", "$low"]
    got = missing_events(store, ROOM, [], ["$mid"], min_depth=top)
    assert _ids(got) == ["$high"]


@pytest.mark.slow
def test_a_million_event_chain_walks_fine() -> None:
    """A linear history of 1,000,000 events: no recursion, no cost in the room's size."""
    n = 1_000_000
    store = MemoryStore()
    batch: list[Event] = []
    for i in range(1, n + 1):
        pdu = {
            "type": "m",
            "room_id": ROOM,
            "sender": "@u:a",
            "content": {},
            "depth": i,
            "origin_server_ts": 0,
            "prev_events": [f"${i - 1}"] if i > 1 else [],
            "auth_events": [],
        }
        batch.append(Event.from_trusted_pdu(pdu, "10", event_id=f"${i}"))
        if len(batch) == 100_000:
            store.add_events(batch)
            batch = []
    store.add_events(batch)
    top = f"${n}"
    assert _ids(backfill(store, ROOM, [top], 2)) == [top, f"${n - 1}"]
    assert _ids(backfill(store, ROOM, ["$2"], 100)) == ["$2", "$1"]
    assert len(backfill(store, ROOM, [top], 100)) == 100
    got = missing_events(store, ROOM, [f"${n - 11}"], [top], limit=10)
    assert _ids(got) == [f"${i}" for i in range(n - 10, n)]
    got = missing_events(store, ROOM, [], ["$12"], limit=10_000, max_limit=10_000)
    assert _ids(got) == [f"${i}" for i in range(1, 12)]
