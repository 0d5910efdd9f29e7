"""Auth chains, the auth difference and the conflicted subgraph: vectors and hand cases.

Vectors: Synapse ``tests/storage/test_event_federation.py`` auth graph (research/synapse.md §6.4)
and the chain-cover worked example of ``test_event_chain.py::test_simple`` (§6.5), used as facts.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventgraph import Event, MemoryStore, protocols
from eventgraph.graph import auth_chain as ac
from eventgraph.protocols import (
    ChainIndexDepthReader,
    ChainIndexReader,
    ChainIndexReverseReader,
    ChainLink,
    ChainPosition,
    ChainReverseLink,
    EventFacts,
)
from eventgraph.testing import RoomDag, make_event, room_dags

from .stores import StoreFactory

# a→e means "a lists e in auth_events" (synapse.md §6.4), with the depths given there.
SYNAPSE_AUTH_GRAPH: dict[str, tuple[list[str], int]] = {
    "a": (["e"], 7),
    "b": (["e"], 7),
    "c": (["g", "i"], 4),
    "d": (["f"], 6),
    "e": (["f"], 6),
    "f": (["g"], 5),
    "g": (["h", "i"], 3),
    "h": (["k"], 2),
    "i": (["j"], 2),
    "j": ([], 1),
    "k": ([], 1),
}


def _synapse_store(order: list[str] | None = None) -> MemoryStore:
    store = MemoryStore()
    names = order if order is not None else sorted(SYNAPSE_AUTH_GRAPH, key=lambda n: n)
    events = [
        make_event(
            f"${n}",
            auth=[f"${a}" for a in SYNAPSE_AUTH_GRAPH[n][0]],
            depth=SYNAPSE_AUTH_GRAPH[n][1],
            type="foo",
            state_key="foo",
        )
        for n in names
    ]
    for ev in events:  # one at a time, so auth events may arrive after their children
        store.add_events([ev])
        store.check_invariants()
    return store


def _ids(names: str) -> list[str]:
    return [f"${n}" for n in names]


def _names(ids: frozenset[str]) -> str:
    return "".join(sorted(i[1:] for i in ids))


AUTH_CHAIN_VECTORS = [
    ("a", False, "efghijk"),
    ("b", False, "efghijk"),
    ("ab", False, "efghijk"),
    ("bcd", False, "efghijk"),
    ("be", False, "efghijk"),
    ("c", False, "ghijk"),
    ("d", False, "fghijk"),
    ("e", False, "fghijk"),
    ("f", False, "ghijk"),
    ("g", False, "hijk"),
    ("h", False, "k"),
    ("i", False, "j"),
    ("j", False, ""),
    ("k", False, ""),
    ("hi", False, "jk"),
    ("i", True, "ij"),
]

ChainFn = Callable[..., frozenset[str]]
IMPLEMENTATIONS: list[tuple[ChainFn, ChainFn]] = [
    (ac.auth_chain_ids, ac.auth_chain_difference),
    (ac.bfs_auth_chain_ids, ac.bfs_auth_chain_difference),
]


@pytest.mark.parametrize(("given", "include_given", "expected"), AUTH_CHAIN_VECTORS)
@pytest.mark.parametrize("impl", IMPLEMENTATIONS, ids=["public", "bfs"])
@pytest.mark.parametrize("order", ["topological", "reversed"])
def test_synapse_auth_chain_vectors(
    given: str, include_given: bool, expected: str, impl: tuple[ChainFn, ChainFn], order: str
) -> None:
    """Synapse's ``test_auth_chain_ids`` vectors, with auth events stored before or after."""
    names = sorted(SYNAPSE_AUTH_GRAPH, key=lambda n: SYNAPSE_AUTH_GRAPH[n][1])
    store = _synapse_store(names if order == "topological" else names[::-1])
    assert expected == _names(impl[0](store, _ids(given), include_given=include_given))


# Synapse's assert_auth_diff_is_expected cases; Synapse counts each set's own events (inclusive).
AUTH_DIFF_VECTORS = [
    (["a", "b"], "ab"),
    (["a", "b", "c"], "abcef"),
    (["ac", "b"], "abc"),
    (["ac", "bc"], "ab"),
    (["a", "b", "d"], "abde"),
    (["a", "b", "c", "d"], "abcdef"),
    (["a", "b", "e"], "ab"),
    (["a"], ""),
]


@pytest.mark.parametrize(("sets", "expected"), AUTH_DIFF_VECTORS)
@pytest.mark.parametrize("impl", IMPLEMENTATIONS, ids=["public", "bfs"])
def test_synapse_auth_difference_vectors(
    sets: list[str], expected: str, impl: tuple[ChainFn, ChainFn]
) -> None:
    """Synapse's auth-difference vectors hold for the inclusive variant."""
    store = _synapse_store()
    assert expected == _names(impl[1](store, [_ids(s) for s in sets], inclusive=True))


# -- references from the spec text, and the index held to them ---------------------------------


def _closure_ref(events: dict[str, Event], start: str, *, inclusive: bool) -> set[str]:
    """'All of E's auth events, and the auth events of those, recursively' (same room only)."""
    out: set[str] = {start} if inclusive and start in events else set()
    todo = [start] if start in events else []
    seen: set[str] = set()
    while todo:
        here = todo.pop()
        if here in seen:
            continue
        seen.add(here)
        for a in events[here].auth_event_ids:
            if a in events and events[a].room_id == events[here].room_id:
                out.add(a)
                todo.append(a)
    return out


def ref_auth_chain(events: dict[str, Event], ids: list[str], include_given: bool) -> set[str]:
    out: set[str] = set()
    for i in ids:
        out |= _closure_ref(events, i, inclusive=False)
        if include_given and i in events:
            out.add(i)
    return out


def ref_difference(events: dict[str, Event], sets: list[list[str]], inclusive: bool) -> set[str]:
    chains = [set().union(*[_closure_ref(events, i, inclusive=inclusive) for i in s]) for s in sets]
    if len(chains) < 2:
        return set()
    return set().union(*chains) - chains[0].intersection(*chains[1:])


def ref_subgraph(events: dict[str, Event], conflicted: list[str]) -> set[str]:
    """Every event on a path of auth edges between two conflicted events, endpoints included."""
    k = [c for c in conflicted if c in events]
    down = set().union(*[_closure_ref(events, c, inclusive=True) for c in k])
    return {e for e in down if any(c in _closure_ref(events, e, inclusive=True) for c in k)}


@st.composite
def _auth_case(draw: st.DrawFn) -> tuple[RoomDag, list[int], list[list[str]]]:
    dag = draw(room_dags(state_rate=draw(st.sampled_from([0.5, 0.9])), max_auths=4))
    pool = sorted([*dag.event_ids, *dag.missing_ids, "$unknown"])
    sets = draw(st.lists(st.lists(st.sampled_from(pool), max_size=4), max_size=4))
    return dag, draw(st.permutations(range(len(dag.events)))), sets


@given(_auth_case(), st.booleans())
def test_index_and_bfs_equal_the_spec_references(
    case: tuple[RoomDag, list[int], list[list[str]]], flag: bool
) -> None:
    """On generated DAGs stored in any order, index, BFS and spec reference all agree."""
    dag, order, sets = case
    store = MemoryStore()
    dag.store_into(store, order)
    store.check_invariants()
    events = {e.event_id: e for e in dag.events}
    flat = [i for s in sets for i in s]
    expected = ref_auth_chain(events, flat, flag)
    assert expected == ac.auth_chain_ids(store, flat, include_given=flag)
    assert expected == ac.bfs_auth_chain_ids(store, flat, include_given=flag)
    expected = ref_difference(events, sets, flag)
    assert expected == ac.auth_chain_difference(store, sets, inclusive=flag)
    assert expected == ac.auth_chain_difference_walking_down(store, sets, inclusive=flag)
    assert expected == ac.bfs_auth_chain_difference(store, sets, inclusive=flag)
    expected = ref_subgraph(events, flat)
    assert expected == ac.conflicted_subgraph(store, flat)
    assert expected == ac.bfs_conflicted_subgraph(store, flat)


class _EventsOnly:
    """A store with no chain index (events and facts only)."""

    def __init__(self, inner: MemoryStore) -> None:
        self.get_events = inner.get_events
        self.get_facts = inner.get_facts


@given(_auth_case(), st.data())
def test_auth_chains_hold_is_the_chain_restricted_to_the_candidates(
    case: tuple[RoomDag, list[int], list[list[str]]], data: st.DataObject
) -> None:
    """auth_chains_hold places candidates by position: equal to the spec's auth chain
    intersected with the candidates, with the index and without it."""
    dag, order, sets = case
    store = MemoryStore()
    dag.store_into(store, order)
    events = {e.event_id: e for e in dag.events}
    flat = [i for s in sets for i in s]
    pool = sorted([*dag.event_ids, *dag.missing_ids, "$unknown"])
    candidates = data.draw(st.lists(st.sampled_from(pool), max_size=8))
    expected = ref_auth_chain(events, flat, False) & set(candidates)
    assert expected == ac.auth_chains_hold(store, flat, candidates)
    assert expected == ac.auth_chains_hold(_EventsOnly(store), flat, candidates)


def test_auth_chains_hold_with_a_partial_index() -> None:
    """Unindexed events (above a never-stored auth event) are placed by the walk, indexed
    ones by their positions: every closed set of unindexed events of Synapse's graph."""
    everything = _ids("abcdefghijk")
    for unindexed in _closed_sets():
        store = _ghosted_store(unindexed)
        for given_names, _, _ in AUTH_CHAIN_VECTORS:
            given_ids = _ids(given_names)
            expected = ref_auth_chain(_SYN_EVENTS, given_ids, False)
            got = ac.auth_chains_hold(store, given_ids, everything)
            assert expected == got, (sorted(unindexed), given_names)


def _ghosted_store(unindexed_roots: Collection[str]) -> MemoryStore:
    """Synapse's graph where each root also cites a never-stored event: the roots and all
    events above them stay unindexed, while every answer stays the same."""
    store = MemoryStore()
    for n in sorted(SYNAPSE_AUTH_GRAPH, key=lambda n: SYNAPSE_AUTH_GRAPH[n][1]):
        auth = [f"${a}" for a in SYNAPSE_AUTH_GRAPH[n][0]]
        if n in unindexed_roots:
            auth.append("$ghost")
        store.add_events(
            [make_event(f"${n}", auth=auth, depth=SYNAPSE_AUTH_GRAPH[n][1], state_key="foo")]
        )
    return store


def _closed_sets() -> list[frozenset[str]]:
    """Every set of events closed towards newer events (if X is in it, so is all above X)."""
    names = sorted(SYNAPSE_AUTH_GRAPH)
    above: dict[str, set[str]] = {n: set() for n in names}
    for n in names:
        for m in names:
            if n in "".join(_names(frozenset(ref_auth_chain(_SYN_EVENTS, [f"${m}"], False)))):
                above[n].add(m)
    out: set[frozenset[str]] = set()
    for mask in range(1 << len(names)):
        chosen = {names[b] for b in range(len(names)) if mask >> b & 1}
        out.add(frozenset(chosen.union(*[above[c] for c in chosen])))
    return sorted(out, key=lambda s: (len(s), sorted(s)))


_SYN_EVENTS = {
    f"${n}": make_event(f"${n}", auth=[f"${a}" for a in SYNAPSE_AUTH_GRAPH[n][0]], state_key="f")
    for n in SYNAPSE_AUTH_GRAPH
}


def test_synapse_vectors_with_partial_index() -> None:
    """Synapse's test_auth_difference_partial: every closed set of unindexed events."""
    closed = _closed_sets()
    assert len(closed) > 20
    for unindexed in closed:
        store = _ghosted_store(unindexed)
        store.check_invariants()
        positions = store.get_chain_positions(_ids("abcdefghijk"))
        assert {i[1:] for i in _ids("abcdefghijk")} - {i[1:] for i in positions} == unindexed
        for sets, expected in AUTH_DIFF_VECTORS:
            got = ac.auth_chain_difference(store, [_ids(s) for s in sets], inclusive=True)
            assert expected == _names(got), (sorted(unindexed), sets)
        for given_names, include_given, expected in AUTH_CHAIN_VECTORS:
            got = ac.auth_chain_ids(store, _ids(given_names), include_given=include_given)
            assert expected == _names(got), (sorted(unindexed), given_names)


def test_event_auth_returns_exactly_the_auth_chain() -> None:
    """Complement TestEventAuth: /event_auth is the chain of the event, nothing more
    (Dendrite #2084 returned chains of the whole state)."""
    store = _synapse_store()
    assert _names(ac.auth_chain_ids(store, ["$d"], include_given=True)) == "dfghijk"


def test_bad_input_to_auth_chains() -> None:
    """Unknown IDs, empty lists, duplicates and forged cycles give defined answers."""
    store = _synapse_store()
    for fn in (ac.auth_chain_ids, ac.bfs_auth_chain_ids):
        assert frozenset() == fn(store, [])
        assert frozenset() == fn(store, ["$nope"])
        assert _names(fn(store, ["$e", "$e", "$nope"])) == "fghijk"
    assert frozenset() == ac.auth_chain_difference(store, [])
    assert frozenset() == ac.auth_chain_difference_walking_down(store, [])
    sets = [["$nope"], ["$e", "$e"]]  # unknown IDs count for nothing
    assert _names(ac.auth_chain_difference_walking_down(store, sets)) == "fghijk"
    assert ac.bfs_auth_chain_difference(store, sets) == ac.auth_chain_difference(store, sets)
    assert set() == ac.auth_chains_hold(store, ["$nope"], ["$e", "$nope"])
    assert _names(frozenset(ac.auth_chains_hold(store, ["$e", "$e"], ["$f", "$e", "$x"]))) == "f"
    assert frozenset() == ac.conflicted_subgraph(store, ["$nope"])
    cyclic = MemoryStore()
    cyclic.add_events(
        [
            make_event("$x:a", version="1", auth=["$z:a"], state_key="x"),
            make_event("$y:a", version="1", auth=["$x:a"], state_key="y"),
            make_event("$z:a", version="1", auth=["$y:a"], state_key="z"),
        ]
    )
    cyclic.check_invariants()
    assert {"$x:a", "$y:a", "$z:a"} == ac.auth_chain_ids(cyclic, ["$x:a"])
    assert {"$x:a", "$y:a", "$z:a"} == ac.conflicted_subgraph(cyclic, ["$x:a"])
    assert {"$x:a", "$y:a"} == ac.auth_chains_hold(cyclic, ["$x:a"], ["$x:a", "$y:a", "$q"])


# -- the split difference: candidates from where the sets differ, dropped when below U ----------


class _ForwardOnly:
    """A store whose index reads only forwards (as a store without the reverse reads)."""

    def __init__(self, inner: MemoryStore) -> None:
        self.get_events = inner.get_events
        self.get_facts = inner.get_facts
        self.get_chain_positions = inner.get_chain_positions
        self.get_chain_links = inner.get_chain_links
        self.get_chain_members = inner.get_chain_members


class _ForwardDepthOnly(_ForwardOnly):
    """A store whose index reads only forwards, and says whether depths descend (the colouring
    walk's check that every start is indexed then compares counts of positions and facts)."""

    def __init__(self, inner: MemoryStore) -> None:
        super().__init__(inner)
        self.auth_depths_descend = inner.auth_depths_descend
        self.greatest_depth = inner.greatest_depth


class _Watched:
    """A MemoryStore seen through a counter of the IDs it is asked about and the chain rows it
    returns (to prove a difference does not look at every shared event)."""

    def __init__(self, inner: MemoryStore) -> None:
        self.inner = inner
        self.ids_asked = 0
        self.rows = 0
        self.calls = 0

    def _ask(self, n: int, rows: int = 0) -> None:
        self.calls += 1
        self.ids_asked += n
        self.rows += rows

    def get_events(self, ids: Collection[str], /) -> Mapping[str, Event]:
        self._ask(len(ids))
        return self.inner.get_events(ids)

    def get_facts(self, ids: Collection[str], /) -> Mapping[str, EventFacts]:
        self._ask(len(ids))
        return self.inner.get_facts(ids)

    def get_chain_positions(self, ids: Collection[str], /) -> Mapping[str, ChainPosition]:
        self._ask(len(ids))
        return self.inner.get_chain_positions(ids)

    def get_chain_links(self, chains: Collection[int], /) -> Mapping[int, tuple[ChainLink, ...]]:
        got = self.inner.get_chain_links(chains)
        self._ask(0, sum(map(len, got.values())))
        return got

    def get_chain_members(
        self, ranges: Mapping[int, tuple[int, int]], /
    ) -> Mapping[int, tuple[str, ...]]:
        got = self.inner.get_chain_members(ranges)
        self._ask(0, sum(map(len, got.values())))
        return got

    def get_chain_reverse_links(
        self, ranges: Mapping[int, tuple[int, int]], /
    ) -> Mapping[int, tuple[ChainReverseLink, ...]]:
        got = self.inner.get_chain_reverse_links(ranges)
        self._ask(0, sum(map(len, got.values())))
        return got

    def get_unindexed(self, ids: Collection[str], /) -> Collection[str]:
        self._ask(0)  # a set difference in the store: no row per ID
        return self.inner.get_unindexed(ids)


@contextlib.contextmanager
def _upward(*, budget: int | None) -> Iterator[None]:
    """Always take the upward search (never the cost model's walk down), with a budget."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ac, "_UPWARD_CHAIN_COST", 0)
        if budget is not None:
            mp.setattr(ac, "_UPWARD_BUDGET_FACTOR", 0)
            mp.setattr(ac, "_UPWARD_BUDGET_BASE", budget)
        yield


def _every_path(store: MemoryStore, sets: list[list[str]], inclusive: bool) -> list[frozenset[str]]:
    """The difference by each path: as chosen, upward always, upward giving up at once or
    half-way, walking down always, forward index only, BFS."""
    out = [ac.auth_chain_difference(store, sets, inclusive=inclusive)]
    out.append(ac.auth_chain_difference_walking_down(store, sets, inclusive=inclusive))
    for budget in (None, 0, 3):
        with _upward(budget=budget):
            out.append(ac.auth_chain_difference(store, sets, inclusive=inclusive))
    forward = _ForwardOnly(store)
    assert isinstance(forward, ChainIndexReader)
    assert not isinstance(forward, ChainIndexReverseReader)
    out.append(ac.auth_chain_difference(forward, sets, inclusive=inclusive))
    out.append(ac.bfs_auth_chain_difference(store, sets, inclusive=inclusive))
    if len(sets) >= 2:
        shared = set(sets[0]).intersection(*sets[1:])
        out.append(ac.auth_chain_difference_split(store, shared, sets, inclusive=inclusive))
        if inclusive:
            out.extend(_coloured(store, sets))
            out.extend(_coloured(_ForwardDepthOnly(store), sets))
    return out


def _coloured(store: Any, sets: list[list[str]]) -> list[frozenset[str]]:
    """The colouring walk's answers, started from the shared events and not (those it gave)."""
    shared = set(sets[0]).intersection(*sets[1:])
    extras = [set(s) - shared for s in sets]
    out = []
    for most_shared in (ac._COLOUR_MAX_SHARED, -1):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(ac, "_COLOUR_MAX_SHARED", most_shared)
            got = ac._coloured_difference(store, shared, extras)
        if got is not None:
            out.append(got)
    return out


@st.composite
def _forked_case(draw: st.DrawFn) -> tuple[RoomDag, list[int], list[list[str]]]:
    """State sets that share most events (a common part plus a few extras each), as forks."""
    dag = draw(
        room_dags(state_rate=draw(st.sampled_from([0.6, 0.9, 1.0])), max_auths=4, max_events=30)
    )
    pool = sorted([*dag.event_ids, *dag.missing_ids, "$unknown"])
    common = draw(st.lists(st.sampled_from(pool), max_size=12))
    sets = [
        common + draw(st.lists(st.sampled_from(pool), max_size=3))
        for _ in range(draw(st.integers(2, 4)))
    ]
    return dag, draw(st.permutations(range(len(dag.events)))), sets


@settings(max_examples=300, deadline=None)
@given(_forked_case(), st.booleans())
def test_split_difference_equals_bfs_and_spec(
    case: tuple[RoomDag, list[int], list[list[str]]], inclusive: bool
) -> None:
    """Forked state sets, events stored in any order (so some wait unindexed): every path of
    the difference equals the BFS and the spec reference, in both readings."""
    dag, order, sets = case
    store = MemoryStore()
    dag.store_into(store, order)
    events = {e.event_id: e for e in dag.events}
    expected = ref_difference(events, sets, inclusive)
    for got in _every_path(store, sets, inclusive):
        assert expected == got


@st.composite
def _honest_fork(draw: st.DrawFn) -> tuple[RoomDag, list[list[str]]]:
    """State sets of state events in a room whose depths are honest and whose events are all
    stored in order (so every one is indexed): the colouring walk's own case."""
    dag = draw(
        room_dags(
            lying_depth_rate=0,
            depth_above_auth=True,
            gap_rate=0,
            state_rate=draw(st.sampled_from([0.6, 1.0])),
            max_auths=4,
            max_events=30,
        )
    )
    # (the room's own state events: an RV 12 event of the other room waits unindexed for
    # its room's create event, which the generator never makes)
    pool = sorted(
        e.event_id for e in dag.events if e.state_key is not None and e.room_id == dag.room_id
    )
    common = draw(st.lists(st.sampled_from(pool), max_size=12))
    sets = [
        common + draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3))
        for _ in range(draw(st.integers(2, 4)))
    ]
    return dag, sets


@settings(max_examples=200, deadline=None)
@given(_honest_fork())
def test_colouring_walk_answers_where_depths_descend(case: tuple[RoomDag, list[list[str]]]) -> None:
    """In a room whose depths descend along auth edges, the colouring walk answers — started
    from the shared events, and from the others only with the upward search for the rest —
    and equals the spec reference; with a lying depth added, the store says so."""
    dag, sets = case
    store = MemoryStore()
    dag.store_into(store)
    assert store.auth_depths_descend([dag.room_id, dag.other_room_id])
    events = {e.event_id: e for e in dag.events}
    expected = ref_difference(events, sets, inclusive=True)
    got = _coloured(store, sets)
    assert got == [expected, expected]
    # Through a store without the reverse reads: started from the shared events it answers
    # alike (from the others alone it needs the upward search, so it leaves the answer).
    forward = _ForwardDepthOnly(store)
    assert isinstance(forward, ChainIndexDepthReader)
    assert not isinstance(forward, ChainIndexReverseReader)
    assert _coloured(forward, sets)[:1] == [expected]
    # One more event, whose depth is not above its auth event's: the room is disordered, and
    # the walk leaves the answer to the index.
    create = dag.events[0]
    liar = make_event(
        "$liar",
        room_id=dag.room_id,
        version=dag.room_version,
        auth=[create.event_id],
        prev=[create.event_id],
        depth=create.depth,
        state_key="liar",
    )
    store.add_events([liar])
    assert not store.auth_depths_descend([dag.room_id])
    assert store.auth_depths_descend([dag.other_room_id]) == (
        not any(e.room_id == dag.other_room_id and e.depth is None for e in dag.events)
    )
    after = _coloured(store, sets)
    assert all(got == expected for got in after)
    in_room = all(events[e].room_id == dag.room_id for s in sets for e in s)
    if in_room and any(set(s) != set(sets[0]) for s in sets):
        assert after == []
    assert (
        ac.auth_chain_difference_split(
            store, set(sets[0]).intersection(*sets[1:]), sets, inclusive=True
        )
        == expected
    )


def test_colouring_walk_lets_shared_events_join_when_it_comes_down_to_them() -> None:
    """The shared events join the colouring walk (their facts read) when it comes down to the
    deepest of them: here after taking $b (depth 4) and before $a (depth 2), which the shared
    $s (depth 3) has in its auth chain, so $a is in every auth chain; a walk ending above the
    shared events never reads their facts."""
    store = MemoryStore()
    for name, depth, auth in (("c", 1, []), ("a", 2, ["c"]), ("s", 3, ["c", "a"]), ("b", 4, ["c"])):
        store.add_events(
            [make_event(f"${name}", auth=[f"${x}" for x in auth], depth=depth, state_key=name)]
        )
    assert store.auth_depths_descend(["!room:a.example"])
    sets = [["$s", "$a"], ["$s", "$b"]]
    expected = ref_difference(dict(store.get_events(["$c", "$a", "$s", "$b"])), sets, True)
    assert expected == {"$b"}
    assert ac._coloured_difference(store, {"$s"}, [{"$a"}, {"$b"}]) == frozenset(expected)
    # Sides that meet above the shared event: only its depth is read, not its facts.
    store.add_events([make_event("$d", auth=["$c", "$s"], depth=5, state_key="d")])
    store.add_events([make_event("$e", auth=["$c", "$s"], depth=5, state_key="e")])
    read: list[set[str]] = []
    inner = store.get_facts

    def spy(event_ids: Collection[str], /) -> Mapping[str, EventFacts]:
        read.append(set(event_ids))
        return inner(event_ids)

    vars(store)["get_facts"] = spy  # (this instance only)
    assert ac._coloured_difference(store, {"$s"}, [{"$d"}, {"$e"}]) == frozenset({"$d", "$e"})
    assert read
    assert all("$s" not in ids for ids in read)


def test_colouring_walk_leaves_unindexed_starts_to_the_index() -> None:
    """A start stored but not indexed (it waits for a missing auth event: contract rule 1) —
    shared or not — makes the colouring walk leave the answer to the index, through the reverse
    reads' ``get_unindexed`` and through counts of positions and facts alike."""
    store = MemoryStore()
    for name, depth, auth in (("c", 1, []), ("s", 2, ["c"]), ("a", 3, ["c"]), ("b", 3, ["c"])):
        store.add_events(
            [make_event(f"${name}", auth=[f"${x}" for x in auth], depth=depth, state_key=name)]
        )
    store.add_events([make_event("$w", auth=["$c", "$gap"], depth=4, state_key="w")])
    assert store.get_unindexed(["$w"]) == {"$w"}
    forward = _ForwardDepthOnly(store)
    for reader in (store, forward):
        assert ac._coloured_difference(reader, {"$s"}, [{"$a"}, {"$b"}]) is not None
        assert ac._coloured_difference(reader, {"$s"}, [{"$a", "$w"}, {"$b"}]) is None
        assert ac._coloured_difference(reader, {"$s", "$w"}, [{"$a"}, {"$b"}]) is None


def test_depths_descend_is_kept_per_room_and_for_good() -> None:
    """Rule 6 of the chain index: a room is disordered once an indexed event's depth is not
    above a same-room auth event's, whichever arrived first; never again ordered; other rooms
    and rooms never seen are not affected."""
    store = MemoryStore()
    assert store.auth_depths_descend(["!room:a.example", "!never:a.example"])
    store.add_events([make_event("$c", depth=1, state_key="c")])
    # $b waits for $a (not stored yet); $a then arrives deeper than $b: disordered on indexing.
    store.add_events([make_event("$b", auth=["$c", "$a"], depth=3, state_key="b")])
    assert store.auth_depths_descend(["!room:a.example"])
    store.add_events([make_event("$a", auth=["$c"], depth=5, state_key="a")])
    assert not store.auth_depths_descend(["!room:a.example"])
    assert store.auth_depths_descend(["!never:a.example"])
    store.add_events([make_event("$d", auth=["$c"], depth=9, state_key="d")])
    assert not store.auth_depths_descend(["!room:a.example"])
    store.check_invariants()
    other = MemoryStore()
    other.add_events([make_event("$c", depth=1, state_key="c")])
    other.add_events([make_event("$e", auth=["$c"], depth=1, state_key="e")])  # equal: no
    assert not other.auth_depths_descend(["!room:a.example"])


def _hand_store(events: list[tuple[str, str, list[str]]]) -> MemoryStore:
    """Events ``(name, state key, auth names)`` of one room, stored in the order given."""
    store = MemoryStore()
    for name, key, auth in events:
        store.add_events([make_event(f"${name}", auth=[f"${a}" for a in auth], state_key=key)])
    store.check_invariants()
    return store


# create; pl1 -> pl2 on one chain; members on their own chains; topics.
_HAND = [
    ("c", "c", []),
    ("pl1", "pl", ["c"]),
    ("pl2", "pl", ["c", "pl1"]),
    ("m1", "m1", ["c", "pl1"]),  # links to pl1
    ("m2", "m2", ["c", "m1"]),  # pl1 two links away
    ("m3", "m3", ["c"]),
    ("ta", "t", ["c", "pl1"]),
    ("tb", "t2", ["c"]),
]


@pytest.mark.parametrize("inclusive", [False, True])
@pytest.mark.parametrize(
    ("shared", "a", "b", "expected_incl", "expected_excl"),
    [
        # pl1 is a candidate (below ta, not tb) and below a shared member: one link up.
        ("c m1", "ta", "tb", "ta tb", ""),
        # two links up (m2 -> m1 -> pl1).
        ("c m2", "ta", "tb", "ta tb", ""),
        # nothing shared above pl1: it stays.
        ("c m3", "ta", "tb", "pl1 ta tb", "pl1"),
        # pl1 shared itself: below U in the inclusive reading only.
        ("c pl1", "ta", "tb", "ta tb", "pl1"),
        # the candidate sits on the shared event's own chain (pl2 above pl1).
        ("c pl2", "ta", "tb", "ta tb", ""),
        # every set equal: nothing.
        ("c m1 ta", "", "", "", ""),
    ],
)
def test_split_difference_hand_cases(
    shared: str, a: str, b: str, expected_incl: str, expected_excl: str, inclusive: bool
) -> None:
    """Candidates below a shared event (same chain, one or two links up) and not below one."""
    store = _hand_store(_HAND)
    events = dict(store.get_events([f"${n}" for n, _, _ in _HAND]))
    s_a = [f"${n}" for n in (shared + " " + a).split()]
    s_b = [f"${n}" for n in (shared + " " + b).split()]
    expected = {f"${n}" for n in (expected_incl if inclusive else expected_excl).split()}
    assert expected == ref_difference(events, [s_a, s_b], inclusive)
    for got in _every_path(store, [s_a, s_b], inclusive):
        assert expected == got


@pytest.mark.parametrize("inclusive", [False, True])
def test_candidate_below_an_unindexed_shared_event(inclusive: bool) -> None:
    """A shared event waiting unindexed (its other auth event is missing) still hides the
    candidates below it: the store names it (``get_unindexed``) and it is walked down."""
    events = [*_HAND, ("w", "w", ["c", "pl1", "ghost"])]
    store = _hand_store(events)
    assert store.get_unindexed(["$w", "$m1", "$ghost"]) == {"$w"}
    s_a, s_b = ["$c", "$w", "$ta"], ["$c", "$w", "$tb"]
    expected = {"$ta", "$tb"} if inclusive else set()
    for got in _every_path(store, [s_a, s_b], inclusive):
        assert expected == got


def _member_room(members: int) -> tuple[MemoryStore, list[str], list[str]]:
    """A room of ``members`` members (power levels replaced every 20 joins), forked: each side
    changes the power levels and one member leaves."""
    events = [make_event("$c", auth=(), type="m.room.create", state_key="")]
    pl = "$pl0"
    events.append(make_event(pl, auth=["$c"], type="m.room.power_levels", state_key=""))
    joins = []
    for u in range(members):
        join = f"$j{u}"
        events.append(make_event(join, auth=["$c", pl], type="m.room.member", state_key=f"@{u}"))
        joins.append(join)
        if u % 20 == 19:
            new = f"$pl{u}"
            events.append(
                make_event(new, auth=["$c", pl], type="m.room.power_levels", state_key="")
            )
            pl = new
    sides = []
    for side, u in (("a", 3), ("b", members - 5)):
        side_pl = f"$pl_{side}"
        events.append(
            make_event(side_pl, auth=["$c", pl], type="m.room.power_levels", state_key="")
        )
        leave = f"$leave_{side}"
        events.append(
            make_event(
                leave, auth=["$c", side_pl, f"$j{u}"], type="m.room.member", state_key=f"@{u}"
            )
        )
        sides.append(["$c", side_pl, *[leave if j == f"$j{u}" else j for j in joins]])
    store = MemoryStore()
    store.add_events(events)
    return store, sides[0], sides[1]


@pytest.mark.parametrize("inclusive", [False, True])
def test_split_difference_work_follows_the_difference(inclusive: bool) -> None:
    """Two forks of a 2,000-member room differing in 3 events: the upward search asks the store
    about a handful of IDs and rows, not about the 2,000 shared members (the walk down from
    them, forced, asks about every one)."""
    store, a, b = _member_room(2_000)
    watched = _Watched(store)
    assert isinstance(watched, ChainIndexReverseReader)
    got = ac.auth_chain_difference(watched, [a, b], inclusive=inclusive)
    assert got == ac.bfs_auth_chain_difference(store, [a, b], inclusive=inclusive)
    # Exclusive: each side's leave cites a join the other side holds but nothing there cites.
    also = {"$leave_a", "$leave_b"} if inclusive else {"$j3", "$j1995"}
    assert got == {"$pl_a", "$pl_b", *also}
    assert watched.ids_asked <= 10
    assert watched.rows <= 30
    assert watched.calls <= 20
    forward = _Watched(store)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ac, "_UPWARD_CHAIN_COST", 10**9)
        assert got == ac.auth_chain_difference(forward, [a, b], inclusive=inclusive)
    assert forward.ids_asked > 2_000


@settings(max_examples=60, deadline=None)
@given(_forked_case(), st.booleans())
def test_split_difference_on_every_store(
    store_factory: StoreFactory, case: tuple[RoomDag, list[int], list[list[str]]], inclusive: bool
) -> None:
    """Each bundled store reads its index both ways, and the upward search over it (as chosen,
    always, giving up at once) equals the BFS over the same store and the spec reference."""
    dag, order, sets = case
    store = store_factory()
    assert isinstance(store, ChainIndexReverseReader)
    dag.store_into(store, order)
    events = {e.event_id: e for e in dag.events}
    expected = ref_difference(events, sets, inclusive)
    assert expected == ac.bfs_auth_chain_difference(store, sets, inclusive=inclusive)
    assert expected == ac.auth_chain_difference(store, sets, inclusive=inclusive)
    for budget in (None, 0):
        with _upward(budget=budget):
            assert expected == ac.auth_chain_difference(store, sets, inclusive=inclusive)
    shared = set(sets[0]).intersection(*sets[1:])
    extras = [set(s) - shared for s in sets]
    assert expected == ac.auth_chain_difference_split(store, shared, extras, inclusive=inclusive)


def test_reverse_reads_agree_between_stores(store_factory: StoreFactory) -> None:
    """Reverse links are the links read from their target; unindexed events are the stored
    ones without a position — the same on every store as on MemoryStore."""
    events = [*_HAND, ("w", "w", ["c", "pl1", "ghost"])]
    memory = _hand_store(events)
    store = store_factory()
    assert isinstance(store, ChainIndexReverseReader)
    for name, key, auth in events:
        store.add_events([make_event(f"${name}", auth=[f"${a}" for a in auth], state_key=key)])
    ids = [f"${n}" for n, _, _ in events] + ["$ghost", "$nope"]
    assert set(store.get_unindexed(ids)) == set(memory.get_unindexed(ids)) == {"$w"}
    positions = memory.get_chain_positions(ids)
    assert dict(store.get_chain_positions(ids)) == dict(positions)
    chains = sorted({p.chain_id for p in positions.values()})
    everything = dict.fromkeys(chains, (0, 1 << 40))
    assert dict(store.get_chain_reverse_links(everything)) == dict(
        memory.get_chain_reverse_links(everything)
    )
    forward = {
        (c, link.origin_sequence, link.target_chain_id, link.target_sequence)
        for c, links in memory.get_chain_links(chains).items()
        for link in links
    }
    backward = {
        (r.origin_chain_id, r.origin_sequence, c, r.target_sequence)
        for c, into in memory.get_chain_reverse_links(everything).items()
        for r in into
    }
    assert forward
    assert forward == backward
    pl = positions["$pl1"]
    only_pl1 = {pl.chain_id: (pl.sequence - 1, pl.sequence)}
    assert dict(store.get_chain_reverse_links(only_pl1)) == dict(
        memory.get_chain_reverse_links(only_pl1)
    )
    assert store.get_chain_reverse_links({pl.chain_id: (5, 5)}) == {}


def test_a_proxy_store_is_asked_what_it_offers_every_time() -> None:
    """A proxy class (``__getattr__``) may wrap stores that offer different reads: each
    instance is judged on its own; the answers equal the BFS either way."""

    class Proxy:
        def __init__(self, inner: object) -> None:
            self._inner = inner

        def __getattr__(self, name: str) -> object:
            return getattr(self._inner, name)

    store = _hand_store(_HAND)
    sets = [["$c", "$m1", "$ta"], ["$c", "$m1", "$tb"]]
    expected = ac.bfs_auth_chain_difference(store, sets)
    for inner in (_ForwardOnly(store), store, _ForwardOnly(store)):
        proxy = Proxy(inner)
        assert ac.auth_chain_difference(proxy, sets) == expected  # type: ignore[arg-type]
    assert isinstance(Proxy(store), ChainIndexReverseReader)
    assert not isinstance(Proxy(_ForwardOnly(store)), ChainIndexReverseReader)
    assert not any(kind is Proxy for kind, _ in protocols._PROVIDES)
